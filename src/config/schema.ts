/**
 * The configuration schema. Every object is strict (unknown keys are reported with a suggestion), every message says
 * what to write instead, and secret fields never echo what they were given.
 *
 * Every field carries a description (`.describe()`), and the shared value formats a title and a description
 * (`.meta()`): scripts/reference-docs.ts generates docs/config-reference.md from them. Metadata only, never validation.
 *
 * This file holds the project and the top level; the value formats, sources, repositories with encryption, and
 * notifiers each have their own schema-*.ts.
 */
import { z } from "zod";
import { describeValue } from "./issues.ts";
import { notifierSchema } from "./schema-notifiers.ts";
import { encryptionSchema, repositorySchema } from "./schema-repositories.ts";
import { mysqlSchema, postgresSchema, sourceSchema, sqliteSchema } from "./schema-sources.ts";
import { priorityShape, resticTuningShape } from "./schema-restic.ts";
import {
  cron,
  describeTyped,
  duration,
  envMap,
  maybeSecret,
  name,
  nonEmpty,
  positiveCount,
  resticDuration,
  stateSchemaPattern,
  strict,
  timezone,
  urlHasPassword,
} from "./schema-values.ts";

/** Where the state is kept when not in the local SQLite file: a PostgreSQL database, declared like a backend. */
const stateSchema = strict({
  url: maybeSecret.refine((url) => typeof url !== "string" || !urlHasPassword(url), {
    error: () =>
      'a literal URL must not hold a password: write url: env("BACKUPCTL_STATE_URL") (or file(PATH)), or leave ' +
      "the password out of the URL and give it in PGPASSWORD or a pgpass file (PGPASSFILE, ~/.pgpass)",
  }).describe(
    'The PostgreSQL connection URL, e.g. `env("BACKUPCTL_STATE_URL")` holding `postgresql://user:pw@db/backups`: a ' +
      "secret reference, or a literal without password. `--state-url` and `BACKUPCTL_STATE_URL` take precedence",
  ),
  schema: z.string().regex(stateSchemaPattern, {
    error: () => "expected a PostgreSQL schema name: lower-case letters, digits and _, not starting with a digit",
  }).optional().describe(
    'The PostgreSQL schema the state\'s tables live in (default `"backupctl"`; created if missing), so that one ' +
      "database can be shared with other tools",
  ),
}, "a state { url, schema }");

export { hostProblem, secretRef } from "./schema-values.ts";
export { sourceSchema };

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
  }).optional().describe(
    "The scratch database a database drill restores into: dropped and recreated at each drill, never the project's " +
      "own; required unless the drill is of a files or command source",
  ),
  source: name.optional().describe(
    "The source to drill (default: with `into`, the first database source of its kind; else the first `files()` " +
      "source, else the first `command()` source)",
  ),
  sample: strict({
    files: z.number().int().min(1).optional().describe(
      "How many files to restore (default 20), the largest and the newest always among them",
    ),
    share: z.string().regex(/^(100|\d{1,2}(\.\d+)?)%$/, {
      error: () => 'expected a share of the bytes such as "5%"',
    }).optional().describe(
      'Restore files at random until this share of the snapshot\'s bytes is reached instead (e.g. `"5%"`), the ' +
        "largest and the newest always among them",
    ),
  }).refine((sample) => sample.files === undefined || sample.share === undefined, {
    error: () => "give files or share, not both",
  }).optional().describe(
    "For a files drill: which files to restore and compare with the live ones (default 20 files)",
  ),
  check: nonEmpty.optional().describe("An SQL query run against the restored database"),
  rto: duration.optional().describe(
    'The recovery time objective: a drill (restore and check) taking longer raises `drill.slow` (e.g. `"15m"`)',
  ),
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
    .describe(
      "Names of declared repositories, no duplicates: the first (the primary) receives the backups and decides when " +
        "a source is due, the others get copies. Empty only when every source is `pgbackrest()` (pgBackRest keeps " +
        "its own repository)",
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
  runsOn: z.array(
    z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,62}$/, {
      error: () => 'a runner label: lower-case letters, digits, ".", "_" or "-", e.g. "db" or "eu-west"',
    }),
  ).min(1, { error: () => 'list at least one label, e.g. ["db"], or leave runsOn out' }).optional().describe(
    "Runner labels this project needs (`watch --runner-labels`): only a runner with every one of them runs it " +
      "(files on one host, a database reachable from one network); a project no live runner can take is reported",
  ),
  verify: verifySchema.optional().describe(
    "A restore drill: the latest snapshot of a database source is restored into a scratch database and checked; of a " +
      "`files()` source a sample of files is restored and compared with the live ones; of a `command()` source the " +
      "dump is restored and its size compared with the backup's record",
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
  restic: strict(resticTuningShape, "restic settings such as { limitUpload: 2048 }").optional().describe(
    "restic settings for this project's backups, copies and forgets, each overriding the repository's own; a " +
      "repository's prune and check (shared by its projects) use the repository's",
  ),
  ...priorityShape(
    "this project's backups: the dump programs, encryption filters and restic (overriding the repository's)",
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
  state: stateSchema.optional().describe(
    "Keep the state in PostgreSQL (shared by several hosts) instead of the SQLite file in `stateDir` (default)",
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
