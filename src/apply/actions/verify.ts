/**
 * `verify`: a project's restore drill, as an audited `verify` stage (the restored bytes, the snapshot, the drill's
 * duration, and a note of what was restored and checked: the evidence `verify --report` lists); a failure is a
 * `verify.failed` notification recorded with it, a drill slower than the project's `verify.rto` a `drill.slow` one.
 */
import { parseDuration } from "../../config/duration.ts";
import type { NormalizedProject } from "../../config/normalize.ts";
import { drillSlow, enqueueFor, verifyFailed } from "../../notify/events.ts";
import type { Message } from "../../notify/message.ts";
import type { DrillResult } from "../../restore/drill.ts";
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
  const pitr = await import("../../pitr/drill.ts");
  const project = ctx.loaded.config.projects[projectName];
  // A pgbackrest() source is drilled by restoring its stanza into a scratch cluster (pitr/drill.ts), not from restic.
  const pitrSource = pitr.pitrDrillSource(project);
  const repository = pitrSource ? `pgbackrest:${pitrSource.stanza}` : project.repositories[0];
  let sourceName = pitrSource?.name ?? "(none)";
  try {
    if (!pitrSource) sourceName = drillSource(project).name;
  } catch {
    // Reported by the drill itself, inside the audited stage.
  }
  // The recovery time objective: the whole drill (restore and check) is the time a restore takes to be usable.
  const rto = project.verify?.rto;
  const rtoMs = rto ? parseDuration(rto) : undefined;
  const slowerThanObjective = (durationMs: number) => rtoMs !== undefined && durationMs > rtoMs;
  const notice = (message: Message) => enqueueFor(ctx.loaded, [projectName], message, { now: ctx.clock.now() });
  const common = {
    host: ctx.host,
    at: ctx.clock.now(),
    project: projectName,
    repositories: project.repositories,
    source: sourceName,
    repository,
  };
  const restoreContext = {
    loaded: ctx.loaded,
    store: ctx.store,
    privateDir: ctx.privateDir,
    repositoryFor: (name: string) => repositoryFor(ctx, name),
  };
  const outcome = await runStage<DrillResult | { kind: "pitr"; note: string }>(
    ctx,
    { runId: null, type: "verify", project: projectName, source: sourceName, repository },
    async () => {
      if (pitrSource) {
        const context = { configDir: ctx.loaded.dir, privateDir: ctx.privateDir };
        const result = await pitr.projectPitrDrill(project, pitrSource, context);
        const note = pitr.pitrDrillNote(result, project.verify?.expect?.minRows);
        return { value: { kind: "pitr" as const, note }, bytes: result.bytes, snapshotId: result.backup, note };
      }
      const result = await drill(project, restoreContext);
      return {
        value: result,
        bytes: result.bytes,
        snapshotId: result.snapshot,
        note: drillNote(project.verify, result),
      };
    },
    {
      notify: (result) => {
        if (!result.ok) {
          return notice(verifyFailed({ ...common, error: result.error ?? "", durationMs: result.durationMs }));
        }
        if (rto === undefined || rtoMs === undefined || !slowerThanObjective(result.durationMs)) return [];
        return notice(drillSlow({ ...common, durationMs: result.durationMs, rtoMs, rto }));
      },
    },
  );
  if (!outcome.ok) {
    ctx.out(`✗ verify ${projectName} failed: ${outcome.error}`);
    return { status: "failed", error: outcome.error };
  }
  const r = outcome.value;
  if (slowerThanObjective(outcome.durationMs)) {
    ctx.out(
      `! verify ${projectName} took ${humanDuration(outcome.durationMs)}, longer than its recovery time objective ` +
        `${rto} (drill.slow)`,
    );
  }
  if (r.kind === "pitr") {
    ctx.out(`~ verify ${projectName}: ${r.note}`);
    return { status: "succeeded" };
  }
  if (r.kind !== "database") {
    ctx.out(`~ verify ${projectName}: ${drillNote(project.verify, r)}`);
    return { status: "succeeded" };
  }
  ctx.out(
    `~ verify ${projectName}: restored ${r.source} (snapshot ${r.snapshot.slice(0, 8)}, ${formatBytes(r.bytes)}) ` +
      `from ${r.repository} into the scratch database in ${humanDuration(r.restoreMs)}` +
      (r.rows === undefined ? "" : `; check: ${r.rows} row${r.rows === 1 ? "" : "s"}`),
  );
  return { status: "succeeded" };
}

/** What a drill restored and checked, in words: the stage's note, and the evidence report's "restored and checked". */
function drillNote(spec: NormalizedProject["verify"], result: DrillResult): string {
  const snapshot = `snapshot ${result.snapshot.slice(0, 8)}`;
  const took = humanDuration(result.restoreMs);
  if (result.files) {
    const f = result.files;
    return `restored ${f.restored} of ${f.total} file${f.total === 1 ? "" : "s"} (${formatBytes(result.bytes)}) of ` +
      `${result.source} from ${snapshot} in ${result.repository} in ${took}; ${f.matched} matched, ` +
      `${f.changedSince} changed since, ${f.mismatched.length} mismatched, ${f.missingLive} missing live`;
  }
  if (result.dump) {
    const d = result.dump;
    return `restored the dump of ${result.source} (${snapshot}, ${formatBytes(result.bytes)}) from ` +
      `${result.repository} in ${took}; ` +
      (d.recordedBytes === undefined
        ? "no backup of this state recorded its size: not compared"
        : `${result.bytes} bytes, as its backup recorded`) +
      (d.recordedSha256 === undefined
        ? `; sha256 ${d.sha256.slice(0, 16)}… (no checksum recorded at backup)`
        : `; sha256 ${d.sha256.slice(0, 16)}…, as its backup recorded`);
  }
  const restored = `restored ${result.source} (${snapshot}, ${formatBytes(result.bytes)}) from ` +
    `${result.repository} into a scratch ${spec?.into?.type ?? ""} database in ${took}`;
  if (result.rows === undefined) return `${restored}; no check query`;
  return `${restored}; check query found ${result.rows} (at least ${spec?.expect?.minRows ?? 1} expected)`;
}
