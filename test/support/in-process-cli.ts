/**
 * Runs backupctl's entry point (src/main.ts `main`) inside the test process and returns what a launch of the CLI
 * would: the exit code main maps the outcome to, and everything written to stdout and stderr meanwhile. For the many
 * cases whose point is how a command maps bad input to a message and an exit code, not the process around it: a
 * launch costs a runtime start-up (about 0.3 s of CPU), this costs the command's own work. Files that use it keep
 * real launches (test/support/cli.ts) for a subset, so that what only a process shows (a crash the runtime prints,
 * the exit itself) is still covered.
 *
 * One run at a time: the streams are the process's own. The environment is left alone (under `deno test --parallel`
 * it is shared with the test files running beside this one), so this is for commands whose outcome depends neither
 * on it nor on whether stdout is a terminal (colours): refusals of bad input, above all.
 */
import { main } from "../../src/main.ts";
import type { CliResult } from "./cli.ts";

type Write = typeof process.stdout.write;

let queue: Promise<unknown> = Promise.resolve();

/** Runs `main(args)` with stdout and stderr captured, after any run before it. */
export function runMain(args: string[]): Promise<CliResult> {
  const run = queue.then(() => captured(args));
  queue = run.catch(() => {});
  return run;
}

async function captured(args: string[]): Promise<CliResult> {
  const streams = { stdout: "", stderr: "" };
  const originals: [NodeJS.WriteStream, Write][] = [
    [process.stdout, process.stdout.write],
    [process.stderr, process.stderr.write],
  ];
  const capture = (key: "stdout" | "stderr"): Write =>
    // Same signature as stream.write: (chunk, [encoding], [callback]); the callback still runs, as after a write.
    ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      streams[key] += typeof chunk === "string" ? chunk : new TextDecoder().decode(chunk);
      const callback = rest.find((item) => typeof item === "function") as (() => void) | undefined;
      if (callback) queueMicrotask(callback);
      return true;
    }) as Write;
  process.stdout.write = capture("stdout");
  process.stderr.write = capture("stderr");
  try {
    const code = await main(args);
    return { code, ...streams };
  } finally {
    for (const [stream, write] of originals) stream.write = write;
  }
}
