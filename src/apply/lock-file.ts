/**
 * The files of the project locks (apply/lock.ts): what a lock file holds and how it is read and judged, and the
 * protocol that changes one safely while other processes may do the same — a temp file hard-linked to its name
 * (created exactly once), a claim marker before any change, a rename so the name always holds a complete lock.
 */
import { createHash, randomBytes } from "node:crypto";
import {
  closeSync,
  fsyncSync,
  linkSync,
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
import { currentProcessStart, processAlive } from "../runtime/process.ts";

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

/** Reads and judges a lock file; undefined when there is none. */
export function readLock(project: string, path: string, host: string): LockInfo | undefined {
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

export function serialize(holder: LockHolder): string {
  return JSON.stringify(holder, null, 2) + "\n";
}

/** What makes a holder the same one (the run id may change while it holds the lock). */
export function identityOf(holder: LockHolder): string {
  return JSON.stringify([holder.host, holder.pid, holder.process_start, holder.started_at]);
}

export function identityOfText(text: string): string {
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
export function replaceIfStillHeld(
  path: string,
  identity: string,
  text: string | null,
): "replaced" | "changed" | "busy" {
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
export function sweepClaims(path: string, current: string): void {
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
export function createExclusive(dir: string, path: string, text: string, options = { sync: true }): boolean {
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

export function errorCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}
