/**
 * `backupctl status`: per project, the last success and its age, the next due time, snapshots per repository; and
 * what dead processes left behind. It repairs nothing and records nothing (opening the state still replays results a
 * crashed process left in fallback.jsonl, as every command does).
 */
import type { Command } from "commander";
import { ExitCode } from "../errors.ts";
import { humanDuration, localTime, machineTimeZone } from "../format/time.ts";
import { colours, terminalColours } from "../plan/render.ts";
import type { Leftovers } from "../plan/types.ts";
import { type GlobalOptions, hostFor, load, openStore, type Output, parseNow } from "./context.ts";
import { type FleetStatus, fleetUnhealthy, renderFleet } from "../status/fleet.ts";
import {
  type NotificationStatus,
  type ProjectStatus,
  statusJson,
  type StatusReport,
  statusReport,
  unhealthy,
} from "../status/report.ts";

export const description =
  "One row per project: health, last success, last result, next due, snapshots, last check and drill; exit 1 when any is failing or overdue";

interface Options extends GlobalOptions {
  json?: boolean;
  now?: string;
}

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
  let report: StatusReport;
  try {
    report = await statusReport(loaded, store, { now, host: hostFor(loaded), drillTrend: true });
  } finally {
    await store.close();
  }
  const { leftovers, projects: statuses, notifications, fleet } = report;
  if (options.json) {
    output.stdout(JSON.stringify(statusJson(report, unwritable), null, 2) + "\n");
    return exitCode(statuses, fleet?.fleet, unwritable);
  }
  const zone = loaded.displayTimeZone ?? machineTimeZone();
  const c = colours(terminalColours());
  output.stdout(renderLeftovers(leftovers, zone, c));
  output.stdout(renderTable(statuses, now, zone, c));
  if (fleet) output.stdout(renderFleet(fleet.fleet, zone, c));
  output.stdout(renderPitr(statuses, zone, c));
  output.stdout(renderDrillTrends(statuses));
  output.stdout(renderNotifications(notifications, zone, c));
  return exitCode(statuses, fleet?.fleet, unwritable);
}

/** 1 when a project is failing or overdue, a runner is lost, a project unplaced, or the state cannot be written. */
function exitCode(statuses: ProjectStatus[], fleet: FleetStatus | undefined, unwritable: string | undefined): number {
  return unhealthy(statuses) || fleetUnhealthy(fleet) || unwritable !== undefined ? ExitCode.failed : ExitCode.ok;
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

/**
 * The pgbackrest() sources, one line each with their newest backup and last archived WAL, then what is wrong: a stale
 * archive, archiving settings that differ from what the stanza needs, what could not be read.
 */
function renderPitr(statuses: ProjectStatus[], zone: string, c: Colours): string {
  const lines: string[] = [];
  const at = (iso: string) => localTime(new Date(iso), zone);
  for (const status of statuses) {
    for (const pitr of status.pitr ?? []) {
      const newest = pitr.newest_backup
        ? `newest backup ${pitr.newest_backup.label} (${pitr.newest_backup.type}, ${at(pitr.newest_backup.stop)})`
        : "no backup yet";
      const archived = pitr.last_archived_wal
        ? `last archived WAL ${pitr.last_archived_wal}${
          pitr.last_archived_at ? ` at ${at(pitr.last_archived_at)}` : ""
        }`
        : "no WAL archived yet";
      lines.push(
        `  ${status.project}/${pitr.source} (stanza ${pitr.stanza}): ${pitr.backups} backups, ${newest}; ${archived}`,
      );
      if (pitr.backup_overdue) lines.push(c.red(`    ✗ overdue: ${pitr.backup_overdue}`));
      if (pitr.archive_stale) lines.push(c.red(`    ✗ archive.stale: ${pitr.archive_stale}`));
      for (const problem of pitr.archive_problems) lines.push(c.yellow(`    ! ${problem}`));
      for (const error of pitr.errors) lines.push(c.red(`    ✗ ${error}`));
    }
  }
  return lines.length > 0 ? `point-in-time recovery (pgBackRest):\n${lines.join("\n")}\n` : "";
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
      s.last_drill?.status === "failed" ? c.red : s.last_drill?.slow ? c.yellow : plain,
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
      s.last_drill ? drillCell(s.last_drill, now) : "-",
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

/** "succeeded 2h ago in 1m 3s", with the objective when there is one: "(RTO 15m)", "(over its RTO 15m)". */
function drillCell(drill: NonNullable<ProjectStatus["last_drill"]>, now: Date): string {
  const took = drill.duration_ms === null ? "" : ` in ${humanDuration(drill.duration_ms)}`;
  const objective = drill.rto === null ? "" : drill.slow ? ` (over its RTO ${drill.rto})` : ` (RTO ${drill.rto})`;
  return `${drill.status} ${age(drill.at, now)}${took}${objective}`;
}

/** The last drills' times per project, oldest first: whether restores are getting slower. Nothing without drills. */
function renderDrillTrends(statuses: ProjectStatus[]): string {
  const time = (d: { status: string; duration_ms: number | null }) =>
    `${d.duration_ms === null ? "?" : humanDuration(d.duration_ms)}${d.status === "failed" ? " (failed)" : ""}`;
  const lines = statuses.flatMap((s) =>
    s.drill_trend && s.drill_trend.length > 1 ? [`  ${s.project}: ${s.drill_trend.map(time).join(" → ")}`] : []
  );
  return lines.length > 0 ? `\ndrill times, the last ones oldest first:\n${lines.join("\n")}\n` : "";
}
