/**
 * The model of an imported config: what old-config.ts makes of the older tool's projects.yml and write-config.ts
 * renders as a commented backup.config.ts.
 */

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
