/**
 * `pitr_check`: `pgbackrest check` of a stanza (its configuration, the repository, and a WAL segment switched and
 * seen arriving in the archive); a failure is notified as check.failed.
 */
import { checkFailed, enqueueFor } from "../../notify/events.ts";
import { stanzaRepository } from "../../plan/pitr-actions.ts";
import type { Action } from "../../plan/types.ts";
import type { ApplyContext } from "../context.ts";
import { pitrSourceOf, preparedPgBackRest } from "../pitr.ts";
import { runStage } from "../stage.ts";
import { said } from "./outcome.ts";
import type { Outcome } from "./types.ts";

export async function pitrCheck(action: Extract<Action, { type: "pitr_check" }>, ctx: ApplyContext): Promise<Outcome> {
  const { project, source } = pitrSourceOf(ctx.loaded, action);
  const repository = stanzaRepository(action.stanza);
  const outcome = await runStage(
    ctx,
    { runId: null, type: "check", project: action.project, source: action.source, repository },
    async () => {
      const pgbackrest = await preparedPgBackRest(project, source, ctx.loaded);
      return { value: await pgbackrest.check() };
    },
    {
      notify: (result) =>
        result.ok ? [] : enqueueFor(
          ctx.loaded,
          [action.project],
          checkFailed({
            host: ctx.host,
            at: ctx.clock.now(),
            repository,
            error: result.error ?? "",
            durationMs: result.durationMs,
          }),
          { now: ctx.clock.now() },
        ),
    },
  );
  return said(outcome, ctx.out, `check stanza ${action.stanza} (${action.project}/${action.source})`);
}
