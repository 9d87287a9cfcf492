/**
 * A program on the terminal: its standard input, output and error are backupctl's own (`backupctl restic R -- …`),
 * so nothing is captured or bounded. It is tracked like every child (runtime/shutdown.ts), so a stop of backupctl
 * stops it with its own stop signal.
 */
import { spawn } from "node:child_process";
import { constants as osConstants } from "node:os";
import { MissingToolError } from "../errors.ts";
import { trackChild } from "../runtime/shutdown.ts";
import { childEnvironment } from "./child-env.ts";

export interface InteractiveOptions {
  /** Variables added to (or, when undefined, removed from) the inherited environment. */
  env?: Record<string, string | undefined>;
  /** The signal that asks the program to stop when backupctl is stopped (default SIGTERM). */
  stopSignal?: NodeJS.Signals;
  /** The Debian package to name when the program is missing. */
  debianPackage: string;
}

/** Runs `argv` on the terminal; resolves with its exit code, 128 + the signal's number when a signal ended it. */
export async function runInteractive(argv: string[], options: InteractiveOptions): Promise<number> {
  const [program, ...args] = argv;
  const child = spawn(program, args, { stdio: "inherit", env: childEnvironment(options.env) });
  const untrack = trackChild({ kill: (signal) => child.kill(signal), stopSignal: options.stopSignal });
  try {
    return await new Promise<number>((resolve, reject) => {
      child.once("error", (error) =>
        reject(
          (error as NodeJS.ErrnoException).code === "ENOENT"
            ? new MissingToolError(program, options.debianPackage)
            : error,
        ));
      child.once("close", (code, signal) => resolve(code ?? 128 + (signal ? osConstants.signals[signal] ?? 15 : 15)));
    });
  } finally {
    untrack();
  }
}
