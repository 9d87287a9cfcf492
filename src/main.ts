/**
 * backupctl's entry point: parse the command line, run one command, map its outcome to an exit code.
 * The only place that ends the process.
 */
import { CommanderError } from "commander";
import { processOutput } from "./cli/output.ts";
import { buildProgram, commandsFor } from "./cli/program.ts";
import { redact } from "./config/secrets.ts";
import { environmentError } from "./environment-errors.ts";
import { BackupctlError, ExitCode, exitCodeFor } from "./errors.ts";
import { setupLogging } from "./log.ts";

export async function main(argv: string[]): Promise<number> {
  const debug = argv.includes("--debug");
  await setupLogging(debug);
  let code: number = ExitCode.ok;
  const program = await buildProgram(processOutput, (result) => (code = result), commandsFor(argv));
  try {
    await program.parseAsync(argv, { from: "user" });
    return code;
  } catch (error) {
    if (error instanceof CommanderError) {
      // commander already printed its message; help and version are successes.
      return error.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
    }
    // A full disk or a read-only folder that no command turned into its own message yet is still not a bug. One that a
    // command did turn into its message (an EnvironmentError carries the errno code too) keeps its words.
    const reported = error instanceof BackupctlError ? error : environmentError(error) ?? error;
    reportError(reported, debug);
    return exitCodeFor(reported);
  }
}

function reportError(error: unknown, debug: boolean): void {
  if (error instanceof BackupctlError) {
    process.stderr.write(`Error: ${redact(error.message)}\n`);
  } else {
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`Error: ${redact(message)}\n`);
    if (!debug) process.stderr.write("(this is a bug or an unexpected failure; run with --debug for details)\n");
  }
  if (debug && error instanceof Error && error.stack) process.stderr.write(`${redact(error.stack)}\n`);
}

if (import.meta.main) {
  const code = await main(process.argv.slice(2));
  process.exit(code);
}
