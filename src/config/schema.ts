/**
 * The configuration schema. Every object is strict (unknown keys are reported with a suggestion), every message says
 * what to write instead, and secret fields never echo what they were given.
 *
 * Every field carries a description (`.describe()`), and the shared value formats a title and a description
 * (`.meta()`): scripts/reference-docs.ts generates docs/config-reference.md from them. Metadata only, never validation.
 */
import { z } from "zod";
import { isResticDuration, parseDuration } from "./duration.ts";
import { describeValue, encodeUnknownKeys } from "./issues.ts";
import { namePattern } from "./names.ts";
import { scheduleProblem, timezoneProblem } from "./schedule.ts";
import { notificationEvents } from "./types.ts";

/** A strict object whose unknown keys become one problem each, with the known keys to suggest from. */
function strict<T extends z.ZodRawShape>(shape: T, what = "an object") {
  const known = Object.keys(shape);
  return z.strictObject(shape, {
    error: (issue) => {
      if (issue.code === "unrecognized_keys") return encodeUnknownKeys(issue.keys, known);
      if (issue.code === "invalid_type") {
        return issue.input === undefined
          ? `required: expected ${what}`
          : `expected ${what}, got ${describeValue(issue.input)}`;
      }
      return undefined;
    },
  });
}

const nonEmpty = z.string().min(1);
const stringList = z.array(nonEmpty);

const nameRule = "use letters, digits, '.', '_' or '-' (at most 64, starting with a letter or digit)";
const name = z.string().regex(namePattern, {
  error: (issue) => `invalid name ${describeValue(issue.input)}: ${nameRule}`,
}).meta({
  title: "name",
  description: "Letters, digits, `.`, `_` or `-`, at most 64 characters, starting with a letter or digit",
});

/** An integer in [min, max] whose every failure says the same thing. */
function integer(message: (input: unknown) => string, min: number, max = Number.MAX_SAFE_INTEGER) {
  const error = (issue: { input?: unknown }) => message(issue.input);
  return z.number({ error }).int({ error }).min(min, { error }).max(max, { error });
}

const port = integer((input) => `expected an integer 1–65535, got ${describeValue(input)}`, 1, 65535);

/**
 * Why `text` is not a server host (a name, an IPv4 or IPv6 address, or a socket folder starting with "/"), with the
 * fix; undefined when it is one. "db:5432" passed as a host would otherwise validate and fail only at apply, when
 * the name "db:5432" does not resolve.
 */
export function hostProblem(text: string): string | undefined {
  if (text.startsWith("/")) return undefined;
  const shown = describeValue(text);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    return `${shown} is a URL: give only the host name, e.g. host: "db.internal", and the port in port`;
  }
  const withPort = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:]+):(\d+)$/.exec(text);
  if (withPort) {
    return `${shown} includes a port: write host: ${JSON.stringify(withPort[1])} and port: ${Number(withPort[2])}`;
  }
  if (/^\[[^\]]+\]$/.test(text)) return `${shown}: write the IPv6 address without brackets`;
  const name = /^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?\.?$/;
  const ipv6 = /^[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*(%[A-Za-z0-9_.-]+)?$/;
  if (text.length <= 253 && (name.test(text) || (text.split(":").length > 2 && ipv6.test(text)))) return undefined;
  return `${shown} is not a host name or address: letters, digits, '.', '-' and '_', an IPv4 or IPv6 address, ` +
    "or a socket folder starting with /";
}

const host = nonEmpty.superRefine((text, ctx) => {
  const problem = hostProblem(text);
  if (problem) ctx.addIssue({ code: "custom", message: problem });
}).meta({
  title: "host",
  description: 'A host name or an IP address, without a port (that goes in `port`): `"db.internal"`, `"10.0.0.5"`',
});

const positiveCount = (what: string) =>
  integer((input) => `expected ${what} (an integer ≥ 0), got ${describeValue(input)}`, 0);

const duration = z.string({
  error: (issue) =>
    issue.input === undefined
      ? 'required: a duration such as "30s", "15m", "2h" or "7d"'
      : `expected a duration such as "30s", "15m", "2h" or "7d", got ${describeValue(issue.input)}`,
})
  .refine((text) => parseDuration(text) !== undefined, {
    error: (issue) =>
      `expected a duration such as "30s", "15m", "2h", "7d" or "1h30m" (m = minutes), got ${
        describeValue(issue.input)
      }`,
  })
  .meta({
    title: "duration",
    description: 'An integer and a unit (`ms`, `s`, `m` = minutes, `h`, `d`, `w`), summed without spaces: `"90s"`, ' +
      '`"15m"`, `"1h30m"`, `"7d"`, `"1w"`',
  });

const resticDuration = z.string().refine(isResticDuration, {
  error: (issue) =>
    `expected a restic duration such as "14d", "12h" or "1y6m" (y, m = months, d, h), got ${
      describeValue(issue.input)
    }`,
}).meta({
  title: "restic duration",
  description: 'restic\'s notation: `y`, `m` (months), `d`, `h`, in that order: `"14d"`, `"12h"`, `"1y6m"` (no weeks)',
});

const cron = z.string({
  error: (issue) =>
    issue.input === undefined
      ? `required: a cron expression such as "0 3 * * *" or "@daily"`
      : `expected a cron expression such as "0 3 * * *", got ${describeValue(issue.input)}`,
})
  .superRefine((text, ctx) => {
    const problem = scheduleProblem(text);
    if (problem) ctx.addIssue({ code: "custom", message: problem });
  })
  .meta({
    title: "cron expression",
    description: "Five fields, `minute hour day-of-month month day-of-week` (`H` is rejected), or `@yearly`, " +
      "`@annually`, `@monthly`, `@weekly`, `@daily`, `@midnight`, `@hourly`",
  });

const timezone = z.string().superRefine((text, ctx) => {
  const problem = timezoneProblem(text);
  if (problem) ctx.addIssue({ code: "custom", message: problem });
}).meta({ title: "IANA time zone", description: 'An IANA time zone name, e.g. `"UTC"` or `"Europe/Berlin"`' });

const secretHint = "secrets are references, so their values never sit in the config";

/** A secret reference. Its error never includes the value it was given: that value may be the secret itself. */
export const secretRef = z.discriminatedUnion("secret", [
  strict({
    secret: z.literal("env"),
    name: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, {
      error: () => "expected an environment variable name (letters, digits, _; not starting with a digit)",
    }).describe("Name of the environment variable holding the value"),
  }),
  strict({
    secret: z.literal("file"),
    path: nonEmpty.describe(
      "Path of a file holding the value (trailing newline stripped); relative paths start at the config's folder",
    ),
  }),
], {
  error: (issue) => {
    if (issue.input === undefined) return `required: ${secretHint}`;
    const kind = typeof issue.input === "string" ? "a plain string" : describeKind(issue.input);
    return `expected env("NAME") or file(PATH), got ${kind}: ${secretHint}`;
  },
}).meta({
  title: "secret",
  description: 'A reference, never a value: `env("NAME")` reads the environment variable `NAME` of the backupctl ' +
    "process, `file(PATH)` the file's text with one trailing newline removed (relative paths start at the config's " +
    "folder). Resolved only when a child process needs it",
});

/** The kind of a value without the value itself (for fields that may hold a secret). */
function describeKind(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "an object";
  return typeof value === "number" ? "a number" : typeof value === "boolean" ? "true or false" : `a ${typeof value}`;
}

/** A value that may be plain or a secret reference (URLs that can embed credentials). */
const maybeSecret = z.union([nonEmpty, secretRef], {
  error: (issue) =>
    `${issue.input === undefined ? "required: " : ""}expected a string or a secret reference env("NAME") / file(PATH)`,
});
const envMap = z.record(
  z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { error: () => "expected an environment variable name" }).meta({
    title: "variable name",
    description: "An environment variable name: letters, digits and `_`, not starting with a digit",
  }),
  maybeSecret,
);

const dumpCommon = {
  name: name.optional().describe(
    "Unique name of the source within its project, used in snapshot tags and restore commands (default: see the helper)",
  ),
  allowEmpty: z.boolean().optional().describe(
    "Accept an empty dump as a valid backup that stores no snapshot (default `false`: an empty dump fails the backup)",
  ),
};
const databaseName = nonEmpty;

const postgresSchema = strict({
  type: z.literal("postgres"),
  ...dumpCommon,
  host: host.optional().describe("Server host (default: libpq's, `PGHOST`, else the local socket)"),
  port: port.optional().describe("Server port (default: libpq's, `PGPORT`, else 5432)"),
  database: databaseName.describe("The database to dump (also the default source name)"),
  user: nonEmpty.optional().describe("User name (default: libpq's, `PGUSER`, else the OS user name)"),
  password: secretRef.optional().describe(
    "The user's password, given to pg_dump in a private pgpass file, never on the command line",
  ),
  options: stringList.optional().describe('Extra `pg_dump` arguments, e.g. `["--exclude-table=audit_log"]`'),
  globals: z.boolean().optional().describe(
    "Also back up roles and tablespaces (`pg_dumpall --globals-only`) as a second source `<name>-globals`",
  ),
}).describe("A PostgreSQL database, dumped with `pg_dump -Fc -Z0` (default name: `database`)");

const mysqlSchema = strict({
  type: z.literal("mysql"),
  ...dumpCommon,
  host: host.optional().describe("Server host (default: the client's, the local socket)"),
  port: port.optional().describe("Server port; setting it forces `--protocol=TCP`"),
  database: databaseName.describe("The database to dump (also the default source name)"),
  user: nonEmpty.optional().describe("User name (default: the client's option files)"),
  password: secretRef.optional().describe(
    "The user's password, given to the client in a private option file, never on the command line",
  ),
  options: stringList.optional().describe(
    'Extra `mariadb-dump`/`mysqldump` arguments, e.g. `["--ignore-table=wiki.cache"]`',
  ),
}).describe("A MySQL or MariaDB database, dumped with `mariadb-dump` or `mysqldump` (default name: `database`)");

const mongodbSchema = strict({
  type: z.literal("mongodb"),
  ...dumpCommon,
  uri: maybeSecret.optional().describe(
    "A full connection string; it may embed credentials, so it may be a secret reference. With it, `host` and " +
      "`port` are left out",
  ),
  host: host.optional().describe("Server host"),
  port: port.optional().describe("Server port"),
  database: nonEmpty.optional().describe("The database to dump (default: every database the user can read)"),
  user: nonEmpty.optional().describe("User name"),
  password: secretRef.optional().describe(
    "The user's password, given to mongodump in a private config file, never on the command line",
  ),
  authenticationDatabase: nonEmpty.optional().describe("The database the user authenticates against"),
  options: stringList.optional().describe("Extra `mongodump` arguments"),
}).describe('A MongoDB database, dumped with `mongodump --archive` (default name: `database`, else `"mongodb"`)');

const sqliteSchema = strict({
  type: z.literal("sqlite"),
  ...dumpCommon,
  path: nonEmpty.describe("Path of the database file; relative paths start at the config's folder"),
}).describe("An SQLite database file, dumped with `sqlite3 .dump` (default name: the file's base name)");

const filesSchema = strict({
  type: z.literal("files"),
  name: name.optional().describe('Unique name of the source within its project (default `"files"`)'),
  paths: z.array(nonEmpty).min(1, { error: () => "needs at least one path to back up" }).describe(
    "Files and folders to back up; relative paths start at the config's folder. A missing path fails the backup",
  ),
  exclude: stringList.optional().describe("restic exclude patterns (`--exclude`)"),
}).describe('Files and folders, read by restic itself (default name: `"files"`; no `allowEmpty`)');

/** Why `text` cannot be the name of a dump's file in a snapshot (restic stores it at the snapshot's top), if it cannot. */
function fileNameProblem(text: string): string | undefined {
  const fix = 'write a plain file name such as "dump.rdb"';
  if (text === "") return `expected a file name, got "": ${fix}`;
  if (text.includes("/")) return `expected a file name without '/', got ${describeValue(text)}: ${fix}`;
  if (text === "." || text === "..") {
    return `expected a file name, got ${describeValue(text)}, which names a folder: ${fix}`;
  }
  if (text.includes("\0")) return `expected a file name without a NUL character, got ${describeValue(text)}: ${fix}`;
  return undefined;
}

const commandSchema = strict({
  type: z.literal("command"),
  ...dumpCommon,
  name: z.string({ error: () => 'required: command() sources need a name, e.g. name: "redis"' }).regex(namePattern, {
    error: (issue) => `invalid name ${describeValue(issue.input)}: ${nameRule}`,
  }).meta({ title: "name" }).describe("Unique name of the source within its project (no default for `command()`)"),
  run: z.union([nonEmpty, z.array(nonEmpty).min(1)], {
    error: (issue) =>
      issue.input === undefined
        ? 'required: the command whose output is the dump, e.g. run: "redis-cli --rdb -"'
        : `expected a command line (string) or a program with arguments (list), got ${describeValue(issue.input)}`,
  }).describe(
    "The program and its arguments (a list runs without a shell), or a shell command line run with " +
      "`bash -o pipefail -c`",
  ),
  filename: z.string({ error: () => 'required: the file name the dump is stored as, e.g. filename: "dump.rdb"' })
    .refine((text) => fileNameProblem(text) === undefined, {
      error: (issue) => fileNameProblem(String(issue.input)),
    })
    .describe(
      'Name of the file the dump is stored as in the snapshot: one name, without `/`, not `.` or `..`, e.g. `"dump.rdb"`',
    ),
  env: envMap.optional().describe(
    "Environment variables for the command; values may be secret references. The command gets backupctl's " +
      "environment without the variables the config's `env()` references read, plus these",
  ),
}).describe("Any program whose standard output is the dump; it runs in backupctl's working folder");

const sourceKinds = "postgres(), mysql(), mongodb(), sqlite(), files() or command()";
export const sourceSchema = z.discriminatedUnion(
  "type",
  [postgresSchema, mysqlSchema, mongodbSchema, sqliteSchema, filesSchema, commandSchema],
  {
    error: (issue) =>
      issue.code === "invalid_union" || issue.code === "invalid_type"
        ? `expected a source made by ${sourceKinds}, got ${describeTyped(issue.input)}`
        : undefined,
  },
);

function describeTyped(value: unknown): string {
  if (value && typeof value === "object" && !Array.isArray(value) && "type" in value) {
    return `type ${describeValue((value as { type: unknown }).type)}`;
  }
  return describeValue(value);
}

const resticSchema = strict({
  type: z.literal("restic"),
  url: maybeSecret.describe(
    "Any restic repository URL (`local:`, `sftp:`, `rest:`, `s3:`, `b2:`, `azure:`, `gs:`, `swift:`, `rclone:`); " +
      "anything else is a path, relative to the config's folder. May be a secret reference",
  ),
  password: secretRef.describe("The repository password"),
  env: envMap.optional().describe(
    "Extra environment for restic (`AWS_ACCESS_KEY_ID`, `B2_ACCOUNT_KEY`, …); values may be secret references",
  ),
  compression: z.enum(["auto", "max", "off"]).optional().describe(
    "restic compression mode for this repository, passed as `--compression` (default: restic's own, `auto`)",
  ),
  options: z.record(nonEmpty, z.string()).optional().describe(
    'Extra restic options (`-o key=value`), e.g. `{ "sftp.command": "ssh -p 2222 backup@host -s sftp" }`; plain ' +
      "strings on restic's command line: never a secret",
  ),
  ssh: strict({
    key: secretRef.describe(
      'The private key in OpenSSH format (its text, not a path), e.g. `file("/run/secrets/backup_ssh_key")` or ' +
        '`env("BACKUP_SSH_KEY")`',
    ),
    passphrase: secretRef.optional().describe("The key's passphrase, when it has one"),
    knownHosts: z.union([nonEmpty, z.array(nonEmpty).min(1)]).optional().describe(
      "The server's known_hosts lines (as `ssh-keyscan -p PORT host` prints them); only these keys are trusted. " +
        "Without them the system's and the user's known_hosts files are used",
    ),
    hostKeyChecking: z.enum(["yes", "accept-new", "no"]).optional().describe(
      'ssh\'s `StrictHostKeyChecking` (default `"yes"`: an unknown or changed host key fails)',
    ),
  }).optional().describe("SSH access for an `sftp:` repository: the key (and its passphrase) as secret references"),
}).describe("A restic repository: where backups go, and how to reach it");
const repositorySchema = z.discriminatedUnion("type", [resticSchema], {
  error: (issue) => `expected a repository made by restic(), got ${describeTyped(issue.input)}`,
});

const gpgSchema = strict({
  type: z.literal("gpg"),
  recipient: z.union([nonEmpty, z.array(nonEmpty).min(1)]).optional().describe(
    "Key ids, fingerprints or emails of the recipients (public keys must be in the keyring or in `keyFile`)",
  ),
  keyFile: nonEmpty.optional().describe(
    "A file holding the recipients' public keys (armored or binary); relative paths start at the config's folder. " +
      "Without `recipient`, every key in it is used",
  ),
  secretKey: secretRef.optional().describe("The armored private key used to decrypt on restore and in drills"),
  passphrase: secretRef.optional().describe("Passphrase of the private key"),
}).refine((value) => value.recipient !== undefined || value.keyFile !== undefined, {
  error: () => "gpg() needs a recipient or a keyFile with the public key to encrypt to",
}).describe("Encrypts each dump with gpg; needs `recipient` or `keyFile`");
const ageSchema = strict({
  type: z.literal("age"),
  recipients: z.array(nonEmpty).min(1).optional().describe(
    "age recipients (`age1…` public keys or SSH public keys)",
  ),
  recipientsFile: nonEmpty.optional().describe(
    "A file with one recipient per line (`#` comments allowed); relative paths start at the config's folder",
  ),
  identity: secretRef.optional().describe("The identity (private key) used to decrypt on restore and in drills"),
}).refine((value) => value.recipients !== undefined || value.recipientsFile !== undefined, {
  error: () => "age() needs recipients or a recipientsFile to encrypt to",
}).describe("Encrypts each dump with age; needs `recipients` or `recipientsFile`");
const encryptionSchema = z.discriminatedUnion("type", [gpgSchema, ageSchema], {
  error: (issue) => `expected encryption made by gpg() or age(), got ${describeTyped(issue.input)}`,
});

const events = z.array(z.enum(notificationEvents, {
  error: (issue) => `unknown event ${describeValue(issue.input)}; events are ${notificationEvents.join(", ")}`,
})).optional().describe(
  "Events this channel receives. Default for slack, email, webhook and ntfy: `run.failed`, `run.recovered`, " +
    "`backup.overdue`, `deletions.held`, `check.failed`, `verify.failed`, `config.invalid`; for healthchecks: " +
    "`run.started`, `run.succeeded`, `run.failed`, `run.recovered`; for uptimeKuma the same without `run.started`",
);

const notifierSchema = z.discriminatedUnion("type", [
  strict({
    type: z.literal("slack"),
    webhookUrl: secretRef.describe("The incoming-webhook URL: it is a credential, so only a secret reference"),
    events,
  }).describe("Posts to a Slack channel through an incoming webhook"),
  strict({
    type: z.literal("email"),
    smtp: strict({
      host: host.describe("The SMTP server's host"),
      port: port.optional().describe("The SMTP server's port (default 465 when `secure`, else 587)"),
      secure: z.boolean().optional().describe(
        "TLS from the first byte (port 465); otherwise STARTTLS is used when the server offers it",
      ),
      requireTls: z.boolean().optional().describe(
        "Refuse to send unless the connection is upgraded with STARTTLS (default `false`)",
      ),
      ca: nonEmpty.optional().describe(
        "A PEM file of the certificate authority that signed the server's certificate (a private CA); relative " +
          "paths start at the config's folder",
      ),
      user: nonEmpty.optional().describe("User name to log in with"),
      password: secretRef.optional().describe("Password to log in with"),
    }).describe("The SMTP server mail is sent through"),
    from: nonEmpty.describe("The sender address"),
    to: z.union([nonEmpty, z.array(nonEmpty).min(1)], {
      error: (issue) =>
        issue.input === undefined
          ? 'required: the recipients, e.g. to: ["ops@example.com"]'
          : `expected an address or a list of addresses, got ${describeValue(issue.input)}`,
    }).describe("The recipient address, or a list of them"),
    events,
  }).describe("Sends e-mail through an SMTP server"),
  strict({
    type: z.literal("webhook"),
    url: maybeSecret.describe(
      "The URL the message is sent to as JSON; it may embed credentials, so it may be a secret reference",
    ),
    method: z.enum(["POST", "PUT"]).optional().describe('The HTTP method (default `"POST"`)'),
    headers: z.record(nonEmpty, maybeSecret).optional().describe(
      "Extra request headers; values may be secret references",
    ),
    events,
  }).describe("Sends every message as JSON to a URL"),
  strict({
    type: z.literal("healthchecks"),
    pingUrl: maybeSecret.describe(
      "The check's ping URL (`https://hc-ping.com/<uuid>` or your own instance); it contains the check's secret",
    ),
    events,
  }).describe("Pings a healthchecks.io check: start, success and failure signals"),
  strict({
    type: z.literal("uptimeKuma"),
    pushUrl: maybeSecret.describe("The push monitor's URL, including its token"),
    events,
  }).describe("Pushes to an Uptime Kuma push monitor"),
  strict({
    type: z.literal("ntfy"),
    topicUrl: maybeSecret.describe(
      "The topic's URL (`https://ntfy.sh/<topic>` or your own server); a topic name is guessable, so treat it as a " +
        "secret",
    ),
    token: secretRef.optional().describe("An access token for a protected topic"),
    events,
  }).describe("Publishes to an ntfy topic"),
], {
  error: (issue) =>
    `expected a notifier made by slack(), email(), webhook(), healthchecks(), uptimeKuma() or ntfy(), got ${
      describeTyped(issue.input)
    }`,
});

const keepRules = ["last", "hourly", "daily", "weekly", "monthly", "yearly"] as const;
const withinRules = ["within", "withinHourly", "withinDaily", "withinWeekly", "withinMonthly", "withinYearly"] as const;
const retentionSchema = strict({
  last: positiveCount("a number of snapshots").optional().describe("Keep the newest N snapshots"),
  hourly: positiveCount("a number of hours").optional().describe(
    "Keep the newest snapshot of each of the last N hours that have one",
  ),
  daily: positiveCount("a number of days").optional().describe(
    "Keep the newest snapshot of each of the last N days that have one",
  ),
  weekly: positiveCount("a number of weeks").optional().describe(
    "Keep the newest snapshot of each of the last N weeks that have one",
  ),
  monthly: positiveCount("a number of months").optional().describe(
    "Keep the newest snapshot of each of the last N months that have one",
  ),
  yearly: positiveCount("a number of years").optional().describe(
    "Keep the newest snapshot of each of the last N years that have one",
  ),
  within: resticDuration.optional().describe('Keep every snapshot younger than this (`"2d"`, `"1y6m"`, `"12h"`)'),
  withinHourly: resticDuration.optional().describe("Keep the newest snapshot of each hour within this time"),
  withinDaily: resticDuration.optional().describe("Keep the newest snapshot of each day within this time"),
  withinWeekly: resticDuration.optional().describe("Keep the newest snapshot of each week within this time"),
  withinMonthly: resticDuration.optional().describe("Keep the newest snapshot of each month within this time"),
  withinYearly: resticDuration.optional().describe("Keep the newest snapshot of each year within this time"),
  minSnapshots: positiveCount("a number of snapshots").optional().describe(
    "A floor, not a keep rule: a forget that would leave fewer snapshots in a group than this needs approval",
  ),
}, "a retention policy such as { daily: 7, weekly: 4 }").refine(
  (policy) => [...keepRules, ...withinRules].some((rule) => policy[rule] !== undefined && policy[rule] !== 0),
  {
    error: () => `needs at least one keep rule (${[...keepRules, "within"].join(", ")}), e.g. { daily: 7, weekly: 4 }`,
  },
);

const retrySchema = strict({
  attempts: z.number().int().min(1).max(100).optional().describe(
    "Attempts per stage, including the first (default 3)",
  ),
  baseDelay: duration.optional().describe(
    'First backoff delay (default `"5s"`); later ones double, with full jitter, up to `maxDelay`',
  ),
  maxDelay: duration.optional().describe('Longest backoff delay (default `"5m"`)'),
}).describe(
  "How often a backup is tried after a transient failure; each key comes from the project's `retry`, else from " +
    "`defaults.retry`, else from the defaults below",
);

const commands = z.union([nonEmpty, z.array(nonEmpty).min(1)], {
  error: (issue) =>
    `expected a command line (string) or a program with arguments (list), got ${describeValue(issue.input)}`,
});
const hooksSchema = strict({
  before: commands.optional().describe("Runs before the backups; a failure aborts the run"),
  after: commands.optional().describe("Runs after the backups and copies, when all of them succeeded"),
  onFailure: commands.optional().describe("Runs when anything in the run failed (a failing `before` included)"),
  timeout: duration.optional().describe('Time limit per hook (default `"60s"`)'),
  env: envMap.optional().describe(
    'Environment variables for every hook of the project; values may be secret references, e.g. `{ DBPW: env("DBPW") }`' +
      ". Hooks get backupctl's environment without the variables the config's `env()` references read, plus these",
  ),
});

const verifySchema = strict({
  every: duration.describe("A drill is planned when this long has passed since the last successful one"),
  into: z.discriminatedUnion("type", [postgresSchema, mysqlSchema, sqliteSchema], {
    error: (issue) =>
      issue.input === undefined
        ? "required: a scratch database to restore into, made by postgres(), mysql() or sqlite()"
        : `expected a scratch target made by postgres(), mysql() or sqlite(), got ${describeTyped(issue.input)}`,
  }).describe("The scratch database restored into: dropped and recreated at each drill, never the project's own"),
  check: nonEmpty.optional().describe("An SQL query run against the restored database"),
  expect: strict({
    minRows: z.number().int().min(0).optional().describe(
      "The least the check must find (default 1): the query's number when it returns one whole number, else its " +
        "row count",
    ),
  }).optional().describe("What the check query must return"),
});

export const projectSchema = strict({
  schedule: cron.describe("When the project's backups are due: a cron expression read in the project's time zone"),
  timezone: timezone.optional().describe(
    "Time zone the schedule is read in (default: the top-level `timezone`, else UTC)",
  ),
  jitter: duration.optional().describe(
    "Delays each slot by a fixed amount below this, derived from the project's name, so projects sharing a schedule " +
      'spread out (e.g. `"10m"`)',
  ),
  enabled: z.boolean().optional().describe(
    "Whether plan and apply consider this project (default `true`; `false` skips it with a warning)",
  ),
  sources: z.array(sourceSchema, {
    error: (issue) =>
      issue.input === undefined
        ? 'required: a list of sources, e.g. [sqlite({ path: "app.db" })]'
        : `expected a list of sources, got ${describeValue(issue.input)}`,
  })
    .min(1, { error: () => "a project needs at least one source" })
    .describe("What to back up; source names must be unique in the project"),
  repositories: z.array(name, {
    error: (issue) =>
      issue.input === undefined
        ? 'required: a list of repository names, e.g. ["local"]'
        : `expected a list of repository names, got ${describeValue(issue.input)}`,
  })
    .min(1, { error: () => 'a project needs at least one repository, e.g. ["local"]' })
    .describe(
      "Names of declared repositories, no duplicates: the first (the primary) receives the backups and decides when " +
        "a source is due, the others get copies",
    ),
  retention: retentionSchema.describe(
    "Which snapshots to keep, with restic's forget semantics, per source in each of the project's repositories; at " +
      "least one keep rule must be non-zero",
  ),
  encrypt: encryptionSchema.optional().describe(
    "Encrypts every dump in the stream before restic (`files()` sources are not affected)",
  ),
  hooks: hooksSchema.optional().describe(
    "Commands run around the project's run: each a command line (string, run with `bash -o pipefail -c`) or a " +
      "program with its arguments (list), in the config's folder",
  ),
  notify: z.array(name).optional().describe("Names of declared notifiers this project's events go to, no duplicates"),
  verify: verifySchema.optional().describe(
    "A restore drill: the latest snapshot of a database source is restored into a scratch database and checked",
  ),
  maxAge: duration.optional().describe(
    "Longest acceptable time without a successful backup of each source (default: twice the interval between two " +
      "slots, at least 2 minutes); past it the project is overdue",
  ),
  retry: retrySchema.optional().describe(
    "Retries of backups after a transient failure, key by key (default: `defaults.retry`, else 3 attempts, from " +
      '`"5s"` up to `"5m"`)',
  ),
  timeout: duration.optional().describe(
    'Time limit of one backup attempt (default: `defaults.timeout`, else `"6h"`)',
  ),
  prune: strict({
    every: duration.optional().describe(
      "Prune each repository when this long has passed since its last prune (or its initialization), even when " +
        'nothing was forgotten (default: `"7d"`, and only when snapshots were forgotten)',
    ),
  }).optional().describe(
    "Prune cadence of the project's repositories. A repository with forgotten snapshots is also pruned at once when " +
      "it was never pruned or half of its snapshots were forgotten since its last prune",
  ),
  check: strict({
    every: duration.optional().describe(
      'Check each repository when this long has passed since its last successful check (default `"7d"`)',
    ),
    readDataSubset: z.string().regex(/^(\d+(\.\d+)?%|\d+\/\d+|\d+[KMGT]?)$/, {
      error: () => 'expected a restic subset such as "5%", "1/10" or "500M"',
    }).optional().describe(
      'Also read this share of the data packs (`--read-data-subset`): `"5%"`, `"1/10"` or `"500M"`',
    ),
  }).optional().describe("`restic check` cadence of the project's repositories"),
}, "a project { schedule, sources, repositories, retention }").describe(
  "A project: what to back up (`sources`), when (`schedule`), where to (`repositories`) and how long to keep it " +
    "(`retention`)",
);

export const configSchema = strict({
  timezone: timezone.optional().describe(
    'Time zone schedules are read in (default `"UTC"`); a project may override it',
  ),
  stateDir: nonEmpty.optional().describe(
    "Where the state database lives (default `<config dir>/.backupctl`); relative to the config's folder. " +
      "`--state-dir` and `BACKUPCTL_STATE_DIR` take precedence",
  ),
  host: nonEmpty.optional().describe(
    "The host name recorded in snapshots (default: this machine's host name); set it in containers",
  ),
  repositories: z.record(name, repositorySchema, {
    error: (issue) =>
      issue.code !== "invalid_type"
        ? undefined
        : issue.input === undefined
        ? 'required: declare repositories, e.g. { local: restic({ url: "/srv/restic", password: env("RESTIC_PASSWORD") }) }'
        : `expected an object of named repositories, got ${describeValue(issue.input)}`,
  }).describe("The repositories, by name; projects refer to them by these names"),
  notifiers: z.record(name, notifierSchema).optional().describe(
    "Notification channels, by name (default none); projects refer to them in `notify`",
  ),
  notifications: strict({
    timeout: duration.optional().describe('Time limit of one delivery attempt (default `"10s"`)'),
    expireAfter: duration.optional().describe(
      "How long an undelivered notification is retried before it is given up as undeliverable " +
        '(default `"24h"`)',
    ),
  }).optional().describe("How notifications are delivered (through the outbox in the state database)"),
  defaults: strict({
    retry: retrySchema.optional().describe("Every project's retry policy, key by key, where the project sets none"),
    timeout: duration.optional().describe(
      'Every project\'s time limit of one backup attempt, where the project sets none (default `"6h"`)',
    ),
  }).optional().describe("Defaults for every project's `retry` and `timeout`"),
  projects: z.record(name, projectSchema, {
    error: (issue) =>
      issue.code !== "invalid_type"
        ? undefined
        : issue.input === undefined
        ? "required: declare at least one project"
        : `expected an object of named projects, got ${describeValue(issue.input)}`,
  }).describe("The projects, by name: what to back up, when, where to, and how long to keep it"),
}, "the configuration object (export default defineConfig({ … }))");
