/**
 * A program on the terminal: its standard input, output and error are backupctl's own (`backupctl restic R -- …`),
 * so nothing is captured or bounded. It is tracked like every child (runtime/shutdown.ts), so a stop of backupctl
 * stops it with its own stop signal.
 */
import { constants as osConstants } from "node:os";
import { MissingToolError } from "../errors.ts";
import { trackChild } from "../runtime/shutdown.ts";
import { $ } from "zx/core";
import { childEnvironment } from "./child-env.ts";
import { which } from "./which.ts";

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
  const [program] = argv;
  if (which(program) === undefined) throw new MissingToolError(program, options.debianPackage);
  // zx's shell `exec`s the program: the child zx tracks is the program itself, which a stop signals.
  const child = $({
    stdio: "inherit",
    quiet: true,
    nothrow: true,
    verbose: false,
    env: childEnvironment(options.env),
    prefix: `${$.prefix ?? ""}exec `,
  })`${argv}`;
  const pid = child.pid;
  const untrack = trackChild({
    kill: (signal) => {
      try {
        if (pid !== undefined) process.kill(pid, signal);
      } catch {
        // gone already
      }
    },
    stopSignal: options.stopSignal,
  });
  try {
    const output = await child;
    const signal = output.signal;
    return output.exitCode ?? 128 + (signal ? osConstants.signals[signal] ?? 15 : 15);
  } finally {
    untrack();
  }
}
