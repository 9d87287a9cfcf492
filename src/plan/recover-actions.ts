/** Startup recovery's actions: what dead processes and failed runs left behind, repaired in a fixed order. */
import type { LoadedConfig } from "../config/load.ts";
import type { Draft } from "./document.ts";
import type { ObservedState } from "./types.ts";

/**
 * Startup recovery, in the order apply runs it: runs of dead processes are marked interrupted, their lock files and
 * private temporary folders removed, the restic locks they may have left in their project's repositories removed
 * (only those whose holder is provably gone), and the partial snapshots of failed or interrupted runs forgotten, whatever the
 * config says (they were never good backups; only those still in the inventory are planned).
 */
export function recoverActions(observed: ObservedState, loaded: Pick<LoadedConfig, "config">): Draft[] {
  const drafts: Draft[] = [];
  const leftovers = observed.leftovers;
  const unlock = new Map<string, string>();
  for (const run of leftovers?.interruptedRuns ?? []) {
    drafts.push({
      type: "recover",
      recover: "interrupted_run",
      project: run.project,
      run_id: run.id,
      destructive: false,
      reason: `run ${run.id} (pid ${run.pid}, started ${run.startedAt}) ended without finishing${
        run.stage ? ` during ${run.stage}` : ""
      }: mark it interrupted`,
    });
    for (const repository of loaded.config.projects[run.project]?.repositories ?? []) {
      if (!unlock.has(repository)) unlock.set(repository, run.id);
    }
  }
  for (const lock of leftovers?.staleLocks ?? []) {
    drafts.push({
      type: "recover",
      recover: "stale_lock",
      project: lock.project,
      ...(lock.runId ? { run_id: lock.runId } : {}),
      destructive: false,
      reason: `lock of ${lock.project} held since ${lock.since} by pid ${lock.pid}, which is gone: remove it`,
    });
  }
  if (leftovers && leftovers.files.length > 0) {
    const n = leftovers.files.length;
    drafts.push({
      type: "recover",
      recover: "leftover_files",
      paths: leftovers.files,
      destructive: false,
      reason: `${n} private temporary folder${n === 1 ? "" : "s"} of processes that are gone: delete ${
        n === 1 ? "it" : "them"
      }`,
    });
  }
  const staleResticLocks = new Map<string, string[]>();
  for (const lock of leftovers?.resticLocks ?? []) {
    staleResticLocks.set(lock.repository, [...staleResticLocks.get(lock.repository) ?? [], lock.holder]);
  }
  for (const [repository, holders] of staleResticLocks) {
    if (unlock.has(repository)) continue;
    drafts.push({
      type: "recover",
      recover: "restic_unlock",
      repository,
      destructive: false,
      reason: `${holders.join("; ")}: remove ${holders.length === 1 ? "it" : "them"}`,
    });
  }
  for (const [repository, runId] of unlock) {
    drafts.push({
      type: "recover",
      recover: "restic_unlock",
      repository,
      run_id: runId,
      destructive: false,
      reason:
        `run ${runId} was interrupted: remove the restic locks it left (only those whose holder is provably gone)`,
    });
  }
  for (const partial of observed.partials) {
    const snapshot = observed.snapshots.find((s) =>
      s.repository === partial.repository && (s.id === partial.snapshot || s.id.startsWith(partial.snapshot))
    );
    if (!snapshot) continue;
    drafts.push({
      type: "recover",
      recover: "partial_snapshot",
      ...(partial.runId ? { run_id: partial.runId } : {}),
      project: partial.project,
      source: partial.source,
      repository: partial.repository,
      snapshots: [snapshot.id],
      destructive: true,
      approval: "routine",
      reason: `partial snapshot of a failed or interrupted backup${
        partial.runId ? ` (run ${partial.runId})` : ""
      }: forget it`,
    });
  }
  return drafts;
}
