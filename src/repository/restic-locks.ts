/**
 * restic's locks, judged by their holder. A lock names the host, the PID and the time it was made; on this host its
 * holder is provably gone when no process has that PID, or the process that has it started after the lock was made
 * (the PID was reused after a crash). restic's own `unlock` only trusts the PID (a reused one keeps a dead holder's
 * lock alive for 30 minutes); this judgement adds the start time, so a crash's lock is removed at the next start.
 */
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { processAlive, processStartOf } from "../runtime/process.ts";

/** One lock file of a repository, as `restic cat lock ID` shows it. */
export interface ResticLock {
  id: string;
  time: string;
  exclusive: boolean;
  hostname: string;
  pid: number;
}

export interface LockVerdict {
  lock: ResticLock;
  /** True when its holder is provably gone (on this host). */
  stale: boolean;
  /** In words: "prune's lock (exclusive) of pid 123 on host h since T: the process is gone". */
  description: string;
}

/** When a process started, in milliseconds since the epoch, from /proc (undefined where /proc cannot tell). */
export function processStartedAt(pid: number): number | undefined {
  const ticks = processStartOf(pid);
  if (ticks === null) return undefined;
  try {
    const boot = /^btime (\d+)$/m.exec(readFileSync("/proc/stat", "utf8"))?.[1];
    if (boot === undefined) return undefined;
    // Clock ticks are 100 a second on every Linux architecture restic runs on (USER_HZ).
    return Number(boot) * 1000 + Number(ticks) * 10;
  } catch {
    return undefined;
  }
}

/** Judges a lock: stale only when it was made on this host and its process is gone or is another one now. */
export function judgeLock(lock: ResticLock, host = hostname()): LockVerdict {
  const kind = lock.exclusive ? "an exclusive lock" : "a lock";
  const holder = `${kind} of pid ${lock.pid} on host ${lock.hostname} since ${lock.time}`;
  if (lock.hostname !== host) {
    return { lock, stale: false, description: `${holder}: another host's, left alone` };
  }
  if (!processAlive(lock.pid)) return { lock, stale: true, description: `${holder}: that process is gone` };
  const started = processStartedAt(lock.pid);
  const made = Date.parse(lock.time);
  // A second of slack: /proc's start time has a resolution of 10 ms, the lock's time is the holder's clock.
  if (started !== undefined && Number.isFinite(made) && started > made + 1000) {
    return {
      lock,
      stale: true,
      description: `${holder}: pid ${lock.pid} is now another process (started after the lock was made)`,
    };
  }
  return { lock, stale: false, description: `${holder}: the process still runs` };
}

/** Parses `restic cat lock ID` output into a lock, or undefined when it is not one. */
export function parseLock(id: string, json: string): ResticLock | undefined {
  try {
    const value = JSON.parse(json) as Partial<{ time: string; exclusive: boolean; hostname: string; pid: number }>;
    if (typeof value.hostname !== "string" || typeof value.pid !== "number" || typeof value.time !== "string") {
      return undefined;
    }
    return { id, time: value.time, exclusive: value.exclusive === true, hostname: value.hostname, pid: value.pid };
  } catch {
    return undefined;
  }
}
