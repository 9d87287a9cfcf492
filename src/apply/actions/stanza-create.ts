/**
 * `stanza_create`: `pgbackrest stanza-create` of a pgbackrest() source's stanza, its configuration written first; the
 * remainder of an earlier one cut short is removed first (pitr/stanza-repair.ts).
 */
import { repositoryLabel } from "../../pitr/repository.ts";
import type { Action } from "../../plan/types.ts";
import { stanzaRepository } from "../../plan/pitr-actions.ts";
import { cutStanzaCreate, removeCutStanza } from "../../pitr/stanza-repair.ts";
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
    // A stanza-create cut short leaves a stanza that every later stanza-create refuses: it starts again.
    // Only a local repository is looked at: in a bucket, pgBackRest's own refusal says what to remove.
    const cut = source.repository.type === "s3" ? undefined : cutStanzaCreate(source.repository.path, action.stanza);
    const removed = cut === undefined ? [] : removeCutStanza(cut);
    if (cut !== undefined) {
      ctx.out(
        `  ! stanza ${action.stanza}: a stanza-create was cut short (no backup yet): removed ${removed.join(", ")}`,
      );
    }
    await pgbackrest.stanzaCreate();
    return {
      value: undefined,
      note: `stanza ${action.stanza} in ${repositoryLabel(source.repository)}` +
        (cut === undefined ? "" : ` (completed a stanza-create cut short: removed ${removed.join(", ")} of ${cut})`),
    };
  });
  return said(outcome, ctx.out, `stanza-create ${action.stanza} (${action.project}/${action.source})`);
}
