/**
 * The older NestJS backupctl's `config/projects.yml`, validated, and the variable names of its `.env`. Objects are
 * loose: keys the importer does not know are reported as warnings (old-config.ts), not errors.
 */
import { parseDocument } from "yaml";
import { type core, z } from "zod";
import { describeValue, formatPath } from "../config/issues.ts";
import { ConfigError } from "../errors.ts";

const names: Record<string, string> = {
  string: "a string",
  number: "a number",
  int: "an integer",
  boolean: "true or false",
  array: "a list",
  object: "a mapping",
  record: "a mapping",
};

/** The kind of a value, never the value itself (it may be a secret). */
function kindOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  return names[typeof value] ?? typeof value;
}

function message(issue: core.$ZodRawIssue): string | undefined {
  switch (issue.code) {
    case "invalid_type": {
      const expected = names[issue.expected] ?? issue.expected;
      return issue.input === undefined
        ? `required: expected ${expected}`
        : `expected ${expected}, got ${kindOf(issue.input)}`;
    }
    case "too_small":
      if (issue.origin === "string") return "must not be empty";
      if (issue.origin === "array") {
        return `needs at least ${issue.minimum} item${Number(issue.minimum) === 1 ? "" : "s"}`;
      }
      return `expected at least ${issue.minimum}`;
    case "invalid_union":
      // Left to this default: the values of notification.config.
      return issue.input === undefined
        ? "required"
        : `expected a string, a number or true/false, got ${kindOf(issue.input)}`;
    default:
      return undefined;
  }
}

/** One of a few words; the value is shown, as these fields never hold secrets. */
function oneOf<const T extends readonly [string, ...string[]]>(values: T, said: string) {
  return z.enum(values, {
    error: (issue) => issue.input === undefined ? `required: ${said}` : `${said}, got ${describeValue(issue.input)}`,
  });
}

/** Text the YAML may give as a number (`user: 1000`, an unquoted numeric password). */
const scalar = z.union([z.string(), z.number()], {
  error: (issue) =>
    issue.input === undefined ? "required: expected a string" : `expected a string, got ${kindOf(issue.input)}`,
}).transform(String);
const count = z.number().int({ error: "expected a whole number" }).min(0, { error: "expected a whole number ≥ 0" });
const minutes = z.number().int({ error: "expected whole minutes" }).min(1, { error: "expected at least 1 minute" });

const databaseSchema = z.looseObject({
  type: oneOf(["postgres", "mysql", "mongodb"], "expected postgres, mysql or mongodb"),
  host: scalar.optional(),
  port: z.union([z.number(), z.string()], {
    error: (issue) => `expected a port number, got ${kindOf(issue.input)}`,
  }).optional(),
  name: scalar.optional(),
  user: scalar.optional(),
  password: scalar.optional(),
  dump_timeout_minutes: minutes.optional(),
}).superRefine((database, context) => {
  if (database.type !== "mongodb" && (database.name === undefined || database.name === "")) {
    context.addIssue({ code: "custom", path: ["name"], message: `required: the database name (${database.type})` });
  }
});

const projectSchema = z.looseObject({
  name: scalar.pipe(z.string().min(1)),
  enabled: z.boolean().optional(),
  cron: z.string().min(1),
  timeout_minutes: minutes.optional(),
  docker_network: scalar.optional(),
  database: databaseSchema.optional(),
  compression: z.looseObject({ enabled: z.boolean().optional() }).optional(),
  assets: z.looseObject({ paths: z.array(scalar.pipe(z.string().min(1))).nullish() }).optional(),
  restic: z.looseObject({
    repository_path: scalar.pipe(z.string().min(1)),
    password: scalar.optional(),
    snapshot_mode: oneOf(["combined", "separate"], "expected combined or separate").optional(),
  }),
  retention: z.looseObject({
    local_days: count.optional(),
    keep_daily: count.optional(),
    keep_weekly: count.optional(),
    keep_monthly: count.optional(),
  }),
  encryption: z.looseObject({
    enabled: z.boolean().optional(),
    type: oneOf(["gpg"], "expected gpg").optional(),
    recipient: scalar.optional(),
  }).optional(),
  hooks: z.looseObject({ pre_backup: z.string().nullish(), post_backup: z.string().nullish() }).optional(),
  verification: z.looseObject({ enabled: z.boolean().optional() }).optional(),
  notification: z.looseObject({
    type: oneOf(["slack", "email", "webhook"], "expected slack, email or webhook"),
    config: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()]), {
      error: (issue) => `expected a mapping of settings, got ${kindOf(issue.input)}`,
    }).nullish(),
  }).optional(),
  monitor: z.looseObject({
    type: oneOf(["uptime-kuma"], "expected uptime-kuma"),
    config: z.looseObject({ push_token: scalar.pipe(z.string().min(1)) }),
  }).optional(),
});

const fileSchema = z.object({ projects: z.array(projectSchema).min(1) }, {
  error: (issue) =>
    issue.input === undefined || issue.input === null
      ? "the file is empty: expected a top-level projects: list"
      : `expected a mapping with a top-level projects: list, got ${kindOf(issue.input)}`,
});

export type OldConfig = z.infer<typeof fileSchema>;
export type OldProject = OldConfig["projects"][number];

/** Keys the importer knows, per object; anything else is reported and left out. */
export const knownKeys: Record<string, string[]> = {
  project: Object.keys(projectSchema.shape),
  database: ["type", "host", "port", "name", "user", "password", "dump_timeout_minutes"],
  restic: ["repository_path", "password", "snapshot_mode"],
  retention: ["local_days", "keep_daily", "keep_weekly", "keep_monthly"],
  encryption: ["enabled", "type", "recipient"],
  hooks: ["pre_backup", "post_backup"],
  monitor: ["type", "config"],
  notification: ["type", "config"],
};

/**
 * Parses and validates projects.yml. A syntax error or a value of the wrong kind is a ConfigError (exit 3) naming
 * where: `line 4, column 7` or `projects[2].database.type`. Messages never quote a value that could be a secret.
 */
export function parseOldConfig(text: string, file: string): OldConfig {
  const document = parseDocument(text, { uniqueKeys: true });
  if (document.errors.length > 0) {
    throw new ConfigError(
      file,
      document.errors.map((error) => {
        const position = error.linePos?.[0];
        // The message's first line only: the rest quotes the offending line, which may hold a password.
        const said = error.message.split("\n")[0].replace(/ at line \d+, column \d+:?$/, "");
        return { path: position ? `line ${position.line}, column ${position.col}` : "", message: `YAML: ${said}` };
      }),
    );
  }
  let value: unknown;
  try {
    value = document.toJS({ maxAliasCount: 1000 });
  } catch (error) {
    throw new ConfigError(file, [{ path: "", message: `YAML: ${(error as Error).message.split("\n")[0]}` }]);
  }
  const parsed = fileSchema.safeParse(value, { error: message, reportInput: true });
  if (!parsed.success) {
    throw new ConfigError(
      file,
      parsed.error.issues.map((issue) => ({ path: formatPath(issue.path), message: issue.message })),
    );
  }
  return parsed.data;
}

/** The variable names a .env file defines (`NAME=…`, `export NAME=…`); values, quoted over lines or not, are skipped. */
export function envFileNames(text: string): Set<string> {
  const found = new Set<string>();
  const lines = text.split(/\r?\n/);
  for (let index = 0; index < lines.length; index++) {
    const match = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(lines[index]);
    if (!match) continue;
    found.add(match[1]);
    const quote = match[2][0];
    if (quote !== '"' && quote !== "'") continue;
    // A quoted value may span lines (a PEM key): skip to its closing quote so its lines are not read as names.
    let rest = match[2].slice(1);
    while (!closes(rest, quote) && ++index < lines.length) rest = lines[index];
  }
  return found;
}

function closes(text: string, quote: string): boolean {
  for (let i = 0; i < text.length; i++) {
    if (quote === '"' && text[i] === "\\") i++;
    else if (text[i] === quote) return true;
  }
  return false;
}
