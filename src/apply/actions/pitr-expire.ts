/**
 * `pitr_expire`: pgBackRest's expirations, by the labels the plan showed (`expire --set`), never by whatever the
 * retention says at the time: a backup made since the plan is never expired unseen. One needing approval runs only
 * when approved; otherwise it is held, audited (a `skipped` stage) and notified, as a forget is (held-deletion.ts).
 */
import { stanzaRepository } from "../../plan/pitr-actions.ts";
import type { Action } from "../../plan/types.ts";
import { pitrSourceOf, preparedPgBackRest } from "../pitr.ts";
import { runStage, SkippedStage } from "../stage.ts";
import { holdForApproval } from "./held-deletion.ts";
import { type ActionContexts, groupOf, type Outcome } from "./types.ts";

type Expire = Extract<Action, { type: "pitr_expire" }>;

export async function pitrExpire(action: Expire, ctx: ActionContexts["pitr_expire"]): Promise<Outcome> {
  const { pass } = ctx;
  const repository = stanzaRepository(action.stanza);
  const group = groupOf({ ...action, repository });
  const n = action.labels.length;
  const label = `${n} pgBackRest backup${n === 1 ? "" : "s"} of ${action.project}/${action.source} ` +
    `(stanza ${action.stanza})`;
  const stage = { runId: null, type: "forget", project: action.project, source: action.source, repository } as const;
  if (pass.failedProjects.has(action.project)) {
    pass.notDone.add(group);
    const why = `the backup of ${action.project} failed in this apply: retention waits for a successful backup`;
    await runStage(ctx, stage, () => Promise.reject(new SkippedStage(`held: ${why}`)));
    ctx.out(`! HELD: expire ${label}: ${why}; nothing was expired.`);
    return { status: "skipped" };
  }
  if (action.approval === "required" && !ctx.approved) {
    // Always a new plan: a saved plan's held deletions that can run again from the file are restic's forgets only.
    return await holdForApproval(
      { ...action, repository, deleted: action.labels, reason: action.approval_reason },
      ctx,
      {
        what: `expire ${label}`,
        approveWith: ctx.approveWith ?? `backupctl apply --project ${action.project} --auto-approve`,
        verb: "expire",
      },
    );
  }
  const { project, source } = pitrSourceOf(ctx.loaded, action);
  const outcome = await runStage(ctx, stage, async () => {
    const pgbackrest = await preparedPgBackRest(project, source, ctx.loaded);
    const info = await pgbackrest.info();
    const planned = new Set(action.labels);
    const present = new Map(info.backups.map((backup) => [backup.label, backup]));
    // The sets to name: each planned backup whose prior is not planned too (expiring a set takes what depends on it).
    const sets = action.labels.filter((name) => {
      const prior = present.get(name)?.prior;
      return present.has(name) && (prior === null || prior === undefined || !planned.has(prior));
    });
    for (const set of sets) await pgbackrest.expire({ set });
    return { value: sets, forgotten: action.labels.filter((name) => present.has(name)).length };
  });
  if (!outcome.ok) {
    pass.notDone.add(group);
    ctx.out(`✗ expire ${label} failed: ${outcome.error}`);
    return { status: "failed", error: outcome.error };
  }
  ctx.out(`- expire ${label}: done`);
  return { status: "succeeded" };
}
