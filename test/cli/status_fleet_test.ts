/**
 * `backupctl status` of a fleet (issue 20, point 7), on SQLite and on a real PostgreSQL state opened read-only: the
 * runners (labels, version, config and drift, heartbeat, work, why held back), the leases held, per project who ran it
 * last, the unplaced projects and the fenced writes; a lost runner or an unplaced project is exit 1. Without runners
 * nothing of it shows. The state is filled through the store's fleet operations, as runners fill it.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { recordFencedWrite } from "../../src/state/fleet.ts";
import { finishedRun, type FleetState, fleetState, registration } from "../support/fleet-state.ts";
import { stateBackends, stopStateBackends } from "../support/state-backends.ts";
import { storeDb } from "../support/state-db.ts";

const older = `sha256:${"1".repeat(64)}`;
const newer = `sha256:${"2".repeat(64)}`;

interface FleetJson {
  newest_config: { fingerprint: string; runner: string } | null;
  runners: { name: string; state: string; labels: string[]; config_drift: boolean; work: string | null }[];
  leases: { key: string; holder: string; run_id: string | null; expires_in_ms: number }[];
  unplaced: { project: string; runs_on: string[] }[];
  fenced_writes: { count: number; newest: { op: string; run_id: string | null; taken_over_by: string | null }[] };
}

for (const backend of stateBackends) {
  describe(`status of a fleet on ${backend.name}`, () => {
    let state: FleetState;
    before(async () => {
      state = await fleetState(backend);
    });
    after(async () => {
      await state.cleanup();
      if (backend.name === "postgres") await stopStateBackends();
    });

    it("shows no fleet while no runner registered", async () => {
      await finishedRun(state.store, {
        id: "r-blog-1",
        project: "blog",
        startedAt: "2026-12-06T03:00:00.000Z",
        host: "old-host",
      });
      const json = await state.cli(["status", "--json"]);
      assert.equal(json.code, 0, json.stdout + json.stderr);
      const parsed = JSON.parse(json.stdout) as { fleet?: unknown; projects: Record<string, unknown>[] };
      assert.equal(parsed.fleet, undefined);
      assert.ok(parsed.projects.every((project) => !("ran_by" in project)), json.stdout);
      const text = await state.cli(["status"]);
      assert.equal(text.code, 0, text.stdout + text.stderr);
      assert.doesNotMatch(text.stdout, /Runners|RAN BY/);
    });

    it("shows runners, drift, a lost runner, leases, who ran each project, unplaced projects and fenced writes", async () => {
      const fleet = state.store.fleet;
      // db-1 brings the newest config; files-1 still runs the older one; gone-1 stopped heart-beating.
      assert.equal(await fleet.register(registration("files-1", ["files"], older)), undefined);
      assert.equal(await fleet.register(registration("db-1", ["db", "eu"], newer)), undefined);
      assert.equal(await fleet.register(registration("gone-1", ["gpu"], newer)), undefined);
      const db = storeDb(state.store);
      // Registrations within one millisecond would tie: the newer config is made first seen later, for sure.
      const now = await fleet.now();
      await db.updateTable("config_seen").set({ first_seen_ms: now - 60_000 }).where("fingerprint", "=", older)
        .execute();
      await db.updateTable("runners").set({ heartbeat_ms: now - 600_000 }).where("name", "=", "gone-1").execute();
      assert.equal(
        await fleet.heartbeat({
          name: "files-1",
          instance: "files-1-instance",
          fingerprint: older,
          work: null,
          heldBack: "config drift: runs sha256:111111111111, the fleet runs sha256:222222222222",
        }),
        true,
      );
      assert.equal(
        await fleet.heartbeat({
          name: "db-1",
          instance: "db-1-instance",
          fingerprint: newer,
          work: "backup shop",
          heldBack: null,
        }),
        true,
      );

      const acquired = await fleet.acquire({
        key: "project:shop",
        holder: "db-1",
        instance: "db-1-instance",
        ttlMs: 120_000,
      });
      assert.ok("granted" in acquired, JSON.stringify(acquired));
      const token = acquired.granted.token;
      await finishedRun(state.store, {
        id: "r-shop-1",
        project: "shop",
        startedAt: "2026-12-06T03:00:00.000Z",
        host: "db-1.example",
        runner: "db-1",
        leaseToken: token,
      });
      await fleet.setRun("project:shop", token, "r-shop-1");
      // A paused holder's late write, refused by the fence.
      await recordFencedWrite(db, {
        op: "finishRun",
        runId: "r-shop-0",
        instance: "gone-1-instance",
        via: "live",
        at: new Date().toISOString(),
      }, { key: "project:shop", token: token - 1, currentToken: token, currentHolder: "db-1" });

      const json = await state.cli(["status", "--json"]);
      assert.equal(json.code, 1, "a lost runner and an unplaced project fail status: " + json.stdout + json.stderr);
      const parsed = JSON.parse(json.stdout) as { fleet: FleetJson; projects: { project: string; ran_by: string }[] };
      assert.deepEqual(parsed.fleet.newest_config, { fingerprint: newer, runner: "db-1" });
      assert.deepEqual(
        parsed.fleet.runners.map((r) => [r.name, r.state, r.labels.join(","), r.config_drift, r.work]),
        [
          ["db-1", "live", "db,eu", false, "backup shop"],
          ["files-1", "live", "files", true, null],
          ["gone-1", "lost", "gpu", false, null],
        ],
      );
      assert.deepEqual(parsed.fleet.leases.map((l) => [l.key, l.holder, l.run_id]), [[
        "project:shop",
        "db-1",
        "r-shop-1",
      ]]);
      assert.ok(parsed.fleet.leases[0].expires_in_ms > 60_000, JSON.stringify(parsed.fleet.leases));
      // shop needs db (db-1 has it); wiki needs gpu, whose only runner is lost.
      assert.deepEqual(parsed.fleet.unplaced, [{ project: "wiki", runs_on: ["gpu"] }]);
      assert.equal(parsed.fleet.fenced_writes.count, 1);
      assert.deepEqual(
        parsed.fleet.fenced_writes.newest.map((w) => [w.op, w.run_id, w.taken_over_by]),
        [["finishRun", "r-shop-0", "db-1"]],
      );
      assert.deepEqual(
        Object.fromEntries(parsed.projects.map((p) => [p.project, p.ran_by])),
        { shop: "db-1", wiki: null, blog: "old-host" },
      );

      const text = await state.cli(["status"]);
      assert.equal(text.code, 1, text.stdout + text.stderr);
      assert.match(text.stdout, /RAN BY/);
      assert.match(text.stdout, /\n\nRunners \(newest config sha256:222222222222, from db-1\):/);
      assert.match(
        text.stdout,
        /files-1 +live +files +0\.0\.0-test +sha256:111111111111 \(config drift\) +(just now|\d+s ago) +- +config drift: /,
      );
      assert.match(
        text.stdout,
        /db-1 +live +db,eu +0\.0\.0-test +sha256:222222222222 +(just now|\d+s ago) +backup shop +-/,
      );
      assert.match(text.stdout, /gone-1 +LOST +gpu .* 10m( \d+s)? ago/);
      assert.match(text.stdout, /gone-1 is LOST: no heartbeat since .* on gone-1\.example/);
      assert.match(text.stdout, /project:shop by db-1 \(run r-shop-1\), expires in \dm/);
      assert.match(text.stdout, /UNPLACED projects .*: 1\n +wiki: needs gpu/);
      assert.match(
        text.stdout,
        /writes refused by a fence in the last 7 days: 1\n.* finishRun of run r-shop-0 under project:shop, taken over by db-1/,
      );
      assert.doesNotMatch(text.stdout + json.stdout, /not-a-real-secret|pw-/, "no secret shown");
    });

    it("is healthy again once the lost runner stopped and a runner with the labels came", async () => {
      const fleet = state.store.fleet;
      await fleet.stop("gone-1", "gone-1-instance", new Date().toISOString());
      assert.equal(await fleet.register(registration("gpu-1", ["gpu"], newer)), undefined);
      const json = await state.cli(["status", "--json"]);
      assert.equal(json.code, 0, json.stdout + json.stderr);
      const parsed = JSON.parse(json.stdout) as { fleet: FleetJson };
      assert.deepEqual(parsed.fleet.unplaced, []);
      assert.deepEqual(parsed.fleet.runners.map((r) => [r.name, r.state]), [
        ["db-1", "live"],
        ["files-1", "live"],
        ["gone-1", "stopped"],
        ["gpu-1", "live"],
      ]);
    });
  });
}
