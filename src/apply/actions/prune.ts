/** `prune`: frees the space of forgotten snapshots. One planned only because of this plan's forgets waits for them. */
import type { Action } from "../../plan/types.ts";
import { repositoryFor } from "../context.ts";
import { runStage } from "../stage.ts";
import { said } from "./outcome.ts";
import type { ActionContexts, Outcome } from "./types.ts";

export async function prune(
  action: Extract<Action, { type: "prune" }>,
  ctx: ActionContexts["prune"],
): Promise<Outcome> {
  if (action.trigger === "after-forget" && !ctx.forgotten.has(action.repository)) {
    ctx.out(`~ prune ${action.repository}: skipped, none of its deletions ran`);
    return { status: "idle" };
  }
  const repository = repositoryFor(ctx, action.repository);
  const outcome = await runStage(
    ctx,
    { runId: null, type: "prune", repository: action.repository },
    async () => ({ value: await repository.prune() }),
  );
  return said(outcome, ctx.out, `prune ${action.repository}`);
}
