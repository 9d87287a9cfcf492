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

export interface Database {
  retention_policies: RetentionPolicyTable;
  applied_plans: AppliedPlanTable;
  meta: MetaTable;
  runs: RunTable;
  stages: StageTable;
  snapshots: SnapshotTable;
  repositories: RepositoryTable;
  outbox: OutboxTable;
}
