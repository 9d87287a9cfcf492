/**
 * The shapes an operator writes in backup.config.ts. Helpers in `helpers.ts` build them; `schema.ts` validates them.
 * Field names follow DESIGN.md "Config API": extend, never rename.
 */

/** A secret is never a value in the config, only a reference resolved when a child process needs it. */
export type SecretRef = EnvSecret | FileSecret;
export interface EnvSecret {
  readonly secret: "env";
  /** Name of the environment variable holding the value. */
  readonly name: string;
}
export interface FileSecret {
  readonly secret: "file";
  /** Path of a file holding the value (trailing newline stripped); relative paths start at the config's folder. */
  readonly path: string;
}

/** A value that may be given plainly or as a secret reference (URLs that may embed credentials). */
export type MaybeSecret = string | SecretRef;

/** Durations such as "90s", "15m", "2h", "7d", "1w"; combinations like "1h30m" are accepted. */
export type Duration = string;

/** Options every dump source shares. */
export interface DumpSourceOptions {
  /** Unique name of the source within its project; used in snapshot tags and restore commands. */
  name?: string;
  /** Accept an empty dump as a valid backup (default false: an empty dump is an error). */
  allowEmpty?: boolean;
}

export interface PostgresSource extends DumpSourceOptions {
  readonly type: "postgres";
  host?: string;
  port?: number;
  database: string;
  user?: string;
  password?: SecretRef;
  /** Extra pg_dump arguments, e.g. ["--exclude-table=audit_log"]. */
  options?: string[];
  /** Also back up roles and tablespaces (`pg_dumpall --globals-only`) as a separate snapshot. */
  globals?: boolean;
}

export interface MysqlSource extends DumpSourceOptions {
  readonly type: "mysql";
  host?: string;
  port?: number;
  database: string;
  user?: string;
  password?: SecretRef;
  /** Extra mysqldump/mariadb-dump arguments. */
  options?: string[];
}

export interface MongodbSource extends DumpSourceOptions {
  readonly type: "mongodb";
  /** A full connection string; may embed credentials, so it may be a secret reference. */
  uri?: MaybeSecret;
  host?: string;
  port?: number;
  database?: string;
  user?: string;
  password?: SecretRef;
  authenticationDatabase?: string;
  options?: string[];
}

export interface SqliteSource extends DumpSourceOptions {
  readonly type: "sqlite";
  /** Path of the database file; relative paths start at the config's folder. */
  path: string;
}

export interface FilesSource {
  readonly type: "files";
  name?: string;
  /** Files and folders to back up; relative paths start at the config's folder. A missing path fails the backup. */
  paths: string[];
  /** restic exclude patterns. */
  exclude?: string[];
}

export interface CommandSource extends DumpSourceOptions {
  readonly type: "command";
  name: string;
  /** The program and its arguments (an array runs without a shell), or a shell command line run with `bash -o pipefail -c`. */
  run: string | string[];
  /** Name of the file the dump is stored as in the snapshot, e.g. "dump.rdb". */
  filename: string;
  /**
   * Environment variables for the command; values may be secret references. The command does not inherit the
   * variables the config's `env()` references read: it gets one only when it declares it here.
   *
   * @example
   * env: { REDISCLI_AUTH: env("REDIS_PASSWORD") }
   */
  env?: Record<string, MaybeSecret>;
}

export type Source =
  | PostgresSource
  | MysqlSource
  | MongodbSource
  | SqliteSource
  | FilesSource
  | CommandSource;
export type SourceType = Source["type"];

/**
 * A PostgreSQL cluster backed up by pgBackRest for point-in-time recovery: its own stanza and repository, its own
 * schedules per backup type, WAL archived continuously by PostgreSQL's archive_command (docs/postgres-pitr.md).
 */
export interface PgBackRestSource {
  readonly type: "pgbackrest";
  /** Unique name of the source within its project (default: the stanza). */
  name?: string;
  /** The pgBackRest stanza: letters, digits, `.`, `_` or `-`. */
  stanza: string;
  /** How pgBackRest and backupctl reach the cluster. */
  cluster: PgBackRestCluster;
  /** The pgBackRest repository (repo1): a local, absolute path. */
  repository: { path: string };
  /** Encrypts the repository (aes-256-cbc); written only to the private 0600 pgBackRest configuration. */
  cipherPassphrase?: SecretRef;
  /** pgBackRest's process-max (parallel compression and transfer). */
  processMax?: number;
  /** When each type of backup is due: cron expressions or @aliases, in the project's time zone. */
  schedule: { full: string; diff?: string; incr?: string };
  /** The recovery point objective: an archive older than this raises `archive.stale` and makes status exit 1. */
  rpo?: Duration;
  /** The pgbackrest program (default "pgbackrest", found on PATH). */
  bin?: string;
}

/** A PostgreSQL cluster as pgBackRest and backupctl's queries reach it. */
export interface PgBackRestCluster {
  /** The cluster's data directory (pg1-path). */
  dataDirectory: string;
  /** A socket folder or a loopback host (default: libpq's). */
  host?: string;
  port?: number;
  user?: string;
  /** The database backupctl's queries connect to (default "postgres"). */
  database?: string;
  password?: SecretRef;
}

/** What a project's `sources` may hold: the sources backed up into restic, and pgBackRest stanzas. */
export type ProjectSource = Source | PgBackRestSource;

export interface ResticRepository {
  readonly type: "restic";
  /** Any restic repository URL (local path, sftp:, rest:, s3:, b2:, rclone:, …). May be a secret reference. */
  url: MaybeSecret;
  /** The repository password. */
  password: SecretRef;
  /** Extra environment for restic (AWS_ACCESS_KEY_ID, B2_ACCOUNT_KEY, …); values may be secret references. */
  env?: Record<string, MaybeSecret>;
  /** restic compression mode for this repository (default "auto"). */
  compression?: "auto" | "max" | "off";
  /** Extra `restic` options (`-o key=value`), e.g. { "sftp.command": "ssh -p 2222 backup@host -s sftp" }. */
  options?: Record<string, string>;
  /** SSH access for an `sftp:` repository: the key (and its passphrase) as secret references. */
  ssh?: ResticSsh;
}

/** How backupctl logs in to an sftp repository's server. */
export interface ResticSsh {
  /** The private key in OpenSSH format, e.g. file("/run/secrets/backup_ssh_key") or env("BACKUP_SSH_KEY"). */
  key: SecretRef;
  /** The key's passphrase, when it has one. */
  passphrase?: SecretRef;
  /**
   * The server's known_hosts lines (as `ssh-keyscan -p PORT host` prints them). Without them the system's and the
   * user's known_hosts files are used.
   */
  knownHosts?: string | string[];
  /** ssh's StrictHostKeyChecking: "yes" (default: an unknown or changed host key fails), "accept-new" or "no". */
  hostKeyChecking?: "yes" | "accept-new" | "no";
}
export type Repository = ResticRepository;

export interface GpgEncryption {
  readonly type: "gpg";
  /** Key ids, fingerprints or emails of the recipients (public keys must be in the keyring or in keyFile). */
  recipient?: string | string[];
  /** A file holding the recipients' public keys (armored or binary); relative paths start at the config's folder. */
  keyFile?: string;
  /** The private key used to decrypt on restore and in drills. */
  secretKey?: SecretRef;
  /** Passphrase of the private key. */
  passphrase?: SecretRef;
}

export interface AgeEncryption {
  readonly type: "age";
  /** age recipients ("age1…" public keys or SSH public keys). */
  recipients?: string[];
  /** A file with one recipient per line. */
  recipientsFile?: string;
  /** The identity (private key) used to decrypt on restore and in drills. */
  identity?: SecretRef;
}
export type Encryption = GpgEncryption | AgeEncryption;

export const notificationEvents = [
  "run.started",
  "run.succeeded",
  "run.failed",
  "run.recovered",
  "deletions.held",
  "backup.overdue",
  "check.failed",
  "verify.failed",
  "drill.slow",
  "archive.stale",
  "summary.daily",
  "config.invalid",
  "runner.lost",
  "runner.drift",
  "project.unplaced",
] as const;
export type NotificationEvent = (typeof notificationEvents)[number];

interface NotifierOptions {
  /**
   * Events this channel receives. Default for slack, email, webhook and ntfy: run.failed, run.recovered,
   * backup.overdue, deletions.held, check.failed, verify.failed, drill.slow, archive.stale, config.invalid, runner.lost,
   * runner.drift, project.unplaced. Default for healthchecks: run.started, run.succeeded, run.failed, run.recovered; for uptimeKuma
   * the same without run.started (Kuma has no start signal).
   */
  events?: NotificationEvent[];
}

export interface SlackNotifier extends NotifierOptions {
  readonly type: "slack";
  /** The incoming-webhook URL: it is a credential, so only a secret reference. */
  webhookUrl: SecretRef;
}

export interface EmailNotifier extends NotifierOptions {
  readonly type: "email";
  smtp: {
    host: string;
    /** Default 465 when `secure`, else 587. */
    port?: number;
    /** TLS from the first byte (port 465); otherwise STARTTLS is used when the server offers it. */
    secure?: boolean;
    /** Refuse to send unless the connection is upgraded with STARTTLS (default false). */
    requireTls?: boolean;
    /** A PEM file of the certificate authority that signed the server's certificate (a private CA). */
    ca?: string;
    user?: string;
    password?: SecretRef;
  };
  from: string;
  to: string | string[];
}

export interface WebhookNotifier extends NotifierOptions {
  readonly type: "webhook";
  url: MaybeSecret;
  method?: "POST" | "PUT";
  headers?: Record<string, MaybeSecret>;
}

export interface HealthchecksNotifier extends NotifierOptions {
  readonly type: "healthchecks";
  /** The check's ping URL (https://hc-ping.com/<uuid> or your own instance); contains the check's secret. */
  pingUrl: MaybeSecret;
}

export interface UptimeKumaNotifier extends NotifierOptions {
  readonly type: "uptimeKuma";
  /** The push monitor's URL, including its token. */
  pushUrl: MaybeSecret;
}

export interface NtfyNotifier extends NotifierOptions {
  readonly type: "ntfy";
  /** The topic's URL (https://ntfy.sh/<topic> or your own server); a topic name is guessable, so treat it as a secret. */
  topicUrl: MaybeSecret;
  /** An access token for a protected topic. */
  token?: SecretRef;
}

export type Notifier =
  | NtfyNotifier
  | SlackNotifier
  | EmailNotifier
  | WebhookNotifier
  | HealthchecksNotifier
  | UptimeKumaNotifier;

/** Retention with restic's semantics, applied per (project, source) in each repository. */
export interface Retention {
  last?: number;
  hourly?: number;
  daily?: number;
  weekly?: number;
  monthly?: number;
  yearly?: number;
  /** Keep every snapshot younger than this, in restic's notation ("2d", "1y6m", "12h"; m = months). */
  within?: string;
  withinHourly?: string;
  withinDaily?: string;
  withinWeekly?: string;
  withinMonthly?: string;
  withinYearly?: string;
  /** A floor: a forget that would leave fewer snapshots in a group than this needs approval. */
  minSnapshots?: number;
}

export interface RetryPolicy {
  /** Attempts per stage, including the first (default 3). */
  attempts?: number;
  /** First backoff delay (default "5s"); later ones double, with full jitter, up to `maxDelay`. */
  baseDelay?: Duration;
  maxDelay?: Duration;
}

export interface Hooks {
  /** Runs before the backup; a failure aborts the run. */
  before?: string | string[];
  /** Runs after a successful backup. */
  after?: string | string[];
  /** Runs after a failed backup. */
  onFailure?: string | string[];
  /** Time limit per hook (default "60s"). */
  timeout?: Duration;
  /**
   * Environment variables for every hook of the project; values may be secret references. Hooks do not inherit the
   * variables the config's `env()` references read: a hook gets one only when it is declared here.
   *
   * @example
   * hooks: {
   *   env: { DBPW: env("DBPW") },
   *   before: 'PGPASSWORD="$DBPW" psql -h db -U app -c "SELECT 1" app >/dev/null',
   * }
   */
  env?: Record<string, MaybeSecret>;
}

/** A restore drill: restore the latest snapshot into a scratch target and check it. */
export interface VerifySpec {
  every: Duration;
  /** The scratch database a database drill restores into; a files or command drill has none. */
  into?: PostgresSource | MysqlSource | SqliteSource;
  /** The source to drill (default: with `into`, the first database source of its kind; else the first files source,
   * else the first command source). */
  source?: string;
  /** How much of a files source a drill restores: N files (default 20) or a share of the bytes ("5%"). */
  sample?: { files?: number; share?: string };
  /** An SQL query run against the restored database. */
  check?: string;
  expect?: { minRows?: number };
  /** The recovery time objective: a drill (restore and check) taking longer raises drill.slow. */
  rto?: Duration;
}

export interface Project {
  /** Five-field cron expression or @hourly, @daily (@midnight), @weekly, @monthly, @yearly (@annually). */
  schedule: string;
  /** IANA time zone the schedule is read in (default: the config's, else UTC). */
  timezone?: string;
  /** A deterministic delay after each slot, at most this long, to spread load ("10m"). */
  jitter?: Duration;
  /** Whether plan and apply consider this project (default true). */
  enabled?: boolean;
  sources: ProjectSource[];
  /**
   * Names of declared repositories: the first receives the backup, the others get copies. May be empty when every
   * source is a pgbackrest() one (pgBackRest keeps its own repository).
   */
  repositories: string[];
  retention: Retention;
  encrypt?: Encryption;
  hooks?: Hooks;
  /** Names of declared notifiers. */
  notify?: string[];
  /** Runner labels the project needs: only a runner with all of them runs it (`watch --runner-labels`). */
  runsOn?: string[];
  verify?: VerifySpec;
  /** Longest acceptable time without a successful backup (default: twice the schedule's interval). */
  maxAge?: Duration;
  retry?: RetryPolicy;
  /** Time limit of one backup stage (default "6h"). */
  timeout?: Duration;
  /** Maintenance cadence for this project's repositories. */
  prune?: { every?: Duration };
  check?: { every?: Duration; readDataSubset?: string };
}

export interface Config {
  /** IANA time zone for schedules (default "UTC"); a project may override it. */
  timezone?: string;
  /** Where the state database lives (default `<config dir>/.backupctl`); --state-dir and BACKUPCTL_STATE_DIR win. */
  stateDir?: string;
  /**
   * Keep the state in PostgreSQL instead of the SQLite file in `stateDir` (which still holds the local files):
   * `url` a secret reference or a literal without password; `schema` default "backupctl".
   */
  state?: { url: MaybeSecret; schema?: string };
  /** The host name recorded in snapshots (default: this machine's host name). Set it in containers. */
  host?: string;
  repositories: Record<string, Repository>;
  notifiers?: Record<string, Notifier>;
  /** How notifications are delivered (through the outbox in the state database). */
  notifications?: {
    /** Time limit of one delivery attempt (default "10s"). */
    timeout?: Duration;
    /** How long an undelivered notification is retried before it is given up as undeliverable (default "24h"). */
    expireAfter?: Duration;
  };
  /** Defaults for every project's retry policy and stage timeout. */
  defaults?: { retry?: RetryPolicy; timeout?: Duration };
  projects: Record<string, Project>;
}
