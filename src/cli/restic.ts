/**
 * `backupctl restic REPOSITORY -- ARGS…`: restic itself, with the repository's environment from the config (URL,
 * password, options, SSH access), so an operator never copies a password into a shell. Output streams through;
 * restic's exit code is backupctl's.
 */
import type { Command } from "commander";
import { repositoryFor } from "../apply/context.ts";
import { UsageError } from "../errors.ts";
import { handleStopSignals } from "../runtime/shutdown.ts";
import { type GlobalOptions, load, openStore, type Output } from "./context.ts";

export const description = "Run restic against a declared repository with its credentials: restic R -- ARGS";

export function define(program: Command, output: Output, done: (code: number) => void): void {
  program.command("restic").description(description)
    .argument("<repository>", "a repository declared in the config")
    .argument("[args...]", "restic's own arguments, after -- (so that their options are restic's)")
    .action(async (repository: string, args: string[], _options, command: Command) =>
      done(await run(repository, args, command.optsWithGlobals<GlobalOptions>(), output))
    );
}

export async function run(name: string, args: string[], options: GlobalOptions, _output: Output): Promise<number> {
  const loaded = await load(options);
  if (!(name in loaded.config.repositories)) {
    throw new UsageError(
      `unknown repository "${name}"; declared: ${Object.keys(loaded.config.repositories).join(", ")}`,
    );
  }
  if (args.length === 0) throw new UsageError(`say what restic should do: backupctl restic ${name} -- snapshots`);
  handleStopSignals();
  const store = await openStore(options, loaded);
  try {
    return await repositoryFor({ loaded, store }, name).passthrough(args);
  } finally {
    await store.close();
  }
}
