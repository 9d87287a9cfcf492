/**
 * Loads a config in a child process of the same runtime. A long-running process cannot reload a config in place:
 * Deno and Bun cache every module by URL, so a cache-busting query on the config file would still see the old
 * version of each file it imports. A child starts with an empty cache, evaluates the config (and runs any code in it)
 * outside the watch process, and hands back the validated, plain-data configuration as JSON. The child loads under
 * the same guard as any load (an exit, the load timeout, output to stderr); a child that still does not finish (code
 * that never returns, which no timer can interrupt) is killed a little after the load timeout.
 */
import { fileURLToPath } from "node:url";
import { configLoadTimeoutMs, configTimeoutVariable, type LoadedConfig } from "../config/load.ts";
import { redact, rememberEnvSecrets } from "../config/secrets.ts";
import { ConfigError, type ConfigProblem } from "../errors.ts";
import { run } from "../exec/run.ts";
import { runtimeName } from "./detect.ts";

const child = fileURLToPath(new URL("./load-config-child.ts", import.meta.url));
const denoConfig = fileURLToPath(new URL("../../deno.json", import.meta.url));

function childArgv(path: string): string[] {
  return runtimeName === "bun"
    ? ["--no-install", child, path]
    : ["run", "--allow-all", "--quiet", "--no-lock", "--config", denoConfig, child, path];
}

type Outcome = { ok: true; loaded: LoadedConfig } | { ok: false; file: string; problems: ConfigProblem[] };

/** The child's own start-up, on top of the load timeout, before it is killed. */
const startupAllowanceMs = 30_000;

/** Loads `path` in a child process: the LoadedConfig, or a ConfigError with the problems found. */
export async function loadConfigIsolated(path: string, timeoutMs?: number): Promise<LoadedConfig> {
  const loadTimeoutMs = configLoadTimeoutMs();
  const killAfterMs = timeoutMs ?? loadTimeoutMs + startupAllowanceMs;
  // The whole environment, the config's `env()` variables included: the child resolves them as the config asks.
  const result = await run([process.execPath, ...childArgv(path)], {
    env: { ...process.env },
    timeoutMs: killAfterMs,
    stopSignal: "SIGKILL",
  });
  const { stdout, code } = result;
  const stderr = result.stderr.slice(0, 10_000);
  const killed = result.timedOut === true;
  const line = stdout.trim().split("\n").at(-1) ?? "";
  let outcome: Outcome;
  try {
    outcome = JSON.parse(line) as Outcome;
  } catch {
    if (killed) {
      throw new ConfigError(path, [{
        path: "",
        message: `did not finish loading within ${Math.round(killAfterMs / 1000)}s, and its loader was killed: ` +
          `code that never returns, or a top-level await that never resolves? (a config that needs longer: set ` +
          `${configTimeoutVariable})`,
      }]);
    }
    throw new ConfigError(path, [{
      path: "",
      message: `cannot load the file: the loader exited ${code ?? "by a signal"}${
        stderr.trim() ? `: ${redact(stderr.trim().split("\n").slice(-3).join(" "))}` : ""
      }`,
    }]);
  }
  if (!outcome.ok) throw new ConfigError(outcome.file, outcome.problems);
  rememberEnvSecrets(outcome.loaded.config);
  return outcome.loaded;
}
