/**
 * The status of every project, as `status` prints it and the dashboard shows it: health, last success, last result,
 * next due, snapshots, checks, drills, pending notifications, what dead processes left, and the fleet. Made from one
 * offline plan (no restic) and the state's reports; reads only.
 */
import { type Prepared, preparePlan } from "../apply/prepare.ts";
import type { LoadedConfig } from "../config/load.ts";
import { parseDuration } from "../config/duration.ts";
import { nextSlot } from "../config/schedule.ts";
import { isoSeconds } from "../format/time.ts";
import { maxAgeText } from "../plan/due.ts";
import type { Leftovers, ObservedState } from "../plan/types.ts";
import type { StateStore } from "../state/store.ts";
import { type FleetStatus, fleetStatus } from "./fleet.ts";

export interface ProjectStatus {
  project: string;
  enabled: boolean;
  /**
   * ok; failing: the last run failed, or was interrupted and none ever succeeded, or the last drill or a check failed;
   * overdue: no success within maxAge; never: no run yet (or one still running).
   */
  health: "ok" | "failing" | "overdue" | "never" | "disabled";
  overdue: boolean;
  last_success: string | null;
  last_run: { id: string; status: string; started_at: string; error: string | null } | null;
  /** True when plan would back up one of its sources now. */
  due: boolean;
  next_due: string;
  snapshots: Record<string, { count: number; newest: string | null }>;
  /** Per repository: the last `restic check` (time and ok/failed), null when never checked. */
  last_check: Record<string, { at: string; status: string } | null>;
  /** The latest restore drill, null without one (or without `verify`). */
  last_drill: {
    at: string;
    status: string;
    /** How long it took: the restore time it proved (RTO). */
    duration_ms: number | null;
    /** The project's objective (`verify.rto`), null without one. */
    rto: string | null;
    /** Slower than the objective. */
    slow: boolean;
  } | null;
  /** With `drillTrend`: the last 10 drills, oldest first (status's trend). */
  drill_trend?: { at: string; status: string; duration_ms: number | null }[];
  /** Notifications about this project still waiting to be sent. */
  pending_notifications: number;
  /** In a fleet (a state runners registered in): the runner that made the latest run (else its host), null before. */
  ran_by?: string | null;
  /** The pgbackrest() sources, as pgBackRest and the cluster say now (only for a project that has some). */
  pitr?: PitrStatus[];
}

/** A pgbackrest() source's stanza and archive; a stale archive or one that cannot be read makes its project failing. */
export interface PitrStatus {
  source: string;
  stanza: string;
  backups: number;
  newest_backup: { label: string; type: string; stop: string } | null;
  last_archived_wal: string | null;
  last_archived_at: string | null;
  /** Why the newest backup is too old (plan/due.ts's rule, as for dumps), null when it is not. */
  backup_overdue: string | null;
  /** Why the archive is stale (older than the rpo, or archiving fails), null when it is not. */
  archive_stale: string | null;
  /** What in the cluster's archiving differs from what the stanza needs. */
  archive_problems: string[];
  /** What could not be read (pgBackRest's info, the cluster). */
  errors: string[];
}

/** The outbox as status shows it: what is still being tried, and what was given up in the last week. */
export interface NotificationStatus {
  pending: {
    channel: string;
    event: string;
    project: string | null;
    created_at: string;
    attempts: number;
    next_attempt_at: string;
    last_error: string | null;
  }[];
  undeliverable: {
    channel: string;
    event: string;
    project: string | null;
    created_at: string;
    given_up_at: string;
    error: string | null;
  }[];
}

/** What dead processes left behind, as status shows it: found, not repaired (the next apply or watch does). */
export interface LeftoverStatus {
  /** Runs still marked running whose process on this host is gone. */
  interrupted_runs: { id: string; project: string; stage: string | null; pid: number; started_at: string }[];
  /** Project lock files whose holder on this host is gone. */
  stale_locks: { project: string; pid: number; since: string; run_id: string | null }[];
  /** Private temporary folders of dead processes, relative to the state folder. */
  files: string[];
}

/** How long status keeps showing a notification given up as undeliverable. */
const undeliverableShownMs = 7 * 86_400_000;

/** Everything status shows, at `now`. */
export interface StatusReport {
  now: Date;
  /**
   * The plan status was made from (offline: the state as recorded). For all projects it is made from the audit alone
   * (no forgets, copies or recoveries); with `projects`, from their part of the inventory, their own actions only.
   */
  prepared: Prepared;
  leftovers: Leftovers;
  projects: ProjectStatus[];
  notifications: NotificationStatus;
  /** Per project, its latest restore drill (with the time it took). */
  drills: Awaited<ReturnType<StateStore["latestDrills"]>>;
  /** Set in a fleet (a state runners registered in). */
  fleet: Awaited<ReturnType<typeof fleetStatus>>;
}

/**
 * The status report of every declared project at `now`; reads the state only (see the top of this file). With
 * `projects`, of those only, from a plan of their own actions over the part of the state they need (one project's
 * dashboard page at a fraction of the cost on a large inventory); that plan's repository-wide actions are not to be
 * used (prune and check judge every project's snapshots).
 */
export async function statusReport(
  loaded: LoadedConfig,
  store: StateStore,
  options: { now: Date; host: string; projects?: string[]; drillTrend?: boolean },
): Promise<StatusReport> {
  const { now } = options;
  // One plan, from the state as recorded (no restic): "due" and "overdue" come from the planner itself, so status
  // and plan never disagree. What dead processes left is found and shown, never repaired here: a status must not
  // change the state (a run it judges dead may be alive on another host sharing it); the next apply or watch does.
  // All projects: from the audit alone (what is due and overdue), not the snapshot inventory. Some (a project's page):
  // their own actions, from their part of the inventory, forgets included.
  const scope = options.projects?.length ? { projects: options.projects, projectActionsOnly: true } : {};
  const prepared = await preparePlan(loaded, store, {
    now,
    host: options.host,
    offline: true,
    ...(scope.projects ? scope : { withoutInventory: true }),
  });
  const leftovers = prepared.leftovers;
  const due = new Set(prepared.plan.actions.filter((a) => a.type === "backup").map((a) => a.project));
  const overdue = new Set(prepared.plan.overdue.map((o) => o.project));
  const interrupted = new Map(leftovers.interruptedRuns.map((run) => [run.id, run]));
  const runs = await store.projectRuns(scope.projects);
  const counts = await store.snapshotCounts();
  const countOf = new Map(counts.map((c) => [`${c.repository}\u0000${c.project}`, c]));
  const checks = await store.repositoryChecks();
  const drills = await store.latestDrills(scope.projects);
  // One read of the outbox serves both the per-project counts and the notifications section below.
  const outbox = await store.outbox.outboxOverview(new Date(now.getTime() - undeliverableShownMs).toISOString());
  const trends = options.drillTrend ? await store.drillTrends() : undefined;
  const fleet = await fleetStatus(store, loaded.config, now);
  const selected = Object.values(loaded.config.projects)
    .filter((project) => !scope.projects || scope.projects.includes(project.name));
  const pitr = await pitrStatuses(loaded, prepared.observed, now);
  const statuses: ProjectStatus[] = selected.map((project) => {
    const { lastSuccess } = runs.get(project.name) ?? {};
    const lastRun = asFound(runs.get(project.name)?.lastRun, interrupted);
    const snapshots: ProjectStatus["snapshots"] = {};
    const lastCheck: ProjectStatus["last_check"] = {};
    for (const repository of project.repositories) {
      const row = countOf.get(`${repository}\u0000${project.name}`);
      snapshots[repository] = { count: row?.count ?? 0, newest: row?.newest ?? null };
      lastCheck[repository] = checks.get(repository) ?? null;
    }
    const drill = drills.get(project.name);
    // A run cut short is not alarming after a success (the next one repairs it, and maxAge watches the age), but a
    // project whose only runs were cut short has no backup at all.
    const neverSucceeded = !lastSuccess && lastRun?.status === "interrupted";
    const archives = pitr.get(project.name);
    const failing = lastRun?.status === "failed" || neverSucceeded || drill?.status === "failed" ||
      Object.values(lastCheck).some((c) => c?.status === "failed") ||
      (project.enabled && archives?.some((a) => a.archive_stale !== null || a.errors.length > 0));
    const health: ProjectStatus["health"] = !project.enabled
      ? "disabled"
      : overdue.has(project.name)
      ? "overdue"
      : failing
      ? "failing"
      : lastSuccess
      ? "ok"
      : "never";
    return {
      project: project.name,
      enabled: project.enabled,
      health,
      overdue: overdue.has(project.name),
      last_success: lastSuccess?.started_at ?? null,
      last_run: lastRun
        ? { id: lastRun.id, status: lastRun.status, started_at: lastRun.started_at, error: lastRun.error }
        : null,
      due: due.has(project.name),
      next_due: isoSeconds(nextSlot(project.schedule, project.timezone, now)),
      snapshots,
      last_check: lastCheck,
      last_drill: drill
        ? {
          at: drill.at,
          status: drill.status,
          duration_ms: drill.durationMs,
          rto: project.verify?.rto ?? null,
          slow: slowerThan(drill.durationMs, project.verify?.rto),
        }
        : null,
      ...(trends
        ? {
          drill_trend: (trends.get(project.name) ?? []).map((d) => ({
            at: d.at,
            status: d.status,
            duration_ms: d.durationMs,
          })),
        }
        : {}),
      pending_notifications: outbox.pending.filter((n) => n.project === project.name).length,
      ...(fleet ? { ran_by: fleet.lastRunners.get(project.name) ?? null } : {}),
      ...(archives ? { pitr: archives } : {}),
    };
  });
  const notifications: NotificationStatus = {
    pending: outbox.pending.map((row) => ({
      channel: row.channel,
      event: row.event,
      project: row.project,
      created_at: row.created_at,
      attempts: row.attempts,
      next_attempt_at: row.next_attempt_at,
      last_error: row.last_error,
    })),
    undeliverable: outbox.undeliverable.map((row) => ({
      channel: row.channel,
      event: row.event,
      project: row.project,
      created_at: row.created_at,
      given_up_at: row.given_up_at!,
      error: row.last_error,
    })),
  };
  return { now, prepared, leftovers, projects: statuses, notifications, fleet, drills };
}

/**
 * The pgbackrest() sources of the projects as the plan observed them (pgBackRest and the clusters asked once, reads
 * only), by project, each judged by the overdue rule of the plan; none when no project has one.
 */
async function pitrStatuses(
  loaded: LoadedConfig,
  observed: ObservedState,
  now: Date,
): Promise<Map<string, PitrStatus[]>> {
  const byProject = new Map<string, PitrStatus[]>();
  if (!observed.pitr?.length) return byProject;
  // Imported here: a status without pgbackrest() sources never loads the PITR engine.
  const { settingsProblems } = await import("../pitr/archive.ts");
  const { pitrFreshness, staleArchiveOf } = await import("../plan/pitr-actions.ts");
  for (const seen of observed.pitr) {
    const project = loaded.config.projects[seen.project];
    const source = project?.pitr.find((s) => s.name === seen.source);
    if (!source) continue;
    const fresh = pitrFreshness(project, { ...observed, pitr: [seen] }, now)[0];
    const late = fresh && now.getTime() - Date.parse(fresh.lastSuccess) > fresh.maxAgeMs ? fresh : undefined;
    const newest = seen.info?.backups.at(-1);
    const status: PitrStatus = {
      source: source.name,
      stanza: source.stanza,
      backups: seen.info?.backups.length ?? 0,
      newest_backup: newest ? { label: newest.label, type: newest.type, stop: isoSeconds(newest.stop) } : null,
      last_archived_wal: seen.archive?.lastArchivedWal ?? null,
      last_archived_at: seen.archive?.lastArchivedAt ? isoSeconds(seen.archive.lastArchivedAt) : null,
      archive_stale: staleArchiveOf(seen.project, source, seen, now)?.reason ?? null,
      backup_overdue: late
        ? `the newest backup started ${isoSeconds(new Date(late.lastSuccess))}, longer ago than the maxAge ` +
          maxAgeText(project, late.maxAgeMs)
        : null,
      archive_problems: seen.archive ? settingsProblems(seen.archive, { archiveCommand: seen.archiveCommand }) : [],
      errors: [
        ...(seen.infoError ? [`pgbackrest info: ${seen.infoError}`] : []),
        ...(seen.archiveError ? [`the cluster's archiving cannot be read: ${seen.archiveError}`] : []),
      ],
    };
    byProject.set(seen.project, [...(byProject.get(seen.project) ?? []), status]);
  }
  return byProject;
}

/** The JSON `status --json` prints (and the dashboard's content is checked against). */
export function statusJson(report: StatusReport, unwritable: string | undefined) {
  return {
    now: isoSeconds(report.now),
    state_unwritable: unwritable ?? null,
    leftovers: leftoverStatus(report.leftovers),
    projects: report.projects,
    notifications: report.notifications,
    ...(report.fleet ? { fleet: report.fleet.fleet } : {}),
  };
}

/** Whether status exits 1: a project failing or overdue. */
export function unhealthy(statuses: ProjectStatus[]): boolean {
  return statuses.some((s) => s.health === "failing" || s.health === "overdue");
}

export type { FleetStatus };

/**
 * The last run as it is: one still marked running whose process is gone was interrupted, though only the next apply
 * or watch records it so.
 */
function asFound<T extends { id: string; status: string; error: string | null }>(
  run: T | undefined,
  interrupted: Map<string, Leftovers["interruptedRuns"][number]>,
): T | undefined {
  const dead = run && interrupted.get(run.id);
  if (!run || !dead) return run;
  const during = dead.stage ? `, during ${dead.stage}` : "";
  return {
    ...run,
    status: "interrupted",
    error: `process gone (pid ${dead.pid}${during}); the next apply or watch records it as interrupted`,
  };
}

function leftoverStatus(leftovers: Leftovers): LeftoverStatus {
  return {
    interrupted_runs: leftovers.interruptedRuns.map((run) => ({
      id: run.id,
      project: run.project,
      stage: run.stage,
      pid: run.pid,
      started_at: run.startedAt,
    })),
    stale_locks: leftovers.staleLocks.map((lock) => ({
      project: lock.project,
      pid: lock.pid,
      since: lock.since,
      run_id: lock.runId,
    })),
    files: leftovers.files,
  };
}

/** Whether a drill of `durationMs` missed the objective `rto` (a duration such as "15m"); false without one. */
export function slowerThan(durationMs: number | null, rto: string | undefined): boolean {
  const limit = rto ? parseDuration(rto) : undefined;
  return durationMs !== null && limit !== undefined && durationMs > limit;
}
