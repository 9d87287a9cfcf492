/**
 * The preparation every planning command shares (plan, apply, backup, forget, watch, status): from a loaded config and
 * an open state, find what dead processes left behind (read-only: `recovery.ts`'s find half), read the observed state,
 * complete it from the repositories, refresh their snapshot inventories when asked, and make the plan.
 *
 * Only `refresh` writes (the inventory and its audit rows); everything else here reads. Repairing leftovers is the
 * executor's job, run first by the apply or watch that carries out the plan: a command that only looks (`plan`,
 * `status`) reports them and changes nothing, so that a status on one host never "recovers" a run that is alive.
 */
import { randomUUID } from "node:crypto";
import { createClock } from "../clock.ts";
import type { LoadedConfig } from "../config/load.ts";
import { type OnDemand, planToApply as makePlan } from "../plan/planner.ts";
import type { Leftovers, ObservedState, Plan, PlanToApply } from "../plan/types.ts";
import { ResticError } from "../repository/restic-errors.ts";
import type { StateStore } from "../state/store.ts";
import { discoverDatabases } from "./discovery.ts";
import { findLeftovers } from "./recovery.ts";

export interface PrepareOptions {
  /** The instant schedules are evaluated at (`--now`, or the clock). */
  now: Date;
  /** This backupctl's host name (config or system): runs and locks recorded by another host are only reported. */
  host: string;
  /** Only these projects, already validated against the config; all declared projects when absent or empty. */
  projects?: string[];
  /**
   * Reload the snapshot inventory of the repositories in scope from restic first (writes the inventory). In a fleet
   * (`{ since }`), only those no runner has listed since then: the inventory is shared, and every runner keeps it
   * current with what it backs up and forgets.
   */
  refresh?: boolean | { since: Date };
  /**
   * Take the repositories as the state records them and start no restic: none is probed for initialization, no
   * restic lock is read. `status` plans this way (its table needs schedules and successes, not the repositories).
   * pgBackRest's stanzas are still read (`pgbackrest info`, the cluster's archiving): their backups are their successes.
   */
  offline?: boolean;
  /** The plan of a command that runs on demand (`backup`, `forget`). */
  onDemand?: OnDemand;
  /**
   * Judge only the restic locks of local repositories not written for this long (a fleet, where other runners'
   * backups hold fresh locks all the time: reading each costs a restic process). Default: every lock.
   */
  lockAgeMs?: number;
  /**
   * The caller keeps only the actions of `projects` themselves (a fleet's project unit): the state is read for those
   * projects only (state/observe.ts), and the plan's repository-wide actions are not to be used.
   */
  projectActionsOnly?: boolean;
  /**
   * Plan from the audit alone, without the snapshot inventory (state/observe.ts): what is due and overdue, as `status`
   * shows it. With `offline` only; the plan has no forgets, copies or recoveries and is never applied.
   */
  withoutInventory?: boolean;
}

export interface Prepared {
  /**
   * The config the plan was made from: the loaded one, with the databases of its `databases: "all"` servers as
   * sources (apply/discovery.ts). Whatever carries out the plan must use this one.
   */
  loaded: LoadedConfig;
  /** The plan with what apply needs beyond the document (prune triggers); renderers and plan files write the document. */
  plan: PlanToApply;
  /** What the plan was made from. */
  observed: ObservedState;
  /** What dead processes left behind, found and not repaired (also `observed.leftovers`). */
  leftovers: Leftovers;
  /** Repositories restic reports initialized that the state did not know: apply records them, plan does not. */
  adopted: string[];
}

/** Observes (and with `refresh`, refreshes) the state and makes the plan; see the top of this file. */
export async function preparePlan(loaded: LoadedConfig, store: StateStore, options: PrepareOptions): Promise<Prepared> {
  const { now, host } = options;
  const projects = options.projects?.length ? options.projects : undefined;
  const scope = options.projectActionsOnly ? projects : undefined;
  const look = async () => {
    if (!options.offline) return await observe(loaded, store, host, projects, options.lockAgeMs, scope);
    const observation = await observeRecorded(store, host, scope, options.withoutInventory);
    // pgBackRest's stanzas are read offline too (no restic): their newest backup decides whether a project is overdue.
    await observePitrInto(observation.observed, loaded, store, projects);
    return observation;
  };
  let { observed, leftovers, adopted, warnings } = await look();
  if (options.refresh) {
    // Snapshots forgotten or added outside backupctl must not make the plan wrong (a forget of an id that is gone,
    // a copy that is missing): ask the repositories what they hold now.
    let names = repositoriesInScope(loaded, projects).filter((name) => observed.repositories[name]?.initialized);
    if (typeof options.refresh === "object") {
      const since = options.refresh.since.toISOString();
      const refreshed = await store.fleet.lastRefreshes();
      names = names.filter((name) => (refreshed.get(name) ?? "") < since);
    }
    const context = { loaded, store, clock: createClock(now), out: (line: string) => warnings.push(line.trim()) };
    // Imported here, not at the top: a plan that refreshes nothing never loads the executor (start-up time).
    const { refreshInventory } = await import("./inventory.ts");
    for (const name of names) await refreshInventory(null, name, undefined, context);
    const again = await look();
    observed = again.observed;
    leftovers = again.leftovers;
    adopted = [...new Set([...adopted, ...again.adopted])];
    warnings = [...warnings, ...again.warnings];
  }
  const discovered = await discoverDatabases(loaded, observed, {
    projects,
    offline: options.offline,
    privateDir: store.privateDir,
  });
  const plan = makePlan(discovered.loaded, observed, now, {
    projects,
    generatedAt: new Date(),
    planId: randomUUID(),
    onDemand: options.onDemand,
  });
  plan.warnings.push(...discovered.warnings, ...warnings);
  return { loaded: discovered.loaded, plan, observed, leftovers, adopted };
}

/**
 * The plan a saved plan file must hold: made again by the planner from the present config and state, observed as
 * `plan` observes them (dead runs, leftovers, repositories probed) but not refreshed, at the file's `now`, for its
 * projects, with its id. Writes nothing. `takenOver`: stale project locks this apply has just taken over, which `plan`
 * saw as leftovers (and planned a recover for).
 */
export async function rederivePlan(
  saved: Plan,
  loaded: LoadedConfig,
  store: StateStore,
  host: string,
  takenOver: Leftovers["staleLocks"],
): Promise<Prepared> {
  const { observed, leftovers, adopted } = await observe(loaded, store, host, saved.projects);
  if (takenOver.length > 0) {
    const lockFile = (lock: { project: string }) => `${lock.project}.lock`;
    const seen = new Set(leftovers.staleLocks.map((lock) => lock.project));
    // In the order findLeftovers lists them: by lock file name.
    leftovers.staleLocks = [...leftovers.staleLocks, ...takenOver.filter((lock) => !seen.has(lock.project))]
      .sort((a, b) => (lockFile(a) < lockFile(b) ? -1 : lockFile(a) > lockFile(b) ? 1 : 0));
  }
  // The servers are asked again: a database created or dropped since the plan makes it stale.
  const discovered = await discoverDatabases(loaded, observed, {
    projects: saved.projects,
    privateDir: store.privateDir,
  });
  // generated_at decides nothing; the plan id, the projects and `now` are the file's.
  const plan = makePlan(discovered.loaded, observed, new Date(saved.now), {
    projects: saved.projects,
    generatedAt: new Date(),
    planId: saved.plan_id,
  });
  plan.warnings.push(...discovered.warnings);
  return { loaded: discovered.loaded, plan, observed, leftovers, adopted };
}

/** The repositories of the enabled projects a command covers (all of them without projects), each once. */
export function repositoriesInScope(loaded: LoadedConfig, projects: string[] | undefined): string[] {
  return [
    ...new Set(
      Object.values(loaded.config.projects)
        .filter((p) => p.enabled && (!projects || projects.includes(p.name)))
        .flatMap((p) => p.repositories),
    ),
  ];
}

interface Observation {
  observed: ObservedState;
  /** The same as `observed.leftovers`, never absent. */
  leftovers: Leftovers;
  adopted: string[];
  warnings: string[];
}

/**
 * The state database's view with what dead processes left behind (startup recovery's findings, nothing repaired).
 * Reads the database and the state folder only.
 */
async function observeRecorded(
  store: StateStore,
  host: string,
  scope?: string[],
  withoutInventory?: boolean,
): Promise<Observation> {
  const { leftovers, deadRuns, warnings } = await findLeftovers(store, host);
  const observed = await store.observe({ deadRuns, projects: scope, inventory: !withoutInventory });
  observed.leftovers = leftovers;
  return { observed, leftovers, adopted: [], warnings: [...warnings] };
}

/** What pgBackRest and the clusters say of the pgbackrest() sources of `projects` (apply/pitr.ts), into `observed`. */
async function observePitrInto(
  observed: ObservedState,
  loaded: LoadedConfig,
  store: StateStore,
  projects: string[] | undefined,
): Promise<void> {
  if (!Object.values(loaded.config.projects).some((project) => project.pitr.length > 0)) return;
  // Imported here, not at the top: a config without pgbackrest() sources never loads the PITR engine.
  const { observePitr } = await import("./pitr.ts");
  observed.pitr = await observePitr(loaded, store.dir, projects);
}

/**
 * `observeRecorded`, completed by asking restic about the repositories in scope that the database does not know as
 * initialized (a repository made by hand or by an earlier state folder is adopted, not re-initialized), and about the
 * locks a dead process left in a local repository.
 */
async function observe(
  loaded: LoadedConfig,
  store: StateStore,
  host: string,
  projects: string[] | undefined,
  lockAgeMs?: number,
  scope?: string[],
): Promise<Observation> {
  const { observed, leftovers, adopted, warnings } = await observeRecorded(store, host, scope);
  await observePitrInto(observed, loaded, store, projects);
  for (const name of repositoriesInScope(loaded, projects)) {
    if (observed.repositories[name]?.initialized) continue;
    try {
      // Imported here, not at the top: plan on a known repository never starts restic (start-up time).
      const { repositoryFor } = await import("./context.ts");
      if (await repositoryFor({ loaded, store }, name).isInitialized()) {
        observed.repositories[name] = { initialized: true };
        adopted.push(name);
      }
    } catch (error) {
      // Not known to be missing, so never "not initialized": the plan warns with the cause and plans no init.
      observed.repositories[name] = { initialized: false, unreachable: unopenedReason(error) };
    }
  }
  // Locks a dead process left in a local repository (a prune killed with SIGKILL, say): a restic process runs only
  // where the locks/ folder is not empty. Other backends are judged when a command meets a lock (Restic.restic).
  const resticLocks: NonNullable<Leftovers["resticLocks"]> = [];
  for (const name of repositoriesInScope(loaded, projects)) {
    if (!observed.repositories[name]?.initialized) continue;
    const { repositoryFor } = await import("./context.ts");
    const repository = repositoryFor({ loaded, store }, name);
    if ((repository.localLockIds(lockAgeMs) ?? []).length === 0) continue;
    try {
      const { judgeLock } = await import("../repository/restic-locks.ts");
      for (const verdict of (await repository.locks()).map((lock) => judgeLock(lock))) {
        if (verdict.stale) resticLocks.push({ repository: name, lock: verdict.lock.id, holder: verdict.description });
        else warnings.push(`repository ${name} holds ${verdict.description}`);
      }
    } catch (error) {
      warnings.push(`the locks of repository ${name} could not be read: ${(error as Error).message.split("\n")[0]}`);
    }
  }
  if (resticLocks.length === 0) return { observed, leftovers, adopted, warnings };
  observed.leftovers = { ...leftovers, resticLocks };
  return { observed, leftovers: observed.leftovers, adopted, warnings };
}

/** Why a repository could not be opened: restic's line naming the cause and what to do, else the error's first line. */
function unopenedReason(error: unknown): string {
  if (error instanceof ResticError) return error.summary;
  return (error instanceof Error ? error.message : String(error)).split("\n")[0];
}
