/** `backupctl apply [PLANFILE]`: make the plan (or read a saved one) and execute it, auditing every stage. */
import { ask } from "./prompt.ts";
import { type Command, Option } from "commander";
import { repositoryFor } from "../apply/context.ts";
import { applyPlan } from "../apply/executor.ts";
import { enqueueScheduledNotifications } from "../apply/scheduled-notifications.ts";
import { preparePlan, rederivePlan } from "../apply/prepare.ts";
import { createClock } from "../clock.ts";
import { ActionsFailedError, ExitCode, PromptStopped, StoppedError, UsageError } from "../errors.ts";
import { acquireProjectLock, describeHolder, type ProjectLock, withLockPatience } from "../apply/lock.ts";
import { parseDuration } from "../config/duration.ts";
import { handleStopSignals, stopRequested } from "../runtime/shutdown.ts";
import { runStage, type StageContext } from "../apply/stage.ts";
import { assertCurrent, assertRederived, heldRemainder, readPlanFile } from "../plan/planfile.ts";
import { colours, deletionBanners, renderText, terminalColours } from "../plan/render.ts";
import type { Leftovers, Plan, PlanToApply } from "../plan/types.ts";
import type { OnDemand } from "../plan/planner.ts";
import { type DeliveryReport, OutboxSender } from "../notify/outbox.ts";
import {
  eventOutput,
  fromInvocationDir,
  hostFor,
  load,
  openStore,
  type Output,
  parseNow,
  selectProjects,
} from "./context.ts";
import type { PlanCommandOptions } from "./plan.ts";
import { collect } from "./context.ts";
import type { FleetWork } from "../apply/context.ts";
import { defaultLeaseTtlMs, FleetMember, type Lease, leaseHeldError } from "../fleet/member.ts";
import { projectLeaseKey } from "../state/fleet.ts";
import type { StateStore } from "../state/store.ts";

export const description = "Execute the plan (or a saved plan file): initialize, back up, forget, prune, check";

export interface ApplyOptions extends PlanCommandOptions {
  autoApprove?: boolean;
  /** `--wait DURATION`: wait that long for a project another apply, backup or watch holds, instead of exit 4. */
  wait?: string;
  /** Not an option of apply: accepted only to say that `plan` is the dry run. */
  dryRun?: boolean;
}

/**
 * A command that runs on demand through apply's path (`backup`, `forget`): the same locks, recovery, refresh,
 * approvals, audit, notifications and retries, with its own plan. Its runs are recorded under its name.
 */
export interface OnDemandRun {
  command: "backup" | "forget";
  /** The projects named on its command line (validated: declared and enabled). */
  projects: string[];
  plan: OnDemand;
  /** The command that runs its held deletions once reviewed. */
  approveWith: string;
  /** Said after the plan when there is nothing to do. */
  nothingToDo: string;
}

/** Apply's answer to `--dry-run`, which it does not have: the dry run of apply is `plan`. */
export const dryRunHint = "apply has no --dry-run: `backupctl plan` shows what apply would do (same --project and " +
  "--now), `backupctl plan --out FILE` saves it, and `backupctl apply FILE` then runs exactly that plan";

export function define(program: Command, output: Output, done: (code: number) => void): void {
  program.command("apply").description(description)
    .argument(
      "[planfile]",
      "a plan saved with `plan --out`: exactly its actions run, if config and state are unchanged",
    )
    .option("-p, --project <name>", "only this project (repeatable; not with a plan file)", collect)
    .option("--now <iso>", "run as if the clock read this time (schedules, audit and snapshot times)")
    .option("--auto-approve", "run deletions that need approval (changed retention, floors) without asking")
    .option(waitFlags, waitHelp)
    .option(
      "--detailed-exitcode",
      "exit 2 when deletions were held for approval (0 when everything ran, 1 when something failed)",
    )
    .addOption(new Option("--dry-run", "not an option: `backupctl plan` is apply's dry run").hideHelp())
    .action(async (planfile: string | undefined, _options, command: Command) =>
      done(await run(planfile, command.optsWithGlobals<ApplyOptions>(), output))
    );
}

/** `--wait`, shared with `backup` and `forget`: the flags and their help. */
export const waitFlags = "--wait <duration>";
export const waitHelp = "when another apply, backup or watch holds a project, wait up to this long (e.g. 10m) for " +
  "it to finish instead of exiting with 4";

/** Asks on a terminal whether held deletions may run; only "yes" accepts. */
async function confirmDeletions(plan: Plan, output: Output): Promise<boolean> {
  if (!process.stdin.isTTY || !process.stdout.isTTY) return false;
  output.stdout(`\n${deletionBanners(plan).map((line) => `! ${line}`).join("\n")}\n`);
  const answer = await ask("Forget these snapshots? Only 'yes' will be accepted: ");
  if (answer === undefined) throw new PromptStopped("nothing applied");
  return answer === "yes";
}

export async function run(
  planfile: string | undefined,
  options: ApplyOptions,
  rawOutput: Output,
  demand?: OnDemandRun,
): Promise<number> {
  if (options.dryRun && !demand) throw new UsageError(dryRunHint);
  const events = await eventOutput(options, rawOutput);
  try {
    return await runApply(planfile, options, events.output, demand);
  } finally {
    await events.close();
  }
}

const titles = { apply: "Apply", backup: "Backup", forget: "Forget" } as const;

async function runApply(
  planfile: string | undefined,
  options: ApplyOptions,
  output: Output,
  demand?: OnDemandRun,
): Promise<number> {
  const command = demand?.command ?? "apply";
  const approveWith = demand?.approveWith ??
    (planfile ? `backupctl apply ${planfile} --auto-approve` : "backupctl apply --auto-approve");
  const now = parseNow(options.now);
  const waitMs = options.wait === undefined ? undefined : parseDuration(options.wait);
  if (options.wait !== undefined && !waitMs) {
    throw new UsageError(`--wait: expected a duration such as "10m" or "1h", got "${options.wait}"`);
  }
  if (planfile && options.project?.length) {
    throw new UsageError("--project cannot be combined with a plan file: the saved plan already fixes its projects");
  }
  const saved = planfile ? readPlanFile(fromInvocationDir(planfile)) : undefined;
  const loaded = await load(options);
  const selected = demand ? demand.projects : saved ? saved.projects : selectProjects(loaded, options.project);
  handleStopSignals();
  const store = await openStore(options, loaded);
  const host = hostFor(loaded);
  // The run's clock, from --now: schedules, audit rows (takeovers included) and snapshot times all read it.
  const clock = createClock(now);
  let locks: Map<string, ProjectLock> | undefined;
  let sender: OutboxSender | undefined;
  let fleet: FleetWork | undefined;
  try {
    const scope = selected ?? Object.keys(loaded.config.projects);
    // With a PostgreSQL state the projects are leased fleet-wide (a watch on another host may run them); without
    // one, locked in the state folder. Either way before the plan: what another process does cannot change it.
    const say = (line: string) => output.stderr(`${line}\n`);
    fleet = store.postgres
      ? await withLockPatience(
        waitMs,
        () => leaseProjects(store, scope, host, command, loaded.fingerprint, output),
        say,
      )
      : undefined;
    const taken = fleet
      ? new Map<string, ProjectLock>()
      : await withLockPatience(waitMs, () => lockProjects(store.dir, scope, host, command), say);
    locks = taken;
    let plan: PlanToApply;
    let adopted: string[];
    /** The config the plan was made from: with the databases of `databases: "all"` servers as sources. */
    let planned = loaded;
    /** A saved plan applied before with deletions held: only those run now. */
    let heldBefore: string[] | undefined;
    if (saved) {
      // Made again before anything is written; the takeovers are audited whatever the outcome.
      const rederived = await rederivePlan(saved, loaded, store, host, takenOver(taken))
        .finally(() => auditTakeovers(taken, { store, clock }, output));
      heldBefore = rederived.observed.heldPlans?.[saved.plan_id];
      if (heldBefore?.length) {
        plan = heldRemainder(planfile!, saved, heldBefore, rederived.plan, {
          fingerprint: loaded.fingerprint,
          ...rederived.observed,
        });
        output.stdout(
          `${planfile} was applied except for deletions held for approval: only ${
            heldBefore.length === 1 ? "that deletion runs" : `those ${heldBefore.length} deletions run`
          } now, once.\n`,
        );
      } else {
        assertCurrent(saved, { fingerprint: loaded.fingerprint, ...rederived.observed });
        assertRederived(planfile!, saved, rederived.plan);
        // The file's plan, with the actions it was just checked to equal: those carry the planner's prune triggers.
        plan = { ...saved, actions: rederived.plan.actions };
      }
      adopted = rederived.adopted;
      planned = rederived.loaded;
    } else {
      await auditTakeovers(taken, { store, clock }, output);
      const prepared = await preparePlan(loaded, store, {
        now: now ?? new Date(),
        host,
        projects: selected,
        refresh: true,
        onDemand: demand?.plan,
      });
      plan = prepared.plan;
      adopted = prepared.adopted;
      planned = prepared.loaded;
    }
    for (const name of adopted) {
      const repository = repositoryFor({ loaded, store }, name);
      await store.markRepositoryInitialized(name, repository.location(), clock.now().toISOString());
    }
    output.stdout(renderText(plan, colours(terminalColours()), loaded.displayTimeZone));
    // Notifications go out in the background while the backups run; a failing channel never fails the apply.
    sender = new OutboxSender(store, loaded, {
      now: () => clock.now(),
      warn: (line) => output.stderr(`warning: ${line}\n`),
    });
    sender.kick(); // what earlier applies could not deliver
    if (plan.actions.length === 0) {
      // Nothing to run, but overdue alerts and the daily summary do not wait for a backup.
      await enqueueScheduledNotifications(
        { loaded, store, clock, host, notifications: sender },
        plan.overdue,
        plan.stale_archives,
      );
      await sender.drain();
      if (demand) output.stdout(`${demand.nothingToDo}\n`);
      output.stdout(notificationLine(sender.report));
      return ExitCode.ok;
    }
    const needsApproval = deletionBanners(plan).length > 0;
    const approved = !needsApproval || Boolean(options.autoApprove) || await confirmDeletions(plan, output);
    output.stdout("\n");
    const report = await applyPlan(plan, {
      loaded: planned,
      store: fleet ? store.fenced(fleet.fence) : store,
      fleet,
      approved,
      clock,
      host,
      privateDir: store.privateDir,
      command,
      retention: heldBefore?.length ? "forgets" : demand?.command !== "backup",
      approveWith,
      locks,
      out: (line) => output.stdout(`${line}\n`),
      notifications: sender,
    });
    await sender.drain();
    output.stdout(notificationLine(sender.report));
    // A saved plan runs once; what it held for approval stays runnable, once, with approval.
    if (saved && heldBefore?.length) await store.markHeldDeletions(saved.plan_id, report.heldActions ?? []);
    else if (saved) await store.markPlanApplied(saved.plan_id, new Date().toISOString(), report.heldActions ?? []);
    const extras = [
      report.skipped ? `${report.skipped} skipped` : "",
      report.held ? `${report.held} deletion${report.held === 1 ? "" : "s"} held for approval` : "",
    ].filter(Boolean).join(", ");
    output.stdout(
      `\n${titles[command]} ${report.failed + report.skipped === 0 ? "complete" : "finished with failures"}: ` +
        `${report.succeeded} succeeded, ${report.failed} failed${extras ? `, ${extras}` : ""}.\n`,
    );
    if (report.held > 0) {
      output.stderr(
        `WARNING: ${report.held} deletion${report.held === 1 ? " was" : "s were"} held back because ` +
          `${report.held === 1 ? "it needs" : "they need"} approval; nothing was forgotten there. ` +
          `Review the plan and run \`${approveWith}\`.\n`,
      );
    }
    const stopped = stopRequested();
    if (stopped) throw new StoppedError(stopped);
    if (report.failed + report.skipped > 0) {
      throw new ActionsFailedError(report.failed, report.succeeded + report.failed + report.skipped, report.skipped);
    }
    return options.detailedExitcode && report.held > 0 ? ExitCode.changes : ExitCode.ok;
  } finally {
    await sender?.drain(); // an apply that failed midway still lets its notifications finish before closing the store
    for (const lock of locks?.values() ?? []) lock.release();
    await fleet?.member.leave();
    await store.close();
  }
}

/** One line on what the apply's notifications did, when it sent or tried any. */
export function notificationLine(report: DeliveryReport): string {
  const parts = [
    report.delivered ? `${report.delivered} sent` : "",
    report.failed ? `${report.failed} failed (retried at the next apply or watch tick)` : "",
    report.givenUp ? `${report.givenUp} given up as undeliverable (see \`backupctl status\`)` : "",
  ].filter(Boolean);
  return parts.length ? `Notifications: ${parts.join(", ")}.\n` : "";
}

/** Takes every project's lock, or none: a live holder of any of them ends the command with exit 4. */
function lockProjects(
  stateDir: string,
  projects: string[],
  host: string,
  command: string,
): Map<string, ProjectLock> {
  const locks = new Map<string, ProjectLock>();
  try {
    for (const project of [...projects].sort()) {
      locks.set(project, acquireProjectLock(stateDir, project, { command, host }));
    }
  } catch (error) {
    for (const lock of locks.values()) lock.release();
    throw error;
  }
  return locks;
}

/**
 * Leases every project for this apply (a PostgreSQL state), or none: a project another runner holds ends the command
 * with exit 4, naming the runner. An expired lease is taken over, and said.
 */
async function leaseProjects(
  store: StateStore,
  projects: string[],
  host: string,
  command: string,
  fingerprint: string,
  output: Output,
): Promise<FleetWork> {
  const member = await FleetMember.join(store, {
    name: `${command}@${host}`,
    labels: [],
    host,
    ttlMs: defaultLeaseTtlMs,
    version: "",
    fingerprint,
    register: false,
    log: (line) => output.stderr(`${line}\n`),
  });
  const leases = new Map<string, Lease>();
  try {
    for (const project of [...projects].sort()) {
      const answer = await member.tryAcquire(projectLeaseKey(project));
      if ("held" in answer) throw leaseHeldError(projectLeaseKey(project), answer.held);
      leases.set(project, answer);
      if (answer.tookOver) {
        output.stdout(
          `~ recover: took over the expired lease of ${project} from runner ${answer.tookOver.holder}` +
            `${answer.tookOver.runId ? ` (run ${answer.tookOver.runId})` : ""}\n`,
        );
      }
    }
  } catch (error) {
    await member.leave();
    throw error;
  }
  return { member, projects: leases, fence: member.fence([...leases.values()]), waitMs: 5 * 60_000 };
}

/** The stale locks taken over, as startup recovery lists leftovers (a saved plan saw them there). */
function takenOver(locks: Map<string, ProjectLock>): Leftovers["staleLocks"] {
  return [...locks.values()].flatMap((lock) =>
    lock.tookOver
      ? [{
        project: lock.project,
        pid: lock.tookOver.pid,
        since: lock.tookOver.started_at,
        runId: lock.tookOver.run_id,
      }]
      : []
  );
}

/**
 * A stale lock taken over is said and audited (a recover stage whose note names the dead holder); the dead holder's
 * stages outside a run are marked interrupted.
 */
async function auditTakeovers(locks: Map<string, ProjectLock>, ctx: StageContext, output: Output): Promise<void> {
  for (const lock of locks.values()) {
    if (!lock.tookOver) continue;
    const what = `took over the stale lock of ${lock.project}: ${describeHolder(lock.tookOver)}, process gone`;
    output.stdout(`~ recover: ${what}\n`);
    // Its stages outside a run (a stanza-create, an expire, a forget…) stay `running` otherwise: no run recovers them.
    await ctx.store.markStagesInterrupted(
      lock.project,
      lock.tookOver.started_at,
      ctx.clock.now().toISOString(),
      `interrupted: its process ended without finishing (found by backupctl pid ${process.pid})`,
    );
    // The lock was taken already (lockProjects): the stage records it, it has nothing left to do.
    await runStage(
      ctx,
      { runId: null, type: "recover", project: lock.project },
      () => Promise.resolve({ value: undefined, note: what }),
    );
  }
}
