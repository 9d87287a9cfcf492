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

/**
 * Where a database source's client programs run: on this host (default), or inside a container with
 * `docker exec -i` / `podman exec -i`, the dump streamed from the exec's standard output as from a local program.
 */
export interface ContainerOptions {
  /** Name or id of the running container the dump program runs in, e.g. "db". */
  container?: string;
  /** The program that runs it: "docker" or "podman" (default: docker when installed, else podman). */
  containerRuntime?: "docker" | "podman";
}

export interface PostgresSource extends DumpSourceOptions, ContainerOptions {
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
  databases?: undefined;
}

export interface MysqlSource extends DumpSourceOptions, ContainerOptions {
  readonly type: "mysql";
  host?: string;
  port?: number;
  database: string;
  user?: string;
  password?: SecretRef;
  /** Extra mysqldump/mariadb-dump arguments. */
  options?: string[];
  databases?: undefined;
}

/**
 * Every database of a server, listed when planning: each becomes a source `<name>-<database>` (see
 * docs/configuration.md, "All databases of a server"). `exclude` takes glob patterns (`*`, `?`) of database names.
 */
export interface AllDatabases {
  databases: "all";
  /** Database names left out, as glob patterns (`*` any run of characters, `?` one), e.g. ["scratch_*"]. */
  exclude?: string[];
}

/**
 * All databases of a PostgreSQL server. `database` names the one to connect to when listing them and dumping the
 * globals (default "postgres"); the source's name defaults to "postgres".
 */
export interface PostgresServerSource extends Omit<PostgresSource, "database" | "databases">, AllDatabases {
  database?: string;
}

/** All databases of a MySQL/MariaDB server (system schemas left out); the source's name defaults to "mysql". */
export interface MysqlServerSource extends Omit<MysqlSource, "database" | "databases">, AllDatabases {
  database?: undefined;
}

export interface MongodbSource extends DumpSourceOptions, ContainerOptions {
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
  /** Leave out folders marked as caches by a CACHEDIR.TAG file (`--exclude-caches`). */
  excludeCaches?: boolean;
  /** Stay on the file system of each path (`--one-file-system`). */
  oneFileSystem?: boolean;
  /** Leave out the contents of folders holding a file of one of these names (`--exclude-if-present`). */
  excludeIfPresent?: string[];
  /** Leave out files larger than this, e.g. "500M" (`--exclude-larger-than`). */
  excludeLargerThan?: string;
  /** Files of exclude patterns (`--exclude-file`); relative paths start at the config's folder. */
  excludeFile?: string | string[];
  /** Extra `restic backup` arguments; those that would leak or bypass are refused. */
  extraArgs?: string[];
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
  | PostgresServerSource
  | MysqlSource
  | MysqlServerSource
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
  /** The pgBackRest repository (repo1): a local folder, or a bucket of an S3-compatible store. */
  repository: PgBackRestRepository;
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

/** Where a pgbackrest() source keeps its backups and archived WAL (pgBackRest's repo1). */
export type PgBackRestRepository = PgBackRestLocalRepository | PgBackRestS3Repository;

/** A folder on this machine (`repo1-type=posix`). */
export interface PgBackRestLocalRepository {
  readonly type?: "local";
  /** An absolute path (`repo1-path`). */
  path: string;
}

/** A bucket of an S3-compatible store (`repo1-type=s3`); the keys go only into the 0600 pgBackRest config file. */
export interface PgBackRestS3Repository {
  readonly type: "s3";
  /** `https://host[:port]` or `host[:port]` (pgBackRest speaks HTTPS only). */
  endpoint: string;
  bucket: string;
  region: string;
  /** The repository's key prefix in the bucket, absolute (`repo1-path`), e.g. "/pgbackrest". */
  path: string;
  /** "path" (`https://host/bucket/key`, default: MinIO, s3rver, most self-hosted stores) or "host" (`bucket.host`). */
  uriStyle?: "path" | "host";
  accessKeyId: MaybeSecret;
  secretAccessKey: SecretRef;
  /** A PEM file of the certificate authority of a private CA (`repo1-storage-ca-file`), absolute. */
  caFile?: string;
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

/** restic's bandwidth, compression and pack-size settings: on a repository, or a project's `restic` (which wins). */
export interface ResticTuning {
  /** Upload limit in KiB/s (`--limit-upload`). */
  limitUpload?: number;
  /** Download limit in KiB/s (`--limit-download`). */
  limitDownload?: number;
  /** restic compression mode (default "auto"); needs a repository of format version 2. */
  compression?: "auto" | "max" | "off";
  /** Target pack size in MiB, 4–128 (`--pack-size`). */
  packSize?: number;
  /** Files read at once by `restic backup` (`--read-concurrency`, restic 0.15 or later). */
  readConcurrency?: number;
}

/** CPU and I/O priority of the programs a backup runs (`nice`, `ionice`). */
export interface Priority {
  /** CPU niceness 0–19 (`nice -n`). */
  nice?: number;
  /** I/O scheduling class and level (`ionice -c … -n …`); the idle class has no level. */
  ionice?: { class: "idle" | "best-effort"; level?: number };
}

/** S3 credentials (restic's AWS_* variables, never argv) and addressing. */
export interface ResticS3 {
  accessKeyId: MaybeSecret;
  secretAccessKey: SecretRef;
  sessionToken?: SecretRef;
  /** `-o s3.region=…`. */
  region?: string;
  /** true: `-o s3.bucket-lookup=path`; false: `dns`; unset: restic's `auto`. */
  pathStyle?: boolean;
}

export interface ResticRepository extends ResticTuning, Priority {
  readonly type: "restic";
  /** Any restic repository URL (local path, sftp:, rest:, s3:, b2:, rclone:, …). May be a secret reference. */
  url: MaybeSecret;
  /** The repository password. */
  password: SecretRef;
  /** Extra environment for restic (AWS_ACCESS_KEY_ID, B2_ACCOUNT_KEY, …); values may be secret references. */
  env?: Record<string, MaybeSecret>;
  /** Extra restic arguments (global flags) for every command on this repository; those that would leak are refused. */
  extraArgs?: string[];
  /** A PEM file of the certificate authority of the server (`--cacert`); relative to the config's folder. */
  cacert?: string;
  /** Credentials and addressing of an `s3:` repository (given to restic in its environment). */
  s3?: ResticS3;
  /** How prunes of this repository free space (`restic prune --max-unused`, `--max-repack-size`). */
  prune?: { maxUnused?: string; maxRepackSize?: string };
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
   * Events this channel receives. Default for slack, email, webhook, ntfy, discord, telegram, pushover, teams and
   * matrix: run.failed, run.recovered, backup.overdue, deletions.held, check.failed, verify.failed, drill.slow,
   * archive.stale, config.invalid, runner.lost, runner.drift, project.unplaced. Default for healthchecks: run.started,
   * run.succeeded, run.failed, run.recovered; for uptimeKuma the same without run.started (Kuma has no start signal);
   * for pagerDuty: run.failed, backup.overdue, archive.stale (trigger) and run.succeeded, run.recovered (resolve).
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

export interface DiscordNotifier extends NotifierOptions {
  readonly type: "discord";
  /** The channel webhook's URL (https://discord.com/api/webhooks/<id>/<token>): a credential, so only a secret. */
  webhookUrl: SecretRef;
}

export interface TelegramNotifier extends NotifierOptions {
  readonly type: "telegram";
  /** The bot's token from @BotFather: a credential, so only a secret. */
  botToken: SecretRef;
  /** The chat to post to: a numeric id (groups and channels are negative) or "@channelusername". */
  chatId: string | number;
  /** The Bot API's base URL (default https://api.telegram.org; a local Bot API server elsewhere). */
  apiUrl?: string;
}

export interface PagerDutyNotifier extends NotifierOptions {
  readonly type: "pagerDuty";
  /** The Events API v2 integration's routing (integration) key: a credential, so only a secret. */
  routingKey: SecretRef;
  /** The Events API's base URL (default https://events.pagerduty.com; EU accounts: https://events.eu.pagerduty.com). */
  apiUrl?: string;
}

export interface PushoverNotifier extends NotifierOptions {
  readonly type: "pushover";
  /** The application's API token: a secret. */
  token: SecretRef;
  /** The user or group key to notify: a secret. */
  user: SecretRef;
  /** Send to this device of the user only (default: all of the user's devices). */
  device?: string;
  /** The API's base URL (default https://api.pushover.net). */
  apiUrl?: string;
}

export interface TeamsNotifier extends NotifierOptions {
  readonly type: "teams";
  /** The URL of a Teams workflow ("Post to a channel when a webhook request is received"): a credential. */
  webhookUrl: SecretRef;
}

export interface MatrixNotifier extends NotifierOptions {
  readonly type: "matrix";
  /** The homeserver's base URL (https://matrix.example.org), where its client-server API answers. */
  homeserver: string;
  /** The posting account's access token: a secret, sent in the Authorization header. */
  accessToken: SecretRef;
  /** The room's id ("!abc123:example.org", in the room's settings), not an alias. */
  roomId: string;
}

export type Notifier =
  | NtfyNotifier
  | SlackNotifier
  | EmailNotifier
  | WebhookNotifier
  | HealthchecksNotifier
  | UptimeKumaNotifier
  | DiscordNotifier
  | TelegramNotifier
  | PagerDutyNotifier
  | PushoverNotifier
  | TeamsNotifier
  | MatrixNotifier;

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
  /** restic settings for this project's backups, copies and forgets, overriding the repository's. */
  restic?: ResticTuning;
  /** CPU niceness of this project's dump programs, filters and restic (overrides the repository's). */
  nice?: Priority["nice"];
  /** I/O priority of this project's dump programs, filters and restic (overrides the repository's). */
  ionice?: Priority["ionice"];
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
