/**
 * What the state keeps for the prune cadence and for saved plans with held deletions (issue 18, points 5 and 6):
 * how many snapshots were forgotten in each repository since its last successful prune, and which forgets of an
 * applied plan are still held for approval. Real SQLite in a temp folder, and a real PostgreSQL.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { StateStore } from "../../src/state/store.ts";
import { type StateBackend, stateBackends, stopStateBackends } from "../support/state-backends.ts";

async function withStore(backend: StateBackend, body: (store: StateStore) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "backupctl-prune-counts-"));
  const store = await backend.open(dir);
  try {
    await body(store);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function stage(
  store: StateStore,
  type: "forget" | "prune",
  repository: string,
  at: string,
  status: "succeeded" | "failed" | "skipped",
  forgotten?: number,
): Promise<void> {
  const id = await store.startStage({ runId: null, type, repository, startedAt: at });
  await store.finishStage(id, { status, finishedAt: at, durationMs: 1, forgotten });
}

after(stopStateBackends);

for (const backend of stateBackends) {
  describe(`${backend.name}: StateStore.observe: snapshots forgotten since the last prune`, () => {
    it("adds up the successful forgets after the repository's last successful prune, per repository", async () => {
      await withStore(backend, async (store) => {
        await stage(store, "forget", "local", "2026-11-01T03:00:00.000Z", "succeeded", 7); // before the prune
        await stage(store, "prune", "local", "2026-11-02T03:00:00.000Z", "succeeded");
        await stage(store, "forget", "local", "2026-11-03T03:00:00.000Z", "succeeded", 2);
        await stage(store, "forget", "local", "2026-11-04T03:00:00.000Z", "skipped", 5); // held: nothing forgotten
        await stage(store, "forget", "local", "2026-11-05T03:00:00.000Z", "failed", 4);
        await stage(store, "prune", "local", "2026-11-05T04:00:00.000Z", "failed"); // a failed prune frees nothing
        await stage(store, "forget", "local", "2026-11-06T03:00:00.000Z", "succeeded", 3);
        // offsite was never pruned: every forget counts.
        await stage(store, "forget", "offsite", "2026-11-01T03:00:00.000Z", "succeeded", 1);
        await stage(store, "forget", "offsite", "2026-11-06T03:00:00.000Z", "succeeded", 1);
        // archive: pruned after its forget.
        await stage(store, "forget", "archive", "2026-11-01T03:00:00.000Z", "succeeded", 9);
        await stage(store, "prune", "archive", "2026-11-01T04:00:00.000Z", "succeeded");
        const forgets = (await store.observe()).maintenance.filter((m) => m.type === "forget")
          .sort((a, b) => a.repository!.localeCompare(b.repository!));
        assert.deepEqual(forgets, [
          { type: "forget", repository: "archive", at: "2026-11-01T03:00:00.000Z", forgotten: 0 },
          { type: "forget", repository: "local", at: "2026-11-06T03:00:00.000Z", forgotten: 5 },
          { type: "forget", repository: "offsite", at: "2026-11-06T03:00:00.000Z", forgotten: 2 },
        ]);
      });
    });
  });

  describe(`${backend.name}: StateStore: saved plans applied with deletions held`, () => {
    it("records the held forgets of a plan, then what is still held of them, until none remain", async () => {
      await withStore(backend, async (store) => {
        await store.markPlanApplied("plan-1", "2026-11-21T10:00:00.000Z");
        await store.markPlanApplied("plan-2", "2026-11-21T10:00:00.000Z", ["a3", "a4"]);
        let observed = await store.observe();
        assert.deepEqual(observed.appliedPlans.sort(), ["plan-1", "plan-2"]);
        assert.deepEqual(observed.heldPlans, { "plan-2": ["a3", "a4"] });

        await store.markHeldDeletions("plan-2", ["a4"]);
        observed = await store.observe();
        assert.deepEqual(observed.heldPlans, { "plan-2": ["a4"] });

        await store.markHeldDeletions("plan-2", []);
        observed = await store.observe();
        assert.deepEqual(observed.heldPlans, {});
        assert.deepEqual(observed.appliedPlans.sort(), ["plan-1", "plan-2"], "still applied: it never runs again");
      });
    });
  });
}
