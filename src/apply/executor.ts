/**
 * Executes a plan: initialize repositories, then run each project's due backups as one audited run. Every run and
 * stage is written to the state database as it happens; the inventory is refreshed from restic afterwards.
 */
import { randomBytes } from "node:crypto";
import type { Clock } from "../clock.ts";
import type { LoadedConfig } from "../config/load.ts";
import { redact } from "../config/secrets.ts";
import { BackupctlError, PartialSnapshotError } from "../errors.ts";
import { ResticError } from "../repository/restic-errors.ts";
import { humanDuration, isoSeconds } from "../format/time.ts";
import { policyKey } from "../plan/retention.ts";
import { type InventorySnapshot, isUsable, type Overdue, type Plan, type PlanAction } from "../plan/types.ts";
import { plan } from "../plan/planner.ts";
import { type BackupOptions, Restic, type ResticSnapshot } from "../repository/restic.ts";
import { backupInput } from "../sources/input.ts";
import type { NewNotification, NewStage, StageResult, StateStore } from "../state/store.ts";
import { encryptionFilter } from "../encrypt/filter.ts";
import type { StreamFilter } from "../encrypt/types.ts";
import { type HookName, runHook } from "./hooks.ts";
import { formatBytes } from "../format/bytes.ts";
import { startProgress } from "./progress.ts";
import { stopRequested } from "../runtime/shutdown.ts";
import type { ProjectLock } from "./lock.ts";
import { deleteLeftoverFolders, removeStaleLock } from "./recovery.ts";
import { describeAction } from "../plan/render.ts";
import { discardSnapshot, storedName, streamBackup } from "./pipeline.ts";
import { type Backoff, backoffFor, delayBefore, isTransient, sleep } from "./retry.ts";
import { parseDuration } from "../config/duration.ts";
import {
  backupOverdue,
  checkFailed,
  dailySummary,
  deletionsHeld,
  enqueueFor,
  overdueKey,
  previousDay,
  type RunFailure,
  runFinished,
  runStarted,
  verifyFailed,
} from "../notify/events.ts";
import { eventsFor } from "../notify/message.ts";
import { drill, drillSource } from "../restore/drill.ts";
import type { OutboxSender } from "../notify/outbox.ts";

export interface ApplyContext {
  loaded: LoadedConfig;
  /** Whether deletions that need approval may run (--auto-approve, or "yes" on a terminal). */
  approved: boolean;
  store: StateStore;
  clock: Clock;
  /** Host name recorded in snapshots. */
  host: string;
  /** Folder (0700) for private files of this process's stages, under the state folder. */
  privateDir: string;
  /** The command recorded on each run (`backup`: a backup on demand, outside the schedule). */
  command: "apply" | "watch" | "backup" | "forget";
  /**
   * Whether the plan evaluated retention for its projects (default true). A `backup` plan forgets nothing and says
   * nothing about retention: the policy applied to each group is then not recorded, so a forget that needs approval
   * (a changed policy) still needs it afterwards.
   */
  retention?: boolean | "forgets";
  /** The command that runs held deletions once reviewed (default `backupctl apply --auto-approve`). */
  approveWith?: string;
  /** The project locks this process holds: each run writes its id into its project's lock. */
  locks?: Map<string, ProjectLock>;
  /** Progress output, one line at a time. */
  out: (line: string) => void;
  /** Sends the notifications this apply enqueues, in the background (none when absent, as in tests). */
  notifications?: OutboxSender;
}

/** What recording a stage needs: the state, the clock, the config, and somewhere to report. */
export type StageContext = Pick<ApplyContext, "loaded" | "store" | "clock" | "out" | "notifications">;

export interface ApplyReport {
  succeeded: number;
  failed: number;
  /** Actions not run because something they depend on failed. */
  skipped: number;
  /** Deletions held back because they need approval. */
  held: number;
  /** The ids of the forget actions held back because they need approval. */
  heldActions?: string[];
  runs: { id: string; project: string; status: "succeeded" | "failed" | "interrupted" }[];
}

export function newRunId(at: Date): string {
  return `${isoSeconds(at).replace(/[-:]/g, "")}-${randomBytes(3).toString("hex")}`;
}

export function repositoryFor(ctx: Pick<StageContext, "loaded" | "store">, name: string): Restic {
  return new Restic(name, ctx.loaded.config.repositories[name], ctx.loaded.dir, ctx.store.privateDir);
}

export async function applyPlan(plan: Plan, ctx: ApplyContext): Promise<ApplyReport> {
  const report: ApplyReport = { succeeded: 0, failed: 0, skipped: 0, held: 0, runs: [] };
  const brokenRepositories = new Set<string>();

  await applyRecovery(plan.actions, ctx, report);

  for (
    const action of plan.actions.filter((a) =>
      a.type === "recover" && (a.recover ?? "partial_snapshot") === "partial_snapshot"
    )
  ) {
    const repository = repositoryFor(ctx, action.repository!);
    const ids = action.snapshots ?? [];
    const stage = {
      runId: null,
      type: "forget",
      project: action.project,
      source: action.source,
      repository: action.repository,
    } as const;
    // No `forgotten` count: the prune cadence weighs what retention deleted, not the remains of failed runs (a cut
    // stream's few packs wait for the next prune that retention or prune.every brings).
    const outcome = await auditedStage(ctx, stage, async () => ({ value: await repository.forget(ids) }));
    if (outcome.ok) {
      report.succeeded++;
      ctx.out(
        `~ recover: forgot the partial snapshot ${
          ids.map((id) => id.slice(0, 8)).join(", ")
        } of ${action.project}/${action.source} in ${action.repository}`,
      );
      await refreshInventory(null, action.repository!, action.project, ctx);
    } else {
      report.failed++;
      ctx.out(`✗ recover ${action.project}/${action.source} in ${action.repository} failed: ${outcome.error}`);
    }
  }

  for (const action of plan.actions.filter((a) => a.type === "init")) {
    const ok = await initRepository(action, ctx);
    if (ok) report.succeeded++;
    else {
      report.failed++;
      brokenRepositories.add(action.repository!);
    }
  }

  const byProject = new Map<string, PlanAction[]>();
  for (const action of plan.actions.filter((a) => a.type === "backup" || a.type === "copy")) {
    byProject.set(action.project!, [...(byProject.get(action.project!) ?? []), action]);
  }
  for (const [project, actions] of byProject) {
    if (stopRequested()) {
      report.skipped += actions.length;
      continue;
    }
    const blocked = (a: PlanAction) =>
      brokenRepositories.has(a.repository!) || (a.from !== undefined && brokenRepositories.has(a.from));
    const runnable = actions.filter((a) => !blocked(a));
    for (const action of actions.filter(blocked)) {
      ctx.out(`  ! skipped ${action.type} ${project}/${action.source}: a repository it needs could not be initialized`);
      report.skipped++;
    }
    if (runnable.length === 0) continue;
    const run = await runProject(project, runnable, ctx);
    report.runs.push(run);
    report.succeeded += run.succeeded;
    report.failed += run.failed;
  }

  if (stopRequested()) {
    // Stopped by a signal: no deletions and no maintenance now; the next apply plans them again.
    report.skipped += plan.actions.filter((a) => ["forget", "prune", "check", "verify"].includes(a.type)).length;
  } else {
    const forgotten = await applyRetention(plan, ctx, report);
    await applyMaintenance(plan, ctx, report, forgotten);
  }

  const succeeded = new Set(report.runs.filter((r) => r.status === "succeeded").map((r) => r.project));
  await enqueueScheduledNotifications(ctx, plan.overdue.filter((o) => !succeeded.has(o.project)));

  // Audit rows and retention records changed even when every action failed or was held: plans made before are stale.
  await ctx.store.bumpSerial();
  return report;
}

/**
 * Notifications that depend on time, not on a result: overdue projects (once when the episode starts, then daily)
 * and each channel's daily summary of the day before (once a day, sent also when nothing ran).
 */
export async function enqueueScheduledNotifications(
  ctx: Pick<ApplyContext, "loaded" | "store" | "clock" | "host" | "notifications">,
  overdue: Overdue[],
): Promise<void> {
  const now = ctx.clock.now();
  const { config } = ctx.loaded;
  const rows: NewNotification[] = [];
  for (const item of overdue) {
    const message = backupOverdue({
      host: ctx.host,
      at: now,
      project: item.project,
      repositories: config.projects[item.project]?.repositories ?? [],
      lastSuccessAt: item.last_success,
      maxAge: item.max_age,
    });
    rows.push(...enqueueFor(ctx.loaded, [item.project], message, { now, key: overdueKey(item, now) }));
  }
  const summaryChannels = Object.entries(config.notifiers)
    .filter(([, notifier]) => eventsFor(notifier).includes("summary.daily")).map(([name]) => name);
  if (summaryChannels.length > 0) {
    const day = previousDay(config.timezone, now);
    const key = `summary.daily:${day.label}`;
    if (!await ctx.store.notificationKeyExists(key)) {
      const digest = await ctx.store.runDigest(day.from.toISOString(), day.to.toISOString());
      const observed = await ctx.store.observe();
      const overdueNow = new Set(plan(ctx.loaded, observed, now, { generatedAt: now }).overdue.map((o) => o.project));
      const runs = await ctx.store.projectRuns();
      const failing = new Set(
        [...runs].filter(([, r]) => r.lastRun?.status === "failed").map(([project]) => project),
      );
      for (const channel of summaryChannels) {
        const projects = Object.values(config.projects)
          .filter((p) => p.enabled && (p.notify ?? []).includes(channel)).map((p) => p.name);
        if (projects.length === 0) continue;
        const message = dailySummary({
          host: ctx.host,
          at: now,
          period: day,
          projects,
          digest,
          overdue: overdueNow,
          failing,
        });
        rows.push(...enqueueFor(ctx.loaded, projects, message, { now, key, channels: [channel] }));
      }
    }
  }
  if (rows.length === 0) return;
  await ctx.store.enqueueNotifications(rows);
  ctx.notifications?.kick();
}

/** The projects whose backups go to (or are copied to) a repository. */
function projectsUsing(loaded: ApplyContext["loaded"], repository: string): string[] {
  return Object.values(loaded.config.projects).filter((p) => p.repositories.includes(repository)).map((p) => p.name);
}

/**
 * The local part of startup recovery and restic's stale locks, in the plan's order (see recovery.ts); each step is
 * audited as a `recover` stage. Partial snapshots are forgotten afterwards, by applyPlan.
 */
export async function applyRecovery(
  actions: PlanAction[],
  ctx: StageContext & Pick<ApplyContext, "host">,
  report: ApplyReport,
): Promise<void> {
  for (
    const action of actions.filter((a) => a.type === "recover" && a.recover && a.recover !== "partial_snapshot")
  ) {
    const stage = {
      runId: action.recover === "interrupted_run" ? action.run_id ?? null : null,
      type: action.recover === "restic_unlock" ? "unlock" : "recover",
      project: action.project,
      repository: action.repository,
    } as const;
    const outcome = await auditedStage(ctx, stage, async () => ({ value: await recoverOne(action, ctx) }));
    if (outcome.ok) {
      report.succeeded++;
      ctx.out(`~ ${outcome.value}`);
    } else {
      report.failed++;
      ctx.out(`✗ ${describeAction(action)} failed: ${outcome.error}`);
    }
  }
}

async function recoverOne(action: PlanAction, ctx: StageContext & Pick<ApplyContext, "host">): Promise<string> {
  const at = ctx.clock.now().toISOString();
  switch (action.recover) {
    case "interrupted_run": {
      await ctx.store.markRunInterrupted(
        action.run_id!,
        at,
        `interrupted: its process ended without finishing (found by backupctl pid ${process.pid})`,
      );
      return `recover: run ${action.run_id} of ${action.project} marked interrupted`;
    }
    case "stale_lock": {
      const removed = removeStaleLock(ctx.store.dir, action.project!, ctx.host);
      return removed
        ? `recover: removed the stale lock of ${action.project}`
        : `recover: the lock of ${action.project} is no longer stale (taken over or released)`;
    }
    case "leftover_files": {
      const n = deleteLeftoverFolders(ctx.store, action.paths ?? []);
      return `recover: deleted ${n} leftover private folder${n === 1 ? "" : "s"}`;
    }
    case "restic_unlock": {
      // Locks whose holder is provably gone (host, PID and start time: see restic-locks.ts); a live one stays.
      const removed = await repositoryFor(ctx, action.repository!).removeStaleLocks();
      return `recover: restic locks of ${action.repository}: ${
        removed.length === 0 ? "no stale locks" : `removed ${removed.map((verdict) => verdict.description).join("; ")}`
      }`;
    }
    default:
      throw new Error(`unknown recovery ${action.recover}`);
  }
}

/**
 * Forgets by snapshot id. A forget needing approval runs only when approved; otherwise it is held, audited and
 * reported. Afterwards every retention group of the plan's projects whose forget was not held or failed records
 * the current policy: later forgets under the same policy are routine.
 */
async function applyRetention(plan: Plan, ctx: ApplyContext, report: ApplyReport): Promise<Set<string>> {
  const notDone = new Set<string>();
  const touched = new Set<string>();
  const forgotten = new Set<string>();
  // A project whose backup failed in this apply keeps every snapshot until a backup succeeds again.
  const failedProjects = new Set(report.runs.filter((run) => run.status !== "succeeded").map((run) => run.project));
  /** The inventory as it is now (after this apply's backups), read once: each forget touches only its own group. */
  let inventory: InventorySnapshot[] | undefined;
  for (const action of plan.actions.filter((a) => a.type === "forget")) {
    const group = `${action.project}\u0000${action.source}\u0000${action.repository}`;
    const ids = action.snapshots ?? [];
    const label = `${ids.length} snapshot${
      ids.length === 1 ? "" : "s"
    } of ${action.project}/${action.source} in ${action.repository}`;
    const stage = {
      runId: null,
      type: "forget",
      project: action.project,
      source: action.source,
      repository: action.repository,
    } as const;
    const unsafe = failedProjects.has(action.project!)
      ? `the backup of ${action.project} failed in this apply: retention waits for a successful backup`
      : unsafeForget(action, inventory ??= (await ctx.store.observe()).snapshots);
    if (unsafe) {
      notDone.add(group);
      report.skipped++;
      await auditedStage(ctx, stage, () => Promise.reject(new HeldError(`held: ${unsafe}`)));
      ctx.out(`! HELD: forget ${label}: ${unsafe}; nothing was forgotten there.`);
      continue;
    }
    if (action.approval === "required" && !ctx.approved) {
      notDone.add(group);
      report.held++;
      (report.heldActions ??= []).push(action.id);
      const project = action.project!;
      await auditedStage(
        ctx,
        stage,
        () => Promise.reject(new HeldError(`held: needs approval: ${action.approval_reason}`)),
        () =>
          enqueueFor(
            ctx.loaded,
            [project],
            deletionsHeld({
              host: ctx.host,
              at: ctx.clock.now(),
              project,
              repositories: [action.repository!],
              source: action.source!,
              repository: action.repository!,
              snapshots: ids,
              reason: `needs approval: ${action.approval_reason}`,
            }),
            { now: ctx.clock.now() },
          ),
      );
      ctx.out(`! HELD: forget ${label} needs approval: ${action.approval_reason}.`);
      ctx.out(
        `  Review it, then run \`${
          ctx.approveWith ?? "backupctl apply --auto-approve"
        }\` (or answer yes on a terminal) to forget them.`,
      );
      continue;
    }
    const repository = repositoryFor(ctx, action.repository!);
    const outcome = await auditedStage(
      ctx,
      stage,
      async () => ({ value: await repository.forget(ids), forgotten: ids.length }),
    );
    touched.add(action.repository!);
    if (outcome.ok) {
      report.succeeded++;
      forgotten.add(action.repository!);
      ctx.out(`- forget ${label}: done`);
    } else {
      report.failed++;
      notDone.add(group);
      ctx.out(`✗ forget ${label} failed: ${outcome.error}`);
    }
  }
  for (const name of touched) {
    const error = await refreshInventory(null, name, undefined, ctx);
    if (error) report.failed++;
  }
  const at = ctx.clock.now().toISOString();
  // "forgets": only the groups whose forget ran (a saved plan's held deletions, approved later).
  const ran = (group: string) =>
    ctx.retention !== "forgets" ||
    plan.actions.some((a) => a.type === "forget" && `${a.project}\u0000${a.source}\u0000${a.repository}` === group);
  for (const name of ctx.retention === false ? [] : plan.projects) {
    const project = ctx.loaded.config.projects[name];
    if (!project) continue;
    const policy = policyKey(project.retention);
    for (const repository of project.repositories) {
      for (const source of project.sources) {
        const group = `${name}\u0000${source.name}\u0000${repository}`;
        if (notDone.has(group) || !ran(group)) continue;
        await ctx.store.recordRetention({ project: name, source: source.name, repository }, policy, at);
      }
    }
  }
  return forgotten;
}

/** Marks a held deletion in the audit (a stage row with status "skipped"). */
class HeldError extends BackupctlError {}

/**
 * The last look before a forget, at the state as it is now (not as the plan saw it): the forget must leave its
 * group a complete snapshot, and may only delete complete or adopted ones (an incomplete one is recovery's to
 * forget). Returns why it must not run, or undefined. The planner already guarantees both; this holds them should
 * the state have moved, or a plan file say otherwise.
 */
function unsafeForget(action: PlanAction, inventory: InventorySnapshot[]): string | undefined {
  const group = inventory.filter((snapshot) =>
    snapshot.repository === action.repository && snapshot.project === action.project &&
    snapshot.source === action.source
  );
  const ids = new Set(action.snapshots ?? []);
  const doomed = group.filter((snapshot) => ids.has(snapshot.id));
  const notComplete = doomed.filter((snapshot) => !isUsable(snapshot));
  if (notComplete.length > 0) {
    return `${notComplete.map((s) => `${s.short_id} (${s.state})`).join(", ")} is not a complete snapshot: ` +
      "retention never forgets one (recovery does)";
  }
  const kept = group.filter((snapshot) => !ids.has(snapshot.id) && isUsable(snapshot));
  if (kept.length === 0) {
    return `it would leave ${action.project}/${action.source} in ${action.repository} without a complete snapshot`;
  }
  return undefined;
}

/** Prune, check and drills. A prune planned only because of forgets is skipped when none of them ran. */
async function applyMaintenance(plan: Plan, ctx: ApplyContext, report: ApplyReport, forgotten: Set<string>) {
  for (const action of plan.actions) {
    if (action.type === "prune") {
      if (action.reason.startsWith("after forgetting") && !forgotten.has(action.repository!)) {
        ctx.out(`~ prune ${action.repository}: skipped, none of its deletions ran`);
        continue;
      }
      const repository = repositoryFor(ctx, action.repository!);
      const outcome = await auditedStage(
        ctx,
        { runId: null, type: "prune", repository: action.repository },
        async () => ({ value: await repository.prune() }),
      );
      count(report, outcome, ctx, `prune ${action.repository}`);
    } else if (action.type === "check") {
      const repository = repositoryFor(ctx, action.repository!);
      const outcome = await auditedStage(
        ctx,
        { runId: null, type: "check", repository: action.repository },
        async () => ({ value: await repository.check(action.read_data_subset) }),
        (result) =>
          result.ok ? [] : enqueueFor(
            ctx.loaded,
            projectsUsing(ctx.loaded, action.repository!),
            checkFailed({
              host: ctx.host,
              at: ctx.clock.now(),
              repository: action.repository!,
              error: result.error ?? "",
              durationMs: result.durationMs,
            }),
            { now: ctx.clock.now() },
          ),
      );
      await ctx.store.recordCheck(action.repository!, ctx.clock.now().toISOString(), outcome.ok ? "ok" : "failed");
      count(
        report,
        outcome,
        ctx,
        `check ${action.repository}${action.read_data_subset ? ` (read ${action.read_data_subset})` : ""}`,
      );
    } else if (action.type === "verify") {
      const ok = await runDrill(action.project!, ctx);
      if (ok) report.succeeded++;
      else report.failed++;
    }
  }
}

/**
 * Runs a project's restore drill as an audited `verify` stage (the restored bytes, the snapshot, the restore's
 * duration); a failure is a `verify.failed` notification recorded with it. Returns whether the drill passed.
 */
export async function runDrill(
  projectName: string,
  ctx: StageContext & Pick<ApplyContext, "host" | "privateDir">,
): Promise<boolean> {
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
  const outcome = await auditedStage(
    ctx,
    { runId: null, type: "verify", project: projectName, source: sourceName, repository },
    async () => {
      const result = await drill(project, restoreContext);
      return { value: result, bytes: result.bytes, snapshotId: result.snapshot };
    },
    (result) =>
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
  );
  if (outcome.ok) {
    const r = outcome.value;
    ctx.out(
      `~ verify ${projectName}: restored ${r.source} (snapshot ${r.snapshot.slice(0, 8)}, ${formatBytes(r.bytes)}) ` +
        `from ${r.repository} into the scratch database in ${humanDuration(r.restoreMs)}` +
        (r.rows === undefined ? "" : `; check: ${r.rows} row${r.rows === 1 ? "" : "s"}`),
    );
  } else {
    ctx.out(`✗ verify ${projectName} failed: ${outcome.error}`);
  }
  return outcome.ok;
}

function count(report: ApplyReport, outcome: StageOutcome<unknown>, ctx: ApplyContext, label: string): void {
  if (outcome.ok) {
    report.succeeded++;
    ctx.out(`~ ${label}: done (${humanDuration(outcome.durationMs)})`);
  } else {
    report.failed++;
    ctx.out(`✗ ${label} failed: ${outcome.error}`);
  }
}

type StageOutcome<T> =
  | { ok: true; value: T; durationMs: number }
  | { ok: false; error: string; durationMs: number; transient: boolean };

/** How long one backup stage may run when the project does not say. */
export const defaultStageTimeout = "6h";

/**
 * Runs `attempt` until it succeeds, fails for a reason that would not change, or runs out of attempts; each attempt
 * is its own audited stage row. Waits with full-jitter backoff between attempts.
 */
async function withRetries<T>(
  ctx: StageContext,
  backoff: Backoff,
  label: string,
  attempt: (n: number) => Promise<StageOutcome<T>>,
): Promise<StageOutcome<T> & { attempt: { n: number; of: number } }> {
  for (let n = 1;; n++) {
    const outcome = await attempt(n);
    // No retry once a stop was asked for (watch lets the running stage finish, but starts no new attempt).
    if (outcome.ok || !outcome.transient || n >= backoff.attempts || stopRequested()) {
      return { ...outcome, attempt: { n, of: backoff.attempts } };
    }
    const delay = delayBefore(n, backoff);
    ctx.out(`  ! ${label}: attempt ${n}/${backoff.attempts} failed (transient), retrying in ${humanDuration(delay)}`);
    await sleep(delay);
  }
}

/**
 * Runs one audited stage: the stage row is written before the work starts and finished with its result or its
 * (redacted) error. `work` receives the stage's start time and returns its value plus the bytes/snapshot to record.
 */
async function auditedStage<T>(
  ctx: StageContext,
  stage: Omit<NewStage, "startedAt">,
  work: (
    started: Date,
  ) => Promise<{ value: T; bytes?: number; bytesAdded?: number; forgotten?: number; snapshotId?: string }>,
  /** Notifications recorded with the stage's result (a held deletion, a failed check). */
  notify?: (result: { ok: boolean; error?: string; durationMs: number }) => NewNotification[],
): Promise<StageOutcome<T>> {
  const started = ctx.clock.now();
  const stageId = await ctx.store.startStage({ ...stage, startedAt: started.toISOString() });
  const finish = async (result: Omit<StageResult, "finishedAt" | "durationMs">) => {
    const finished = ctx.clock.now();
    const durationMs = finished.getTime() - started.getTime();
    const notifications = notify?.({ ok: result.status === "succeeded", error: result.error, durationMs }) ?? [];
    await ctx.store.finishStage(stageId, { ...result, finishedAt: finished.toISOString(), durationMs }, notifications);
    if (notifications.length > 0) ctx.notifications?.kick();
    return durationMs;
  };
  try {
    const { value, bytes, bytesAdded, forgotten, snapshotId } = await work(started);
    return {
      ok: true,
      value,
      durationMs: await finish({ status: "succeeded", bytes, bytesAdded, forgotten, snapshotId }),
    };
  } catch (error) {
    const message = errorText(error);
    const status = error instanceof HeldError ? "skipped" : stopRequested() ? "interrupted" : "failed";
    // Judged by the error's classification, not by its text (a note that the discarded snapshot could not be
    // forgotten because of a lock must not make an unreadable file look transient).
    const transient = isTransient(error);
    // A snapshot that a failed stage left behind is recorded on the stage: the next plan forgets it (recover).
    const snapshotId = error instanceof PartialSnapshotError ? error.snapshotId : undefined;
    return { ok: false, error: message, transient, durationMs: await finish({ status, error: message, snapshotId }) };
  }
}

async function initRepository(action: PlanAction, ctx: ApplyContext): Promise<boolean> {
  const repository = repositoryFor(ctx, action.repository!);
  const outcome = await auditedStage(ctx, { runId: null, type: "init", repository: action.repository }, async () => {
    const value = await repository.init(
      action.chunker_from ? repositoryFor(ctx, action.chunker_from) : undefined,
    );
    await ctx.store.markRepositoryInitialized(action.repository!, repository.location(), ctx.clock.now().toISOString());
    return { value };
  });
  if (!outcome.ok) {
    ctx.out(`✗ init ${action.repository} failed: ${outcome.error}`);
    return false;
  }
  const how = outcome.value === "created" ? "created" : "already initialized, adopted";
  const location = repository.location();
  ctx.out(`+ init ${action.repository}: ${how} ${location.startsWith("(") ? location : `(${location})`}`);
  return true;
}

async function runProject(project: string, actions: PlanAction[], ctx: ApplyContext) {
  const started = ctx.clock.now();
  const runId = newRunId(started);
  const repositories = ctx.loaded.config.projects[project].repositories;
  const common = { host: ctx.host, project, repositories };
  const sources = [...new Set(actions.map((a) => a.source!))];
  await ctx.store.startRun(
    {
      id: runId,
      project,
      command: ctx.command,
      startedAt: started.toISOString(),
      fingerprint: ctx.loaded.fingerprint,
      host: ctx.host,
    },
    enqueueFor(ctx.loaded, [project], runStarted({ ...common, at: started, runId, sources }), { now: started }),
  );
  ctx.notifications?.kick();
  ctx.locks?.get(project)?.setRunId(runId);
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
  let bytes: number | undefined;
  const touched = new Set<string>();
  /** The snapshot each source's backup made in this run, for the copies that follow. */
  const made = new Map<string, string>();
  /** The snapshots this run's backups made, per repository, as restic reported them (see the refresh below). */
  const reported = new Map<string, ResticSnapshot[]>();
  /** Repositories whose content this run cannot vouch for (a failed backup, a copy): listed again afterwards. */
  const uncertain = new Set<string>();
  const hooks = ctx.loaded.config.projects[project].hooks;
  const hook = async (name: HookName, status: "running" | "succeeded" | "failed") => {
    if (!hooks?.[name]) return undefined;
    await ctx.store.setRunStage(runId, `${name} hook`);
    const outcome = await auditedStage(ctx, { runId, type: "hook", project, source: name }, async () => ({
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
  for (const action of beforeError ? [] : actions.filter((a) => a.type === "backup")) {
    if (stopRequested()) break;
    await ctx.store.setRunStage(runId, `backup ${action.source}`);
    touched.add(action.repository!);
    const result = await backupSource(runId, action, ctx);
    if (result.error) {
      fail(`backup ${action.source}`, result.error, result.attempt);
      uncertain.add(action.repository!);
    } else {
      succeeded++;
      bytes = (bytes ?? 0) + (result.bytes ?? 0);
      if (result.snapshotId) made.set(action.source!, result.snapshotId);
      if (result.snapshot) {
        reported.set(action.repository!, [...reported.get(action.repository!) ?? [], result.snapshot]);
      } else if (result.snapshotId) uncertain.add(action.repository!); // its full id is unknown: list the repository
    }
  }
  for (const action of beforeError ? [] : actions.filter((a) => a.type === "copy")) {
    if (stopRequested()) break;
    const ids = [...(action.snapshots ?? []), ...(made.has(action.source!) ? [made.get(action.source!)!] : [])];
    const label = `${project}/${action.source} ${action.from} → ${action.repository}`;
    if (ids.length === 0) {
      ctx.out(`  ~ copy ${label}: nothing to copy (no new snapshot: the backup failed or its dump was empty)`);
      continue;
    }
    await ctx.store.setRunStage(runId, `copy ${action.source} to ${action.repository}`);
    touched.add(action.repository!);
    uncertain.add(action.repository!);
    const target = repositoryFor(ctx, action.repository!);
    const source = repositoryFor(ctx, action.from!);
    const stage = { runId, type: "copy", project, source: action.source, repository: action.repository } as const;
    const outcome = await auditedStage(ctx, stage, async () => ({ value: await target.copyFrom(source, ids) }));
    if (outcome.ok) {
      succeeded++;
      ctx.out(
        `  + copy ${label}: ${ids.length} snapshot${ids.length === 1 ? "" : "s"} (${
          humanDuration(outcome.durationMs)
        })`,
      );
    } else {
      fail(`copy ${action.source} to ${action.repository}`, outcome.error);
      ctx.out(`  ✗ copy ${label} failed: ${outcome.error}`);
    }
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
      bytes,
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
  for (const name of touched) {
    if (!uncertain.has(name)) {
      await ctx.store.addSnapshots(name, (reported.get(name) ?? []).map(toInventoryRow(ctx.clock.now())));
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
    bytes,
    failure,
    failuresBefore: status === "succeeded" ? await ctx.store.failuresSinceLastSuccess(project) : 0,
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

/** Backs up one source; returns the error text, or the snapshot made (none for an allowed empty dump). */
async function backupSource(
  runId: string,
  action: PlanAction,
  ctx: ApplyContext,
): Promise<
  {
    error?: string;
    snapshotId?: string;
    snapshot?: ResticSnapshot;
    bytes?: number;
    attempt?: { n: number; of: number };
  }
> {
  const project = ctx.loaded.config.projects[action.project!];
  const source = project.sources.find((s) => s.name === action.source)!;
  const repository = repositoryFor(ctx, action.repository!);
  const stage = {
    runId,
    type: "backup",
    project: project.name,
    source: source.name,
    repository: action.repository,
  } as const;
  const label = `${project.name}/${source.name} → ${action.repository}`;
  const backoff = backoffFor(project.retry, ctx.loaded.config.defaults?.retry);
  const timeoutMs = parseDuration(project.timeout ?? ctx.loaded.config.defaults?.timeout ?? defaultStageTimeout)!;
  const outcome = await withRetries(
    ctx,
    backoff,
    `backup ${label}`,
    (attempt) =>
      auditedStage(ctx, { ...stage, attempt }, async (started) => {
        const options = {
          host: ctx.host,
          time: started,
          timeoutMs,
          privateDir: ctx.privateDir,
          progress: (bytes: () => number) => startProgress(`backup ${label}`, bytes, ctx.out),
          tags: ["backupctl", `project=${project.name}`, `source=${source.name}`, `run=${runId}`],
        };
        const context = { configDir: ctx.loaded.dir, privateDir: ctx.privateDir };
        const input = backupInput(source, context);
        // Dumps are encrypted in the stream when the project asks; files rely on restic's own encryption.
        let filters: StreamFilter[] = [];
        try {
          if (input.kind === "stream" && project.encrypt) filters = [await encryptionFilter(project.encrypt, context)];
        } catch (error) {
          if (input.kind === "stream") input.cleanup?.(); // the source's private files must not outlive the stage
          throw error;
        }
        const result = input.kind === "stream"
          ? await streamBackup(input, repository, options, filters)
          : await backupPaths(repository, input.paths, input.exclude, options);
        // What `restic snapshots` will list for it: a stream is stored as /<file name>, paths as given (absolute).
        const paths = input.kind === "stream" ? [`/${storedName(input, filters)}`] : input.paths;
        const id = result.snapshotId === undefined ? undefined : repository.fullSnapshotId(result.snapshotId);
        const snapshot = id === undefined ? undefined : {
          id,
          short_id: id.slice(0, 8),
          time: isoSeconds(started), // restic's --time has whole seconds
          hostname: options.host,
          paths,
          tags: options.tags,
        };
        // restic's own figure for what the backup added (its summary's data_added), recorded beside what it read.
        return {
          value: { ...result, snapshot },
          bytes: result.bytes,
          bytesAdded: result.bytesAdded,
          snapshotId: result.snapshotId,
        };
      }),
  );
  if (!outcome.ok) {
    ctx.out(`  ✗ backup ${label} failed: ${outcome.error}`);
    return { error: outcome.error, attempt: outcome.attempt };
  }
  const { snapshotId, snapshot, bytes, bytesAdded } = outcome.value;
  ctx.out(
    snapshotId
      ? `  + backup ${label}: snapshot ${snapshotId.slice(0, 8)}, ${formatBytes(bytes)} read, ` +
        `${formatBytes(bytesAdded)} added (${humanDuration(outcome.durationMs)})`
      : `  + backup ${label}: the dump was empty (allowed by allowEmpty), no snapshot stored`,
  );
  return { snapshotId, snapshot, bytes };
}

/** A files backup; a snapshot restic wrote despite failing (exit 3: unreadable files) is forgotten at once. */
async function backupPaths(repository: Restic, paths: string[], exclude: string[], options: BackupOptions) {
  try {
    const result = await repository.backupPaths(paths, exclude, options);
    return { snapshotId: result.snapshotId!, bytes: result.bytesProcessed, bytesAdded: result.bytesAdded };
  } catch (error) {
    if (error instanceof ResticError && error.snapshotId) {
      throw await discardSnapshot(repository, error.snapshotId, error);
    }
    throw error;
  }
}

/** Reloads a repository's snapshot list into the inventory; returns the error text, or undefined on success. */
export async function refreshInventory(
  runId: string | null,
  name: string,
  project: string | undefined,
  ctx: StageContext,
): Promise<string | undefined> {
  const repository = repositoryFor(ctx, name);
  const outcome = await auditedStage(ctx, { runId, type: "refresh", project, repository: name }, async () => {
    // A local repository whose snapshot files are exactly the inventory's ids holds nothing new: snapshot files are
    // immutable and named by their content's hash. That listing costs a readdir instead of a restic process (which
    // derives the key first: about half a second).
    const local = repository.localSnapshotIds();
    if (local && sameIds(local, await ctx.store.snapshotIds(name))) {
      await ctx.store.markRefreshed(name, ctx.clock.now().toISOString());
      return { value: local.length };
    }
    const snapshots = await repository.snapshots();
    const at = ctx.clock.now();
    await ctx.store.replaceSnapshots(name, snapshots.map(toInventoryRow(at)), at.toISOString());
    return { value: snapshots.length };
  });
  if (outcome.ok) return undefined;
  ctx.out(`  ✗ refreshing the inventory of ${name} failed: ${outcome.error}`);
  return outcome.error;
}

function sameIds(a: string[], b: string[]): boolean {
  const set = new Set(a);
  return a.length === b.length && set.size === b.length && b.every((id) => set.has(id));
}

/** Maps a restic snapshot to an inventory row, reading our tags (project=, source=, run=). */
export function toInventoryRow(recordedAt: Date) {
  return (snapshot: ResticSnapshot) => {
    const tags = snapshot.tags ?? [];
    const tag = (key: string) => tags.find((t) => t.startsWith(`${key}=`))?.slice(key.length + 1) ?? null;
    const managed = tags.includes("backupctl");
    return {
      id: snapshot.id,
      short_id: snapshot.short_id ?? snapshot.id.slice(0, 8),
      time: new Date(snapshot.time).toISOString(),
      project: managed ? tag("project") : null,
      source: managed ? tag("source") : null,
      run_id: managed ? tag("run") : null,
      hostname: snapshot.hostname,
      tags: JSON.stringify(tags),
      paths: JSON.stringify(snapshot.paths ?? []),
      size: null,
      recorded_at: recordedAt.toISOString(),
      original: snapshot.original ?? null,
    };
  };
}

export function errorText(error: unknown): string {
  if (error instanceof BackupctlError) return redact(error.message);
  if (error instanceof Error) return redact(`${error.name}: ${error.message}`);
  return redact(String(error));
}
