/** `init`: creates a repository (or adopts one that exists), with the chunker parameters of the one it copies from. */
import type { Action } from "../../plan/types.ts";
import { type ApplyContext, repositoryFor } from "../context.ts";
import { runStage } from "../stage.ts";
import type { Outcome } from "./types.ts";

export async function init(action: Extract<Action, { type: "init" }>, ctx: ApplyContext): Promise<Outcome> {
  const repository = repositoryFor(ctx, action.repository);
  const outcome = await runStage(ctx, { runId: null, type: "init", repository: action.repository }, async () => {
    const value = await repository.init(
      action.chunker_from ? repositoryFor(ctx, action.chunker_from) : undefined,
    );
    await ctx.store.markRepositoryInitialized(action.repository, repository.location(), ctx.clock.now().toISOString());
    return { value };
  });
  if (!outcome.ok) {
    ctx.out(`✗ init ${action.repository} failed: ${outcome.error}`);
    return { status: "failed", error: outcome.error };
  }
  const how = outcome.value === "created" ? "created" : "already initialized, adopted";
  const location = repository.location();
  ctx.out(`+ init ${action.repository}: ${how} ${location.startsWith("(") ? location : `(${location})`}`);
  return { status: "succeeded" };
}
