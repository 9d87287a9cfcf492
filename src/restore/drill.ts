/**
 * Restore drills (`verify: { every, into, check?, expect? }`): the latest snapshot of the project's database source
 * is restored into the scratch database named by `into` (dropped and created first), then the check query runs
 * against it. The measured restore time, the restored size and the result go to the audit as a `verify` stage.
 */
import type { NamedSource, NormalizedProject } from "../config/normalize.ts";
import { SourceError } from "../errors.ts";
import { locate, type RestoreContext, streamDump } from "./restore.ts";
import { checkQuery, recreate, restoreSink, sameDatabase } from "./targets.ts";

export interface DrillResult {
  source: string;
  repository: string;
  /** The snapshot restored (full id). */
  snapshot: string;
  /** Bytes of the restored dump. */
  bytes: number;
  /** How long the restore itself took (restic dump → decryption → database). */
  restoreMs: number;
  /** What the check query counted, when there is one. */
  rows?: number;
}

/** The source a drill restores: the project's first database source of the scratch target's kind. */
export function drillSource(project: NormalizedProject): NamedSource {
  const into = project.verify!.into;
  const source = project.sources.find((s) => s.type === into.type && s.part !== "globals");
  if (!source) {
    throw new SourceError(
      `verify.into is a ${into.type} database but project ${project.name} has no ${into.type} source to restore`,
    );
  }
  return source;
}

export async function drill(project: NormalizedProject, ctx: RestoreContext): Promise<DrillResult> {
  const spec = project.verify!;
  const source = drillSource(project);
  if (sameDatabase(spec.into, source as typeof spec.into, ctx.loaded.dir)) {
    throw new SourceError(
      `verify.into names the project's own ${source.type} database: a drill drops and recreates its target, so point ` +
        "it at a scratch database",
    );
  }
  const repository = project.repositories[0];
  const located = await locate(ctx, project, source, repository, "latest");
  const context = { configDir: ctx.loaded.dir, privateDir: ctx.privateDir };
  await recreate(spec.into, context);
  const sink = restoreSink(spec.into, located.format!, context);
  const outcome = await streamDump(located, { sink }, ctx);
  const result: DrillResult = {
    source: source.name,
    repository,
    snapshot: located.snapshot.id,
    bytes: outcome.bytes,
    restoreMs: outcome.durationMs,
  };
  if (spec.check) {
    result.rows = await checkQuery(spec.into, spec.check, context);
    const minRows = spec.expect?.minRows ?? 1;
    if (result.rows < minRows) {
      throw new SourceError(
        `the check query returned ${result.rows} row${result.rows === 1 ? "" : "s"}, expected at least ${minRows}: ` +
          `the snapshot ${located.snapshot.short_id} restored, but its data is not what the drill expects`,
      );
    }
  }
  return result;
}
