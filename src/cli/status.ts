/** `backupctl status`: per project, the last success and its age, the next due time, snapshots per repository. */
import type { Command } from "commander";
import { nextSlot } from "../config/schedule.ts";
import { plan } from "../plan/planner.ts";
import { ExitCode } from "../errors.ts";
import { humanDuration, isoSeconds } from "../plan/time.ts";
import { type GlobalOptions, hostFor, load, openStore, type Output, parseNow } from "./context.ts";
import { applyRecovery } from "../apply/executor.ts";
import { findLeftovers } from "../apply/recovery.ts";
import { createClock } from "../clock.ts";

export const description = "Show per project: last success, next due time, snapshots per repository";

interface Options extends GlobalOptions {
  json?: boolean;
  now?: string;
}

export interface ProjectStatus {
  project: string;
  enabled: boolean;
  last_success: string | null;
  last_run: { id: string; status: string; started_at: string; error: string | null } | null;
  /** True when plan would back up one of its sources now. */
  due: boolean;
  next_due: string;
  snapshots: Record<string, { count: number; newest: string | null }>;
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
  const store = await openStore(options, loaded);
  let statuses: ProjectStatus[];
  let notifications: NotificationStatus;
  const recovered: string[] = [];
  try {
    // Startup recovery's local part: runs of dead processes, their locks and private folders. Restic's part (stale
    // restic locks, partial snapshots) needs the repositories: `plan` shows it and `apply` does it.
    const host = hostFor(loaded);
    const findings = await findLeftovers(store, host);
    const observed = await store.observe({ deadRuns: findings.deadRuns });
    observed.leftovers = findings.leftovers;
    const local = plan(loaded, observed, now, { generatedAt: now }).actions
      .filter((a) => a.type === "recover" && ["interrupted_run", "stale_lock", "leftover_files"].includes(a.recover!));
    if (local.length > 0) {
      const report = { succeeded: 0, failed: 0, skipped: 0, held: 0, runs: [] };
      const ctx = {
        loaded,
        store,
        host,
        clock: createClock(parseNow(options.now)),
        out: (l: string) => recovered.push(l),
      };
      await applyRecovery(local, ctx, report);
    }
    const runs = await store.projectRuns();
    const counts = await store.snapshotCounts();
    // "Due" comes from the planner itself, so status and plan never disagree.
    const planned = plan(loaded, await store.observe(), now, { generatedAt: now });
    const due = new Set(planned.actions.filter((a) => a.type === "backup").map((a) => a.project));
    statuses = Object.values(loaded.config.projects).map((project) => {
      const { lastRun, lastSuccess } = runs.get(project.name) ?? {};
      const snapshots: ProjectStatus["snapshots"] = {};
      for (const repository of project.repositories) {
        const row = counts.find((c) => c.repository === repository && c.project === project.name);
        snapshots[repository] = { count: row?.count ?? 0, newest: row?.newest ?? null };
      }
      return {
        project: project.name,
        enabled: project.enabled,
        last_success: lastSuccess?.started_at ?? null,
        last_run: lastRun
          ? { id: lastRun.id, status: lastRun.status, started_at: lastRun.started_at, error: lastRun.error }
          : null,
        due: due.has(project.name),
        next_due: isoSeconds(nextSlot(project.schedule, project.timezone, now)),
        snapshots,
      };
    });
    const outbox = await store.outboxOverview(new Date(now.getTime() - undeliverableShownMs).toISOString());
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
      JSON.stringify({ now: isoSeconds(now), recovered, projects: statuses, notifications }, null, 2) + "\n",
    );
    return ExitCode.ok;
  }
  for (const line of recovered) output.stdout(`${line}\n`);
  for (const status of statuses) {
    const age = status.last_success ? ` (${humanDuration(now.getTime() - Date.parse(status.last_success))} ago)` : "";
    const last = status.last_run && status.last_run.status !== "succeeded"
      ? `\n  last run:     ${status.last_run.status} at ${status.last_run.started_at} (${status.last_run.id})`
      : "";
    const snapshots = Object.entries(status.snapshots)
      .map(([repository, s]) =>
        `${repository}: ${s.count}${s.newest ? `, newest ${isoSeconds(new Date(s.newest))}` : ""}`
      )
      .join("; ");
    output.stdout(
      `${status.project}${status.enabled ? "" : " (disabled)"}\n` +
        `  last success: ${
          status.last_success ? `${isoSeconds(new Date(status.last_success))}${age}` : "never"
        }${last}\n` +
        `  next due:     ${status.due ? "now (backup due)" : status.next_due}\n` +
        `  snapshots:    ${snapshots}\n`,
    );
  }
  output.stdout(renderNotifications(notifications));
  return ExitCode.ok;
}

function renderNotifications(status: NotificationStatus): string {
  const lines: string[] = [];
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
        }, next at ${n.next_attempt_at}; last error: ${n.last_error}`,
      );
    }
  }
  if (status.undeliverable.length > 0) {
    lines.push(`UNDELIVERABLE notifications (given up in the last 7 days): ${status.undeliverable.length}`);
    for (const n of status.undeliverable) {
      lines.push(
        `  ${n.event}${n.project ? ` of ${n.project}` : ""} to ${n.channel}, created ${n.created_at}, ` +
          `given up ${n.given_up_at}: ${n.error}`,
      );
    }
  }
  return lines.length ? `${lines.join("\n")}\n` : "";
}
