/**
 * Unit tests of the state database (src/state/store.ts, src/state/migrations.ts) on a real SQLite file in a fresh
 * temp dir per test: node:sqlite under Deno, bun:sqlite under Bun (src/runtime/sqlite.ts picks). The cases that are
 * not about the SQLite file run again on a real PostgreSQL (test/support/state-backends.ts), a schema per case.
 * Runs under `deno test -A test/state/` and `bun --no-install test ./test/state/`.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { sql } from "kysely";
import { currentProcessStart } from "../../src/runtime/process.ts";
import { latestMigration } from "../../src/state/migrations.ts";
import type { InventorySnapshot } from "../../src/plan/types.ts";
import type { SnapshotTable } from "../../src/state/schema.ts";
import { type NewStage, type StageResult, StateStore } from "../../src/state/store.ts";
import { storeDb } from "../support/state-db.ts";
import { sqliteBackend, type StateBackend, stateBackends, stopStateBackends } from "../support/state-backends.ts";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A fresh temp dir; the store's folder is a not-yet-existing child of it, so open() has to create it. */
async function inTempDir(body: (stateDir: string) => Promise<void>): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), "backupctl-store-test-"));
  try {
    await body(join(root, "state"));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/** Opens a store on `backend` in a fresh temp dir, runs the body, closes the store and removes the dir. */
async function withStore(
  backend: StateBackend,
  body: (store: StateStore, stateDir: string) => Promise<void>,
): Promise<void> {
  await inTempDir(async (stateDir) => {
    const store = await backend.open(stateDir);
    try {
      await body(store, stateDir);
    } finally {
      await store.close();
    }
  });
}

/** Rows as plain objects: node:sqlite returns null-prototype rows, which strict deep equality tells apart. */
function plain<T extends object>(rows: T[]): T[] {
  return rows.map((row) => ({ ...row }));
}

function mode(path: string): number {
  return statSync(path).mode & 0o777;
}

async function names(store: StateStore, type: "table" | "index"): Promise<string[]> {
  const result = await sql<{ name: string }>`SELECT name FROM sqlite_master WHERE type = ${type} ORDER BY name`
    .execute(storeDb(store));
  return result.rows.map((row) => row.name);
}

function oneSecondLater(iso: string): string {
  return new Date(Date.parse(iso) + 1000).toISOString();
}

async function run(store: StateStore, id: string, project: string, startedAt: string, status?: "succeeded" | "failed") {
  await store.startRun({ id, project, command: "apply", startedAt, fingerprint: "sha256:f", host: "h1" });
  if (status) {
    await store.finishRun(id, { status, finishedAt: oneSecondLater(startedAt), durationMs: 10 });
  }
}

/** A finished backup stage (no run). */
async function backupStage(
  store: StateStore,
  project: string,
  source: string,
  repository: string,
  startedAt: string,
  status: StageResult["status"] | "running",
  extra: Partial<NewStage> & Partial<StageResult> = {},
): Promise<number> {
  const id = await store.startStage({ runId: null, type: "backup", project, source, repository, startedAt, ...extra });
  if (status !== "running") {
    await store.finishStage(id, { status, finishedAt: startedAt, durationMs: 1, ...extra });
  }
  return id;
}

function snapshot(
  id: string,
  time: string,
  project: string | null,
  source: string | null,
): Omit<SnapshotTable, "repository"> {
  return {
    id,
    short_id: id.slice(0, 8),
    time,
    project,
    source,
    run_id: null,
    hostname: "backup-host",
    tags: JSON.stringify(["backupctl", `project=${project}`]),
    paths: JSON.stringify([`/${source}`]),
    size: null,
    recorded_at: "2026-11-21T10:00:00.000Z",
    original: null,
  };
}

/**
 * Makes the state of `store` as it was before migration 0014 (no `vouched` column, its index and triggers), so that
 * reopening it migrates again.
 */
async function undoVouched(store: StateStore, backend: StateBackend["name"] = "sqlite"): Promise<void> {
  const db = storeDb(store);
  const statements = backend === "sqlite"
    ? [
      ...[
        "snapshots_vouched_insert",
        "snapshots_vouched_update",
        "stages_vouch_insert",
        "stages_vouch_update",
        "stages_unvouch_update",
      ].map((name) => sql`DROP TRIGGER ${sql.id(name)}`),
      sql`DROP INDEX snapshots_unvouched`,
    ]
    : [
      sql`DROP TRIGGER snapshots_vouched ON snapshots`,
      sql`DROP TRIGGER stages_vouch ON stages`,
      sql`DROP TRIGGER stages_unvouch ON stages`,
      sql`DROP FUNCTION snapshots_vouched()`,
      sql`DROP FUNCTION stages_vouch()`,
      sql`DROP FUNCTION stages_unvouch()`,
      sql`DROP INDEX snapshots_unvouched`,
    ];
  for (const statement of statements) await statement.execute(db);
  await sql`ALTER TABLE snapshots DROP COLUMN vouched`.execute(db);
  await sql`DELETE FROM kysely_migration WHERE name = '0014_vouched_snapshots'`.execute(db);
}

const byKey = <T extends { project: string; source: string; repository: string }>(records: T[]) =>
  [...records].sort((a, b) =>
    `${a.project}/${a.source}/${a.repository}`.localeCompare(`${b.project}/${b.source}/${b.repository}`)
  );

describe("StateStore.open", () => {
  it("creates the folder with mode 0700 and state.db with mode 0600 (and the WAL files 0600)", async () => {
    await withStore(sqliteBackend, (store, stateDir) => {
      assert.equal(mode(stateDir), 0o700);
      assert.equal(store.path, join(stateDir, "state.db"));
      assert.equal(mode(store.path), 0o600);
      for (const suffix of ["-wal", "-shm"]) {
        assert.ok(existsSync(store.path + suffix), `${suffix} exists while the store is open in WAL mode`);
        assert.equal(mode(store.path + suffix), 0o600, suffix);
      }
      return Promise.resolve();
    });
  });

  it("tightens an existing folder and database file that are too open", async () => {
    await inTempDir(async (stateDir) => {
      const first = await StateStore.open(stateDir);
      await first.close();
      chmodSync(stateDir, 0o755);
      chmodSync(join(stateDir, "state.db"), 0o644);
      const store = await StateStore.open(stateDir);
      try {
        assert.equal(mode(stateDir), 0o700);
        assert.equal(mode(store.path), 0o600);
        assert.equal(await store.serial(), 0);
      } finally {
        await store.close();
      }
    });
  });

  it("tightens the WAL files of a database another store has open", async () => {
    await inTempDir(async (stateDir) => {
      const first = await StateStore.open(stateDir);
      try {
        for (const suffix of ["-wal", "-shm"]) chmodSync(first.path + suffix, 0o644);
        const second = await StateStore.open(stateDir);
        try {
          assert.equal(mode(second.path + "-wal"), 0o600);
          assert.equal(mode(second.path + "-shm"), 0o600);
          assert.equal(await second.lineage(), await first.lineage());
        } finally {
          await second.close();
        }
      } finally {
        await first.close();
      }
    });
  });

  it("opens an existing, empty folder", async () => {
    await inTempDir(async (stateDir) => {
      mkdirSync(stateDir, { mode: 0o755 });
      const store = await StateStore.open(stateDir);
      try {
        assert.equal(mode(stateDir), 0o700);
        assert.equal(await store.serial(), 0);
      } finally {
        await store.close();
      }
    });
  });

  it("uses WAL journaling, a busy timeout and enforced foreign keys", async () => {
    await withStore(sqliteBackend, async (store) => {
      const journal = await sql<{ journal_mode: string }>`PRAGMA journal_mode`.execute(storeDb(store));
      assert.deepEqual(plain(journal.rows), [{ journal_mode: "wal" }]);
      const busy = await sql<Record<string, number>>`PRAGMA busy_timeout`.execute(storeDb(store));
      assert.deepEqual(Object.values(busy.rows[0]), [5000]);
      const keys = await sql<{ foreign_keys: number }>`PRAGMA foreign_keys`.execute(storeDb(store));
      assert.deepEqual(plain(keys.rows), [{ foreign_keys: 1 }]);
      await assert.rejects(
        store.startStage({ runId: "no-such-run", type: "backup", startedAt: "2026-11-21T10:00:00.000Z" }),
        /FOREIGN KEY/i,
      );
    });
  });

  it("creates every table and the planner's indexes", async () => {
    await withStore(sqliteBackend, async (store) => {
      const tables = await names(store, "table");
      for (
        const table of [
          "meta",
          "runs",
          "stages",
          "snapshots",
          "repositories",
          "outbox",
          "retention_policies",
          "applied_plans",
          "runners",
          "config_seen",
          "leases",
          "fenced_writes",
          "latest_stages",
          "kysely_migration",
        ]
      ) {
        assert.ok(tables.includes(table), `table ${table} missing from ${tables.join(", ")}`);
      }
      const indexes = await names(store, "index");
      for (
        const index of [
          "runs_project_started",
          "stages_latest",
          "stages_maintenance",
          "snapshots_group",
          "stages_recorded",
          "snapshots_project",
          "snapshots_unvouched",
        ]
      ) {
        assert.ok(indexes.includes(index), `index ${index} missing from ${indexes.join(", ")}`);
      }
      const columns = await sql<{ name: string }>`SELECT name FROM pragma_index_info('stages_latest') ORDER BY seqno`
        .execute(storeDb(store));
      assert.deepEqual(columns.rows.map((row) => row.name), [
        "type",
        "status",
        "project",
        "source",
        "repository",
        "started_at",
      ]);
      const maintenance = await sql<{ name: string }>`SELECT name FROM pragma_index_info('stages_maintenance')
        ORDER BY seqno`.execute(storeDb(store));
      assert.deepEqual(maintenance.rows.map((row) => row.name), ["type", "status", "repository", "started_at"]);
      const retentionKey = await sql<{ name: string }>`SELECT name FROM pragma_table_info('retention_policies')
        WHERE pk > 0 ORDER BY pk`.execute(storeDb(store));
      assert.deepEqual(retentionKey.rows.map((row) => row.name), ["project", "source", "repository"]);
      const planKey = await sql<{ name: string }>`SELECT name FROM pragma_table_info('applied_plans') WHERE pk > 0`
        .execute(storeDb(store));
      assert.deepEqual(planKey.rows.map((row) => row.name), ["plan_id"]);
      const migrations = await sql<{ name: string }>`SELECT name FROM kysely_migration ORDER BY name`
        .execute(storeDb(store));
      assert.deepEqual(plain(migrations.rows), [
        { name: "0001_initial" },
        { name: "0002_retention_and_plans" },
        { name: "0003_snapshot_original" },
        { name: "0004_run_process_start" },
        { name: "0005_outbox_delivery" },
        { name: "0006_runs_started" },
        { name: "0007_history_operations" },
        { name: "0008_prune_cadence_held_plans" },
        { name: "0009_stage_notes" },
        { name: "0010_fleet" },
        { name: "0011_recorded_snapshots" },
        { name: "0012_snapshots_by_project" },
        { name: "0013_latest_stages" },
        { name: "0014_vouched_snapshots" },
      ]);
      assert.equal(latestMigration, "0014_vouched_snapshots");
      // 0009: what a stage that succeeded has to say, apart from errors.
      const note = await sql<{ type: string; notnull: number }>`SELECT type, "notnull" FROM
        pragma_table_info('stages') WHERE name = 'note'`.execute(storeDb(store));
      assert.deepEqual(plain(note.rows), [{ type: "TEXT", notnull: 0 }]);
      // 0008: how many snapshots a forget removed; the forgets of a saved plan still held for approval.
      const counts = await sql<{ type: string; notnull: number }>`SELECT type, "notnull" FROM
        pragma_table_info('stages') WHERE name = 'forgotten'`.execute(storeDb(store));
      assert.deepEqual(plain(counts.rows), [{ type: "INTEGER", notnull: 0 }]);
      const held = await sql<{ type: string; notnull: number }>`SELECT type, "notnull" FROM
        pragma_table_info('applied_plans') WHERE name = 'held'`.execute(storeDb(store));
      assert.deepEqual(plain(held.rows), [{ type: "TEXT", notnull: 0 }]);
      // 0007: what a backup added to the repository, beside the bytes it read.
      const added = await sql<{ type: string; notnull: number }>`SELECT type, "notnull" FROM
        pragma_table_info('stages') WHERE name = 'bytes_added'`.execute(storeDb(store));
      assert.deepEqual(plain(added.rows), [{ type: "INTEGER", notnull: 0 }]);
      // 0005: an outbox key is unique (an event sent once per episode); NULL keys are not.
      const keyIndex = await sql<{ unique: number }>`SELECT "unique" FROM pragma_index_list('outbox')
        WHERE name = 'outbox_key'`.execute(storeDb(store));
      assert.deepEqual(plain(keyIndex.rows), [{ unique: 1 }]);
      // 0003: a copied snapshot names its original; other snapshots have none.
      const original = await sql<{ type: string; notnull: number }>`SELECT type, "notnull" FROM
        pragma_table_info('snapshots') WHERE name = 'original'`.execute(storeDb(store));
      assert.deepEqual(plain(original.rows), [{ type: "TEXT", notnull: 0 }]);
    });
  });

  it("0009 moves the notes that succeeded stages kept in `error` to `note`; errors of failures stay", async () => {
    await inTempDir(async (stateDir) => {
      // A state written before 0009: notes of successes in `error`, no `note` column.
      const old = await StateStore.open(stateDir);
      try {
        const unlock = await old.startStage({ runId: null, type: "unlock", startedAt: "2026-11-21T03:00:00.000Z" });
        await old.finishStage(unlock, {
          status: "succeeded",
          finishedAt: "2026-11-21T03:00:01.000Z",
          durationMs: 1000,
          note: "restic: successfully removed locks",
        });
        const failed = await old.startStage({ runId: null, type: "unlock", startedAt: "2026-11-21T03:00:02.000Z" });
        await old.finishStage(failed, {
          status: "failed",
          finishedAt: "2026-11-21T03:00:03.000Z",
          durationMs: 1000,
          error: "repository local: wrong password",
        });
        await sql`UPDATE stages SET error = note WHERE note IS NOT NULL`.execute(storeDb(old));
        await sql`ALTER TABLE stages DROP COLUMN note`.execute(storeDb(old));
        // Kysely applies migrations in order only: the later ones go too.
        await undoVouched(old);
        await sql`DROP INDEX stages_recorded`.execute(storeDb(old));
        await sql`DROP INDEX snapshots_project`.execute(storeDb(old));
        await sql`DROP TRIGGER stages_latest_insert`.execute(storeDb(old));
        await sql`DROP TRIGGER stages_latest_update`.execute(storeDb(old));
        await sql`DROP TABLE latest_stages`.execute(storeDb(old));
        for (const table of ["runners", "config_seen", "leases", "fenced_writes"]) {
          await sql`DROP TABLE ${sql.table(table)}`.execute(storeDb(old));
        }
        await sql`ALTER TABLE runs DROP COLUMN runner`.execute(storeDb(old));
        await sql`ALTER TABLE runs DROP COLUMN lease_token`.execute(storeDb(old));
        await sql`DELETE FROM meta WHERE key = 'fence_token'`.execute(storeDb(old));
        await sql`DELETE FROM kysely_migration WHERE name >= '0009'`.execute(storeDb(old));
      } finally {
        await old.close();
      }
      const store = await StateStore.open(stateDir);
      try {
        const rows = await storeDb(store).selectFrom("stages").select(["status", "error", "note"]).orderBy("id")
          .execute();
        assert.deepEqual(plain(rows), [
          { status: "succeeded", error: null, note: "restic: successfully removed locks" },
          { status: "failed", error: "repository local: wrong password", note: null },
        ]);
      } finally {
        await store.close();
      }
    });
  });

  it("is idempotent: reopening applies no migration again and keeps lineage, serial and data", async () => {
    await inTempDir(async (stateDir) => {
      const first = await StateStore.open(stateDir);
      let lineage: string;
      try {
        lineage = await first.lineage();
        assert.equal(await first.bumpSerial(), 1);
        await run(first, "r1", "shop", "2026-11-21T03:00:00.000Z", "succeeded");
      } finally {
        await first.close();
      }
      const second = await StateStore.open(stateDir);
      try {
        assert.equal(await second.lineage(), lineage);
        assert.equal(await second.serial(), 1);
        const migrations = await sql<{ name: string }>`SELECT name FROM kysely_migration ORDER BY name`
          .execute(storeDb(second));
        assert.deepEqual(plain(migrations.rows), [
          { name: "0001_initial" },
          { name: "0002_retention_and_plans" },
          { name: "0003_snapshot_original" },
          { name: "0004_run_process_start" },
          { name: "0005_outbox_delivery" },
          { name: "0006_runs_started" },
          { name: "0007_history_operations" },
          { name: "0008_prune_cadence_held_plans" },
          { name: "0009_stage_notes" },
          { name: "0010_fleet" },
          { name: "0011_recorded_snapshots" },
          { name: "0012_snapshots_by_project" },
          { name: "0013_latest_stages" },
          { name: "0014_vouched_snapshots" },
        ]);
        const meta = await storeDb(second).selectFrom("meta").selectAll().orderBy("key").execute();
        assert.deepEqual(plain(meta), [
          { key: "fence_token", value: "0" },
          { key: "lineage", value: lineage },
          { key: "serial", value: "1" },
        ]);
        const runs = await storeDb(second).selectFrom("runs").select(["id", "status"]).execute();
        assert.deepEqual(plain(runs), [{ id: "r1", status: "succeeded" }]);
      } finally {
        await second.close();
      }
    });
  });
});

after(stopStateBackends);

for (const backend of stateBackends) {
  describe(`on ${backend.name}`, () => {
    describe("StateStore lineage and serial", () => {
      it("has a UUID lineage and a serial that starts at 0", async () => {
        await withStore(backend, async (store) => {
          assert.match(await store.lineage(), UUID);
          assert.equal(await store.serial(), 0);
          assert.equal(await store.meta("no-such-key"), undefined);
        });
      });

      it("gives each new database its own lineage", async () => {
        await withStore(backend, async (a) => {
          await withStore(backend, async (b) => {
            assert.notEqual(await a.lineage(), await b.lineage());
          });
        });
      });

      it("bumpSerial increments by one and returns the new serial", async () => {
        await withStore(backend, async (store) => {
          assert.equal(await store.bumpSerial(), 1);
          assert.equal(await store.bumpSerial(), 2);
          assert.equal(await store.serial(), 2);
          assert.equal(await store.meta("serial"), "2");
        });
      });
    });

    describe("StateStore runs and stages", () => {
      it("round-trips a run from start to finish", async () => {
        await withStore(backend, async (store) => {
          await store.startRun({
            id: "20261121T030000Z-abc123",
            project: "shop",
            command: "apply",
            startedAt: "2026-11-21T03:00:00.000Z",
            fingerprint: "sha256:abc",
            host: "backup-host",
          });
          const started = await storeDb(store).selectFrom("runs").selectAll().execute();
          assert.deepEqual(plain(started), [{
            id: "20261121T030000Z-abc123",
            project: "shop",
            status: "running",
            command: "apply",
            started_at: "2026-11-21T03:00:00.000Z",
            finished_at: null,
            duration_ms: null,
            pid: process.pid,
            process_start: currentProcessStart(),
            host: "backup-host",
            config_fingerprint: "sha256:abc",
            stage: null,
            error: null,
            runner: null,
            lease_token: null,
          }]);

          await store.setRunStage("20261121T030000Z-abc123", "backup shop/shop");
          await store.finishRun("20261121T030000Z-abc123", {
            status: "succeeded",
            finishedAt: "2026-11-21T03:01:02.500Z",
            durationMs: 62_500,
          });
          const finished = await storeDb(store).selectFrom("runs").selectAll().executeTakeFirstOrThrow();
          assert.deepEqual(
            { ...finished },
            {
              ...started[0],
              status: "succeeded",
              finished_at: "2026-11-21T03:01:02.500Z",
              duration_ms: 62_500,
              stage: null,
              error: null,
            },
          );
        });
      });

      it("keeps the stage a failed run ended in, and its error", async () => {
        await withStore(backend, async (store) => {
          await run(store, "r1", "shop", "2026-11-21T03:00:00.000Z");
          await store.setRunStage("r1", "backup shop/files");
          await store.finishRun("r1", {
            status: "failed",
            finishedAt: "2026-11-21T03:00:09.000Z",
            durationMs: 9000,
            error: "restic exited with code 1",
          });
          const row = await storeDb(store).selectFrom("runs").select(["status", "stage", "error", "duration_ms"])
            .executeTakeFirstOrThrow();
          assert.deepEqual({ ...row }, {
            status: "failed",
            stage: "backup shop/files",
            error: "restic exited with code 1",
            duration_ms: 9000,
          });
        });
      });

      it("round-trips a stage from start to finish", async () => {
        await withStore(backend, async (store) => {
          await run(store, "r1", "shop", "2026-11-21T03:00:00.000Z");
          const first = await store.startStage({
            runId: "r1",
            type: "backup",
            project: "shop",
            source: "db",
            repository: "local",
            attempt: 2,
            startedAt: "2026-11-21T03:00:01.000Z",
          });
          const second = await store.startStage({ runId: null, type: "init", startedAt: "2026-11-21T03:00:02.000Z" });
          assert.equal(typeof first, "number");
          assert.equal(second, first + 1);

          const running = await storeDb(store).selectFrom("stages").selectAll().where("id", "=", first)
            .executeTakeFirstOrThrow();
          assert.deepEqual({ ...running }, {
            id: first,
            run_id: "r1",
            type: "backup",
            project: "shop",
            source: "db",
            repository: "local",
            attempt: 2,
            status: "running",
            started_at: "2026-11-21T03:00:01.000Z",
            finished_at: null,
            duration_ms: null,
            bytes: null,
            bytes_added: null,
            forgotten: null,
            snapshot_id: null,
            error: null,
            note: null,
          });

          await store.finishStage(first, {
            status: "succeeded",
            finishedAt: "2026-11-21T03:00:31.000Z",
            durationMs: 30_000,
            bytes: 123_456_789,
            bytesAdded: 4_096,
            snapshotId: "4f2c9d1e",
          });
          await store.finishStage(second, {
            status: "failed",
            finishedAt: "2026-11-21T03:00:03.000Z",
            durationMs: 1000,
            error: "boom",
          });
          const rows = await storeDb(store).selectFrom("stages").selectAll().orderBy("id").execute();
          assert.deepEqual(plain(rows), [
            {
              ...running,
              status: "succeeded",
              finished_at: "2026-11-21T03:00:31.000Z",
              duration_ms: 30_000,
              bytes: 123_456_789,
              bytes_added: 4_096,
              snapshot_id: "4f2c9d1e",
            },
            {
              id: second,
              run_id: null,
              type: "init",
              project: null,
              source: null,
              repository: null,
              attempt: 1,
              status: "failed",
              started_at: "2026-11-21T03:00:02.000Z",
              finished_at: "2026-11-21T03:00:03.000Z",
              duration_ms: 1000,
              bytes: null,
              bytes_added: null,
              forgotten: null,
              snapshot_id: null,
              error: "boom",
              note: null,
            },
          ]);
        });
      });
    });

    describe("latest_stages (kept by triggers)", () => {
      it("holds the newest start per group and status, whatever order stages start and end in", async () => {
        await withStore(backend, async (store) => {
          const t = (hour: number) => `2026-11-21T${String(hour).padStart(2, "0")}:00:00.000Z`;
          await backupStage(store, "shop", "db", "local", t(5), "succeeded");
          await backupStage(store, "shop", "db", "local", t(3), "succeeded"); // older, written later
          await backupStage(store, "shop", "db", "local", t(4), "failed");
          const running = await backupStage(store, "shop", "files", "local", t(6), "running");
          await backupStage(store, "blog", "db", "offsite", t(2), "failed");
          const prune = await store.startStage({ runId: null, type: "prune", repository: "local", startedAt: t(7) });
          await store.finishStage(prune, { status: "failed", finishedAt: t(7), durationMs: 1 });
          await store.startStage({ runId: null, type: "unlock", startedAt: t(8) }); // no project, source, repository
          await store.finishStage(running, { status: "succeeded", finishedAt: t(6), durationMs: 1 });
          const db = storeDb(store);
          const grouped = await sql<Record<string, string>>`SELECT type, status, coalesce(project, '') AS project,
              coalesce(source, '') AS source, coalesce(repository, '') AS repository, max(started_at) AS started_at
            FROM stages WHERE status <> 'running'
            GROUP BY type, status, coalesce(project, ''), coalesce(source, ''), coalesce(repository, '')
            ORDER BY 1, 2, 3, 4, 5`.execute(db);
          const kept = await db.selectFrom("latest_stages").selectAll().where("status", "<>", "running")
            .orderBy(["type", "status", "project", "source", "repository"]).execute();
          // Every status a stage ended in, as grouping the audit finds it; a start's "running" row stays behind
          // (it is never read as a result).
          assert.deepEqual(plain(kept), plain(grouped.rows));
          const started = await db.selectFrom("latest_stages").select("started_at").where("status", "=", "running")
            .where("type", "=", "backup").where("project", "=", "shop").where("source", "=", "files").execute();
          assert.deepEqual(plain(started), [{ started_at: t(6) }]);
          const unlock = await db.selectFrom("latest_stages").selectAll().where("type", "=", "unlock").execute();
          assert.deepEqual(plain(unlock), [
            { type: "unlock", status: "running", project: "", source: "", repository: "", started_at: t(8) },
          ]);
          // The planner's view of it: the newest success and the failures after it.
          const observed = await store.observe();
          assert.deepEqual(byKey(observed.backups), [
            { project: "shop", source: "db", repository: "local", at: t(5) },
            { project: "shop", source: "files", repository: "local", at: t(6) },
          ]);
          assert.deepEqual(observed.failures, [{ project: "blog", source: "db", repository: "offsite", at: t(2) }]);
          assert.ok(observed.maintenance.some((m) => m.type === "prune_attempt" && m.at === t(7)));
        });
      });
    });

    describe("snapshots.vouched (kept by triggers)", () => {
      it("is set by migration 0014 for the snapshots a state recorded before it, then kept by the triggers", async () => {
        await inTempDir(async (stateDir) => {
          const at = "2026-11-21T03:00:00.000Z";
          const full = (prefix: string) => prefix.padEnd(64, prefix.at(-1));
          const tagged = (id: string, original: string | null = null) => ({
            ...snapshot(id, at, "shop", "db"),
            run_id: "r-1",
            original,
          });
          const old = await backend.open(stateDir);
          try {
            await run(old, "r-1", "shop", at, "failed");
            for (
              const [snapshotId, status] of [[full("aa11"), "succeeded"], ["bb22bb22", "succeeded"], [
                full("cc33"),
                "failed",
              ]] as const
            ) {
              await backupStage(old, "shop", "db", "local", at, status, { runId: "r-1", snapshotId });
            }
            await old.replaceSnapshots("local", [
              tagged(full("aa11")),
              tagged(full("bb22bb22")),
              tagged(full("cc33")),
              tagged(full("dd44")),
            ], at);
            await old.replaceSnapshots("offsite", [tagged(full("ee55"), full("aa11"))], at);
            await undoVouched(old, backend.name);
          } finally {
            await old.close();
          }
          const store = await backend.open(stateDir);
          try {
            const key = (repository: string, id: string) => `${repository}\u0000${id}`;
            const flags = await storeDb(store).selectFrom("snapshots").select(["repository", "id", "vouched"])
              .orderBy(["repository", "id"]).execute();
            assert.deepEqual(plain(flags), [
              { repository: "local", id: full("aa11"), vouched: 1 },
              { repository: "local", id: full("bb22bb22"), vouched: 1 },
              { repository: "local", id: full("cc33"), vouched: 0 },
              { repository: "local", id: full("dd44"), vouched: 0 },
              { repository: "offsite", id: full("ee55"), vouched: 1 },
            ]);
            assert.deepEqual(
              new Map([...await store.snapshotStates()].sort()),
              new Map([
                [key("local", full("aa11")), "complete"],
                [key("local", full("bb22bb22")), "complete"],
                [key("local", full("cc33")), "incomplete"],
                [key("local", full("dd44")), "incomplete"],
                [key("offsite", full("ee55")), "complete"],
              ]),
            );
            // The triggers came with it: a later success vouches for dd44.
            await backupStage(store, "shop", "db", "local", at, "succeeded", {
              runId: "r-1",
              snapshotId: full("dd44"),
            });
            assert.equal((await store.snapshotStates()).get(key("local", full("dd44"))), "complete");
            // A stage that stops vouching (an edited state) leaves its snapshot, and the copy of it, unvouched, unless
            // another stage still names it.
            const db = storeDb(store);
            await db.updateTable("stages").set({ status: "failed" }).where("snapshot_id", "=", full("aa11")).execute();
            const states = await store.snapshotStates();
            assert.equal(states.get(key("local", full("aa11"))), "incomplete");
            assert.equal(states.get(key("offsite", full("ee55"))), "incomplete");
            assert.equal(states.get(key("local", full("dd44"))), "complete", "others keep theirs");
            // A later stage naming it by its short id vouches for it (and its copy) again.
            await backupStage(store, "shop", "db", "local", at, "succeeded", {
              runId: "r-1",
              snapshotId: full("aa11").slice(0, 8),
            });
            const again = await store.snapshotStates();
            assert.equal(again.get(key("local", full("aa11"))), "complete", "vouched again");
            assert.equal(again.get(key("offsite", full("ee55"))), "complete", "the copy too");
          } finally {
            await store.close();
          }
        });
      });
    });

    describe("StateStore.observe", () => {
      it("starts empty", async () => {
        await withStore(backend, async (store) => {
          const observed = await store.observe();
          assert.match(observed.lineage, UUID);
          assert.deepEqual({ ...observed, lineage: "" }, {
            lineage: "",
            serial: 0,
            repositories: {},
            backups: [],
            failures: [],
            snapshots: [],
            retention: [],
            maintenance: [],
            knownProjects: [],
            knownRepositories: [],
            appliedPlans: [],
            heldPlans: {},
            partials: [],
          });
        });
      });

      it("returns the latest success per (project, source, repository) and only failures newer than it", async () => {
        await withStore(backend, async (store) => {
          // shop/db → local: two successes with an older failure between them.
          await backupStage(store, "shop", "db", "local", "2026-11-19T03:00:00.000Z", "succeeded");
          await backupStage(store, "shop", "db", "local", "2026-11-20T03:00:00.000Z", "failed");
          await backupStage(store, "shop", "db", "local", "2026-11-21T03:00:00.000Z", "succeeded");
          // Not successes: still running, interrupted, skipped, or not a backup.
          await backupStage(store, "shop", "db", "local", "2026-11-22T03:00:00.000Z", "running");
          await backupStage(store, "shop", "db", "local", "2026-11-22T04:00:00.000Z", "interrupted");
          await backupStage(store, "shop", "db", "local", "2026-11-22T05:00:00.000Z", "skipped");
          await store.finishStage(
            await store.startStage({
              runId: null,
              type: "copy",
              project: "shop",
              source: "db",
              repository: "local",
              startedAt: "2026-11-23T03:00:00.000Z",
            }),
            { status: "succeeded", finishedAt: "2026-11-23T03:00:01.000Z", durationMs: 1 },
          );
          // shop/files → local: a failure newer than the last success, and an older one.
          await backupStage(store, "shop", "files", "local", "2026-11-19T03:00:00.000Z", "failed");
          await backupStage(store, "shop", "files", "local", "2026-11-20T03:00:00.000Z", "succeeded");
          await backupStage(store, "shop", "files", "local", "2026-11-21T03:00:05.000Z", "failed");
          await backupStage(store, "shop", "files", "local", "2026-11-21T02:00:00.000Z", "failed");
          // shop/db → offsite: failures only (never succeeded there).
          await backupStage(store, "shop", "db", "offsite", "2026-11-20T03:10:00.000Z", "failed");
          await backupStage(store, "shop", "db", "offsite", "2026-11-21T03:10:00.000Z", "failed");
          // blog/blog → local: one success.
          await backupStage(store, "blog", "blog", "local", "2026-11-21T04:00:00.000Z", "succeeded");

          const observed = await store.observe();
          assert.deepEqual(byKey(observed.backups), [
            { project: "blog", source: "blog", repository: "local", at: "2026-11-21T04:00:00.000Z" },
            { project: "shop", source: "db", repository: "local", at: "2026-11-21T03:00:00.000Z" },
            { project: "shop", source: "files", repository: "local", at: "2026-11-20T03:00:00.000Z" },
          ]);
          assert.deepEqual(byKey(observed.failures), [
            { project: "shop", source: "db", repository: "offsite", at: "2026-11-21T03:10:00.000Z" },
            { project: "shop", source: "files", repository: "local", at: "2026-11-21T03:00:05.000Z" },
          ]);
        });
      });

      it("reports lineage, serial and initialized repositories", async () => {
        await withStore(backend, async (store) => {
          await store.markRepositoryInitialized("local", "/srv/restic", "2026-11-21T03:00:00.000Z");
          await store.bumpSerial();
          const observed = await store.observe();
          assert.equal(observed.lineage, await store.lineage());
          assert.equal(observed.serial, 1);
          assert.deepEqual(observed.repositories, {
            local: { initialized: true, initializedAt: "2026-11-21T03:00:00.000Z" },
          });
          assert.deepEqual(observed.knownRepositories, ["local"]);
        });
      });
    });

    describe("StateStore.observe: inventory, maintenance and what the state knows", () => {
      /** A finished maintenance stage (no run). */
      async function maintenanceStage(
        store: StateStore,
        type: "prune" | "check" | "verify",
        where: { project?: string; repository?: string },
        startedAt: string,
        status: StageResult["status"] | "running",
      ): Promise<void> {
        const id = await store.startStage({ runId: null, type, ...where, startedAt });
        if (status !== "running") await store.finishStage(id, { status, finishedAt: startedAt, durationMs: 1 });
      }

      it("lists the inventory of every repository newest first (ties by repository and id), without the tags", async () => {
        await withStore(backend, async (store) => {
          await store.replaceSnapshots("local", [
            snapshot("a1aaaaaaaaaa", "2026-11-20T03:00:00.000Z", "shop", "db"),
            { ...snapshot("a2aaaaaaaaaa", "2026-11-22T03:00:00.000Z", "shop", "files"), run_id: "r2" },
            {
              ...snapshot("a3aaaaaaaaaa", "2026-11-18T03:00:00.000Z", null, null),
              hostname: "laptop",
              tags: JSON.stringify([]),
            },
          ], "2026-11-22T10:00:00.000Z");
          await store.replaceSnapshots("offsite", [
            snapshot("b1bbbbbbbbbb", "2026-11-21T04:00:00.000Z", "shop", "db"),
            // The same second as a local one, and as each other: the order does not depend on how rows are read.
            snapshot("b0bbbbbbbbbb", "2026-11-20T03:00:00.000Z", "shop", "db"),
            snapshot("b2bbbbbbbbbb", "2026-11-20T03:00:00.000Z", "shop", "db"),
          ], "2026-11-22T10:00:01.000Z");
          const observed = await store.observe();
          const entry = (
            repository: string,
            id: string,
            time: string,
            project: string | null,
            source: string | null,
            rest: { run_id?: string | null; hostname?: string } = {},
          ) => ({
            repository,
            id,
            short_id: id.slice(0, 8),
            time,
            project,
            source,
            run_id: rest.run_id ?? null,
            hostname: rest.hostname ?? "backup-host",
            original: null,
            // No backup stage recorded them, and their runs are unknown to this state: taken on restic's word.
            state: "adopted",
          });
          assert.deepEqual(observed.snapshots, [
            entry("local", "a2aaaaaaaaaa", "2026-11-22T03:00:00.000Z", "shop", "files", { run_id: "r2" }),
            entry("offsite", "b1bbbbbbbbbb", "2026-11-21T04:00:00.000Z", "shop", "db"),
            entry("offsite", "b2bbbbbbbbbb", "2026-11-20T03:00:00.000Z", "shop", "db"),
            entry("offsite", "b0bbbbbbbbbb", "2026-11-20T03:00:00.000Z", "shop", "db"),
            entry("local", "a1aaaaaaaaaa", "2026-11-20T03:00:00.000Z", "shop", "db"),
            entry("local", "a3aaaaaaaaaa", "2026-11-18T03:00:00.000Z", null, null, { hostname: "laptop" }),
          ]);
        });
      });

      it("reads the fields that come from tags and restic's host name as they are: empty, null, line breaks", async () => {
        await withStore(backend, async (store) => {
          type Fields = Pick<InventorySnapshot, "project" | "source" | "run_id" | "hostname">;
          const fields = ({ project, source, run_id, hostname }: Fields) => ({ project, source, run_id, hostname });
          const write = (odd: Fields[]) =>
            store.replaceSnapshots(
              "local",
              odd.map((values, i) => ({
                ...snapshot(`a${i}aaaaaaaaaa`, `2026-11-2${i}T03:00:00.000Z`, values.project, values.source),
                ...values,
              })),
              "2026-11-22T10:00:00.000Z",
            );
          const plain = [
            { project: "", source: "=", run_id: null, hostname: "" },
            { project: null, source: null, run_id: "==r1", hostname: "=" },
            { project: "shop\\n", source: "db\\0", run_id: "", hostname: "lap\\top" },
          ];
          await write(plain);
          assert.deepEqual((await store.observe()).snapshots.map(fields), [...plain].reverse());
          const broken = [
            { project: "shop\nfront", source: "db", run_id: "r\n1", hostname: "lap\ntop\n" },
            { project: "\n", source: "\n", run_id: null, hostname: "" },
            { project: null, source: null, run_id: "", hostname: "=\n" },
          ];
          await write(broken);
          assert.deepEqual((await store.observe()).snapshots.map(fields), [...broken].reverse());
        });
      });

      it("tells how far it vouches for each snapshot, in observe() and snapshotStates() alike", async () => {
        await withStore(backend, async (store) => {
          const at = "2026-11-21T03:00:00.000Z";
          await run(store, "r-ok", "shop", at, "succeeded");
          await run(store, "r-failed", "shop", "2026-11-21T04:00:00.000Z", "failed");
          await run(store, "r-alive", "shop", "2026-11-21T05:00:00.000Z");
          await run(store, "r-dead", "shop", "2026-11-21T06:00:00.000Z");
          const recorded = (snapshotId: string, status: StageResult["status"] = "succeeded") =>
            backupStage(store, "shop", "db", "local", at, status, { runId: "r-ok", snapshotId });
          const full = (prefix: string) => prefix.padEnd(64, prefix.at(-1));
          await recorded(full("aa11"));
          await recorded("bb22bb22"); // restic 0.14 recorded the short id
          await recorded(full("cc33cc33cc33")); // the inventory lists it by a shorter id
          await recorded(full("dd44"));
          await recorded(full("ee55"), "failed"); // a failed stage vouches for nothing
          const tagged = (id: string, runId: string | null, original: string | null = null) => ({
            ...snapshot(id, at, "shop", "db"),
            run_id: runId,
            original,
          });
          await store.replaceSnapshots("local", [
            tagged(full("aa11"), "r-ok"),
            tagged(full("bb22bb22"), "r-ok"),
            tagged("cc33cc33cc33", "r-ok"),
            tagged(full("ee55"), "r-failed"),
            tagged(full("ff66"), "r-alive"),
            tagged(full("ab77"), "r-dead"),
            tagged(full("ac88"), "r-gone"),
            { ...tagged(full("ad99"), null), project: null, source: null },
          ], "2026-11-22T10:00:00.000Z");
          // A copy is vouched for through its original.
          await store.replaceSnapshots(
            "offsite",
            [tagged(full("ae00"), "r-ok", full("dd44"))],
            "2026-11-22T10:00:01.000Z",
          );
          const expected = new Map([
            [`local\u0000${full("aa11")}`, "complete"],
            [`local\u0000${full("bb22bb22")}`, "complete"],
            ["local\u0000cc33cc33cc33", "complete"],
            [`local\u0000${full("ee55")}`, "incomplete"],
            [`local\u0000${full("ff66")}`, "pending"],
            [`local\u0000${full("ab77")}`, "incomplete"],
            [`local\u0000${full("ac88")}`, "adopted"],
            [`local\u0000${full("ad99")}`, "adopted"],
            [`offsite\u0000${full("ae00")}`, "complete"],
          ]);
          const states = await store.snapshotStates({ deadRuns: ["r-dead"] });
          assert.deepEqual(new Map([...states].sort()), new Map([...expected].sort()));
          const observed = await store.observe({ deadRuns: ["r-dead"] });
          assert.deepEqual(
            new Map(observed.snapshots.map((s) => [`${s.repository}\u0000${s.id}`, s.state] as const).sort()),
            new Map([...expected].sort()),
          );
        });
      });

      it("vouches for a snapshot whatever is written first: the snapshot, the stage that recorded it, a copy's original", async () => {
        await withStore(backend, async (store) => {
          const at = "2026-11-21T03:00:00.000Z";
          const full = (prefix: string) => prefix.padEnd(64, prefix.at(-1));
          await run(store, "r-1", "shop", at);
          const tagged = (id: string, original: string | null = null) => ({
            ...snapshot(id, at, "shop", "db"),
            run_id: "r-1",
            original,
          });
          const states = async () => new Map([...await store.snapshotStates()].sort());
          const key = (repository: string, id: string) => `${repository}\u0000${id}`;
          // The backup's snapshot is listed while its stage still runs: pending, as its run is alive.
          const stage = await backupStage(store, "shop", "db", "local", at, "running", { runId: "r-1" });
          const short = await backupStage(store, "shop", "db", "local", at, "running", { runId: "r-1" });
          await store.addSnapshots("local", [tagged(full("aa11")), tagged(full("bb22bb22"))]);
          await store.addSnapshots("offsite", [tagged(full("cc33")), tagged(full("dd44"))]);
          assert.deepEqual(
            await states(),
            new Map([
              [key("local", full("aa11")), "pending"],
              [key("local", full("bb22bb22")), "pending"],
              [key("offsite", full("cc33")), "pending"],
              [key("offsite", full("dd44")), "pending"],
            ]),
          );
          // The stages succeed, one recording the full id, one the short id (restic 0.14); a failure vouches for
          // nothing, nor does a recorded id that only shares the first 8 characters.
          await store.finishStage(stage, {
            status: "succeeded",
            finishedAt: at,
            durationMs: 1,
            snapshotId: full("aa11"),
          });
          await store.finishStage(short, {
            status: "succeeded",
            finishedAt: at,
            durationMs: 1,
            snapshotId: "bb22bb22",
          });
          await backupStage(store, "shop", "db", "local", at, "failed", { runId: "r-1", snapshotId: full("cc33") });
          await backupStage(store, "shop", "db", "local", at, "succeeded", {
            runId: "r-1",
            snapshotId: `${"dd44dd44"}${"e".repeat(56)}`,
          });
          // A refresh lists dd44 again as a copy of aa11 (its original): vouched for through it.
          await store.addSnapshots("offsite", [tagged(full("dd44"), full("aa11"))]);
          await store.finishRun("r-1", { status: "failed", finishedAt: at, durationMs: 1 });
          const expected = new Map([
            [key("local", full("aa11")), "complete"],
            [key("local", full("bb22bb22")), "complete"],
            [key("offsite", full("cc33")), "incomplete"],
            [key("offsite", full("dd44")), "complete"],
          ]);
          assert.deepEqual(await states(), expected);
          const observed = await store.observe();
          assert.deepEqual(
            new Map(observed.snapshots.map((s) => [key(s.repository, s.id), s.state] as const).sort()),
            expected,
          );
          // A refresh that replaces the inventory judges every snapshot again, against the same audit.
          await store.replaceSnapshots("local", [tagged(full("aa11")), tagged(full("ff66"))], at);
          assert.deepEqual(
            await states(),
            new Map([
              [key("local", full("aa11")), "complete"],
              [key("local", full("ff66")), "incomplete"],
              [key("offsite", full("cc33")), "incomplete"],
              [key("offsite", full("dd44")), "complete"],
            ]),
          );
        });
      });

      it("scoped to projects, reads their snapshots, backups, failures and partial snapshots only, as the whole view has them", async () => {
        await withStore(backend, async (store) => {
          const full = (prefix: string) => prefix.padEnd(64, prefix.at(-1));
          const day = (n: number) => `2026-11-${String(10 + n).padStart(2, "0")}T03:00:00.000Z`;
          for (const [i, project] of ["shop", "blog", "wiki"].entries()) {
            const ok = `r-${project}-ok`;
            const failed = `r-${project}-failed`;
            await run(store, ok, project, day(i), "succeeded");
            await run(store, failed, project, day(i + 3), "failed");
            await backupStage(store, project, "db", "local", day(i), "succeeded", {
              runId: ok,
              snapshotId: full(`a${i}`),
            });
            // A failed stage whose snapshot restic stored anyway, and a later failure without one.
            await backupStage(store, project, "db", "local", day(i + 3), "failed", {
              runId: failed,
              snapshotId: full(`b${i}`),
            });
            await backupStage(store, project, "files", "local", day(i + 4), "failed", { runId: failed });
          }
          const tagged = (id: string, project: string | null, runId: string | null, time: string) => ({
            ...snapshot(id, time, project, project ? "db" : null),
            run_id: runId,
          });
          await store.replaceSnapshots("local", [
            ...["shop", "blog", "wiki"].flatMap((project, i) => [
              tagged(full(`a${i}`), project, `r-${project}-ok`, day(i)),
              tagged(full(`b${i}`), project, `r-${project}-failed`, day(i + 3)),
            ]),
            tagged(full("c9"), null, null, day(9)),
          ], "2026-11-22T10:00:00.000Z");
          const whole = await store.observe();
          const scoped = await store.observe({ projects: ["shop", "wiki"] });
          const theirs = <T extends { project: string | null }>(items: T[]) =>
            items.filter((item) => item.project === "shop" || item.project === "wiki");
          assert.deepEqual(scoped.snapshots, theirs(whole.snapshots));
          assert.equal(scoped.snapshots.length, 4);
          assert.deepEqual(byKey(scoped.backups), byKey(theirs(whole.backups)));
          assert.equal(scoped.backups.length, 2);
          assert.deepEqual(byKey(scoped.failures), byKey(theirs(whole.failures)));
          assert.equal(scoped.failures.length, 4);
          assert.deepEqual(
            scoped.partials.map((p) => p.snapshot).sort(),
            theirs(whole.partials).map((p) => p.snapshot).sort(),
          );
          assert.deepEqual(scoped.partials.map((p) => p.snapshot).sort(), [full("b0"), full("b2")]);
          // What is not per project stays whole; an empty scope is no scope.
          assert.deepEqual(scoped.knownProjects, whole.knownProjects);
          assert.deepEqual(await store.observe({ projects: [] }), whole);
        });
      });

      it("keeps the original of a copied snapshot in the inventory and in observe(), null for the others", async () => {
        await withStore(backend, async (store) => {
          await store.replaceSnapshots("local", [
            snapshot("a1aaaaaaaaaa", "2026-11-20T03:00:00.000Z", "shop", "db"),
          ], "2026-11-22T10:00:00.000Z");
          await store.replaceSnapshots("offsite", [
            { ...snapshot("c1cccccccccc", "2026-11-20T03:00:00.000Z", "shop", "db"), original: "a1aaaaaaaaaa" },
          ], "2026-11-22T10:00:01.000Z");
          const rows = await storeDb(store).selectFrom("snapshots").select(["repository", "id", "original"]).orderBy(
            "repository",
          )
            .execute();
          assert.deepEqual(plain(rows), [
            { repository: "local", id: "a1aaaaaaaaaa", original: null },
            { repository: "offsite", id: "c1cccccccccc", original: "a1aaaaaaaaaa" },
          ]);
          const observed = await store.observe();
          assert.deepEqual(
            observed.snapshots.map((s) => [s.repository, s.id, s.original]).sort(),
            [["local", "a1aaaaaaaaaa", null], ["offsite", "c1cccccccccc", "a1aaaaaaaaaa"]],
          );
        });
      });

      it("returns the latest succeeded prune and check per repository and verify per project, and the latest prune attempt", async () => {
        await withStore(backend, async (store) => {
          // local: two prunes (the newer wins), a newer failed and a running one (ignored); a check.
          await maintenanceStage(store, "prune", { repository: "local" }, "2026-11-10T05:00:00.000Z", "succeeded");
          await maintenanceStage(store, "prune", { repository: "local" }, "2026-11-14T05:00:00.000Z", "succeeded");
          await maintenanceStage(store, "prune", { repository: "local" }, "2026-11-20T05:00:00.000Z", "failed");
          await maintenanceStage(store, "prune", { repository: "local" }, "2026-11-21T05:00:00.000Z", "running");
          await maintenanceStage(store, "check", { repository: "local" }, "2026-11-15T06:00:00.000Z", "succeeded");
          await maintenanceStage(store, "check", { repository: "local" }, "2026-11-19T06:00:00.000Z", "skipped");
          // offsite: only a failed prune, and a check older than a failed one.
          await maintenanceStage(store, "prune", { repository: "offsite" }, "2026-11-18T05:00:00.000Z", "failed");
          await maintenanceStage(store, "check", { repository: "offsite" }, "2026-11-12T06:00:00.000Z", "succeeded");
          await maintenanceStage(store, "check", { repository: "offsite" }, "2026-11-16T06:00:00.000Z", "failed");
          // Restore drills: per project, whatever repository they read from.
          await maintenanceStage(
            store,
            "verify",
            { project: "shop", repository: "local" },
            "2026-11-01T07:00:00.000Z",
            "succeeded",
          );
          await maintenanceStage(
            store,
            "verify",
            { project: "shop", repository: "offsite" },
            "2026-11-08T07:00:00.000Z",
            "succeeded",
          );
          await maintenanceStage(
            store,
            "verify",
            { project: "shop", repository: "local" },
            "2026-11-15T07:00:00.000Z",
            "failed",
          );
          await maintenanceStage(
            store,
            "verify",
            { project: "blog", repository: "local" },
            "2026-11-09T07:00:00.000Z",
            "interrupted",
          );
          // Not maintenance: a successful backup.
          await backupStage(store, "shop", "db", "local", "2026-11-21T03:00:00.000Z", "succeeded");

          const key = (m: { type: string; repository?: string; project?: string }) =>
            `${m.type}/${m.repository ?? ""}/${m.project ?? ""}`;
          const maintenance = [...(await store.observe()).maintenance].sort((a, b) => key(a).localeCompare(key(b)));
          assert.deepEqual(maintenance, [
            { type: "check", repository: "local", at: "2026-11-15T06:00:00.000Z" },
            { type: "check", repository: "offsite", at: "2026-11-12T06:00:00.000Z" },
            // The latest prune attempt, whatever became of it (a later one than the last success was cut short).
            { type: "prune_attempt", repository: "local", at: "2026-11-21T05:00:00.000Z" },
            { type: "prune_attempt", repository: "offsite", at: "2026-11-18T05:00:00.000Z" },
            { type: "prune", repository: "local", at: "2026-11-14T05:00:00.000Z" },
            { type: "verify", project: "shop", at: "2026-11-08T07:00:00.000Z" },
          ]);
        });
      });

      it("knownProjects lists each project with a run once, whatever the run's status", async () => {
        await withStore(backend, async (store) => {
          await run(store, "s1", "shop", "2026-11-19T03:00:00.000Z", "succeeded");
          await run(store, "s2", "shop", "2026-11-20T03:00:00.000Z", "failed");
          await run(store, "l1", "legacy", "2026-11-01T03:00:00.000Z", "succeeded");
          await run(store, "b1", "blog", "2026-11-21T04:00:00.000Z");
          // A stage without a run does not make a project known.
          await backupStage(store, "ghost", "db", "local", "2026-11-21T03:00:00.000Z", "succeeded");
          const observed = await store.observe();
          assert.deepEqual([...observed.knownProjects].sort(), ["blog", "legacy", "shop"]);
        });
      });

      it("knownRepositories lists every repository of the state, and only those", async () => {
        await withStore(backend, async (store) => {
          await store.markRepositoryInitialized("local", "/srv/restic", "2026-11-01T00:00:00.000Z");
          await store.markRepositoryInitialized("old", "/srv/old", "2025-01-01T00:00:00.000Z");
          await backupStage(store, "shop", "db", "offsite", "2026-11-21T03:00:00.000Z", "succeeded");
          const observed = await store.observe();
          assert.deepEqual([...observed.knownRepositories].sort(), ["local", "old"]);
          assert.deepEqual(observed.repositories, {
            local: { initialized: true, initializedAt: "2026-11-01T00:00:00.000Z" },
            old: { initialized: true, initializedAt: "2025-01-01T00:00:00.000Z" },
          });
        });
      });
    });

    describe("StateStore retention policies and applied plans", () => {
      const shopDb = { project: "shop", source: "db", repository: "local" };

      it("recordRetention inserts a group's policy, then updates it in place", async () => {
        await withStore(backend, async (store) => {
          await store.recordRetention(shopDb, '{"daily":30}', "2026-11-20T03:05:00.000Z");
          assert.deepEqual((await store.observe()).retention, [
            { ...shopDb, policy: '{"daily":30}', at: "2026-11-20T03:05:00.000Z" },
          ]);

          await store.recordRetention(shopDb, '{"daily":7}', "2026-11-21T03:05:00.000Z");
          await store.recordRetention({ ...shopDb, repository: "offsite" }, '{"daily":30}', "2026-11-21T03:06:00.000Z");
          const retention = byKey((await store.observe()).retention);
          assert.deepEqual(retention, [
            { ...shopDb, policy: '{"daily":7}', at: "2026-11-21T03:05:00.000Z" },
            { ...shopDb, repository: "offsite", policy: '{"daily":30}', at: "2026-11-21T03:06:00.000Z" },
          ]);
          const rows = await storeDb(store).selectFrom("retention_policies").selectAll().orderBy("repository")
            .execute();
          assert.deepEqual(plain(rows), [
            { ...shopDb, policy: '{"daily":7}', applied_at: "2026-11-21T03:05:00.000Z" },
            { ...shopDb, repository: "offsite", policy: '{"daily":30}', applied_at: "2026-11-21T03:06:00.000Z" },
          ]);
        });
      });

      it("markPlanApplied records the plan id in observe().appliedPlans and refuses the same id twice", async () => {
        await withStore(backend, async (store) => {
          await store.markPlanApplied("0b6f3c1e-plan-one", "2026-11-21T10:00:00.000Z");
          assert.deepEqual((await store.observe()).appliedPlans, ["0b6f3c1e-plan-one"]);
          await assert.rejects(
            store.markPlanApplied("0b6f3c1e-plan-one", "2026-11-21T11:00:00.000Z"),
            /UNIQUE|PRIMARY/i,
          );
          await store.markPlanApplied("7d1e2a9f-plan-two", "2026-11-21T12:00:00.000Z");
          assert.deepEqual([...(await store.observe()).appliedPlans].sort(), [
            "0b6f3c1e-plan-one",
            "7d1e2a9f-plan-two",
          ]);
          const rows = await storeDb(store).selectFrom("applied_plans").selectAll().orderBy("plan_id").execute();
          assert.deepEqual(plain(rows), [
            { plan_id: "0b6f3c1e-plan-one", applied_at: "2026-11-21T10:00:00.000Z", held: null },
            { plan_id: "7d1e2a9f-plan-two", applied_at: "2026-11-21T12:00:00.000Z", held: null },
          ]);
        });
      });
    });

    describe("StateStore repositories", () => {
      it("markRepositoryInitialized inserts, then updates location and time on a second call", async () => {
        await withStore(backend, async (store) => {
          await store.markRepositoryInitialized("local", "/srv/restic", "2026-11-21T03:00:00.000Z");
          await store.markRepositoryInitialized("offsite", "sftp:storage.example:/restic", "2026-11-21T03:00:01.000Z");
          await store.markRepositoryInitialized("local", "/srv/restic2", "2026-11-22T03:00:00.000Z");
          const rows = await storeDb(store).selectFrom("repositories").selectAll().orderBy("name").execute();
          assert.deepEqual(plain(rows), [
            {
              name: "local",
              location: "/srv/restic2",
              initialized_at: "2026-11-22T03:00:00.000Z",
              last_refresh_at: null,
              last_check_at: null,
              last_check_status: null,
            },
            {
              name: "offsite",
              location: "sftp:storage.example:/restic",
              initialized_at: "2026-11-21T03:00:01.000Z",
              last_refresh_at: null,
              last_check_at: null,
              last_check_status: null,
            },
          ]);
          assert.deepEqual((await store.observe()).repositories, {
            local: { initialized: true, initializedAt: "2026-11-22T03:00:00.000Z" },
            offsite: { initialized: true, initializedAt: "2026-11-21T03:00:01.000Z" },
          });
        });
      });
      it("recordCheck sets the last check time and status of one repository, and a later call overwrites them", async () => {
        await withStore(backend, async (store) => {
          await store.markRepositoryInitialized("local", "/srv/restic", "2026-11-01T00:00:00.000Z");
          await store.markRepositoryInitialized("offsite", "/srv/offsite", "2026-11-01T00:00:00.000Z");
          const checks = () =>
            storeDb(store).selectFrom("repositories").select([
              "name",
              "initialized_at",
              "last_check_at",
              "last_check_status",
            ])
              .orderBy("name").execute();

          await store.recordCheck("local", "2026-11-20T06:00:00.000Z", "failed");
          assert.deepEqual(plain(await checks()), [
            {
              name: "local",
              initialized_at: "2026-11-01T00:00:00.000Z",
              last_check_at: "2026-11-20T06:00:00.000Z",
              last_check_status: "failed",
            },
            {
              name: "offsite",
              initialized_at: "2026-11-01T00:00:00.000Z",
              last_check_at: null,
              last_check_status: null,
            },
          ]);

          await store.recordCheck("local", "2026-11-21T06:00:00.000Z", "succeeded");
          assert.deepEqual(plain(await checks())[0], {
            name: "local",
            initialized_at: "2026-11-01T00:00:00.000Z",
            last_check_at: "2026-11-21T06:00:00.000Z",
            last_check_status: "succeeded",
          });
        });
      });
    });

    describe("StateStore snapshots", () => {
      /** local: a1 (shop/db), a2 (shop/files), a3 (blog/blog); offsite: b1 (shop/db). */
      async function seed(store: StateStore): Promise<void> {
        await store.markRepositoryInitialized("local", "/srv/restic", "2026-11-01T00:00:00.000Z");
        await store.markRepositoryInitialized("offsite", "/srv/offsite", "2026-11-01T00:00:00.000Z");
        await store.replaceSnapshots("local", [
          snapshot("a1aaaaaaaaaa", "2026-11-20T03:00:00.000Z", "shop", "db"),
          snapshot("a2aaaaaaaaaa", "2026-11-21T03:00:00.000Z", "shop", "files"),
          snapshot("a3aaaaaaaaaa", "2026-11-19T03:00:00.000Z", "blog", "blog"),
        ], "2026-11-21T10:00:00.000Z");
        await store.replaceSnapshots("offsite", [
          snapshot("b1bbbbbbbbbb", "2026-11-20T04:00:00.000Z", "shop", "db"),
        ], "2026-11-21T10:00:01.000Z");
      }

      const ids = (rows: SnapshotTable[]) => rows.map((row) => `${row.repository}:${row.id}`);

      it("replaceSnapshots replaces one repository's inventory and leaves the others alone", async () => {
        await withStore(backend, async (store) => {
          await seed(store);
          await store.replaceSnapshots("local", [
            snapshot("a2aaaaaaaaaa", "2026-11-21T03:00:00.000Z", "shop", "files"),
            snapshot("a4aaaaaaaaaa", "2026-11-22T03:00:00.000Z", "shop", "db"),
          ], "2026-11-22T10:00:00.000Z");
          assert.deepEqual(ids(await store.listSnapshots({})), [
            "offsite:b1bbbbbbbbbb",
            "local:a2aaaaaaaaaa",
            "local:a4aaaaaaaaaa",
          ]);
          const local = await store.listSnapshots({ repository: "local" });
          assert.deepEqual(plain(local), [
            { ...snapshot("a2aaaaaaaaaa", "2026-11-21T03:00:00.000Z", "shop", "files"), repository: "local" },
            { ...snapshot("a4aaaaaaaaaa", "2026-11-22T03:00:00.000Z", "shop", "db"), repository: "local" },
          ]);
          const refreshed = await storeDb(store).selectFrom("repositories").select(["name", "last_refresh_at"]).orderBy(
            "name",
          )
            .execute();
          assert.deepEqual(plain(refreshed), [
            { name: "local", last_refresh_at: "2026-11-22T10:00:00.000Z" },
            { name: "offsite", last_refresh_at: "2026-11-21T10:00:01.000Z" },
          ]);
        });
      });

      it("replaceSnapshots with an empty list empties that repository only", async () => {
        await withStore(backend, async (store) => {
          await seed(store);
          await store.replaceSnapshots("local", [], "2026-11-22T10:00:00.000Z");
          assert.deepEqual(ids(await store.listSnapshots({})), ["offsite:b1bbbbbbbbbb"]);
        });
      });

      it("fills a snapshot's size from the succeeded stage that wrote it (by id or short id)", async () => {
        await withStore(backend, async (store) => {
          await backupStage(store, "shop", "db", "local", "2026-11-20T03:00:00.000Z", "succeeded", {
            snapshotId: "a1aaaaaaaaaa",
            bytes: 4096,
          });
          // A failed stage's snapshot (forgotten afterwards) is not a size source.
          await backupStage(store, "shop", "files", "local", "2026-11-21T03:00:00.000Z", "failed", {
            snapshotId: "a2aaaaaaaaaa",
            bytes: 777,
          });
          // A stage that recorded the short id.
          await backupStage(store, "shop", "db", "offsite", "2026-11-20T04:00:00.000Z", "succeeded", {
            snapshotId: "b1bbbbbb",
            bytes: 8192,
          });
          await seed(store);
          const sizes = (await store.listSnapshots({})).map((row) => [row.id, row.size]);
          assert.deepEqual(sizes, [
            ["a3aaaaaaaaaa", null],
            ["a1aaaaaaaaaa", 4096],
            ["b1bbbbbbbbbb", 8192],
            ["a2aaaaaaaaaa", null],
          ]);
        });
      });

      it("listSnapshots filters by projects and repository, ordered by time", async () => {
        await withStore(backend, async (store) => {
          await seed(store);
          assert.deepEqual(ids(await store.listSnapshots({})), [
            "local:a3aaaaaaaaaa",
            "local:a1aaaaaaaaaa",
            "offsite:b1bbbbbbbbbb",
            "local:a2aaaaaaaaaa",
          ]);
          assert.deepEqual(ids(await store.listSnapshots({ projects: ["shop"] })), [
            "local:a1aaaaaaaaaa",
            "offsite:b1bbbbbbbbbb",
            "local:a2aaaaaaaaaa",
          ]);
          assert.deepEqual(ids(await store.listSnapshots({ repository: "offsite" })), ["offsite:b1bbbbbbbbbb"]);
          assert.deepEqual(ids(await store.listSnapshots({ projects: ["shop"], repository: "local" })), [
            "local:a1aaaaaaaaaa",
            "local:a2aaaaaaaaaa",
          ]);
          assert.deepEqual(ids(await store.listSnapshots({ projects: ["blog", "shop"], repository: "offsite" })), [
            "offsite:b1bbbbbbbbbb",
          ]);
          assert.equal((await store.listSnapshots({ projects: [] })).length, 4);
          assert.deepEqual(ids(await store.listSnapshots({ projects: ["nope"] })), []);
        });
      });

      it("snapshotCounts counts snapshots and finds the newest per (repository, project)", async () => {
        await withStore(backend, async (store) => {
          await seed(store);
          await store.replaceSnapshots("offsite", [
            snapshot("b1bbbbbbbbbb", "2026-11-20T04:00:00.000Z", "shop", "db"),
            snapshot("b2bbbbbbbbbb", "2026-11-21T04:00:00.000Z", "shop", "files"),
            snapshot("b3bbbbbbbbbb", "2026-11-18T04:00:00.000Z", null, null),
          ], "2026-11-22T10:00:00.000Z");
          const counts = (await store.snapshotCounts())
            .sort((a, b) => `${a.repository}/${a.project}`.localeCompare(`${b.repository}/${b.project}`));
          assert.deepEqual(counts, [
            { repository: "local", project: "blog", count: 1, newest: "2026-11-19T03:00:00.000Z" },
            { repository: "local", project: "shop", count: 2, newest: "2026-11-21T03:00:00.000Z" },
            { repository: "offsite", project: null, count: 1, newest: "2026-11-18T04:00:00.000Z" },
            { repository: "offsite", project: "shop", count: 2, newest: "2026-11-21T04:00:00.000Z" },
          ]);
          assert.equal(typeof counts[0].count, "number");
        });
      });
    });

    describe("StateStore.projectRuns", () => {
      it("returns the latest run and the latest successful run per project", async () => {
        await withStore(backend, async (store) => {
          await run(store, "s1", "shop", "2026-11-19T03:00:00.000Z", "succeeded");
          await run(store, "s2", "shop", "2026-11-20T03:00:00.000Z", "succeeded");
          await run(store, "s3", "shop", "2026-11-21T03:00:00.000Z", "failed");
          await run(store, "b1", "blog", "2026-11-21T04:00:00.000Z");
          await run(store, "n1", "news", "2026-11-21T05:00:00.000Z", "succeeded");

          const runs = await store.projectRuns();
          const summary = (id: string, project: string, status: string, startedAt: string, done: boolean) => ({
            id,
            project,
            status,
            started_at: startedAt,
            finished_at: done ? oneSecondLater(startedAt) : null,
            duration_ms: done ? 10 : null,
            error: null,
          });
          assert.deepEqual([...runs.keys()].sort(), ["blog", "news", "shop"]);
          assert.deepEqual(
            JSON.parse(JSON.stringify(runs.get("shop"))),
            {
              lastRun: summary("s3", "shop", "failed", "2026-11-21T03:00:00.000Z", true),
              lastSuccess: summary("s2", "shop", "succeeded", "2026-11-20T03:00:00.000Z", true),
            },
          );
          assert.deepEqual(
            JSON.parse(JSON.stringify(runs.get("blog"))),
            { lastRun: summary("b1", "blog", "running", "2026-11-21T04:00:00.000Z", false) },
          );
          assert.deepEqual(
            JSON.parse(JSON.stringify(runs.get("news"))),
            {
              lastRun: summary("n1", "news", "succeeded", "2026-11-21T05:00:00.000Z", true),
              lastSuccess: summary("n1", "news", "succeeded", "2026-11-21T05:00:00.000Z", true),
            },
          );
          // Of some projects only (a dashboard project page): the same summaries, no other project's.
          const some = await store.projectRuns(["shop", "blog"]);
          assert.deepEqual([...some.keys()].sort(), ["blog", "shop"]);
          assert.deepEqual(JSON.parse(JSON.stringify(some.get("shop"))), JSON.parse(JSON.stringify(runs.get("shop"))));
        });
      });

      it("is empty without runs", async () => {
        await withStore(backend, async (store) => {
          assert.equal((await store.projectRuns()).size, 0);
        });
      });
    });
  });
}
