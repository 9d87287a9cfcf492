/** What every channel shares: its time limit and the one error type a failed delivery becomes. */
import { redact } from "../../config/secrets.ts";
import type { Notifier } from "../../config/types.ts";
import { BackupctlError } from "../../errors.ts";

export interface DeliveryOptions {
  /** Relative secret files and the SMTP `ca` start here. */
  configDir: string;
  /** Time limit of one delivery attempt, connection included. */
  timeoutMs: number;
}

/**
 * A notification could not be delivered. The message names the channel kind and what failed; it is redacted and
 * never holds the channel's URL, because ping, push and webhook URLs carry their tokens in the path.
 */
export class DeliveryError extends BackupctlError {
  /**
   * @param status the HTTP status of a refused request
   * @param retryAfterMs how long the service asked to wait before the next attempt (a 429's or 503's Retry-After)
   */
  constructor(
    readonly channel: Notifier["type"],
    detail: string,
    readonly status?: number,
    readonly retryAfterMs?: number,
  ) {
    super(redact(`${channel} delivery failed: ${detail}`));
    this.name = "DeliveryError";
  }
}
