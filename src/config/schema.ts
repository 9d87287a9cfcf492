/**
 * The configuration schema. Every object is strict (unknown keys are reported with a suggestion), every message says
 * what to write instead, and secret fields never echo what they were given.
 */
import { z } from "zod";
import { isResticDuration, parseDuration } from "./duration.ts";
import { describeValue, encodeUnknownKeys } from "./issues.ts";
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

const namePattern = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const nameRule = "use letters, digits, '.', '_' or '-' (at most 64, starting with a letter or digit)";
const name = z.string().regex(namePattern, {
  error: (issue) => `invalid name ${describeValue(issue.input)}: ${nameRule}`,
});

/** An integer in [min, max] whose every failure says the same thing. */
function integer(message: (input: unknown) => string, min: number, max = Number.MAX_SAFE_INTEGER) {
  const error = (issue: { input?: unknown }) => message(issue.input);
  return z.number({ error }).int({ error }).min(min, { error }).max(max, { error });
}

const port = integer((input) => `expected an integer 1–65535, got ${describeValue(input)}`, 1, 65535);

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
  });

const resticDuration = z.string().refine(isResticDuration, {
  error: (issue) =>
    `expected a restic duration such as "14d", "12h" or "1y6m" (y, m = months, d, h), got ${
      describeValue(issue.input)
    }`,
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
  });

const timezone = z.string().superRefine((text, ctx) => {
  const problem = timezoneProblem(text);
  if (problem) ctx.addIssue({ code: "custom", message: problem });
});

const secretHint = "secrets are references, so their values never sit in the config";

/** A secret reference. Its error never includes the value it was given: that value may be the secret itself. */
export const secretRef = z.discriminatedUnion("secret", [
  strict({
    secret: z.literal("env"),
    name: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, {
      error: () => "expected an environment variable name (letters, digits, _; not starting with a digit)",
    }),
  }),
  strict({ secret: z.literal("file"), path: nonEmpty }),
], {
  error: (issue) => {
    if (issue.input === undefined) return `required: ${secretHint}`;
    const kind = typeof issue.input === "string" ? "a plain string" : describeKind(issue.input);
    return `expected env("NAME") or file(PATH), got ${kind}: ${secretHint}`;
  },
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
  z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { error: () => "expected an environment variable name" }),
  maybeSecret,
);

const dumpCommon = { name: name.optional(), allowEmpty: z.boolean().optional() };
const databaseName = nonEmpty;

const postgresSchema = strict({
  type: z.literal("postgres"),
  ...dumpCommon,
  host: nonEmpty.optional(),
  port: port.optional(),
  database: databaseName,
  user: nonEmpty.optional(),
  password: secretRef.optional(),
  options: stringList.optional(),
  globals: z.boolean().optional(),
});

const mysqlSchema = strict({
  type: z.literal("mysql"),
  ...dumpCommon,
  host: nonEmpty.optional(),
  port: port.optional(),
  database: databaseName,
  user: nonEmpty.optional(),
  password: secretRef.optional(),
  options: stringList.optional(),
});

const mongodbSchema = strict({
  type: z.literal("mongodb"),
  ...dumpCommon,
  uri: maybeSecret.optional(),
  host: nonEmpty.optional(),
  port: port.optional(),
  database: nonEmpty.optional(),
  user: nonEmpty.optional(),
  password: secretRef.optional(),
  authenticationDatabase: nonEmpty.optional(),
  options: stringList.optional(),
});

const sqliteSchema = strict({ type: z.literal("sqlite"), ...dumpCommon, path: nonEmpty });

const filesSchema = strict({
  type: z.literal("files"),
  name: name.optional(),
  paths: z.array(nonEmpty).min(1, { error: () => "needs at least one path to back up" }),
  exclude: stringList.optional(),
});

const commandSchema = strict({
  type: z.literal("command"),
  ...dumpCommon,
  name: z.string({ error: () => 'required: command() sources need a name, e.g. name: "redis"' }).regex(namePattern, {
    error: (issue) => `invalid name ${describeValue(issue.input)}: ${nameRule}`,
  }),
  run: z.union([nonEmpty, z.array(nonEmpty).min(1)], {
    error: (issue) =>
      issue.input === undefined
        ? 'required: the command whose output is the dump, e.g. run: "redis-cli --rdb -"'
        : `expected a command line (string) or a program with arguments (list), got ${describeValue(issue.input)}`,
  }),
  filename: z.string({ error: () => 'required: the file name the dump is stored as, e.g. filename: "dump.rdb"' })
    .regex(/^[^/\0]+$/, { error: () => "expected a file name without '/'" }),
  env: envMap.optional(),
});

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
  url: maybeSecret,
  password: secretRef,
  env: envMap.optional(),
  compression: z.enum(["auto", "max", "off"]).optional(),
  options: z.record(nonEmpty, z.string()).optional(),
  ssh: strict({
    key: secretRef,
    passphrase: secretRef.optional(),
    knownHosts: z.union([nonEmpty, z.array(nonEmpty).min(1)]).optional(),
    hostKeyChecking: z.enum(["yes", "accept-new", "no"]).optional(),
  }).optional(),
});
const repositorySchema = z.discriminatedUnion("type", [resticSchema], {
  error: (issue) => `expected a repository made by restic(), got ${describeTyped(issue.input)}`,
});

const gpgSchema = strict({
  type: z.literal("gpg"),
  recipient: z.union([nonEmpty, z.array(nonEmpty).min(1)]).optional(),
  keyFile: nonEmpty.optional(),
  secretKey: secretRef.optional(),
  passphrase: secretRef.optional(),
}).refine((value) => value.recipient !== undefined || value.keyFile !== undefined, {
  error: () => "gpg() needs a recipient or a keyFile with the public key to encrypt to",
});
const ageSchema = strict({
  type: z.literal("age"),
  recipients: z.array(nonEmpty).min(1).optional(),
  recipientsFile: nonEmpty.optional(),
  identity: secretRef.optional(),
}).refine((value) => value.recipients !== undefined || value.recipientsFile !== undefined, {
  error: () => "age() needs recipients or a recipientsFile to encrypt to",
});
const encryptionSchema = z.discriminatedUnion("type", [gpgSchema, ageSchema], {
  error: (issue) => `expected encryption made by gpg() or age(), got ${describeTyped(issue.input)}`,
});

const events = z.array(z.enum(notificationEvents, {
  error: (issue) => `unknown event ${describeValue(issue.input)}; events are ${notificationEvents.join(", ")}`,
})).optional();

const notifierSchema = z.discriminatedUnion("type", [
  strict({ type: z.literal("slack"), webhookUrl: secretRef, events }),
  strict({
    type: z.literal("email"),
    smtp: strict({
      host: nonEmpty,
      port: port.optional(),
      secure: z.boolean().optional(),
      requireTls: z.boolean().optional(),
      ca: nonEmpty.optional(),
      user: nonEmpty.optional(),
      password: secretRef.optional(),
    }),
    from: nonEmpty,
    to: z.union([nonEmpty, z.array(nonEmpty).min(1)], {
      error: (issue) =>
        issue.input === undefined
          ? 'required: the recipients, e.g. to: ["ops@example.com"]'
          : `expected an address or a list of addresses, got ${describeValue(issue.input)}`,
    }),
    events,
  }),
  strict({
    type: z.literal("webhook"),
    url: maybeSecret,
    method: z.enum(["POST", "PUT"]).optional(),
    headers: z.record(nonEmpty, maybeSecret).optional(),
    events,
  }),
  strict({ type: z.literal("healthchecks"), pingUrl: maybeSecret, events }),
  strict({ type: z.literal("uptimeKuma"), pushUrl: maybeSecret, events }),
  strict({ type: z.literal("ntfy"), topicUrl: maybeSecret, token: secretRef.optional(), events }),
], {
  error: (issue) =>
    `expected a notifier made by slack(), email(), webhook(), healthchecks(), uptimeKuma() or ntfy(), got ${
      describeTyped(issue.input)
    }`,
});

const keepRules = ["last", "hourly", "daily", "weekly", "monthly", "yearly"] as const;
const withinRules = ["within", "withinHourly", "withinDaily", "withinWeekly", "withinMonthly", "withinYearly"] as const;
const retentionSchema = strict({
  last: positiveCount("a number of snapshots").optional(),
  hourly: positiveCount("a number of hours").optional(),
  daily: positiveCount("a number of days").optional(),
  weekly: positiveCount("a number of weeks").optional(),
  monthly: positiveCount("a number of months").optional(),
  yearly: positiveCount("a number of years").optional(),
  within: resticDuration.optional(),
  withinHourly: resticDuration.optional(),
  withinDaily: resticDuration.optional(),
  withinWeekly: resticDuration.optional(),
  withinMonthly: resticDuration.optional(),
  withinYearly: resticDuration.optional(),
  minSnapshots: positiveCount("a number of snapshots").optional(),
}, "a retention policy such as { daily: 7, weekly: 4 }").refine(
  (policy) => [...keepRules, ...withinRules].some((rule) => policy[rule] !== undefined && policy[rule] !== 0),
  {
    error: () => `needs at least one keep rule (${[...keepRules, "within"].join(", ")}), e.g. { daily: 7, weekly: 4 }`,
  },
);

const retrySchema = strict({
  attempts: z.number().int().min(1).max(100).optional(),
  baseDelay: duration.optional(),
  maxDelay: duration.optional(),
});

const commands = z.union([nonEmpty, z.array(nonEmpty).min(1)], {
  error: (issue) =>
    `expected a command line (string) or a program with arguments (list), got ${describeValue(issue.input)}`,
});
const hooksSchema = strict({
  before: commands.optional(),
  after: commands.optional(),
  onFailure: commands.optional(),
  timeout: duration.optional(),
});

const verifySchema = strict({
  every: duration,
  into: z.discriminatedUnion("type", [postgresSchema, mysqlSchema, sqliteSchema], {
    error: (issue) =>
      issue.input === undefined
        ? "required: a scratch database to restore into, made by postgres(), mysql() or sqlite()"
        : `expected a scratch target made by postgres(), mysql() or sqlite(), got ${describeTyped(issue.input)}`,
  }),
  check: nonEmpty.optional(),
  expect: strict({ minRows: z.number().int().min(0).optional() }).optional(),
});

export const projectSchema = strict({
  schedule: cron,
  timezone: timezone.optional(),
  jitter: duration.optional(),
  enabled: z.boolean().optional(),
  sources: z.array(sourceSchema, {
    error: (issue) =>
      issue.input === undefined
        ? 'required: a list of sources, e.g. [sqlite({ path: "app.db" })]'
        : `expected a list of sources, got ${describeValue(issue.input)}`,
  })
    .min(1, { error: () => "a project needs at least one source" }),
  repositories: z.array(name, {
    error: (issue) =>
      issue.input === undefined
        ? 'required: a list of repository names, e.g. ["local"]'
        : `expected a list of repository names, got ${describeValue(issue.input)}`,
  })
    .min(1, { error: () => 'a project needs at least one repository, e.g. ["local"]' }),
  retention: retentionSchema,
  encrypt: encryptionSchema.optional(),
  hooks: hooksSchema.optional(),
  notify: z.array(name).optional(),
  verify: verifySchema.optional(),
  maxAge: duration.optional(),
  retry: retrySchema.optional(),
  timeout: duration.optional(),
  prune: strict({ every: duration.optional() }).optional(),
  check: strict({
    every: duration.optional(),
    readDataSubset: z.string().regex(/^(\d+(\.\d+)?%|\d+\/\d+|\d+[KMGT]?)$/, {
      error: () => 'expected a restic subset such as "5%", "1/10" or "500M"',
    }).optional(),
  }).optional(),
}, "a project { schedule, sources, repositories, retention }");

export const configSchema = strict({
  timezone: timezone.optional(),
  stateDir: nonEmpty.optional(),
  host: nonEmpty.optional(),
  repositories: z.record(name, repositorySchema, {
    error: (issue) =>
      issue.code !== "invalid_type"
        ? undefined
        : issue.input === undefined
        ? 'required: declare repositories, e.g. { local: restic({ url: "/srv/restic", password: env("RESTIC_PASSWORD") }) }'
        : `expected an object of named repositories, got ${describeValue(issue.input)}`,
  }),
  notifiers: z.record(name, notifierSchema).optional(),
  notifications: strict({ timeout: duration.optional(), expireAfter: duration.optional() }).optional(),
  defaults: strict({ retry: retrySchema.optional(), timeout: duration.optional() }).optional(),
  projects: z.record(name, projectSchema, {
    error: (issue) =>
      issue.code !== "invalid_type"
        ? undefined
        : issue.input === undefined
        ? "required: declare at least one project"
        : `expected an object of named projects, got ${describeValue(issue.input)}`,
  }),
}, "the configuration object (export default defineConfig({ … }))");
