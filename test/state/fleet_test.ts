/**
 * The fleet's tables through the store (src/state/fleet.ts, StateStore.fenced, the fallback's fence), on SQLite and on
 * a real PostgreSQL: leases granted once, renewed by their holder, taken over after expiry by the database's clock
 * with a larger token; a write under a lease taken over is refused and recorded, live and when replayed from the
 * fallback file; runner names are unique while alive; the fleet's config is the one first seen last.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import { FencedError } from "../../src/errors.ts";
import { fallbackFileName, rejectedFileName } from "../../src/state/fallback.ts";
import type { Fence } from "../../src/state/fleet.ts";
import type { StateStore } from "../../src/state/store.ts";
import { type StateBackend, stateBackends, stopStateBackends } from "../support/state-backends.ts";
import { storeDb } from "../support/state-db.ts";

after(stopStateBackends);

async function withState(backend: StateBackend, body: (store: StateStore, dir: string) => Promise<void>) {
  const dir = mkdtempSync(join(tmpdir(), "backupctl-fleet-state-"));
  const store = await backend.open(dir, { busyTimeoutMs: 300, warn: () => {} });
  try {
    await body(store, dir);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Another process of the state's folder, cut off from the database (its writers' lock held elsewhere), records run-a
 * as succeeded: the line goes to the fallback file with `fence`. Returns that store, degraded, the lock released.
 */
async function finishCutOff(backend: StateBackend, dir: string, fence: Fence): Promise<StateStore> {
  const held = await backend.holdWriteLock(dir);
  const cutOff = await backend.open(dir, { busyTimeoutMs: 200, warn: () => {} });
  try {
    await cutOff.fenced(fence).finishRun("run-a", {
      status: "succeeded",
      finishedAt: "2026-11-21T03:01:00.000Z",
      durationMs: 1,
    });
    assert.ok(cutOff.degraded);
    assert.equal(await cutOff.reconnect(), false, "still cut off while the lock is held");
  } finally {
    await held.release();
  }
  return cutOff;
}

const request = (instance: string, ttlMs = 60_000) => ({ key: "project:shop", holder: instance, instance, ttlMs });

const newRun = (id: string) => ({
  id,
  project: "shop",
  command: "watch",
  startedAt: "2026-11-21T03:00:00.000Z",
  fingerprint: "sha256:f",
  host: "h",
});

for (const backend of stateBackends) {
  describe(`the fleet's leases on ${backend.name}`, () => {
    it("grants a lease once; its holder renews it with the same token; another is told who holds it", async () => {
      await withState(backend, async (store) => {
        const first = await store.fleet.acquire(request("a"));
        assert.ok("granted" in first);
        const again = await store.fleet.acquire(request("a"));
        assert.ok("granted" in again);
        assert.equal(again.granted.token, first.granted.token, "renewed, not re-granted");
        const other = await store.fleet.acquire(request("b"));
        assert.ok("held" in other);
        assert.equal(other.held.holder, "a");
        assert.ok(other.held.expiresMs > other.held.nowMs);
        const leases = await store.fleet.leases();
        assert.deepEqual(leases.map((l) => `${l.key} ${l.holder} ${l.token}`), [
          `project:shop a ${first.granted.token}`,
        ]);
      });
    });

    it("an expired lease is taken over with a larger token, and names the holder it replaced", async () => {
      await withState(backend, async (store) => {
        const first = await store.fleet.acquire(request("a", 150));
        assert.ok("granted" in first);
        await store.fleet.setRun("project:shop", first.granted.token, "run-a");
        await delay(300);
        const second = await store.fleet.acquire(request("b"));
        assert.ok("granted" in second);
        assert.ok(second.granted.token > first.granted.token);
        assert.equal(second.granted.tookOver?.holder, "a");
        assert.equal(second.granted.tookOver?.runId, "run-a");
        // The holder before cannot renew what it lost.
        assert.deepEqual(await store.fleet.renew([{ key: "project:shop", token: first.granted.token }], 60_000), [
          "project:shop",
        ]);
      });
    });

    it("a released lease is free at once, and its row keeps the token that fences the holder before", async () => {
      await withState(backend, async (store) => {
        const first = await store.fleet.acquire(request("a"));
        assert.ok("granted" in first);
        await store.fleet.release("project:shop", first.granted.token);
        assert.deepEqual(await store.fleet.leases(), []);
        const second = await store.fleet.acquire(request("b"));
        assert.ok("granted" in second);
        assert.equal(second.granted.tookOver, undefined, "a release is not a takeover");
        const breach = await store.fleet.breach({
          instance: "a",
          leases: [{ key: "project:shop", token: first.granted.token }],
        });
        assert.equal(breach?.currentHolder, "b");
      });
    });

    it("a write under a lease taken over is refused, recorded, and never applied", async () => {
      await withState(backend, async (store) => {
        const a = await store.fleet.acquire(request("a", 150));
        assert.ok("granted" in a);
        const fenced = store.fenced({ instance: "a", leases: [{ key: "project:shop", token: a.granted.token }] });
        await fenced.startRun(newRun("run-a"));
        await delay(300);
        const b = await store.fleet.acquire(request("b"));
        assert.ok("granted" in b);
        await assert.rejects(
          fenced.finishRun("run-a", { status: "succeeded", finishedAt: "2026-11-21T03:01:00.000Z", durationMs: 1 }),
          (error: Error) => error instanceof FencedError && /taken over by b/.test(error.message),
        );
        const run = await storeDb(store).selectFrom("runs").select("status").where("id", "=", "run-a")
          .executeTakeFirstOrThrow();
        assert.equal(run.status, "running", "the late result was not applied");
        const refused = await store.fleet.fencedWrites();
        assert.equal(refused.length, 1);
        assert.equal(refused[0].op, "finishRun");
        assert.equal(refused[0].run_id, "run-a");
        assert.equal(refused[0].via, "live");
        assert.equal(Number(refused[0].token), a.granted.token);
        assert.equal(Number(refused[0].current_token), b.granted.token);
        // The holder now writes freely.
        const current = store.fenced({ instance: "b", leases: [{ key: "project:shop", token: b.granted.token }] });
        await current.startRun(newRun("run-b"));
      });
    });

    it("a fenced write that went to the fallback file is refused at its replay once the lease was taken over", async () => {
      await withState(backend, async (store, dir) => {
        const a = await store.fleet.acquire(request("a", 150));
        assert.ok("granted" in a);
        const fence = { instance: "a", leases: [{ key: "project:shop", token: a.granted.token }] };
        await store.fenced(fence).startRun(newRun("run-a"));
        // The database out of reach for this process: its result goes to the fallback, with the fence.
        const cutOff = await finishCutOff(backend, dir, fence);
        await delay(300);
        const b = await store.fleet.acquire(request("b"));
        assert.ok("granted" in b);
        assert.ok(existsSync(join(dir, fallbackFileName)));
        assert.equal(await cutOff.reconnect(), true);
        await cutOff.close();
        assert.equal(existsSync(join(dir, fallbackFileName)), false, "replayed");
        assert.ok(existsSync(join(dir, rejectedFileName)), "the fenced line is kept aside");
        const run = await storeDb(store).selectFrom("runs").select("status").where("id", "=", "run-a")
          .executeTakeFirstOrThrow();
        assert.equal(run.status, "running");
        const refused = await store.fleet.fencedWrites();
        assert.deepEqual(refused.map((r) => `${r.op} ${r.via} ${r.current_holder}`), ["finishRun replay b"]);
      });
    });

    it("a fenced line whose lease is still current is replayed like any other", async () => {
      await withState(backend, async (store, dir) => {
        const a = await store.fleet.acquire(request("a"));
        assert.ok("granted" in a);
        const fence = { instance: "a", leases: [{ key: "project:shop", token: a.granted.token }] };
        await store.fenced(fence).startRun(newRun("run-a"));
        const cutOff = await finishCutOff(backend, dir, fence);
        assert.equal(await cutOff.reconnect(), true);
        assert.equal(cutOff.degraded, false);
        await cutOff.close();
        const run = await storeDb(store).selectFrom("runs").select("status").where("id", "=", "run-a")
          .executeTakeFirstOrThrow();
        assert.equal(run.status, "succeeded");
        assert.deepEqual(await store.fleet.fencedWrites(), []);
      });
    });

    it("runs are judged by their lease: held, expired, or taken over", async () => {
      await withState(backend, async (store) => {
        const a = await store.fleet.acquire(request("a", 150));
        assert.ok("granted" in a);
        const run = { id: "run-a", project: "shop", leaseToken: a.granted.token };
        assert.equal((await store.fleet.runLeaseStates([run])).get("run-a"), "held");
        await delay(300);
        assert.equal((await store.fleet.runLeaseStates([run])).get("run-a"), "expired");
        assert.ok("granted" in await store.fleet.acquire(request("b")));
        assert.equal((await store.fleet.runLeaseStates([run])).get("run-a"), "taken-over");
      });
    });
  });

  describe(`the fleet's runners on ${backend.name}`, () => {
    const registration = (name: string, instance: string, fingerprint = "sha256:one", ttlMs = 60_000) => ({
      name,
      instance,
      host: "h",
      pid: 1,
      labels: ["db"],
      version: "test",
      fingerprint,
      startedAt: "2026-11-21T03:00:00.000Z",
      ttlMs,
    });

    it("one live runner per name; a lost one's name can be taken; a stopped one is not lost", async () => {
      await withState(backend, async (store) => {
        assert.equal(await store.fleet.register(registration("r1", "i1", "sha256:one", 150)), undefined);
        const refused = await store.fleet.register(registration("r1", "i2"));
        assert.equal(refused?.instance, "i1");
        await delay(300);
        assert.equal((await store.fleet.runners())[0].state, "lost");
        assert.equal(await store.fleet.register(registration("r1", "i2")), undefined);
        assert.equal(
          await store.fleet.heartbeat({ name: "r1", instance: "i1", fingerprint: "f", work: null, heldBack: null }),
          false,
          "the old instance's beat is not taken for the new one's",
        );
        await store.fleet.stop("r1", "i2", "2026-11-21T03:05:00.000Z");
        const [runner] = await store.fleet.runners();
        assert.equal(runner.state, "stopped");
        assert.deepEqual(runner.labels, ["db"]);
      });
    });

    it("the fleet's config is the one first seen last among live runners; an old config coming back does not win", async () => {
      await withState(backend, async (store) => {
        await store.fleet.register(registration("old", "i1", "sha256:one"));
        await delay(20);
        await store.fleet.register(registration("new", "i2", "sha256:two"));
        assert.equal((await store.fleet.newestConfig())?.fingerprint, "sha256:two");
        // A third runner started later with the first config: that config was seen before.
        await store.fleet.register(registration("late", "i3", "sha256:one"));
        assert.equal((await store.fleet.newestConfig())?.fingerprint, "sha256:two");
        // Once no live runner runs it, the fleet's config is what the live ones run.
        await store.fleet.stop("new", "i2", "2026-11-21T03:05:00.000Z");
        assert.equal((await store.fleet.newestConfig())?.fingerprint, "sha256:one");
      });
    });
  });
}
