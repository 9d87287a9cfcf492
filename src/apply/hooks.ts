/**
 * Hooks: commands run before a project's run (a failure aborts it), after a successful one, or after a failed one,
 * with a time limit and the run's context in the environment. Their output is never parsed, only their exit code.
 * Like every child, a hook does not inherit the config's `env()` variables (exec/child-env.ts): it gets those its
 * `hooks.env` declares.
 */
import type { Hooks } from "../config/types.ts";
import { parseDuration } from "../config/duration.ts";
import { resolveMaybeSecret } from "../config/secrets.ts";
import { transientOutput } from "../exec/failure.ts";
import { ExecError } from "../errors.ts";
import { run } from "../exec/run.ts";

export type HookName = "before" | "after" | "onFailure";

export const defaultHookTimeout = "60s";

export interface HookContext {
  project: string;
  runId: string;
  status: "running" | "succeeded" | "failed";
  configDir: string;
}

/**
 * Runs one hook; throws an ExecError (stderr tail redacted) when it fails or runs out of time, or a SecretError when a
 * secret of its `env` cannot be resolved.
 */
export async function runHook(hooks: Hooks, name: HookName, context: HookContext): Promise<void> {
  const hook = hooks[name];
  if (hook === undefined) return;
  const argv = typeof hook === "string" ? ["bash", "-o", "pipefail", "-c", hook] : hook;
  const timeoutMs = parseDuration(hooks.timeout ?? defaultHookTimeout)!;
  const declared: Record<string, string> = {};
  for (const [key, value] of Object.entries(hooks.env ?? {})) {
    declared[key] = resolveMaybeSecret(value, context.configDir);
  }
  const result = await run(argv, {
    cwd: context.configDir,
    timeoutMs,
    env: {
      ...declared,
      BACKUPCTL_PROJECT: context.project,
      BACKUPCTL_RUN_ID: context.runId,
      BACKUPCTL_STATUS: context.status,
      BACKUPCTL_HOOK: name,
    },
  });
  if (result.code === 0) return;
  const why = result.code === null
    ? `was stopped after ${hooks.timeout ?? defaultHookTimeout}`
    : `exited with ${result.code}`;
  throw new ExecError(
    `${name} hook`,
    result.code,
    result.stderrTail,
    `the ${name} hook ${why}${result.stderrTail ? `: ${result.stderrTail}` : ""}`,
    transientOutput(result.stderrTail),
  );
}
