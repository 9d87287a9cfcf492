/**
 * `recover`: startup recovery, one kind at a time (see apply/recovery.ts): a run of a dead process marked
 * interrupted, its lock file and private folders removed, the restic locks it may have left removed (only those whose
 * holder is provably gone), and the partial snapshot of a failed or interrupted backup forgotten. Each is audited:
 * a `recover` stage, an `unlock` stage for restic's locks, a `forget` stage for a partial snapshot.
 */
import { projectOf, type RecoverAction, repositoryOf } from "../../plan/document.ts";
import { describeAction } from "../../plan/render.ts";
import { repositoryFor } from "../context.ts";
import { refreshInventory } from "../inventory.ts";
import { deleteLeftoverFolders, removeStaleLock } from "../recovery.ts";
import { runStage } from "../stage.ts";
import { forgetStage, type Outcome, type RecoverContext } from "./types.ts";

type Of<K extends RecoverAction["recover"]> = Extract<RecoverAction, { recover: K }>;
type LocalRecovery = Exclude<RecoverAction, { recover: "partial_snapshot" }>;

export function recover(action: RecoverAction, ctx: RecoverContext): Promise<Outcome> {
  if (action.recover === "partial_snapshot") return forgetPartial(action, ctx);
  const stage = {
    runId: action.recover === "interrupted_run" ? action.run_id : null,
    type: action.recover === "restic_unlock" ? "unlock" : "recover",
    project: projectOf(action),
    repository: repositoryOf(action),
  } as const;
  return recoverLocally(action, stage, ctx);
}

/** Repairs what a dead process left on this host (or restic's locks); says what it did. */
async function recoverOne(action: LocalRecovery, ctx: RecoverContext): Promise<string> {
  switch (action.recover) {
    case "interrupted_run": {
      await ctx.store.markRunInterrupted(
        action.run_id,
        ctx.clock.now().toISOString(),
        `interrupted: its process ended without finishing (found by backupctl pid ${process.pid})`,
      );
      return `recover: run ${action.run_id} of ${action.project} marked interrupted`;
    }
    case "stale_lock": {
      const removed = removeStaleLock(ctx.store.dir, action.project, ctx.host);
      return removed
        ? `recover: removed the stale lock of ${action.project}`
        : `recover: the lock of ${action.project} is no longer stale (taken over or released)`;
    }
    case "leftover_files": {
      const n = deleteLeftoverFolders(ctx.store, action.paths);
      return `recover: deleted ${n} leftover private folder${n === 1 ? "" : "s"}`;
    }
    case "restic_unlock": {
      // Locks whose holder is provably gone (host, PID and start time: see restic-locks.ts); a live one stays.
      const removed = await repositoryFor(ctx, action.repository).removeStaleLocks();
      return `recover: restic locks of ${action.repository}: ${
        removed.length === 0 ? "no stale locks" : `removed ${removed.map((verdict) => verdict.description).join("; ")}`
      }`;
    }
  }
}

async function recoverLocally(
  action: LocalRecovery,
  stage: { runId: string | null; type: "recover" | "unlock"; project?: string; repository?: string },
  ctx: RecoverContext,
): Promise<Outcome> {
  const outcome = await runStage(ctx, stage, async () => ({ value: await recoverOne(action, ctx) }));
  if (outcome.ok) {
    ctx.out(`~ ${outcome.value}`);
    return { status: "succeeded" };
  }
  ctx.out(`✗ ${describeAction(action)} failed: ${outcome.error}`);
  return { status: "failed", error: outcome.error };
}

async function forgetPartial(action: Of<"partial_snapshot">, ctx: RecoverContext): Promise<Outcome> {
  const repository = repositoryFor(ctx, action.repository);
  const ids = action.snapshots;
  const stage = forgetStage(action);
  // No `forgotten` count: the prune cadence weighs what retention deleted, not the remains of failed runs (a cut
  // stream's few packs wait for the next prune that retention or prune.every brings).
  const outcome = await runStage(ctx, stage, async () => ({ value: await repository.forget(ids) }));
  if (!outcome.ok) {
    ctx.out(`✗ recover ${action.project}/${action.source} in ${action.repository} failed: ${outcome.error}`);
    return { status: "failed", error: outcome.error };
  }
  ctx.out(
    `~ recover: forgot the partial snapshot ${
      ids.map((id) => id.slice(0, 8)).join(", ")
    } of ${action.project}/${action.source} in ${action.repository}`,
  );
  await refreshInventory(null, action.repository, action.project, ctx);
  return { status: "succeeded" };
}
