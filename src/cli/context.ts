/**
 * What every command shares: where the config and state are, the clock (`--now`), project selection, the event log.
 * Observing the state and planning is `apply/prepare.ts`.
 */
import { isAbsolute, join, resolve } from "node:path";
import { configPath, fromInvocationDir } from "./config-path.ts";
import { hostname } from "node:os";
import { loadConfig, type LoadedConfig } from "../config/load.ts";
import { urlHasPassword } from "../config/schema-values.ts";
import { resolveMaybeSecret, withholdVariable } from "../config/secrets.ts";
import { StateUnwritableError, UsageError } from "../errors.ts";
import { type PostgresState, StateStore } from "../state/store.ts";
import { parseLogFormat, setupEventLog } from "../log.ts";

export interface GlobalOptions {
  config?: string;
  stateDir?: string;
  /** `--state-url`: keep the state in this PostgreSQL database (no password in it: argv is visible to everyone). */
  stateUrl?: string;
  debug?: boolean;
  /** `--log-format`: the event log of apply and watch as human lines or JSON lines. */
  logFormat?: string;
  /** `--log-file`: also write the event log as JSON lines to this file, rotated by size. */
  logFile?: string;
}

/** Where output goes; tests and the demo pass their own. */
import { type Output, processOutput } from "./output.ts";
export { type Output, processOutput };

export { configPath, fromInvocationDir };

/** --state-dir, then BACKUPCTL_STATE_DIR, then the config's stateDir, then `<config dir>/.backupctl`. */
export function stateDirFor(options: GlobalOptions, loaded: LoadedConfig): string {
  const explicit = options.stateDir ?? process.env.BACKUPCTL_STATE_DIR;
  if (explicit) return fromInvocationDir(explicit);
  const configured = loaded.config.stateDir;
  if (configured) return isAbsolute(configured) ? configured : resolve(loaded.dir, configured);
  return join(loaded.dir, ".backupctl");
}

/** The variable holding the URL of a PostgreSQL state; a secret, never inherited by children. */
export const stateUrlVariable = "BACKUPCTL_STATE_URL";

/** The default PostgreSQL schema of a state. */
export const defaultStateSchema = "backupctl";

/**
 * The PostgreSQL state to use, or undefined for the SQLite file of the state folder: --state-url, then
 * BACKUPCTL_STATE_URL, then the config's `state.url` (resolved: env() or file()); the schema is the config's
 * `state.schema`, else "backupctl".
 */
export function postgresStateFor(options: GlobalOptions, loaded: LoadedConfig): PostgresState | undefined {
  withholdVariable(stateUrlVariable);
  const schema = loaded.config.state?.schema ?? defaultStateSchema;
  if (options.stateUrl !== undefined) return { url: stateUrlArgument(options.stateUrl, "--state-url"), schema };
  const fromEnvironment = process.env[stateUrlVariable]?.trim();
  if (fromEnvironment) return { url: fromEnvironment, schema };
  const configured = loaded.config.state?.url;
  return configured === undefined ? undefined : { url: resolveMaybeSecret(configured, loaded.dir), schema };
}

/**
 * A PostgreSQL URL given on the command line (`--state-url`, `state push URL`): refused when it holds a password, which
 * every user of the machine could read in the process list.
 */
export function stateUrlArgument(url: string, what: string): string {
  if (urlHasPassword(url)) {
    throw new UsageError(
      `${what}: the URL holds a password, which every user of this machine can read in the process list: put the URL ` +
        `in ${stateUrlVariable} (or the config's state.url as env("…")/file(…)), or leave the password out and give ` +
        "it in PGPASSWORD or a pgpass file (PGPASSFILE, ~/.pgpass)",
    );
  }
  return url;
}

export function hostFor(loaded: LoadedConfig): string {
  return loaded.config.host ?? hostname();
}

export async function load(options: GlobalOptions): Promise<LoadedConfig> {
  return await loadConfig(configPath(options));
}

/**
 * Opens the state; results a crashed or blocked process left in fallback.jsonl are replayed first, and said. A folder
 * that cannot be written fails a command that writes (StateUnwritableError: exit 1, naming the folder and the fix);
 * a command that only reads (`access: "read"`) says so on stderr and goes on from the last written state. A
 * PostgreSQL state is opened read-only by a command that only reads: it creates, migrates and replays nothing.
 */
export async function openStore(
  options: GlobalOptions,
  loaded: LoadedConfig,
  access: "write" | "read" = "write",
): Promise<StateStore> {
  const dir = stateDirFor(options, loaded);
  const postgres = postgresStateFor(options, loaded);
  if (postgres && access === "read") return await StateStore.openPostgresReadOnly(dir, postgres);
  let store: StateStore;
  try {
    store = await StateStore.open(dir, { postgres });
  } catch (error) {
    if (access === "write" || postgres || !(error instanceof StateUnwritableError)) throw error;
    store = await StateStore.openReadOnly(dir, error.message);
    processOutput.stderr(`warning: ${store.unwritable}; shown from the last written state, and nothing is recorded\n`);
    return store;
  }
  const replayed = store.replayed;
  if (replayed && replayed.applied + replayed.rejected > 0) {
    processOutput.stderr(
      `replayed ${replayed.applied} result${replayed.applied === 1 ? "" : "s"} from fallback.jsonl into the state ` +
        `database${replayed.rejected ? ` (${replayed.rejected} set aside in fallback.rejected.jsonl)` : ""}\n`,
    );
  }
  return store;
}

/** Parses --now; an invalid date is a usage error. */
export function parseNow(text: string | undefined): Date | undefined {
  if (text === undefined) return undefined;
  const date = new Date(text);
  if (Number.isNaN(date.getTime()) || !/^\d{4}-\d{2}-\d{2}/.test(text)) {
    throw new UsageError(`--now: expected an ISO-8601 time such as 2026-11-21T03:00:00Z, got "${text}"`);
  }
  return date;
}

/** Validates --project names against the config. */
export function selectProjects(loaded: LoadedConfig, names: string[] | undefined): string[] | undefined {
  if (!names || names.length === 0) return undefined;
  const declared = Object.keys(loaded.config.projects);
  for (const name of names) {
    if (!declared.includes(name)) {
      throw new UsageError(`--project: unknown project "${name}"; declared projects: ${declared.join(", ")}`);
    }
  }
  return names;
}

/** The declared project `name` (enabled or not: a restore reads what a disabled project kept); a usage error if none. */
export function declaredProject(loaded: LoadedConfig, name: string): LoadedConfig["config"]["projects"][string] {
  const project = loaded.config.projects[name];
  if (!project) {
    throw new UsageError(
      `unknown project "${name}"; declared projects: ${Object.keys(loaded.config.projects).join(", ")}`,
    );
  }
  return project;
}

/**
 * The projects named as arguments of a command that runs them on demand (`backup`, `forget`): each declared and
 * enabled, each once, in the order given.
 */
export function namedProjects(loaded: LoadedConfig, names: string[], command: string): string[] {
  const declared = Object.keys(loaded.config.projects);
  for (const name of names) {
    const project = loaded.config.projects[name];
    if (!project) throw new UsageError(`unknown project "${name}"; declared projects: ${declared.join(", ")}`);
    if (!project.enabled) {
      throw new UsageError(
        `project ${name} is disabled (enabled: false): \`${command}\` runs nothing for it; enable it in the config first`,
      );
    }
  }
  return [...new Set(names)];
}

/**
 * The output of a command with an event log (apply): unchanged without `--log-format`/`--log-file`; with them, every
 * stdout line becomes a log record (JSON lines with `--log-format json`, and in the log file). Call `close` at the end.
 */
export async function eventOutput(
  options: GlobalOptions,
  output: Output,
): Promise<{ output: Output; close: () => Promise<void> }> {
  const format = parseLogFormat(options.logFormat);
  if (format === undefined && options.logFile === undefined) return { output, close: () => Promise.resolve() };
  const events = await setupEventLog({
    format: format ?? "text",
    file: options.logFile ? fromInvocationDir(options.logFile) : undefined,
    timestamps: false,
    stdout: output.stdout,
  }, options.debug);
  const log = events.scope();
  return {
    output: {
      stdout: (text: string) => {
        for (const line of text.replace(/\n$/, "").split("\n")) {
          if (line.trim() !== "" || format !== "json") log(line);
        }
      },
      stderr: output.stderr,
    },
    close: events.close,
  };
}

/** A repeatable option's values, in the order given (`-p a -p b`). */
export const collect = (value: string, previous: string[] = []) => [...previous, value];
