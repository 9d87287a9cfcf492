/**
 * Retries: exponential backoff with full jitter, capped, a number of attempts per stage. Only transient failures
 * retry (an unreachable backend, a repository locked by another restic, a refused database connection); a wrong
 * password, a missing file, a read-only or full disk, a permission denied or a failed dump check would fail the same
 * way again.
 */
import { parseDuration } from "../config/duration.ts";
import type { RetryPolicy } from "../config/types.ts";
import { ExecError } from "../errors.ts";
import { ResticError } from "../repository/restic-errors.ts";

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

const transientText = new RegExp(
  [
    "connection refused",
    "connection reset",
    "connection timed out",
    "i/o timeout",
    "no route to host",
    "network is unreachable",
    "temporary failure in name resolution",
    // Not "unable to create lock": restic 0.14 ends with it whatever kept it from writing its lock (a read-only file
    // system, a permission): only a lock another restic holds goes away by waiting.
    "repository is already locked",
    "server closed the connection unexpectedly",
    "could not connect to server",
    "too many connections",
    "\\b(502|503|504)\\b",
    "ssh command exited",
  ].join("|"),
  "i",
);
const permanentText =
  /wrong password|no key found|password authentication failed|access denied|\b(401|403)\b|unauthori[sz]ed|read-only file system|permission denied|operation not permitted|no space left on device|disk quota exceeded/i;

/** Whether trying the same stage again may succeed. */
export function isTransient(error: string | Error): boolean {
  if (error instanceof ResticError) return error.failure.transient;
  const text = typeof error === "string"
    ? error
    : error instanceof ExecError
    ? `${error.message}\n${error.stderrTail}`
    : "";
  return transientText.test(text) && !permanentText.test(text);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
