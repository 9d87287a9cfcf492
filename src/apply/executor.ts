/**
 * Executes a plan, in a fixed order: startup recovery, inits, each project's due backups and copies as one audited
 * run, then (unless a stop was asked for) retention's forgets and maintenance. Each action goes to the handler of
 * its type (actions/mod.ts); every run and stage is written to the state database as it happens.
 */
import type { Action, PlanAction, PlanToApply } from "../plan/types.ts";
import { stopRequested } from "../runtime/shutdown.ts";
import { handlers } from "./actions/mod.ts";
import type { ForgetPass, Outcome, RecoverContext } from "./actions/types.ts";
import { recordAppliedRetention } from "./actions/forget.ts";
import type { ApplyContext, ApplyReport } from "./context.ts";
import { refreshInventory } from "./inventory.ts";
import { type RunAction, runProject } from "./run.ts";
import { stanzaRepository } from "../plan/pitr-actions.ts";
import { LockError } from "../errors.ts";
import { repositoryLeaseKey } from "../state/fleet.ts";
import { enqueueScheduledNotifications } from "./scheduled-notifications.ts";

export async function applyPlan(plan: PlanToApply, ctx: ApplyContext): Promise<ApplyReport> {
  const report: ApplyReport = { succeeded: 0, failed: 0, skipped: 0, held: 0, runs: [] };
  const brokenRepositories = new Set<string>();
  const of = <T extends Action["type"]>(type: T) =>
    plan.actions.filter((a): a is Extract<Action, { type: T }> => a.type === type);

  // The local part of recovery first, then the partial snapshots of failed runs (they need the repositories).
  await applyRecovery(plan.actions, ctx, report);
  for (const action of of("recover")) {
    if (action.recover === "partial_snapshot") count(report, await handlers.recover(action, ctx));
  }

  for (const action of of("init")) {
    const outcome = await handlers.init(action, ctx);
    count(report, outcome);
    if (outcome.status === "failed") brokenRepositories.add(action.repository);
  }
  // pgBackRest's stanzas: one not created cannot be backed up (its name stands for it, as a repository's does).
  for (const action of of("stanza_create")) {
    const outcome = await handlers.stanza_create(action, ctx);
    count(report, outcome);
    if (outcome.status === "failed") brokenRepositories.add(stanzaRepository(action.stanza));
  }

  const byProject = new Map<string, RunAction[]>();
  for (const action of plan.actions) {
    if (action.type !== "backup" && action.type !== "copy" && action.type !== "pitr_backup") continue;
    byProject.set(action.project, [...(byProject.get(action.project) ?? []), action]);
  }
  for (const [project, actions] of byProject) {
    if (stopRequested()) {
      report.skipped += actions.length;
      continue;
    }
    const blocked = (a: RunAction) =>
      a.type === "pitr_backup"
        ? brokenRepositories.has(stanzaRepository(a.stanza))
        : brokenRepositories.has(a.repository) || (a.type === "copy" && brokenRepositories.has(a.from));
    const runnable = actions.filter((a) => !blocked(a));
    for (const action of actions.filter(blocked)) {
      ctx.out(
        `  ! skipped ${action.type} ${project}/${action.source}: a repository or stanza it needs could not be created`,
      );
      report.skipped++;
    }
    if (runnable.length === 0) continue;
    const run = await runProject(project, runnable, ctx);
    report.runs.push(run);
    report.succeeded += run.succeeded;
    report.failed += run.failed;
  }

  if (stopRequested()) {
    // Stopped by a signal: no deletions and no maintenance now; the next apply plans them again.
    report.skipped += plan.actions.filter((a) =>
      ["forget", "prune", "check", "verify", "pitr_expire", "pitr_check"].includes(a.type)
    ).length;
  } else {
    const forgotten = await applyRetention(plan, ctx, report);
    await applyMaintenance(plan, ctx, report, forgotten);
  }

  const succeeded = new Set(report.runs.filter((r) => r.status === "succeeded").map((r) => r.project));
  await enqueueScheduledNotifications(
    ctx,
    plan.overdue.filter((o) => !succeeded.has(o.project)),
    plan.stale_archives,
  );

  // Audit rows and retention records changed even when every action failed or was held: plans made before are stale.
  await ctx.store.bumpSerial();
  return report;
}

/** Adds an action's outcome to the report (`idle`: nothing was needed, not counted). */
function count(report: ApplyReport, outcome: Outcome): void {
  if (outcome.status === "succeeded") report.succeeded++;
  else if (outcome.status === "failed") report.failed++;
  else if (outcome.status === "skipped") report.skipped++;
  else if (outcome.status === "held") report.held++;
}

/**
 * The local part of startup recovery and restic's stale locks, in the plan's order (see recovery.ts); each step is
 * audited as a `recover` stage (`unlock` for restic's locks). Partial snapshots are forgotten afterwards, by applyPlan.
 */
export async function applyRecovery(
  actions: readonly (Action | PlanAction)[],
  ctx: RecoverContext,
  report: ApplyReport,
): Promise<void> {
  for (const action of actions) {
    if (action.type !== "recover" || action.recover === "partial_snapshot") continue;
    count(report, await handlers.recover(action, ctx));
  }
}

/**
 * Retention's forgets, then a refresh of the repositories they changed, then the policy each group is now under.
 * Returns the repositories where a forget succeeded.
 */
async function applyRetention(plan: PlanToApply, ctx: ApplyContext, report: ApplyReport): Promise<Set<string>> {
  const of = <T extends Action["type"]>(type: T) =>
    plan.actions.filter((a): a is Extract<Action, { type: T }> => a.type === type);
  const pass: ForgetPass = {
    notDone: new Set(),
    touched: new Set(),
    forgotten: new Set(),
    // A project whose backup failed in this apply keeps every snapshot until a backup succeeds again.
    failedProjects: new Set(report.runs.filter((run) => run.status !== "succeeded").map((run) => run.project)),
  };
  for (const action of plan.actions) {
    if (action.type !== "forget") continue;
    const outcome = await exclusively(ctx, action.repository, () => handlers.forget(action, { ...ctx, pass }));
    count(report, outcome);
    if (outcome.status === "held") (report.heldActions ??= []).push(action.id);
  }
  for (const action of of("pitr_expire")) {
    const repository = stanzaRepository(action.stanza);
    const outcome = await exclusively(ctx, repository, () => handlers.pitr_expire(action, { ...ctx, pass }));
    count(report, outcome);
    // Like a held forget, a held expiration of a saved plan stays runnable from the file, once, with approval.
    if (outcome.status === "held") (report.heldActions ??= []).push(action.id);
  }
  for (const name of pass.touched) {
    const error = await refreshInventory(null, name, undefined, ctx);
    if (error) report.failed++;
  }
  await recordAppliedRetention(plan, ctx, pass);
  return pass.forgotten;
}

/** Prune, check and drills, in the plan's order. */
async function applyMaintenance(plan: PlanToApply, ctx: ApplyContext, report: ApplyReport, forgotten: Set<string>) {
  for (const action of plan.actions) {
    if (action.type === "prune") {
      count(report, await exclusively(ctx, action.repository, () => handlers.prune(action, { ...ctx, forgotten })));
    } else if (action.type === "check") {
      count(report, await exclusively(ctx, action.repository, () => handlers.check(action, ctx)));
    } else if (action.type === "verify") count(report, await handlers.verify(action, ctx));
    else if (action.type === "pitr_check") {
      const repository = stanzaRepository(action.stanza);
      count(report, await exclusively(ctx, repository, () => handlers.pitr_check(action, ctx)));
    }
  }
}

/**
 * Runs a repository's exclusive work (a forget, a prune, a check). In a fleet it holds the repository's lease
 * meanwhile, so that no other runner forgets, prunes or checks there at the same time (restic's exclusive lock
 * would only make one of them fail); the lease's token joins the fence of the writes made under it. A lease that
 * another runner keeps past the wait skips the action: the next tick plans it again.
 */
async function exclusively(ctx: ApplyContext, repository: string, work: () => Promise<Outcome>): Promise<Outcome> {
  const fleet = ctx.fleet;
  const key = repositoryLeaseKey(repository);
  // Without a fleet, or inside a repository's own unit (its lease held already).
  if (!fleet || fleet.fence.leases.some((lease) => lease.key === key)) return await work();
  let lease;
  try {
    lease = await fleet.member.acquire(key, fleet.waitMs);
  } catch (error) {
    if (!(error instanceof LockError)) throw error;
    ctx.out(`  ! skipped work on repository ${repository}: ${error.message}`);
    return { status: "skipped" };
  }
  const fenced = { key: lease.key, token: lease.token };
  fleet.fence.leases.push(fenced);
  try {
    return await work();
  } finally {
    fleet.fence.leases.splice(fleet.fence.leases.indexOf(fenced), 1);
    await fleet.member.release(lease);
  }
}
