/**
 * `/runs/ID`: one run as the audit recorded it — its project, status, command, times, host and runner, the config
 * it ran, the last lines of its error — and every stage of it: attempts, durations, bytes read and added, the
 * snapshot made, notes and errors (redacted when they were recorded). While the run goes on in this process, its
 * byte count updates live.
 */
import { liveStages } from "../../apply/progress.ts";
import { findLeftovers } from "../../apply/recovery.ts";
import type { RunWithStages } from "../../state/reports.ts";
import { type Html, markup, segment } from "../html.ts";
import { badge, bytes, duration, page, statusTone, when } from "../layout.ts";
import { type DashboardContext, notFound, type PageResult } from "../server.ts";

/** How many of an error's last lines a page shows (the cause is at the end; the audit keeps the whole text). */
const errorLines = 5;

/** An error's last `n` non-empty lines. */
export function lastLines(error: string, n = errorLines): string {
  return error.split("\n").filter((line) => line.trim()).slice(-n).join("\n");
}

/** An error (or note) as a block of its last lines, or nothing. */
export function errorBlock(error: string | null | undefined, n = errorLines): Html {
  return error ? markup`<pre class="error">${lastLines(error, n)}</pre>` : markup``;
}

/** A number column as the database gives it (PostgreSQL returns bigints as strings), or null. */
export function count(value: number | string | bigint | null | undefined): number | null {
  return value === null || value === undefined ? null : Number(value);
}

/**
 * A run's status word; a run still marked running whose process is gone reads as interrupted (as `status` shows it),
 * though only the next apply or watch records it so.
 */
export function runStatus(status: string, dead: boolean): Html {
  return dead
    ? markup`${
      badge("interrupted", "warn")
    } <span class="muted">(its process is gone; the next apply records it)</span>`
    : badge(status, statusTone(status));
}

/** The element the page script updates from /live.json while the run goes on in this process. */
export function liveBytes(runId: string): Html {
  const stage = liveStages().find((s) => s.runId === runId);
  return stage ? markup`<span data-live-run="${runId}">${stage.text}</span>` : markup``;
}

export async function runPage(ctx: DashboardContext, id: string): Promise<PageResult> {
  const found = await ctx.store.runWithStages(id);
  if (!found) return notFound(ctx, `No run ${id} in the state.`);
  // Only a run still marked running needs the look at whether its process lives (read-only: nothing is repaired).
  const dead = found.run.status === "running" && (await findLeftovers(ctx.store, ctx.host)).deadRuns.includes(id);
  return { status: 200, body: page(ctx, { title: `Run ${id}`, body: runBody(ctx, found, dead) }) };
}

function runBody(ctx: DashboardContext, { run, stages }: RunWithStages, dead: boolean): Html {
  const declared = Object.hasOwn(ctx.loaded.config.projects, run.project);
  const project = declared
    ? markup`<a href="/projects/${segment(run.project)}">${run.project}</a>`
    : markup`${run.project} <span class="muted">(no longer declared)</span>`;
  const live = run.status === "running" ? liveBytes(run.id) : markup``;
  const fields: [string, Html | string][] = [
    ["Project", project],
    ["Status", markup`${runStatus(run.status, dead)} ${live}`],
    ["Command", run.command],
    ["Started", when(ctx, run.started_at)],
    ["Finished", run.finished_at ? when(ctx, run.finished_at) : markup`<span class="muted">not yet</span>`],
    ["Duration", duration(count(run.duration_ms))],
    ["Host", `${run.host} (pid ${run.pid})`],
    ["Runner", run.runner ?? markup`<span class="muted">none (not run by a fleet runner)</span>`],
    ["Config", markup`<code>${run.config_fingerprint}</code>`],
  ];
  if (run.stage) fields.push(["Ended in stage", run.stage]);
  const rows = stages.map((stage) =>
    markup`
      <tr>
        <td>${stage.type}</td>
        <td>${stage.source ?? markup`<span class="muted">–</span>`}</td>
        <td>${stage.repository ?? markup`<span class="muted">–</span>`}</td>
        <td class="num">${stage.attempt}</td>
        <td>${badge(stage.status, statusTone(stage.status))}</td>
        <td>${when(ctx, stage.started_at, { age: false })}</td>
        <td class="num">${duration(count(stage.duration_ms))}</td>
        <td class="num">${bytes(count(stage.bytes))}</td>
        <td class="num">${bytes(count(stage.bytes_added))}</td>
        <td>${stage.snapshot_id ? markup`<code>${stage.snapshot_id.slice(0, 8)}</code>` : ""}</td>
        <td>${stage.note ? markup`<pre>${lastLines(stage.note)}</pre>` : ""}${errorBlock(stage.error)}</td>
      </tr>
    `
  );
  return markup`
    <dl class="fields">${
    fields.map(([name, value]) =>
      markup`
        <dt>${name}</dt>
        <dd>${value}</dd>
      `
    )
  }</dl>
    ${run.error ? markup`<h2>Error</h2>${errorBlock(run.error)}` : ""}
    <h2>Stages</h2>
    ${
    stages.length === 0 ? markup`<p class="muted">No stage was recorded for this run.</p>` : markup`
      <div class="table-wrap">
        <table id="stages">
          <caption>${stages.length} stage${stages.length === 1 ? "" : "s"}, in the order they ran</caption>
          <thead>
            <tr>
              <th scope="col">Type</th>
              <th scope="col">Source</th>
              <th scope="col">Repository</th>
              <th scope="col" class="num">Attempt</th>
              <th scope="col">Status</th>
              <th scope="col">Started</th>
              <th scope="col" class="num">Duration</th>
              <th scope="col" class="num">Bytes read</th>
              <th scope="col" class="num">Bytes added</th>
              <th scope="col">Snapshot</th>
              <th scope="col">Note or error</th>
            </tr>
          </thead>
          <tbody>${rows}</tbody>
        </table>
      </div>
    `
  }
  `;
}
