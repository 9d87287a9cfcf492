/**
 * `backupctl history`: runs, newest first, with their stages (duration, bytes, attempt, error tail); filters by
 * project, failure and time; text or JSON.
 */
import type { Command } from "commander";
import { formatBytes } from "../apply/format.ts";
import { parseDuration } from "../config/duration.ts";
import { ExitCode, UsageError } from "../errors.ts";
import { errorTail } from "../notify/message.ts";
import { humanDuration, isoSeconds } from "../plan/time.ts";
import { collect } from "./plan.ts";
import { type GlobalOptions, load, openStore, type Output, parseNow } from "./context.ts";

export const description = "List past runs with their stages: duration, bytes, attempts, errors";

interface Options extends GlobalOptions {
  project?: string[];
  failed?: boolean;
  since?: string;
  limit: string;
  json?: boolean;
  now?: string;
}

export function define(program: Command, output: Output, done: (code: number) => void): void {
  program.command("history").description(description)
    .option("-p, --project <name>", "only this project (repeatable)", collect)
    .option("--failed", "only runs that failed or were interrupted")
    .option("--since <when>", 'only runs started after this: an ISO time, or a duration back from now ("7d", "12h")')
    .option("--limit <n>", "at most this many runs", "20")
    .option("--json", "print JSON")
    .option("--now <iso>", "read --since durations back from this time")
    .action(async (_options, command: Command) => done(await run(command.optsWithGlobals<Options>(), output)));
}

/** `--since`: an ISO time, or a duration back from now. */
export function sinceOption(text: string, now: Date): string {
  const ms = parseDuration(text);
  if (ms !== undefined) return new Date(now.getTime() - ms).toISOString();
  const at = Date.parse(text);
  if (Number.isNaN(at)) {
    throw new UsageError(`--since: expected an ISO time or a duration such as "7d", got "${text}"`);
  }
  return new Date(at).toISOString();
}

export async function run(options: Options, output: Output): Promise<number> {
  const limit = Number(options.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > 100_000) {
    throw new UsageError(`--limit: expected a whole number from 1 to 100000, got "${options.limit}"`);
  }
  const now = parseNow(options.now) ?? new Date();
  const since = options.since === undefined ? undefined : sinceOption(options.since, now);
  const loaded = await load(options);
  // Names are not checked against the config: projects removed from it keep their history.
  const projects = options.project;
  const store = await openStore(options, loaded, "read");
  const entries = await store.history({ projects, failed: options.failed, since, limit }).finally(() => store.close());
  const runs = entries.map(({ run, stages }) => ({
    id: run.id,
    project: run.project,
    status: run.status,
    command: run.command,
    host: run.host,
    started_at: run.started_at,
    finished_at: run.finished_at,
    duration_ms: run.duration_ms,
    stage: run.stage,
    error: run.error,
    stages: stages.map((s) => ({
      type: s.type,
      source: s.source,
      repository: s.repository,
      attempt: s.attempt,
      status: s.status,
      started_at: s.started_at,
      duration_ms: s.duration_ms,
      bytes: s.bytes,
      snapshot_id: s.snapshot_id,
      error: s.error,
    })),
  }));
  if (options.json) {
    output.stdout(`${JSON.stringify(runs, null, 2)}\n`);
    return ExitCode.ok;
  }
  if (runs.length === 0) {
    output.stdout("No runs recorded" + (options.failed || since || projects ? " that match." : " yet.") + "\n");
    return ExitCode.ok;
  }
  const symbol: Record<string, string> = { succeeded: "✓", failed: "✗", interrupted: "!", running: "…" };
  for (const run of runs) {
    const took = run.duration_ms === null ? "" : ` in ${humanDuration(run.duration_ms)}`;
    output.stdout(
      `${symbol[run.status] ?? "?"} ${isoSeconds(new Date(run.started_at))}  ${run.project}  ${run.status}${took}  ` +
        `(${run.id}, ${run.command} on ${run.host})\n`,
    );
    for (const stage of run.stages) {
      const what = [stage.type, stage.source, stage.repository ? `→ ${stage.repository}` : ""].filter(Boolean)
        .join(" ");
      const details = [
        stage.attempt > 1 ? `attempt ${stage.attempt}` : "",
        stage.duration_ms === null ? "" : humanDuration(stage.duration_ms),
        stage.bytes === null ? "" : formatBytes(stage.bytes),
        stage.snapshot_id ? `snapshot ${stage.snapshot_id.slice(0, 8)}` : "",
      ].filter(Boolean).join(", ");
      output.stdout(`    ${symbol[stage.status] ?? stage.status} ${what}${details ? `  (${details})` : ""}\n`);
      if (stage.error && stage.status !== "succeeded") {
        output.stdout(`${errorTail(stage.error, 4, 600).split("\n").map((line) => `        ${line}`).join("\n")}\n`);
      }
    }
  }
  return ExitCode.ok;
}
