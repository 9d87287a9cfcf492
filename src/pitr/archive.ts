/**
 * WAL archiving health, read from the cluster itself: archive_mode, archive_command and wal_level, and
 * `pg_stat_archiver` (the last segment archived and when, the failures). backupctl never edits postgresql.conf: it
 * prints the lines to add (`requiredSettings`) and says what differs from them (`settingsProblems`), and tells an
 * archive older than the source's RPO (`staleArchive`).
 */
import type { PostgresSource } from "../config/types.ts";
import { ExecError } from "../errors.ts";
import { transientOutput } from "../exec/failure.ts";
import { run } from "../exec/run.ts";
import { isoSeconds } from "../format/time.ts";
import { dbnameArgument, postgresClient } from "../sources/postgres.ts";
import type { SourceContext } from "../sources/types.ts";
import type { ArchiveStatus, PitrCluster } from "./types.ts";

/** The cluster as the database client of src/sources/postgres.ts sees it. */
export function clusterTarget(cluster: PitrCluster, database = cluster.database): PostgresSource & { name: string } {
  return {
    type: "postgres",
    name: "pitr-cluster",
    host: cluster.host,
    port: cluster.port,
    user: cluster.user,
    database,
    password: cluster.password,
  };
}

/** Runs one SQL statement with psql (tuples only, unaligned) and returns its output; throws an ExecError. */
export async function psqlQuery(cluster: PitrCluster, sql: string, context: SourceContext): Promise<string> {
  const target = clusterTarget(cluster);
  const client = postgresClient(target, context);
  try {
    const result = await run(
      [
        "psql",
        "--no-psqlrc",
        "--no-password",
        "--no-align",
        "--tuples-only",
        "--set=ON_ERROR_STOP=1",
        ...client.args,
        `--dbname=${dbnameArgument(target.database)}`,
        "--command",
        sql,
      ],
      { env: client.env, timeoutMs: 60_000 },
    );
    if (result.code !== 0) {
      throw new ExecError("psql", result.code, result.stderrTail, undefined, transientOutput(result.stderr));
    }
    return result.stdout;
  } finally {
    client.cleanup();
  }
}

/**
 * One row, as JSON so that an archive_command holding any character comes back whole. `current_wal`: the segment
 * holding the last WAL record inserted. Right after a segment switch the insert position sits just past the new
 * segment's 40-byte header with nothing written there; 40 bytes back, pg_walfile_name (which names the segment before
 * a boundary) gives the segment just ended, so an idle server whose last segment was archived has none pending.
 * (`pg_lsn - numeric` needs PostgreSQL 14.)
 */
const statusSql = `SELECT row_to_json(s) FROM (
  SELECT current_setting('archive_mode') AS archive_mode,
         current_setting('archive_command') AS archive_command,
         current_setting('wal_level') AS wal_level,
         a.last_archived_wal, a.last_archived_time, a.failed_count, a.last_failed_wal, a.last_failed_time,
         CASE WHEN pg_is_in_recovery() THEN NULL
              ELSE pg_walfile_name(pg_current_wal_insert_lsn() - 40) END AS current_wal
  FROM pg_stat_archiver a) s`;

function dateOrNull(value: unknown): Date | null {
  return typeof value === "string" ? new Date(value) : null;
}

function textOrNull(value: unknown): string | null {
  return typeof value === "string" && value !== "" ? value : null;
}

/**
 * The WAL segment an archived file belongs to: a segment's own name, or the segment of a backup history file
 * (`…05.00000028.backup`, archived when a backup ends that segment); null for a timeline history file.
 */
function segmentOf(archived: string | null): string | null {
  const match = archived === null ? null : /^[0-9A-F]{24}/.exec(archived);
  return match ? match[0] : null;
}

/** The cluster's archiving settings and `pg_stat_archiver`. */
export async function archiveStatus(cluster: PitrCluster, context: SourceContext): Promise<ArchiveStatus> {
  const row = JSON.parse((await psqlQuery(cluster, statusSql, context)).trim()) as Record<string, unknown>;
  const lastArchivedWal = textOrNull(row.last_archived_wal);
  const currentWal = textOrNull(row.current_wal);
  return {
    archiveMode: String(row.archive_mode),
    archiveCommand: String(row.archive_command),
    walLevel: String(row.wal_level),
    lastArchivedWal,
    lastArchivedAt: dateOrNull(row.last_archived_time),
    failedCount: Number(row.failed_count ?? 0),
    lastFailedWal: textOrNull(row.last_failed_wal),
    lastFailedAt: dateOrNull(row.last_failed_time),
    currentWal,
    pendingWal: currentWal !== null && currentWal !== segmentOf(lastArchivedWal),
  };
}

/** A postgresql.conf string literal. */
function confString(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

/**
 * The postgresql.conf lines archiving into the stanza needs (printed for the operator, never written). archive_timeout
 * forces a segment switch on a quiet server, so the archive is never older than the RPO allows: half of it, at
 * least a minute.
 */
export function requiredSettings(options: { archiveCommand: string; rpoMs?: number }): string[] {
  const timeoutSeconds = Math.max(60, Math.floor((options.rpoMs ?? 120_000) / 2 / 1000));
  return [
    "wal_level = replica",
    "archive_mode = on",
    `archive_command = ${confString(options.archiveCommand)}`,
    `archive_timeout = ${timeoutSeconds}`,
  ];
}

/** What in the cluster's archiving differs from what the stanza needs; empty when archiving is set up right. */
export function settingsProblems(status: ArchiveStatus, expected: { archiveCommand: string }): string[] {
  const problems: string[] = [];
  if (status.walLevel === "minimal") {
    problems.push("wal_level is minimal: set wal_level = replica (a restart is needed)");
  }
  if (status.archiveMode !== "on" && status.archiveMode !== "always") {
    problems.push(`archive_mode is ${status.archiveMode}: set archive_mode = on (a restart is needed)`);
  }
  if (status.archiveCommand.trim() !== expected.archiveCommand) {
    problems.push(
      `archive_command is ${status.archiveCommand.trim() === "" ? "empty" : confString(status.archiveCommand)}, not ${
        confString(expected.archiveCommand)
      }: set it and reload (SELECT pg_reload_conf())`,
    );
  }
  if (
    status.lastFailedAt !== null &&
    (status.lastArchivedAt === null || status.lastFailedAt.getTime() > status.lastArchivedAt.getTime())
  ) {
    problems.push(
      `archiving fails: ${status.lastFailedWal ?? "a segment"} failed at ${isoSeconds(status.lastFailedAt)} ` +
        `(${status.failedCount} failure${status.failedCount === 1 ? "" : "s"} so far); see the server log for ` +
        "archive_command's error",
    );
  }
  return problems;
}

/**
 * Why the archive is older than `rpoMs` at `now`, or undefined when it is not: WAL is waiting to be archived and the
 * last segment was archived longer ago than the RPO (or never). A quiet server whose WAL is all archived is not stale,
 * however long ago that was.
 */
export function staleArchive(status: ArchiveStatus, rpoMs: number, now: Date): string | undefined {
  if (!status.pendingWal) return undefined;
  if (status.lastArchivedAt === null) {
    return `no WAL segment has been archived yet, and ${status.currentWal ?? "WAL"} is waiting`;
  }
  const ageMs = now.getTime() - status.lastArchivedAt.getTime();
  if (ageMs <= rpoMs) return undefined;
  return `the last archived WAL segment (${status.lastArchivedWal}) is from ${isoSeconds(status.lastArchivedAt)}, ` +
    `${Math.round(ageMs / 60_000)} min ago, more than the RPO of ${Math.round(rpoMs / 60_000)} min, and ` +
    `${status.currentWal} is waiting to be archived`;
}
