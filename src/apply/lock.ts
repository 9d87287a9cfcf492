/**
 * Project locks: one file per project, `<state dir>/locks/<project>.lock` (folder 0700, file 0600), holding who runs
 * it: pid, host, command, run id, start time, and the process's start time (field 22 of /proc/PID/stat, so a pid
 * reused after a crash is not mistaken for the holder).
 *
 * Creating: the JSON is written (and synced) to a temp file in the locks folder, then hard-linked to the lock's name.
 * `link` fails when the name exists, so exactly one process creates the lock, and nobody ever reads it half-written.
 *
 * Changing an existing lock file (taking over a stale one, `unlock`, release, setting the run id) first needs its
 * *claim*: a marker `<project>.lock.claim-<holder hash>-<n>` created the same exclusive way, so at most one live
 * process changes a given holder's file at a time. The claimant reads the file again, acts only if it still holds the
 * holder it judged, then deletes its marker. A takeover renames the new lock over the stale one, so the name never
 * goes missing and the taker is the one holding the lock: eight processes finding the same stale lock take it over
 * once, and only the winner reports the takeover. A
 * marker whose creator died (it would block the holder forever) is stepped over by claiming `-<n+1>`, and swept by
 * the next process that takes the lock.
 *
 * Judging a holder: another host cannot be judged (a pid means nothing here), so its lock counts as held. On this
 * host the holder is stale when its pid is gone or now belongs to a process with another start time.
 *
 * Every lock this process holds is released when it exits, normally or by an uncaught error. A process killed by a
 * signal leaves its lock behind: stale, it is taken over by the next run or removed by `backupctl unlock`.
 */
import { chmodSync, mkdirSync, readdirSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { LockError, WaitStopped } from "../errors.ts";
import { humanDuration, isoSeconds } from "../format/time.ts";
import {
  createExclusive,
  errorCode,
  identityOf,
  identityOfText,
  type LockHolder,
  type LockInfo,
  type LockState,
  readLock,
  replaceIfStillHeld,
  serialize,
  sweepClaims,
} from "./lock-file.ts";
import { onProcessEnd } from "../runtime/process-end.ts";
import { stopRequested } from "../runtime/shutdown.ts";
import { currentProcessStart, processAlive } from "../runtime/process.ts";

export { currentProcessStart, processAlive };
export type { LockHolder, LockInfo, LockState };

/** Who asks for a lock. `host` is this backupctl's host name (the config's `host`, else the system's). */
export interface LockRequester {
  command: string;
  runId?: string;
  host: string;
}

/** A lock this process holds. */
export interface ProjectLock {
  readonly project: string;
  readonly path: string;
  /** What the lock file says (run_id included once set). */
  readonly holder: LockHolder;
  /** The stale holder whose lock was removed to take this one: for the log and the audit. */
  readonly tookOver?: LockHolder;
  /** Records the run id in the lock file (replaced atomically: it is valid at every instant). */
  setRunId(runId: string): void;
  /** Removes the lock file if it is still this lock. Safe to call twice. */
  release(): void;
}

const lockSuffix = ".lock";

/**
 * How long to wait for another process that is changing the same lock file at this instant. A change takes
 * milliseconds, but syncing the file can stall for seconds on a busy disk.
 */
const claimPatienceMs = 10_000;

export function locksDir(stateDir: string): string {
  return join(stateDir, "locks");
}

export function lockPath(stateDir: string, project: string): string {
  return join(locksDir(stateDir), `${project}${lockSuffix}`);
}

/**
 * Takes the lock of `project`, taking over a stale one. Throws LockError when a live holder (or one on another host,
 * or an unreadable file) has it.
 *
 * @example
 * const lock = acquireProjectLock(stateDir, "shop", { command: "apply", host: hostFor(loaded) });
 * try { lock.setRunId(runId); … } finally { lock.release(); }
 */
export function acquireProjectLock(stateDir: string, project: string, me: LockRequester): ProjectLock {
  const dir = ensureLocksDir(stateDir);
  const path = lockPath(stateDir, project);
  const holder: LockHolder = {
    pid: process.pid,
    host: me.host,
    command: me.command,
    run_id: me.runId ?? null,
    started_at: new Date().toISOString(),
    process_start: currentProcessStart(),
  };
  const text = serialize(holder);
  const deadline = Date.now() + claimPatienceMs;
  for (;;) {
    if (createExclusive(dir, path, text)) {
      sweepClaims(path, identityOf(holder));
      return hold(new HeldLock(project, path, holder, undefined));
    }
    const found = readLock(project, path, me.host);
    if (!found) continue; // released between our attempt and the read: try again
    if (found.state !== "stale") throw lockedError(found);
    // Replaced in one rename under the stale holder's claim, so the process that judged it stale is the one that
    // gets the lock (and reports the takeover): there is no instant without a lock file for another to slip in.
    const outcome = replaceIfStillHeld(path, identityOf(found.holder!), text);
    if (outcome === "replaced") {
      sweepClaims(path, identityOf(holder));
      return hold(new HeldLock(project, path, holder, found.holder!));
    }
    if (outcome === "busy") {
      if (Date.now() > deadline) {
        throw new LockError(
          `project ${project}: another process has been taking over the stale lock ${path} for ` +
            `${claimPatienceMs / 1000} s; try again, and if this repeats run \`backupctl unlock ${project}\``,
        );
      }
      sleepSync(5 + Math.random() * 20);
    }
    // changed meanwhile: look again
  }
}

/**
 * For watch mode: waits its turn, polling every `pollMs`, and gives up after `timeoutMs` with a LockError that says
 * how long it waited and who holds the lock.
 */
export async function waitForProjectLock(
  stateDir: string,
  project: string,
  me: LockRequester,
  options: { timeoutMs: number; pollMs?: number },
): Promise<ProjectLock> {
  const pollMs = options.pollMs ?? 1000;
  const started = Date.now();
  for (;;) {
    try {
      return acquireProjectLock(stateDir, project, me);
    } catch (error) {
      if (!(error instanceof LockError)) throw error;
      const waited = Date.now() - started;
      if (waited >= options.timeoutMs) {
        throw new LockError(`waited ${humanDuration(waited)} for the lock of project ${project}: ${error.message}`);
      }
      await new Promise((resolve) => setTimeout(resolve, Math.min(pollMs, options.timeoutMs - waited)));
    }
  }
}

/**
 * Every lock file in the state folder (or only those of `projects`), judged from `host` (the system's host name by
 * default). Lock files of projects no longer declared are listed too.
 */
export function inspectLocks(stateDir: string, projects?: string[], host: string = hostname()): LockInfo[] {
  let names: string[];
  try {
    names = readdirSync(locksDir(stateDir));
  } catch (error) {
    if (errorCode(error) === "ENOENT") return [];
    throw error;
  }
  const found: LockInfo[] = [];
  for (const name of names.sort()) {
    if (!name.endsWith(lockSuffix) || name.startsWith(".")) continue;
    const project = name.slice(0, -lockSuffix.length);
    if (projects && !projects.includes(project)) continue;
    const lock = readLock(project, join(locksDir(stateDir), name), host);
    if (lock) found.push(lock);
  }
  return found;
}

/**
 * Removes the lock file at `path` only if it still holds `expected`: the holder read earlier (pid, host, process
 * start and start time must match; the run id may have been set since), or, for an unreadable file, its exact text.
 * Returns false when the file is gone or holds someone else.
 */
export function removeLock(path: string, expected: LockHolder | string): boolean {
  const identity = typeof expected === "string" ? identityOfText(expected) : identityOf(expected);
  const deadline = Date.now() + claimPatienceMs;
  for (;;) {
    const outcome = replaceIfStillHeld(path, identity, null);
    if (outcome !== "busy") return outcome === "replaced";
    if (Date.now() > deadline) {
      throw new LockError(`${path} is being changed by another process; try again in a moment`);
    }
    sleepSync(10);
  }
}

/** One line about a holder, as every lock message shows it. */
export function describeHolder(holder: LockHolder, now: Date = new Date()): string {
  const since = new Date(holder.started_at);
  const age = Number.isNaN(since.getTime())
    ? holder.started_at
    : `${isoSeconds(since)} (${humanDuration(now.getTime() - since.getTime())} ago)`;
  const run = holder.run_id ? `, run ${holder.run_id}` : "";
  return `${holder.command} (pid ${holder.pid} on host ${holder.host}${run}) since ${age}`;
}

/** The LockError for a lock this process cannot take: who holds it, since when, and what to do. */
export function lockedError(lock: LockInfo): LockError {
  const { project, holder } = lock;
  if (!holder) {
    return new LockError(
      `project ${project} is locked, but the lock file ${lock.path} cannot be read (${lock.problem}); if no ` +
        `backupctl runs ${project} now, remove it with \`backupctl unlock ${project} --force\``,
    );
  }
  if (lock.state === "foreign-host") {
    return new LockError(
      `project ${project} is locked: held by ${describeHolder(holder)}; that is another host, so whether the ` +
        `process still runs cannot be checked here: wait for it to finish, or if it is gone run ` +
        `\`backupctl unlock ${project} --force\``,
    );
  }
  return new LockError(
    `project ${project} is locked: held by ${describeHolder(holder)}; wait for it to finish, or stop that process ` +
      `if it is stuck (once it is gone the next run takes the lock over, or run \`backupctl unlock ${project}\`)`,
  );
}

class HeldLock implements ProjectLock {
  private released = false;

  constructor(
    readonly project: string,
    readonly path: string,
    readonly holder: LockHolder,
    readonly tookOver: LockHolder | undefined,
  ) {}

  setRunId(runId: string): void {
    if (this.released) throw new Error(`the lock of ${this.project} was already released`);
    const deadline = Date.now() + claimPatienceMs;
    for (;;) {
      const outcome = replaceIfStillHeld(
        this.path,
        identityOf(this.holder),
        serialize({ ...this.holder, run_id: runId }),
      );
      if (outcome === "replaced") break;
      if (outcome === "changed") {
        throw new LockError(
          `the lock of project ${this.project} is no longer held by this process (removed by \`backupctl unlock ` +
            `--force\`?); stopping rather than working beside another run`,
        );
      }
      if (Date.now() > deadline) throw new LockError(`${this.path} is being changed by another process; try again`);
      sleepSync(10);
    }
    this.holder.run_id = runId;
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    held.delete(this);
    removeLock(this.path, this.holder);
  }
}

function ensureLocksDir(stateDir: string): string {
  const dir = locksDir(stateDir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  return dir;
}

/** A short pause in synchronous code (the lock functions are synchronous so that an exit handler can release). */
function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** The locks this process holds, released when it exits. */
const held = new Set<HeldLock>();
let exitHooked = false;

function hold(lock: HeldLock): HeldLock {
  held.add(lock);
  if (!exitHooked) {
    exitHooked = true;
    // Also on an uncaught error (runtime/process-end.ts); releasing twice does nothing.
    onProcessEnd(releaseAll);
  }
  return lock;
}

function releaseAll(): void {
  for (const lock of [...held]) {
    try {
      lock.release();
    } catch {
      // the process is ending: a lock left behind is stale and gets taken over
    }
  }
}

/**
 * `--wait`: runs `take` (taking every lock or lease a command needs, all or none) again while it fails with a
 * LockError, for at most `waitMs`, polling every `pollMs` and saying once what it waits for. Taking all or none each
 * time means a waiting command never holds one project while it waits for another. After the deadline the last
 * LockError is thrown with how long it waited (exit 4); a stop signal ends the wait with nothing run.
 */
export async function withLockPatience<T>(
  waitMs: number | undefined,
  take: () => T | Promise<T>,
  say: (line: string) => void,
  pollMs = 1000,
): Promise<T> {
  const started = Date.now();
  let said = false;
  for (;;) {
    try {
      return await take();
    } catch (error) {
      if (!(error instanceof LockError) || !waitMs) throw error;
      const waited = Date.now() - started;
      if (waited >= waitMs) {
        throw new LockError(`waited ${humanDuration(waited)} (--wait): ${error.message}`);
      }
      if (!said) {
        say(`Waiting up to ${humanDuration(waitMs)} (--wait): ${error.message.split("\n")[0]}`);
        said = true;
      }
      const signal = stopRequested();
      if (signal) throw new WaitStopped(signal, "a lock");
      await new Promise((resolve) => setTimeout(resolve, Math.min(pollMs, waitMs - waited)));
      const late = stopRequested();
      if (late) throw new WaitStopped(late, "a lock");
    }
  }
}
