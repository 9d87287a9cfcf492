/**
 * The error taxonomy. Every failure a user can cause or meet is one of these; `main.ts` maps them to exit codes in
 * one place (`exitCodeFor`). Anything else is an internal error: exit 1 with a message, a stack only with --debug.
 */

/** Process exit codes, as documented in docs/cli.md and DESIGN.md. */
export const ExitCode = {
  ok: 0,
  failed: 1,
  changes: 2,
  invalidConfig: 3,
  locked: 4,
  stalePlan: 5,
  usage: 64,
  /** Stopped by SIGINT (128 + 2). */
  interrupted: 130,
  /** Stopped by SIGTERM (128 + 15). */
  terminated: 143,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** One problem found in a configuration, at a path such as `projects.shop.sources[0].port`. */
export interface ConfigProblem {
  path: string;
  message: string;
}

/** Base class: errors whose message is meant for the operator as it is. */
export class BackupctlError extends Error {
  readonly exitCode: ExitCode = ExitCode.failed;
  /**
   * Whether the same work may succeed later without anyone fixing anything (a lock another process holds, a server
   * that does not answer): set where a failure is classified — from an exit code and the program's own output —
   * and read by the retry loop, never guessed from the message.
   */
  readonly transient: boolean = false;
}

/** The configuration cannot be loaded or is invalid. Carries every problem found, each with its path. */
export class ConfigError extends BackupctlError {
  override readonly exitCode = ExitCode.invalidConfig;
  constructor(readonly file: string, readonly problems: ConfigProblem[]) {
    super(formatProblems(file, problems));
    this.name = "ConfigError";
  }
}

/** At most this many problems are listed; a generated config can have 100 000, and a flood hides the first ones. */
const listedProblems = 50;

function formatProblems(file: string, problems: ConfigProblem[]): string {
  const noun = problems.length === 1 ? "problem" : "problems";
  const lines = problems.slice(0, listedProblems).map((p) => `  ${p.path ? `${p.path}: ` : ""}${p.message}`);
  if (problems.length > listedProblems) {
    lines.push(`  … and ${problems.length - listedProblems} more (fix these first, then run validate again)`);
  }
  return `invalid configuration ${file} (${problems.length} ${noun}):\n${lines.join("\n")}`;
}

/** The command line itself is wrong (unknown flag, bad value). */
export class UsageError extends BackupctlError {
  override readonly exitCode = ExitCode.usage;
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** A restore or drill was pointed at a snapshot backupctl does not know to be complete (exit 1). */
export class IncompleteSnapshotError extends BackupctlError {
  constructor(message: string) {
    super(message);
    this.name = "IncompleteSnapshotError";
  }
}

/** Another process holds the lock of a project. */
export class LockError extends BackupctlError {
  override readonly exitCode = ExitCode.locked;
  constructor(message: string) {
    super(message);
    this.name = "LockError";
  }
}

/** A signal stopped the command: the running stage was stopped and its run recorded interrupted. */
export class StoppedError extends BackupctlError {
  override readonly exitCode: ExitCode;
  constructor(readonly signal: NodeJS.Signals) {
    super(`stopped by ${signal}: the running run was recorded interrupted; the next apply repairs what it left`);
    this.name = "StoppedError";
    this.exitCode = signal === "SIGINT" ? ExitCode.interrupted : ExitCode.terminated;
  }
}

/** A saved plan no longer matches the config or the state it was made from. */
export class StalePlanError extends BackupctlError {
  override readonly exitCode = ExitCode.stalePlan;
  constructor(message: string) {
    super(message);
    this.name = "StalePlanError";
  }
}

/**
 * An external command failed. `message` and `stderrTail` are already redacted; `transient` says whether its output
 * named a cause that goes away by waiting (see exec/failure.ts).
 */
export class ExecError extends BackupctlError {
  constructor(
    readonly command: string,
    readonly code: number | null,
    readonly stderrTail: string,
    message?: string,
    override readonly transient = false,
  ) {
    super(message ?? `${command} exited with ${code ?? "a signal"}${stderrTail ? `: ${stderrTail}` : ""}`);
    this.name = "ExecError";
  }
}

/**
 * A stage failed after restic had stored a snapshot of it, and that snapshot could not be forgotten at once (another
 * restic holds the lock, the backend went away). The failed stage records `snapshotId`, so the next plan forgets it
 * (a recover action). Transient when the failure it wraps is.
 */
export class PartialSnapshotError extends BackupctlError {
  override readonly transient: boolean;
  constructor(readonly failure: Error, readonly snapshotId: string, message: string) {
    super(message, { cause: failure });
    this.name = "PartialSnapshotError";
    this.transient = failure instanceof BackupctlError && failure.transient;
  }
}

/**
 * The machine backupctl runs on stopped it: a full disk, a read-only file system, a permission, a FIFO that cannot be
 * made. Not a bug and not the configuration: the message names the path, the cause and what to free or fix.
 */
export class EnvironmentError extends BackupctlError {
  constructor(readonly path: string, readonly code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "EnvironmentError";
  }
}

/**
 * The state folder cannot be written: a read-only file system, a full disk, a permission. The message names the folder,
 * the cause and the fix; commands that only read (status, history, …) go on from the last written state instead.
 */
/**
 * A write refused because the lease it was made under has been taken over by another runner (this one was paused,
 * cut off or too slow to heartbeat): the write is recorded as fenced, never applied, and this process must stop the
 * work it was doing under that lease.
 */
export class FencedError extends BackupctlError {
  constructor(readonly key: string, message: string) {
    super(message);
    this.name = "FencedError";
  }
}

export class StateUnwritableError extends BackupctlError {
  constructor(readonly dir: string, message: string) {
    super(message);
    this.name = "StateUnwritableError";
  }
}

/** A required external program (restic, sqlite3, …) is not installed. */
export class MissingToolError extends BackupctlError {
  constructor(readonly tool: string, readonly debianPackage: string) {
    super(
      `${tool} is not installed or not on PATH: install the Debian/Ubuntu package "${debianPackage}" ` +
        `(apt-get install -y ${debianPackage}), or your system's package of the same name`,
    );
    this.name = "MissingToolError";
  }
}

/** A source cannot be read: a missing file, an unsupported kind, a failed or empty dump. */
export class SourceError extends BackupctlError {
  constructor(message: string) {
    super(message);
    this.name = "SourceError";
  }
}

/** One or more plan actions failed or were skipped because of a failure; details were reported as they happened. */
export class ActionsFailedError extends BackupctlError {
  constructor(readonly failed: number, readonly total: number, readonly skipped = 0) {
    super(`${failed} of ${total} actions failed${skipped ? `, ${skipped} more were skipped because of that` : ""}`);
    this.name = "ActionsFailedError";
  }
}

/** Maps any thrown value to the process exit code. */
export function exitCodeFor(error: unknown): ExitCode {
  return error instanceof BackupctlError ? error.exitCode : ExitCode.failed;
}

/** A stop signal while waiting for a lock (`--wait`): nothing was done; exit 130 (SIGINT) or 143 (SIGTERM). */
export class WaitStopped extends BackupctlError {
  override readonly exitCode: ExitCode;
  constructor(signal: NodeJS.Signals, what: string) {
    super(`stopped by ${signal} while waiting for ${what}: nothing ran`);
    this.name = "WaitStopped";
    this.exitCode = signal === "SIGINT" ? ExitCode.interrupted : ExitCode.terminated;
  }
}

/** Ctrl-C at a question on the terminal: nothing was done; exit 130 as for SIGINT. */
export class PromptStopped extends BackupctlError {
  override readonly exitCode = ExitCode.interrupted;
  /** `nothing`: what was not done, e.g. "nothing applied". */
  constructor(nothing: string) {
    super(`${nothing}: stopped at the prompt (Ctrl-C)`);
    this.name = "PromptStopped";
  }
}
