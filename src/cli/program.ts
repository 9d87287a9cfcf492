/** The command-line program: global options and one subcommand per file in src/cli/. */
import { Command, Option } from "commander";
import pkg from "../../package.json" with { type: "json" };
import type { Output } from "./output.ts";
import { versionLine } from "./version.ts";
import { importLater } from "../runtime/later.ts";

/**
 * One module per command, imported only when that command runs (start-up loads nothing it does not need): through
 * importLater, since Deno reads ahead every literal `import("./x.ts")` and would load all commands' modules first.
 */
type CommandDefinition = { define(program: Command, output: Output, done: (code: number) => void): void };
const command = (path: string) => () => importLater<CommandDefinition>(new URL(path, import.meta.url));
const commandModules: Record<string, () => Promise<CommandDefinition>> = {
  init: command("./init.ts"),
  validate: command("./validate.ts"),
  plan: command("./plan.ts"),
  apply: command("./apply.ts"),
  backup: command("./backup.ts"),
  forget: command("./forget.ts"),
  watch: command("./watch.ts"),
  status: command("./status.ts"),
  history: command("./history.ts"),
  snapshots: command("./snapshots.ts"),
  restore: command("./restore.ts"),
  verify: command("./verify.ts"),
  unlock: command("./unlock.ts"),
  notify: command("./notify.ts"),
  restic: command("./restic.ts"),
  diff: command("./diff.ts"),
  import: command("./import.ts"),
  state: command("./state.ts"),
  serve: command("./serve.ts"),
  completion: command("./completion.ts"),
  __complete: command("./complete.ts"),
};

/** Global options that take a value (the word after them is not the command's name). */
const valueOptions = new Set(["-c", "--config", "--state-dir", "--state-url", "--log-format", "--log-file"]);

/**
 * The commands a command line needs defined: the one it names; none for a bare `--version`; every one otherwise
 * (help, an unknown word: commander then lists them all or suggests the nearest).
 */
export function commandsFor(argv: readonly string[]): string[] {
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i];
    if (word === "--") break;
    if (word.startsWith("-")) {
      if (valueOptions.has(word)) i++;
      continue;
    }
    return Object.hasOwn(commandModules, word) ? [word] : Object.keys(commandModules);
  }
  return argv.includes("-V") || argv.includes("--version") ? [] : Object.keys(commandModules);
}

export const version: string = pkg.version;

export const exitCodesHelp = `
Exit codes:
  0   success (plan: no changes)
  1   an action or command failed
  2   plan has changes; apply held deletions for approval (only with --detailed-exitcode)
  3   invalid configuration
  4   another run holds the lock
  5   saved plan is stale
  64  usage error
  130 stopped by SIGINT, 143 stopped by SIGTERM (apply: the run recorded interrupted)`;

/**
 * Builds the program with the given commands (default: all of them, in the order `--help` lists them); `done`
 * receives the exit code of the command that ran.
 */
export async function buildProgram(
  output: Output,
  done: (code: number) => void,
  commands: readonly string[] = Object.keys(commandModules),
): Promise<Command> {
  const program = new Command("backupctl")
    .description("Backup-as-code: plan and apply database and file backups into restic repositories")
    .version(versionLine(), "-V, --version", "print the version, git revision and runtime")
    .addOption(new Option("-c, --config <path>", "config file (default ./backup.config.ts)").env("BACKUPCTL_CONFIG"))
    .addOption(
      new Option("--state-dir <dir>", "state folder (default <config dir>/.backupctl)").env("BACKUPCTL_STATE_DIR"),
    )
    .option(
      "--state-url <url>",
      "keep the state in this PostgreSQL database (no password in it; else BACKUPCTL_STATE_URL, then the config's state)",
    )
    .option("--debug", "show stack traces and debug logs")
    .addOption(
      new Option("--log-format <format>", "apply and watch output: text, or json lines (watch: json off a terminal)")
        .choices(["text", "json"]).env("BACKUPCTL_LOG_FORMAT"),
    )
    .addOption(
      new Option("--log-file <path>", "also log apply and watch as JSON lines to this file (rotated at 10 MiB, 5 kept)")
        .env("BACKUPCTL_LOG_FILE"),
    )
    .showHelpAfterError("(run backupctl --help for usage)")
    .addHelpText("after", exitCodesHelp)
    .configureOutput({ writeOut: output.stdout, writeErr: output.stderr })
    .exitOverride();
  const modules = await Promise.all(commands.map((name) => commandModules[name]()));
  for (const module of modules) module.define(program, output, done);
  for (const sub of program.commands) {
    for (const command of [sub, ...sub.commands]) {
      command.exitOverride().configureOutput({ writeOut: output.stdout, writeErr: output.stderr });
    }
  }
  return program;
}
