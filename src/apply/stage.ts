/**
 * The audited stage runner: every step backupctl takes (a backup, a forget, a takeover of a stale lock, an unlock, a
 * restore) is one row of `stages`, written before the work starts and finished with its result: status, bytes,
 * snapshot, the (redacted) error of a failure or the note of a success. Apply, unlock, restore and the takeovers of
 * stale locks all go through it, on the run's clock (`--now` reaches their rows).
 */
import type { Clock } from "../clock.ts";
import { redact } from "../config/secrets.ts";
import { BackupctlError, PartialSnapshotError } from "../errors.ts";
import { humanDuration } from "../format/time.ts";
import { stopRequested } from "../runtime/shutdown.ts";
import type { NewNotification, NewStage, StageResult, StateStore } from "../state/store.ts";
import type { OutboxSender } from "../notify/outbox.ts";
import { type Backoff, delayBefore, isTransient, sleep } from "./retry.ts";

/** What recording a stage needs: the state and the clock that dates its row. */
export interface StageContext {
  store: StateStore;
  clock: Clock;
  /** Kicked when a stage's result enqueued notifications. */
  notifications?: OutboxSender;
}

/** What a stage's work gives back: its value, and what the stage row records of it. */
export interface StageWork<T> {
  value: T;
  bytes?: number;
  bytesAdded?: number;
  forgotten?: number;
  snapshotId?: string;
  /** What a stage that succeeded has to say (the lock it removed, restic's answer): `stages.note`. */
  note?: string;
}

/** How a stage ended; a failure keeps what was thrown (`cause`), for a command that reports it itself. */
export type StageOutcome<T> =
  | { ok: true; value: T; durationMs: number }
  | { ok: false; error: string; durationMs: number; transient: boolean; cause: unknown };

export interface StageOptions {
  /** The notifications recorded with the result, in the same write (a held deletion, a failed check). */
  notify?: (result: { ok: boolean; error?: string; durationMs: number }) => NewNotification[];
  /** The error text recorded for a failure (default {@link errorText}); redacted either way. */
  describe?: (error: unknown) => string;
  /** The snapshot the stage works on, recorded whatever its outcome (a restore's). */
  snapshotId?: string;
}

/**
 * A stage that did not run, and says why: its row is `skipped` with the reason as its error (a held deletion, a
 * forget that the state no longer allows, an unlock whose lock was released meanwhile).
 */
export class SkippedStage extends BackupctlError {}

/**
 * Runs one audited stage: the stage row is written before the work starts and finished with its result or its
 * (redacted) error. `work` receives the stage's start time.
 */
export async function runStage<T>(
  ctx: StageContext,
  stage: Omit<NewStage, "startedAt">,
  work: (started: Date) => Promise<StageWork<T>>,
  options: StageOptions = {},
): Promise<StageOutcome<T>> {
  const started = ctx.clock.now();
  const stageId = await ctx.store.startStage({ ...stage, startedAt: started.toISOString() });
  const finish = async (result: Omit<StageResult, "finishedAt" | "durationMs">) => {
    const finished = ctx.clock.now();
    const durationMs = finished.getTime() - started.getTime();
    const notifications = options.notify?.({ ok: result.status === "succeeded", error: result.error, durationMs }) ??
      [];
    await ctx.store.finishStage(stageId, { ...result, finishedAt: finished.toISOString(), durationMs }, notifications);
    if (notifications.length > 0) ctx.notifications?.kick();
    return durationMs;
  };
  try {
    const { value, bytes, bytesAdded, forgotten, snapshotId = options.snapshotId, note } = await work(started);
    return {
      ok: true,
      value,
      durationMs: await finish({ status: "succeeded", bytes, bytesAdded, forgotten, snapshotId, note }),
    };
  } catch (error) {
    const message = options.describe ? redact(options.describe(error)) : errorText(error);
    const status = error instanceof SkippedStage ? "skipped" : stopRequested() ? "interrupted" : "failed";
    // Judged by the error's classification, not by its text (a note that the discarded snapshot could not be
    // forgotten because of a lock must not make an unreadable file look transient).
    const transient = isTransient(error);
    // A snapshot that a failed stage left behind is recorded on the stage: the next plan forgets it (recover).
    const snapshotId = partialSnapshotOf(error) ?? options.snapshotId;
    const durationMs = await finish({ status, error: message, snapshotId });
    return { ok: false, error: message, transient, durationMs, cause: error };
  }
}

/** The snapshot restic stored before a backup failed (a stream cut short), as pipeline.ts reports it. */
export function partialSnapshotOf(error: unknown): string | undefined {
  return error instanceof PartialSnapshotError ? error.snapshotId : undefined;
}

/**
 * Runs `attempt` until it succeeds, fails for a reason that would not change, or runs out of attempts; each attempt
 * is its own audited stage row. Waits with full-jitter backoff between attempts.
 */
export async function withRetries<T>(
  out: (line: string) => void,
  backoff: Backoff,
  label: string,
  attempt: (n: number) => Promise<StageOutcome<T>>,
): Promise<StageOutcome<T> & { attempt: { n: number; of: number } }> {
  for (let n = 1;; n++) {
    const outcome = await attempt(n);
    // No retry once a stop was asked for (watch lets the running stage finish, but starts no new attempt).
    if (outcome.ok || !outcome.transient || n >= backoff.attempts || stopRequested()) {
      return { ...outcome, attempt: { n, of: backoff.attempts } };
    }
    const delay = delayBefore(n, backoff);
    out(`  ! ${label}: attempt ${n}/${backoff.attempts} failed (transient), retrying in ${humanDuration(delay)}`);
    await sleep(delay);
  }
}

/** An error as the audit and the output show it: redacted, with its class unless it is one of ours. */
export function errorText(error: unknown): string {
  if (error instanceof BackupctlError) return redact(error.message);
  if (error instanceof Error) return redact(`${error.name}: ${error.message}`);
  return redact(String(error));
}
