/**
 * `verify`: a project's restore drill, as an audited `verify` stage (the restored bytes, the snapshot, the restore's
 * duration); a failure is a `verify.failed` notification recorded with it.
 */
import { enqueueFor, verifyFailed } from "../../notify/events.ts";
import { humanDuration } from "../../format/time.ts";
import type { Action } from "../../plan/types.ts";
import { type ApplyContext, repositoryFor, type StepContext } from "../context.ts";
import { formatBytes } from "../../format/bytes.ts";
import { runStage } from "../stage.ts";
import type { Outcome } from "./types.ts";

export function verify(action: Extract<Action, { type: "verify" }>, ctx: ApplyContext): Promise<Outcome> {
  return drillStage(action.project, ctx);
}

/** Runs a project's restore drill (also `backupctl verify`); returns whether it passed. */
export async function runDrill(
  projectName: string,
  ctx: StepContext & Pick<ApplyContext, "host" | "privateDir">,
): Promise<boolean> {
  return (await drillStage(projectName, ctx)).status === "succeeded";
}

async function drillStage(
  projectName: string,
  ctx: StepContext & Pick<ApplyContext, "host" | "privateDir">,
): Promise<Outcome> {
  // Imported when a drill runs: an apply with no drill due never loads the restore code (start-up time).
  const { drill, drillSource } = await import("../../restore/drill.ts");
  const project = ctx.loaded.config.projects[projectName];
  const repository = project.repositories[0];
  let sourceName = "(none)";
  try {
    sourceName = drillSource(project).name;
  } catch {
    // Reported by the drill itself, inside the audited stage.
  }
  const restoreContext = {
    loaded: ctx.loaded,
    store: ctx.store,
    privateDir: ctx.privateDir,
    repositoryFor: (name: string) => repositoryFor(ctx, name),
  };
  const outcome = await runStage(
    ctx,
    { runId: null, type: "verify", project: projectName, source: sourceName, repository },
    async () => {
      const result = await drill(project, restoreContext);
      return { value: result, bytes: result.bytes, snapshotId: result.snapshot };
    },
    {
      notify: (result) =>
        result.ok ? [] : enqueueFor(
          ctx.loaded,
          [projectName],
          verifyFailed({
            host: ctx.host,
            at: ctx.clock.now(),
            project: projectName,
            repositories: project.repositories,
            source: sourceName,
            repository,
            error: result.error ?? "",
            durationMs: result.durationMs,
          }),
          { now: ctx.clock.now() },
        ),
    },
  );
  if (!outcome.ok) {
    ctx.out(`✗ verify ${projectName} failed: ${outcome.error}`);
    return { status: "failed", error: outcome.error };
  }
  const r = outcome.value;
  ctx.out(
    `~ verify ${projectName}: restored ${r.source} (snapshot ${r.snapshot.slice(0, 8)}, ${formatBytes(r.bytes)}) ` +
      `from ${r.repository} into the scratch database in ${humanDuration(r.restoreMs)}` +
      (r.rows === undefined ? "" : `; check: ${r.rows} row${r.rows === 1 ? "" : "s"}`),
  );
  return { status: "succeeded" };
}
