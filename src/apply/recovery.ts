/**
 * Startup recovery: what processes that died (kill -9, a crash, a power cut) left behind. Finding it is read-only
 * (`findLeftovers`, through apply/prepare.ts: plan shows it as `recover` actions, status lists the local part); the
 * apply or watch that runs the plan repairs it first thing, with the checked deletions below.
 *
 * - Runs still `running` whose process on this host is gone (pid, and start time where recorded) become
 *   `interrupted`, keeping the stage they were in. Runs of the current process, or of another live one (an apply of
 *   another project), are never touched; runs recorded by another host cannot be judged and are only reported.
 *   A run made under a fleet lease (a PostgreSQL state) is judged by its lease, from any host: dead once the lease
 *   expired or was taken over (docs/fleet.md), alive while it is held.
 * - Lock files of dead holders are removed.
 * - Private temporary folders (`<state dir>/tmp/secret-<pid>-*`) of dead processes are deleted.
 * - Restic locks the dead run may have left in its project's repositories, and snapshots made from its cut stream,
 *   are restic's business: planned as `restic_unlock` and `partial_snapshot` recover actions (see the planner).
 */
import { existsSync, readdirSync, rmSync } from "node:fs";
import { join, relative, resolve, sep } from "node:path";
import type { Leftovers } from "../plan/types.ts";
import { processAlive } from "../runtime/process.ts";
import type { StateStore } from "../state/store.ts";
import { inspectLocks, removeLock } from "./lock.ts";

export interface Findings {
  leftovers: Leftovers;
  /** Ids of the interrupted runs (for the inventory's partial snapshots). */
  deadRuns: string[];
  warnings: string[];
}

/** Private folders are named `secret-<pid>-…` by the process that made them. */
const privateFolder = /^secret-(\d+)-/;

/** Looks for leftovers of dead processes; changes nothing. `host` is this backupctl's host name (config or system). */
export async function findLeftovers(store: StateStore, host: string): Promise<Findings> {
  const warnings: string[] = [];
  const interruptedRuns: Leftovers["interruptedRuns"] = [];
  const running = await store.runningRuns();
  const leased = running.flatMap((run) => run.leaseToken === null ? [] : [{ ...run, leaseToken: run.leaseToken }]);
  const leaseStates = leased.length > 0 ? await store.fleet.runLeaseStates(leased) : new Map();
  for (const run of running) {
    // Under a lease: dead once it expired or was taken over. Otherwise by its process, on this host only.
    const lease = leaseStates.get(run.id);
    if (lease === undefined && run.host !== host) {
      warnings.push(
        `run ${run.id} of ${run.project} is marked running by host ${run.host}; only backupctl on that host can ` +
          "tell whether it still runs",
      );
      continue;
    }
    const alive = lease === undefined ? processAlive(run.pid, run.processStart) : lease === "held";
    if (alive) continue;
    interruptedRuns.push({
      id: run.id,
      project: run.project,
      stage: run.stage,
      pid: run.pid,
      startedAt: run.startedAt,
    });
  }
  const staleLocks: Leftovers["staleLocks"] = [];
  for (const lock of inspectLocks(store.dir, undefined, host)) {
    if (lock.state !== "stale" || !lock.holder) continue;
    staleLocks.push({
      project: lock.project,
      pid: lock.holder.pid,
      since: lock.holder.started_at,
      runId: lock.holder.run_id,
    });
  }
  return {
    leftovers: { interruptedRuns, staleLocks, files: deadPrivateFolders(store.privateDir, store.dir) },
    deadRuns: interruptedRuns.map((run) => run.id),
    warnings,
  };
}

/** Private folders whose creating process is gone, relative to the state folder. */
function deadPrivateFolders(privateDir: string, stateDir: string): string[] {
  if (!existsSync(privateDir)) return [];
  return readdirSync(privateDir)
    .filter((name) => {
      const match = privateFolder.exec(name);
      return match !== null && !processAlive(Number(match[1]));
    })
    .sort()
    .map((name) => relative(stateDir, join(privateDir, name)));
}

/**
 * Deletes leftover private folders named by a plan, checking each again: it must be a `secret-<pid>-` folder in the
 * state folder's tmp, and its process must still be gone. Returns how many were deleted.
 */
export function deleteLeftoverFolders(store: StateStore, paths: string[]): number {
  let deleted = 0;
  const privateDir = resolve(store.privateDir);
  for (const path of paths) {
    const full = resolve(store.dir, path);
    if (!full.startsWith(privateDir + sep)) continue;
    const match = privateFolder.exec(relative(privateDir, full));
    if (!match || full.slice(privateDir.length + 1).includes(sep) || processAlive(Number(match[1]))) continue;
    if (!existsSync(full)) continue;
    rmSync(full, { recursive: true, force: true });
    deleted++;
  }
  return deleted;
}

/**
 * Deletes the private folders of the given kinds (`secret-<pid>-<kind>-…`: a restore's `--jobs` dump, a drill's
 * scratch folder, a stream's FIFOs) that processes killed with `kill -9` left behind, through the checks above;
 * returns how many. Run by the commands that make such folders before they make their own, so that they do not wait
 * for an apply to clean up.
 */
export function removeDeadPrivateFolders(store: StateStore, ...kinds: ("restore" | "drill" | "fifo")[]): number {
  if (!existsSync(store.privateDir)) return 0;
  const dead = readdirSync(store.privateDir).filter((name) => {
    const match = privateFolder.exec(name);
    return match !== null && kinds.some((kind) => name.startsWith(`secret-${match[1]}-${kind}-`)) &&
      !processAlive(Number(match[1]));
  });
  return deleteLeftoverFolders(store, dead.map((name) => relative(store.dir, join(store.privateDir, name))));
}

/** Removes a project's lock file if it is still stale (its holder gone); false when it is not (any more). */
export function removeStaleLock(stateDir: string, project: string, host: string): boolean {
  const lock = inspectLocks(stateDir, [project], host).find((found) => found.project === project);
  if (!lock || lock.state !== "stale" || !lock.holder) return false;
  return removeLock(lock.path, lock.holder);
}
