/**
 * watch's /healthz and /metrics about its runner (issue 20, points 5, 6 and 8), served in process on a loopback port
 * over a real state (SQLite and PostgreSQL): every per-project series carries the runner's name; a runner held back
 * (config drift) is degraded and says why, with a short `reason` label; a runner that cannot reach the state database
 * is unhealthy (503); the projects no live runner can take are exported as unplaced.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { loadConfig } from "../../src/config/load.ts";
import { heldBackReason, startHttp } from "../../src/watch/http.ts";
import { Watcher } from "../../src/watch/loop.ts";
import { type FleetState, fleetState } from "../support/fleet-state.ts";
import { stateBackends, stopStateBackends } from "../support/state-backends.ts";

const drift = `config drift: runs sha256:${"1".repeat(12)}, the fleet runs sha256:${"2".repeat(12)} (from db-1)`;

for (const backend of stateBackends) {
  describe(`/healthz and /metrics of a runner on ${backend.name}`, () => {
    let state: FleetState;
    let watcher: Watcher;
    let http: Awaited<ReturnType<typeof startHttp>>;
    const get = async (path: string) => {
      const response = await fetch(`http://127.0.0.1:${http.port}${path}`);
      return { status: response.status, body: await response.text() };
    };
    const health = async () => {
      const response = await get("/healthz");
      return { status: response.status, health: JSON.parse(response.body) };
    };

    before(async () => {
      state = await fleetState(backend);
      const loaded = await loadConfig(state.config);
      watcher = new Watcher(loaded, state.store, {
        concurrency: 1,
        maxSleepMs: 60_000,
        lockWaitMs: 1_000,
        host: "http-test-host",
        clock: { now: () => new Date() },
        log: () => {},
        runnerName: "runner-a",
        labels: ["db", "eu"],
      });
      http = await startHttp(watcher, { host: "127.0.0.1", port: 0 });
    });
    after(async () => {
      await http?.close();
      await state.cleanup();
      if (backend.name === "postgres") await stopStateBackends();
    });

    it("without the dashboard (beyond loopback, no token), its paths say how to turn it on; probes still answer", async () => {
      for (const path of ["/", "/plan", "/projects/shop"]) {
        const { status, body } = await get(path);
        assert.equal(status, 404, path);
        assert.match(body, /the dashboard beyond loopback needs a token: set BACKUPCTL_DASHBOARD_TOKEN/);
      }
      assert.equal((await get("/metrics")).status, 200);
    });

    it("labels every per-project series with the runner; connected, not held back, nothing unplaced", async () => {
      const { status, health: body } = await health();
      assert.equal(status, 200, JSON.stringify(body));
      assert.equal(body.status, "ok", JSON.stringify(body));
      assert.deepEqual(body.runner, {
        name: "runner-a",
        labels: ["db", "eu"],
        connected: true,
        held_back: null,
        unplaced: [],
      });
      const metrics = (await get("/metrics")).body;
      const projectSeries = metrics.split("\n").filter((line) => /^backupctl_\w+\{[^}]*project="/.test(line));
      assert.ok(projectSeries.length >= 9, metrics);
      for (const line of projectSeries) assert.match(line, /runner="runner-a"/);
      assert.match(metrics, /^backupctl_runs_total\{project="shop",status="succeeded",runner="runner-a"\} 0$/m);
      assert.match(metrics, /^backupctl_snapshots\{project="shop",repository="local",runner="runner-a"\} 0$/m);
      assert.match(metrics, /^backupctl_runner_connected\{runner="runner-a"\} 1$/m);
      assert.match(metrics, /^backupctl_runner_held_back\{runner="runner-a",reason=""\} 0$/m);
      assert.doesNotMatch(metrics, /^backupctl_project_unplaced\{/m);
    });

    it("is degraded while held back, with the reason; the metric's reason is short", async () => {
      watcher.status.runner.heldBack = drift;
      const { status, health: body } = await health();
      assert.equal(status, 200, JSON.stringify(body));
      assert.equal(body.status, "degraded");
      assert.deepEqual(body.reasons, [`runner runner-a takes no new work: ${drift}`]);
      assert.equal(body.runner.held_back, drift);
      const metrics = (await get("/metrics")).body;
      assert.match(metrics, /^backupctl_runner_held_back\{runner="runner-a",reason="config drift"\} 1$/m);
      assert.equal(
        heldBackReason("the state database is out of reach (connection refused)"),
        "the state database is out of reach",
      );
      assert.equal(heldBackReason("x".repeat(100)).length, 60);
    });

    it("exports the projects no live runner can take", async () => {
      watcher.status.runner.unplaced = ["wiki"];
      const metrics = (await get("/metrics")).body;
      assert.match(metrics, /^backupctl_project_unplaced\{project="wiki",runner="runner-a"\} 1$/m);
      assert.doesNotMatch(metrics, /^backupctl_project_unplaced\{project="shop"/m);
      assert.deepEqual((await health()).health.runner.unplaced, ["wiki"]);
    });

    it("is unhealthy (503) while the runner cannot reach the state database, and healthy when it reconnects", async () => {
      watcher.status.runner.connected = false;
      watcher.status.runner.heldBack = "the state database is out of reach";
      const { status, health: body } = await health();
      assert.equal(status, 503, JSON.stringify(body));
      assert.equal(body.status, "unhealthy");
      assert.deepEqual(body.reasons, [
        "runner runner-a cannot reach the state database; it takes no new work until it reconnects",
      ]);
      assert.match((await get("/metrics")).body, /^backupctl_runner_connected\{runner="runner-a"\} 0$/m);

      watcher.status.runner.connected = true;
      watcher.status.runner.heldBack = null;
      watcher.status.runner.unplaced = [];
      const healed = await health();
      assert.equal(healed.status, 200, JSON.stringify(healed.health));
      assert.equal(healed.health.status, "ok");
    });
  });
}
