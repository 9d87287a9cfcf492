/**
 * Reads the older NestJS backupctl's `config/projects.yml` (and, optionally, the names in its `.env`) and maps it onto
 * this project's config model, ready for `write-config.ts` to render as a backup.config.ts.
 *
 * No secret value is ever carried over: `${VAR}` placeholders in secret fields become `env("VAR")`, and a secret
 * written literally in the YAML becomes `env("<PROJECT>_…")` with a warning naming the variable to export. Plain
 * settings the old tool read from its environment (`${VAR}` in a host, HETZNER_SSH_HOST, TIMEZONE, …) are read the
 * same way when the written config loads, through its `setting("VAR")` function. The `.env` only says which variables
 * exist; its values are never read into memory.
 */
import { parseDocument } from "yaml";
import { type core, z } from "zod";
import { describeValue, formatPath } from "../config/issues.ts";
import { namePattern } from "../config/names.ts";
import { ConfigError, type ConfigProblem } from "../errors.ts";

// ---------------------------------------------------------------------------------------------------------------------
// The model write-config.ts renders.

/** Literal text, or a variable the old tool substituted (`${NAME}`), read again when the written config loads. */
export type Part = string | { variable: string; fallback?: string };

/** A value in the written config. */
export type Value =
  /** Written as it is. */
  | { kind: "literal"; value: string | number | boolean }
  /** Text read from the environment when the config loads: `setting("X")` or `` `sftp:${setting("X")}…` ``. */
  | { kind: "text"; parts: Part[] }
  /** `Number(setting("X"))`. */
  | { kind: "number"; variable: string; fallback?: string }
  /** `setting("X", "false") === "true"`. */
  | { kind: "flag"; variable: string; fallback?: string }
  /** A secret reference, `env("X")`: resolved only when a child process needs it. */
  | { kind: "env"; name: string }
  /** A secret read from a file, `file(PATH)`. */
  | { kind: "file"; path: Value };

/** A comment in the written config; TODOs are what the operator must review. */
export interface Note {
  todo: boolean;
  text: string;
}

/**
 * The SFTP server every old repository was on, from the old tool's HETZNER_SSH_* variables: the start of each
 * repository's url (`sftp:USER@HOST:` or `sftp://USER@HOST:PORT/`) and its ssh settings, shared by all repositories.
 */
export interface StorageBox {
  url: Part[];
  ssh: { key: Value; hostKeyChecking: "accept-new" };
  notes: Note[];
}

/** A repository on the storage box: its url is the box's followed by `path`. */
export interface ImportedRepository {
  name: string;
  path: Part[];
  password: Value;
}

interface NotifierBase {
  name: string;
  notes: Note[];
}
export interface SlackImport extends NotifierBase {
  type: "slack";
  webhookUrl: Value;
}
export interface EmailImport extends NotifierBase {
  type: "email";
  smtp: { host: Value; port?: Value; secure?: Value; user?: Value; password?: Value };
  from: Value;
  to: Value[];
}
export interface WebhookImport extends NotifierBase {
  type: "webhook";
  url: Value;
}
export interface UptimeKumaImport extends NotifierBase {
  type: "uptimeKuma";
  pushUrl: Value;
}
export type ImportedNotifier = SlackImport | EmailImport | WebhookImport | UptimeKumaImport;

export type ImportedSource =
  | {
    type: "postgres" | "mysql" | "mongodb";
    host?: Value;
    port?: Value;
    database?: Value;
    user?: Value;
    password?: Value;
  }
  | { type: "files"; paths: Value[] };

/** Where a project's comments go: before the key of that name, at the top, or at the end of the project. */
export type ProjectSlot =
  | "start"
  | "sources"
  | "repositories"
  | "retention"
  | "encrypt"
  | "hooks"
  | "notify"
  | "timeout"
  | "end";

export interface ImportedProject {
  name: string;
  enabled: boolean;
  schedule: Value;
  sources: ImportedSource[];
  repository: string;
  retention: Partial<Record<"daily" | "weekly" | "monthly", number>> & { within?: string };
  encrypt?: { recipient: Value };
  hooks?: { before?: string; after?: string; timeout: string };
  notify: string[];
  timeout?: string;
  notes: Partial<Record<ProjectSlot, Note[]>>;
}

export interface ImportedConfig {
  /** The projects.yml as the operator named it, and the .env when one was given. */
  from: string;
  envFile?: string;
  /** Comments at the top of the config object. */
  notes: Note[];
  storageBox: StorageBox;
  timezone?: Value;
  retry?: { attempts?: Value; baseDelay?: Value };
  repositories: ImportedRepository[];
  notifiers: ImportedNotifier[];
  projects: ImportedProject[];
  /** For stderr: what was not carried over, and what to export. Never a secret value. */
  warnings: string[];
  /** Every environment variable the written config reads, sorted. */
  variables: string[];
}

/** How many TODOs the written config will carry. */
export function countTodos(config: ImportedConfig): number {
  const notes = [
    ...config.notes,
    ...config.storageBox.notes,
    ...config.notifiers.flatMap((n) => n.notes),
    ...config.projects.flatMap((p) => Object.values(p.notes).flat()),
  ];
  return notes.filter((note) => note.todo).length;
}

// ---------------------------------------------------------------------------------------------------------------------
// The old format, validated. Objects are loose: keys the importer does not know are reported as warnings, not errors.

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
type OldProject = OldConfig["projects"][number];

/** Keys the importer knows, per object; anything else is reported and left out. */
const knownKeys: Record<string, string[]> = {
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

// ---------------------------------------------------------------------------------------------------------------------
// The mapping.

export interface MapOptions {
  /** projects.yml as the operator named it (for comments and messages). */
  from: string;
  /** Its absolute path, for ConfigError. */
  file: string;
  /** The .env as named, and the variable names it defines; without them no variable is known to exist. */
  envFile?: string;
  envNames?: Set<string>;
}

const variablePattern = /^[A-Za-z_][A-Za-z0-9_]*$/;
const placeholder = /\$\{([^}]*)\}/g;

/** Variables the old tool read itself: never a name made up for a literal secret. */
const oldGlobals = [
  "RESTIC_PASSWORD",
  "SLACK_WEBHOOK_URL",
  "WEBHOOK_URL",
  "UPTIME_KUMA_BASE_URL",
  "TIMEZONE",
  "BACKUP_RETRY_COUNT",
  "BACKUP_RETRY_DELAY_MS",
  ...["HOST", "USER", "PORT", "KEY_PATH"].map((key) => `HETZNER_SSH_${key}`),
  ...["HOST", "PORT", "SECURE", "USER", "PASSWORD", "FROM", "TO"].map((key) => `SMTP_${key}`),
];

/** Global variables of the old tool that have no place in the new config, and why. */
const retiredGlobals: Record<string, string> = {
  BACKUP_BASE_DIR: "dumps stream into restic, no local dump folder is kept",
  DAILY_SUMMARY_CRON: "there is a summary.daily event instead: add it to a notifier's events if you want a summary",
  NOTIFICATION_TYPE: "projects without a notification: section used it; give them notify: [...] by hand",
  ENCRYPTION_ENABLED: "projects without an encryption: section used it (with GPG_RECIPIENT); give them encrypt by hand",
  GPG_RECIPIENT: "see ENCRYPTION_ENABLED",
};

const notificationKeys: Record<string, string[]> = {
  slack: ["webhook_url"],
  webhook: ["url", "webhook_url"],
  email: ["smtp_host", "smtp_port", "smtp_secure", "smtp_user", "user", "password", "smtp_password", "to", "from"],
};

/** Maps a validated projects.yml onto the new model. Problems only the mapping can see are a ConfigError (exit 3). */
export function mapOldConfig(old: OldConfig, options: MapOptions): ImportedConfig {
  return new Mapper(old, options).map();
}

class Mapper {
  private readonly problems: ConfigProblem[] = [];
  private readonly warnings: string[] = [];
  /** Variables the config reads → where first; `required` ones are warned about when the .env lacks them. */
  private readonly variables = new Map<string, { where: string; required: boolean }>();
  /** Names taken: every placeholder and .env name, and every name made up for a literal secret. */
  private readonly taken = new Set<string>();
  private readonly repositories = new Map<string, ImportedRepository & { rawPassword?: string; project: string }>();
  private readonly notifiers = new Map<string, ImportedNotifier>();

  constructor(private readonly old: OldConfig, private readonly options: MapOptions) {
    collectPlaceholders(old, this.taken);
    for (const name of [...(options.envNames ?? []), ...oldGlobals]) this.taken.add(name);
  }

  map(): ImportedConfig {
    const notes: Note[] = [];
    const seen = new Map<string, number>();
    const projects = this.old.projects.map((project, index) => {
      const mapped = this.project(project, index);
      const first = seen.get(mapped.name);
      if (first !== undefined) {
        this.problems.push({
          path: formatPath(["projects", index, "name"]),
          message: `"${mapped.name}" is also the name of projects[${first}]: project names must be unique`,
        });
      }
      seen.set(mapped.name, index);
      return mapped;
    });
    if (this.problems.length > 0) throw new ConfigError(this.options.file, this.problems);

    const timezone = this.timezone(notes);
    const storageBox = this.storageBox();
    const retry = this.retry();
    for (const [name, why] of Object.entries(retiredGlobals)) {
      if (this.has(name)) this.warnings.push(`${this.options.envFile} sets ${name}: not imported (${why})`);
    }
    this.checkVariables();
    return {
      from: this.options.from,
      envFile: this.options.envFile,
      notes,
      storageBox,
      timezone,
      retry,
      repositories: [...this.repositories.values()].map(({ rawPassword: _, project: __, ...repository }) => repository),
      notifiers: [...this.notifiers.values()],
      projects,
      warnings: this.warnings,
      variables: [...this.variables.keys()].sort(),
    };
  }

  /** True or false when a .env was given, undefined when nothing is known. */
  private has(name: string): boolean | undefined {
    return this.options.envNames?.has(name);
  }

  private project(old: OldProject, index: number): ImportedProject {
    const at = (...keys: PropertyKey[]) => formatPath(["projects", index, ...keys]);
    const name = this.projectName(old.name, at("name"));
    const notes: ImportedProject["notes"] = {};
    const note = (slot: ProjectSlot, text: string, todo = true) => {
      (notes[slot] ??= []).push({ todo, text });
      if (todo) this.warnings.push(`${name}: ${text}`);
    };
    this.unknownKeys(old, "project", [index], note);

    const sources: ImportedSource[] = [];
    if (old.database) {
      const database = old.database;
      this.unknownKeys(database, "database", [index, "database"], note);
      const where = (key: string) => at("database", key);
      sources.push({
        type: database.type,
        host: database.host === undefined ? undefined : this.text(database.host, where("host")),
        port: database.port === undefined ? undefined : this.port(database.port, where("port")),
        database: database.name === undefined ? undefined : this.text(database.name, where("name")),
        user: database.user === undefined ? undefined : this.text(database.user, where("user")),
        password: database.password === undefined
          ? undefined
          : this.secret(database.password, where("password"), `${envName(name)}_DB_PASSWORD`, "database password"),
      });
    }
    const paths = old.assets?.paths ?? [];
    if (paths.length > 0) {
      sources.push({ type: "files", paths: paths.map((path, i) => this.text(path, at("assets", "paths", i))) });
    }
    if (sources.length === 0) {
      this.problems.push({ path: at(), message: "needs a database: or assets.paths to back up" });
    }
    if (old.docker_network !== undefined) {
      note(
        "sources",
        `docker_network "${old.docker_network}": backupctl does not join Docker networks. Run it in a container ` +
          `attached to "${old.docker_network}" (compose: networks), or make the database reachable from where it runs.`,
      );
    }

    this.unknownKeys(old.restic, "restic", [index, "restic"], note);
    const repository = this.repository(old, index, name);
    if (old.compression !== undefined) {
      note(
        "repositories",
        "compression: the old tool never used it; restic compresses every repository itself (dumps are streamed " +
          "uncompressed so it can deduplicate). Nothing to set.",
      );
    }
    if (old.restic.snapshot_mode !== undefined) {
      note(
        "repositories",
        `restic.snapshot_mode "${old.restic.snapshot_mode}": each source is now its own snapshot, tagged ` +
          "project=NAME and source=NAME. Nothing to set.",
      );
    }

    this.unknownKeys(old.retention, "retention", [index, "retention"], note);
    const retention: ImportedProject["retention"] = {};
    if (old.retention.keep_daily) retention.daily = old.retention.keep_daily;
    if (old.retention.keep_weekly) retention.weekly = old.retention.keep_weekly;
    if (old.retention.keep_monthly) retention.monthly = old.retention.keep_monthly;
    if (Object.keys(retention).length === 0) {
      retention.within = "100y";
      note(
        "retention",
        "retention: no keep_daily/keep_weekly/keep_monthly above 0, so the old tool forgot nothing; this keeps " +
          "every snapshot for 100 years. Set a real policy.",
      );
    }
    if (old.retention.local_days !== undefined) {
      note(
        "retention",
        `retention.local_days ${old.retention.local_days}: no local dump files are kept any more (dumps stream ` +
          "into restic). Nothing to set.",
      );
    }

    let encrypt: ImportedProject["encrypt"];
    if (old.encryption) {
      this.unknownKeys(old.encryption, "encryption", [index, "encryption"], note);
      if (old.encryption.enabled === true) {
        if (old.encryption.recipient === undefined || old.encryption.recipient === "") {
          this.problems.push({ path: at("encryption", "recipient"), message: "required when encryption is enabled" });
        } else {
          encrypt = { recipient: this.text(old.encryption.recipient, at("encryption", "recipient")) };
          note(
            "encrypt",
            "gpg: the recipient's public key must be in the keyring of the user running backupctl (or give " +
              'keyFile: "keys/backup.pub.asc"); restores and drills need secretKey: env(…).',
            false,
          );
        }
      }
    }

    let hooks: ImportedProject["hooks"];
    if (old.hooks) {
      this.unknownKeys(old.hooks, "hooks", [index, "hooks"], note);
      for (const key of ["pre_backup", "post_backup"] as const) {
        // bash expands ${NAME} from backupctl's environment when the hook runs, as the old tool substituted it.
        for (const match of (old.hooks[key] ?? "").matchAll(placeholder)) {
          if (variablePattern.test(match[1])) this.variable(match[1], at("hooks", key));
        }
      }
      if (old.hooks.pre_backup || old.hooks.post_backup) {
        hooks = {
          ...(old.hooks.pre_backup ? { before: old.hooks.pre_backup } : {}),
          ...(old.hooks.post_backup ? { after: old.hooks.post_backup } : {}),
          timeout: "60s",
        };
      }
    }

    const notify: string[] = [];
    if (old.notification) {
      this.unknownKeys(old.notification, "notification", [index, "notification"], note);
      notify.push(this.notifier(old.notification, index, name));
    }
    if (old.monitor) {
      this.unknownKeys(old.monitor, "monitor", [index, "monitor"], note);
      notify.push(this.monitor(old.monitor.config.push_token, index, name));
    }
    if (old.verification?.enabled === true) {
      note(
        "end",
        "verification.enabled: the old check could not fail. A restore drill needs a scratch database to restore " +
          'into, never the project\'s own: add verify: { every: "7d", into: postgres({ database: "scratch" }), ' +
          'check: "SELECT count(*) FROM …" } (docs/restore.md).',
      );
    }

    const limits = [old.timeout_minutes, old.database?.dump_timeout_minutes].filter((m) => m !== undefined);
    const timeout = limits.length > 0 ? `${Math.max(...limits)}m` : undefined;
    if (old.timeout_minutes !== undefined || old.database?.dump_timeout_minutes !== undefined) {
      const said = [
        old.timeout_minutes === undefined ? "" : `timeout_minutes ${old.timeout_minutes} (the old tool only warned)`,
        old.database?.dump_timeout_minutes === undefined
          ? ""
          : `dump_timeout_minutes ${old.database.dump_timeout_minutes} (its limit for the dump)`,
      ].filter(Boolean).join(" and ");
      note("timeout", `The larger of ${said}; here the time limit of each backup attempt.`, false);
    }

    return {
      name,
      enabled: old.enabled ?? true,
      schedule: this.text(old.cron, at("cron")),
      sources,
      repository,
      retention,
      encrypt,
      hooks,
      notify,
      timeout,
      notes,
    };
  }

  private projectName(raw: string, where: string): string {
    if (namePattern.test(raw)) return raw;
    const name = raw.replace(/[^A-Za-z0-9_.-]+/g, "-").replace(/^[^A-Za-z0-9]+/, "").slice(0, 64) || "project";
    this.warnings.push(
      `${where}: ${
        describeValue(raw)
      } is not a valid name here (letters, digits, '.', '_', '-'); imported as "${name}"`,
    );
    return name;
  }

  /** One repository per distinct repository_path on the storage box the HETZNER_SSH_* variables name. */
  private repository(old: OldProject, index: number, project: string): string {
    const path = old.restic.repository_path;
    const rawPassword = old.restic.password;
    const existing = this.repositories.get(path);
    if (existing) {
      if (existing.rawPassword !== rawPassword) {
        this.warnings.push(
          `${formatPath(["projects", index, "restic", "password"])}: ${project} shares repository_path with ` +
            `${existing.project} but not its password; the repository "${existing.name}" uses ${existing.project}'s`,
        );
      }
      return existing.name;
    }

    const pathParts = this.parts(path, formatPath(["projects", index, "restic", "repository_path"]));
    const password = rawPassword === undefined
      ? this.envRef("RESTIC_PASSWORD", formatPath(["projects", index, "restic", "password"]))
      : this.secret(
        rawPassword,
        formatPath(["projects", index, "restic", "password"]),
        `${envName(project)}_RESTIC_PASSWORD`,
        "restic password",
      );
    const name = this.uniqueRepositoryName(repositoryName(path, project));
    this.repositories.set(path, { name, path: pathParts, password, rawPassword, project });
    return name;
  }

  private uniqueRepositoryName(base: string): string {
    const taken = new Set([...this.repositories.values()].map((r) => r.name));
    let name = base;
    for (let n = 2; taken.has(name); n++) name = `${base}-${n}`;
    return name;
  }

  /** A notifier per distinct (type, config), shared by every project that had the same. Returns its name. */
  private notifier(notification: NonNullable<OldProject["notification"]>, index: number, project: string): string {
    const config = notification.config ?? {};
    const key = JSON.stringify([notification.type, Object.entries(config).sort(([a], [b]) => a.localeCompare(b))]);
    const existing = this.notifiers.get(key);
    if (existing) return existing.name;

    const at = (setting: string) => formatPath(["projects", index, "notification", "config", setting]);
    const name = this.uniqueNotifierName(notification.type, project);
    const notes: Note[] = [];
    const unknown = Object.keys(config).filter((k) => !notificationKeys[notification.type].includes(k));
    if (unknown.length > 0) {
      const text = `notification.config ${unknown.join(", ")} (from ${project}): not known to the importer, not ` +
        "imported; port by hand if needed (docs/configuration.md#notifiers).";
      notes.push({ todo: true, text });
      this.warnings.push(`notifier ${name}: ${text}`);
    }
    const given = (setting: string): string | undefined => {
      const value = config[setting];
      return value === undefined ? undefined : String(value);
    };
    let notifier: ImportedNotifier;
    switch (notification.type) {
      case "slack": {
        const url = given("webhook_url");
        notifier = {
          name,
          notes,
          type: "slack",
          webhookUrl: url === undefined
            ? this.envRef("SLACK_WEBHOOK_URL", at("webhook_url"))
            : this.secret(url, at("webhook_url"), `${envName(project)}_SLACK_WEBHOOK_URL`, "Slack webhook URL"),
        };
        break;
      }
      case "webhook": {
        const setting = given("url") !== undefined ? "url" : "webhook_url";
        const url = given(setting);
        notifier = {
          name,
          notes,
          type: "webhook",
          url: url === undefined
            ? this.envRef("WEBHOOK_URL", at(setting))
            : this.secret(url, at(setting), `${envName(project)}_WEBHOOK_URL`, "webhook URL"),
        };
        break;
      }
      case "email":
        notifier = { name, notes, ...this.email(config, at, name, project, notes) };
        break;
    }
    this.notifiers.set(key, notifier);
    return name;
  }

  /** The old tool's SMTP settings: the project's notification.config first, else its SMTP_* variables. */
  private email(
    config: Record<string, string | number | boolean>,
    at: (setting: string) => string,
    name: string,
    project: string,
    notes: Note[],
  ): Omit<EmailImport, "name" | "notes"> {
    const given = (setting: string) => config[setting] === undefined ? undefined : String(config[setting]);
    const where = `notifiers.${name}`;
    /** A plain setting from the config, else from an SMTP_* variable (with the old default when there was one). */
    const plain = (setting: string, variable: string, fallback?: string): Value | undefined => {
      const value = given(setting);
      if (value !== undefined) return this.text(value, at(setting));
      if (this.has(variable) === false) return fallback === undefined ? undefined : literal(fallback);
      return { kind: "text", parts: [this.variable(variable, where, fallback)] };
    };
    const host = plain("smtp_host", "SMTP_HOST") ?? { kind: "text", parts: [this.variable("SMTP_HOST", where)] };
    let port: Value | undefined;
    const rawPort = config.smtp_port;
    if (rawPort !== undefined) {
      port = this.port(typeof rawPort === "number" ? rawPort : String(rawPort), at("smtp_port"));
    } else if (this.has("SMTP_PORT") !== false) port = this.numberVariable("SMTP_PORT", where, "587");
    let secure: Value | undefined;
    if (typeof config.smtp_secure === "boolean") secure = literal(config.smtp_secure);
    else if (config.smtp_secure !== undefined) {
      const parts = this.parts(String(config.smtp_secure), at("smtp_secure"));
      secure = parts.length === 1 && typeof parts[0] !== "string"
        ? { kind: "flag", variable: parts[0].variable }
        : literal(String(config.smtp_secure) === "true");
    } else if (this.has("SMTP_SECURE") !== false) {
      this.variable("SMTP_SECURE", where, "false");
      secure = { kind: "flag", variable: "SMTP_SECURE", fallback: "false" };
    }
    // Login settings are optional: without a .env saying the old tool had them, they are left out (and said).
    const userSetting = given("smtp_user") !== undefined ? "smtp_user" : "user";
    const user = given(userSetting) !== undefined
      ? this.text(given(userSetting)!, at(userSetting))
      : this.has("SMTP_USER")
      ? { kind: "text" as const, parts: [this.variable("SMTP_USER", where)] }
      : undefined;
    const passwordSetting = given("password") !== undefined ? "password" : "smtp_password";
    const rawPassword = given(passwordSetting);
    const password = rawPassword !== undefined
      ? this.secret(rawPassword, at(passwordSetting), `${envName(project)}_SMTP_PASSWORD`, "SMTP password")
      : this.has("SMTP_PASSWORD")
      ? this.envRef("SMTP_PASSWORD", where)
      : undefined;
    const unsure = [
      ...(user === undefined && this.has("SMTP_USER") === undefined
        ? [["SMTP_USER", 'user: setting("SMTP_USER")']]
        : []),
      ...(password === undefined && this.has("SMTP_PASSWORD") === undefined
        ? [["SMTP_PASSWORD", 'password: env("SMTP_PASSWORD")']]
        : []),
    ];
    if (unsure.length > 0) {
      const text = `no --env: if the old .env set ${unsure.map(([variable]) => variable).join(" and ")}, add ` +
        `${unsure.map(([, code]) => code).join(" and ")} to smtp.`;
      notes.push({ todo: true, text });
      this.warnings.push(`notifier ${name}: ${text}`);
    }
    const from = plain("from", "SMTP_FROM", "backupctl@localhost")!;
    const rawTo = given("to");
    const to = rawTo !== undefined
      ? rawTo.split(",").map((address) => address.trim()).filter(Boolean).map((address) => this.text(address, at("to")))
      : [{ kind: "text" as const, parts: [this.variable("SMTP_TO", where)] }];
    return {
      type: "email",
      smtp: {
        host,
        ...(port ? { port } : {}),
        ...(secure ? { secure } : {}),
        ...(user ? { user } : {}),
        ...(password ? { password } : {}),
      },
      from,
      to,
    };
  }

  /** An Uptime Kuma push monitor per distinct token: pushUrl is the whole URL, from a variable the operator sets. */
  private monitor(token: string, index: number, project: string): string {
    const key = JSON.stringify(["uptime-kuma", token]);
    const existing = this.notifiers.get(key);
    if (existing) return existing.name;
    const where = formatPath(["projects", index, "monitor", "config", "push_token"]);
    const name = this.uniqueNotifierName("kuma", project);
    const variable = this.derived(`${envName(project)}_KUMA_PUSH_URL`, where);
    const parts = this.split(token, where);
    const tokenSaid = parts.length === 1 && typeof parts[0] !== "string"
      ? `the value of ${parts[0].variable}`
      : `the push_token of ${project} in ${this.options.from}`;
    const text =
      `pushUrl is the monitor's whole push URL: export ${variable}=<UPTIME_KUMA_BASE_URL>/api/push/<token> ` +
      `with ${tokenSaid} (the old tool joined them; status, msg and ping are added when pushing).`;
    this.warnings.push(
      `notifier ${name}: export ${variable} with the whole push URL (the old tool joined ` +
        `UPTIME_KUMA_BASE_URL and ${
          parts.length === 1 && typeof parts[0] !== "string" ? parts[0].variable : "the token"
        })`,
    );
    this.notifiers.set(key, {
      name,
      type: "uptimeKuma",
      pushUrl: { kind: "env", name: variable },
      notes: [{ todo: true, text }],
    });
    return name;
  }

  private uniqueNotifierName(base: string, project: string): string {
    const taken = new Set([...this.notifiers.values()].map((n) => n.name));
    if (!taken.has(base) && base !== "kuma") return base;
    let name = `${base}-${project}`.slice(0, 64);
    for (let n = 2; taken.has(name); n++) name = `${base}-${project}-${n}`.slice(0, 64);
    return name;
  }

  /** The old tool's one SFTP server, from its HETZNER_SSH_* variables, read when the config loads as it did. */
  private storageBox(): StorageBox {
    const where = "storageBox";
    const user = this.variable("HETZNER_SSH_USER", where);
    const host = this.variable("HETZNER_SSH_HOST", where);
    const knownPort = this.has("HETZNER_SSH_PORT");
    const port = knownPort ? this.variable("HETZNER_SSH_PORT", where) : undefined;
    const key = this.variable("HETZNER_SSH_KEY_PATH", where);
    // sftp://user@host:port/ + /absolute/path (a path without the leading / is relative to the login's home).
    const url: Part[] = port ? ["sftp://", user, "@", host, ":", port, "/"] : ["sftp:", user, "@", host, ":"];
    const text = "The old tool's storage box: HETZNER_SSH_USER, HETZNER_SSH_HOST" + (port ? ", HETZNER_SSH_PORT" : "") +
      " and HETZNER_SSH_KEY_PATH are read when this file loads, as the old tool did: export them or write their " +
      "values here" +
      (knownPort === undefined
        ? " (if the old .env set HETZNER_SSH_PORT, the url must name it: sftp://USER@HOST:PORT/ before each path; " +
          "or import again with --env .env)"
        : "") +
      ". Then pin its host key: add knownHosts: [what `ssh-keyscan -p PORT HOST` prints] and drop hostKeyChecking " +
      '"accept-new" (trust on first use, as the old tool did).';
    this.warnings.push("the storage box's host key is trusted on first use, as before: pin it with ssh knownHosts");
    return {
      url: mergeParts(url),
      ssh: { key: { kind: "file", path: { kind: "text", parts: [key] } }, hostKeyChecking: "accept-new" },
      notes: [{ todo: true, text }],
    };
  }

  /** TIMEZONE from the .env, read when the config loads. */
  private timezone(notes: Note[]): Value | undefined {
    const known = this.has("TIMEZONE");
    if (known === true) {
      notes.push({ todo: false, text: "The old .env's TIMEZONE: the time zone the schedules are read in." });
      return { kind: "text", parts: [this.variable("TIMEZONE", "timezone")] };
    }
    if (known === false) {
      notes.push({
        todo: false,
        text:
          `${this.options.envFile} sets no TIMEZONE: schedules are read in UTC (timezone: "Europe/Berlin" to change).`,
      });
      return undefined;
    }
    const text = "schedules are read in UTC. If the old .env set TIMEZONE, set timezone to it here (or import again " +
      "with --env .env).";
    notes.push({ todo: true, text });
    this.warnings.push(`no --env given: ${text}`);
    return undefined;
  }

  /** BACKUP_RETRY_COUNT and BACKUP_RETRY_DELAY_MS, when the .env sets them. */
  private retry(): ImportedConfig["retry"] {
    const retry: NonNullable<ImportedConfig["retry"]> = {};
    if (this.has("BACKUP_RETRY_COUNT")) retry.attempts = this.numberVariable("BACKUP_RETRY_COUNT", "defaults.retry");
    if (this.has("BACKUP_RETRY_DELAY_MS")) {
      retry.baseDelay = { kind: "text", parts: [this.variable("BACKUP_RETRY_DELAY_MS", "defaults.retry"), "ms"] };
    }
    return Object.keys(retry).length > 0 ? retry : undefined;
  }

  private checkVariables(): void {
    const envNames = this.options.envNames;
    if (!envNames) return;
    for (const [name, { where, required }] of this.variables) {
      if (required && !envNames.has(name)) {
        this.warnings.push(
          `${name} (${where}) is not defined in ${this.options.envFile}: export it before running backupctl`,
        );
      }
    }
  }

  /** Unknown keys are left out, said once on stderr and as a TODO at the project's top. */
  private unknownKeys(
    object: Record<string, unknown>,
    kind: string,
    path: PropertyKey[],
    note: (slot: ProjectSlot, text: string) => void,
  ): void {
    const unknown = Object.keys(object).filter((key) => !knownKeys[kind].includes(key));
    if (unknown.length === 0) return;
    note(
      "start",
      `${formatPath(["projects", ...path])}: ${unknown.map((key) => describeValue(key)).join(", ")} not known to the ` +
        "importer and not imported; port by hand if it mattered.",
    );
  }

  // Values -------------------------------------------------------------------------------------------------------------

  /** Text with its placeholders split out (not yet recorded as read); one that is not a plain `${NAME}` is a problem. */
  private split(raw: string, where: string): Part[] {
    const parts: Part[] = [];
    let last = 0;
    for (const match of raw.matchAll(placeholder)) {
      if (match.index > last) parts.push(raw.slice(last, match.index));
      const name = match[1];
      if (variablePattern.test(name)) {
        parts.push({ variable: name });
      } else {
        this.problems.push({
          path: where,
          message: `\${${name.slice(0, 40)}} is not a \${NAME} placeholder (letters, digits, _; no defaults)`,
        });
        parts.push(match[0]);
      }
      last = match.index + match[0].length;
    }
    if (last < raw.length) parts.push(raw.slice(last));
    return mergeParts(parts);
  }

  /** Text with its placeholders split out, each recorded as read when the config loads. */
  private parts(raw: string, where: string): Part[] {
    return this.split(raw, where).map((part) => typeof part === "string" ? part : this.variable(part.variable, where));
  }

  /** Plain text: written as it is, or read from the environment when the config loads if it had placeholders. */
  private text(raw: string, where: string): Value {
    const parts = this.parts(raw, where);
    return parts.every((part) => typeof part === "string") ? literal(parts.join("")) : { kind: "text", parts };
  }

  private port(raw: string | number, where: string): Value {
    if (typeof raw === "number" || /^\d+$/.test(raw)) return literal(Number(raw));
    const parts = this.parts(raw, where);
    if (parts.length === 1 && typeof parts[0] !== "string") return { kind: "number", variable: parts[0].variable };
    this.problems.push({ path: where, message: "expected a port number or a ${NAME} placeholder" });
    return literal(0);
  }

  /**
   * A secret: `${VAR}` alone becomes env("VAR"); anything else (a literal, or text around a placeholder) is not
   * copied: the config reads env(<derived>) and a warning says to export it. The value is never repeated.
   */
  private secret(raw: string, where: string, derived: string, what: string): Value {
    const parts = this.split(raw, where);
    if (parts.length === 1 && typeof parts[0] !== "string") return this.envRef(parts[0].variable, where);
    const name = this.derived(derived, where);
    this.warnings.push(
      `${where}: the ${what} is written in ${this.options.from}; it was not copied: export ${name} with it ` +
        `(the config reads env("${name}"))`,
    );
    return { kind: "env", name };
  }

  /** A secret from a variable of the old tool's environment. */
  private envRef(name: string, where: string): Value {
    this.variable(name, where);
    return { kind: "env", name };
  }

  private numberVariable(name: string, where: string, fallback?: string): Value {
    this.variable(name, where, fallback);
    return { kind: "number", variable: name, fallback };
  }

  /** Records that the config reads `name`; one with a fallback need not be set. */
  private variable(name: string, where: string, fallback?: string): { variable: string; fallback?: string } {
    const seen = this.variables.get(name);
    if (!seen) this.variables.set(name, { where, required: fallback === undefined });
    else if (fallback === undefined) seen.required = true;
    this.taken.add(name);
    return fallback === undefined ? { variable: name } : { variable: name, fallback };
  }

  /** A variable name made up for a literal secret, unlike any other the config or the .env uses. */
  private derived(base: string, where: string): string {
    let name = base;
    for (let n = 2; this.taken.has(name); n++) name = `${base}_${n}`;
    this.taken.add(name);
    this.variables.set(name, { where, required: false });
    return name;
  }
}

function literal(value: string | number | boolean): Value {
  return { kind: "literal", value };
}

/** Adjacent literal parts joined. */
function mergeParts(parts: Part[]): Part[] {
  const merged: Part[] = [];
  for (const part of parts) {
    const previous = merged.at(-1);
    if (typeof part === "string" && typeof previous === "string") merged[merged.length - 1] = previous + part;
    else if (part !== "") merged.push(part);
  }
  return merged;
}

/** `my-app` → `MY_APP`: the prefix of variable names made up for a project's literal secrets. */
export function envName(name: string): string {
  const upper = name.toUpperCase().replace(/[^A-Z0-9]+/g, "_").replace(/^_+|_+$/g, "");
  return /^[A-Z_]/.test(upper) ? upper : `P_${upper}`;
}

/** `/backups/vinsware` → `vinsware`; the project's name when the path's last part is no valid name. */
function repositoryName(path: string, project: string): string {
  const last = path.replace(/\/+$/, "").split("/").at(-1) ?? "";
  return namePattern.test(last) && !last.includes("${") ? last : project;
}

function collectPlaceholders(value: unknown, into: Set<string>): void {
  if (typeof value === "string") {
    for (const match of value.matchAll(placeholder)) into.add(match[1]);
  } else if (Array.isArray(value)) {
    for (const item of value) collectPlaceholders(item, into);
  } else if (typeof value === "object" && value !== null) {
    for (const item of Object.values(value)) collectPlaceholders(item, into);
  }
}
