/**
 * Delivery from the outbox. Rows are sent oldest first, each channel in order (a monitor must see a run's start
 * before its end) and channels side by side (a slow one does not hold up the others). A failed attempt is retried
 * with backoff at later passes (later applies, watch ticks, `notify send`), or later when the service asked for a
 * longer wait (Retry-After); a row past its expiry, or whose channel is no longer declared, is given up and audited
 * as undeliverable. Nothing here throws into a backup: delivery problems are logged and recorded, never raised.
 */
import type { LoadedConfig } from "../config/load.ts";
import { redact } from "../config/secrets.ts";
import { humanDuration } from "../format/time.ts";
import type { OutboxRow, StateStore } from "../state/store.ts";
import { deliver, DeliveryError } from "./channels/mod.ts";
import { deliveryTimeoutMs } from "./events.ts";
import type { Message } from "./message.ts";

/** Retries are at most an hour apart. */
const maxRetryDelayMs = 3_600_000;

/** First retry after 30 s, then doubling, at most an hour apart. */
export function retryDelayMs(attempts: number): number {
  return Math.min(30_000 * 2 ** Math.max(0, attempts - 1), maxRetryDelayMs);
}

/**
 * The wait a throttled service asked for (Retry-After), at most the longest backoff: a later retry than the backoff's
 * when it asks for one, never sooner, and never so late that one answer parks the channel for a day.
 */
function requestedDelayMs(error: unknown): number {
  const asked = error instanceof DeliveryError ? error.retryAfterMs ?? 0 : 0;
  return Math.min(asked, maxRetryDelayMs);
}

/** Delivered and given-up rows are kept this long, then purged. */
const keepFinishedMs = 30 * 86_400_000;

export interface DeliveryReport {
  delivered: number;
  failed: number;
  givenUp: number;
}

export interface DeliverOptions {
  now: () => Date;
  /** One line per failed or given-up delivery. */
  warn?: (line: string) => void;
}

/** Sends every due row once; returns what happened. */
export async function deliverOutbox(
  store: StateStore,
  loaded: LoadedConfig,
  options: DeliverOptions,
): Promise<DeliveryReport> {
  const report: DeliveryReport = { delivered: 0, failed: 0, givenUp: 0 };
  const warn = options.warn ?? (() => {});
  const due = await store.outbox.dueNotifications(options.now().toISOString());
  const byChannel = new Map<string, OutboxRow[]>();
  for (const row of due) byChannel.set(row.channel, [...(byChannel.get(row.channel) ?? []), row]);
  const timeoutMs = deliveryTimeoutMs(loaded);

  await Promise.all([...byChannel].map(async ([channel, rows]) => {
    const notifier = loaded.config.notifiers[channel];
    for (const row of rows) {
      const now = options.now();
      if (!notifier || now.toISOString() >= row.expires_at) {
        const reason = !notifier
          ? `channel ${channel} is no longer declared in the config`
          : `not delivered within ${humanDuration(Date.parse(row.expires_at) - Date.parse(row.created_at))} ` +
            `(${row.attempts} attempt${row.attempts === 1 ? "" : "s"}; last error: ${row.last_error ?? "none"})`;
        await store.outbox.recordDelivery(row, { givenUp: now.toISOString(), error: reason });
        warn(
          `notification ${row.event}${row.project ? ` of ${row.project}` : ""} to ${channel} undeliverable: ${reason}`,
        );
        report.givenUp++;
        continue;
      }
      try {
        await deliver(notifier, JSON.parse(row.payload) as Message, { configDir: loaded.dir, timeoutMs });
        await store.outbox.recordDelivery(row, { delivered: options.now().toISOString() });
        report.delivered++;
      } catch (error) {
        const message = redact(error instanceof Error ? error.message : String(error));
        const delayMs = Math.max(retryDelayMs(row.attempts + 1), requestedDelayMs(error));
        const retryAt = new Date(options.now().getTime() + delayMs).toISOString();
        await store.outbox.recordDelivery(row, { failed: now.toISOString(), error: message, retryAt });
        // The channel's later rows wait behind this one, so they arrive in order and a down receiver costs one
        // timeout per pass, not one per message.
        await store.outbox.postponeChannel(channel, row.id, retryAt);
        warn(
          `notification ${row.event}${row.project ? ` of ${row.project}` : ""} to ${channel} failed ` +
            `(attempt ${row.attempts + 1}), retrying after ${retryAt}: ${message}`,
        );
        report.failed++;
        return;
      }
    }
  }));
  await store.outbox.purgeOutbox(new Date(options.now().getTime() - keepFinishedMs).toISOString());
  return report;
}

/**
 * Runs delivery passes in the background of an apply or a watch loop: `kick()` after enqueueing starts a pass (or
 * asks for one more after the running one), `drain()` waits for them. Errors (the database locked, say) are warned
 * about and leave the rows for the next pass.
 */
export class OutboxSender {
  #running: Promise<void> | null = null;
  #again = false;
  readonly report: DeliveryReport = { delivered: 0, failed: 0, givenUp: 0 };

  constructor(
    private readonly store: StateStore,
    private readonly loaded: LoadedConfig,
    private readonly options: DeliverOptions,
  ) {}

  kick(): void {
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = this.#loop().finally(() => {
      this.#running = null;
    });
  }

  async #loop(): Promise<void> {
    do {
      this.#again = false;
      try {
        const pass = await deliverOutbox(this.store, this.loaded, this.options);
        this.report.delivered += pass.delivered;
        this.report.failed += pass.failed;
        this.report.givenUp += pass.givenUp;
      } catch (error) {
        this.options.warn?.(
          `notifications not sent now: ${redact(error instanceof Error ? error.message : String(error))}`,
        );
        return;
      }
    } while (this.#again);
  }

  /** Waits until no pass runs or is asked for. */
  async drain(): Promise<void> {
    while (this.#running) await this.#running;
  }
}
