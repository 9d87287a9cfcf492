/**
 * `copy`: `restic copy` of the snapshots a secondary repository lacks, plus the one this run's backup of the source
 * made, from the project's first repository ("dump once, send to many").
 */
import { humanDuration } from "../../format/time.ts";
import type { Action } from "../../plan/types.ts";
import { repositoryFor } from "../context.ts";
import { runStage } from "../stage.ts";
import type { ActionContexts, Outcome } from "./types.ts";

export async function copy(action: Extract<Action, { type: "copy" }>, ctx: ActionContexts["copy"]): Promise<Outcome> {
  const { run } = ctx;
  const made = run.made.get(action.source);
  const ids = [...action.snapshots, ...(made === undefined ? [] : [made])];
  const label = `${run.project}/${action.source} ${action.from} → ${action.repository}`;
  if (ids.length === 0) {
    ctx.out(`  ~ copy ${label}: nothing to copy (no new snapshot: the backup failed or its dump was empty)`);
    return { status: "idle" };
  }
  await ctx.store.setRunStage(run.id, `copy ${action.source} to ${action.repository}`);
  run.touched.add(action.repository);
  run.uncertain.add(action.repository);
  // The project's restic settings (a bandwidth limit, compression) apply to the copy it makes.
  const project = ctx.loaded.config.projects[run.project];
  const target = repositoryFor(ctx, action.repository, project);
  const source = repositoryFor(ctx, action.from);
  const stage = {
    runId: run.id,
    type: "copy",
    project: run.project,
    source: action.source,
    repository: action.repository,
  } as const;
  const outcome = await runStage(ctx, stage, async () => {
    await target.assertCompressionSupported();
    return { value: await target.copyFrom(source, ids) };
  });
  if (!outcome.ok) {
    ctx.out(`  ✗ copy ${label} failed: ${outcome.error}`);
    return { status: "failed", error: outcome.error };
  }
  ctx.out(
    `  + copy ${label}: ${ids.length} snapshot${ids.length === 1 ? "" : "s"} (${humanDuration(outcome.durationMs)})`,
  );
  return { status: "succeeded" };
}
