/**
 * Where the config is: `--config`, then BACKUPCTL_CONFIG, then ./backup.config.ts, relative to the folder the user ran
 * the command from. Apart from context.ts so that `backupctl __complete`, which runs on every Tab, finds the config
 * exactly as every command does without loading the state's modules.
 */
import { isAbsolute, resolve } from "node:path";

/**
 * The folder the user ran the command from. `deno task backupctl` runs in the project folder, so the task passes
 * the caller's folder in BACKUPCTL_CWD; it is removed from the environment so children never inherit it.
 */
const invocationDir = (() => {
  const fromTask = process.env.BACKUPCTL_CWD;
  delete process.env.BACKUPCTL_CWD;
  return fromTask || process.cwd();
})();

export function fromInvocationDir(path: string): string {
  return isAbsolute(path) ? path : resolve(invocationDir, path);
}

export function configPath(options: { config?: string }): string {
  return fromInvocationDir(options.config ?? process.env.BACKUPCTL_CONFIG ?? "backup.config.ts");
}
