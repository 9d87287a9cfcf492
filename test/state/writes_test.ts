/**
 * The registry of writes (src/state/writes.ts): every operation is a StateStore method of the same name, its
 * arguments survive the fallback file (written as the store writes them, read back and validated as a replay reads
 * them), and a store that could write nothing replays every operation into the database at the next open.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fallbackFileName, parseFallback } from "../../src/state/fallback.ts";
import { StateStore } from "../../src/state/store.ts";
import { recordedArgs, type WriteArgs, type WriteOp, writeOperations } from "../../src/state/writes.ts";
import { stateBackends, stopStateBackends } from "../support/state-backends.ts";
import { storeDb } from "../support/state-db.ts";

const notification = {
  channel: "ops",
  event: "run_failed",
  project: "shop",
  runId: "run-1",
  key: null,
  payload: JSON.stringify({ text: "shop failed" }),
  createdAt: "2026-11-21T03:05:00.000Z",
  expiresAt: "2026-11-22T03:05:00.000Z",
};

const snapshot = {
  id: "4f2a9c1e0b7d6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a1f",
  short_id: "4f2a9c1e",
  time: "2026-11-21T03:01:00.000Z",
  project: "shop",
  source: "db",
  run_id: "run-1",
  hostname: "backup-host",
  tags: JSON.stringify(["backupctl", "project=shop", "source=db"]),
  paths: JSON.stringify(["/db.sql"]),
  size: 1234,
  recorded_at: "2026-11-21T03:02:00.000Z",
  original: null,
};

/**
 * Arguments for every operation, in an order that makes sense against one database (a run before its stage).
 * Typed by the registry: an operation added there fails to compile here until it has its sample.
 */
const samples: { [Op in WriteOp]: WriteArgs<Op> } = {
  markRepositoryInitialized: ["local", "/srv/restic", "2026-11-20T00:00:00.000Z"],
  startRun: [{
    id: "run-1",
    project: "shop",
    command: "apply",
    startedAt: "2026-11-21T03:00:00.000Z",
    fingerprint: "f1",
    host: "backup-host",
  }, [notification]],
  setRunStage: ["run-1", "backup shop/db"],
  startStage: [{ runId: "run-1", type: "backup", project: "shop", source: "db", repository: "local", startedAt: "t0" }],
  // The id is the one startStage returned (negative while in the fallback): set where the sample is used.
  finishStage: [0, {
    status: "succeeded",
    finishedAt: "t1",
    durationMs: 5,
    bytes: 1234,
    bytesAdded: 100,
    snapshotId: snapshot.short_id,
  }, []],
  addSnapshots: ["local", [snapshot]],
  replaceSnapshots: ["local", [snapshot], "2026-11-21T03:03:00.000Z"],
  markRefreshed: ["local", "2026-11-21T03:04:00.000Z"],
  finishRun: ["run-1", { status: "succeeded", finishedAt: "2026-11-21T03:05:00.000Z", durationMs: 300000 }, []],
  markRunInterrupted: ["run-1", "2026-11-21T03:06:00.000Z", "process gone"],
  markStagesInterrupted: ["shop", "2026-11-21T03:00:00.000Z", "2026-11-21T03:06:00.000Z", "process gone"],
  enqueueNotifications: [[{ ...notification, event: "overdue", key: "overdue:shop:ops" }]],
  recordRetention: [{ project: "shop", source: "db", repository: "local" }, '{"daily":7}', "t2"],
  markPlanApplied: ["plan-1", "t3", ["forget-1"]],
  markHeldDeletions: ["plan-1", []],
  recordCheck: ["local", "t4", "ok"],
  bumpSerial: [],
};

const operations = Object.keys(samples) as WriteOp[];

describe("the registry of writes", () => {
  it("has a sample here for every operation, and each is a StateStore method of the same name", () => {
    assert.deepEqual([...operations].sort(), Object.keys(writeOperations).sort());
    for (const op of operations) assert.equal(typeof StateStore.prototype[op], "function", op);
  });

  it("records each operation's arguments so that a replay reads them back unchanged", () => {
    for (const op of operations) {
      const args = recordedArgs(op, samples[op]);
      const line = JSON.stringify({
        v: 1,
        op,
        args,
        at: "2026-11-21T03:00:00.000Z",
        pid: 4242,
        processStart: null,
        ...(op === "startStage" ? { stageId: -7 } : {}),
      });
      const { lines, rejected } = parseFallback(`${line}\n`);
      assert.deepEqual(rejected, [], op);
      assert.equal(lines[0].record.op, op);
      assert.deepEqual(lines[0].record.args, args, op);
    }
  });

  it("leaves out trailing optional arguments that are empty, and only those", () => {
    const run = samples.startRun[0];
    assert.deepEqual(recordedArgs("startRun", [run, []]), [run]);
    assert.deepEqual(recordedArgs("startRun", [run, undefined]), [run]);
    assert.deepEqual(recordedArgs("startRun", [run, [notification]]), [run, [notification]]);
    assert.deepEqual(recordedArgs("markPlanApplied", ["plan-1", "t3", []]), ["plan-1", "t3"]);
    // Not optional: an empty list of held forgets says none are held any more.
    assert.deepEqual(recordedArgs("markHeldDeletions", ["plan-1", []]), ["plan-1", []]);
  });

  it("rejects a line whose arguments the operation does not take, naming the argument", () => {
    const line = JSON.stringify({ v: 1, op: "recordCheck", args: ["local", 5, "ok"], at: "t", pid: 1 });
    const { lines, rejected } = parseFallback(`${line}\n`);
    assert.equal(lines.length, 0);
    assert.match(rejected[0].reason, /^invalid arguments for recordCheck: args\[1\]: /);
  });
});

after(stopStateBackends);

for (const backend of stateBackends) {
  describe(`the registry of writes on ${backend.name}`, () => {
    it("replays every operation written while the database was locked, none rejected", async () => {
      const stateDir = mkdtempSync(join(tmpdir(), "backupctl-writes-"));
      try {
        const warnings: string[] = [];
        const store = await backend.open(stateDir, { busyTimeoutMs: 50, warn: (m) => warnings.push(m) });
        const lock = await backend.holdWriteLock(stateDir);
        let stageId = 0;
        try {
          for (const op of operations) {
            const args: unknown[] = op === "finishStage" ? [stageId, ...samples.finishStage.slice(1)] : samples[op];
            const method = StateStore.prototype[op] as (...args: unknown[]) => Promise<unknown>;
            const result = await method.apply(store, args);
            if (op === "startStage") stageId = result as number;
          }
          assert.equal(store.degraded, true);
          assert.ok(stageId < 0, "a stage started in the fallback has a negative id");
          const recorded = readFileSync(join(stateDir, fallbackFileName), "utf8").trim().split("\n")
            .map((line) => JSON.parse(line).op);
          assert.deepEqual(recorded, operations);
        } finally {
          await lock.release();
          await store.close();
        }

        const reopened = await backend.open(stateDir, { warn: (m) => warnings.push(m) });
        try {
          assert.deepEqual(reopened.replayed, { applied: operations.length, rejected: 0 });
          const db = storeDb(reopened);
          const run = await db.selectFrom("runs").select(["status", "stage", "error"]).executeTakeFirstOrThrow();
          assert.deepEqual({ ...run }, { status: "succeeded", stage: null, error: null });
          const stage = await db.selectFrom("stages").select(["status", "bytes", "snapshot_id"])
            .executeTakeFirstOrThrow();
          assert.deepEqual({ ...stage }, { status: "succeeded", bytes: 1234, snapshot_id: snapshot.short_id });
          assert.deepEqual(await reopened.snapshotIds("local"), [snapshot.id]);
          const repository = await db.selectFrom("repositories").selectAll().executeTakeFirstOrThrow();
          assert.deepEqual(
            [repository.last_refresh_at, repository.last_check_at, repository.last_check_status],
            ["2026-11-21T03:04:00.000Z", "t4", "ok"],
          );
          assert.deepEqual(
            (await db.selectFrom("outbox").select("event").orderBy("id").execute()).map((r) => r.event),
            [
              "run_failed",
              "overdue",
            ],
          );
          const observed = await reopened.observe();
          assert.deepEqual(observed.appliedPlans, ["plan-1"]);
          assert.deepEqual(observed.heldPlans, {});
          assert.deepEqual(observed.retention.map((r) => r.policy), ['{"daily":7}']);
          assert.equal(observed.serial, 1);
        } finally {
          await reopened.close();
        }
      } finally {
        rmSync(stateDir, { recursive: true, force: true });
      }
    });
  });
}
