/**
 * The contract of the per-action modules: what each action type's handler receives and what it returns. The table
 * in actions/mod.ts is typed by the plan's action union, so every type has exactly one handler.
 */
import type { Action, ActionType, InventorySnapshot } from "../../plan/types.ts";
import type { ResticSnapshot } from "../../repository/restic.ts";
import { retentionGroupKey } from "../../plan/retention.ts";
import type { ApplyContext, StepContext } from "../context.ts";

/**
 * How an action ended. `skipped`: not run because the state does not allow it now (counted as skipped); `held`: a
 * deletion waiting for approval; `idle`: nothing to do after all (a copy with no snapshot, a prune after forgets that
 * did not run), not counted.
 */
export type Outcome =
  | { status: "succeeded" | "skipped" | "held" | "idle" }
  | { status: "failed"; error: string; attempt?: { n: number; of: number } };

/** One project's run, as its backups and copies fill it in. */
export interface RunState {
  id: string;
  project: string;
  /** The snapshot each source's backup made in this run, for the copies that follow. */
  made: Map<string, string>;
  /** The snapshots this run's backups made, per repository, as restic reported them. */
  reported: Map<string, ResticSnapshot[]>;
  /** Repositories this run wrote to. */
  touched: Set<string>;
  /** Repositories whose content this run cannot vouch for (a failed backup, a copy): listed again afterwards. */
  uncertain: Set<string>;
  /** Bytes the run's backups read. */
  bytes?: number;
  /** Bytes the run's backups added to their repositories (restic's data_added: new data after deduplication). */
  bytesAdded?: number;
}

/** What the forgets of one apply share: the groups left as they were, the repositories they changed. */
export interface ForgetPass {
  /** Groups (project, source, repository) whose forget was held, refused or failed: their policy is not recorded. */
  notDone: Set<string>;
  /** Repositories a forget ran in (refreshed afterwards). */
  touched: Set<string>;
  /** Repositories where a forget succeeded: a prune planned only because of forgets runs only there. */
  forgotten: Set<string>;
  /** Projects whose backup failed in this apply: their snapshots all stay until a backup succeeds again. */
  failedProjects: Set<string>;
  /** The inventory as it is after this apply's backups, read once when a forget first needs it. */
  inventory?: InventorySnapshot[];
}

/** What a recovery needs: the steps' context and the host, whose dead processes' leftovers it judges. */
export type RecoverContext = StepContext & Pick<ApplyContext, "host">;

/** The context each action type's handler receives. */
export interface ActionContexts {
  init: ApplyContext;
  backup: ApplyContext & { run: RunState };
  copy: ApplyContext & { run: RunState };
  forget: ApplyContext & { pass: ForgetPass };
  prune: ApplyContext & { forgotten: ReadonlySet<string> };
  check: ApplyContext;
  verify: ApplyContext;
  recover: RecoverContext;
  stanza_create: ApplyContext;
  pitr_backup: ApplyContext & { run: RunState };
  pitr_expire: ApplyContext & { pass: ForgetPass };
  pitr_check: ApplyContext;
}

/** One handler per action type, each given exactly its type of action. */
export type ActionHandlers = {
  [T in ActionType]: (action: Extract<Action, { type: T }>, ctx: ActionContexts[T]) => Promise<Outcome>;
};

/** The audited stage of a forget in one retention group, run by `forget` and by a partial snapshot's recover. */
export function forgetStage(action: { project: string; source: string; repository: string }) {
  return {
    runId: null,
    type: "forget",
    project: action.project,
    source: action.source,
    repository: action.repository,
  } as const;
}

/** The key of a retention group: (project, source, repository). */
export function groupOf(action: { project: string; source: string; repository: string }): string {
  return retentionGroupKey(action.project, action.source, action.repository);
}
