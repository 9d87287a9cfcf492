/** `stanza_create`: `pgbackrest stanza-create` of a pgbackrest() source's stanza, its configuration written first. */
import { repositoryLabel } from "../../pitr/repository.ts";
import type { Action } from "../../plan/types.ts";
import { stanzaRepository } from "../../plan/pitr-actions.ts";
import type { ApplyContext } from "../context.ts";
import { pitrSourceOf, preparedPgBackRest } from "../pitr.ts";
import { runStage } from "../stage.ts";
import { said } from "./outcome.ts";
import type { Outcome } from "./types.ts";

export async function stanzaCreate(
  action: Extract<Action, { type: "stanza_create" }>,
  ctx: ApplyContext,
): Promise<Outcome> {
  const { project, source } = pitrSourceOf(ctx.loaded, action);
  const stage = {
    runId: null,
    type: "init",
    project: action.project,
    source: action.source,
    repository: stanzaRepository(action.stanza),
  } as const;
  const outcome = await runStage(ctx, stage, async () => {
    const pgbackrest = await preparedPgBackRest(project, source, ctx.loaded);
    await pgbackrest.stanzaCreate();
    return { value: undefined, note: `stanza ${action.stanza} in ${repositoryLabel(source.repository)}` };
  });
  return said(outcome, ctx.out, `stanza-create ${action.stanza} (${action.project}/${action.source})`);
}
