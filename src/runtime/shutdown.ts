/**
 * SIGTERM and SIGINT while work runs: stop accepting work, stop the children (restic, pg_dump, …) so no stage keeps
 * running unattended, and let the executor record the run `interrupted` and release its locks before the process
 * exits with 128 + the signal's number (143, 130). A second signal, or children that outlive the grace period, are
 * met with SIGKILL.
 */
import { getLogger } from "@logtape/logtape";

interface Killable {
  kill(signal?: NodeJS.Signals): void;
  /** The signal that asks it to stop (default SIGTERM; restic takes SIGINT, on which it removes its lock). */
  stopSignal?: NodeJS.Signals;
}

const children = new Set<Killable>();
let received: NodeJS.Signals | null = null;
let forced = false;
let installed = false;
const log = getLogger(["backupctl", "shutdown"]);

/** How long children get between SIGTERM and SIGKILL. */
const killGraceMs = 10_000;
/** After this long, a process still not done since the signal exits anyway (lock files go in the exit handler). */
const exitDeadlineMs = 30_000;

/** Registers a running child; returns the function that forgets it once it exited. */
export function trackChild(child: Killable): () => void {
  children.add(child);
  if (received) child.kill(child.stopSignal ?? "SIGTERM");
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

/** True once the grace period ran out and the running stage's children were stopped. */
export function stopForced(): boolean {
  return forced;
}

/** Stops the children now: each one's stop signal (SIGTERM, SIGINT for restic), then SIGKILL after killGraceMs. */
function stopChildren(): void {
  forced = true;
  for (const child of children) child.kill(child.stopSignal ?? "SIGTERM");
  setTimeout(() => {
    for (const child of children) child.kill("SIGKILL");
  }, killGraceMs).unref();
}

/**
 * Installs the handlers (once) for a command that runs stages. `graceMs` 0 (apply): the running stage is stopped at
 * once. Above 0 (watch): the running stage may finish within the grace period (no new stage starts), then it is
 * stopped. A second signal, or a process still running `exitDeadlineMs` after the stage was stopped, exits at once.
 */
export function handleStopSignals(options: { graceMs?: number } = {}): void {
  if (installed) return;
  installed = true;
  const graceMs = options.graceMs ?? 0;
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    process.on(signal, () => {
      if (received) {
        // Asked twice: no more waiting.
        for (const child of children) child.kill("SIGKILL");
        process.exit(signalExitCode(signal));
      }
      received = signal;
      const hardExit = () =>
        setTimeout(() => {
          process.stderr.write(`${signal}: still not stopped after ${exitDeadlineMs / 1000}s; exiting now\n`);
          process.exit(signalExitCode(signal));
        }, exitDeadlineMs).unref();
      if (graceMs <= 0) {
        log.warn("received {signal}: stopping the running stage, recording the run interrupted", { signal });
        process.stderr.write(`\n${signal}: stopping — the running stage is stopped and the run recorded interrupted\n`);
        stopChildren();
        hardExit();
        return;
      }
      log.warn("received {signal}: no new work; the running stage may finish within {grace}s", {
        signal,
        grace: graceMs / 1000,
      });
      process.stderr.write(
        `\n${signal}: stopping — no new work starts; a running stage may finish within ${graceMs / 1000}s\n`,
      );
      setTimeout(() => {
        if (children.size > 0) {
          process.stderr.write(`${signal}: the grace period is over; stopping the running stage\n`);
          stopChildren();
        }
        hardExit();
      }, graceMs).unref();
    });
  }
}
