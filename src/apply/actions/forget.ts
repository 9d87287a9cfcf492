/**
 * `forget`: retention's deletions in one group, by snapshot id. A forget needing approval runs only when approved;
 * otherwise it is held, audited (a `skipped` stage) and notified (held-deletion.ts, shared with pgBackRest's expire). One that the state as it is now does not allow
 * (see {@link unsafeForget}) is refused the same way. After the forgets, each group whose forget was not held or
 * failed records the current policy ({@link recordAppliedRetention}): later forgets under it are routine.
 */
import { policyKey } from "../../plan/retention.ts";
import { pitrPolicyKey, pitrRetention, stanzaRepository } from "../../plan/pitr-actions.ts";
import { type Action, type InventorySnapshot, isUsable, type PlanToApply } from "../../plan/types.ts";
import { type ApplyContext, repositoryFor } from "../context.ts";
import { runStage, SkippedStage } from "../stage.ts";
import { holdForApproval } from "./held-deletion.ts";
import { type ActionContexts, type ForgetPass, forgetStage, groupOf, type Outcome } from "./types.ts";

type Forget = Extract<Action, { type: "forget" }>;

export async function forget(action: Forget, ctx: ActionContexts["forget"]): Promise<Outcome> {
  const { pass } = ctx;
  const group = groupOf(action);
  const ids = action.snapshots;
  const label = `${ids.length} snapshot${
    ids.length === 1 ? "" : "s"
  } of ${action.project}/${action.source} in ${action.repository}`;
  const stage = forgetStage(action);
  const unsafe = pass.failedProjects.has(action.project)
    ? `the backup of ${action.project} failed in this apply: retention waits for a successful backup`
    : unsafeForget(action, pass.inventory ??= (await ctx.store.observe()).snapshots);
  if (unsafe) {
    pass.notDone.add(group);
    await runStage(ctx, stage, () => Promise.reject(new SkippedStage(`held: ${unsafe}`)));
    ctx.out(`! HELD: forget ${label}: ${unsafe}; nothing was forgotten there.`);
    return { status: "skipped" };
  }
  if (action.approval === "required" && !ctx.approved) {
    return await holdForApproval({ ...action, deleted: ids, reason: action.approval_reason }, ctx, {
      what: `forget ${label}`,
      approveWith: ctx.approveWith ?? "backupctl apply --auto-approve",
      verb: "forget",
    });
  }
  const repository = repositoryFor(ctx, action.repository, ctx.loaded.config.projects[action.project]);
  const outcome = await runStage(
    ctx,
    stage,
    async () => ({ value: await repository.forget(ids), forgotten: ids.length }),
  );
  pass.touched.add(action.repository);
  if (!outcome.ok) {
    pass.notDone.add(group);
    ctx.out(`✗ forget ${label} failed: ${outcome.error}`);
    return { status: "failed", error: outcome.error };
  }
  pass.forgotten.add(action.repository);
  ctx.out(`- forget ${label}: done`);
  return { status: "succeeded" };
}

/**
 * The last look before a forget, at the state as it is now (not as the plan saw it): the forget must leave its
 * group a complete snapshot, and may only delete complete or adopted ones (an incomplete one is recovery's to
 * forget). Returns why it must not run, or undefined. The planner already guarantees both; this holds them should
 * the state have moved, or a plan file say otherwise.
 */
function unsafeForget(action: Forget, inventory: InventorySnapshot[]): string | undefined {
  const group = inventory.filter((snapshot) =>
    snapshot.repository === action.repository && snapshot.project === action.project &&
    snapshot.source === action.source
  );
  const ids = new Set(action.snapshots);
  const doomed = group.filter((snapshot) => ids.has(snapshot.id));
  const notComplete = doomed.filter((snapshot) => !isUsable(snapshot));
  if (notComplete.length > 0) {
    return `${notComplete.map((s) => `${s.short_id} (${s.state})`).join(", ")} is not a complete snapshot: ` +
      "retention never forgets one (recovery does)";
  }
  const kept = group.filter((snapshot) => !ids.has(snapshot.id) && isUsable(snapshot));
  if (kept.length === 0) {
    return `it would leave ${action.project}/${action.source} in ${action.repository} without a complete snapshot`;
  }
  return undefined;
}

/**
 * Records the current policy of every retention group of the plan's projects whose forget was not held, refused or
 * failed (with `ctx.retention` "forgets", only the groups whose forget ran: a saved plan's held deletions).
 */
export async function recordAppliedRetention(plan: PlanToApply, ctx: ApplyContext, pass: ForgetPass): Promise<void> {
  const at = ctx.clock.now().toISOString();
  const forgets = new Set(
    plan.actions.flatMap((a) =>
      a.type === "forget"
        ? [groupOf(a)]
        : a.type === "pitr_expire"
        ? [groupOf({ ...a, repository: stanzaRepository(a.stanza) })]
        : []
    ),
  );
  const ran = (group: string) => ctx.retention !== "forgets" || forgets.has(group);
  for (const name of ctx.retention === false ? [] : plan.projects) {
    const project = ctx.loaded.config.projects[name];
    if (!project) continue;
    const policy = policyKey(project.retention);
    for (const repository of project.repositories) {
      for (const source of project.sources) {
        const group = groupOf({ project: name, source: source.name, repository });
        if (pass.notDone.has(group) || !ran(group)) continue;
        await ctx.store.recordRetention({ project: name, source: source.name, repository }, policy, at);
      }
    }
    // A stanza is under pgBackRest's retention as the project's maps to it (plan/pitr-actions.ts).
    for (const source of project.pitr) {
      const repository = stanzaRepository(source.stanza);
      const group = groupOf({ project: name, source: source.name, repository });
      if (pass.notDone.has(group) || !ran(group)) continue;
      const retention = pitrPolicyKey(pitrRetention(project, source));
      await ctx.store.recordRetention({ project: name, source: source.name, repository }, retention, at);
    }
  }
}
