/**
 * `backupctl status`: per project, the last success and its age, the next due time, snapshots per repository; and
 * what dead processes left behind. It repairs nothing and records nothing (opening the state still replays results a
 * crashed process left in fallback.jsonl, as every command does).
 */
import type { Command } from "commander";
import { preparePlan } from "../apply/prepare.ts";
import { nextSlot } from "../config/schedule.ts";
import { ExitCode } from "../errors.ts";
import { humanDuration, isoSeconds, localTime, machineTimeZone } from "../format/time.ts";
import { colours, terminalColours } from "../plan/render.ts";
import type { Leftovers } from "../plan/types.ts";
import { type GlobalOptions, hostFor, load, openStore, type Output, parseNow } from "./context.ts";
import { type FleetStatus, fleetStatus, fleetUnhealthy, renderFleet } from "./runners.ts";

export const description =
  "One row per project: health, last success, last result, next due, snapshots, last check and drill; exit 1 when any is failing or overdue";

interface Options extends GlobalOptions {
  json?: boolean;
  now?: string;
}

export interface ProjectStatus {
  project: string;
  enabled: boolean;
  /**
   * ok; failing: the last run failed, or was interrupted and none ever succeeded, or the last drill or a check failed;
   * overdue: no success within maxAge; never: no run yet (or one still running).
   */
  health: "ok" | "failing" | "overdue" | "never" | "disabled";
  overdue: boolean;
  last_success: string | null;
  last_run: { id: string; status: string; started_at: string; error: string | null } | null;
  /** True when plan would back up one of its sources now. */
  due: boolean;
  next_due: string;
  snapshots: Record<string, { count: number; newest: string | null }>;
  /** Per repository: the last `restic check` (time and ok/failed), null when never checked. */
  last_check: Record<string, { at: string; status: string } | null>;
  /** The latest restore drill, null without one (or without `verify`). */
  last_drill: { at: string; status: string } | null;
  /** Notifications about this project still waiting to be sent. */
  pending_notifications: number;
  /** In a fleet (a state runners registered in): the runner that made the latest run (else its host), null before. */
  ran_by?: string | null;
}

/** The outbox as status shows it: what is still being tried, and what was given up in the last week. */
export interface NotificationStatus {
  pending: {
    channel: string;
    event: string;
    project: string | null;
    created_at: string;
    attempts: number;
    next_attempt_at: string;
    last_error: string | null;
  }[];
  undeliverable: {
    channel: string;
    event: string;
    project: string | null;
    created_at: string;
    given_up_at: string;
    error: string | null;
  }[];
}

/** What dead processes left behind, as status shows it: found, not repaired (the next apply or watch does). */
export interface LeftoverStatus {
  /** Runs still marked running whose process on this host is gone. */
  interrupted_runs: { id: string; project: string; stage: string | null; pid: number; started_at: string }[];
  /** Project lock files whose holder on this host is gone. */
  stale_locks: { project: string; pid: number; since: string; run_id: string | null }[];
  /** Private temporary folders of dead processes, relative to the state folder. */
  files: string[];
}

/** How long status keeps showing a notification given up as undeliverable. */
const undeliverableShownMs = 7 * 86_400_000;

export function define(program: Command, output: Output, done: (code: number) => void): void {
  program.command("status").description(description)
    .option("--json", "print JSON")
    .option("--now <iso>", "evaluate schedules as if the clock read this time")
    .action(async (_options, command: Command) => done(await run(command.optsWithGlobals<Options>(), output)));
}

export async function run(options: Options, output: Output): Promise<number> {
  const now = parseNow(options.now) ?? new Date();
  const loaded = await load(options);
  const store = await openStore(options, loaded, "read");
  // Why the state cannot be written, when it cannot: status still shows the last written state, and exits 1.
  const unwritable = store.unwritable;
  let statuses: ProjectStatus[];
  let notifications: NotificationStatus;
  let leftovers: Leftovers;
  let fleet: Awaited<ReturnType<typeof fleetStatus>>;
  try {
    // One plan, from the state as recorded (no restic): "due" and "overdue" come from the planner itself, so status
    // and plan never disagree. What dead processes left is found and shown, never repaired here: a status must not
    // change the state (a run it judges dead may be alive on another host sharing it); the next apply or watch does.
    const prepared = await preparePlan(loaded, store, { now, host: hostFor(loaded), offline: true });
    leftovers = prepared.leftovers;
    const due = new Set(prepared.plan.actions.filter((a) => a.type === "backup").map((a) => a.project));
    const overdue = new Set(prepared.plan.overdue.map((o) => o.project));
    const interrupted = new Map(leftovers.interruptedRuns.map((run) => [run.id, run]));
    const runs = await store.projectRuns();
    const counts = await store.snapshotCounts();
    const checks = await store.repositoryChecks();
    const drills = await store.latestDrills();
    // One read of the outbox serves both the per-project counts and the notifications section below.
    const outbox = await store.outbox.outboxOverview(new Date(now.getTime() - undeliverableShownMs).toISOString());
    fleet = await fleetStatus(store, loaded.config, now);
    statuses = Object.values(loaded.config.projects).map((project) => {
      const { lastSuccess } = runs.get(project.name) ?? {};
      const lastRun = asFound(runs.get(project.name)?.lastRun, interrupted);
      const snapshots: ProjectStatus["snapshots"] = {};
      const lastCheck: ProjectStatus["last_check"] = {};
      for (const repository of project.repositories) {
        const row = counts.find((c) => c.repository === repository && c.project === project.name);
        snapshots[repository] = { count: row?.count ?? 0, newest: row?.newest ?? null };
        lastCheck[repository] = checks.get(repository) ?? null;
      }
      const drill = drills.get(project.name);
      // A run cut short is not alarming after a success (the next one repairs it, and maxAge watches the age), but a
      // project whose only runs were cut short has no backup at all.
      const neverSucceeded = !lastSuccess && lastRun?.status === "interrupted";
      const failing = lastRun?.status === "failed" || neverSucceeded || drill?.status === "failed" ||
        Object.values(lastCheck).some((c) => c?.status === "failed");
      const health: ProjectStatus["health"] = !project.enabled
        ? "disabled"
        : overdue.has(project.name)
        ? "overdue"
        : failing
        ? "failing"
        : lastSuccess
        ? "ok"
        : "never";
      return {
        project: project.name,
        enabled: project.enabled,
        health,
        overdue: overdue.has(project.name),
        last_success: lastSuccess?.started_at ?? null,
        last_run: lastRun
          ? { id: lastRun.id, status: lastRun.status, started_at: lastRun.started_at, error: lastRun.error }
          : null,
        due: due.has(project.name),
        next_due: isoSeconds(nextSlot(project.schedule, project.timezone, now)),
        snapshots,
        last_check: lastCheck,
        last_drill: drill ? { at: drill.at, status: drill.status } : null,
        pending_notifications: outbox.pending.filter((n) => n.project === project.name).length,
        ...(fleet ? { ran_by: fleet.lastRunners.get(project.name) ?? null } : {}),
      };
    });
    notifications = {
      pending: outbox.pending.map((row) => ({
        channel: row.channel,
        event: row.event,
        project: row.project,
        created_at: row.created_at,
        attempts: row.attempts,
        next_attempt_at: row.next_attempt_at,
        last_error: row.last_error,
      })),
      undeliverable: outbox.undeliverable.map((row) => ({
        channel: row.channel,
        event: row.event,
        project: row.project,
        created_at: row.created_at,
        given_up_at: row.given_up_at!,
        error: row.last_error,
      })),
    };
  } finally {
    await store.close();
  }
  if (options.json) {
    output.stdout(
      JSON.stringify(
        {
          now: isoSeconds(now),
          state_unwritable: unwritable ?? null,
          leftovers: leftoverStatus(leftovers),
          projects: statuses,
          notifications,
          ...(fleet ? { fleet: fleet.fleet } : {}),
        },
        null,
        2,
      ) + "\n",
    );
    return exitCode(statuses, fleet?.fleet, unwritable);
  }
  const zone = loaded.displayTimeZone ?? machineTimeZone();
  const c = colours(terminalColours());
  output.stdout(renderLeftovers(leftovers, zone, c));
  output.stdout(renderTable(statuses, now, zone, c));
  if (fleet) output.stdout(renderFleet(fleet.fleet, zone, c));
  output.stdout(renderNotifications(notifications, zone, c));
  return exitCode(statuses, fleet?.fleet, unwritable);
}

/** 1 when a project is failing or overdue, a runner is lost, a project unplaced, or the state cannot be written. */
function exitCode(statuses: ProjectStatus[], fleet: FleetStatus | undefined, unwritable: string | undefined): number {
  return unhealthy(statuses) || fleetUnhealthy(fleet) || unwritable !== undefined ? ExitCode.failed : ExitCode.ok;
}

/**
 * The last run as it is: one still marked running whose process is gone was interrupted, though only the next apply
 * or watch records it so.
 */
function asFound<T extends { id: string; status: string; error: string | null }>(
  run: T | undefined,
  interrupted: Map<string, Leftovers["interruptedRuns"][number]>,
): T | undefined {
  const dead = run && interrupted.get(run.id);
  if (!run || !dead) return run;
  const during = dead.stage ? `, during ${dead.stage}` : "";
  return {
    ...run,
    status: "interrupted",
    error: `process gone (pid ${dead.pid}${during}); the next apply or watch records it as interrupted`,
  };
}

function leftoverStatus(leftovers: Leftovers): LeftoverStatus {
  return {
    interrupted_runs: leftovers.interruptedRuns.map((run) => ({
      id: run.id,
      project: run.project,
      stage: run.stage,
      pid: run.pid,
      started_at: run.startedAt,
    })),
    stale_locks: leftovers.staleLocks.map((lock) => ({
      project: lock.project,
      pid: lock.pid,
      since: lock.since,
      run_id: lock.runId,
    })),
    files: leftovers.files,
  };
}

type Colours = ReturnType<typeof colours>;

/** What dead processes left, one line each, before the table; nothing when there is nothing. */
function renderLeftovers(leftovers: Leftovers, zone: string, c: Colours): string {
  const at = (iso: string) => localTime(new Date(iso), zone);
  const lines = [
    ...leftovers.interruptedRuns.map((run) =>
      `  run ${run.id} of ${run.project}: interrupted: process gone (pid ${run.pid}, started ${at(run.startedAt)}${
        run.stage ? `, during ${run.stage}` : ""
      })`
    ),
    ...leftovers.staleLocks.map((lock) =>
      `  lock of ${lock.project}: stale lock: held by pid ${lock.pid} since ${at(lock.since)}, process gone`
    ),
    ...leftovers.files.map((path) => `  ${path}: leftover private folder of a process that is gone`),
  ];
  if (lines.length === 0) return "";
  const title = "leftovers of processes that are gone, repaired by the next apply or watch " +
    "(`backupctl plan` shows how):";
  return `${c.yellow(title)}\n${lines.join("\n")}\n`;
}

function renderNotifications(status: NotificationStatus, zone: string, c: Colours): string {
  const lines: string[] = [];
  const at = (iso: string) => localTime(new Date(iso), zone);
  if (status.pending.length > 0) {
    const tried = status.pending.filter((n) => n.attempts > 0);
    lines.push(
      `notifications: ${status.pending.length} waiting to be sent` +
        (tried.length ? `, ${tried.length} of them failed before` : ""),
    );
    for (const n of tried) {
      lines.push(
        `  ${n.event}${n.project ? ` of ${n.project}` : ""} to ${n.channel}: ${n.attempts} attempt${
          n.attempts === 1 ? "" : "s"
        }, next at ${at(n.next_attempt_at)}; last error: ${n.last_error}`,
      );
    }
  }
  if (status.undeliverable.length > 0) {
    lines.push(c.red(`UNDELIVERABLE notifications (given up in the last 7 days): ${status.undeliverable.length}`));
    for (const n of status.undeliverable) {
      lines.push(
        `  ${n.event}${n.project ? ` of ${n.project}` : ""} to ${n.channel}, created ${at(n.created_at)}, ` +
          `given up ${at(n.given_up_at)}: ${n.error}`,
      );
    }
  }
  return lines.length ? `${lines.join("\n")}\n` : "";
}

/** Exit 1 when an enabled project is failing or overdue: `backupctl status` works as a monitoring probe. */
function unhealthy(statuses: ProjectStatus[]): boolean {
  return statuses.some((s) => s.health === "failing" || s.health === "overdue");
}

const symbols: Record<ProjectStatus["health"], string> = {
  ok: "✓",
  failing: "✗",
  overdue: "!",
  never: "·",
  disabled: "-",
};

function age(iso: string | null | undefined, now: Date): string {
  if (!iso) return "never";
  return `${humanDuration(Math.max(0, now.getTime() - Date.parse(iso)))} ago`;
}

/**
 * One row per project; columns padded to their widest cell; times in `zone` with their offset. On a terminal, the
 * health symbol and the last result are coloured (padding is measured before colouring).
 */
function renderTable(statuses: ProjectStatus[], now: Date, zone: string, c: Colours): string {
  const at = (iso: string) => localTime(new Date(iso), zone);
  const healthPaint: Record<ProjectStatus["health"], (text: string) => string> = {
    ok: c.green,
    failing: c.red,
    overdue: c.red,
    never: c.yellow,
    disabled: c.dim,
  };
  const paints: ((text: string) => string)[][] = [];
  const rows = [[
    " ",
    "PROJECT",
    "LAST SUCCESS",
    "LAST RESULT",
    "NEXT DUE",
    "SNAPSHOTS",
    "LAST CHECK",
    "LAST DRILL",
    "NOTIFY",
  ]];
  // In a fleet, who ran each project last; without one the table stays as it always was.
  const fleet = statuses.some((s) => s.ran_by !== undefined);
  if (fleet) rows[0].splice(4, 0, "RAN BY");
  for (const s of statuses) {
    const snapshots = Object.entries(s.snapshots)
      .map(([repository, x]) => `${repository} ${x.count}${x.newest ? `, newest ${age(x.newest, now)}` : ""}`)
      .join("; ");
    const checks = Object.entries(s.last_check).map(([repository, check]) =>
      `${repository} ${check ? `${check.status} ${age(check.at, now)}` : "never"}`
    ).join(", ");
    const result = s.overdue ? "OVERDUE" : s.last_run ? s.last_run.status : "-";
    const plain = (text: string) => text;
    paints[rows.length] = [
      healthPaint[s.health],
      c.bold,
      plain,
      result === "succeeded" ? c.green : result === "-" ? plain : result === "running" ? c.cyan : c.red,
      plain,
      plain,
      Object.values(s.last_check).some((check) => check?.status === "failed") ? c.red : plain,
      s.last_drill?.status === "failed" ? c.red : plain,
      s.pending_notifications ? c.yellow : plain,
    ];
    if (fleet) paints[rows.length].splice(4, 0, plain);
    rows.push([
      symbols[s.health],
      s.project,
      s.last_success ? `${at(s.last_success)} (${age(s.last_success, now)})` : "never",
      result,
      s.due ? "now" : at(s.next_due),
      snapshots,
      checks,
      s.last_drill ? `${s.last_drill.status} ${age(s.last_drill.at, now)}` : "-",
      s.pending_notifications ? `${s.pending_notifications} pending` : "-",
    ]);
    if (fleet) rows[rows.length - 1].splice(4, 0, s.ran_by ?? "-");
  }
  const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => [...row[column]].length)));
  const lines = rows.map((row, r) =>
    row.map((cell, i) => {
      const padded = cell + " ".repeat(i === row.length - 1 ? 0 : widths[i] - [...cell].length);
      return r === 0 ? c.bold(padded) : (paints[r]?.[i] ?? ((text: string) => text))(padded);
    }).join("  ").trimEnd()
  );
  const failing = statuses.filter((s) => s.health === "failing" || s.health === "overdue");
  const details = failing.flatMap((s) => {
    if (!s.last_run || s.last_run.status === "succeeded") return [];
    const never = s.last_success ? "" : "never succeeded; ";
    const error = s.last_run.error ? `: ${s.last_run.error.split("\n")[0]}` : "";
    return never || error
      ? [c.red(`${s.project}: ${never}last run ${s.last_run.id} ${s.last_run.status}${error}`)]
      : [];
  });
  return `${[...lines, ...(details.length ? ["", ...details] : [])].join("\n")}\n`;
}
