/**
 * `backupctl completion bash|zsh|fish`: prints the shell's completion script, generated from this program's own
 * commands and options (completion/spec.ts), so it completes exactly what this version accepts. The names of projects,
 * sources, repositories and channels come from the config when Tab is pressed (`backupctl __complete`, complete.ts).
 */
import type { Command } from "commander";
import { bashScript } from "../completion/bash.ts";
import { fishScript } from "../completion/fish.ts";
import { commandSpec } from "../completion/spec.ts";
import { zshScript } from "../completion/zsh.ts";
import { ExitCode } from "../errors.ts";
import type { Output } from "./output.ts";
import { buildProgram } from "./program.ts";

export const description =
  "Print the completion script for bash, zsh or fish: commands, options, and project, source and repository names";

const shells = { bash: bashScript, zsh: zshScript, fish: fishScript } as const;
type Shell = keyof typeof shells;

export function define(program: Command, output: Output, done: (code: number) => void): void {
  program.command("completion").description(description)
    .addArgument(program.createArgument("<shell>", "the shell to complete in").choices(Object.keys(shells)))
    .action(async (shell: Shell) => done(await run(shell, output)));
}

export async function run(shell: Shell, output: Output): Promise<number> {
  // This command's module is loaded alone (program.ts, commandsFor): the script describes every command.
  const program = await buildProgram(output, () => {});
  output.stdout(shells[shell](commandSpec(program)));
  return ExitCode.ok;
}
