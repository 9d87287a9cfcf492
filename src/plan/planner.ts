/**
 * The planner: a pure function of (config, observed state, now) → Plan. No I/O, no clock, no processes.
 * See docs/architecture.md for the rules it implements.
 */
import type { LoadedConfig } from "../config/load.ts";
import type { NormalizedProject } from "../config/normalize.ts";
import { nextSlot, previousSlot } from "../config/schedule.ts";
import { isoSeconds } from "./time.ts";
import type { BackupRecord, ObservedState, Plan, PlanAction, PlanSummary } from "./types.ts";

export interface PlanOptions {
  /** Only these projects (default: all enabled projects). */
  projects?: readonly string[];
  /** Wall-clock time the plan is made at (recorded, never used for decisions). */
  generatedAt: Date;
}

type Loaded = Pick<LoadedConfig, "config" | "fingerprint">;

export function plan(loaded: Loaded, observed: ObservedState, now: Date, options: PlanOptions): Plan {
  const { config } = loaded;
  const selected = Object.values(config.projects)
    .filter((project) => options.projects === undefined || options.projects.includes(project.name));
  const active = selected.filter((project) => project.enabled);
  const warnings = selected.filter((project) => !project.enabled)
    .map((project) => `project ${project.name} is disabled (enabled: false): nothing is planned for it`);

  const drafts: Omit<PlanAction, "id">[] = [];
  for (const repository of repositoriesOf(active)) {
    if (!observed.repositories[repository]?.initialized) {
      drafts.push({ type: "init", repository, reason: "repository not initialized", destructive: false });
    }
  }
  const successes = indexRecords(observed.backups);
  const failures = indexRecords(observed.failures);
  for (const project of active) {
    const repository = project.repositories[0];
    for (const source of project.sources) {
      const key = recordKey(project.name, source.name, repository);
      const reason = backupReason(project, successes.get(key), failures.get(key), now);
      if (reason) {
        drafts.push({
          type: "backup",
          project: project.name,
          source: source.name,
          repository,
          reason,
          destructive: false,
        });
      }
    }
  }

  const actions = drafts.map((action, index) => ({ id: `a${index + 1}`, ...action }));
  return {
    format_version: 1,
    generated_at: isoSeconds(options.generatedAt),
    now: isoSeconds(now),
    config_fingerprint: loaded.fingerprint,
    state: { lineage: observed.lineage, serial: observed.serial },
    actions,
    summary: summarize(actions),
    warnings,
    next_due: active.map((project) => ({
      project: project.name,
      at: isoSeconds(nextSlot(project.schedule, project.timezone, now)),
    })),
  };
}

/** Why a source is due now, or undefined when its latest slot already has a successful backup. */
function backupReason(
  project: NormalizedProject,
  lastSuccess: string | undefined,
  lastFailure: string | undefined,
  now: Date,
): string | undefined {
  const failed = lastFailure ? `; last attempt failed at ${lastFailure}` : "";
  if (lastSuccess === undefined) return `never backed up${failed}`;
  const slot = previousSlot(project.schedule, project.timezone, now);
  if (slot === undefined || Date.parse(lastSuccess) >= slot.getTime()) return undefined;
  const zone = project.timezone === "UTC" ? "" : `, ${project.timezone}`;
  return `due since ${isoSeconds(slot)} (${project.schedule}${zone})${failed}`;
}

function repositoriesOf(projects: NormalizedProject[]): string[] {
  return [...new Set(projects.flatMap((project) => project.repositories))];
}

function recordKey(project: string, source: string, repository: string): string {
  return `${project}\u0000${source}\u0000${repository}`;
}

function indexRecords(records: BackupRecord[]): Map<string, string> {
  const index = new Map<string, string>();
  for (const record of records) {
    const key = recordKey(record.project, record.source, record.repository);
    if ((index.get(key) ?? "") < record.at) index.set(key, record.at);
  }
  return index;
}

export function summarize(actions: readonly PlanAction[]): PlanSummary {
  const summary: PlanSummary = { backup: 0, copy: 0, init: 0, forget: 0, prune: 0, check: 0, verify: 0 };
  for (const action of actions) {
    if (action.type === "forget") summary.forget += action.snapshots?.length ?? 0;
    else if (action.type !== "recover") summary[action.type]++;
  }
  return summary;
}

/** True when applying the plan would change nothing. */
export function isEmpty(plan: Plan): boolean {
  return plan.actions.length === 0;
}
