/** `check`: `restic check` of a repository (reading a subset of the data when asked); a failure is notified. */
import { checkFailed, enqueueFor } from "../../notify/events.ts";
import type { Action } from "../../plan/types.ts";
import { type ApplyContext, projectsUsing, repositoryFor } from "../context.ts";
import { runStage } from "../stage.ts";
import { said } from "./outcome.ts";
import type { Outcome } from "./types.ts";

export async function check(action: Extract<Action, { type: "check" }>, ctx: ApplyContext): Promise<Outcome> {
  const repository = repositoryFor(ctx, action.repository);
  const outcome = await runStage(
    ctx,
    { runId: null, type: "check", repository: action.repository },
    async () => ({ value: await repository.check(action.read_data_subset) }),
    {
      notify: (result) =>
        result.ok ? [] : enqueueFor(
          ctx.loaded,
          projectsUsing(ctx.loaded, action.repository),
          checkFailed({
            host: ctx.host,
            at: ctx.clock.now(),
            repository: action.repository,
            error: result.error ?? "",
            durationMs: result.durationMs,
          }),
          { now: ctx.clock.now() },
        ),
    },
  );
  await ctx.store.recordCheck(action.repository, ctx.clock.now().toISOString(), outcome.ok ? "ok" : "failed");
  return said(
    outcome,
    ctx.out,
    `check ${action.repository}${action.read_data_subset ? ` (read ${action.read_data_subset})` : ""}`,
  );
}
