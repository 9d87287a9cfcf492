/**
 * Plain-data fixtures for the planner's unit tests: a config with three repositories (local, offsite, archive), a
 * complete observed state, inventory snapshots and the planner called at a fixed time.
 */
import { env, restic } from "../../src/config/helpers.ts";
import { validateConfig } from "../../src/config/validate.ts";
import { plan } from "../../src/plan/planner.ts";
import { policyKey } from "../../src/plan/retention.ts";
import type {
  BackupRecord,
  InventorySnapshot,
  ObservedState,
  Plan,
  PlanAction,
  RecoverKind,
} from "../../src/plan/types.ts";

export type Raw = Record<string, unknown>;

/**
 * An action as the planner tests read it: any field of any action type, absent where its type has none (a flat view
 * of the union, so a test can compare the same field across a plan's actions). Every plan is one of these.
 */
export type TestAction =
  & PlanAction
  & Partial<{
    project: string;
    source: string;
    repository: string;
    recover: RecoverKind;
    run_id: string;
    paths: string[];
    snapshots: string[];
    approval: "routine" | "required";
    approval_reason: string;
    read_data_subset: string;
    chunker_from: string;
    from: string;
  }>;
export type TestPlan = Omit<Plan, "actions"> & { actions: TestAction[] };

/** A plan as the tests read it (see {@link TestAction}). */
export function readable(plan: Plan): TestPlan {
  return plan;
}

export const FINGERPRINT = "sha256:test";
export const NOW = "2026-11-21T10:00:00Z";
/** Durations in milliseconds, for times relative to NOW. */
export const minute = 60_000;
export const hour = 60 * minute;
export const day = 24 * hour;

export function loadedConfig(projects: Record<string, Raw>, root: Raw = {}) {
  const raw = {
    repositories: {
      local: restic({ url: "/srv/restic", password: env("RESTIC_PASSWORD") }),
      offsite: restic({ url: "sftp:backup@storage.example:/restic", password: env("RESTIC_PASSWORD") }),
      archive: restic({ url: "/srv/archive", password: env("RESTIC_PASSWORD") }),
    },
    projects,
    ...root,
  };
  return { config: validateConfig(raw, "t.ts"), fingerprint: FINGERPRINT };
}

/** An observed state with every field; repositories initialized without a known time (so no check is due). */
export function observedState(changes: Partial<ObservedState> = {}): ObservedState {
  return {
    lineage: "8c0f3a52-0000-4000-8000-000000000001",
    serial: 7,
    repositories: { local: { initialized: true }, offsite: { initialized: true }, archive: { initialized: true } },
    backups: [],
    failures: [],
    snapshots: [],
    retention: [],
    maintenance: [],
    knownProjects: [],
    knownRepositories: [],
    appliedPlans: [],
    partials: [],
    ...changes,
  };
}

export function record(project: string, source: string, at: string, repository = "local"): BackupRecord {
  return { project, source, repository, at };
}

export const at = (iso: string) => new Date(iso);
export const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
export const ago = (ms: number, from = NOW) => iso(Date.parse(from) - ms);

export function planAt(
  loaded: ReturnType<typeof loadedConfig>,
  observed: ObservedState,
  now = NOW,
  projects?: string[],
): TestPlan {
  return plan(loaded, observed, at(now), { projects, generatedAt: at("2026-11-21T10:00:05Z") });
}

export function snap(
  repository: string,
  id: string,
  time: string,
  project: string | null = "shop",
  source: string | null = "shop",
): InventorySnapshot {
  return {
    repository,
    id,
    short_id: id.slice(0, 8),
    time,
    project,
    source,
    run_id: null,
    hostname: "backup-host",
    tags: project === null ? [] : ["backupctl", `project=${project}`, `source=${source}`],
  };
}

/** One snapshot a day at 03:00:05 of November 2026, id `<prefix>0000<dd>` (hex, as restic ids are). */
export function daily(
  repository: string,
  prefix: string,
  days: number[],
  project: string | null = "shop",
  source: string | null = "shop",
): InventorySnapshot[] {
  return days.map((d) => {
    const dd = String(d).padStart(2, "0");
    return snap(repository, `${prefix}0000${dd}`, `2026-11-${dd}T03:00:05Z`, project, source);
  });
}

/** The policy record saying `retention` was last applied to the group. */
export function applied(retention: Raw, project = "shop", source = "shop", repository = "local") {
  return { project, source, repository, policy: policyKey(retention), at: "2026-11-01T00:00:00Z" };
}

export const ofType = (result: TestPlan, type: PlanAction["type"]) => result.actions.filter((a) => a.type === type);

/** A loaded config with one project, `shop`, notifying every notifier given (for the notification tests). */
export function loadedWithNotifiers(notifiers: Record<string, unknown>, root: Raw = {}, dir = "/cfg") {
  const project = {
    schedule: "0 3 * * *",
    sources: [{ type: "sqlite", path: "/srv/app.db" }],
    repositories: ["local"],
    retention: { daily: 7 },
    notify: Object.keys(notifiers),
  };
  return { ...loadedConfig({ shop: project }, { notifiers, ...root }), file: `${dir}/t.ts`, dir };
}
