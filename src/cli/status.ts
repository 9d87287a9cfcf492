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
      const report = { succeeded: 0, failed: 0, skipped: 0, held: 0, deferred: 0, runs: [] };
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
  } finally {
    await store.close();
  }
  if (options.json) {
    output.stdout(JSON.stringify({ now: isoSeconds(now), recovered, projects: statuses }, null, 2) + "\n");
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
  return ExitCode.ok;
}
