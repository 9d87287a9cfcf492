/**
 * Restore to a point in time (`backupctl restore P --source S --to-time T --into-cluster DIR`): a stanza's backup and
 * WAL restored into a NEW data directory (never the live cluster's, never a folder holding anything), recovered to the
 * moment (or to the end of the archive with `latest`), then started on a loopback port for inspection (cluster.ts).
 * A target outside the restorable span is refused before anything is written, naming the nearest restorable time.
 * `restoreCommands` gives the same steps as shell commands, for an operator who runs them by hand.
 */
import { existsSync, mkdirSync, readdirSync, realpathSync } from "node:fs";
import { dirname, isAbsolute, join, relative, resolve } from "node:path";
import { environmentError } from "../environment-errors.ts";
import { SourceError, UsageError } from "../errors.ts";
import { isoSeconds } from "../format/time.ts";
import type { SourceContext } from "../sources/types.ts";
import { archiveStatus } from "./archive.ts";
import { logName, pgCtlFor, restoredCopySettings, type RunningCluster, startCluster } from "./cluster.ts";
import { checkRestorable, noBackupMessage, restorableRange } from "./info.ts";
import { type PgBackRest, type RestoreTarget, targetTimeText } from "./pgbackrest.ts";
import { asUser, folderBlocking, handOver, type OsUser } from "./run-as.ts";
import type { PgBackRestSource, RestorableRange } from "./types.ts";

/** `--to-time`: "latest", or an ISO 8601 time with a zone ("2026-12-01T10:00:00+01:00", "…Z"). */
export function parseTargetTime(text: string): RestoreTarget {
  if (text === "latest") return "latest";
  const withZone = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)$/i;
  const date = new Date(text);
  if (!withZone.test(text) || Number.isNaN(date.getTime())) {
    throw new UsageError(
      `--to-time: expected "latest" or a time with its zone, e.g. "2026-12-01T10:00:00+01:00" or ` +
        `"2026-12-01T09:00:00Z", got "${text}"`,
    );
  }
  return date;
}

function realOrResolved(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return resolve(path);
  }
}

/**
 * Refuses a target folder that is the live cluster's data directory or inside it, or that holds anything; `into` is
 * absolute. Checked before pgBackRest is asked anything.
 */
export function checkIntoDirectory(into: string, source: PgBackRestSource): void {
  const live = realOrResolved(source.cluster.dataDirectory);
  const target = realOrResolved(into);
  const inside = relative(live, target);
  if (inside === "" || (!inside.startsWith("..") && !isAbsolute(inside))) {
    throw new UsageError(
      `nothing restored: ${into} is ${inside === "" ? "" : "inside "}the data directory of the live cluster of ` +
        `${source.name} (${source.cluster.dataDirectory}). Restore into a new folder, e.g. ` +
        `${join(dirname(live), `${source.stanza}-restored`)}`,
    );
  }
  if (existsSync(into) && readdirSync(into).length > 0) {
    throw new UsageError(
      `nothing restored: ${into} is not empty. A point-in-time restore makes a new data directory: name a folder ` +
        "that does not exist yet, or an empty one",
    );
  }
}

export interface RestoreToTimeRequest {
  source: PgBackRestSource;
  pgbackrest: PgBackRest;
  target: RestoreTarget;
  /** The new data directory (absolute). */
  into: string;
  /** The port to start it on (127.0.0.1); default: a free one. */
  port?: number;
  context: SourceContext;
  /** The restored copy's socket folder (default: the new data directory). */
  socketDir?: string;
  /** Start it with pg_hba trusting its private socket only (drills); inspection keeps the production rules. */
  trustSocket?: boolean;
}

export interface RestoredCluster extends RunningCluster {
  target: RestoreTarget;
  /** The span that was restorable when the restore began (the live cluster's archive state, when it answered). */
  range: RestorableRange;
  /** The newest backup at or before the target, which pgBackRest restores from. */
  backup: string;
  /** How long the restore took, until the restored cluster accepted connections. */
  restoreMs: number;
}

/**
 * The span a restore can reach: backups from `info`, and the last WAL the live cluster archived (when it answers: a
 * restore is often needed because it does not).
 */
export async function currentRange(
  request: Pick<RestoreToTimeRequest, "source" | "pgbackrest" | "context">,
): Promise<{ range: RestorableRange | undefined; liveAnswered: boolean; backups: { label: string; stop: Date }[] }> {
  const info = await request.pgbackrest.info();
  const status = await archiveStatus(request.source.cluster, request.context).catch(() => undefined);
  return {
    range: restorableRange(info, status?.lastArchivedAt),
    liveAnswered: status !== undefined,
    backups: info.backups,
  };
}

/** Makes the new data directory (0700, the cluster's OS user's); a missing parent is made too. */
function makeDataDirectory(into: string, owner: OsUser | undefined): void {
  const blocking = owner && folderBlocking(into, owner);
  if (blocking) {
    throw new UsageError(
      `nothing restored: the cluster's OS user (uid ${owner.uid}), who runs pgBackRest and the restored server, ` +
        `cannot enter ${blocking} on the way to ${into}. Restore into a folder it can reach (e.g. beside the live ` +
        `data directory), or let it pass (chmod o+x ${blocking})`,
    );
  }
  try {
    mkdirSync(into, { recursive: true, mode: 0o700 });
  } catch (error) {
    throw environmentError(error, "cannot make the new data directory", into) ?? error;
  }
  handOver(into, owner);
}

/** Restores, recovers and starts the copy; on a failure nothing is left running (the folder stays, to be read). */
export async function restoreToTime(request: RestoreToTimeRequest): Promise<RestoredCluster> {
  const { source, pgbackrest, target, into } = request;
  checkIntoDirectory(into, source);
  const { range, liveAnswered, backups } = await currentRange(request);
  if (!range) throw new SourceError(noBackupMessage(source.stanza));
  // Without the live cluster's archive state the end of the archive is not known: only the start is checked then,
  // and a target past the archive's end is told by the recovery itself.
  if (target !== "latest" && (liveAnswered || target.getTime() < range.earliest.getTime())) {
    checkRestorable(target, range, source.stanza);
  }
  const started = Date.now();
  const backup = [...backups].reverse().find((b) => target === "latest" || b.stop.getTime() <= target.getTime());
  makeDataDirectory(into, pgbackrest.runAs);
  await pgbackrest.restore({ target, into });
  let running: RunningCluster;
  try {
    running = await startCluster({
      dataDirectory: into,
      port: request.port,
      socketDir: request.socketDir,
      runAs: pgbackrest.runAs,
      trustSocket: request.trustSocket,
      user: source.cluster.user,
      database: source.cluster.database,
    });
  } catch (error) {
    if (error instanceof SourceError && /before configured recovery target was reached/.test(error.message)) {
      throw new SourceError(
        `the archive of stanza ${source.stanza} ends before ${
          target === "latest" ? "its end" : isoSeconds(target)
        }: no commit after that time was archived yet. Restore to an earlier time, or use --to-time latest ` +
          `(the restored folder ${into} can be removed)`,
      );
    }
    throw error;
  }
  return {
    ...running,
    target,
    range,
    backup: backup?.label ?? "",
    restoreMs: Date.now() - started,
  };
}

/** A word of a shell command line. */
function shellWord(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'"'"'`)}'`;
}

/** The commands of the same restore, run by hand (as the cluster's OS user when backupctl would switch to it). */
export function restoreCommands(
  request: Pick<RestoreToTimeRequest, "source" | "pgbackrest" | "target" | "into"> & { port: number },
): string[] {
  const { pgbackrest, target, into, port } = request;
  // The copy's pg_ctl is the live cluster's version: the folder to restore into holds nothing yet.
  const pgCtl = pgCtlFor(request.source.cluster.dataDirectory);
  const line = (argv: string[]) => asUser(argv, pgbackrest.runAs).map(shellWord).join(" ");
  const owner = pgbackrest.runAs;
  const commands = [`mkdir -m 0700 ${shellWord(into)}`];
  if (owner) commands.push(`chown ${owner.uid}:${owner.gid} ${shellWord(into)}`);
  commands.push(
    `# restore${target === "latest" ? " to the end of the archive" : ` to ${targetTimeText(target)}`}`,
    line(pgbackrest.argv("restore", pgbackrest.restoreArgs({ target, into }))),
    "# loopback only, its own port, archiving off (read after the settings restored with the copy)",
    `cat >> ${shellWord(join(into, "postgresql.auto.conf"))} <<'EOF'${restoredCopySettings(port, into)}EOF`,
    line([pgCtl, "-D", into, "-w", "-l", join(into, logName), "start"]),
    `# recovery has ended when ${join(into, "recovery.signal")} is gone; connect with: psql -h ${into} -p ${port}`,
    `# stop it: ${line([pgCtl, "-D", into, "-m", "fast", "stop"])}`,
  );
  return commands;
}
