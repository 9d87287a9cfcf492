/**
 * SIGTERM and SIGINT while work runs: stop accepting work, stop the children (restic, pg_dump, …) so no stage keeps
 * running unattended, and let the executor record the run `interrupted` and release its locks before the process
 * exits with 128 + the signal's number (143, 130). A second signal, or children that outlive the grace period, are
 * met with SIGKILL.
 */
import { getLogger } from "@logtape/logtape";

interface Killable {
  kill(signal?: NodeJS.Signals): void;
}

const children = new Set<Killable>();
let received: NodeJS.Signals | null = null;
let installed = false;
const log = getLogger(["backupctl", "shutdown"]);

/** How long children get between SIGTERM and SIGKILL. */
const killGraceMs = 10_000;
/** After this long, a process still not done since the signal exits anyway (lock files go in the exit handler). */
const exitDeadlineMs = 30_000;

/** Registers a running child; returns the function that forgets it once it exited. */
export function trackChild(child: Killable): () => void {
  children.add(child);
  if (received) child.kill("SIGTERM");
  return () => children.delete(child);
}

/** The signal that asked this process to stop, or null. */
export function stopRequested(): NodeJS.Signals | null {
  return received;
}

/** The exit code for a stop by signal: 128 + its number. */
export function signalExitCode(signal: NodeJS.Signals): number {
  return signal === "SIGINT" ? 130 : 143;
}

/** Installs the handlers (once) for a command that runs stages: apply, and later watch. */
export function handleStopSignals(): void {
  if (installed) return;
  installed = true;
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    process.on(signal, () => {
      if (received) {
        // Asked twice: no more waiting.
        for (const child of children) child.kill("SIGKILL");
        process.exit(signalExitCode(signal));
      }
      received = signal;
      log.warn("received {signal}: stopping the running stage, recording the run interrupted", { signal });
      process.stderr.write(`\n${signal}: stopping — the running stage is stopped and the run recorded interrupted\n`);
      for (const child of children) child.kill("SIGTERM");
      setTimeout(() => {
        for (const child of children) child.kill("SIGKILL");
      }, killGraceMs).unref();
      setTimeout(() => {
        process.stderr.write(`${signal}: still not stopped after ${exitDeadlineMs / 1000}s; exiting now\n`);
        process.exit(signalExitCode(signal));
      }, exitDeadlineMs).unref();
    });
  }
}
