/**
 * `/`: every project in one table, failing and overdue first: health as a word, the last success with its age against
 * the project's maxAge (freshness), the last result, the next due time, snapshots per repository, the last check per
 * repository, the last restore drill with the time it took (its RTO), and pending notifications. The same report
 * `status --json` prints (status/report.ts), so the two never disagree.
 */
import { liveStages } from "../../apply/progress.ts";
import { maxAgeMs, projectTimes } from "../../plan/due.ts";
import { type ProjectStatus, statusReport } from "../../status/report.ts";
import { markup, segment } from "../html.ts";
import { badge, duration, page, statusTone, when } from "../layout.ts";
import type { DashboardContext, PageResult } from "../server.ts";

const order: Record<ProjectStatus["health"], number> = { failing: 0, overdue: 0, never: 1, ok: 2, disabled: 3 };

export async function homePage(ctx: DashboardContext): Promise<PageResult> {
  const report = await statusReport(ctx.loaded, ctx.store, { now: ctx.now, host: ctx.host });
  const drills = report.drills;
  // Backups under way in this process (watch's dashboard): their byte count, updated live by the page's script.
  const live = new Map(liveStages().map((stage) => [stage.project, stage]));
  const projects = [...report.projects].sort((a, b) =>
    order[a.health] - order[b.health] || a.project.localeCompare(b.project)
  );
  const counts = new Map<string, number>();
  for (const p of projects) counts.set(p.health, (counts.get(p.health) ?? 0) + 1);
  const summary = (["failing", "overdue", "never", "ok", "disabled"] as const)
    .filter((health) => counts.has(health))
    .map((health) => markup`<li>${badge(health, statusTone(health))} ${counts.get(health)}</li>`);

  const rows = projects.map((p) => {
    const project = ctx.loaded.config.projects[p.project];
    const limit = maxAgeMs(project, projectTimes(project, ctx.now));
    const ageMs = p.last_success ? ctx.now.getTime() - Date.parse(p.last_success) : undefined;
    const freshness = ageMs === undefined
      ? markup``
      : markup`<br><span class="muted">${Math.round((ageMs / limit) * 100)}% of max age ${duration(limit)}</span>`;
    const drill = drills.get(p.project);
    const snapshots = Object.entries(p.snapshots).map(([repository, s]) =>
      markup`<div>${repository}: ${s.count}${s.newest ? markup`, newest ${when(ctx, s.newest)}` : ""}</div>`
    );
    const checks = Object.entries(p.last_check).map(([repository, check]) =>
      markup`<div>${repository}: ${
        check
          ? markup`${badge(check.status, statusTone(check.status))} ${when(ctx, check.at)}`
          : markup`<span class="muted">never</span>`
      }</div>`
    );
    const running = live.get(p.project);
    const liveCount = running
      ? markup`<p>${
        badge("running", "info")
      } ${running.label}: <span data-live-run="${running.runId}">${running.text}</span></p>`
      : "";
    const lastRun = p.last_run
      ? markup`<a href="/runs/${segment(p.last_run.id)}">${badge(p.last_run.status, statusTone(p.last_run.status))}</a>`
      : markup`<span class="muted">none</span>`;
    return markup`
      <tr>
        <td>${badge(p.health, statusTone(p.health))}</td>
        <th scope="row"><a href="/projects/${segment(p.project)}">${p.project}</a></th>
        <td>${when(ctx, p.last_success)}${freshness}</td>
        <td>${liveCount}${lastRun}${
      p.last_run?.error ? markup`<p class="error">${lastLines(p.last_run.error)}</p>` : ""
    }</td>
        <td>${p.due ? markup`${badge("due now", "info")}` : when(ctx, p.next_due)}</td>
        <td>${snapshots}</td>
        <td>${checks}</td>
        <td>${
      drill
        ? markup`${badge(drill.status, statusTone(drill.status))} ${when(ctx, drill.at)}<br><span class="muted">RTO ${
          duration(drill.durationMs)
        }</span>${p.last_drill?.slow ? markup` ${badge(`over ${p.last_drill.rto}`, "warn")}` : ""}`
        : markup`<span class="muted">none</span>`
    }</td>
        <td class="num">${p.pending_notifications || markup`<span class="muted">0</span>`}</td>
      </tr>
    `;
  });

  const body = markup`
    <ul class="summary" aria-label="Projects by health">${summary}</ul>
    <div class="table-wrap">
      <table id="projects">
        <caption>${projects.length} project${projects.length === 1 ? "" : "s"}, failing and overdue first</caption>
        <thead>
          <tr>
            <th scope="col">Health</th>
            <th scope="col">Project</th>
            <th scope="col">Last success</th>
            <th scope="col">Last run</th>
            <th scope="col">Next due</th>
            <th scope="col">Snapshots</th>
            <th scope="col">Last check</th>
            <th scope="col">Last drill</th>
            <th scope="col" class="num">Pending notifications</th>
          </tr>
        </thead>
        <tbody>${rows}</tbody>
      </table>
    </div>
  `;
  return { status: 200, body: page(ctx, { title: "Projects", nav: "projects", body }) };
}

/**
 * An error's last non-empty lines (the cause and what the program said; errors are redacted when recorded), at most
 * `n`, each cut at 300 characters.
 */
export function lastLines(error: string, n = 4): string {
  return error.split("\n").map((line) => line.trim()).filter(Boolean).slice(-n)
    .map((line) => (line.length > 300 ? `${line.slice(0, 299)}…` : line)).join("\n");
}
