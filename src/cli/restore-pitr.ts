/**
 * `backupctl restore PROJECT --source S --to-time T --into-cluster DIR [--port N] [--print-commands]`: the
 * point-in-time restore of a pgbackrest() source (src/pitr/restore-to-time.ts) into a new data directory, left running
 * on a loopback port for inspection, audited as a `restore` stage; or, with --print-commands, only the commands of the
 * same restore, printed. Reached from cli/restore.ts when --to-time or --into-cluster is given.
 */
import type { LoadedConfig } from "../config/load.ts";
import type { NormalizedProject } from "../config/normalize.ts";
import { runStage } from "../apply/stage.ts";
import { type Clock, createClock } from "../clock.ts";
import { ExitCode, StoppedError, UsageError } from "../errors.ts";
import { humanDuration, isoSeconds } from "../format/time.ts";
import { freeLoopbackPort } from "../pitr/cluster.ts";
import { pgBackRestRetention } from "../pitr/retention.ts";
import { checkIntoDirectory, parseTargetTime, restoreCommands, restoreToTime } from "../pitr/restore-to-time.ts";
import { pitrSourcesOf, preparePgBackRest } from "../pitr/stanza.ts";
import type { PgBackRestSource } from "../pitr/types.ts";
import { handleStopSignals, stopRequested } from "../runtime/shutdown.ts";
import type { StateStore } from "../state/store.ts";
import {
  declaredProject,
  fromInvocationDir,
  type GlobalOptions,
  load,
  openStore,
  type Output,
  parseNow,
} from "./context.ts";

export interface PitrRestoreOptions extends GlobalOptions {
  source?: string;
  toTime?: string;
  intoCluster?: string;
  port?: string;
  printCommands?: boolean;
  now?: string;
  /** Options of the other restores, refused with these. */
  to?: string;
  intoDatabase?: boolean;
  snapshot?: string;
}

/** The stage's `repository` column for a pgBackRest stanza (its repository is pgBackRest's, not a declared one). */
export function stanzaRepository(source: PgBackRestSource): string {
  return `pgbackrest:${source.stanza}`;
}

/** --port N: a TCP port from 1 to 65535. */
function parsePort(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const port = Number(text);
  if (!/^\d+$/.test(text) || port < 1 || port > 65535) {
    throw new UsageError(`--port: expected a TCP port from 1 to 65535, got "${text}"`);
  }
  return port;
}

/** Checks the options of a point-in-time restore before anything is loaded; returns the two it needs. */
function checkOptions(options: PitrRestoreOptions): { toTime: string; intoCluster: string } {
  const { toTime, intoCluster } = options;
  if (toTime === undefined || intoCluster === undefined) {
    throw new UsageError(
      "a point-in-time restore needs both --to-time TIME|latest and --into-cluster DIR (a new data directory)",
    );
  }
  if (options.to !== undefined || options.intoDatabase) {
    throw new UsageError("--to-time restores into a new cluster: drop --to and --into-database");
  }
  if (options.snapshot !== undefined && options.snapshot !== "latest") {
    throw new UsageError("--to-time chooses the backup itself: drop --snapshot");
  }
  return { toTime, intoCluster };
}

/** The pgbackrest() source of the project the restore is for: the one named, or the only one. */
export function pitrSource(project: NormalizedProject, name: string | undefined): PgBackRestSource {
  const sources = pitrSourcesOf(project);
  if (name !== undefined) {
    const found = sources.find((s) => s.name === name);
    if (found) return found;
    const other = project.sources.find((s) => s.name === name);
    throw new UsageError(
      other
        ? `--to-time restores a pgbackrest() source, and ${name} is a ${other.type} source: restore it with --to or ` +
          "--into-database"
        : `project ${project.name} has no pgbackrest() source "${name}"${
          sources.length > 0 ? `; its pgbackrest() sources: ${sources.map((s) => s.name).join(", ")}` : ""
        }`,
    );
  }
  if (sources.length === 1) return sources[0];
  throw new UsageError(
    sources.length === 0
      ? `project ${project.name} has no pgbackrest() source to restore to a point in time`
      : `project ${project.name} has several pgbackrest() sources: choose one with --source (${
        sources.map((s) => s.name).join(", ")
      })`,
  );
}

export async function runPitrRestore(
  projectName: string,
  options: PitrRestoreOptions,
  output: Output,
): Promise<number> {
  const { toTime, intoCluster } = checkOptions(options);
  const target = parseTargetTime(toTime);
  const port = parsePort(options.port);
  const clock = createClock(parseNow(options.now));
  handleStopSignals();
  const loaded = await load(options);
  const project = declaredProject(loaded, projectName);
  const source = pitrSource(project, options.source);
  const into = fromInvocationDir(intoCluster);
  checkIntoDirectory(into, source);
  const pgbackrest = await preparePgBackRest(source, {
    configDir: loaded.dir,
    retention: pgBackRestRetention(project.retention, source.schedule.full, project.timezone),
  });
  if (options.printCommands) {
    const shown = port ?? await freeLoopbackPort();
    output.stdout(`# ${projectName}/${source.name}: stanza ${source.stanza}\n`);
    output.stdout(`${restoreCommands({ source, pgbackrest, target, into, port: shown }).join("\n")}\n`);
    return ExitCode.ok;
  }
  const store = await openStore(options, loaded);
  try {
    return await restoreAudited({ loaded, store, clock }, project, source, { pgbackrest, target, into, port }, output);
  } finally {
    await store.close();
  }
}

async function restoreAudited(
  ctx: { loaded: LoadedConfig; store: StateStore; clock: Clock },
  project: NormalizedProject,
  source: PgBackRestSource,
  request: Omit<Parameters<typeof restoreToTime>[0], "source" | "context">,
  output: Output,
): Promise<number> {
  const context = { configDir: ctx.loaded.dir, privateDir: ctx.store.privateDir };
  const when = request.target === "latest" ? "the end of the archive" : isoSeconds(request.target);
  const outcome = await runStage(
    ctx,
    {
      runId: null,
      type: "restore",
      project: project.name,
      source: source.name,
      repository: stanzaRepository(source),
    },
    async () => {
      const restored = await restoreToTime({ ...request, source, context });
      return {
        value: restored,
        snapshotId: restored.backup,
        note: `point in time: ${when}, into the new cluster ${request.into} on port ${restored.port}`,
      };
    },
    { describe: (error) => `to ${when}: ${error instanceof Error ? error.message : String(error)}` },
  );
  if (!outcome.ok) {
    const stopped = stopRequested();
    if (stopped) throw new StoppedError(stopped);
    output.stderr(`point-in-time restore of ${project.name}/${source.name} failed\n`);
    throw outcome.cause;
  }
  const restored = outcome.value;
  const user = source.cluster.user ?? "postgres";
  output.stdout(
    `restored ${project.name}/${source.name} (stanza ${source.stanza}, backup ${restored.backup}) to ${when} into ` +
      `${restored.dataDirectory} in ${humanDuration(outcome.durationMs)}\n` +
      `it runs on 127.0.0.1:${restored.port}: psql -h ${restored.socketDir} -p ${restored.port} -U ${user} ` +
      `${source.cluster.database}\n` +
      `stop it with: ${restored.stopCommand}\n`,
  );
  return ExitCode.ok;
}
