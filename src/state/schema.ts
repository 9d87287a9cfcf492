/** The state database's tables as Kysely sees them. Times are ISO-8601 UTC strings, so they sort as text. */
import type { Generated } from "kysely";
import { z } from "zod";

export type RunStatus = "running" | "succeeded" | "failed" | "interrupted";
export type StageStatus = "running" | "succeeded" | "failed" | "interrupted" | "skipped";
export type StageType =
  | "init"
  | "backup"
  | "refresh"
  | "forget"
  | "copy"
  | "prune"
  | "check"
  | "verify"
  | "hook"
  /** Startup recovery: an interrupted run marked, a stale lock taken over, leftovers removed. */
  | "recover"
  /** `backupctl unlock`: a lock removed by hand (own or restic's). */
  | "unlock"
  /** A notification given up as undeliverable (its outbox row names the channel and event). */
  | "notify"
  /** `backupctl restore`: a snapshot restored (its id, the bytes restored; the error when it failed). */
  | "restore";

export interface MetaTable {
  key: string;
  value: string;
}

export interface RunTable {
  id: string;
  project: string;
  status: RunStatus;
  /** The command that started the run: apply or watch. */
  command: string;
  /** Logical start (the --now clock when given). */
  started_at: string;
  finished_at: string | null;
  duration_ms: number | null;
  pid: number;
  /** The process's start time (see runtime/process.ts), null where the system does not tell. */
  process_start: string | null;
  host: string;
  config_fingerprint: string;
  /** The stage running when the run ended abnormally. */
  stage: string | null;
  error: string | null;
  /** The fleet runner (watch --runner-name, else the host) that ran it; null for runs made outside a fleet. */
  runner: string | null;
  /** The fencing token of the project lease the run was made under (a PostgreSQL state's fleet); null otherwise. */
  lease_token: number | null;
}

export interface StageTable {
  id: Generated<number>;
  run_id: string | null;
  type: StageType;
  project: string | null;
  source: string | null;
  repository: string | null;
  attempt: number;
  status: StageStatus;
  started_at: string;
  finished_at: string | null;
  duration_ms: number | null;
  /** Bytes read (a dump's size, the files' total; for a restore, the bytes restored). */
  bytes: number | null;
  /** What restic reported the backup added to the repository (data_added); null for other stages and older rows. */
  bytes_added: number | null;
  /** For a forget stage: how many snapshots it removed; null for other stages and older rows. */
  forgotten: number | null;
  snapshot_id: string | null;
  error: string | null;
  /** What a stage that succeeded has to say (migration 0009); older rows kept it in `error`, moved by 0009. */
  note: string | null;
}

/**
 * A snapshot of the inventory as restic lists it, without its repository: the one definition of the row, checked
 * with zod where it comes back from the fallback file (writes.ts), and the type of the table's rows.
 */
export const snapshotRow = z.object({
  id: z.string(),
  short_id: z.string(),
  time: z.string(),
  project: z.string().nullable(),
  source: z.string().nullable(),
  run_id: z.string().nullable(),
  hostname: z.string(),
  /** JSON array of restic tags. */
  tags: z.string(),
  /** JSON array of snapshot paths. */
  paths: z.string(),
  size: z.number().nullable(),
  recorded_at: z.string(),
  /** For a copy made by `restic copy`: the id of the snapshot it was copied from. */
  original: z.string().nullable(),
});

/** A snapshot row without its repository: what restic's listing and a backup's summary give. */
export type SnapshotRow = z.infer<typeof snapshotRow>;

export type SnapshotTable = SnapshotRow & { repository: string };

/**
 * The table's row: a snapshot with, kept by triggers (migration 0014), whether a successful backup recorded it (1) or
 * not (0). Never written by backupctl itself, and read by the planner's read model alone.
 */
export type SnapshotRecordTable = SnapshotTable & { vouched: Generated<number> };

export interface RepositoryTable {
  name: string;
  /** Where it is, with any credentials in the URL removed. */
  location: string;
  initialized_at: string | null;
  last_refresh_at: string | null;
  last_check_at: string | null;
  last_check_status: string | null;
}

export interface OutboxTable {
  id: Generated<number>;
  channel: string;
  event: string;
  run_id: string | null;
  /** JSON payload; never holds a secret (channels resolve their credentials when sending). */
  payload: string;
  created_at: string;
  next_attempt_at: string;
  attempts: number;
  delivered_at: string | null;
  expires_at: string;
  last_error: string | null;
  project: string | null;
  /** Makes an event enqueued once: the overdue episode or the summary's day, with the channel. */
  key: string | null;
  /** When delivery was given up: expired, or the channel is no longer declared. */
  given_up_at: string | null;
}

export interface RetentionPolicyTable {
  project: string;
  source: string;
  repository: string;
  /** Canonical JSON of the keep rules. */
  policy: string;
  applied_at: string;
}

export interface AppliedPlanTable {
  plan_id: string;
  applied_at: string;
  /** JSON array of the ids of the plan's forget actions still held for approval; null when none. */
  held: string | null;
}

/** A process of the fleet (a `watch` sharing a PostgreSQL state): who it is, what it runs, when it last said so. */
export interface RunnerTable {
  name: string;
  /** The process holding the name now: its leases carry this instance. */
  instance: string;
  host: string;
  pid: number;
  /** JSON array of its labels (the placement of projects with `runsOn`). */
  labels: string;
  version: string;
  /** The fingerprint of the config it runs. */
  fingerprint: string;
  started_at: string;
  /** The database's clock (ms since the epoch) at its last heartbeat. */
  heartbeat_ms: number;
  /** Its heartbeat interval's allowance: silent longer than this, it is lost. */
  ttl_ms: number;
  /** Set when it stopped cleanly; a runner silent past its TTL without it was lost. */
  stopped_at: string | null;
  /** What it runs now ("backup shop", "prune main"), null when idle. */
  work: string | null;
  /** Why it takes no new work (config drift, the database lost), null when it takes work. */
  held_back: string | null;
}

/** The first time the fleet saw a config fingerprint: the newest one among live runners is the one that runs. */
export interface ConfigSeenTable {
  fingerprint: string;
  first_seen_ms: number;
  /** The runner that brought it. */
  runner: string;
}

/**
 * A lease: who may run a project (`project:NAME`) or a repository's exclusive work (`repository:NAME`) until it
 * expires. The row stays after a release (expires_ms 0) so that its token keeps fencing the holders before it.
 */
export interface LeaseTable {
  key: string;
  /** The runner's (or command's) name, for messages. */
  holder: string;
  /** The holding process (RunnerTable.instance). */
  instance: string;
  /** Fencing token: from one counter, larger for every acquisition; a write must carry the current one. */
  token: number;
  acquired_ms: number;
  expires_ms: number;
  /** The run made under it, once started. */
  run_id: string | null;
}

/** A write refused because its lease had been taken over: recorded, never applied. */
export interface FencedWriteTable {
  id: Generated<number>;
  at: string;
  /** The write (writes.ts operation), and the run it belonged to when known. */
  op: string;
  run_id: string | null;
  lease_key: string;
  token: number;
  /** The token and holder that had the lease when the write came. */
  current_token: number | null;
  current_holder: string | null;
  /** The process that tried: instance, and whether it came live or from a fallback replay. */
  instance: string;
  via: string;
}

/**
 * Per (type, status, project, source, repository), the newest start of a stage (migration 0013): kept by triggers on
 * `stages`, never written by backupctl itself. '' stands for a column without a value.
 */
export interface LatestStageTable {
  type: StageType;
  status: string;
  project: string;
  source: string;
  repository: string;
  started_at: string;
}

export interface Database {
  latest_stages: LatestStageTable;
  runners: RunnerTable;
  config_seen: ConfigSeenTable;
  leases: LeaseTable;
  fenced_writes: FencedWriteTable;
  retention_policies: RetentionPolicyTable;
  applied_plans: AppliedPlanTable;
  meta: MetaTable;
  runs: RunTable;
  stages: StageTable;
  snapshots: SnapshotRecordTable;
  repositories: RepositoryTable;
  outbox: OutboxTable;
}
