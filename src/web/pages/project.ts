/**
 * `/projects/NAME`: one project — its status line (the report `/` and `status` show), its recent runs as a timeline,
 * charts of duration, bytes read and bytes added per run over 30 or 90 days (`?days=90`), its snapshots with why each
 * is kept, and what the next plan will do for it (project-snapshots.ts). A backup of it running in this process
 * shows its byte count live.
 */
import { liveStages } from "../../apply/progress.ts";
import type { NormalizedProject } from "../../config/normalize.ts";
import { statusReport } from "../../status/report.ts";
import type { HistoryEntry } from "../../state/reports.ts";
import { barChart, type BarChartOptions, type ChartPoint, chartTable } from "../charts.ts";
import { type Html, markup, segment } from "../html.ts";
import { badge, bytes, duration, page, statusTone, when } from "../layout.ts";
import { type DashboardContext, notFound, type PageResult } from "../server.ts";
import { planSection, projectActions, snapshotsSection } from "./project-snapshots.ts";
import { count, lastLines, liveBytes, runStatus } from "./run.ts";

/** How many runs the timeline lists. */
const timelineRuns = 30;
/** The most runs a chart draws (a project backed up every 5 minutes makes 26,000 in 90 days). */
const chartRuns = 2000;
/** The chart periods offered, in days; the first is the default. */
const periods = [30, 90] as const;

export async function projectPage(ctx: DashboardContext, name: string, query: URLSearchParams): Promise<PageResult> {
  if (!Object.hasOwn(ctx.loaded.config.projects, name)) {
    return notFound(ctx, `No project ${name} is declared in the config.`);
  }
  const project = ctx.loaded.config.projects[name];
  const days = periods.find((p) => String(p) === query.get("days")) ?? periods[0];
  // The status report `/` and `status` show, of this project only: its plan (offline, the state as recorded, no
  // restic) holds the project's own actions, and its observed state each snapshot's completeness.
  const report = await statusReport(ctx.loaded, ctx.store, { now: ctx.now, host: ctx.host, projects: [name] });
  const since = new Date(ctx.now.getTime() - days * 86_400_000).toISOString();
  const recent = await ctx.store.history({ projects: [name], kinds: ["backup"], limit: timelineRuns });
  const period = await ctx.store.history({ projects: [name], kinds: ["backup"], since, limit: chartRuns });
  const snapshots = await ctx.store.listSnapshots({ projects: [name] });
  const actions = projectActions(report.prepared.plan.actions, name);

  const body = markup`
    ${summary(ctx, project, report.projects.find((p) => p.project === name))}
    <h2 id="charts">Runs over the last ${days} days</h2>
    <p class="periods">${
    periods.map((p) =>
      markup`
        <a href="/projects/${segment(name)}?days=${p}#charts" ${
        p === days ? markup`aria-current="page"` : ""
      }>${p} days</a>
      `
    )
  }</p>
    ${charts(ctx, period, days)}
    <h2 id="timeline">Recent runs</h2>
    ${timeline(ctx, recent, new Set(report.leftovers.interruptedRuns.map((run) => run.id)))}
    <h2 id="snapshots">Snapshots and why they are kept</h2>
    <p class="muted">Retention ${retentionWords(project)}, applied per source and repository as restic forget does.</p>
    ${snapshotsSection(ctx, project, report.prepared.observed, actions, snapshots)}
    <h2 id="plan">What the next plan will do</h2>
    ${planSection(ctx, actions)}
    <p
      class="muted">Maintenance of its repositories (prune, check) concerns every project in them: see <a href="/plan">the plan</a>.</p>
  `;
  return { status: 200, body: page(ctx, { title: name, body }) };
}

function summary(
  ctx: DashboardContext,
  project: NormalizedProject,
  status: Awaited<ReturnType<typeof statusReport>>["projects"][number] | undefined,
): Html {
  const live = liveStages().filter((stage) => stage.project === project.name);
  const running = live.length > 0
    ? markup`<li>Running now: ${
      live.map((stage) =>
        markup`
          <span data-live-run="${stage.runId}">${stage.text}</span> (<a href="/runs/${
          segment(stage.runId)
        }">run ${stage.runId}</a>)
        `
      )
    }</li>`
    : "";
  if (!status) return markup`<ul class="summary">${running}</ul>`;
  const lastRun = status.last_run
    ? markup`<a href="/runs/${segment(status.last_run.id)}">${
      badge(status.last_run.status, statusTone(status.last_run.status))
    }</a> ${when(ctx, status.last_run.started_at)}`
    : markup`<span class="muted">none</span>`;
  return markup`
    <ul class="summary" aria-label="Status">
      <li>Health: ${badge(status.health, statusTone(status.health))}</li>
      <li>Last success: ${when(ctx, status.last_success)}</li>
      <li>Last run: ${lastRun}</li>
      <li>Next due: ${status.due ? badge("due now", "info") : when(ctx, status.next_due)}</li>
      ${
    status.last_drill
      ? markup`<li>Last drill: ${badge(status.last_drill.status, statusTone(status.last_drill.status))} ${
        when(ctx, status.last_drill.at)
      }</li>`
      : ""
  }
      ${status.pending_notifications > 0 ? markup`<li>Pending notifications: ${status.pending_notifications}</li>` : ""}
      ${running}
    </ul>
  `;
}

/** What a run's backup stages read and what restic says they added, summed over its sources. */
function backupBytes(entry: HistoryEntry): { read: number | null; added: number | null } {
  let read: number | null = null;
  let added: number | null = null;
  for (const stage of entry.stages) {
    if (stage.type !== "backup") continue;
    const r = count(stage.bytes);
    const a = count(stage.bytes_added);
    if (r !== null) read = (read ?? 0) + r;
    if (a !== null) added = (added ?? 0) + a;
  }
  return { read, added };
}

/** The project's recent runs, newest first. */
function timeline(ctx: DashboardContext, entries: readonly HistoryEntry[], dead: ReadonlySet<string>): Html {
  const runs = entries.flatMap((entry) => (entry.run ? [{ run: entry.run, entry }] : []));
  if (runs.length === 0) return markup`<p class="muted">No run yet.</p>`;
  const items = runs.map(({ run, entry }) => {
    const { read, added } = backupBytes(entry);
    const by = run.runner && run.runner !== run.host ? `${run.runner} on ${run.host}` : run.host;
    const live = run.status === "running" ? liveBytes(run.id) : "";
    return markup`
      <li>
        ${runStatus(run.status, dead.has(run.id))} <a href="/runs/${segment(run.id)}">${
      when(
        ctx,
        run.started_at,
      )
    }</a> ${live}
        <div class="muted">${duration(count(run.duration_ms))} · read ${bytes(read)} · added ${
      bytes(added)
    } · ${run.command} by ${by}</div>
        ${run.error ? markup`<pre class="error">${lastLines(run.error, 1)}</pre>` : ""}
      </li>
    `;
  });
  return markup`<ol class="timeline" aria-label="Runs, newest first">${items}</ol>`;
}

/** The three charts of the period's finished runs, oldest first, each with its data as a table. */
function charts(ctx: DashboardContext, entries: readonly HistoryEntry[], days: number): Html {
  const runs = entries.flatMap((entry) => (entry.run && entry.run.status !== "running" ? [entry] : [])).reverse();
  const point = (entry: HistoryEntry, value: number | null): ChartPoint => ({
    at: entry.run?.started_at ?? "",
    value: value ?? 0,
    failed: entry.run?.status !== "succeeded",
    status: entry.run?.status,
  });
  const figures: [string, ChartPoint[], (n: number) => string][] = [
    ["Duration", runs.map((e) => point(e, count(e.run?.duration_ms))), (n) => duration(n)],
    ["Bytes read", runs.map((e) => point(e, backupBytes(e).read)), (n) => bytes(n)],
    ["Bytes added", runs.map((e) => point(e, backupBytes(e).added)), (n) => bytes(n)],
  ];
  if (runs.length === 0) return markup`<p class="muted">No finished run in the last ${days} days.</p>`;
  const cut = entries.length >= chartRuns
    ? markup`<p class="muted">The newest ${chartRuns} runs of the period only.</p>`
    : "";
  return markup`${cut}<div class="charts">${
    figures.map(([label, points, format]) => {
      const options: BarChartOptions = { label: `${label} per run`, format, zone: ctx.zone };
      return markup`<figure><figcaption>${label} per run</figcaption>${barChart(points, options)}${
        chartTable(points, options)
      }</figure>`;
    })
  }</div>`;
}

/** The project's keep rules in words: "last 3, daily 7". */
function retentionWords(project: NormalizedProject): string {
  const rules = Object.entries(project.retention).filter(([, value]) => value !== undefined)
    .map(([key, value]) => `${key} ${value}`);
  return rules.length > 0 ? rules.join(", ") : "keeps everything (no rule)";
}
