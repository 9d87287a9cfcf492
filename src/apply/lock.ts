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
import { createHash, randomBytes } from "node:crypto";
import {
  chmodSync,
  closeSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { LockError } from "../errors.ts";
import { humanDuration, isoSeconds } from "../format/time.ts";
import { onProcessEnd } from "../runtime/process-end.ts";
import { currentProcessStart, processAlive } from "../runtime/process.ts";

export { currentProcessStart, processAlive };

/** The content of a lock file. */
export interface LockHolder {
  pid: number;
  host: string;
  /** What took the lock: apply, watch, unlock, … */
  command: string;
  /** The audited run working under the lock, once it has one. */
  run_id: string | null;
  /** When the lock was taken (wall clock, ISO-8601). */
  started_at: string;
  /** The holder's start time in clock ticks since boot (/proc/PID/stat field 22); null where there is no /proc. */
  process_start: string | null;
}

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

/**
 * - live: its process runs on this host;
 * - stale: same host, and its pid is gone or belongs to another process;
 * - foreign-host: taken on another host, which cannot be checked from here;
 * - unreadable: not a lock file backupctl wrote (corrupted or edited).
 */
export type LockState = "live" | "stale" | "foreign-host" | "unreadable";

export interface LockInfo {
  project: string;
  path: string;
  state: LockState;
  /** null when unreadable. */
  holder: LockHolder | null;
  /** The file's exact text (what `removeLock` needs to remove an unreadable one). */
  text: string;
  /** Why an unreadable lock could not be read. */
  problem?: string;
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

/** Reads and judges a lock file; undefined when there is none. */
function readLock(project: string, path: string, host: string): LockInfo | undefined {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    if (errorCode(error) === "ENOENT") return undefined;
    return { project, path, state: "unreadable", holder: null, text: "", problem: (error as Error).message };
  }
  let holder: LockHolder;
  try {
    holder = parseHolder(text);
  } catch (error) {
    return { project, path, state: "unreadable", holder: null, text, problem: (error as Error).message };
  }
  return { project, path, state: judge(holder, host), holder, text };
}

function judge(holder: LockHolder, host: string): LockState {
  if (holder.host !== host) return "foreign-host";
  return processAlive(holder.pid, holder.process_start) ? "live" : "stale";
}

function parseHolder(text: string): LockHolder {
  let value: Record<string, unknown>;
  try {
    value = JSON.parse(text);
  } catch {
    throw new Error(text.trim() === "" ? "the file is empty" : "the file is not JSON");
  }
  if (typeof value !== "object" || value === null) throw new Error("the file does not hold a JSON object");
  const { pid, host, command, run_id, started_at, process_start } = value;
  if (typeof pid !== "number" || !Number.isInteger(pid) || pid <= 0) throw new Error("pid is not a positive integer");
  if (typeof host !== "string" || host === "") throw new Error("host is missing");
  if (typeof started_at !== "string") throw new Error("started_at is missing");
  return {
    pid,
    host,
    command: typeof command === "string" ? command : "unknown command",
    run_id: typeof run_id === "string" ? run_id : null,
    started_at,
    // Written as a string (as /proc shows it); a number in a hand-written file is read the same way.
    process_start: typeof process_start === "string" || typeof process_start === "number"
      ? String(process_start)
      : null,
  };
}

function serialize(holder: LockHolder): string {
  return JSON.stringify(holder, null, 2) + "\n";
}

/** What makes a holder the same one (the run id may change while it holds the lock). */
function identityOf(holder: LockHolder): string {
  return JSON.stringify([holder.host, holder.pid, holder.process_start, holder.started_at]);
}

function identityOfText(text: string): string {
  try {
    return identityOf(parseHolder(text));
  } catch {
    return `text:${text}`;
  }
}

/** The identity of whatever the file holds now; undefined when there is no file. */
function currentIdentity(path: string): string | undefined {
  try {
    return identityOfText(readFileSync(path, "utf8"));
  } catch (error) {
    if (errorCode(error) === "ENOENT") return undefined;
    throw error;
  }
}

/**
 * Under the claim of `identity`: if the file still holds it, replaces it with `text` (one rename: the name always
 * holds a complete lock), or removes it when `text` is null.
 */
function replaceIfStillHeld(path: string, identity: string, text: string | null): "replaced" | "changed" | "busy" {
  const unclaim = claim(path, identity);
  if (!unclaim) return "busy";
  try {
    if (currentIdentity(path) !== identity) return "changed";
    if (text === null) unlinkSync(path);
    else renameSync(writeTemp(locksDirOf(path), text), path);
    return "replaced";
  } finally {
    unclaim();
  }
}

/**
 * Claims the right to change the lock file while it holds `identity`. Returns the function that gives the claim
 * back, or undefined when a live process holds it now.
 *
 * Only a marker's creator deletes it, so a dead claimant's marker stays and the scan steps over it: whoever creates
 * the lowest free generation above dead ones is the only live claimant. Dead markers are swept once their holder's
 * lock is gone (see sweepClaims).
 */
function claim(path: string, identity: string): (() => void) | undefined {
  const dir = locksDirOf(path);
  const marker = (generation: number) => `${claimPrefix(path)}${hashOf(identity)}-${generation}`;
  const me = serialize({
    pid: process.pid,
    host: hostname(),
    command: "claim",
    run_id: null,
    started_at: new Date().toISOString(),
    process_start: currentProcessStart(),
  });
  let generation = 0;
  for (let attempt = 0; attempt < 256; attempt++) {
    const name = marker(generation);
    if (createExclusive(dir, name, me, { sync: false })) return () => removeQuietly(name);
    const claimant = readLock("", name, hostname());
    if (!claimant) continue; // given back just now: try the same generation again
    if (claimant.state === "live" || claimant.state === "foreign-host") return undefined;
    generation++; // its creator died while changing the file
  }
  throw new LockError(`${path}: too many abandoned claim markers (${marker(0).slice(0, -2)}-*); remove them by hand`);
}

function claimPrefix(path: string): string {
  return `${path}.claim-`;
}

function hashOf(identity: string): string {
  return createHash("sha256").update(identity).digest("hex").slice(0, 16);
}

/**
 * Deletes the markers that dead claimants left for holders other than `current` (who just took the lock): those
 * holders' files are gone for good, so a claimant finding a marker missing afterwards can only find them changed.
 */
function sweepClaims(path: string, current: string): void {
  const dir = locksDirOf(path);
  const prefix = claimPrefix(path).slice(dir.length + 1);
  const keep = `${prefix}${hashOf(current)}-`;
  for (const name of readdirSync(dir)) {
    if (!name.startsWith(prefix) || name.startsWith(keep) || !/^[0-9a-f]{16}-\d+$/.test(name.slice(prefix.length))) {
      continue;
    }
    const claimant = readLock("", join(dir, name), hostname());
    if (claimant && claimant.state !== "live" && claimant.state !== "foreign-host") removeQuietly(join(dir, name));
  }
}

/** Creates `path` with `text` if nothing is there: true when this call created it. */
function createExclusive(dir: string, path: string, text: string, options = { sync: true }): boolean {
  const temp = writeTemp(dir, text, options);
  try {
    linkSync(temp, path);
    return true;
  } catch (error) {
    if (errorCode(error) === "EEXIST") return false;
    throw error;
  } finally {
    removeQuietly(temp);
  }
}

/**
 * A fully written 0600 file in `dir` under a name no lock or marker can have (it starts with a dot). Lock files are
 * synced, so one left by a power cut is readable (and stale) rather than empty; claim markers need not be: after a
 * crash their creators are gone anyway, and an empty marker counts as abandoned.
 */
function writeTemp(dir: string, text: string, options = { sync: true }): string {
  const temp = join(dir, `.${process.pid}-${randomBytes(6).toString("hex")}.tmp`);
  const fd = openSync(temp, "wx", 0o600);
  try {
    writeSync(fd, text);
    if (options.sync) fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return temp;
}

function ensureLocksDir(stateDir: string): string {
  const dir = locksDir(stateDir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  return dir;
}

function locksDirOf(path: string): string {
  return join(path, "..");
}

function removeQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}

function errorCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
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
