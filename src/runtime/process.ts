/**
 * Whether a process recorded earlier (in a lock, a run row, a private folder's name) still runs. A pid alone can be
 * reused after a crash, so where Linux tells it, the process's start time (clock ticks since boot, field 22 of
 * /proc/PID/stat) is recorded too and must match.
 */
import { readFileSync } from "node:fs";

/** The start time of a process as /proc reports it, or null where there is no /proc. */
export function processStartOf(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) is in parentheses and may hold spaces: count fields after its closing one.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return fields[19] ?? null;
  } catch {
    return null;
  }
}

let ownStart: string | null | undefined;

/** This process's start time (see processStartOf). */
export function currentProcessStart(): string | null {
  if (ownStart === undefined) ownStart = processStartOf(process.pid);
  return ownStart;
}

/** Whether `pid` is running and, when `processStart` was recorded, is still the same process. */
export function processAlive(pid: number, processStart?: string | null): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (error) {
    // EPERM: it exists but belongs to another user.
    if ((error as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  if (isZombie(pid)) return false;
  if (!processStart) return true;
  const now = processStartOf(pid);
  return now === null || now === processStart;
}

/** A process that has exited but was not reaped yet (state Z in /proc/PID/stat) is gone for our purposes. */
function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
  } catch {
    return false;
  }
}
