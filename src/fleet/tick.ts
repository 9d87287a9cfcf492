/**
 * One `watch` tick in a fleet (several runners sharing a PostgreSQL state; docs/fleet.md). Work is split into units,
 * each run under a lease that at most one runner holds: a project (its backups, copies, forgets and recoveries) or a
 * repository (its init, its stale-lock recovery, its prune and check). A runner takes a unit by acquiring its lease
 * without waiting: a unit leased elsewhere is another runner's now. Under the lease the unit is planned again from
 * the shared state, so a slot another runner has finished since is no longer due: each due (project, slot) runs once.
 *
 * In order: the repository units that prepare (init, recover), the project units, then the repository units of
 * maintenance that are due once the forgets ran. Every write of a unit goes through a store view fenced by its leases.
 */
import { applyPlan } from "../apply/executor.ts";
import { preparePlan } from "../apply/prepare.ts";
import { projectsUsing } from "../apply/context.ts";
import type { Clock } from "../clock.ts";
import type { LoadedConfig } from "../config/load.ts";
import { redact } from "../config/secrets.ts";
import { FencedError } from "../errors.ts";
import type { OutboxSender } from "../notify/outbox.ts";
import { type PlanAction, type PlanToApply, projectOf, repositoryOf } from "../plan/document.ts";
import { stopRequested } from "../runtime/shutdown.ts";
import { type Fence, projectLeaseKey, repositoryLeaseKey } from "../state/fleet.ts";
import type { StateStore } from "../state/store.ts";
import type { FleetMember, Lease } from "./member.ts";

export interface FleetTickContext {
  loaded: LoadedConfig;
  store: StateStore;
  member: FleetMember;
  clock: Clock;
  host: string;
  notifications: OutboxSender;
  /** Projects run at the same time by this runner. */
  concurrency: number;
  /** How long a forget, prune or check waits for its repository's lease. */
  lockWaitMs: number;
  /** Whether this runner may run a project (its runsOn labels). */
  placed: (project: string) => boolean;
  /** Projects running now (for /healthz and /metrics). */
  running: Set<string>;
  log: (line: string) => void;
  /** Counts an apply's failures for /healthz. */
  counted: (report: { failed: number; skipped: number }) => void;
}

/** Actions watch runs; `verify` waits for restore drills. */
function runsNow(action: PlanAction): boolean {
  return action.type !== "verify";
}

const preparing = new Set<PlanAction["type"]>(["init", "recover"]);

/**
 * A project's unit lists its repositories from restic only when no runner did so for this long: the inventory is
 * shared, and each runner adds what it backs up and refreshes after its forgets. Repository units always list.
 */
const inventoryFreshMs = 60_000;

/**
 * Restic locks younger than this are not read when planning: in a fleet, other runners' backups hold fresh locks all
 * the time, and reading each costs a restic process. A dead process's lock is judged once it is this old.
 */
export const fleetLockAgeMs = 30_000;

/** Runs the tick's due work as units under leases (see the top of this file). */
export async function runFleetTick(ctx: FleetTickContext, plan: PlanToApply): Promise<void> {
  const repositoryWork = (tickPlan: PlanToApply, types: (type: PlanAction["type"]) => boolean) =>
    [
      ...new Set(
        tickPlan.actions.filter((a) => runsNow(a) && projectOf(a) === undefined && types(a.type))
          .flatMap((a) => repositoryOf(a) ?? []),
      ),
    ].sort();
  await eachLimited(
    repositoryWork(plan, (type) => preparing.has(type)),
    ctx.concurrency,
    (name) => repositoryUnit(ctx, name, (type) => preparing.has(type)),
  );
  const projects = [
    ...new Set(plan.actions.filter(runsNow).flatMap((a) => projectOf(a) ?? [])),
  ].filter(ctx.placed).sort();
  await eachLimited(projects, ctx.concurrency, (project) => projectUnit(ctx, project));
  if (stopRequested()) return;
  // Maintenance due now that the forgets ran (a prune counts what was forgotten): planned again from the state.
  const { plan: after } = await preparePlan(ctx.loaded, ctx.store, {
    now: ctx.clock.now(),
    host: ctx.host,
    lockAgeMs: fleetLockAgeMs,
  });
  await eachLimited(
    repositoryWork(after, (type) => !preparing.has(type)),
    ctx.concurrency,
    (name) => repositoryUnit(ctx, name, (type) => !preparing.has(type)),
  );
}

/** A project's unit: its lease, a plan made under it, and its backups, copies, forgets and recoveries. */
async function projectUnit(ctx: FleetTickContext, project: string): Promise<void> {
  await underLease(ctx, projectLeaseKey(project), `run ${project}`, async (unit) => {
    const { plan, loaded } = await preparePlan(ctx.loaded, unit.store, {
      now: ctx.clock.now(),
      host: ctx.host,
      projects: [project],
      projectActionsOnly: true,
      refresh: { since: new Date(ctx.clock.now().getTime() - inventoryFreshMs) },
      lockAgeMs: fleetLockAgeMs,
    });
    const actions = plan.actions.filter((a) => runsNow(a) && projectOf(a) === project);
    if (actions.length === 0) return; // done by another runner since the tick's plan
    // A repository it needs is not ready yet (another runner is initializing it, or its init failed): next tick.
    if (plan.actions.some((a) => a.type === "init")) {
      ctx.log(`  ~ ${project} waits for its repositories to be initialized`);
      return;
    }
    ctx.running.add(project);
    try {
      await apply(ctx, { ...plan, actions }, unit, new Map([[project, unit.lease]]), loaded);
    } finally {
      ctx.running.delete(project);
    }
  });
}

/** A repository's unit: its lease, a plan made under it, and its repository-wide actions of the kinds asked. */
async function repositoryUnit(
  ctx: FleetTickContext,
  repository: string,
  types: (type: PlanAction["type"]) => boolean,
): Promise<void> {
  await underLease(ctx, repositoryLeaseKey(repository), `maintain ${repository}`, async (unit) => {
    const projects = projectsUsing(ctx.loaded, repository).filter((p) => ctx.loaded.config.projects[p].enabled);
    const { plan } = await preparePlan(ctx.loaded, unit.store, {
      now: ctx.clock.now(),
      host: ctx.host,
      projects,
      refresh: true,
      lockAgeMs: fleetLockAgeMs,
    });
    const actions = plan.actions.filter((a) =>
      runsNow(a) && projectOf(a) === undefined && repositoryOf(a) === repository && types(a.type)
    );
    if (actions.length > 0) await apply(ctx, { ...plan, actions }, unit, new Map());
  });
}

/**
 * Takes `key` without waiting (a unit leased elsewhere is that runner's), runs `work` with a store fenced by the
 * lease, and releases it. A write refused by the fence ends the unit: another runner has taken it over.
 */
async function underLease(
  ctx: FleetTickContext,
  key: string,
  what: string,
  work: (unit: LeasedUnit) => Promise<void>,
): Promise<void> {
  if (stopRequested()) return;
  const answer = await ctx.member.tryAcquire(key);
  if ("held" in answer) return;
  const lease = answer;
  if (lease.tookOver) {
    ctx.log(
      `~ took over ${key} from runner ${lease.tookOver.holder}${
        lease.tookOver.runId ? ` (run ${lease.tookOver.runId})` : ""
      }: its lease expired without a heartbeat`,
    );
  }
  const fence = ctx.member.fence([lease]);
  ctx.member.work = what;
  try {
    await work({ lease, fence, store: ctx.store.fenced(fence) });
  } catch (error) {
    if (!(error instanceof FencedError)) throw error;
    ctx.log(`warning: ${redact(error.message)}`);
  } finally {
    ctx.member.work = null;
    await ctx.member.release(lease);
  }
}

/** A unit's lease, the fence its writes carry (repository leases join it midway) and the store fenced by it. */
interface LeasedUnit {
  lease: Lease;
  fence: Fence;
  store: StateStore;
}

async function apply(
  ctx: FleetTickContext,
  plan: PlanToApply,
  { fence, store }: LeasedUnit,
  projects: Map<string, Lease>,
  /** The config the plan was made from (preparePlan's: with the servers' databases as sources). */
  loaded: LoadedConfig = ctx.loaded,
): Promise<void> {
  const report = await applyPlan(plan, {
    loaded,
    store,
    clock: ctx.clock,
    host: ctx.host,
    notifications: ctx.notifications,
    approved: false, // deletions that need approval are held and notified, never run by watch
    privateDir: ctx.store.privateDir,
    command: "watch",
    fleet: { member: ctx.member, projects, fence, waitMs: ctx.lockWaitMs },
    out: ctx.log,
  });
  ctx.counted(report);
  ctx.log(
    `watch: ${report.succeeded} succeeded, ${report.failed} failed${
      report.held ? `, ${report.held} deletions held for approval` : ""
    }${report.skipped ? `, ${report.skipped} skipped` : ""}`,
  );
}

/** Runs `work` for each item, at most `limit` at a time, starting none after a stop signal. */
async function eachLimited<T>(items: T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  const workers = Array.from({ length: Math.min(limit, queue.length) }, async () => {
    for (let item = queue.shift(); item !== undefined && !stopRequested(); item = queue.shift()) await work(item);
  });
  await Promise.all(workers);
}
