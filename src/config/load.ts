/** Loads backup.config.ts natively (default export: the config or a function returning it) and validates it. */
import { existsSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { ConfigError, UsageError } from "../errors.ts";
import {
  ConfigCallbackError,
  ConfigExitRequest,
  ConfigLoadTimeout,
  guardConfigEvaluation,
} from "../runtime/config-guard.ts";
import { importConfigModule } from "../runtime/import-config.ts";
import { describeLoadError } from "../runtime/load-error.ts";
import { parseDuration } from "./duration.ts";
import { fingerprint } from "./fingerprint.ts";
import { machineTimeZone } from "../format/time.ts";
import type { NormalizedConfig } from "./normalize.ts";
import { rememberEnvSecrets } from "./secrets.ts";
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
    throw new ConfigError(file, [{ path: "", message: `cannot load the file: ${describeLoadError(error, file)}` }]);
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
    throw new ConfigError(file, [{ path: "", message: `${what}: ${describeLoadError(error, file)}` }]);
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
    return problem(`cannot load the file: ${describeLoadError(error.thrown, file)}`);
  }
  return undefined;
}

function humanSeconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms} ms`;
}
