/**
 * The value formats the configuration schema is built from (schema.ts): strict objects, names, ports, hosts,
 * durations, cron expressions, time zones and secret references. Each failure says what to write instead; a field that
 * may hold a secret never echoes its value. The formats carry a title and a description (`.meta()`) that
 * scripts/reference-docs.ts prints in docs/config-reference.md.
 */
import { z } from "zod";
import { isResticDuration, parseDuration } from "./duration.ts";
import { describeValue, encodeUnknownKeys } from "./issues.ts";
import { scheduleProblem, timezoneProblem } from "./schedule.ts";

/** A strict object whose unknown keys become one problem each, with the known keys to suggest from. */
export function strict<T extends z.ZodRawShape>(shape: T, what = "an object") {
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

export const nonEmpty = z.string().min(1);
export const stringList = z.array(nonEmpty);

export const namePattern = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
export const nameRule = "use letters, digits, '.', '_' or '-' (at most 64, starting with a letter or digit)";
export const name = z.string().regex(namePattern, {
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

export const port = integer((input) => `expected an integer 1–65535, got ${describeValue(input)}`, 1, 65535);

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

export const host = nonEmpty.superRefine((text, ctx) => {
  const problem = hostProblem(text);
  if (problem) ctx.addIssue({ code: "custom", message: problem });
}).meta({
  title: "host",
  description: 'A host name or an IP address, without a port (that goes in `port`): `"db.internal"`, `"10.0.0.5"`',
});

export const positiveCount = (what: string) =>
  integer((input) => `expected ${what} (an integer ≥ 0), got ${describeValue(input)}`, 0);

export const duration = z.string({
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

export const resticDuration = z.string().refine(isResticDuration, {
  error: (issue) =>
    `expected a restic duration such as "14d", "12h" or "1y6m" (y, m = months, d, h), got ${
      describeValue(issue.input)
    }`,
}).meta({
  title: "restic duration",
  description: 'restic\'s notation: `y`, `m` (months), `d`, `h`, in that order: `"14d"`, `"12h"`, `"1y6m"` (no weeks)',
});

export const cron = z.string({
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

export const timezone = z.string().superRefine((text, ctx) => {
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

/** Names of the PostgreSQL schema of a state: plain lower-case identifiers, which need no quoting anywhere. */
export const stateSchemaPattern = /^[a-z_][a-z0-9_]{0,62}$/;

/** Whether a text is a URL with a password in it (a literal must not be: the password belongs in env or a file). */
export function urlHasPassword(text: string): boolean {
  try {
    return new URL(text).password !== "";
  } catch {
    return /^[a-z][a-z0-9+.-]*:\/\/[^/@\s]*:[^/@\s]*@/i.test(text);
  }
}

/** A value that may be plain or a secret reference (URLs that can embed credentials). */
export const maybeSecret = z.union([nonEmpty, secretRef], {
  error: (issue) =>
    `${issue.input === undefined ? "required: " : ""}expected a string or a secret reference env("NAME") / file(PATH)`,
});
export const envMap = z.record(
  z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { error: () => "expected an environment variable name" }).meta({
    title: "variable name",
    description: "An environment variable name: letters, digits and `_`, not starting with a digit",
  }),
  maybeSecret,
);

/** A tagged value named by its `type`, else the value itself (for "expected … made by …, got …"). */
export function describeTyped(value: unknown): string {
  if (value && typeof value === "object" && !Array.isArray(value) && "type" in value) {
    return `type ${describeValue((value as { type: unknown }).type)}`;
  }
  return describeValue(value);
}
