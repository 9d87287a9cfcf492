/** The command-line program: global options and one subcommand per file in src/cli/. */
import { Command, Option } from "commander";
import pkg from "../../package.json" with { type: "json" };
import type { Output } from "./context.ts";
import * as apply from "./apply.ts";
import * as diff from "./diff.ts";
import * as init from "./init.ts";
import * as notify from "./notify.ts";
import * as plan from "./plan.ts";
import * as snapshots from "./snapshots.ts";
import * as status from "./status.ts";
import * as unlock from "./unlock.ts";
import * as restore from "./restore.ts";
import * as history from "./history.ts";
import * as importCommand from "./import.ts";
import * as restic from "./restic.ts";
import * as verify from "./verify.ts";
import * as validate from "./validate.ts";
import * as watch from "./watch.ts";

export const version: string = pkg.version;

export const exitCodesHelp = `
Exit codes:
  0   success (plan: no changes)
  1   an action or command failed
  2   plan has changes (only with --detailed-exitcode)
  3   invalid configuration
  4   another run holds the lock
  5   saved plan is stale
  64  usage error
  130 stopped by SIGINT, 143 stopped by SIGTERM (apply: the run recorded interrupted)`;

/** Builds the program; `done` receives the exit code of the command that ran. */
export function buildProgram(output: Output, done: (code: number) => void): Command {
  const program = new Command("backupctl")
    .description("Backup-as-code: plan and apply database and file backups into restic repositories")
    .version(version, "-V, --version", "print the version")
    .addOption(new Option("-c, --config <path>", "config file (default ./backup.config.ts)").env("BACKUPCTL_CONFIG"))
    .addOption(
      new Option("--state-dir <dir>", "state folder (default <config dir>/.backupctl)").env("BACKUPCTL_STATE_DIR"),
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
  for (
    const command of [
      init,
      validate,
      plan,
      apply,
      watch,
      status,
      history,
      snapshots,
      restore,
      verify,
      unlock,
      notify,
      restic,
      diff,
      importCommand,
    ]
  ) {
    command.define(program, output, done);
  }
  for (const sub of program.commands) {
    for (const command of [sub, ...sub.commands]) {
      command.exitOverride().configureOutput({ writeOut: output.stdout, writeErr: output.stderr });
    }
  }
  return program;
}
