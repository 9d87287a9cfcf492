/**
 * A restored data directory, started for inspection or a drill: on a loopback port (a free one unless chosen), its
 * socket in a folder of its own, with archiving off (a restored copy must never push WAL into the stanza it came
 * from), as the data directory's owner when backupctl is root. The settings go into the copy's postgresql.auto.conf,
 * read last, so a later `pg_ctl start` by hand keeps them. Starting waits until recovery has ended and the server is
 * promoted, and tells when recovery stopped short of its target.
 */
import { appendFileSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { MissingToolError, SourceError, StoppedError } from "../errors.ts";
import { stopRequested } from "../runtime/shutdown.ts";
import { run } from "../exec/run.ts";
import { which } from "../exec/which.ts";
import { asUser, handOver, type OsUser } from "./run-as.ts";
import type { PitrCluster } from "./types.ts";

export interface StartOptions {
  dataDirectory: string;
  /** The port to listen on (127.0.0.1); default: a free one. */
  port?: number;
  /** The socket folder (must exist, owned by `runAs` when set); default: the data directory. */
  socketDir?: string;
  runAs?: OsUser;
  /**
   * Replace the copy's pg_hba.conf with trust on the socket only: for a drill's scratch copy, whose socket folder only
   * its owner can enter, so the check query runs whatever the production cluster's authentication is.
   */
  trustSocket?: boolean;
  /** The role queries connect as (default "postgres") and the database (default "postgres"). */
  user?: string;
  database?: string;
  /** How long recovery may take before the start is given up (default 1 hour). */
  timeoutMs?: number;
}

export interface RunningCluster {
  dataDirectory: string;
  port: number;
  socketDir: string;
  /** How to connect to it (over its socket). */
  connection: PitrCluster;
  /** The command that stops it by hand, for the operator. */
  stopCommand: string;
  /** Stops it (fast, then immediate: stopServer); its files stay. */
  stop(): Promise<void>;
}

/** The pg_ctl of the data directory's major version (Debian's layout), else the one on PATH. */
export function pgCtlFor(dataDirectory: string): string {
  const versionFile = join(dataDirectory, "PG_VERSION");
  const version = existsSync(versionFile) ? readFileSync(versionFile, "utf8").trim() : "";
  const debian = `/usr/lib/postgresql/${version}/bin/pg_ctl`;
  if (version !== "" && existsSync(debian)) return debian;
  const found = which("pg_ctl");
  if (!found) throw new MissingToolError("pg_ctl", `postgresql-${version || "15"}`);
  return found;
}

/** The postmaster's PID, from postmaster.pid; undefined when the server is not running. */
function postmasterPid(dataDirectory: string): number | undefined {
  try {
    const pid = Number(readFileSync(join(dataDirectory, "postmaster.pid"), "utf8").split("\n")[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Sends `signal` to the postmaster; false when it is gone. */
function signalServer(pid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}

/**
 * Stops the server of a data directory by signalling its postmaster, as `pg_ctl stop` does: SIGINT (fast shutdown:
 * connections cut, a clean checkpoint), then SIGQUIT (immediate) when it is still there after `graceMs`. A signal
 * rather than a pg_ctl child, so that it also works while backupctl itself is being stopped (runtime/shutdown.ts stops
 * every new child then).
 */
export async function stopServer(dataDirectory: string, graceMs = 30_000): Promise<void> {
  const pid = postmasterPid(dataDirectory);
  if (pid === undefined || !signalServer(pid, "SIGINT")) return;
  const deadline = Date.now() + graceMs;
  for (let wait = 20;; wait = Math.min(wait * 2, 500)) {
    if (!signalServer(pid, 0)) return;
    if (Date.now() > deadline) break;
    await delay(wait);
  }
  signalServer(pid, "SIGQUIT");
  for (let wait = 20; signalServer(pid, 0) && Date.now() < deadline + 10_000; wait = Math.min(wait * 2, 500)) {
    await delay(wait);
  }
}

/**
 * Stops a server at once, synchronously (SIGQUIT): for an exit handler, when the process ends before a drill's clean-up
 * could run.
 */
export function stopServerNow(dataDirectory: string): void {
  const pid = postmasterPid(dataDirectory);
  if (pid !== undefined) signalServer(pid, "SIGQUIT");
}

/** A port that was free a moment ago on 127.0.0.1. */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function confString(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

/** The server log of a restored copy, in its data directory. */
export const logName = "backupctl-server.log";

/**
 * What backupctl appends to a restored copy's postgresql.auto.conf (read last, so it wins over the production
 * settings restored with it): loopback only, its own port and socket, and archiving off.
 */
export function restoredCopySettings(port: number, socketDir: string): string {
  return [
    "",
    "# Set by backupctl for the restored copy: loopback only, and never archiving into the stanza it came from.",
    `port = ${port}`,
    "listen_addresses = '127.0.0.1'",
    `unix_socket_directories = ${confString(socketDir)}`,
    "archive_mode = off",
    "",
  ].join("\n");
}

/** The reason in the server log why recovery ended without the server coming up, if it says. */
function recoveryFailure(dataDirectory: string): string | undefined {
  const path = join(dataDirectory, logName);
  if (!existsSync(path)) return undefined;
  const lines = readFileSync(path, "utf8").split("\n").filter((line) => /FATAL|PANIC/.test(line));
  return lines.at(-1)?.replace(/^.*?(FATAL|PANIC):\s*/, "");
}

/**
 * Whether the server has ended recovery and accepts connections: postmaster.pid's status line says "ready" and
 * recovery.signal is gone (the server removes it when it promotes). Read from files, so no password is needed to tell.
 */
function promoted(dataDirectory: string): boolean {
  if (existsSync(join(dataDirectory, "recovery.signal"))) return false;
  try {
    const lines = readFileSync(join(dataDirectory, "postmaster.pid"), "utf8").split("\n");
    return lines[7]?.trim() === "ready";
  } catch {
    return false;
  }
}

async function delay(ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms));
}

export async function startCluster(options: StartOptions): Promise<RunningCluster> {
  const data = options.dataDirectory;
  const socketDir = options.socketDir ?? data;
  const pgCtl = pgCtlFor(data);
  const port = options.port ?? await freeLoopbackPort();
  appendFileSync(join(data, "postgresql.auto.conf"), restoredCopySettings(port, socketDir));
  if (options.trustSocket) {
    writeFileSync(
      join(data, "pg_hba.conf"),
      "# A drill's scratch copy: its socket folder is private.\nlocal all all trust\n",
    );
    handOver(join(data, "pg_hba.conf"), options.runAs);
  }
  const ctl = (args: string[], timeoutMs = 120_000) =>
    run(asUser([pgCtl, "-D", data, ...args], options.runAs), { timeoutMs });
  const connection: PitrCluster = {
    dataDirectory: data,
    host: socketDir,
    port,
    user: options.user ?? "postgres",
    database: options.database ?? "postgres",
  };
  const running: RunningCluster = {
    dataDirectory: data,
    port,
    socketDir,
    connection,
    stopCommand: asUser([pgCtl, "-D", data, "-m", "fast", "stop"], options.runAs).join(" "),
    stop: () => stopServer(data),
  };
  const timeoutMs = options.timeoutMs ?? 3_600_000;
  // -w: pg_ctl returns once the server accepts (read-only) connections, or fails when it exits first; the end of
  // recovery (promotion) is awaited below.
  const started = await ctl(
    ["-w", "-t", String(Math.ceil(timeoutMs / 1000)), "-l", join(data, logName), "start"],
    timeoutMs + 60_000,
  );
  if (started.code !== 0) {
    await running.stop().catch(() => {});
    const reason = recoveryFailure(data) ?? started.stderrTail;
    throw new SourceError(`the restored cluster in ${data} did not start: ${reason} (its log: ${join(data, logName)})`);
  }
  const deadline = Date.now() + timeoutMs;
  try {
    for (let wait = 50;; wait = Math.min(wait * 2, 1000)) {
      if (promoted(data)) return running;
      const stop = stopRequested();
      if (stop) throw new StoppedError(stop);
      if (!existsSync(join(data, "postmaster.pid"))) {
        const reason = recoveryFailure(data) ?? "see its log";
        throw new SourceError(
          `the restored cluster in ${data} stopped during recovery: ${reason} (${join(data, logName)})`,
        );
      }
      if (Date.now() > deadline) {
        throw new SourceError(
          `the restored cluster in ${data} was still recovering after ${Math.round(timeoutMs / 60_000)} min`,
        );
      }
      await delay(wait);
    }
  } catch (error) {
    await running.stop().catch(() => {});
    throw error;
  }
}
