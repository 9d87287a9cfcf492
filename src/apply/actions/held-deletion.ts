/**
 * The hold of a retention deletion that needs approval, shared by restic's forgets (forget.ts) and pgBackRest's
 * expirations (pitr-expire.ts): a deletion a policy change causes (or a policy this state never applied) runs only
 * when approved. Otherwise its retention group is left out of the policies recorded as applied, the hold is audited
 * as a skipped `forget` stage, `deletions.held` is notified, and the operator is told how to approve it.
 */
import { deletionsHeld, enqueueFor } from "../../notify/events.ts";
import { runStage, SkippedStage } from "../stage.ts";
import { type ActionContexts, forgetStage, groupOf, type Outcome } from "./types.ts";

/** A deletion of one retention group, as the plan showed it. */
export interface Deletion {
  project: string;
  source: string;
  /** The repository as the audit names it (`pgbackrest:<stanza>` for a stanza). */
  repository: string;
  /** What it deletes: restic's snapshot ids, or pgBackRest's backup labels. */
  deleted: string[];
  /** Why it needs approval (the plan's `approval_reason`). */
  reason: string | undefined;
}

/**
 * Holds `deletion` for approval (see the top of this file). `what` names it in the output ("forget 3 snapshots of
 * …"), `approveWith` is the command that approves it, `verb` what approving does ("forget", "expire").
 */
export async function holdForApproval(
  deletion: Deletion,
  ctx: ActionContexts["forget"],
  say: { what: string; approveWith: string; verb: string },
): Promise<Outcome> {
  ctx.pass.notDone.add(groupOf(deletion));
  await runStage(
    ctx,
    forgetStage(deletion),
    () => Promise.reject(new SkippedStage(`held: needs approval: ${deletion.reason}`)),
    {
      notify: () =>
        enqueueFor(
          ctx.loaded,
          [deletion.project],
          deletionsHeld({
            host: ctx.host,
            at: ctx.clock.now(),
            project: deletion.project,
            repositories: [deletion.repository],
            source: deletion.source,
            repository: deletion.repository,
            snapshots: deletion.deleted,
            reason: `needs approval: ${deletion.reason}`,
          }),
          { now: ctx.clock.now() },
        ),
    },
  );
  ctx.out(`! HELD: ${say.what} needs approval: ${deletion.reason}.`);
  ctx.out(`  Review it, then run \`${say.approveWith}\` (or answer yes on a terminal) to ${say.verb} them.`);
  return { status: "held" };
}
