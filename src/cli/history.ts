/**
 * `backupctl history`: the audit, newest first: runs with their stages (duration, bytes read and added, attempt,
 * error tail) and the operations audited without a run (forget, prune, check, restore, drills, init, unlock…);
 * filters by kind, project, failure and time; text (times in the display zone, colour on a terminal) or JSON (UTC).
 */
import type { Command } from "commander";
import { formatBytes } from "../format/bytes.ts";
import { parseDuration } from "../config/duration.ts";
import { ExitCode, UsageError } from "../errors.ts";
import { errorTail } from "../notify/message.ts";
import { colours, terminalColours } from "../plan/render.ts";
import { humanDuration, localTime, machineTimeZone } from "../format/time.ts";
import { type HistoryEntry, runKind } from "../state/store.ts";
import { collect } from "./context.ts";
import { type GlobalOptions, load, openStore, type Output, parseNow } from "./context.ts";

export const description =
  "List past runs with their stages and every other audited operation (forget, prune, check, restore, drills, init, unlock)";

/** The kinds `--kind` takes: runs ("backup") and the stage types audited without a run. */
export const historyKinds = [
  runKind,
  "forget",
  "prune",
  "check",
  "verify",
  "restore",
  "init",
  "unlock",
  "recover",
  "refresh",
  "notify",
] as const;

/** Other names operators use for a kind. */
const kindAliases: Record<string, string> = { drill: "verify", run: runKind };

interface Options extends GlobalOptions {
  project?: string[];
  failed?: boolean;
  since?: string;
  kind?: string[];
  runner?: string;
  limit: string;
  json?: boolean;
  now?: string;
}

export function define(program: Command, output: Output, done: (code: number) => void): void {
  program.command("history").description(description)
    .option("-p, --project <name>", "only this project (repeatable)", collect)
    .option(
      "--kind <kinds>",
      `only these kinds, comma-separated or repeated: ${historyKinds.join(", ")} (backup: the runs; drill = verify)`,
      collect,
    )
    .option("--failed", "only runs and operations that failed or were interrupted")
    .option("--runner <name>", "only runs made by this fleet runner (operations without a run are left out)")
    .option("--since <when>", 'only runs started after this: an ISO time, or a duration back from now ("7d", "12h")')
    .option("--limit <n>", "at most this many entries (runs and operations)", "20")
    .option("--json", "print JSON")
    .option("--now <iso>", "read --since durations back from this time")
    .action(async (_options, command: Command) => done(await run(command.optsWithGlobals<Options>(), output)));
}

/** `--kind`: comma-separated and repeatable; each a known kind or an alias of one. */
export function kindsOption(values: string[] | undefined): string[] | undefined {
  if (!values) return undefined;
  const kinds = values.flatMap((value) => value.split(",")).map((kind) => kind.trim().toLowerCase()).filter(Boolean);
  const unknown = kinds.filter((kind) => !(kind in kindAliases) && !(historyKinds as readonly string[]).includes(kind));
  if (unknown.length > 0 || kinds.length === 0) {
    throw new UsageError(
      `--kind: unknown kind${unknown.length === 1 ? "" : "s"} ${unknown.map((k) => `"${k}"`).join(", ") || '""'}; ` +
        `expected one or more of ${historyKinds.join(", ")} (comma-separated)`,
    );
  }
  return [...new Set(kinds.map((kind) => kindAliases[kind] ?? kind))];
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
  const kinds = kindsOption(options.kind);
  const now = parseNow(options.now) ?? new Date();
  const since = options.since === undefined ? undefined : sinceOption(options.since, now);
  const loaded = await load(options);
  // Names are not checked against the config: projects removed from it keep their history.
  const projects = options.project;
  const store = await openStore(options, loaded, "read");
  const entries = await store.history({ projects, failed: options.failed, since, kinds, runner: options.runner, limit })
    .finally(() => store.close());
  const listed = entries.map(toJson);
  if (options.json) {
    output.stdout(`${JSON.stringify(listed, null, 2)}\n`);
    return ExitCode.ok;
  }
  if (listed.length === 0) {
    const filtered = options.failed || since || projects || kinds || options.runner !== undefined;
    output.stdout(`Nothing recorded${filtered ? " that matches." : " yet."}\n`);
    return ExitCode.ok;
  }
  output.stdout(renderHistory(listed, loaded.displayTimeZone ?? machineTimeZone(), colours(terminalColours())));
  return ExitCode.ok;
}

type Stage = HistoryEntry["stages"][number];

function stageJson(s: Stage) {
  return {
    type: s.type,
    source: s.source,
    repository: s.repository,
    attempt: s.attempt,
    status: s.status,
    started_at: s.started_at,
    duration_ms: s.duration_ms,
    bytes: s.bytes,
    bytes_added: s.bytes_added,
    snapshot_id: s.snapshot_id,
    error: s.error,
    note: s.note,
  };
}

/**
 * One entry of `history --json`, the same keys for every kind: a run (kind "backup") with its stages, or an operation
 * audited without a run (`id`, `command`, `host` and `runner` null; its one stage in `stages`). `runner`: the fleet
 * runner that made a run, null outside a fleet. Times in UTC.
 */
export type HistoryJson = ReturnType<typeof toJson>;

function toJson({ kind, run, stages }: HistoryEntry) {
  if (run) {
    return {
      kind,
      id: run.id as string | null,
      project: run.project as string | null,
      status: run.status as string,
      command: run.command as string | null,
      host: run.host as string | null,
      runner: run.runner as string | null,
      started_at: run.started_at,
      finished_at: run.finished_at,
      duration_ms: run.duration_ms,
      stage: run.stage,
      error: run.error,
      stages: stages.map(stageJson),
    };
  }
  const [stage] = stages;
  return {
    kind,
    id: null,
    project: stage.project,
    status: stage.status,
    command: null,
    host: null,
    runner: null,
    started_at: stage.started_at,
    finished_at: stage.finished_at,
    duration_ms: stage.duration_ms,
    stage: null,
    error: stage.error,
    stages: [stageJson(stage)],
  };
}

const symbols: Record<string, string> = {
  succeeded: "✓",
  failed: "✗",
  interrupted: "!",
  running: "…",
  skipped: "-",
};

/** The text form: one line per run or operation, a run's stages below it, errors' last lines indented. */
export function renderHistory(entries: HistoryJson[], timeZone: string, c = colours(false)): string {
  const paint = (status: string) =>
    status === "succeeded" ? c.green : status === "failed" ? c.red : status === "running" ? c.cyan : c.yellow;
  const lines: string[] = [];
  const errorLines = (error: string | null, status: string, indent: string) => {
    if (!error || status === "succeeded") return;
    for (const line of errorTail(error, 4, 600).split("\n")) lines.push(c.red(`${indent}${line}`));
  };
  for (const entry of entries) {
    const symbol = paint(entry.status)(symbols[entry.status] ?? "?");
    const when = localTime(new Date(entry.started_at), timeZone);
    const took = entry.duration_ms === null ? "" : ` in ${humanDuration(entry.duration_ms)}`;
    const status = `${paint(entry.status)(entry.status)}${took}`;
    if (entry.id !== null) {
      lines.push(
        `${symbol} ${when}  ${c.bold(entry.project ?? "")}  ${status}  ${
          c.dim(`(${entry.id}, ${entry.command} on ${entry.host}${entry.runner ? `, runner ${entry.runner}` : ""})`)
        }`,
      );
      for (const stage of entry.stages) {
        const what = [stage.type, stage.source, stage.repository ? `→ ${stage.repository}` : ""].filter(Boolean)
          .join(" ");
        const details = stageDetails(stage, true);
        lines.push(
          `    ${paint(stage.status)(symbols[stage.status] ?? stage.status)} ${what}${
            details ? `  ${c.dim(`(${details})`)}` : ""
          }`,
        );
        errorLines(stage.error, stage.status, "        ");
      }
    } else {
      const [stage] = entry.stages;
      const details = stageDetails(stage, false);
      lines.push(
        `${symbol} ${when}  ${c.bold(operation({ ...stage, project: entry.project }))}  ${status}${
          details ? `  ${c.dim(`(${details})`)}` : ""
        }`,
      );
      errorLines(stage.error, stage.status, "    ");
    }
  }
  return `${lines.join("\n")}\n`;
}

/** An operation as a phrase: "forget demo/app in local", "prune local", "restore demo/db from offsite". */
function operation(stage: HistoryJson["stages"][number] & { project?: string | null }): string {
  const subject = [stage.project, stage.source].filter(Boolean).join("/");
  switch (stage.type) {
    case "restore":
    case "verify":
      return [stage.type, subject, stage.repository ? `from ${stage.repository}` : ""].filter(Boolean).join(" ");
    case "notify":
      // A notification given up: source holds the event, repository the channel.
      return `notify ${stage.source ?? ""} to ${stage.repository ?? ""}${stage.project ? ` (${stage.project})` : ""}`;
    default:
      return [stage.type, subject, stage.repository ? `${subject ? "in " : ""}${stage.repository}` : ""]
        .filter(Boolean).join(" ");
  }
}

function stageDetails(stage: HistoryJson["stages"][number], withDuration: boolean): string {
  const read = stage.type === "restore" ? "restored" : "read";
  return [
    stage.attempt > 1 ? `attempt ${stage.attempt}` : "",
    withDuration && stage.duration_ms !== null ? humanDuration(stage.duration_ms) : "",
    stage.bytes === null ? "" : `${formatBytes(stage.bytes)} ${read}`,
    stage.bytes_added === null ? "" : `${formatBytes(stage.bytes_added)} added`,
    stage.snapshot_id ? `snapshot ${stage.snapshot_id.slice(0, 8)}` : "",
  ].filter(Boolean).join(", ");
}
