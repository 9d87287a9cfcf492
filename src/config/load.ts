/** Loads backup.config.ts natively (default export: the config or a function returning it) and validates it. */
import { existsSync, statSync } from "node:fs";
import { dirname, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { stripVTControlCharacters } from "node:util";
import { ConfigError, UsageError } from "../errors.ts";
import {
  ConfigCallbackError,
  ConfigExitRequest,
  ConfigLoadTimeout,
  guardConfigEvaluation,
} from "../runtime/config-guard.ts";
import { importConfigModule } from "../runtime/import-config.ts";
import { parseDuration } from "./duration.ts";
import { fingerprint } from "./fingerprint.ts";
import { machineTimeZone } from "../plan/time.ts";
import { cut } from "./issues.ts";
import type { NormalizedConfig } from "./normalize.ts";
import { redact, rememberEnvSecrets } from "./secrets.ts";
import { validateConfig } from "./validate.ts";

export interface LoadedConfig {
  /** Absolute path of the config file. */
  file: string;
  /** Its folder: relative paths in the config start here. */
  dir: string;
  config: NormalizedConfig;
  fingerprint: string;
  /**
   * The time zone times are shown to people in: the config's top-level `timezone` when it names one, else the
   * machine's (TZ). JSON and plan files stay UTC.
   */
  displayTimeZone?: string;
}

export interface LoadOptions {
  /** Bypass the module cache (config reload). */
  fresh?: boolean;
  /** How long the config may take to load (default: BACKUPCTL_CONFIG_TIMEOUT, else 30 s). */
  timeoutMs?: number;
}

/** The environment variable that sets how long a config may take to load. */
export const configTimeoutVariable = "BACKUPCTL_CONFIG_TIMEOUT";
const defaultConfigTimeoutMs = 30_000;

/** How long a config may take to load: BACKUPCTL_CONFIG_TIMEOUT ("45s", "2m", or seconds), else 30 s. */
export function configLoadTimeoutMs(): number {
  const text = process.env[configTimeoutVariable]?.trim();
  if (!text) return defaultConfigTimeoutMs;
  const ms = /^\d+$/.test(text) ? Number(text) * 1000 : parseDuration(text);
  if (ms === undefined || ms <= 0) {
    throw new UsageError(
      `${configTimeoutVariable}: expected how long a config may take to load, such as 30s, 2m or 90 (seconds), ` +
        `got ${JSON.stringify(text.slice(0, 40))}`,
    );
  }
  return ms;
}

/**
 * Imports and validates a config file. Every failure is a ConfigError (exit 3) naming the file and the fix, including
 * a config that calls process.exit or Deno.exit, or takes longer than the load timeout; what the config prints while
 * loading goes to stderr (runtime/config-guard.ts).
 */
export async function loadConfig(path: string, options: LoadOptions = {}): Promise<LoadedConfig> {
  const file = resolve(path);
  if (!existsSync(file) || !statSync(file).isFile()) {
    throw new ConfigError(file, [{
      path: "",
      message: `config file not found: create one with \`backupctl init\` or pass --config PATH`,
    }]);
  }
  const timeoutMs = options.timeoutMs ?? configLoadTimeoutMs();
  let value: unknown;
  try {
    value = await guardConfigEvaluation(() => evaluate(file, options.fresh ?? false), timeoutMs);
  } catch (error) {
    throw guardProblem(error, file, timeoutMs) ?? error;
  }
  const config = validateConfig(value, file);
  rememberEnvSecrets(config);
  const declared = (value as { timezone?: unknown }).timezone;
  const displayTimeZone = typeof declared === "string" ? config.timezone : machineTimeZone();
  return { file, dir: dirname(file), config, fingerprint: fingerprint(config), displayTimeZone };
}

async function evaluate(file: string, fresh: boolean): Promise<unknown> {
  let module: Record<string, unknown>;
  try {
    module = await importConfigModule(file, fresh);
  } catch (error) {
    throw new ConfigError(file, [{ path: "", message: `cannot load the file: ${describeError(error, file)}` }]);
  }
  if (!("default" in module) || module.default === undefined) {
    throw new ConfigError(file, [{
      path: "",
      message: "no default export: end the file with `export default defineConfig({ … })`",
    }]);
  }
  const exported = module.default;
  try {
    // A function is called; what it returns, or a Promise exported as it is, is awaited.
    return typeof exported === "function" ? await (exported as () => unknown)() : await exported;
  } catch (error) {
    const what = typeof exported === "function" ? "the exported config function threw" : "the exported Promise failed";
    throw new ConfigError(file, [{ path: "", message: `${what}: ${describeError(error, file)}` }]);
  }
}

/** The ConfigError for what the guard stopped: an exit, the deadline, an error thrown from a callback. */
function guardProblem(error: unknown, file: string, timeoutMs: number): ConfigError | undefined {
  const problem = (message: string) => new ConfigError(file, [{ path: "", message }]);
  if (error instanceof ConfigExitRequest) {
    return problem(
      `${error.message} while loading: a config cannot end backupctl; to report a problem, throw an Error ` +
        '(e.g. `throw new Error("set DB_HOST")`)',
    );
  }
  if (error instanceof ConfigLoadTimeout) {
    return problem(
      `did not finish loading within ${humanSeconds(timeoutMs)}: a top-level await that never resolves? ` +
        `(a config that needs longer: set ${configTimeoutVariable}, e.g. ${configTimeoutVariable}=2m)`,
    );
  }
  if (error instanceof ConfigCallbackError) {
    return problem(`cannot load the file: ${describeError(error.thrown, file)}`);
  }
  return undefined;
}

function humanSeconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms} ms`;
}

/** This program's own sources: a location there says nothing about the user's file. */
const ownCode = fileURLToPath(new URL("..", import.meta.url));

/**
 * Why the config could not be loaded, in one line without a stack: the error's first line and, when the runtime
 * says, where in the config's folder (Deno writes it into the message or the stack, Bun into `position`; Bun reports
 * a file's syntax errors together as one AggregateError). Thrown values that are not errors are shown as JSON.
 */
function describeError(error: unknown, file: string): string {
  const errors = (error as { errors?: unknown })?.errors;
  if (Array.isArray(errors) && errors.length > 0) {
    const more = errors.length > 1 ? ` (and ${errors.length - 1} more)` : "";
    return `${describeError(errors[0], file)}${more}`;
  }
  if (typeof error !== "object" || error === null || typeof (error as Error).message !== "string") {
    return redact(cut(typeof error === "string" ? error : jsonOf(error), 300));
  }
  const { name, message, stack } = error as Error & { position?: unknown };
  const head = stripVTControlCharacters(message).split("\n").map((line) => line.trim()).find((line) => line !== "") ??
    "";
  const label = name === "BuildMessage" ? "SyntaxError" : name === "Error" || name === "ResolveMessage" ? "" : name;
  const text = label && !/^\w*Error: /.test(head) ? `${label}: ${head}` : head;
  const where = locationIn(error, `${stripVTControlCharacters(message)}\n${stack ?? ""}`, file);
  // Deno ends some messages with "at file:///…:1:24"; the location is said once, in the same words as elsewhere.
  const said = where ? text.replace(/\s+at \S+:\d+:\d+$/, "") : text;
  return redact(cut(said, 300) + (where ? ` (${where})` : ""));
}

function jsonOf(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** `line 2, column 19` (in the config) or `shared.ts line 1, column 7` (another file in its folder). */
function locationIn(error: object, text: string, file: string): string | undefined {
  const dir = dirname(file);
  const at = (path: string, line: number | string, column: number | string) =>
    `${path === file ? "" : `${relative(dir, path)} `}line ${line}, column ${column}`;
  const position = (error as { position?: { file?: unknown; line?: unknown; column?: unknown } }).position;
  if (position && typeof position.file === "string" && typeof position.line === "number") {
    return at(position.file, position.line, Number(position.column));
  }
  for (const match of text.matchAll(/(file:\/\/\/[^\s:()"'`]+|\/[^\s:()"'`]+):(\d+):(\d+)/g)) {
    const path = match[1].startsWith("file:") ? fileURLToPath(match[1]) : match[1];
    if (path.startsWith(`${dir}/`) && !path.startsWith(ownCode) && !path.includes("/node_modules/")) {
      return at(path, match[2], match[3]);
    }
  }
  return undefined;
}
