/**
 * Loads a config in a child process of the same runtime. A long-running process cannot reload a config in place:
 * Deno and Bun cache every module by URL, so a cache-busting query on the config file would still see the old
 * version of each file it imports. A child starts with an empty cache, evaluates the config (and runs any code in it)
 * outside the watch process, and hands back the validated, plain-data configuration as JSON. The child loads under
 * the same guard as any load (an exit, the load timeout, output to stderr); a child that still does not finish (code
 * that never returns, which no timer can interrupt) is killed a little after the load timeout.
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { configLoadTimeoutMs, configTimeoutVariable, type LoadedConfig } from "../config/load.ts";
import { redact, rememberEnvSecrets } from "../config/secrets.ts";
import { ConfigError, type ConfigProblem } from "../errors.ts";
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
  const { stdout, stderr, code, killed } = await new Promise<
    { stdout: string; stderr: string; code: number | null; killed: boolean }
  >(
    (resolve, reject) => {
      const process_ = spawn(process.execPath, childArgv(path), {
        stdio: ["ignore", "pipe", "pipe"],
        env: process.env,
      });
      let killed = false;
      const timer = setTimeout(() => {
        killed = true;
        process_.kill("SIGKILL");
      }, killAfterMs);
      let out = "";
      let err = "";
      process_.stdout.setEncoding("utf8").on("data", (chunk: string) => (out += chunk));
      process_.stderr.setEncoding("utf8").on("data", (chunk: string) => (err += chunk.slice(0, 10_000)));
      process_.once("error", (error) => {
        clearTimeout(timer);
        reject(error);
      });
      process_.once("close", (exitCode) => {
        clearTimeout(timer);
        resolve({ stdout: out, stderr: err, code: exitCode, killed });
      });
    },
  );
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
