/**
 * The outbox against a real state database and real HTTP receivers on loopback: notifications written with the
 * result they report (also through the fallback file when the database is locked), delivered per channel in
 * order, retried with backoff behind a failure, given up and audited after expiry or when their channel is gone.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { webhook } from "../../src/config/helpers.ts";
import type { LoadedConfig } from "../../src/config/load.ts";
import { enqueueFor, runFinished, runStarted } from "../../src/notify/events.ts";
import { deliverOutbox, OutboxSender, retryDelayMs } from "../../src/notify/outbox.ts";
import { type NewNotification, StateStore } from "../../src/state/store.ts";
import { loadedWithNotifiers } from "../support/plan-fixtures.ts";
import { type HttpReceiver, startHttpReceiver } from "../support/receivers.ts";
import { type StateBackend, stateBackends, stopStateBackends } from "../support/state-backends.ts";
import { storeDb } from "../support/state-db.ts";

const T0 = new Date("2026-12-01T03:00:00Z");
const plus = (ms: number) => new Date(T0.getTime() + ms);

function loaded(dir: string, notifiers: Record<string, unknown>, root: Record<string, unknown> = {}): LoadedConfig {
  return loadedWithNotifiers(notifiers, root, dir);
}

async function withStore(
  backend: StateBackend,
  body: (store: StateStore, dir: string) => Promise<void>,
): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "backupctl-outbox-test-"));
  const store = await backend.open(join(dir, "state"), { warn: () => {} });
  try {
    await body(store, dir);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A run of `shop` started at `at` with its run.started notifications. */
function started(
  config: LoadedConfig,
  runId: string,
  at: Date,
): [Parameters<StateStore["startRun"]>[0], NewNotification[]] {
  const message = runStarted({ host: "h", at, project: "shop", repositories: ["local"], runId, sources: ["app"] });
  return [
    { id: runId, project: "shop", command: "apply", startedAt: at.toISOString(), fingerprint: "f", host: "h" },
    enqueueFor(config, ["shop"], message, { now: at }),
  ];
}

function failedMessage(runId: string, at: Date, error = "pg_dump: connection refused") {
  return runFinished({
    host: "h",
    at,
    project: "shop",
    repositories: ["local"],
    runId,
    status: "failed",
    durationMs: 1200,
    failure: { stage: "backup app", error, attempt: { n: 3, of: 3 } },
    failuresBefore: 0,
  });
}

after(stopStateBackends);

for (const backend of stateBackends) {
  describe(`outbox on ${backend.name}`, () => {
    let a: HttpReceiver;
    let b: HttpReceiver;
    before(async () => {
      a = await startHttpReceiver();
      b = await startHttpReceiver();
    });
    after(async () => {
      await a.stop();
      await b.stop();
    });

    it("writes a run's notifications with its start and its result, each channel filtered by its events", async () => {
      await withStore(backend, async (store, dir) => {
        const config = loaded(dir, {
          monitor: { type: "healthchecks", pingUrl: `${a.url}/ping` },
          chat: webhook({ url: `${b.url}/hook` }),
        });
        await store.startRun(...started(config, "r1", T0));
        const failed = failedMessage("r1", plus(1000));
        await store.finishRun(
          "r1",
          { status: "failed", finishedAt: plus(1000).toISOString(), durationMs: 1000, error: "x" },
          enqueueFor(config, ["shop"], failed, { now: plus(1000) }),
        );
        const rows = await storeDb(store).selectFrom("outbox").select(["channel", "event", "run_id", "project"])
          .orderBy(
            "id",
          )
          .execute();
        // The monitor takes run.started and run.failed; the webhook (human defaults) only run.failed.
        assert.deepEqual(rows.map((row) => ({ ...row })), [
          { channel: "monitor", event: "run.started", run_id: "r1", project: "shop" },
          { channel: "chat", event: "run.failed", run_id: "r1", project: "shop" },
          { channel: "monitor", event: "run.failed", run_id: "r1", project: "shop" },
        ]);
      });
    });

    it("enqueues a keyed notification once per channel", async () => {
      await withStore(backend, async (store, dir) => {
        const config = loaded(dir, { chat: webhook({ url: `${b.url}/hook` }) });
        const message = failedMessage("r1", T0);
        const rows = enqueueFor(config, ["shop"], message, { now: T0, key: "episode-1" });
        assert.equal(rows[0].key, "episode-1:chat");
        await store.enqueueNotifications(rows);
        await store.enqueueNotifications(rows);
        assert.equal(await store.outbox.notificationKeyExists("episode-1"), true);
        assert.equal(await store.outbox.notificationKeyExists("episode-2"), false);
        const count = await storeDb(store).selectFrom("outbox").select((eb) => eb.fn.countAll<number>().as("n"))
          .executeTakeFirstOrThrow();
        assert.equal(Number(count.n), 1);
      });
    });

    it("keeps notifications in the fallback while the database is locked, and the next open puts them in the outbox", async () => {
      await withStore(backend, async (first, dir) => {
        const config = loaded(dir, { chat: webhook({ url: `${b.url}/hook` }) });
        await first.startRun(...started(config, "r1", T0));
        await first.close();
        const stateDir = join(dir, "state");
        const store = await backend.open(stateDir, { warn: () => {}, busyTimeoutMs: 200 });
        const lock = await backend.holdWriteLock(stateDir);
        try {
          await store.finishRun(
            "r1",
            { status: "failed", finishedAt: plus(1000).toISOString(), durationMs: 1000 },
            enqueueFor(config, ["shop"], failedMessage("r1", plus(1000)), { now: plus(1000) }),
          );
          assert.equal(store.degraded, true);
          assert.equal(
            (await store.outbox.dueNotifications(plus(5000).toISOString())).length,
            0,
            "not in the database yet",
          );
        } finally {
          await lock.release();
          await store.close();
        }
        const reopened = await backend.open(stateDir, { warn: () => {} });
        try {
          const due = await reopened.outbox.dueNotifications(plus(5000).toISOString());
          assert.deepEqual(due.map((row) => [row.channel, row.event, row.run_id]), [["chat", "run.failed", "r1"]]);
          const run = await storeDb(reopened).selectFrom("runs").select("status").where("id", "=", "r1")
            .executeTakeFirst();
          assert.equal(run?.status, "failed");
        } finally {
          await reopened.close();
        }
        // withStore closes `first` again: closing twice is harmless.
      });
    });

    it("delivers each channel in order; a failing channel is retried with backoff and its later rows wait", async () => {
      await withStore(backend, async (store, dir) => {
        a.requests.length = 0;
        b.requests.length = 0;
        const config = loaded(dir, {
          up: webhook({ url: `${a.url}/up` }),
          down: webhook({ url: `${b.url}/down` }),
        });
        for (const [i, id] of ["r1", "r2", "r3"].entries()) {
          await store.enqueueNotifications(enqueueFor(config, ["shop"], failedMessage(id, plus(i)), { now: plus(i) }));
        }
        await b.down();
        const first = await deliverOutbox(store, config, { now: () => plus(10) });
        assert.deepEqual(first, { delivered: 3, failed: 1, givenUp: 0 });
        assert.deepEqual(a.requests.map((r) => JSON.parse(r.body).runId), ["r1", "r2", "r3"]);
        const waiting = await storeDb(store).selectFrom("outbox").selectAll().where("channel", "=", "down").orderBy(
          "id",
        )
          .execute();
        const retryAt = plus(10 + retryDelayMs(1)).toISOString();
        assert.deepEqual(waiting.map((r) => [r.attempts, r.next_attempt_at]), [[1, retryAt], [0, retryAt], [
          0,
          retryAt,
        ]]);
        assert.match(waiting[0].last_error ?? "", /webhook/);
        assert.doesNotMatch(waiting[0].last_error ?? "", /127\.0\.0\.1/, "the URL is not in the error");

        await b.up();
        const early = await deliverOutbox(store, config, { now: () => plus(20_000) });
        assert.deepEqual(early, { delivered: 0, failed: 0, givenUp: 0 }, "not before the retry time");
        const later = await deliverOutbox(store, config, { now: () => plus(31_000) });
        assert.deepEqual(later, { delivered: 3, failed: 0, givenUp: 0 });
        assert.deepEqual(b.requests.map((r) => JSON.parse(r.body).runId), ["r1", "r2", "r3"]);
        const overview = await store.outbox.outboxOverview(T0.toISOString());
        assert.deepEqual(overview, { pending: [], undeliverable: [] });
      });
    });

    it("keeps a row written after a failure behind it: a run's end is never sent before its start", async () => {
      await withStore(backend, async (store, dir) => {
        a.requests.length = 0;
        const config = loaded(dir, { chat: webhook({ url: `${a.url}/order` }) });
        await store.enqueueNotifications(enqueueFor(config, ["shop"], failedMessage("first", T0), { now: T0 }));
        a.respondWith({ status: 500 });
        try {
          assert.equal((await deliverOutbox(store, config, { now: () => plus(1) })).failed, 1);
        } finally {
          a.respondWith({});
        }
        // Enqueued after the failure, due at once on its own, but behind the first row of its channel.
        await store.enqueueNotifications(
          enqueueFor(config, ["shop"], failedMessage("second", plus(2)), { now: plus(2) }),
        );
        assert.deepEqual(await deliverOutbox(store, config, { now: () => plus(10) }), {
          delivered: 0,
          failed: 0,
          givenUp: 0,
        });
        assert.deepEqual(await deliverOutbox(store, config, { now: () => plus(31_000) }), {
          delivered: 2,
          failed: 0,
          givenUp: 0,
        });
        assert.deepEqual(a.requests.map((r) => JSON.parse(r.body).runId), ["first", "first", "second"]);
      });
    });

    it("stops an attempt at the timeout", async () => {
      await withStore(backend, async (store, dir) => {
        const config = loaded(dir, { slow: webhook({ url: `${a.url}/slow` }) }, {
          notifications: { timeout: "500ms" },
        });
        a.respondWith({ delayMs: 3000 });
        try {
          await store.enqueueNotifications(enqueueFor(config, ["shop"], failedMessage("r1", T0), { now: T0 }));
          // The row's error says the delivery timed out: the pass did not wait for the receiver.
          const report = await deliverOutbox(store, config, { now: () => plus(1) });
          assert.deepEqual(report, { delivered: 0, failed: 1, givenUp: 0 });
          const [row] = await storeDb(store).selectFrom("outbox").selectAll().execute();
          assert.match(row.last_error ?? "", /timed out/);
        } finally {
          a.respondWith({});
        }
      });
    });

    it("gives up a notification past its expiry, audits it and lists it as undeliverable", async () => {
      await withStore(backend, async (store, dir) => {
        const config = loaded(dir, { chat: webhook({ url: `${b.url}/hook` }) }, {
          notifications: { expireAfter: "1h" },
        });
        await store.enqueueNotifications(enqueueFor(config, ["shop"], failedMessage("r1", T0), { now: T0 }));
        await b.down();
        try {
          assert.equal((await deliverOutbox(store, config, { now: () => plus(60_000) })).failed, 1);
        } finally {
          await b.up();
        }
        const report = await deliverOutbox(store, config, { now: () => plus(3_600_000) });
        assert.deepEqual(report, { delivered: 0, failed: 0, givenUp: 1 });
        const overview = await store.outbox.outboxOverview(T0.toISOString());
        assert.equal(overview.pending.length, 0);
        assert.equal(overview.undeliverable.length, 1);
        assert.match(
          overview.undeliverable[0].last_error ?? "",
          /not delivered within 1h \(1 attempt; last error: .*webhook/,
        );
        const stage = await storeDb(store).selectFrom("stages").selectAll().where("type", "=", "notify")
          .executeTakeFirst();
        assert.equal(stage?.status, "failed");
        assert.equal(stage?.project, "shop");
        assert.equal(stage?.repository, "chat");
        assert.match(stage?.error ?? "", /^undeliverable: /);
      });
    });

    it("gives up a notification whose channel is no longer declared", async () => {
      await withStore(backend, async (store, dir) => {
        const before = loaded(dir, { old: webhook({ url: `${b.url}/hook` }) });
        await store.enqueueNotifications(enqueueFor(before, ["shop"], failedMessage("r1", T0), { now: T0 }));
        const afterEdit = loaded(dir, { chat: webhook({ url: `${b.url}/hook` }) });
        assert.deepEqual(await deliverOutbox(store, afterEdit, { now: () => plus(1) }), {
          delivered: 0,
          failed: 0,
          givenUp: 1,
        });
        const [row] = (await store.outbox.outboxOverview(T0.toISOString())).undeliverable;
        assert.match(row.last_error ?? "", /channel old is no longer declared/);
      });
    });

    it("purges delivered rows after 30 days", async () => {
      await withStore(backend, async (store, dir) => {
        const config = loaded(dir, { chat: webhook({ url: `${a.url}/hook` }) });
        await store.enqueueNotifications(enqueueFor(config, ["shop"], failedMessage("r1", T0), { now: T0 }));
        assert.equal((await deliverOutbox(store, config, { now: () => plus(1) })).delivered, 1);
        assert.equal((await storeDb(store).selectFrom("outbox").select("id").execute()).length, 1, "kept for now");
        await deliverOutbox(store, config, { now: () => plus(31 * 86_400_000) });
        assert.equal((await storeDb(store).selectFrom("outbox").select("id").execute()).length, 0);
      });
    });

    it("OutboxSender runs one more pass for a kick during a pass, and drain waits for it", async () => {
      await withStore(backend, async (store, dir) => {
        a.requests.length = 0;
        const config = loaded(dir, { chat: webhook({ url: `${a.url}/hook` }) });
        a.respondWith({ delayMs: 300 });
        try {
          const sender = new OutboxSender(store, config, { now: () => plus(1) });
          await store.enqueueNotifications(enqueueFor(config, ["shop"], failedMessage("r1", T0), { now: T0 }));
          sender.kick();
          await store.enqueueNotifications(enqueueFor(config, ["shop"], failedMessage("r2", T0), { now: T0 }));
          sender.kick();
          await sender.drain();
          assert.equal(sender.report.delivered, 2);
          assert.deepEqual(a.requests.map((r) => JSON.parse(r.body).runId), ["r1", "r2"]);
        } finally {
          a.respondWith({});
        }
      });
    });
  });

  describe(`run history for notifications on ${backend.name}`, () => {
    it("counts failures since the last success and digests a day's runs", async () => {
      await withStore(backend, async (store) => {
        const run = async (id: string, at: Date, status: "succeeded" | "failed" | "interrupted", bytes?: number) => {
          await store.startRun({
            id,
            project: "shop",
            command: "apply",
            startedAt: at.toISOString(),
            fingerprint: "f",
            host: "h",
          });
          if (bytes !== undefined) {
            const stage = await store.startStage({
              runId: id,
              type: "backup",
              project: "shop",
              source: "db",
              startedAt: at.toISOString(),
            });
            await store.finishStage(stage, { status: "succeeded", finishedAt: at.toISOString(), durationMs: 5, bytes });
          }
          await store.finishRun(id, { status, finishedAt: plus(60_000).toISOString(), durationMs: 4000 });
        };
        assert.equal(await store.failuresSinceLastSuccess("shop"), 0);
        await run("r1", plus(0), "failed");
        await run("r2", plus(1000), "succeeded", 2048);
        assert.equal(await store.failuresSinceLastSuccess("shop"), 0);
        await run("r3", plus(2000), "failed");
        await run("r4", plus(3000), "interrupted");
        assert.equal(await store.failuresSinceLastSuccess("shop"), 2);
        await run("r5", plus(86_400_000), "succeeded", 4096); // the next day: outside the digest's period

        const digest = await store.runDigest(T0.toISOString(), plus(86_400_000).toISOString());
        assert.deepEqual(digest.get("shop"), {
          succeeded: 1,
          failed: 2,
          interrupted: 1,
          lastSuccessAt: plus(1000).toISOString(),
          lastSuccessDurationMs: 4000,
          lastSuccessBytes: 2048,
        });
      });
    });
  });
}
