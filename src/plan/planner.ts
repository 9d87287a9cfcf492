/**
 * The planner: a pure function of (config, observed state, now) → Plan. No I/O, no clock, no processes.
 * The rules it implements are described in docs/planning.md.
 */
import type { LoadedConfig } from "../config/load.ts";
import type { NormalizedProject } from "../config/normalize.ts";
import { parseDuration } from "../config/duration.ts";
import { nextSlot, previousSlot, slotsBetween } from "../config/schedule.ts";
import { applyRetention, describePolicyChange, policyKey, retentionGroupKey as groupKey } from "./retention.ts";
import { humanDuration, isoSeconds } from "../format/time.ts";
import {
  type InventorySnapshot,
  isUsable,
  type MaintenanceRecord,
  type NotManaged,
  type ObservedState,
  type Overdue,
  type Plan,
  type PlanAction,
  type PlanSummary,
} from "./types.ts";

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
type Draft = Omit<PlanAction, "id">;

const day = 86_400_000;
/** How often a repository with forgotten snapshots is pruned when no project using it sets `prune.every`. */
export const defaultPruneEvery = "7d";
/** The share of a repository's snapshots forgotten since its last prune that makes it due at once: half. */
export const pruneShare = { numerator: 1, denominator: 2 } as const;
/** How often repositories are checked when a project does not say. */
export const defaultCheckEvery = "7d";

export function plan(loaded: Loaded, observed: ObservedState, now: Date, options: PlanOptions): Plan {
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
  const copies = demand?.command === "forget"
    ? []
    : active.flatMap((project) =>
      copyActions(project, index, backups, forgets).filter((copy) =>
        demand?.command !== "backup" ||
        (backups.some((backup) => backup.project === copy.project && backup.source === copy.source) &&
          (demand.repositories === undefined || demand.repositories.includes(copy.repository!)))
      )
    );
  const drafts: Draft[] = [
    ...recoverActions(observed, loaded),
    ...(demand?.command === "forget" ? [] : initActions(active, observed).filter((init) =>
      demand === undefined ||
      [...backups, ...copies].some((action) => action.repository === init.repository || action.from === init.repository)
    )),
    ...backups,
    ...copies,
    ...forgets,
    ...(demand?.command === "backup"
      ? []
      : demand?.command === "forget"
      ? forgetNowPrunes(active, maintenanceActions(active, observed, index, forgets, now), forgets, demand.prune)
      : maintenanceActions(active, observed, index, forgets, now)),
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
    overdue: active.flatMap((project) => overdueProject(project, times.get(project.name)!, index, now)),
    not_managed: options.projects === undefined ? notManaged(loaded, observed) : [],
    next_due: active.map((project) => ({ project: project.name, at: isoSeconds(times.get(project.name)!.nextDue) })),
  };
}

/** Lookups over the observed state, built once per plan (the inventory can hold 100,000 snapshots). */
interface ObservedIndex {
  success: Map<string, string>;
  failure: Map<string, string>;
  groups: Map<string, InventorySnapshot[]>;
  retention: Map<string, string>;
}

function indexObserved(observed: ObservedState): ObservedIndex {
  const latest = (records: ObservedState["backups"]) => {
    const map = new Map<string, string>();
    for (const r of records) {
      const key = groupKey(r.project, r.source, r.repository);
      if ((map.get(key) ?? "") < r.at) map.set(key, r.at);
    }
    return map;
  };
  const groups = new Map<string, InventorySnapshot[]>();
  for (const snapshot of observed.snapshots) {
    if (snapshot.project === null || snapshot.source === null) continue;
    const key = groupKey(snapshot.project, snapshot.source, snapshot.repository);
    const group = groups.get(key);
    if (group) group.push(snapshot);
    else groups.set(key, [snapshot]);
  }
  return {
    success: latest(observed.backups),
    failure: latest(observed.failures),
    groups,
    retention: new Map(observed.retention.map((r) => [groupKey(r.project, r.source, r.repository), r.policy])),
  };
}

/**
 * Startup recovery, in the order apply runs it: runs of dead processes are marked interrupted, their lock files and
 * private temporary folders removed, the restic locks they may have left in their project's repositories removed
 * (only those whose holder is provably gone), and the partial snapshots of failed or interrupted runs forgotten, whatever the
 * config says (they were never good backups; only those still in the inventory are planned).
 */
function recoverActions(observed: ObservedState, loaded: Loaded): Draft[] {
  const drafts: Draft[] = [];
  const leftovers = observed.leftovers;
  const unlock = new Map<string, string>();
  for (const run of leftovers?.interruptedRuns ?? []) {
    drafts.push({
      type: "recover",
      recover: "interrupted_run",
      project: run.project,
      run_id: run.id,
      destructive: false,
      reason: `run ${run.id} (pid ${run.pid}, started ${run.startedAt}) ended without finishing${
        run.stage ? ` during ${run.stage}` : ""
      }: mark it interrupted`,
    });
    for (const repository of loaded.config.projects[run.project]?.repositories ?? []) {
      if (!unlock.has(repository)) unlock.set(repository, run.id);
    }
  }
  for (const lock of leftovers?.staleLocks ?? []) {
    drafts.push({
      type: "recover",
      recover: "stale_lock",
      project: lock.project,
      ...(lock.runId ? { run_id: lock.runId } : {}),
      destructive: false,
      reason: `lock of ${lock.project} held since ${lock.since} by pid ${lock.pid}, which is gone: remove it`,
    });
  }
  if (leftovers && leftovers.files.length > 0) {
    const n = leftovers.files.length;
    drafts.push({
      type: "recover",
      recover: "leftover_files",
      paths: leftovers.files,
      destructive: false,
      reason: `${n} private temporary folder${n === 1 ? "" : "s"} of processes that are gone: delete ${
        n === 1 ? "it" : "them"
      }`,
    });
  }
  const staleResticLocks = new Map<string, string[]>();
  for (const lock of leftovers?.resticLocks ?? []) {
    staleResticLocks.set(lock.repository, [...staleResticLocks.get(lock.repository) ?? [], lock.holder]);
  }
  for (const [repository, holders] of staleResticLocks) {
    if (unlock.has(repository)) continue;
    drafts.push({
      type: "recover",
      recover: "restic_unlock",
      repository,
      destructive: false,
      reason: `${holders.join("; ")}: remove ${holders.length === 1 ? "it" : "them"}`,
    });
  }
  for (const [repository, runId] of unlock) {
    drafts.push({
      type: "recover",
      recover: "restic_unlock",
      repository,
      run_id: runId,
      destructive: false,
      reason:
        `run ${runId} was interrupted: remove the restic locks it left (only those whose holder is provably gone)`,
    });
  }
  for (const partial of observed.partials) {
    const snapshot = observed.snapshots.find((s) =>
      s.repository === partial.repository && (s.id === partial.snapshot || s.id.startsWith(partial.snapshot))
    );
    if (!snapshot) continue;
    drafts.push({
      type: "recover",
      recover: "partial_snapshot",
      ...(partial.runId ? { run_id: partial.runId } : {}),
      project: partial.project,
      source: partial.source,
      repository: partial.repository,
      snapshots: [snapshot.id],
      destructive: true,
      approval: "routine",
      reason: `partial snapshot of a failed or interrupted backup${
        partial.runId ? ` (run ${partial.runId})` : ""
      }: forget it`,
    });
  }
  return drafts;
}

/**
 * Repositories to initialize. One that only ever receives copies takes the chunker parameters of the repository it
 * copies from (initialized first), so copied snapshots deduplicate there.
 */
/**
 * An init for each repository known not to be initialized. One restic could not open (a wrong password, a backend
 * that cannot be reached) may well exist: it is never initialized, and {@link unopenedRepositories} says why.
 */
function initActions(active: NormalizedProject[], observed: ObservedState): Draft[] {
  const repositories = [...new Set(active.flatMap((project) => project.repositories))];
  const primaries = new Set(active.map((project) => project.repositories[0]));
  const drafts = repositories
    .filter((repository) =>
      !observed.repositories[repository]?.initialized && observed.repositories[repository]?.unreachable === undefined
    )
    .map((repository): Draft => {
      const from = primaries.has(repository)
        ? undefined
        : active.find((project) => project.repositories.includes(repository))!.repositories[0];
      return from
        ? {
          type: "init",
          repository,
          chunker_from: from,
          reason: `repository not initialized (chunker parameters of ${from})`,
          destructive: false,
        }
        : { type: "init", repository, reason: "repository not initialized", destructive: false };
    });
  return [...drafts.filter((d) => !d.chunker_from), ...drafts.filter((d) => d.chunker_from)];
}

/** A warning for each repository of the plan that restic could not open: the cause, and that nothing initializes it. */
function unopenedRepositories(active: NormalizedProject[], observed: ObservedState): string[] {
  const repositories = [...new Set(active.flatMap((project) => project.repositories))];
  return repositories.flatMap((repository) => {
    const reason = observed.repositories[repository]?.unreachable;
    return reason === undefined
      ? []
      : [`repository ${repository} cannot be opened, so it is not initialized and its stages will fail: ${reason}`];
  });
}

/**
 * Dump once, send to many: each later repository of a project gets `restic copy` of the primary's snapshots it
 * does not hold yet (a copy remembers its original), plus the snapshot this plan's backup will make. Snapshots the
 * plan forgets from the primary are not copied.
 */
function copyActions(project: NormalizedProject, index: ObservedIndex, backups: Draft[], forgets: Draft[]): Draft[] {
  const [primary, ...others] = project.repositories;
  const drafts: Draft[] = [];
  for (const repository of others) {
    for (const source of project.sources) {
      const present = new Set<string>();
      for (const copy of index.groups.get(groupKey(project.name, source.name, repository)) ?? []) {
        present.add(copy.id);
        if (copy.original) present.add(copy.original);
      }
      const forgotten = new Set(
        forgets.filter((f) => f.project === project.name && f.source === source.name && f.repository === primary)
          .flatMap((f) => f.snapshots ?? []),
      );
      const missing = (index.groups.get(groupKey(project.name, source.name, primary)) ?? [])
        // Incomplete snapshots (and those of a run still going) are never copied: recovery forgets them.
        .filter((snapshot) => isUsable(snapshot) && !present.has(snapshot.id) && !forgotten.has(snapshot.id))
        .sort((a, b) => a.time.localeCompare(b.time))
        .map((snapshot) => snapshot.id);
      const newBackup = backups.some((b) => b.project === project.name && b.source === source.name);
      if (missing.length === 0 && !newBackup) continue;
      const what = [
        newBackup ? "the new backup" : "",
        missing.length > 0 ? `${missing.length} snapshot${missing.length === 1 ? "" : "s"} it lacks` : "",
      ].filter(Boolean).join(" and ");
      drafts.push({
        type: "copy",
        project: project.name,
        source: source.name,
        repository,
        from: primary,
        snapshots: missing,
        reason: `copy ${what} from ${primary}`,
        destructive: false,
      });
    }
  }
  return drafts;
}

/**
 * A deterministic delay in [0, jitter) per project, so projects sharing a schedule spread out while every plan of
 * the same project stays the same (FNV-1a of the project name).
 */
export function jitterOffset(project: NormalizedProject): number {
  const jitter = project.jitter ? parseDuration(project.jitter) ?? 0 : 0;
  if (jitter <= 0) return 0;
  let hash = 0x811c9dc5;
  for (const char of project.name) {
    hash ^= char.codePointAt(0)!;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  // Whole seconds: plans print times to the second, and "due at" must be exactly the time they announce.
  return Math.floor(((hash / 0x1_0000_0000) * jitter) / 1000) * 1000;
}

/** A project's schedule around `now`, computed once per plan (cron evaluation is the planner's costliest step). */
interface ProjectTimes {
  /** The latest cron slot whose jittered time is at or before now, and that jittered time. */
  slot?: Date;
  dueAt?: Date;
  /** When the next backup will be due, jitter included. */
  nextDue: Date;
  /** The interval between the latest and the next slot. */
  interval: number;
}

function projectTimes(project: NormalizedProject, now: Date): ProjectTimes {
  const offset = jitterOffset(project);
  const shifted = new Date(now.getTime() - offset);
  const slot = previousSlot(project.schedule, project.timezone, shifted);
  const next = nextSlot(project.schedule, project.timezone, shifted);
  return {
    slot,
    dueAt: slot && new Date(slot.getTime() + offset),
    nextDue: new Date(next.getTime() + offset),
    interval: slot ? next.getTime() - slot.getTime() : day,
  };
}

/** `backup` now: every selected source of the project, whatever its schedule (see {@link OnDemand}). */
function backupNowActions(
  project: NormalizedProject,
  times: ProjectTimes,
  sources: readonly string[] | undefined,
): Draft[] {
  const zone = project.timezone === "UTC" ? "" : `, ${project.timezone}`;
  return project.sources.filter((source) => sources === undefined || sources.includes(source.name)).map((source) => ({
    type: "backup",
    project: project.name,
    source: source.name,
    repository: project.repositories[0],
    reason: `on demand (backupctl backup); the schedule ${project.schedule}${zone} is unchanged, next due ` +
      isoSeconds(times.nextDue),
    destructive: false,
  }));
}

/**
 * `forget` now: a prune of each repository it forgets from, whatever the prune cadence (the point is to free space
 * now); with `prune`, every other repository of the projects too (the prune maintenance would plan, else a requested
 * one), to free what earlier forgets left.
 */
function forgetNowPrunes(active: NormalizedProject[], maintenance: Draft[], forgets: Draft[], prune = false): Draft[] {
  const repositories = [...new Set(active.flatMap((project) => project.repositories))];
  return repositories.flatMap((repository): Draft[] => {
    const forgotten = forgets.filter((forget) => forget.repository === repository)
      .reduce((n, forget) => n + (forget.snapshots?.length ?? 0), 0);
    if (forgotten > 0) {
      const reason = `after forgetting ${forgotten} snapshot${forgotten === 1 ? "" : "s"}`;
      return [{ type: "prune", repository, reason, destructive: false }];
    }
    if (!prune) return [];
    const planned = maintenance.find((action) => action.type === "prune" && action.repository === repository);
    return [
      planned ?? {
        type: "prune",
        repository,
        reason: "requested (forget --prune): frees the space of snapshots forgotten before",
        destructive: false,
      },
    ];
  });
}

function backupActions(project: NormalizedProject, times: ProjectTimes, index: ObservedIndex): Draft[] {
  const repository = project.repositories[0];
  const drafts: Draft[] = [];
  for (const source of project.sources) {
    const key = groupKey(project.name, source.name, repository);
    const reason = backupReason(project, times, index.success.get(key), index.failure.get(key));
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
  return drafts;
}

/** Why a source is due now, or undefined when its latest slot already has a successful backup. */
function backupReason(
  project: NormalizedProject,
  due: ProjectTimes,
  lastSuccess: string | undefined,
  lastFailure: string | undefined,
): string | undefined {
  const failed = lastFailure ? `; last attempt failed at ${isoSeconds(new Date(lastFailure))}` : "";
  if (lastSuccess === undefined) return `never backed up${failed}`;
  const success = new Date(lastSuccess);
  if (due.slot === undefined || due.dueAt === undefined || success.getTime() >= due.slot.getTime()) return undefined;
  const zone = project.timezone === "UTC" ? "" : `, ${project.timezone}`;
  const jitter = due.dueAt.getTime() > due.slot.getTime()
    ? `, jitter +${humanDuration(due.dueAt.getTime() - due.slot.getTime())}`
    : "";
  const missed = slotsBetween(project.schedule, project.timezone, success, due.slot);
  const coalesced = missed > 1 ? `; ${missed} slots missed since the last success, one backup covers them` : "";
  return `due since ${isoSeconds(due.dueAt)} (${project.schedule}${zone}${jitter})${coalesced}${failed}`;
}

/**
 * Forget actions: retention per (project, source) group in each of the project's repositories, over the group's
 * complete snapshots only (see {@link isUsable}). An incomplete snapshot (a stream cut by a crash, a failed run's) or
 * one of a run still going is neither counted nor forgotten by retention: recovery judges it. So whatever the policy
 * says, a group always keeps its newest complete snapshot — the invariant docs/operations.md states.
 */
function forgetActions(project: NormalizedProject, index: ObservedIndex, now: Date): Draft[] {
  const drafts: Draft[] = [];
  const current = policyKey(project.retention);
  for (const repository of project.repositories) {
    for (const source of project.sources) {
      const key = groupKey(project.name, source.name, repository);
      const group = (index.groups.get(key) ?? []).filter(isUsable);
      if (group.length < 2) continue;
      const decision = applyRetention(group, project.retention, { now });
      // Never the newest complete snapshot of a group, nor one newer than the source's last successful backup, nor
      // one dated after now. Backups land in the primary repository first, so its last success bounds the copies in
      // the other repositories too.
      const newest = group.reduce((a, b) => (a.time >= b.time ? a : b));
      const lastSuccess = index.success.get(groupKey(project.name, source.name, project.repositories[0]));
      const limit = Math.min(lastSuccess ? Date.parse(lastSuccess) : Number.POSITIVE_INFINITY, now.getTime());
      const forgettable = new Set(
        group.filter((snapshot) => snapshot.id !== newest.id && Date.parse(snapshot.time) <= limit).map((s) => s.id),
      );
      const ids = decision.forget.filter((id) => forgettable.has(id));
      if (ids.length === 0) continue;
      const approval = approvalFor(project, index.retention.get(key), current, group.length - ids.length);
      const skipped = (index.groups.get(key)?.length ?? 0) - group.length;
      drafts.push({
        type: "forget",
        project: project.name,
        source: source.name,
        repository,
        snapshots: ids,
        destructive: true,
        approval: approval ? "required" : "routine",
        ...(approval ? { approval_reason: approval } : {}),
        reason:
          `retention ${describePolicy(project.retention)} keeps ${group.length - ids.length} of ${group.length} ` +
          `snapshot${group.length === 1 ? "" : "s"}${
            skipped > 0 ? ` (${skipped} incomplete or unfinished not counted)` : ""
          }`,
      });
    }
  }
  return drafts;
}

/** Why a forget needs approval, or undefined when it is routine. */
function approvalFor(
  project: NormalizedProject,
  applied: string | undefined,
  current: string,
  remaining: number,
): string | undefined {
  const reasons: string[] = [];
  if (applied === undefined) {
    reasons.push("retention was never applied to these snapshots by this state (adopted repository or new state)");
  } else if (applied !== current) {
    reasons.push(`retention changed (${describePolicyChange(JSON.parse(applied), project.retention)})`);
  }
  const floor = project.retention.minSnapshots;
  if (floor !== undefined && remaining < floor) {
    reasons.push(`it would leave ${remaining} snapshot${remaining === 1 ? "" : "s"}, below minSnapshots ${floor}`);
  }
  return reasons.length > 0 ? reasons.join("; ") : undefined;
}

function describePolicy(retention: NormalizedProject["retention"]): string {
  return Object.entries(retention)
    .filter(([key, value]) => key !== "minSnapshots" && value !== undefined)
    .map(([key, value]) => `${key} ${value}`)
    .join(", ");
}

function maintenanceActions(
  active: NormalizedProject[],
  observed: ObservedState,
  index: ObservedIndex,
  forgets: Draft[],
  now: Date,
): Draft[] {
  const drafts: Draft[] = [];
  const last = (type: MaintenanceRecord["type"], repository: string) =>
    observed.maintenance.find((m) => m.type === type && m.repository === repository)?.at;
  const since = (at: string) => `${isoSeconds(new Date(at))} (${humanDuration(now.getTime() - Date.parse(at))} ago)`;
  const repositories = [...new Set(active.flatMap((project) => project.repositories))];

  for (const repository of repositories) {
    const users = active.filter((project) => project.repositories.includes(repository));
    const forgotten = forgets.filter((f) => f.repository === repository)
      .reduce((n, f) => n + (f.snapshots?.length ?? 0), 0);
    const explicitEvery = minimum(users.map((p) => p.prune?.every));
    const pruned = last("prune", repository);
    const lastPrune = pruned ?? observed.repositories[repository]?.initializedAt;
    const elapsed = (every: { ms: number }) =>
      lastPrune !== undefined && now.getTime() - Date.parse(lastPrune) >= every.ms;
    if (
      (last("forget", repository) ?? "") > (pruned ?? "") && (last("prune_attempt", repository) ?? "") > (pruned ?? "")
    ) {
      // Snapshots were forgotten and no prune succeeded since: the prune after them failed or was cut short.
      drafts.push({
        type: "prune",
        repository,
        reason: `snapshots were forgotten at ${isoSeconds(new Date(last("forget", repository)!))} and not pruned ` +
          "since (the prune after them failed or was interrupted)",
        destructive: false,
      });
      continue;
    }
    if (explicitEvery && elapsed(explicitEvery)) {
      // A cadence the config sets prunes whatever was forgotten: failed backups leave unreferenced data too.
      drafts.push({
        type: "prune",
        repository,
        reason:
          `${pruned ? `last prune ${since(pruned)}` : `never pruned since initialization ${since(lastPrune!)}`}, ` +
          `every ${explicitEvery.text}`,
        destructive: false,
      });
      continue;
    }
    const reason = pruneForForgets(repository, {
      every: explicitEvery ?? { ms: parseDuration(defaultPruneEvery)!, text: defaultPruneEvery },
      pruned,
      since,
      earlier: observed.maintenance.find((m) => m.type === "forget" && m.repository === repository)?.forgotten ?? 0,
      now: forgotten,
      held: observed.snapshots.filter((snapshot) => snapshot.repository === repository).length,
      nowMs: now.getTime(),
    });
    if (reason) drafts.push({ type: "prune", repository, reason, destructive: false });
  }

  for (const repository of repositories) {
    const users = active.filter((project) => project.repositories.includes(repository));
    const every = minimum(users.map((p) => p.check?.every ?? defaultCheckEvery))!;
    const subset = users.map((p) => p.check?.readDataSubset).find((s) => s !== undefined);
    const checked = last("check", repository);
    const base = checked ?? observed.repositories[repository]?.initializedAt;
    if (base === undefined || now.getTime() - Date.parse(base) < every.ms) continue;
    drafts.push({
      type: "check",
      repository,
      reason: `${
        checked ? `last check ${since(checked)}` : `never checked since initialization ${since(base)}`
      }, every ${every.text}${subset ? `, reading ${subset} of the data` : ""}`,
      destructive: false,
      ...(subset ? { read_data_subset: subset } : {}),
    });
  }

  for (const project of active) {
    if (!project.verify) continue;
    const backedUp = project.sources.some((s) =>
      index.success.has(groupKey(project.name, s.name, project.repositories[0]))
    );
    if (!backedUp) continue;
    const every = parseDuration(project.verify.every)!;
    const lastDrill = observed.maintenance.find((m) => m.type === "verify" && m.project === project.name)?.at;
    if (lastDrill && now.getTime() - Date.parse(lastDrill) < every) continue;
    drafts.push({
      type: "verify",
      project: project.name,
      repository: project.repositories[0],
      reason: lastDrill
        ? `last restore drill ${since(lastDrill)}, every ${project.verify.every}`
        : "never restored in a drill",
      destructive: false,
    });
  }
  return drafts;
}

/**
 * Why forgotten snapshots make a repository due for a prune, or undefined when they wait (docs/retention.md#pruning):
 * it was never pruned, `every` has passed since its last prune, or at least half of the snapshots it held at its last
 * prune are forgotten since. `earlier`: snapshots forgotten since the last prune; `now`: in this plan; `held`: what
 * its inventory lists now. A reason that holds only with this plan's forgets starts with "after forgetting": apply
 * skips that prune when none of them ran.
 */
function pruneForForgets(
  repository: string,
  counts: {
    every: { ms: number; text: string };
    pruned: string | undefined;
    since: (at: string) => string;
    earlier: number;
    now: number;
    held: number;
    nowMs: number;
  },
): string | undefined {
  const { every, pruned, since, earlier, now, held } = counts;
  const why = (forgotten: number): string | undefined => {
    if (forgotten === 0) return undefined;
    if (pruned === undefined) return "never pruned before";
    const total = held + earlier;
    if (forgotten * pruneShare.denominator >= total * pruneShare.numerator) {
      return `${forgotten} of ${total} snapshots (${Math.round((100 * forgotten) / total)}%) in ${repository} ` +
        `forgotten since the last prune ${since(pruned)}`;
    }
    if (counts.nowMs - Date.parse(pruned) >= every.ms) {
      return `${forgotten} snapshot${forgotten === 1 ? "" : "s"} forgotten since the last prune ${since(pruned)}, ` +
        `every ${every.text}`;
    }
    return undefined;
  };
  const reason = why(earlier + now);
  if (reason === undefined || why(earlier) !== undefined) return reason;
  return `after forgetting ${now} snapshot${now === 1 ? "" : "s"}; ${reason}`;
}

/** The shortest of several durations, keeping the text it was written as. */
function minimum(durations: (string | undefined)[]): { ms: number; text: string } | undefined {
  let best: { ms: number; text: string } | undefined;
  for (const text of durations) {
    if (text === undefined) continue;
    const ms = parseDuration(text);
    if (ms !== undefined && (!best || ms < best.ms)) best = { ms, text };
  }
  return best;
}

/**
 * A project is overdue when a source's last success is older than maxAge (default: twice the interval between the
 * latest and the next slot, at least two minutes).
 */
function overdueProject(project: NormalizedProject, times: ProjectTimes, index: ObservedIndex, now: Date): Overdue[] {
  const successes = project.sources.map((s) =>
    index.success.get(groupKey(project.name, s.name, project.repositories[0]))
  );
  const known = successes.filter((at): at is string => at !== undefined);
  if (known.length === 0) return [];
  const oldest = known.reduce((a, b) => (a < b ? a : b));
  const maxAge = project.maxAge ? parseDuration(project.maxAge)! : Math.max(2 * times.interval, 2 * 60_000);
  if (now.getTime() - Date.parse(oldest) <= maxAge) return [];
  return [{
    project: project.name,
    last_success: isoSeconds(new Date(oldest)),
    max_age: project.maxAge ?? humanDuration(maxAge).replace(" ", ""),
  }];
}

/** What exists but is not declared: old projects and repositories, foreign snapshots, dropped sources. */
function notManaged(loaded: Loaded, observed: ObservedState): NotManaged[] {
  const { config } = loaded;
  const result: NotManaged[] = [];
  const count = (predicate: (s: InventorySnapshot) => boolean) => observed.snapshots.filter(predicate).length;
  for (const project of observed.knownProjects) {
    if (project in config.projects) continue;
    const n = count((s) => s.project === project);
    result.push({
      kind: "project",
      subject: project,
      detail: `no longer declared; its ${
        n === 1 ? "snapshot is" : `${n} snapshots are`
      } kept, never deleted automatically`,
    });
  }
  for (const repository of observed.knownRepositories) {
    if (repository in config.repositories) continue;
    result.push({ kind: "repository", subject: repository, detail: "no longer declared; nothing is done with it" });
  }
  const known = new Set(observed.knownProjects);
  const groups = new Map<string, { repository: string; label: string; detail: string; n: number }>();
  for (const snapshot of observed.snapshots) {
    if (!(snapshot.repository in config.repositories)) continue;
    let label: string;
    let detail: string;
    if (snapshot.project === null) {
      label = `${snapshot.repository}: snapshots not made by backupctl`;
      detail = "kept as they are";
    } else {
      const project = config.projects[snapshot.project];
      if (!project) {
        if (known.has(snapshot.project)) continue; // reported with its project above
        label = `${snapshot.project} in ${snapshot.repository}`;
        detail = "project not declared (and not in this state's audit); its snapshots are kept";
      } else if (!project.sources.some((s) => s.name === snapshot.source)) {
        label = `${snapshot.project}/${snapshot.source} in ${snapshot.repository}`;
        detail = "source no longer declared; its snapshots are kept";
      } else if (!project.repositories.includes(snapshot.repository)) {
        label = `${snapshot.project}/${snapshot.source} in ${snapshot.repository}`;
        detail = "the project no longer uses this repository; its snapshots are kept";
      } else continue;
    }
    const entry = groups.get(label) ?? { repository: snapshot.repository, label, detail, n: 0 };
    entry.n++;
    groups.set(label, entry);
  }
  for (const entry of groups.values()) {
    const kind = entry.label.includes("not made by backupctl")
      ? "foreign"
      : entry.label.includes("/")
      ? "source"
      : "project";
    result.push({
      kind,
      subject: entry.label,
      detail: `${entry.n} snapshot${entry.n === 1 ? "" : "s"}: ${entry.detail}`,
    });
  }
  return result;
}

export function summarize(actions: readonly PlanAction[]): PlanSummary {
  const summary: PlanSummary = { backup: 0, copy: 0, init: 0, forget: 0, prune: 0, check: 0, verify: 0 };
  for (const action of actions) {
    if (action.type === "forget" || action.type === "recover") summary.forget += action.snapshots?.length ?? 0;
    else summary[action.type]++;
  }
  return summary;
}

/** True when applying the plan would change nothing. */
export function isEmpty(plan: Plan): boolean {
  return plan.actions.length === 0;
}
