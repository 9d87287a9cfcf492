/**
 * `backupctl __complete KIND [PROJECT…]` (hidden): the names a completion script offers for the word under the cursor,
 * one a line: `projects`, `sources` (of the projects given), `repositories` (of the projects given, else all),
 * `channels`. The config is loaded as every command loads it (`--config`, BACKUPCTL_CONFIG, ./backup.config.ts), with
 * a short deadline: it runs on every Tab. It writes nothing, resolves no secret, and any failure (no config, a broken
 * one, an unknown kind) prints nothing and exits 0, so a Tab never fills the terminal with an error.
 */
import type { Command } from "commander";
import { completionNames } from "../completion/names.ts";
import { nameKinds } from "../completion/spec.ts";
import { loadConfig } from "../config/load.ts";
import { ExitCode } from "../errors.ts";
import { configPath } from "./config-path.ts";
import type { GlobalOptions } from "./context.ts";
import type { Output } from "./output.ts";

export const description = "Names for shell completion from the config: projects, sources, repositories, channels";

/** How long a config may take to load for a Tab: beyond this the shell simply offers nothing. */
const loadTimeoutMs = 3_000;

export function define(program: Command, output: Output, done: (code: number) => void): void {
  program.command("__complete", { hidden: true }).description(description)
    .argument("[kind]").argument("[projects...]")
    .allowUnknownOption().allowExcessArguments()
    .action(async (kind: string | undefined, projects: string[], _options, command: Command) =>
      done(await run(kind, projects, command.optsWithGlobals<GlobalOptions>(), output))
    );
}

export async function run(
  kind: string | undefined,
  projects: string[],
  options: GlobalOptions,
  output: Output,
): Promise<number> {
  const known = nameKinds.find((candidate) => candidate === kind);
  if (!known) return ExitCode.ok;
  try {
    const loaded = await loadConfig(configPath(options), { timeoutMs: loadTimeoutMs });
    const names = completionNames(loaded.config, known, projects);
    if (names.length > 0) output.stdout(`${names.join("\n")}\n`);
  } catch {
    // Completion is a convenience: a config that does not load offers no names, and says nothing.
  }
  return ExitCode.ok;
}
