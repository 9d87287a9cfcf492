/** Spawns the real backupctl CLI with the runtime running the tests (Deno or Bun), like an operator would. */
import { execFile, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

export const repoRoot = fileURLToPath(new URL("../..", import.meta.url)).replace(/\/$/, "");
const main = `${repoRoot}/src/main.ts`;

/** The V8 flags bin/backupctl gives Deno (test/cli/launcher_test.ts keeps the two the same). */
export const denoV8Flags = "--v8-flags=--max-semi-space-size=4";

export function cliArgv(): string[] {
  if ("Bun" in globalThis) return [process.execPath, "--no-install", main];
  return [process.execPath, "run", "--allow-all", "--quiet", denoV8Flags, "--config", `${repoRoot}/deno.json`, main];
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs the CLI. With `timeoutMs`, a run still going then is killed (SIGKILL): it fails with code -1 and stderr says
 * so, instead of hanging the suite.
 */
export function runCli(
  args: string[],
  options: { env?: Record<string, string | undefined>; cwd?: string; timeoutMs?: number } = {},
): Promise<CliResult & { ms: number }> {
  const [program, ...prefix] = cliArgv();
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries({ ...process.env, NO_COLOR: "1", ...options.env })) {
    if (value !== undefined) env[key] = value;
  }
  const started = Date.now();
  return new Promise((resolve) => {
    execFile(
      program,
      [...prefix, ...args],
      { env, cwd: options.cwd, maxBuffer: 64 * 1024 * 1024, timeout: options.timeoutMs, killSignal: "SIGKILL" },
      (error, stdout, stderr) => {
        const killed = Boolean(error && (error as { killed?: boolean }).killed);
        const code = error ? (typeof error.code === "number" ? error.code : killed ? -1 : 1) : 0;
        resolve({
          code,
          stdout: String(stdout),
          stderr: String(stderr) + (killed ? `\n[killed after ${options.timeoutMs} ms]` : ""),
          ms: Date.now() - started,
        });
      },
    );
  });
}

/** Runs any program and returns its exit code and output (for restic and sqlite3 checks). */
export function runTool(
  program: string,
  args: string[],
  options: { env?: Record<string, string>; input?: string } = {},
): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = execFile(program, args, {
      env: { ...process.env, ...options.env } as Record<string, string>,
      maxBuffer: 64 * 1024 * 1024,
    }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
    if (options.input !== undefined) child.stdin!.end(options.input);
  });
}

/** The CLI started in the background: its pid for signals, and its outcome once it exits. */
export interface BackgroundCli {
  pid: number;
  /** Everything it printed so far. */
  output(): string;
  done: Promise<CliResult & { signal: NodeJS.Signals | null }>;
}

/** Starts the CLI without waiting for it (for kill -9, SIGTERM and lock contention tests). */
export function spawnCli(args: string[], options: { env?: Record<string, string | undefined> } = {}): BackgroundCli {
  const [program, ...prefix] = cliArgv();
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries({ ...process.env, NO_COLOR: "1", ...options.env })) {
    if (value !== undefined) env[key] = value;
  }
  const child = spawn(program, [...prefix, ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (chunk) => (stdout += chunk));
  child.stderr!.on("data", (chunk) => (stderr += chunk));
  const done = new Promise<CliResult & { signal: NodeJS.Signals | null }>((resolve) => {
    child.once("close", (code, signal) => resolve({ code: code ?? -1, signal, stdout, stderr }));
  });
  return { pid: child.pid!, output: () => stdout + stderr, done };
}

/** Polls until `check` returns a value other than undefined/false, or fails after `timeoutMs` naming `what`. */
export async function waitFor<T>(
  what: string,
  check: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
