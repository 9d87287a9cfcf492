/**
 * The planner: a pure function of (config, observed state, now) → Plan. No I/O, no clock, no processes.
 * The rules it implements are described in docs/planning.md.
 */
import type { LoadedConfig } from "../config/load.ts";
import { type Draft, planDocument, type PlanToApply } from "./document.ts";
import { backupActions, backupNowActions, overdueProject, projectTimes } from "./due.ts";
import { forgetActions } from "./forget-actions.ts";
import { forgetNowPrunes, maintenanceActions } from "./maintenance-actions.ts";
import { notManaged } from "./not-managed.ts";
import { pitrActions, pitrFreshness, pitrNextDue } from "./pitr-actions.ts";
import { indexObserved } from "./observed-index.ts";
import { recoverActions } from "./recover-actions.ts";
import { copyActions, initActions, plannedChanges, unopenedRepositories } from "./repository-actions.ts";
import { isoSeconds } from "../format/time.ts";
import type { ObservedState, Plan, PlanAction, PlanSummary } from "./types.ts";

export { jitterOffset } from "./due.ts";
export { defaultCheckEvery, defaultPruneEvery, pruneShare } from "./maintenance-actions.ts";

export interface PlanOptions {
  /** Only these projects (default: all enabled projects). */
  projects?: readonly string[];
  /** Wall-clock time the plan is made at (recorded, never used for decisions). */
  generatedAt: Date;
  /** Identity of the plan document (random in the CLI; fixed in tests). */
  planId?: string;
  /** A plan for a command run on demand (`backup`, `forget`) instead of the schedule's (apply, watch). */
  onDemand?: OnDemand;
}

/**
 * What an on-demand command plans, besides startup recovery:
 * - `backup`: a backup of every selected source of the projects now, whatever the schedule says (`sources`: only
 *   these, where a project has them), into the project's first repository, and the copies to its other repositories
 *   that follow it (`repositories`: only copies to these). Inits only for those repositories. No forget, prune, check
 *   or verify: retention is evaluated by apply and watch only. The schedule is untouched: the backup is recorded at
 *   its real time, so it counts for the latest slot already passed (as any later success does) and never for a future
 *   one; the next due time stays the cron's.
 * - `forget`: retention's forgets of the projects, as apply plans them (same approval rules), and the prunes after
 *   them; `prune`: also a prune of every repository of the projects where nothing is forgotten now.
 */
export type OnDemand =
  | { command: "backup"; sources?: readonly string[]; repositories?: readonly string[] }
  | { command: "forget"; prune?: boolean };

type Loaded = Pick<LoadedConfig, "config" | "fingerprint">;

/** The plan document: what `plan` shows and saves (see document.ts). */
export function plan(loaded: Loaded, observed: ObservedState, now: Date, options: PlanOptions): Plan {
  return planDocument(planToApply(loaded, observed, now, options));
}

/** The plan with what apply needs beyond the document: why each prune is planned (its trigger). */
export function planToApply(loaded: Loaded, observed: ObservedState, now: Date, options: PlanOptions): PlanToApply {
  const { config } = loaded;
  const selected = Object.values(config.projects)
    .filter((project) => options.projects === undefined || options.projects.includes(project.name));
  const active = selected.filter((project) => project.enabled);
  const warnings = selected.filter((project) => !project.enabled)
    .map((project) => `project ${project.name} is disabled (enabled: false): nothing is planned for it`);
  warnings.push(...unopenedRepositories(active, observed));
  const index = indexObserved(observed);
  const times = new Map(active.map((project) => [project.name, projectTimes(project, now)]));

  const demand = options.onDemand;
  const forgets = demand?.command === "backup" ? [] : active.flatMap((project) => forgetActions(project, index, now));
  const backups = demand?.command === "backup"
    ? active.flatMap((project) => backupNowActions(project, times.get(project.name)!, demand.sources))
    : demand?.command === "forget"
    ? []
    : active.flatMap((project) => backupActions(project, times.get(project.name)!, index));
  const planned = plannedChanges(backups, forgets);
  const copies = demand?.command === "forget"
    ? []
    : active.flatMap((project) =>
      copyActions(project, index, planned).filter((copy) =>
        demand?.command !== "backup" ||
        (backups.some((backup) => backup.project === copy.project && backup.source === copy.source) &&
          (demand.repositories === undefined || demand.repositories.includes(copy.repository)))
      )
    );
  // pgBackRest's stanzas: planned by apply and watch only (an on-demand backup or forget is restic's).
  const pitr = demand === undefined
    ? pitrActions(active, observed, index, now)
    : { creates: [], backups: [], expires: [], checks: [], verifies: [], warnings: [], stale: [] };
  warnings.push(...pitr.warnings);
  const drafts: Draft[] = [
    ...recoverActions(observed, loaded),
    ...(demand?.command === "forget" ? [] : initActions(active, observed).filter((init) =>
      demand === undefined ||
      backups.some((backup) => backup.repository === init.repository) ||
      copies.some((copy) => copy.repository === init.repository || copy.from === init.repository)
    )),
    ...pitr.creates,
    ...backups,
    ...pitr.backups,
    ...copies,
    ...forgets,
    ...pitr.expires,
    ...(demand?.command === "backup"
      ? []
      : demand?.command === "forget"
      ? forgetNowPrunes(active, maintenanceActions(active, observed, index, forgets, now), forgets, demand.prune)
      : maintenanceActions(active, observed, index, forgets, now)),
    ...pitr.checks,
    ...pitr.verifies,
  ];
  const actions = drafts.map((action, i) => ({ id: `a${i + 1}`, ...action }));
  return {
    format_version: 1,
    plan_id: options.planId ?? "",
    generated_at: isoSeconds(options.generatedAt),
    now: isoSeconds(now),
    config_fingerprint: loaded.fingerprint,
    state: { lineage: observed.lineage, serial: observed.serial },
    projects: active.map((project) => project.name),
    actions,
    summary: summarize(actions),
    warnings,
    overdue: active.flatMap((project) =>
      overdueProject(project, times.get(project.name)!, index, now, pitrFreshness(project, observed, now))
    ),
    not_managed: options.projects === undefined ? notManaged(loaded, observed) : [],
    next_due: active.map((project) => {
      const due = times.get(project.name)!.nextDue;
      const pitr = pitrNextDue(project, now);
      return { project: project.name, at: isoSeconds(pitr && pitr < due ? pitr : due) };
    }),
    ...(pitr.stale.length > 0 ? { stale_archives: pitr.stale } : {}),
  };
}

/** The counts of the summary line (snapshots to forget, not forget actions; pgBackRest's backups to expire too). */
export function summarize(actions: readonly PlanAction[]): PlanSummary {
  const summary: PlanSummary = { backup: 0, copy: 0, init: 0, forget: 0, prune: 0, check: 0, verify: 0 };
  for (const action of actions) {
    if (action.type === "forget") summary.forget += action.snapshots.length;
    else if (action.type === "recover") {
      summary.forget += action.recover === "partial_snapshot" ? action.snapshots.length : 0;
    } else if (action.type === "pitr_expire") {
      // pgBackRest's actions count as what they are to it: the summary line's grammar stays what it always was.
      summary.forget += action.labels.length;
    } else if (action.type === "stanza_create") summary.init++;
    else if (action.type === "pitr_backup") summary.backup++;
    else if (action.type === "pitr_check") summary.check++;
    else summary[action.type]++;
  }
  return summary;
}

/** True when applying the plan would change nothing. */
export function isEmpty(plan: Plan): boolean {
  return plan.actions.length === 0;
}
