/**
 * The notification outbox in the state database: notifications are enqueued in the same transaction as the result
 * they report (writes.ts), then sent, retried in order per channel, given up and purged from here (notify/outbox.ts
 * drives it).
 */
import type { Kysely, Selectable } from "kysely";
import { z } from "zod";
import type { StateDialect } from "./dialect.ts";
import type { Database, OutboxTable } from "./schema.ts";

export type OutboxRow = Selectable<OutboxTable>;

/** A notification to write to the outbox, in the same transaction as the result it reports. */
export const newNotification = z.object({
  /** The notifier's name in the config. */
  channel: z.string().min(1),
  event: z.string().min(1),
  project: z.string().nullable(),
  runId: z.string().nullable(),
  /** Set for events sent once per episode: a second notification with the same key is not enqueued. */
  key: z.string().nullable(),
  /** The message as JSON (redacted; credentials stay in the config). */
  payload: z.string(),
  createdAt: z.string(),
  expiresAt: z.string(),
});

export type NewNotification = z.infer<typeof newNotification>;

/** What one delivery attempt did to an outbox row. */
export type DeliveryOutcome =
  | { delivered: string }
  | { failed: string; error: string; retryAt: string }
  | { givenUp: string; error: string };

/** Writes notifications to the outbox; one whose key is already there was enqueued before and is skipped. */
export async function insertNotifications(
  db: Kysely<Database>,
  notifications: NewNotification[] | undefined,
): Promise<void> {
  for (const n of notifications ?? []) {
    await db.insertInto("outbox").values({
      channel: n.channel,
      event: n.event,
      project: n.project,
      run_id: n.runId,
      key: n.key,
      payload: n.payload,
      created_at: n.createdAt,
      next_attempt_at: n.createdAt,
      attempts: 0,
      delivered_at: null,
      expires_at: n.expiresAt,
      last_error: null,
      given_up_at: null,
    }).onConflict((c) => c.column("key").doNothing()).execute();
  }
}

/** Whether a keyed notification was enqueued already (for any channel: the key's prefix). */
export async function notificationKeyExists(db: Kysely<Database>, prefix: string): Promise<boolean> {
  const row = await db.selectFrom("outbox").select("id").where("key", "like", `${prefix.replace(/[%_]/g, "")}%`)
    .limit(1).executeTakeFirst();
  return row !== undefined;
}

/**
 * Outbox rows to attempt now: not delivered, not given up, due, and not behind an older row of the same channel
 * that waits for its retry (a channel's messages arrive in order: a run's end never before its start); oldest first.
 */
export async function dueNotifications(db: Kysely<Database>, now: string, limit: number): Promise<OutboxRow[]> {
  return await db.selectFrom("outbox").selectAll()
    .where("delivered_at", "is", null).where("given_up_at", "is", null).where("next_attempt_at", "<=", now)
    .where(({ not, exists, selectFrom }) =>
      not(exists(
        selectFrom("outbox as earlier").select("earlier.id")
          .whereRef("earlier.channel", "=", "outbox.channel").whereRef("earlier.id", "<", "outbox.id")
          .where("earlier.delivered_at", "is", null).where("earlier.given_up_at", "is", null)
          .where("earlier.next_attempt_at", ">", now),
      ))
    )
    .orderBy("id").limit(limit).execute();
}

/**
 * Records a delivery attempt. A row given up is audited as a failed `notify` stage in the same transaction, so
 * `history` and `status` show undeliverable notifications.
 */
export async function recordDelivery(
  dialect: StateDialect,
  db: Kysely<Database>,
  row: Pick<OutboxRow, "id" | "channel" | "event" | "project">,
  outcome: DeliveryOutcome,
): Promise<void> {
  await dialect.writeTransaction(db, async (db) => {
    if ("delivered" in outcome) {
      await db.updateTable("outbox").set((eb) => ({
        delivered_at: outcome.delivered,
        attempts: eb("attempts", "+", 1),
        last_error: null,
      })).where("id", "=", row.id).execute();
    } else if ("failed" in outcome) {
      await db.updateTable("outbox").set((eb) => ({
        attempts: eb("attempts", "+", 1),
        last_error: outcome.error,
        next_attempt_at: outcome.retryAt,
      })).where("id", "=", row.id).execute();
    } else {
      await db.updateTable("outbox").set({ given_up_at: outcome.givenUp, last_error: outcome.error })
        .where("id", "=", row.id).execute();
      await db.insertInto("stages").values({
        run_id: null,
        type: "notify",
        project: row.project,
        source: row.event,
        repository: row.channel,
        attempt: 1,
        status: "failed",
        started_at: outcome.givenUp,
        finished_at: outcome.givenUp,
        duration_ms: 0,
        bytes: null,
        snapshot_id: null,
        error: `undeliverable: ${outcome.error}`,
      }).execute();
    }
  });
}

/** Moves a channel's waiting rows to `retryAt`: they are sent after the one that failed, in order. */
export async function postponeChannel(
  db: Kysely<Database>,
  channel: string,
  afterId: number,
  retryAt: string,
): Promise<void> {
  await db.updateTable("outbox").set({ next_attempt_at: retryAt })
    .where("channel", "=", channel).where("id", ">", afterId).where("delivered_at", "is", null)
    .where("given_up_at", "is", null).where("next_attempt_at", "<", retryAt).execute();
}

/** Deletes delivered and given-up rows finished before `before` (the outbox is a queue, not an archive). */
export async function purgeOutbox(db: Kysely<Database>, before: string): Promise<void> {
  await db.deleteFrom("outbox")
    .where((eb) =>
      eb.or([
        eb.and([eb("delivered_at", "is not", null), eb("delivered_at", "<", before)]),
        eb.and([eb("given_up_at", "is not", null), eb("given_up_at", "<", before)]),
      ])
    ).execute();
}

/** The outbox for `status`: rows still being tried, and rows given up since `since`. */
export async function outboxOverview(
  db: Kysely<Database>,
  since: string,
): Promise<{ pending: OutboxRow[]; undeliverable: OutboxRow[] }> {
  const pending = await db.selectFrom("outbox").selectAll()
    .where("delivered_at", "is", null).where("given_up_at", "is", null).orderBy("id").execute();
  const undeliverable = await db.selectFrom("outbox").selectAll()
    .where("given_up_at", ">=", since).orderBy("id").execute();
  return { pending, undeliverable };
}

/** The outbox of one state, as `store.outbox`: each method the function of the same name above. */
export class OutboxQueue {
  constructor(private readonly db: Kysely<Database>, private readonly dialect: StateDialect) {}

  /** Whether a keyed notification was enqueued already (for any channel: the key's prefix). */
  notificationKeyExists(prefix: string): Promise<boolean> {
    return notificationKeyExists(this.db, prefix);
  }

  /** Rows to attempt now, oldest first, a channel's rows in order. */
  dueNotifications(now: string, limit = 200): Promise<OutboxRow[]> {
    return dueNotifications(this.db, now, limit);
  }

  /**
   * Records a delivery attempt (a row given up is audited as a failed `notify` stage). Not written to the fallback:
   * when the database cannot take it, the row stays pending and is sent again (delivery is at least once).
   */
  recordDelivery(row: Pick<OutboxRow, "id" | "channel" | "event" | "project">, outcome: DeliveryOutcome) {
    return recordDelivery(this.dialect, this.db, row, outcome);
  }

  /** Moves a channel's waiting rows to `retryAt`: they are sent after the one that failed, in order. */
  postponeChannel(channel: string, afterId: number, retryAt: string): Promise<void> {
    return postponeChannel(this.db, channel, afterId, retryAt);
  }

  /** Deletes delivered and given-up rows finished before `before` (the outbox is a queue, not an archive). */
  purgeOutbox(before: string): Promise<void> {
    return purgeOutbox(this.db, before);
  }

  /** The outbox for `status`: rows still being tried, and rows given up since `since`. */
  outboxOverview(since: string): Promise<{ pending: OutboxRow[]; undeliverable: OutboxRow[] }> {
    return outboxOverview(this.db, since);
  }
}
