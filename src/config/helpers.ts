/**
 * The helpers operators call in backup.config.ts. Each returns a plain, tagged object; validation happens when the
 * config is loaded, so a helper never throws and a config written without helpers validates the same way.
 */
import type {
  AgeEncryption,
  CommandSource,
  Config,
  DiscordNotifier,
  EmailNotifier,
  EnvSecret,
  FileSecret,
  FilesSource,
  GpgEncryption,
  HealthchecksNotifier,
  MatrixNotifier,
  MongodbSource,
  MysqlServerSource,
  MysqlSource,
  NtfyNotifier,
  PagerDutyNotifier,
  PgBackRestS3Repository,
  PgBackRestSource,
  PostgresServerSource,
  PostgresSource,
  PushoverNotifier,
  ResticRepository,
  SlackNotifier,
  SqliteSource,
  TeamsNotifier,
  TelegramNotifier,
  UptimeKumaNotifier,
  WebhookNotifier,
} from "./types.ts";

type Options<T> = Omit<T, "type">;

/**
 * Declares the whole configuration. It returns its argument unchanged and exists for type checking and editor help.
 *
 * @example
 * ```ts
 * import { defineConfig, env, restic, sqlite } from "backupctl";
 *
 * export default defineConfig({
 *   repositories: { local: restic({ url: "/srv/restic", password: env("RESTIC_PASSWORD") }) },
 *   projects: {
 *     app: { schedule: "0 3 * * *", sources: [sqlite({ path: "/srv/app/app.db" })], repositories: ["local"], retention: { daily: 7 } },
 *   },
 * });
 * ```
 */
export function defineConfig<const T extends Config>(config: T): T {
  return config;
}

/**
 * A secret read from an environment variable when a child process needs it. Only its name is ever stored or shown.
 *
 * @example
 * ```ts
 * restic({ url: "/srv/restic", password: env("RESTIC_PASSWORD") })
 * ```
 */
export function env(name: string): EnvSecret {
  return { secret: "env", name };
}

/**
 * A secret read from a file (Docker secrets, systemd credentials) when needed; one trailing newline is stripped.
 * Relative paths start at the config file's folder.
 *
 * @example
 * ```ts
 * postgres({ database: "shop", password: file("/run/secrets/shop_db_password") })
 * ```
 */
export function file(path: string): FileSecret {
  return { secret: "file", path };
}

/**
 * A PostgreSQL database, dumped with `pg_dump -Fc -Z0` and streamed into restic. Its name defaults to the database.
 * With `databases: "all"`, every database of the server, listed when planning, each a source `<name>-<database>`
 * (the name defaults to "postgres"). With `container`, pg_dump runs inside that container (`docker`/`podman exec`).
 *
 * @example
 * ```ts
 * postgres({ host: "db", database: "shop", user: "backup", password: env("SHOP_DB_PASSWORD") })
 * postgres({ databases: "all", exclude: ["scratch_*"], globals: true, user: "backup", password: env("PG_PASSWORD") })
 * postgres({ container: "db", database: "shop", user: "postgres", password: env("SHOP_DB_PASSWORD") })
 * ```
 */
export function postgres(options: Options<PostgresSource>): PostgresSource;
export function postgres(options: Options<PostgresServerSource>): PostgresServerSource;
export function postgres(
  options: Options<PostgresSource> | Options<PostgresServerSource>,
): PostgresSource | PostgresServerSource {
  return { type: "postgres", ...options };
}

/**
 * A MySQL or MariaDB database, dumped with `mysqldump`/`mariadb-dump --single-transaction` and streamed into restic.
 * Its name defaults to the database. With `databases: "all"`, every database of the server but its system schemas,
 * each a source `<name>-<database>` (the name defaults to "mysql").
 *
 * @example
 * ```ts
 * mysql({ host: "mariadb", database: "wiki", user: "backup", password: env("WIKI_DB_PASSWORD") })
 * mysql({ databases: "all", exclude: ["test_*"], user: "backup", password: env("MARIADB_PASSWORD") })
 * ```
 */
export function mysql(options: Options<MysqlSource>): MysqlSource;
export function mysql(options: Options<MysqlServerSource>): MysqlServerSource;
export function mysql(options: Options<MysqlSource> | Options<MysqlServerSource>): MysqlSource | MysqlServerSource {
  return { type: "mysql", ...options };
}

/**
 * A MongoDB database, dumped with `mongodump --archive` and streamed into restic. Its name defaults to the database,
 * else "mongodb".
 *
 * @example
 * ```ts
 * mongodb({ uri: env("EVENTS_MONGO_URI"), database: "events" })
 * ```
 */
export function mongodb(options: Options<MongodbSource>): MongodbSource {
  return { type: "mongodb", ...options };
}

/**
 * An SQLite database, copied consistently while it is in use and streamed into restic. Its name defaults to the file's
 * base name without extension.
 *
 * @example
 * ```ts
 * sqlite({ path: "/srv/shop/sessions.db" })
 * ```
 */
export function sqlite(options: Options<SqliteSource>): SqliteSource {
  return { type: "sqlite", ...options };
}

/**
 * Files and folders, backed up by restic directly (native deduplication). Its name defaults to "files".
 *
 * @example
 * ```ts
 * files({ paths: ["/srv/shop/uploads"], exclude: ["*.tmp"] })
 * ```
 */
export function files(options: Options<FilesSource>): FilesSource {
  return { type: "files", ...options };
}

/**
 * Any program whose standard output is the dump. A string runs with `bash -o pipefail -c`, an array without a shell.
 *
 * @example
 * ```ts
 * command({ name: "redis", run: "redis-cli --rdb -", filename: "dump.rdb" })
 * ```
 */
export function command(options: Options<CommandSource>): CommandSource {
  return { type: "command", ...options };
}

/**
 * A restic repository. Repository v2 with compression is used; dumps are streamed uncompressed so restic deduplicates.
 *
 * @example
 * ```ts
 * restic({ url: "rest:https://backup.example:8000/app", password: env("RESTIC_PASSWORD") })
 * restic({
 *   url: "sftp:backup@storage.example:/restic",
 *   password: env("RESTIC_PASSWORD"),
 *   ssh: { key: file("/run/secrets/backup_ssh_key"), knownHosts: "storage.example ssh-ed25519 AAAA…" },
 * })
 * ```
 */
export function restic(options: Options<ResticRepository>): ResticRepository {
  return { type: "restic", ...options };
}

/**
 * Encrypts dump streams with GnuPG before restic (files sources rely on restic's own encryption).
 *
 * @example
 * ```ts
 * encrypt: gpg({ recipient: "backup@example.com", keyFile: "keys/backup.pub.asc" })
 * ```
 */
export function gpg(options: Options<GpgEncryption>): GpgEncryption {
  return { type: "gpg", ...options };
}

/**
 * Encrypts dump streams with age before restic (files sources rely on restic's own encryption).
 *
 * @example
 * ```ts
 * encrypt: age({ recipients: ["age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"] })
 * ```
 */
export function age(options: Options<AgeEncryption>): AgeEncryption {
  return { type: "age", ...options };
}

/**
 * A Slack incoming webhook.
 *
 * @example
 * ```ts
 * notifiers: { ops: slack({ webhookUrl: env("SLACK_WEBHOOK_URL") }) }
 * ```
 */
export function slack(options: Options<SlackNotifier>): SlackNotifier {
  return { type: "slack", ...options };
}

/**
 * E-mail through an SMTP server (nodemailer), as plain text and HTML.
 *
 * @example
 * ```ts
 * email({ smtp: { host: "smtp.example.com", port: 587, user: "backup", password: env("SMTP_PASSWORD") },
 *         from: "backup@example.com", to: ["ops@example.com"] })
 * ```
 */
export function email(options: Options<EmailNotifier>): EmailNotifier {
  return { type: "email", ...options };
}

/**
 * A JSON webhook (documented, versioned payload).
 *
 * @example
 * ```ts
 * webhook({ url: env("OPS_WEBHOOK_URL"), headers: { Authorization: env("OPS_WEBHOOK_AUTH") } })
 * ```
 */
export function webhook(options: Options<WebhookNotifier>): WebhookNotifier {
  return { type: "webhook", ...options };
}

/**
 * A healthchecks.io-style monitor pinged at start, success and failure of each run.
 *
 * @example
 * ```ts
 * healthchecks({ pingUrl: env("HC_PING_URL") })
 * ```
 */
export function healthchecks(options: Options<HealthchecksNotifier>): HealthchecksNotifier {
  return { type: "healthchecks", ...options };
}

/**
 * An Uptime Kuma push monitor pinged after each run.
 *
 * @example
 * ```ts
 * uptimeKuma({ pushUrl: env("KUMA_PUSH_URL") })
 * ```
 */
export function uptimeKuma(options: Options<UptimeKumaNotifier>): UptimeKumaNotifier {
  return { type: "uptimeKuma", ...options };
}

/**
 * An ntfy topic (push notifications to phones and desktops).
 *
 * @example
 * ```ts
 * ntfy({ topicUrl: env("NTFY_TOPIC_URL") })
 * ```
 */
export function ntfy(options: Options<NtfyNotifier>): NtfyNotifier {
  return { type: "ntfy", ...options };
}

/**
 * A Discord channel webhook: each message is an embed coloured by severity.
 *
 * @example
 * ```ts
 * discord({ webhookUrl: env("DISCORD_WEBHOOK_URL") })
 * ```
 */
export function discord(options: Options<DiscordNotifier>): DiscordNotifier {
  return { type: "discord", ...options };
}

/**
 * A Telegram chat, through a bot (Bot API sendMessage). Add the bot to the chat first.
 *
 * @example
 * ```ts
 * telegram({ botToken: env("TELEGRAM_BOT_TOKEN"), chatId: -1001234567890 })
 * ```
 */
export function telegram(options: Options<TelegramNotifier>): TelegramNotifier {
  return { type: "telegram", ...options };
}

/**
 * A PagerDuty service (Events API v2): an alert per project when its backup fails or is overdue, resolved by the next
 * success.
 *
 * @example
 * ```ts
 * pagerDuty({ routingKey: env("PAGERDUTY_ROUTING_KEY") })
 * ```
 */
export function pagerDuty(options: Options<PagerDutyNotifier>): PagerDutyNotifier {
  return { type: "pagerDuty", ...options };
}

/**
 * Pushover (push notifications to phones and desktops); failures are sent with high priority.
 *
 * @example
 * ```ts
 * pushover({ token: env("PUSHOVER_APP_TOKEN"), user: env("PUSHOVER_USER_KEY") })
 * ```
 */
export function pushover(options: Options<PushoverNotifier>): PushoverNotifier {
  return { type: "pushover", ...options };
}

/**
 * A Microsoft Teams channel, through a workflow webhook: each message is an adaptive card.
 *
 * @example
 * ```ts
 * teams({ webhookUrl: env("TEAMS_WORKFLOW_URL") })
 * ```
 */
export function teams(options: Options<TeamsNotifier>): TeamsNotifier {
  return { type: "teams", ...options };
}

/**
 * A Matrix room (client-server API), as plain text with an HTML rendering.
 *
 * @example
 * ```ts
 * matrix({ homeserver: "https://matrix.example.org", accessToken: env("MATRIX_TOKEN"), roomId: "!abc123:example.org" })
 * ```
 */
export function matrix(options: Options<MatrixNotifier>): MatrixNotifier {
  return { type: "matrix", ...options };
}

/**
 * A PostgreSQL cluster backed up by pgBackRest for point-in-time recovery: full, differential and incremental
 * backups on their own schedules, WAL archived continuously by PostgreSQL. backupctl renders pgBackRest's
 * configuration into a private file, plans and runs stanza-create, the backups, expire and check, and watches the
 * archive against `rpo`. It never edits postgresql.conf: it prints the lines to add. Its name defaults to the stanza.
 *
 * @example
 * ```ts
 * pgbackrest({
 *   stanza: "main",
 *   cluster: { dataDirectory: "/var/lib/postgresql/15/main", host: "/var/run/postgresql" },
 *   repository: { path: "/srv/pgbackrest" },
 *   cipherPassphrase: env("PGBACKREST_CIPHER_PASS"),
 *   schedule: { full: "0 1 * * 0", incr: "0 1 * * 1-6" },
 *   rpo: "15m",
 * })
 * ```
 */
export function pgbackrest(options: Options<PgBackRestSource>): PgBackRestSource {
  return { type: "pgbackrest", ...options };
}

/**
 * A pgbackrest() source's repository in a bucket of an S3-compatible store (AWS S3, MinIO, …), pgBackRest's
 * `repo1-type=s3`. The keys are written only into the private 0600 pgBackRest configuration.
 *
 * @example
 * ```ts
 * pgbackrest({
 *   stanza: "main",
 *   cluster: { dataDirectory: "/var/lib/postgresql/15/main", host: "/var/run/postgresql" },
 *   repository: s3({
 *     endpoint: "https://minio.lan:9000",
 *     bucket: "backups",
 *     region: "us-east-1",
 *     path: "/pgbackrest",
 *     accessKeyId: env("PGBACKREST_S3_KEY"),
 *     secretAccessKey: env("PGBACKREST_S3_SECRET"),
 *   }),
 *   schedule: { full: "0 1 * * 0", incr: "0 1 * * 1-6" },
 * })
 * ```
 */
export function s3(options: Options<PgBackRestS3Repository>): PgBackRestS3Repository {
  return { type: "s3", ...options };
}
