/**
 * `backupctl history --runner NAME` (issue 20, point 7), on SQLite and on a real PostgreSQL state opened read-only:
 * only the runs that runner made; each run's runner in JSON and in the text; operations audited without a run have no
 * runner and are left out by the filter.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { finishedRun, type FleetState, fleetState, registration } from "../support/fleet-state.ts";
import { stateBackends, stopStateBackends } from "../support/state-backends.ts";

const config = `sha256:${"3".repeat(64)}`;

for (const backend of stateBackends) {
  describe(`history by runner on ${backend.name}`, () => {
    let state: FleetState;
    before(async () => {
      state = await fleetState(backend);
      const fleet = state.store.fleet;
      for (const name of ["db-1", "files-1"]) {
        assert.equal(await fleet.register(registration(name, [], config)), undefined);
      }
      const runs = [
        { id: "r1", project: "shop", runner: "db-1", startedAt: "2026-12-04T03:00:00.000Z" },
        { id: "r2", project: "blog", runner: "files-1", startedAt: "2026-12-04T03:01:00.000Z" },
        { id: "r3", project: "shop", runner: "db-1", startedAt: "2026-12-05T03:00:00.000Z" },
      ];
      for (const run of runs) {
        const lease = await fleet.acquire({
          key: `project:${run.project}`,
          holder: run.runner,
          instance: `${run.runner}-instance`,
          ttlMs: 120_000,
        });
        assert.ok("granted" in lease, JSON.stringify(lease));
        await finishedRun(state.store, { ...run, host: `${run.runner}.example`, leaseToken: lease.granted.token });
        await fleet.release(`project:${run.project}`, lease.granted.token);
      }
      // A run from before the fleet, and an operation without a run: neither has a runner.
      await finishedRun(state.store, {
        id: "r0",
        project: "shop",
        host: "old-host",
        startedAt: "2026-12-01T03:00:00.000Z",
      });
      const stage = await state.store.startStage({
        runId: null,
        type: "prune",
        repository: "local",
        startedAt: "2026-12-05T04:00:00.000Z",
      });
      await state.store.finishStage(stage, {
        status: "succeeded",
        finishedAt: "2026-12-05T04:00:01.000Z",
        durationMs: 1000,
      });
    });
    after(async () => {
      await state.cleanup();
      if (backend.name === "postgres") await stopStateBackends();
    });

    it("lists only the runs of the runner named, newest first", async () => {
      const result = await state.cli(["history", "--json", "--runner", "db-1"]);
      assert.equal(result.code, 0, result.stdout + result.stderr);
      const entries = JSON.parse(result.stdout) as { id: string | null; kind: string; runner: string | null }[];
      assert.deepEqual(entries.map((e) => [e.id, e.runner]), [["r3", "db-1"], ["r1", "db-1"]]);
      const none = await state.cli(["history", "--runner", "nobody"]);
      assert.equal(none.code, 0, none.stderr);
      assert.equal(none.stdout, "Nothing recorded that matches.\n");
    });

    it("shows each run's runner, null for runs outside a fleet and for operations", async () => {
      const result = await state.cli(["history", "--json"]);
      assert.equal(result.code, 0, result.stdout + result.stderr);
      const entries = JSON.parse(result.stdout) as { id: string | null; kind: string; runner: string | null }[];
      assert.deepEqual(entries.map((e) => [e.kind, e.id, e.runner]), [
        ["prune", null, null],
        ["backup", "r3", "db-1"],
        ["backup", "r2", "files-1"],
        ["backup", "r1", "db-1"],
        ["backup", "r0", null],
      ]);
      const text = await state.cli(["history"]);
      assert.equal(text.code, 0, text.stderr);
      assert.match(text.stdout, /shop +succeeded in 1s +\(r3, watch on db-1\.example, runner db-1\)/);
      assert.match(text.stdout, /shop +succeeded in 1s +\(r0, watch on old-host\)\n/);
    });
  });
}
