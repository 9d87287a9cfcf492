/**
 * The drill of a pgbackrest() source: the stanza restored to the end of its archive (its most recent restorable
 * time) into a scratch data directory, started on a free loopback port, the project's check query run against it,
 * then stopped and removed, on every path: a failure, SIGINT/SIGTERM (the clean-up runs as the drill unwinds), and an
 * exit before that (an exit handler stops the server at once and removes the folder). The measured RTO is the time
 * from the start of the restore to the check query's answer. pitr-plan's executor runs it for a verify action of a
 * pgbackrest source; apply/actions/verify.ts audits it as the other drills.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { environmentError } from "../environment-errors.ts";
import { SourceError } from "../errors.ts";
import { handOver } from "./run-as.ts";
import { onProcessEnd } from "../runtime/process-end.ts";
import type { SourceContext } from "../sources/types.ts";
import { psqlQuery } from "./archive.ts";
import { stopServerNow } from "./cluster.ts";
import type { PgBackRest } from "./pgbackrest.ts";
import { type RestoredCluster, restoreToTime } from "./restore-to-time.ts";
import { pitrConfigDir, pitrSourcesOf, preparePgBackRest } from "./stanza.ts";
import { pgBackRestRetention } from "./retention.ts";
import type { NormalizedProject } from "../config/normalize.ts";
import { formatBytes } from "../format/bytes.ts";
import { humanDuration, isoSeconds } from "../format/time.ts";
import type { PgBackRestSource } from "./types.ts";

export interface PitrDrillResult {
  source: string;
  kind: "pitr";
  stanza: string;
  /** The backup restored from (pgBackRest's label). */
  backup: string;
  /** The last transaction the restored copy replayed: how recent the drill's restore was. */
  recoveredTo: Date | null;
  /** From the start of the restore to the check query's answer. */
  rtoMs: number;
  /** How long pgBackRest's restore and the recovery took. */
  restoreMs: number;
  /** The restored cluster's size in bytes (pg_database_size of every database). */
  bytes: number;
  /** What the check query counted, when there is one. */
  rows?: number;
}

export interface PitrDrillOptions {
  pgbackrest: PgBackRest;
  context: SourceContext;
  /** The project's check query (verify.check), run in the source's database of the restored copy. */
  check?: string;
  /** The fewest rows the check query must return (default 1). */
  minRows?: number;
  /** Where the scratch data directory is made (default: the source's pgBackRest folder, which the cluster's user owns). */
  scratchParent?: string;
}

/** Scratch folders of drills still running, removed by the exit handler if their drill could not. */
const scratch = new Set<string>();
let exitHandler = false;

function track(dir: string): void {
  scratch.add(dir);
  if (exitHandler) return;
  exitHandler = true;
  onProcessEnd(() => {
    for (const folder of scratch) {
      stopServerNow(folder);
      rmSync(folder, { recursive: true, force: true });
    }
  });
}

/** Runs a query in the restored copy and returns its single trimmed answer. */
async function answer(cluster: RestoredCluster, sql: string, context: SourceContext): Promise<string> {
  return (await psqlQuery(cluster.connection, sql, context)).trim();
}

export async function pitrDrill(source: PgBackRestSource, options: PitrDrillOptions): Promise<PitrDrillResult> {
  const parent = options.scratchParent ?? pitrConfigDir(source);
  let dir: string;
  try {
    dir = mkdtempSync(join(parent, `drill-${process.pid}-`));
  } catch (error) {
    throw environmentError(error, "cannot make the drill's scratch folder in", parent) ?? error;
  }
  track(dir);
  let cluster: RestoredCluster | undefined;
  try {
    handOver(dir, options.pgbackrest.runAs);
    const started = Date.now();
    const into = join(dir, "data");
    cluster = await restoreToTime({
      source,
      pgbackrest: options.pgbackrest,
      target: "latest",
      into,
      // The scratch folder rather than the data directory: a socket path must stay under 108 bytes.
      socketDir: dir,
      context: options.context,
      // The socket is in the scratch folder (0700, the cluster user's): trusting it lets the check query in whatever
      // the production cluster's authentication is, and nobody else.
      trustSocket: true,
    });
    const database = source.cluster.database;
    const result: PitrDrillResult = {
      source: source.name,
      kind: "pitr",
      stanza: source.stanza,
      backup: cluster.backup,
      recoveredTo: null,
      rtoMs: 0,
      restoreMs: cluster.restoreMs,
      bytes: 0,
    };
    if (options.check) {
      const { checkQuery } = await import("../restore/targets.ts");
      result.rows = await checkQuery(
        { type: "postgres", host: cluster.socketDir, port: cluster.port, user: cluster.connection.user, database },
        options.check,
        options.context,
      );
    }
    result.rtoMs = Date.now() - started;
    const replayed = await answer(
      cluster,
      "SELECT extract(epoch FROM pg_last_xact_replay_timestamp())",
      options.context,
    );
    result.recoveredTo = replayed === "" ? null : new Date(Number(replayed) * 1000);
    result.bytes = Number(await answer(cluster, "SELECT sum(pg_database_size(oid)) FROM pg_database", options.context));
    const minRows = options.minRows ?? 1;
    if (result.rows !== undefined && result.rows < minRows) {
      throw new SourceError(
        `the check query returned ${result.rows} row${result.rows === 1 ? "" : "s"}, expected at least ${minRows}: ` +
          `stanza ${source.stanza} restored (backup ${cluster.backup} and its WAL), but its data is not what the ` +
          "drill expects",
      );
    }
    return result;
  } finally {
    await cluster?.stop().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
    scratch.delete(dir);
  }
}

/**
 * The pgbackrest() source a project's drill restores: the one `verify.source` names; else, for a project without
 * restic sources, its first one; else none (the drill is restic's: restore/drill.ts).
 */
export function pitrDrillSource(project: NormalizedProject): PgBackRestSource | undefined {
  const spec = project.verify;
  if (!spec) return undefined;
  const sources = pitrSourcesOf(project);
  if (spec.source !== undefined) return sources.find((s) => s.name === spec.source);
  return project.sources.length === 0 ? sources[0] : undefined;
}

/** A project's PITR drill with its `verify` settings: what apply's verify action and `backupctl verify` run. */
export async function projectPitrDrill(
  project: NormalizedProject,
  source: PgBackRestSource,
  context: SourceContext,
): Promise<PitrDrillResult> {
  const pgbackrest = await preparePgBackRest(source, {
    configDir: context.configDir,
    retention: pgBackRestRetention(project.retention, source.schedule.full, project.timezone),
  });
  return await pitrDrill(source, {
    pgbackrest,
    context,
    check: project.verify?.check,
    minRows: project.verify?.expect?.minRows,
  });
}

/** What a PITR drill restored and checked, in words: the audit's note and the evidence report's line. */
export function pitrDrillNote(result: PitrDrillResult, minRows = 1): string {
  const recovered = result.recoveredTo ? ` (last transaction ${isoSeconds(result.recoveredTo)})` : "";
  const restored = `restored stanza ${result.stanza} to the end of its archive${recovered} from backup ` +
    `${result.backup} (${formatBytes(result.bytes)}) into a scratch cluster in ${humanDuration(result.restoreMs)}; ` +
    `RTO ${humanDuration(result.rtoMs)}`;
  if (result.rows === undefined) return `${restored}; no check query`;
  return `${restored}; check query found ${result.rows} (at least ${minRows} expected)`;
}
