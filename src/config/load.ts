/** Loads backup.config.ts natively (default export: the config or a function returning it) and validates it. */
import { existsSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { ConfigError } from "../errors.ts";
import { importConfigModule } from "../runtime/import-config.ts";
import { fingerprint } from "./fingerprint.ts";
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
}

/** Imports and validates a config file. Every failure is a ConfigError (exit 3) naming the file and the fix. */
export async function loadConfig(path: string, options: { fresh?: boolean } = {}): Promise<LoadedConfig> {
  const file = resolve(path);
  if (!existsSync(file) || !statSync(file).isFile()) {
    throw new ConfigError(file, [{
      path: "",
      message: `config file not found: create one with \`backupctl init\` or pass --config PATH`,
    }]);
  }
  const value = await evaluate(file, options.fresh ?? false);
  const config = validateConfig(value, file);
  rememberEnvSecrets(config);
  return { file, dir: dirname(file), config, fingerprint: fingerprint(config) };
}

async function evaluate(file: string, fresh: boolean): Promise<unknown> {
  let module: Record<string, unknown>;
  try {
    module = await importConfigModule(file, fresh);
  } catch (error) {
    throw new ConfigError(file, [{ path: "", message: `cannot load the file: ${firstLines(error)}` }]);
  }
  if (!("default" in module) || module.default === undefined) {
    throw new ConfigError(file, [{
      path: "",
      message: "no default export: end the file with `export default defineConfig({ … })`",
    }]);
  }
  let value: unknown = module.default;
  if (typeof value === "function") {
    try {
      value = await (value as () => unknown)();
    } catch (error) {
      throw new ConfigError(file, [{ path: "", message: `the exported config function threw: ${firstLines(error)}` }]);
    }
  }
  return value;
}

function firstLines(error: unknown): string {
  const text = error instanceof Error
    ? `${error.name === "Error" ? "" : `${error.name}: `}${error.message}`
    : String(error);
  return redact(text.split("\n").slice(0, 3).join(" ").trim());
}
