/** The planner's inputs and output. Plain data: the planner is pure and tested without processes or clocks. */

/** What the state database says exists. */
export interface ObservedState {
  lineage: string;
  serial: number;
  /** Repositories known to be initialized, by name. */
  repositories: Record<string, { initialized: boolean }>;
  /** The latest successful backup of each (project, source, repository). */
  backups: BackupRecord[];
  /** The latest failed backup attempt of each (project, source, repository), when newer than its last success. */
  failures: BackupRecord[];
}

export interface BackupRecord {
  project: string;
  source: string;
  repository: string;
  /** Logical start time (ISO). */
  at: string;
}

export type ActionType = "init" | "backup" | "copy" | "forget" | "prune" | "check" | "verify" | "recover";

export interface PlanAction {
  id: string;
  type: ActionType;
  project?: string;
  source?: string;
  repository: string;
  reason: string;
  destructive: boolean;
  /** Snapshot ids, for forget and copy. */
  snapshots?: string[];
  /** For destructive actions: whether they proceed without --auto-approve. */
  approval?: "routine" | "required";
}

export interface PlanSummary {
  backup: number;
  copy: number;
  init: number;
  forget: number;
  prune: number;
  check: number;
  verify: number;
}

/** The plan document (`plan --format json`, saved plan files). Its shape is versioned: see docs/cli.md. */
export interface Plan {
  format_version: 1;
  generated_at: string;
  now: string;
  config_fingerprint: string;
  state: { lineage: string; serial: number };
  actions: PlanAction[];
  summary: PlanSummary;
  warnings: string[];
  /** When nothing is due: the next time something will be, per project. */
  next_due: { project: string; at: string }[];
}
