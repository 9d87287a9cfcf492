/**
 * The planner's inputs and output. Plain data: the planner is pure and tested without processes or clocks. The plan
 * document and its actions are defined in zod in document.ts; they are re-exported here beside the observed state.
 */

import type { ArchiveStatus, PitrInfo } from "../pitr/types.ts";

/** What the state database says exists. */
export interface ObservedState {
  lineage: string;
  serial: number;
  /**
   * Repositories known to be initialized, by name (with when, when known). `unreachable`: restic could not open the
   * repository to tell whether it exists (a wrong password, an unreachable backend, a permission denied): its line
   * naming the cause and what to do. Such a repository is never initialized by a plan.
   */
  repositories: Record<string, { initialized: boolean; initializedAt?: string; unreachable?: string }>;
  /** The latest successful backup of each (project, source, repository). */
  backups: BackupRecord[];
  /** The latest failed backup attempt of each (project, source, repository), when newer than its last success. */
  failures: BackupRecord[];
  /** The snapshot inventory of every repository, as last refreshed from restic. */
  snapshots: InventorySnapshot[];
  /** The retention policy last applied to each (project, source, repository) group. */
  retention: AppliedRetention[];
  /** The latest successful prune and check per repository, and verify (restore drill) per project. */
  maintenance: MaintenanceRecord[];
  /** Projects that have runs in the audit and repositories the state database knows, declared or not. */
  knownProjects: string[];
  knownRepositories: string[];
  /** Saved plans already applied (a plan file is applied at most once). */
  appliedPlans: string[];
  /**
   * Saved plans applied with deletions held for approval: plan id → the ids of its forget actions still held. Only
   * those may run later, once, with approval (`apply PLANFILE --auto-approve`).
   */
  heldPlans?: Record<string, string[]>;
  /**
   * Snapshots that failed or interrupted runs left behind (a failed stage's snapshot whose forget failed, or a
   * snapshot tagged with a run that never finished and not recorded as one of its results): recover actions forget them.
   */
  partials: { project: string; source: string; repository: string; snapshot: string; runId: string | null }[];
  /** Leftovers of dead processes found at start (judged by the caller: pids, lock files, the private folder). */
  leftovers?: Leftovers;
  /**
   * What pgBackRest and each cluster say of the pgbackrest() sources in scope, asked when the plan is made (absent:
   * not asked, as by `status`'s offline plan and in plain test data: nothing is planned for those sources).
   */
  pitr?: PitrObservation[];
}

/** One pgbackrest() source as observed: its stanza's info, its cluster's archiving, the archive_command it needs. */
export interface PitrObservation {
  project: string;
  source: string;
  /** `pgbackrest info` of the stanza; absent when it could not be read (`infoError` says why). */
  info?: PitrInfo;
  infoError?: string;
  /** The cluster's archiving state; absent when it could not be read (`archiveError` says why). */
  archive?: ArchiveStatus;
  archiveError?: string;
  /** The archive_command the cluster must run to archive into this stanza (through backupctl's config file). */
  archiveCommand: string;
}

export interface InventorySnapshot {
  repository: string;
  id: string;
  short_id: string;
  /** ISO time of the snapshot. */
  time: string;
  /** From the snapshot's tags; null for snapshots not made by backupctl. */
  project: string | null;
  source: string | null;
  run_id: string | null;
  hostname: string;
  /** The snapshot's tags: the inventory the state reads for planning leaves them out (nothing there uses them). */
  tags?: string[];
  /** For a copy: the id of the snapshot it was copied from. */
  original?: string | null;
  /** How far backupctl vouches for it (undefined in plain test data: taken as complete). */
  state?: SnapshotState;
}

/**
 * What backupctl knows of a snapshot's completeness. `complete`: recorded by backupctl as the result of a successful
 * backup (or copied from one). `adopted`: not made by a run this state knows (another state, a lost state, restic
 * itself): taken as restic's word. `pending`: made by a run still going. `incomplete`: made by a run that failed,
 * was interrupted or died, and never recorded as its result — a stream cut short. Retention counts only complete and
 * adopted snapshots; restores and drills pick them only, unless told otherwise.
 */
export type SnapshotState = "complete" | "adopted" | "pending" | "incomplete";

/** Whether retention may count (and keep or forget) a snapshot, and a restore pick it as "latest". */
export function isUsable(snapshot: { state?: SnapshotState }): boolean {
  return snapshot.state === undefined || snapshot.state === "complete" || snapshot.state === "adopted";
}

export interface AppliedRetention {
  project: string;
  source: string;
  repository: string;
  /** Canonical JSON of the keep rules (retention without minSnapshots). */
  policy: string;
  at: string;
}

export interface MaintenanceRecord {
  /**
   * `forget`: the latest successful forget; `prune_attempt`: the latest prune, whatever its outcome. A forget after
   * the last successful prune whose prune failed or was cut short has its prune planned again.
   */
  type: "prune" | "check" | "verify" | "forget" | "prune_attempt";
  /** For prune and check. */
  repository?: string;
  /** For verify. */
  project?: string;
  at: string;
  /** For forget: how many snapshots were forgotten in the repository since its last successful prune. */
  forgotten?: number;
}

export interface BackupRecord {
  project: string;
  source: string;
  repository: string;
  /** Logical start time (ISO). */
  at: string;
}

export type {
  Action,
  ActionType,
  NotManaged,
  Overdue,
  Plan,
  PlanAction,
  PlanSummary,
  PlanToApply,
  PruneTrigger,
  RecoverAction,
  RecoverKind,
} from "./document.ts";

/** What dead processes left behind, as startup recovery finds it. */
export interface Leftovers {
  /** Runs still marked running whose process (on this host) is gone. */
  interruptedRuns: { id: string; project: string; stage: string | null; pid: number; startedAt: string }[];
  /** Project lock files whose holder (on this host) is gone. */
  staleLocks: { project: string; pid: number; since: string; runId: string | null }[];
  /** Private temporary folders of dead processes, relative to the state folder. */
  files: string[];
  /** restic locks whose holder is provably gone (this host, its process gone or another one now): removed. */
  resticLocks?: { repository: string; lock: string; holder: string }[];
}
