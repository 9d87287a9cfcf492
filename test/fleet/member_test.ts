/**
 * FleetMember (src/fleet/member.ts) on a real state: a lease is held once also within one process (two units of one
 * runner never share a repository's exclusive work), a waiting acquisition gets it when the other lets go, and a
 * heartbeat notices a lease another process has taken over.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import { LockError } from "../../src/errors.ts";
import { FleetMember } from "../../src/fleet/member.ts";
import { StateStore } from "../../src/state/store.ts";
import { storeDb } from "../support/state-db.ts";

async function withMember(body: (member: FleetMember, store: StateStore, lines: string[]) => Promise<void>) {
  const dir = mkdtempSync(join(tmpdir(), "backupctl-member-"));
  const store = await StateStore.open(dir, { warn: () => {} });
  const lines: string[] = [];
  const member = await FleetMember.join(store, {
    name: "r1",
    labels: ["r1"],
    host: "h",
    ttlMs: 2000,
    version: "test",
    fingerprint: "sha256:f",
    register: true,
    log: (line) => lines.push(line),
  });
  try {
    await body(member, store, lines);
  } finally {
    await member.leave();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

describe("FleetMember", () => {
  it("holds a lease once within its own process; a waiting acquisition gets it when the first lets go", async () => {
    await withMember(async (member) => {
      const first = await member.tryAcquire("repository:main");
      assert.ok(!("held" in first));
      const second = await member.tryAcquire("repository:main");
      assert.ok("held" in second, "not shared by two units of one runner");
      await assert.rejects(member.acquire("repository:main", 300, 50), LockError);
      const waiting = member.acquire("repository:main", 5000, 50);
      await delay(150);
      await member.release(first);
      const third = await waiting;
      assert.ok(third.token > first.token, "a new acquisition, with a new token");
    });
  });

  it("a heartbeat marks a lease another process took over as lost, and its refusal names the taker", async () => {
    await withMember(async (member, store, lines) => {
      const lease = await member.tryAcquire("project:shop");
      assert.ok(!("held" in lease));
      // Its holder silent past the TTL (as if paused): the lease expired, and another runner takes it over.
      await storeDb(store).updateTable("leases").set({ expires_ms: 1 }).where("key", "=", "project:shop").execute();
      const other = await store.fleet.acquire({ key: "project:shop", holder: "r2", instance: "other", ttlMs: 60_000 });
      assert.ok("granted" in other);
      await member.beat();
      assert.equal(member.lost("project:shop"), true);
      assert.ok(lines.some((line) => /lease project:shop was taken over/.test(line)), lines.join("\n"));
      assert.match(await member.refusal(member.fence([lease])) ?? "", /taken over by runner r2/);
      const [runner] = await store.fleet.runners();
      assert.equal(runner.state, "live");
    });
  });
});
