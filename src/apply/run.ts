/**
 * One project's run: its due backups and the copies that follow, as one audited run (`runs` row, a stage per step),
 * between the project's hooks, with a notification when it starts and when it ends. The inventory gains what the run
 * made afterwards.
 */
import { enqueueFor, type RunFailure, runFinished, runStarted } from "../notify/events.ts";
import { humanDuration } from "../format/time.ts";
import type { Action } from "../plan/types.ts";
import { stopRequested } from "../runtime/shutdown.ts";
import { handlers } from "./actions/mod.ts";
import type { RunState } from "./actions/types.ts";
import { type ApplyContext, newRunId } from "./context.ts";
import { type HookName, runHook } from "./hooks.ts";
import { refreshInventory, toInventoryRow } from "./inventory.ts";
import { runStage } from "./stage.ts";

/** What a project's run does: its restic backups, the copies that follow, and its pgBackRest backups. */
export type RunAction = Extract<Action, { type: "backup" | "copy" | "pitr_backup" }>;

/**
 * How many runs failed since the project's last success (a `run.recovered` says it). Read from the state; a state
 * that can no longer be read (the database went away during the run) must not keep the run's result from the fallback
 * file: the notification then says nothing about earlier failures.
 */
async function failuresBefore(ctx: ApplyContext, project: string): Promise<number> {
  try {
    return await ctx.store.failuresSinceLastSuccess(project);
  } catch (error) {
    if (!ctx.store.degraded) throw error;
    return 0;
  }
}

export async function runProject(project: string, actions: RunAction[], ctx: ApplyContext) {
  const started = ctx.clock.now();
  const runId = newRunId(started);
  const repositories = ctx.loaded.config.projects[project].repositories;
  const common = { host: ctx.host, project, repositories };
  const sources = [...new Set(actions.map((a) => a.source))];
  const lease = ctx.fleet?.projects.get(project);
  await ctx.store.startRun(
    {
      id: runId,
      project,
      command: ctx.command,
      startedAt: started.toISOString(),
      fingerprint: ctx.loaded.fingerprint,
      host: ctx.host,
      ...(lease ? { runner: ctx.fleet?.member.options.name, leaseToken: lease.token } : {}),
    },
    enqueueFor(ctx.loaded, [project], runStarted({ ...common, at: started, runId, sources }), { now: started }),
  );
  ctx.notifications?.kick();
  ctx.locks?.get(project)?.setRunId(runId);
  if (lease) await ctx.fleet?.member.setRun(lease, runId);
  ctx.out(`Run ${runId} (project ${project})`);
  let succeeded = 0;
  let failed = 0;
  const errors: string[] = [];
  /** The first failure, for the notification: where it happened and on which attempt. */
  let failure: RunFailure | undefined;
  const fail = (stage: string, error: string, attempt?: RunFailure["attempt"]) => {
    failed++;
    errors.push(`${stage}: ${error}`);
    failure ??= { stage, error, attempt };
  };
  const run: RunState = {
    id: runId,
    project,
    made: new Map(),
    reported: new Map(),
    touched: new Set(),
    uncertain: new Set(),
  };
  const hooks = ctx.loaded.config.projects[project].hooks;
  const hook = async (name: HookName, status: "running" | "succeeded" | "failed") => {
    if (!hooks?.[name]) return undefined;
    await ctx.store.setRunStage(runId, `${name} hook`);
    const outcome = await runStage(ctx, { runId, type: "hook", project, source: name }, async () => ({
      value: await runHook(hooks, name, { project, runId, status, configDir: ctx.loaded.dir }),
    }));
    ctx.out(outcome.ok ? `  ~ ${name} hook: done` : `  ✗ ${name} hook failed: ${outcome.error}`);
    return outcome.ok ? undefined : outcome.error;
  };
  const beforeError = await hook("before", "running");
  if (beforeError) {
    // A failing before hook aborts the run cleanly: nothing is backed up, the run is failed and audited.
    fail("before hook", beforeError);
    failed += actions.length - 1;
  }
  for (const action of beforeError ? [] : actions) {
    if (action.type !== "backup") continue;
    if (stopRequested()) break;
    await ctx.store.setRunStage(runId, `backup ${action.source}`);
    const outcome = await handlers.backup(action, { ...ctx, run });
    if (outcome.status === "failed") fail(`backup ${action.source}`, outcome.error, outcome.attempt);
    else succeeded++;
  }
  for (const action of beforeError ? [] : actions) {
    if (action.type !== "pitr_backup") continue;
    if (stopRequested()) break;
    await ctx.store.setRunStage(runId, `backup ${action.source}`);
    const outcome = await handlers.pitr_backup(action, { ...ctx, run });
    if (outcome.status === "failed") fail(`backup ${action.source}`, outcome.error, outcome.attempt);
    else succeeded++;
  }
  for (const action of beforeError ? [] : actions) {
    if (action.type !== "copy") continue;
    if (stopRequested()) break;
    const outcome = await handlers.copy(action, { ...ctx, run });
    if (outcome.status === "failed") fail(`copy ${action.source} to ${action.repository}`, outcome.error);
    else if (outcome.status === "succeeded") succeeded++;
  }
  const stopped = stopRequested();
  if (stopped) {
    // Interrupted: no refresh and no closing hook. The run stays in the stage it was in; snapshots it made are
    // judged by the next start's recovery (tagged with this run, not recorded as its results: forgotten).
    const finished = ctx.clock.now();
    const durationMs = finished.getTime() - started.getTime();
    const message = runFinished({
      ...common,
      at: finished,
      runId,
      status: "interrupted",
      durationMs,
      bytes: run.bytes,
      bytesAdded: run.bytesAdded,
      failure: { stage: failure?.stage ?? "the run", error: `interrupted by ${stopped}` },
      failuresBefore: 0,
    });
    await ctx.store.finishRun(runId, {
      status: "interrupted",
      finishedAt: finished.toISOString(),
      durationMs,
      error: [`interrupted by ${stopped}`, ...errors].join("\n"),
    }, enqueueFor(ctx.loaded, [project], message, { now: finished }));
    ctx.notifications?.kick();
    ctx.out(`Run ${runId} interrupted by ${stopped}`);
    return { id: runId, project, status: "interrupted", succeeded, failed } as const;
  }
  // After clean backups the inventory gains the snapshots restic reported, which saves listing the repository again
  // (a restic process that derives the key and reads the index: about a second). Where a stage failed, a copy ran or
  // a snapshot's full id is unknown (restic 0.14 reports short ids; see Restic.fullSnapshotId), the repository is
  // listed again, as the next plan's refresh also does.
  for (const name of run.touched) {
    if (!run.uncertain.has(name)) {
      await ctx.store.addSnapshots(name, (run.reported.get(name) ?? []).map(toInventoryRow(ctx.clock.now())));
      continue;
    }
    await ctx.store.setRunStage(runId, `refresh ${name}`);
    const error = await refreshInventory(runId, name, project, ctx);
    if (error) fail(`refresh ${name}`, error);
  }
  const closing: HookName = failed === 0 ? "after" : "onFailure";
  const closingError = await hook(closing, failed === 0 ? "succeeded" : "failed");
  if (closingError) fail(`${closing} hook`, closingError);
  const finished = ctx.clock.now();
  const status = failed === 0 ? "succeeded" : "failed";
  const durationMs = finished.getTime() - started.getTime();
  const message = runFinished({
    ...common,
    at: finished,
    runId,
    status,
    durationMs,
    bytes: run.bytes,
    bytesAdded: run.bytesAdded,
    failure,
    failuresBefore: status === "succeeded" ? await failuresBefore(ctx, project) : 0,
  });
  await ctx.store.finishRun(runId, {
    status,
    finishedAt: finished.toISOString(),
    durationMs,
    error: errors.length ? errors.join("\n") : undefined,
  }, enqueueFor(ctx.loaded, [project], message, { now: finished }));
  ctx.notifications?.kick();
  ctx.out(`Run ${runId} ${status} in ${humanDuration(finished.getTime() - started.getTime())}`);
  return { id: runId, project, status, succeeded, failed } as const;
}
