/**
 * The audit fallback (src/state/fallback.ts and the store's degraded mode and replay in src/state/store.ts) against
 * real failures of a real SQLite file: a `sqlite3` process holding the write lock (`BEGIN EXCLUSIVE`, WAL mode: readers
 * still read, writers get SQLITE_BUSY after the busy timeout), an immutable database file (SQLITE_READONLY), a page
 * overwritten under an open store (SQLITE_NOTADB, SQLITE_CORRUPT), a page limit (SQLITE_FULL); then replays of good,
 * damaged and concurrently claimed fallback files, on SQLite and on a real PostgreSQL (its writers' lock held by another
 * connection). Needs the `sqlite3` program (Debian package sqlite3); the
 * immutable-file test needs root and a file system with `chattr +i` and says why when it is skipped.
 * Runs under `deno test -A test/state/` and `bun --no-install test ./test/state/`.
 */
import { after, describe, it } from "node:test";
import { holdWriteLock } from "../support/sqlite-lock.ts";
import { sqliteBackend, type StateBackend, stateBackends, stopStateBackends } from "../support/state-backends.ts";
import assert from "node:assert/strict";
import { execFile, spawn, spawnSync } from "node:child_process";
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { sql } from "kysely";
import { currentProcessStart } from "../../src/runtime/process.ts";
import {
  appendFallback,
  claimFallback,
  fallbackFileName,
  parseFallback,
  rejectedFileName,
} from "../../src/state/fallback.ts";
import type { SnapshotTable } from "../../src/state/schema.ts";
import { defaultBusyTimeoutMs, StateStore, unwritableReason } from "../../src/state/store.ts";
import { storeDb } from "../support/state-db.ts";

const repoRoot = fileURLToPath(new URL("../..", import.meta.url));
const storeModule = new URL("../../src/state/store.ts", import.meta.url).href;

/** Short, so that a test waits little for the lock another process holds. */
const busyTimeoutMs = 300;

// Helpers.

async function inStateDir(body: (stateDir: string) => Promise<void> | void): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), "backupctl-fallback-test-"));
  try {
    await body(join(root, "state"));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/** Opens the store with the short busy timeout, collecting its warnings. */
async function open(
  stateDir: string,
  warnings: string[] = [],
  timeout = busyTimeoutMs,
  backend: StateBackend = sqliteBackend,
): Promise<StateStore> {
  return await backend.open(stateDir, { busyTimeoutMs: timeout, warn: (message) => warnings.push(message) });
}

async function withOpen<T>(
  stateDir: string,
  body: (store: StateStore) => Promise<T> | T,
  backend: StateBackend = sqliteBackend,
): Promise<T> {
  const store = await open(stateDir, [], busyTimeoutMs, backend);
  try {
    return await body(store);
  } finally {
    await store.close();
  }
}

/** The fallback files in the state folder, sorted. */
function fallbackFiles(stateDir: string): string[] {
  return readdirSync(stateDir).filter((name) => name.startsWith("fallback")).sort();
}

/** Every line of a JSONL file, parsed. */
function jsonLines(path: string): Record<string, unknown>[] {
  return readFileSync(path, "utf8").split("\n").filter((line) => line !== "").map((line) => JSON.parse(line));
}

function mode(path: string): number {
  return statSync(path).mode & 0o777;
}

/** Rows as plain objects: node:sqlite returns null-prototype rows, which strict deep equality tells apart. */
function plain<T extends object>(rows: T[]): T[] {
  return rows.map((row) => ({ ...row }));
}

function snapshot(id: string, time: string): Omit<SnapshotTable, "repository"> {
  return {
    id,
    short_id: id.slice(0, 8),
    time,
    project: "shop",
    source: "db",
    run_id: "run-2",
    hostname: "backup-host",
    tags: JSON.stringify(["backupctl", "project=shop", "source=db"]),
    paths: JSON.stringify(["/db.sql"]),
    size: null,
    recorded_at: "2026-11-21T03:02:00.000Z",
    original: null,
  };
}

function run(id: string, startedAt = "2026-11-21T03:00:00.000Z") {
  return { id, project: "shop", command: "apply", startedAt, fingerprint: "sha256:f", host: "h1" };
}

/** A fallback line as the store writes it (for files built by hand). */
function line(op: string, args: unknown[], extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ v: 1, op, args, at: "2026-11-21T03:00:00.000Z", pid: 4242, processStart: "99", ...extra });
}

/** A pid that no process has now: a child that ran and exited. */
function deadPid(): number {
  const child = spawnSync("true");
  return child.pid!;
}

/**
 * Writes with the database locked, so that they land in fallback.jsonl (4 lines): a run, a backup stage (negative
 * id), its end and the run's end.
 */
async function writeThroughFallback(
  stateDir: string,
  runId: string,
  backend: StateBackend = sqliteBackend,
): Promise<void> {
  const store = await open(stateDir, [], busyTimeoutMs, backend);
  const lock = await backend.holdWriteLock(stateDir);
  try {
    await store.startRun(run(runId));
    const stage = await store.startStage({
      runId,
      type: "backup",
      project: "shop",
      source: "db",
      repository: "local",
      startedAt: "2026-11-21T03:00:01.000Z",
    });
    assert.ok(stage < 0);
    await store.finishStage(stage, {
      status: "succeeded",
      finishedAt: "2026-11-21T03:00:05.000Z",
      durationMs: 4000,
      bytes: 1234,
      snapshotId: "aaaa1111",
    });
    await store.finishRun(runId, { status: "succeeded", finishedAt: "2026-11-21T03:00:06.000Z", durationMs: 6000 });
    assert.equal(store.degraded, true);
  } finally {
    await lock.release();
    await store.close();
  }
}

/** Opens the store in a child process of this runtime; resolves with what it printed: its `replayed`. */
async function openInChild(stateDir: string, backend: StateBackend): Promise<string> {
  const options = { busyTimeoutMs: 10000, postgres: await backend.postgresState(stateDir) };
  const code = `const { StateStore } = await import(${JSON.stringify(storeModule)});
const store = await StateStore.open(${JSON.stringify(stateDir)}, ${JSON.stringify(options)});
console.log(JSON.stringify(store.replayed));
await store.close();`;
  const script = join(stateDir, "..", `open-${Math.random().toString(36).slice(2)}.ts`);
  writeFileSync(script, code);
  const argv = "Bun" in globalThis
    ? [process.execPath, "--no-install", script]
    : [process.execPath, "run", "--allow-all", "--quiet", "--config", join(repoRoot, "deno.json"), script];
  return new Promise((resolve, reject) => {
    execFile(argv[0], argv.slice(1), { cwd: repoRoot, timeout: 60_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`child failed: ${error.message}\n${stderr}`));
      else resolve(String(stdout).trim());
    });
  });
}

// Tests.

after(stopStateBackends);

describe("StateStore degraded mode: the database locked by another process", () => {
  it("sends every write to fallback.jsonl (0600, one line per call, there when the call returns); reads still work", async () => {
    await inStateDir(async (stateDir) => {
      const warnings: string[] = [];
      const slowTimeout = 1500;
      const store = await open(stateDir, warnings, slowTimeout);
      const fallback = join(stateDir, fallbackFileName);
      let realStage = 0;
      try {
        // Before the lock: a repository, a run and a stage in the database.
        await store.markRepositoryInitialized("local", "/srv/restic", "2026-11-20T00:00:00.000Z");
        await store.startRun(run("run-1"));
        realStage = await store.startStage({ runId: "run-1", type: "hook", source: "before", startedAt: "t0" });
        assert.ok(realStage > 0);
        const lock = await holdWriteLock(store.path);
        try {
          const first = Date.now();
          await store.setRunStage("run-1", "backup shop/db");
          const waited = Date.now() - first;
          assert.ok(waited >= slowTimeout - 100, `the first write waited the busy timeout (${waited} ms)`);
          assert.equal(store.degraded, true);
          assert.equal(warnings.length, 1);
          assert.match(warnings[0], /state database .*state\.db cannot be written \(database is locked\)/);
          assert.match(warnings[0], /fallback\.jsonl/);
          assert.equal(mode(fallback), 0o600);

          const ops: string[] = ["setRunStage"];
          const expectLine = (op: string) => {
            ops.push(op);
            assert.deepEqual(jsonLines(fallback).map((record) => record.op), ops, `${op} is on disk when it returns`);
          };
          const degradedStart = Date.now();
          await store.finishStage(realStage, { status: "succeeded", finishedAt: "t1", durationMs: 5, note: "hooked" });
          expectLine("finishStage");
          await store.startRun(run("run-2", "2026-11-21T03:00:10.000Z"));
          expectLine("startRun");
          const stage = await store.startStage({
            runId: "run-2",
            type: "backup",
            project: "shop",
            source: "db",
            repository: "local",
            attempt: 2,
            startedAt: "2026-11-21T03:00:11.000Z",
          });
          expectLine("startStage");
          assert.ok(stage < 0 && Number.isSafeInteger(stage), `a synthetic negative id: ${stage}`);
          await store.finishStage(stage, {
            status: "succeeded",
            finishedAt: "2026-11-21T03:01:00.000Z",
            durationMs: 49_000,
            bytes: 4096,
            snapshotId: "abcdef12",
          });
          expectLine("finishStage");
          await store.replaceSnapshots("local", [snapshot("abcdef1234567890", "2026-11-21T03:00:30.000Z")], "t2");
          expectLine("replaceSnapshots");
          await store.recordRetention({ project: "shop", source: "db", repository: "local" }, '{"last":3}', "t3");
          expectLine("recordRetention");
          await store.recordCheck("local", "t4", "ok");
          expectLine("recordCheck");
          await store.markPlanApplied("plan-1", "t5");
          expectLine("markPlanApplied");
          assert.equal(await store.bumpSerial(), 1, "the serial this process reports counts its deferred bump");
          expectLine("bumpSerial");
          await store.finishRun("run-2", { status: "succeeded", finishedAt: "t6", durationMs: 50_000 });
          expectLine("finishRun");
          await store.markRunInterrupted("run-1", "t7", "the test stopped it");
          expectLine("markRunInterrupted");
          const degradedMs = Date.now() - degradedStart;
          assert.ok(degradedMs < slowTimeout, `degraded writes do not wait for the lock (${degradedMs} ms for 11)`);
          assert.equal(warnings.length, 1, "warned once");

          const records = jsonLines(fallback);
          for (const record of records) {
            assert.equal(record.v, 1);
            assert.equal(record.pid, process.pid);
            assert.equal(record.processStart, currentProcessStart());
            assert.match(String(record.at), /^\d{4}-\d\d-\d\dT/);
          }
          const startLine = records.find((record) => record.op === "startStage")!;
          assert.equal(startLine.stageId, stage);
          assert.deepEqual(records[4].args, [stage, {
            status: "succeeded",
            finishedAt: "2026-11-21T03:01:00.000Z",
            durationMs: 49_000,
            bytes: 4096,
            snapshotId: "abcdef12",
          }]);
          assert.deepEqual(records[0].args, ["run-1", "backup shop/db"]);

          // Reads go to the database, which still holds what it had before the lock.
          const observed = await store.observe();
          assert.equal(observed.serial, 0);
          assert.deepEqual(observed.knownRepositories, ["local"]);
          assert.deepEqual((await store.runningRuns()).map((r) => [r.id, r.stage]), [["run-1", null]]);
          assert.deepEqual(await store.listSnapshots({}), []);
        } finally {
          await lock.release();
        }
      } finally {
        await store.close();
      }

      const reopenWarnings: string[] = [];
      const reopened = await open(stateDir, reopenWarnings);
      try {
        assert.deepEqual(reopened.replayed, { applied: 12, rejected: 0 });
        assert.equal(reopened.degraded, false);
        assert.deepEqual(reopenWarnings, []);
        assert.deepEqual(fallbackFiles(stateDir), [], "fallback.jsonl is gone, nothing rejected");
        const runs = plain(
          await storeDb(reopened).selectFrom("runs").select(["id", "status", "stage", "error", "pid", "process_start"])
            .orderBy("id").execute(),
        );
        assert.deepEqual(runs, [
          {
            id: "run-1",
            status: "interrupted",
            stage: "backup shop/db",
            error: "the test stopped it",
            pid: process.pid,
            process_start: currentProcessStart(),
          },
          {
            id: "run-2",
            status: "succeeded",
            stage: null,
            error: null,
            pid: process.pid,
            process_start: currentProcessStart(),
          },
        ]);
        const stages = plain(
          await storeDb(reopened).selectFrom("stages")
            .select(["id", "run_id", "type", "attempt", "status", "bytes", "snapshot_id", "duration_ms", "note"])
            .orderBy("id").execute(),
        );
        assert.equal(stages.length, 2);
        assert.deepEqual(stages[0], {
          id: realStage,
          run_id: "run-1",
          type: "hook",
          attempt: 1,
          status: "succeeded",
          bytes: null,
          snapshot_id: null,
          duration_ms: 5,
          note: "hooked",
        });
        assert.ok(stages[1].id > realStage, `the replayed stage got a real id (${stages[1].id})`);
        assert.deepEqual({ ...stages[1], id: 0 }, {
          id: 0,
          run_id: "run-2",
          type: "backup",
          attempt: 2,
          status: "succeeded",
          bytes: 4096,
          snapshot_id: "abcdef12",
          duration_ms: 49_000,
          note: null,
        });
        const inventory = await reopened.listSnapshots({ repository: "local" });
        assert.deepEqual(inventory.map((s) => [s.id, s.size]), [["abcdef1234567890", 4096]]);
        const observed = await reopened.observe();
        assert.equal(observed.serial, 1);
        assert.deepEqual(observed.appliedPlans, ["plan-1"]);
        assert.deepEqual(observed.retention.map((r) => r.policy), ['{"last":3}']);
        const check = await storeDb(reopened).selectFrom("repositories").select(["last_check_at", "last_check_status"])
          .executeTakeFirstOrThrow();
        assert.deepEqual({ ...check }, { last_check_at: "t4", last_check_status: "ok" });
      } finally {
        await reopened.close();
      }
    });
  });

  it("keeps fallback.jsonl intact when the replay cannot commit, opens degraded, and a later open replays it", async () => {
    await inStateDir(async (stateDir) => {
      await writeThroughFallback(stateDir, "run-1");
      const fallback = join(stateDir, fallbackFileName);
      const before = readFileSync(fallback, "utf8");
      assert.equal(before.split("\n").length - 1, 4);

      const lock = await holdWriteLock(join(stateDir, "state.db"));
      const warnings: string[] = [];
      try {
        const store = await open(stateDir, warnings);
        try {
          assert.equal(store.degraded, true);
          assert.equal(store.replayed, null);
          assert.equal(warnings.length, 1);
          assert.match(warnings[0], /cannot be written \(database is locked\): the 4 lines of fallback\.jsonl wait/);
          assert.equal(readFileSync(fallback, "utf8"), before, "the file is back, byte for byte");
          assert.deepEqual(fallbackFiles(stateDir), [fallbackFileName]);
          assert.deepEqual(plain(await storeDb(store).selectFrom("runs").select("id").execute()), []);
          // This process's results go after the kept ones, without another wait.
          const started = Date.now();
          await store.startRun(run("run-2", "2026-11-21T04:00:00.000Z"));
          assert.ok(Date.now() - started < busyTimeoutMs);
          const after = readFileSync(fallback, "utf8");
          assert.ok(after.startsWith(before));
          assert.equal(JSON.parse(after.slice(before.length)).op, "startRun");
        } finally {
          await store.close();
        }
      } finally {
        await lock.release();
      }

      const store = await open(stateDir);
      try {
        assert.deepEqual(store.replayed, { applied: 5, rejected: 0 });
        assert.deepEqual(fallbackFiles(stateDir), []);
        const runs = plain(await storeDb(store).selectFrom("runs").select(["id", "status"]).orderBy("id").execute());
        assert.deepEqual(runs, [{ id: "run-1", status: "succeeded" }, { id: "run-2", status: "running" }]);
        const stages = plain(await storeDb(store).selectFrom("stages").select(["run_id", "status", "bytes"]).execute());
        assert.deepEqual(stages, [{ run_id: "run-1", status: "succeeded", bytes: 1234 }]);
      } finally {
        await store.close();
      }
    });
  });

  it("throws, naming both causes, when fallback.jsonl cannot be written either", async () => {
    await inStateDir(async (stateDir) => {
      const store = await open(stateDir);
      const lock = await holdWriteLock(store.path);
      try {
        mkdirSync(join(stateDir, fallbackFileName));
        await assert.rejects(
          store.startRun(run("run-1")),
          /^Error: cannot record startRun: the state database .*state\.db cannot be written \(database is locked\), and neither can .*fallback\.jsonl: EISDIR/,
        );
        assert.equal(store.degraded, true);
      } finally {
        await lock.release();
        await store.close();
      }
    });
  });

  it("still throws errors that are not about writability (a constraint), without degrading", async () => {
    await inStateDir(async (stateDir) => {
      await withOpen(stateDir, async (store) => {
        await store.startRun(run("run-1"));
        await assert.rejects(store.startRun(run("run-1")), /UNIQUE constraint failed: runs\.id/);
        await assert.rejects(
          store.startStage({ runId: "no-such-run", type: "backup", startedAt: "t" }),
          /FOREIGN KEY constraint failed/,
        );
        await assert.rejects(store.markPlanApplied("p", "t").then(() => store.markPlanApplied("p", "t")), /UNIQUE/);
        assert.equal(store.degraded, false);
        assert.deepEqual(fallbackFiles(stateDir), []);
      });
    });
  });
});

describe("StateStore degraded mode: a database that cannot be written for other reasons", () => {
  const immutable = canMakeImmutable();
  it(
    "a read-only database file (immutable, refused even to root) opens for reading; its writes go to the fallback",
    { skip: immutable === true ? false : immutable },
    async () => {
      await inStateDir(async (stateDir) => {
        await withOpen(stateDir, (store) => store.startRun(run("run-1")));
        const database = join(stateDir, "state.db");
        spawnSync("chattr", ["+i", database]);
        const warnings: string[] = [];
        try {
          const store = await open(stateDir, warnings);
          try {
            assert.deepEqual((await store.runningRuns()).map((r) => r.id), ["run-1"]);
            await store.finishRun("run-1", { status: "succeeded", finishedAt: "t1", durationMs: 1 });
            assert.equal(store.degraded, true);
            assert.match(warnings[0], /cannot be written \(attempt to write a readonly database\)/);
            assert.deepEqual(jsonLines(join(stateDir, fallbackFileName)).map((r) => r.op), ["finishRun"]);
          } finally {
            await store.close();
          }
        } finally {
          spawnSync("chattr", ["-i", database]);
        }
        await withOpen(stateDir, async (store) => {
          assert.deepEqual(store.replayed, { applied: 1, rejected: 0 });
          const row = await storeDb(store).selectFrom("runs").select("status").executeTakeFirstOrThrow();
          assert.equal(row.status, "succeeded");
        });
      });
    },
  );

  for (
    const damage of [
      { name: "its header overwritten", error: /\(file is not a database\)/, header: true },
      { name: "the runs table's page overwritten", error: /\(database disk image is malformed\)/, header: false },
    ]
  ) {
    it(`a database damaged under an open store (${damage.name}) sends the writes to the fallback`, async () => {
      await inStateDir(async (stateDir) => {
        const warnings: string[] = [];
        const store = await open(stateDir, warnings);
        const database = store.path;
        let saved: { offset: number; bytes: Buffer } | undefined;
        try {
          const pageSize = Number(
            Object.values((await sql`PRAGMA page_size`.execute(storeDb(store))).rows[0] as Record<string, number>)[0],
          );
          const runsPage = Number(
            (await sql<{ rootpage: number }>`SELECT rootpage FROM sqlite_master WHERE name = 'runs'`
              .execute(storeDb(store))).rows[0].rootpage,
          );
          // Everything into the main file, so that the page is read from there…
          await sql`PRAGMA wal_checkpoint(TRUNCATE)`.execute(storeDb(store));
          // …once another connection's commit tells this one its cached pages are out of date.
          const other = spawnSync("sqlite3", [database, "INSERT INTO meta (key, value) VALUES ('other', 'x');"]);
          assert.equal(other.status, 0, String(other.stderr));
          // The header's first 16 bytes are the magic string "SQLite format 3"; a table's page is its b-tree.
          const offset = damage.header ? 0 : (runsPage - 1) * pageSize;
          const length = damage.header ? 16 : pageSize;
          saved = { offset, bytes: readBytes(database, offset, length) };
          overwrite(database, offset, Buffer.alloc(length, 0x5a));

          await store.startRun(run("run-1"));
          assert.equal(store.degraded, true);
          assert.match(warnings[0], damage.error);
          assert.deepEqual(jsonLines(join(stateDir, fallbackFileName)).map((r) => r.op), ["startRun"]);
        } finally {
          await store.close();
          if (saved) overwrite(database, saved.offset, saved.bytes);
        }
        await withOpen(stateDir, async (repaired) => {
          assert.deepEqual(repaired.replayed, { applied: 1, rejected: 0 });
          assert.deepEqual((await repaired.runningRuns()).map((r) => r.id), ["run-1"]);
        });
      });
    });
  }

  it("a full database (SQLITE_FULL at its page limit) sends the writes to the fallback, the whole inventory at once", async () => {
    await inStateDir(async (stateDir) => {
      const warnings: string[] = [];
      const snapshots = Array.from(
        { length: 200 },
        (_, i) => snapshot(`${String(i).padStart(8, "0")}${"f".repeat(56)}`, `2026-11-21T03:${i % 60}:00Z`),
      );
      const store = await open(stateDir, warnings);
      try {
        await store.markRepositoryInitialized("local", "/srv/restic", "t0");
        // No room to grow: the limit is the file's size now (a page limit of this connection only).
        const pages = (await sql<{ page_count: number }>`PRAGMA page_count`.execute(storeDb(store))).rows[0].page_count;
        await sql`PRAGMA max_page_count = ${sql.raw(String(pages))}`.execute(storeDb(store));
        await store.replaceSnapshots("local", snapshots, "t1");
        assert.equal(store.degraded, true);
        assert.match(warnings[0], /cannot be written \(database or disk is full\)/);
        assert.deepEqual(await store.listSnapshots({}), [], "the failed transaction left nothing behind");
      } finally {
        await store.close();
      }
      const [record] = jsonLines(join(stateDir, fallbackFileName));
      assert.equal(record.op, "replaceSnapshots");
      assert.equal((record.args as unknown[][])[1].length, 200);
      await withOpen(stateDir, async (store) => {
        assert.deepEqual(store.replayed, { applied: 1, rejected: 0 });
        assert.equal((await store.listSnapshots({ repository: "local" })).length, 200);
      });
    });
  });
});

for (const backend of stateBackends) {
  describe(`StateStore.open on ${backend.name}: replaying fallback.jsonl`, () => {
    it("applies the good lines and sets aside a corrupt line, a cut last line and the lines the database refuses", async () => {
      await inStateDir(async (stateDir) => {
        await withOpen(stateDir, async (store) => {
          await store.startRun(run("run-0"));
          await store.markRepositoryInitialized("local", "/srv/restic", "t0");
          await store.replaceSnapshots("local", [snapshot("0000kept", "2026-11-20T03:00:00Z")], "t0");
        }, backend);
        const twice = snapshot("1111twice", "2026-11-21T03:00:00Z");
        const lines = [
          line("startRun", [run("run-1")]),
          '{"v":1,"op":"finishRun","args":["run-1",{"status":',
          line("dropTable", ["runs"]),
          line("finishRun", ["run-1", { status: "exploded", finishedAt: "t", durationMs: 1 }]),
          line("startRun", [run("run-0")]),
          line("finishStage", [-77, { status: "succeeded", finishedAt: "t", durationMs: 1 }]),
          line("finishRun", ["run-1", { status: "succeeded", finishedAt: "2026-11-21T03:05:00.000Z", durationMs: 9 }]),
          line("startStage", [{ runId: "run-1", type: "backup", startedAt: "t" }]),
          line("setRunStage", ["no-such-run", "backup"]),
          // Deletes the inventory, inserts one snapshot, then fails on the second: undone as a whole.
          line("replaceSnapshots", ["local", [twice, twice], "t1"]),
          '{"v":1,"op":"startRun","args":[{"id":"run-3","pro',
        ];
        writeFileSync(join(stateDir, fallbackFileName), lines.join("\n"), { mode: 0o600 });

        const warnings: string[] = [];
        const store = await open(stateDir, warnings, busyTimeoutMs, backend);
        try {
          assert.deepEqual(store.replayed, { applied: 2, rejected: 9 });
          assert.equal(store.degraded, false);
          assert.equal(warnings.length, 1);
          assert.match(warnings[0], /^9 lines of fallback\.jsonl could not be replayed .*fallback\.rejected\.jsonl$/);
          const runs = plain(
            await storeDb(store).selectFrom("runs").select(["id", "status", "pid"]).orderBy("id").execute(),
          );
          assert.deepEqual(runs, [
            { id: "run-0", status: "running", pid: process.pid },
            { id: "run-1", status: "succeeded", pid: 4242 },
          ]);
          assert.deepEqual(fallbackFiles(stateDir), [rejectedFileName]);
          const rejectedPath = join(stateDir, rejectedFileName);
          assert.equal(mode(rejectedPath), 0o600);
          const rejected = jsonLines(rejectedPath);
          assert.deepEqual(rejected.map((r) => r.line), [2, 3, 4, 5, 6, 8, 9, 10, 11]);
          assert.deepEqual(rejected.map((r) => r.raw), [1, 2, 3, 4, 5, 7, 8, 9, 10].map((index) => lines[index]));
          const reasons = rejected.map((r) => String(r.reason));
          assert.match(reasons[0], /^not JSON: /);
          assert.equal(reasons[1], 'unknown operation "dropTable"');
          assert.match(reasons[2], /^invalid arguments for finishRun: args\[1\]\.status: /);
          assert.match(
            reasons[3],
            /UNIQUE constraint failed: runs\.id|duplicate key value violates unique constraint "runs_pkey"/,
          );
          assert.equal(reasons[4], "no stage -77 (its startStage line was not replayed) in the database");
          assert.equal(reasons[5], "startStage without its stageId");
          assert.equal(reasons[6], "no run no-such-run in the database");
          assert.match(
            reasons[7],
            /UNIQUE constraint failed: snapshots\.repository, snapshots\.id|unique constraint "snapshots_pk"/,
          );
          assert.deepEqual((await store.listSnapshots({})).map((s) => s.id), ["0000kept"]);
          assert.match(reasons[8], /^cut short \(the last line has no newline\): not JSON: /);
          for (const entry of rejected) assert.equal(entry.file, fallbackFileName);
        } finally {
          await store.close();
        }
      });
    });

    it("maps a stage's negative id to its row across two replays (its finish written after the first replay)", async () => {
      await inStateDir(async (stateDir) => {
        await withOpen(stateDir, () => {}, backend); // creates the database
        const fallback = join(stateDir, fallbackFileName);
        const start = line("startStage", [{ runId: null, type: "check", repository: "local", startedAt: "t0" }], {
          stageId: -5,
        });
        writeFileSync(fallback, `${start}\n`);
        const first = await withOpen(stateDir, async (store) => {
          assert.deepEqual(store.replayed, { applied: 1, rejected: 0 });
          return (await storeDb(store).selectFrom("stages").select("id").executeTakeFirstOrThrow()).id;
        }, backend);
        // The same start again (a crash between a commit and the file's removal) and, later, the stage's finish.
        writeFileSync(
          fallback,
          `${start}\n${line("finishStage", [-5, { status: "failed", finishedAt: "t1", durationMs: 2, error: "x" }])}\n`,
        );
        await withOpen(stateDir, async (store) => {
          assert.deepEqual(store.replayed, { applied: 2, rejected: 0 });
          const stages = plain(await storeDb(store).selectFrom("stages").select(["id", "status", "error"]).execute());
          assert.deepEqual(stages, [{ id: first, status: "failed", error: "x" }]);
        }, backend);
      });
    });

    it("takes up the file of a replay that died before fallback.jsonl, and leaves a live replayer's file alone", async () => {
      await inStateDir(async (stateDir) => {
        await withOpen(stateDir, () => {}, backend); // creates the database
        const older = join(stateDir, `fallback.replaying-${deadPid()}.jsonl`);
        writeFileSync(
          older,
          `${line("startRun", [run("run-1")])}\n${
            line("startStage", [{ runId: "run-1", type: "backup", startedAt: "t" }], { stageId: -9 })
          }\n`,
        );
        writeFileSync(
          join(stateDir, fallbackFileName),
          `${line("finishStage", [-9, { status: "succeeded", finishedAt: "t2", durationMs: 1 }])}\n` +
            `${line("finishRun", ["run-1", { status: "succeeded", finishedAt: "t3", durationMs: 3 }])}\n`,
        );
        await withOpen(stateDir, async (store) => {
          assert.deepEqual(
            store.replayed,
            { applied: 4, rejected: 0 },
            "older lines first: no finish before its start",
          );
          assert.deepEqual(fallbackFiles(stateDir), []);
          const stage = await storeDb(store).selectFrom("stages").select("status").executeTakeFirstOrThrow();
          assert.equal(stage.status, "succeeded");
        }, backend);

        // A process that runs (this test's parent) is replaying: its lines are older, so nothing is replayed now.
        const live = join(stateDir, `fallback.replaying-${process.ppid}.jsonl`);
        writeFileSync(live, `${line("startRun", [run("run-2")])}\n`);
        writeFileSync(
          join(stateDir, fallbackFileName),
          `${line("finishRun", ["run-2", { status: "failed", finishedAt: "t", durationMs: 1 }])}\n`,
        );
        await withOpen(stateDir, (store) => {
          assert.equal(store.replayed, null);
          assert.deepEqual(fallbackFiles(stateDir), [fallbackFileName, `fallback.replaying-${process.ppid}.jsonl`]);
        }, backend);
      });
    });

    it("replays exactly once when several stores open at once, in this process and in others", async () => {
      await inStateDir(async (stateDir) => {
        await withOpen(stateDir, () => {}, backend); // creates the database
        const count = 300;
        const text = Array.from({ length: count }, (_, i) => `${line("startRun", [run(`run-${i}`)])}\n`).join("");
        writeFileSync(join(stateDir, fallbackFileName), text);

        const children = [
          openInChild(stateDir, backend),
          openInChild(stateDir, backend),
          openInChild(stateDir, backend),
        ];
        const here = await Promise.all([
          open(stateDir, [], busyTimeoutMs, backend),
          open(stateDir, [], busyTimeoutMs, backend),
          open(stateDir, [], busyTimeoutMs, backend),
        ]);
        const reports = [
          ...here.map((store) => store.replayed),
          ...(await Promise.all(children)).map((out) => JSON.parse(out)),
        ];
        try {
          const replays = reports.filter((report) => report !== null);
          assert.equal(replays.length, 1, `one replay: ${JSON.stringify(reports)}`);
          assert.deepEqual(replays[0], { applied: count, rejected: 0 });
          const rows = await storeDb(here[0]).selectFrom("runs").select((eb) => eb.fn.countAll<number>().as("n"))
            .executeTakeFirstOrThrow();
          assert.equal(Number(rows.n), count);
          assert.deepEqual(fallbackFiles(stateDir), []);
        } finally {
          for (const store of here) await store.close();
        }
      });
    });
  });
}

describe("fallback.ts", () => {
  it("parseFallback skips blank lines, keeps a whole last line without its newline, gives each bad line a reason", () => {
    const good = line("bumpSerial", []);
    const { lines, rejected } = parseFallback(`${good}\n\n[1,2]\n{"v":2,"op":"bumpSerial"}\n${good}`);
    assert.deepEqual(lines.map((l) => [l.line, l.record.op]), [[1, "bumpSerial"], [5, "bumpSerial"]]);
    assert.deepEqual(rejected.map((r) => r.line), [3, 4]);
    assert.match(rejected[0].reason, /^not a fallback record: /);
    assert.match(rejected[1].reason, /^not a fallback record: .*v: /);
  });

  it("appendFallback starts on a line of its own after a line cut short, and tightens the file to 0600", async () => {
    await inStateDir((stateDir) => {
      mkdirSync(stateDir, { recursive: true });
      const fallback = join(stateDir, fallbackFileName);
      writeFileSync(fallback, '{"v":1,"op":"startR', { mode: 0o644 });
      appendFallback(stateDir, { op: "bumpSerial", args: [] });
      assert.equal(mode(fallback), 0o600);
      const { lines, rejected } = parseFallback(readFileSync(fallback, "utf8"));
      assert.deepEqual(lines.map((l) => l.record.op), ["bumpSerial"]);
      assert.deepEqual(rejected.map((r) => r.line), [1]);
    });
  });

  it("a claim given back goes in front of the lines appended meanwhile", async () => {
    await inStateDir((stateDir) => {
      mkdirSync(stateDir, { recursive: true });
      appendFallback(stateDir, { op: "startRun", args: [run("old")] });
      const claim = claimFallback(stateDir)!;
      assert.ok(claim);
      assert.equal(claimFallback(stateDir), null, "claimed once");
      assert.deepEqual(fallbackFiles(stateDir), [`fallback.replaying-${process.pid}.jsonl`]);
      appendFallback(stateDir, { op: "startRun", args: [run("new")] });
      claim.giveBack();
      assert.deepEqual(fallbackFiles(stateDir), [fallbackFileName]);
      const ids = jsonLines(join(stateDir, fallbackFileName)).map((r) => (r.args as { id: string }[])[0].id);
      assert.deepEqual(ids, ["old", "new"]);
    });
  });

  it("waits for a lock held by a live process, and takes over one whose holder is gone", async () => {
    await inStateDir((stateDir) => {
      mkdirSync(stateDir, { recursive: true });
      const lock = join(stateDir, "fallback.lock");
      writeFileSync(lock, `${deadPid()} -\n`);
      appendFallback(stateDir, { op: "bumpSerial", args: [] });
      assert.equal(existsSync(lock), false, "the stale lock is gone with the append");

      const holder = spawn("sh", ["-c", `sleep 0.4; rm -f '${lock}'; sleep 5`], { stdio: "ignore" });
      try {
        writeFileSync(lock, `${holder.pid} -\n`);
        const started = Date.now();
        appendFallback(stateDir, { op: "bumpSerial", args: [] });
        assert.ok(Date.now() - started >= 300, `waited for the holder (${Date.now() - started} ms)`);
        assert.equal(jsonLines(join(stateDir, fallbackFileName)).length, 2);
      } finally {
        holder.kill();
      }
    });
  });
});

describe("unwritableReason", () => {
  it("tells a database that cannot be written from a write that is wrong, for both drivers' error shapes", () => {
    const node = (errcode: number, message: string) =>
      Object.assign(new Error(message), { code: "ERR_SQLITE_ERROR", errcode, errstr: message });
    const bun = (code: string, errno: number, message: string) =>
      Object.assign(new Error(message), { name: "SQLiteError", code, errno });
    assert.equal(unwritableReason(node(5, "database is locked")), "database is locked");
    assert.equal(unwritableReason(node(517, "database is locked")), "database is locked"); // SQLITE_BUSY_SNAPSHOT
    assert.equal(unwritableReason(node(778, "disk I/O error")), "disk I/O error"); // SQLITE_IOERR_WRITE
    assert.equal(unwritableReason(node(13, "database or disk is full")), "database or disk is full");
    assert.equal(unwritableReason(node(26, "file is not a database")), "file is not a database");
    assert.equal(unwritableReason(node(2067, "UNIQUE constraint failed: runs.id")), undefined);
    assert.equal(unwritableReason(node(1, "no such table: runs")), undefined);
    assert.equal(unwritableReason(bun("SQLITE_BUSY", 5, "database is locked")), "database is locked");
    assert.equal(
      unwritableReason(bun("SQLITE_READONLY", 8, "attempt to write a readonly database")),
      "attempt to write a readonly database",
    );
    assert.equal(
      unwritableReason(bun("SQLITE_CORRUPT", 11, "database disk image is malformed")),
      "database disk image is malformed",
    );
    assert.equal(unwritableReason(bun("SQLITE_CONSTRAINT_UNIQUE", 2067, "UNIQUE constraint failed")), undefined);
    assert.equal(unwritableReason({ code: "SQLITE_IOERR_WRITE", message: "disk I/O error" }), "disk I/O error");
    assert.equal(unwritableReason(new Error("database is locked")), "database is locked", "a driver without codes");
    assert.equal(unwritableReason(new TypeError("cannot read properties of undefined")), undefined);
    assert.equal(unwritableReason(Object.assign(new Error("ENOSPC"), { code: "ENOSPC", errno: -28 })), undefined);
  });
});

describe("StateStore.open: the busy timeout", () => {
  async function busyTimeout(store: StateStore): Promise<number> {
    const rows = (await sql<Record<string, number>>`PRAGMA busy_timeout`.execute(storeDb(store))).rows;
    return Number(Object.values(rows[0])[0]);
  }

  it("is 5000 ms by default, BACKUPCTL_DB_BUSY_TIMEOUT_MS changes it, the option wins, a bad value is refused", async () => {
    await inStateDir(async (stateDir) => {
      const saved = process.env.BACKUPCTL_DB_BUSY_TIMEOUT_MS;
      try {
        delete process.env.BACKUPCTL_DB_BUSY_TIMEOUT_MS;
        let store = await StateStore.open(stateDir);
        assert.equal(await busyTimeout(store), defaultBusyTimeoutMs);
        assert.equal(defaultBusyTimeoutMs, 5000);
        await store.close();
        process.env.BACKUPCTL_DB_BUSY_TIMEOUT_MS = "250";
        store = await StateStore.open(stateDir);
        assert.equal(await busyTimeout(store), 250);
        await store.close();
        store = await StateStore.open(stateDir, { busyTimeoutMs: 40 });
        assert.equal(await busyTimeout(store), 40);
        await store.close();
        process.env.BACKUPCTL_DB_BUSY_TIMEOUT_MS = "5s";
        await assert.rejects(StateStore.open(stateDir), {
          name: "UsageError",
          message: 'BACKUPCTL_DB_BUSY_TIMEOUT_MS: expected a whole number of milliseconds such as 5000, got "5s"',
        });
      } finally {
        if (saved === undefined) delete process.env.BACKUPCTL_DB_BUSY_TIMEOUT_MS;
        else process.env.BACKUPCTL_DB_BUSY_TIMEOUT_MS = saved;
      }
    });
  });
});

// Damage helpers.

function readBytes(path: string, offset: number, length: number): Buffer {
  const fd = openSync(path, "r");
  try {
    const bytes = Buffer.alloc(length);
    readSync(fd, bytes, 0, length, offset);
    return bytes;
  } finally {
    closeSync(fd);
  }
}

function overwrite(path: string, offset: number, bytes: Buffer): void {
  const fd = openSync(path, "r+");
  try {
    writeSync(fd, bytes, 0, bytes.length, offset);
  } finally {
    closeSync(fd);
  }
}

/** True when this process can make a file immutable (`chattr +i`: root, and a file system that supports it), else why not. */
function canMakeImmutable(): true | string {
  if (process.getuid?.() !== 0) return "needs root: chattr +i is the one way to make a file read-only for root";
  const dir = mkdtempSync(join(tmpdir(), "backupctl-chattr-"));
  const file = join(dir, "probe");
  try {
    writeFileSync(file, "x");
    const result = spawnSync("chattr", ["+i", file], { encoding: "utf8" });
    if (result.error) return `chattr is not installed (Debian package e2fsprogs): ${result.error.message}`;
    if (result.status !== 0) return `chattr +i is refused on ${tmpdir()}: ${result.stderr.trim()}`;
    spawnSync("chattr", ["-i", file]);
    return true;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
