/**
 * Retries: exponential backoff with full jitter, capped, a number of attempts per stage. Only transient failures
 * retry (an unreachable backend, a repository locked by another restic, a refused database connection); a wrong
 * password, a missing file, a read-only or full disk, a permission denied or a failed dump check would fail the same
 * way again. Which is which is decided where each failure is classified (repository/restic-errors.ts,
 * exec/failure.ts) and carried by the error's `transient` field.
 */
import { parseDuration } from "../config/duration.ts";
import type { RetryPolicy } from "../config/types.ts";
import { BackupctlError } from "../errors.ts";

export interface Backoff {
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const defaultRetry = { attempts: 3, baseDelay: "5s", maxDelay: "5m" } as const;

/** The project's policy, else the config's defaults, else 3 attempts from 5 s up to 5 min. */
export function backoffFor(project?: RetryPolicy, defaults?: RetryPolicy): Backoff {
  const pick = <K extends keyof RetryPolicy>(key: K) => project?.[key] ?? defaults?.[key] ?? defaultRetry[key];
  return {
    attempts: pick("attempts") as number,
    baseDelayMs: parseDuration(pick("baseDelay") as string) ?? 5000,
    maxDelayMs: parseDuration(pick("maxDelay") as string) ?? 300_000,
  };
}

/** Full jitter: a random delay in [0, min(max, base · 2^(attempt−1))]. */
export function delayBefore(attempt: number, backoff: Backoff, random = Math.random): number {
  const ceiling = Math.min(backoff.maxDelayMs, backoff.baseDelayMs * 2 ** Math.max(0, attempt - 1));
  return Math.floor(random() * ceiling);
}

/**
 * Whether trying the same stage again may succeed: the `transient` field its error was given where the failure was
 * classified (restic's exit code and output, a program's stderr). Anything else — a bug, a thrown value — is not.
 */
export function isTransient(error: unknown): boolean {
  return error instanceof BackupctlError && error.transient;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
