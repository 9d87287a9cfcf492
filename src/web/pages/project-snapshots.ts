/**
 * The parts of `/projects/NAME` that come from the plan: the project's snapshots per repository and source with why
 * each is kept (the retention rules that keep it, in restic's words, worked out by plan/retention.ts exactly as the
 * planner does), or that the next apply forgets it; and what the next plan will do for the project, deletions held
 * for approval highlighted.
 */
import type { NormalizedProject } from "../../config/normalize.ts";
import { localTimesIn } from "../../format/time.ts";
import type { PlanAction } from "../../plan/document.ts";
import { describeAction } from "../../plan/render.ts";
import { applyRetention } from "../../plan/retention.ts";
import { type InventorySnapshot, isUsable, type ObservedState } from "../../plan/types.ts";
import type { SnapshotTable } from "../../state/schema.ts";
import { type Html, markup } from "../html.ts";
import { badge, bytes, when } from "../layout.ts";
import type { DashboardContext } from "../server.ts";
import { count } from "./run.ts";

/** Why a snapshot is there, and whether it is the row to highlight (a deletion held for approval). */
interface Verdict {
  why: Html | string;
  held?: boolean;
}

/** Whether a plan action is a deletion that waits for approval (apply holds it back without --auto-approve). */
export function isHeld(action: PlanAction): boolean {
  return action.type === "forget" && action.approval === "required";
}

/** The plan's actions of the project itself (backups, copies, forgets, drills, recovery of its runs). */
export function projectActions(actions: readonly PlanAction[], project: string): PlanAction[] {
  return actions.filter((action) => "project" in action && action.project === project);
}

/** The snapshots section: a table per (repository, source) group, newest first, with the "why kept" column. */
export function snapshotsSection(
  ctx: DashboardContext,
  project: NormalizedProject,
  observed: ObservedState,
  actions: readonly PlanAction[],
  rows: readonly SnapshotTable[],
): Html {
  const key = (repository: string, id: string) => `${repository}\u0000${id}`;
  const states = new Map(observed.snapshots.map((s) => [key(s.repository, s.id), s]));
  // What the plan deletes, by snapshot: retention's forgets (routine or held) and partial snapshots' recovery.
  const planned = new Map<string, Verdict>();
  for (const action of actions) {
    if (action.type === "forget") {
      const verdict: Verdict = isHeld(action)
        ? { why: markup`${badge("held", "warn")} forgotten once approved: ${action.approval_reason}`, held: true }
        : { why: "forgotten at the next apply" };
      for (const id of action.snapshots) planned.set(key(action.repository, id), verdict);
    } else if (action.type === "recover" && action.recover === "partial_snapshot") {
      for (const id of action.snapshots) {
        planned.set(key(action.repository, id), { why: "forgotten at the next apply: a partial snapshot" });
      }
    }
  }
  const groups = new Map<string, { repository: string; source: string | null; rows: SnapshotTable[] }>();
  for (const row of rows) {
    const name = key(row.repository, row.source ?? "");
    const group = groups.get(name) ?? { repository: row.repository, source: row.source, rows: [] };
    group.rows.push(row);
    groups.set(name, group);
  }
  if (groups.size === 0) return markup`<p class="muted">No snapshots of this project in the inventory.</p>`;
  const order = (repository: string) => {
    const at = project.repositories.indexOf(repository);
    return at < 0 ? project.repositories.length : at;
  };
  const sorted = [...groups.values()].sort((a, b) =>
    order(a.repository) - order(b.repository) || (a.source ?? "").localeCompare(b.source ?? "")
  );
  return markup`${
    sorted.map((group) => {
      const inventory = group.rows.map((row) => states.get(key(row.repository, row.id)) ?? { ...row, tags: [] });
      const verdicts = groupVerdicts(ctx, project, group.repository, group.source, inventory);
      const newestFirst = [...group.rows].sort((a, b) => Date.parse(b.time) - Date.parse(a.time));
      const lines = newestFirst.map((row) => {
        const id = key(row.repository, row.id);
        const verdict = planned.get(id) ?? verdicts.get(row.id) ?? { why: "" };
        const state = states.get(id)?.state ?? "adopted";
        return markup`
          <tr ${verdict.held ? markup`class="held"` : ""}>
            <td>${when(ctx, row.time)}</td>
            <td><code title="${row.id}">${row.short_id}</code></td>
            <td class="num">${bytes(count(row.size))}</td>
            <td>${state}</td>
            <td>${verdict.why}</td>
          </tr>
        `;
      });
      const title = `${group.repository}: ${group.source ?? "snapshots without a source tag"}`;
      return markup`
        <div class="table-wrap">
          <table class="snapshots">
            <caption>${title} — ${group.rows.length} snapshot${
        group.rows.length === 1 ? "" : "s"
      }, newest first</caption>
            <thead>
              <tr>
                <th scope="col">Time</th>
                <th scope="col">Id</th>
                <th scope="col" class="num">Size</th>
                <th scope="col">State</th>
                <th scope="col">Why kept</th>
              </tr>
            </thead>
            <tbody>${lines}</tbody>
          </table>
        </div>
      `;
    })
  }`;
}

/**
 * Why each snapshot of one group stays, as the planner sees it (plan/forget-actions.ts): retention counts the group's
 * complete and adopted snapshots only, and never forgets the newest of them nor one newer than the last successful
 * backup. What the plan does forget is said by its actions, not here.
 */
function groupVerdicts(
  ctx: DashboardContext,
  project: NormalizedProject,
  repository: string,
  source: string | null,
  inventory: readonly InventorySnapshot[],
): Map<string, Verdict> {
  const verdicts = new Map<string, Verdict>();
  const managed = source !== null && project.repositories.includes(repository) &&
    project.sources.some((s) => s.name === source);
  if (!managed) {
    const why = source === null
      ? "not managed: no source tag, retention never touches it"
      : "not managed: its source or repository is no longer declared, retention never touches it";
    for (const snapshot of inventory) verdicts.set(snapshot.id, { why });
    return verdicts;
  }
  const usable = inventory.filter(isUsable);
  for (const snapshot of inventory) {
    if (!isUsable(snapshot)) verdicts.set(snapshot.id, { why: `not counted by retention (${snapshot.state})` });
  }
  if (usable.length === 0) return verdicts;
  const decision = applyRetention(usable, project.retention, { now: ctx.now });
  for (const kept of decision.keep) verdicts.set(kept.id, { why: kept.reasons.join(", ") });
  const newest = usable.reduce((a, b) => (a.time >= b.time ? a : b));
  for (const id of decision.forget) {
    verdicts.set(id, {
      why: !project.enabled
        ? "the policy drops it, but the project is disabled: nothing is forgotten"
        : id === newest.id
        ? "the newest complete snapshot (always kept)"
        : "the policy drops it once a newer backup succeeds",
    });
  }
  return verdicts;
}

/** The plan section: a line per action for the project, held deletions highlighted. */
export function planSection(ctx: DashboardContext, actions: readonly PlanAction[]): Html {
  if (actions.length === 0) return markup`<p>Nothing to do for this project now.</p>`;
  const rows = actions.map((action) => {
    const held = isHeld(action);
    const ids = action.type === "forget" || (action.type === "recover" && action.recover === "partial_snapshot")
      ? action.snapshots.map((id) => id.slice(0, 8)).join(" ")
      : "";
    return markup`
      <tr ${held ? markup`class="held"` : ""}>
        <td>${
      held ? badge("held", "warn") : action.destructive ? badge("deletes", "bad") : badge(action.type, "info")
    }</td>
        <td>${describeAction(action)}${ids ? markup`<br><code>${ids}</code>` : ""}</td>
        <td>${localTimesIn(action.reason, ctx.zone)}${
      held && action.type === "forget" && action.approval_reason
        ? markup`<br><strong>Held for approval:</strong> ${action.approval_reason}`
        : ""
    }</td>
      </tr>
    `;
  });
  return markup`
    <div class="table-wrap">
      <table id="plan">
        <caption>${actions.length} action${actions.length === 1 ? "" : "s"} the next apply would take</caption>
        <thead>
          <tr>
            <th scope="col">Kind</th>
            <th scope="col">Action</th>
            <th scope="col">Why</th>
          </tr>
        </thead>
        <tbody>${rows}</tbody>
      </table>
    </div>
  `;
}
