/** The command-line program: global options and one subcommand per file in src/cli/. */
import { Command, Option } from "commander";
import pkg from "../../package.json" with { type: "json" };
import type { Output } from "./output.ts";
import { versionLine } from "./version.ts";

/** One module per command, imported only when that command runs (start-up loads nothing it does not need). */
type CommandDefinition = { define(program: Command, output: Output, done: (code: number) => void): void };
const commandModules: Record<string, () => Promise<CommandDefinition>> = {
  init: () => import("./init.ts"),
  validate: () => import("./validate.ts"),
  plan: () => import("./plan.ts"),
  apply: () => import("./apply.ts"),
  backup: () => import("./backup.ts"),
  forget: () => import("./forget.ts"),
  watch: () => import("./watch.ts"),
  status: () => import("./status.ts"),
  history: () => import("./history.ts"),
  snapshots: () => import("./snapshots.ts"),
  restore: () => import("./restore.ts"),
  verify: () => import("./verify.ts"),
  unlock: () => import("./unlock.ts"),
  notify: () => import("./notify.ts"),
  restic: () => import("./restic.ts"),
  diff: () => import("./diff.ts"),
  import: () => import("./import.ts"),
  state: () => import("./state.ts"),
  serve: () => import("./serve.ts"),
  completion: () => import("./completion.ts"),
  __complete: () => import("./complete.ts"),
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
