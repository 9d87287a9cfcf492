/**
 * What only a PostgreSQL state has (src/state/dialect-postgres.ts, open-postgres.ts, migrations-postgres.ts), on a
 * real server started by the test: the schema option, 64-bit byte counts, readers that write nothing, a schema behind
 * or ahead of this version, SQLSTATEs that send writes to the fallback file, and the fallback replayed into PostgreSQL.
 * The cases every database shares run on both in store_test.ts, writes_test.ts and prune_counts_test.ts.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { sql } from "kysely";
import { StateUnwritableError } from "../../src/errors.ts";
import { stateTables } from "../../src/state/copy.ts";
import { postgresStateDialect, postgresUnwritableReason, writerIdleLimitMs } from "../../src/state/dialect-postgres.ts";
import { latestPostgresMigration } from "../../src/state/migrations-postgres.ts";
import { fallbackFileName } from "../../src/state/fallback.ts";
import { StateStore } from "../../src/state/store.ts";
import {
  postgresBackend,
  schemaFor,
  sqliteBackend,
  stateServer,
  stopStateBackends,
} from "../support/state-backends.ts";
import { storeDb } from "../support/state-db.ts";
import { waitFor } from "../support/cli.ts";

after(stopStateBackends);

async function inTempDir(body: (dir: string) => Promise<void>): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), "backupctl-pgstate-"));
  try {
    await body(join(root, "state"));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

async function psql(sql: string): Promise<string> {
  const server = await stateServer();
  return (await server.server.psql(sql, server.database)).trim();
}

describe("a PostgreSQL state", () => {
  it("lives in its schema, created when missing, with Kysely's migration tables; two schemas are two states", async () => {
    await inTempDir(async (dir) => {
      const { url } = await stateServer();
      const first = await StateStore.open(dir, { postgres: { url, schema: "tools_backup" } });
      const second = await StateStore.open(dir, { postgres: { url, schema: "other_backup" } });
      try {
        const tables = await psql(
          "SELECT string_agg(table_name, ',' ORDER BY table_name) FROM information_schema.tables " +
            "WHERE table_schema = 'tools_backup'",
        );
        assert.deepEqual(tables.split(","), [
          "applied_plans",
          "config_seen",
          "fenced_writes",
          "kysely_migration",
          "kysely_migration_lock",
          "latest_stages",
          "leases",
          "meta",
          "outbox",
          "repositories",
          "retention_policies",
          "runners",
          "runs",
          "snapshots",
          "stages",
        ]);
        assert.equal(await psql("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"), "0");
        assert.equal(
          await psql("SELECT max(name) FROM tools_backup.kysely_migration"),
          latestPostgresMigration,
        );
        assert.notEqual(await first.lineage(), await second.lineage());
        await first.bumpSerial();
        assert.equal(await first.serial(), 1);
        assert.equal(await second.serial(), 0);
        assert.equal(first.location.includes("schema tools_backup"), true);
        assert.equal(existsSync(join(dir, "state.db")), false, "no SQLite file beside it");
      } finally {
        await first.close();
        await second.close();
      }
    });
  });

  it("has the same tables, columns and indexes as a SQLite state; the operations index is partial on both", async () => {
    await inTempDir(async (dir) => {
      const sqlite = await sqliteBackend.open(dir);
      const postgres = await postgresBackend.open(dir);
      try {
        const sqliteIndexes = await sql<{ name: string }>`SELECT name FROM sqlite_master WHERE type = 'index'
          AND name NOT LIKE 'sqlite_autoindex_%' ORDER BY name`.execute(storeDb(sqlite));
        const postgresIndexes = await sql<{ name: string }>`SELECT indexname AS name FROM pg_indexes
          WHERE schemaname = current_schema() AND indexname NOT LIKE '%_pkey' AND indexname NOT LIKE '%_pk'
          AND tablename NOT LIKE 'kysely_%' ORDER BY indexname`.execute(storeDb(postgres));
        assert.deepEqual(postgresIndexes.rows.map((r) => r.name), sqliteIndexes.rows.map((r) => r.name));
        const partial = await sql<{ def: string }>`SELECT indexdef AS def FROM pg_indexes
          WHERE schemaname = current_schema() AND indexname = 'stages_operations'`.execute(storeDb(postgres));
        assert.match(partial.rows[0]?.def ?? "", /WHERE \(run_id IS NULL\)/);
        for (const table of stateTables.map((t) => t.table)) {
          const sqliteColumns = await sql<{ name: string }>`SELECT name FROM pragma_table_info(${table})
            ORDER BY name`.execute(storeDb(sqlite));
          const postgresColumns = await sql<{ name: string }>`SELECT column_name AS name
            FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ${table}
            ORDER BY column_name`.execute(storeDb(postgres));
          assert.deepEqual(postgresColumns.rows.map((r) => r.name), sqliteColumns.rows.map((r) => r.name), table);
        }
      } finally {
        await sqlite.close();
        await postgres.close();
      }
    });
  });

  it("keeps byte counts and durations past 2^31 (bigint), read back as numbers", async () => {
    await inTempDir(async (dir) => {
      const store = await postgresBackend.open(dir);
      try {
        const big = 5 * 2 ** 30;
        const id = await store.startStage({
          runId: null,
          type: "backup",
          project: "p",
          source: "s",
          repository: "r",
          startedAt: "2026-11-21T03:00:00.000Z",
        });
        await store.finishStage(id, {
          status: "succeeded",
          finishedAt: "2026-11-21T04:00:00.000Z",
          durationMs: 3 * 2 ** 31,
          bytes: big,
          bytesAdded: big - 1,
          snapshotId: "a".repeat(64),
        });
        const row = await storeDb(store).selectFrom("stages").select(["id", "bytes", "bytes_added", "duration_ms"])
          .executeTakeFirstOrThrow();
        assert.deepEqual({ ...row }, { id, bytes: big, bytes_added: big - 1, duration_ms: 3 * 2 ** 31 });
        const types = await psql(
          "SELECT string_agg(column_name || ' ' || data_type, ',' ORDER BY column_name) FROM " +
            `information_schema.columns WHERE table_schema = '${schemaFor(dir)}' AND table_name = 'stages' ` +
            "AND column_name IN ('id', 'bytes', 'bytes_added', 'duration_ms', 'forgotten')",
        );
        assert.equal(
          types,
          "bytes bigint,bytes_added bigint,duration_ms bigint,forgotten bigint,id bigint",
        );
      } finally {
        await store.close();
      }
    });
  });

  it("a reader writes nothing: no schema made, refused writes; a schema behind this version is not read", async () => {
    await inTempDir(async (dir) => {
      const state = await postgresBackend.postgresState(dir);
      assert.ok(state);
      await assert.rejects(
        StateStore.openPostgresReadOnly(dir, state),
        (error) =>
          error instanceof StateUnwritableError && /holds no backupctl state yet: run a command that writes/.test(
            error.message,
          ),
      );
      assert.equal(await psql(`SELECT count(*) FROM pg_namespace WHERE nspname = '${state.schema}'`), "0");

      const writer = await StateStore.open(dir, { postgres: state });
      await writer.close();
      const reader = await StateStore.openPostgresReadOnly(dir, state);
      try {
        assert.equal(reader.unwritable, undefined, "nothing wrong with the state");
        await assert.rejects(
          reader.recordCheck("r", "2026-11-21T03:00:00.000Z", "ok"),
          (error) => error instanceof StateUnwritableError && /opened only to read it/.test(error.message),
        );
        // Even past the store, the server refuses: every transaction of a reader is read-only.
        await assert.rejects(
          storeDb(reader).insertInto("meta").values({ key: "x", value: "y" }).execute(),
          /read-only transaction/,
        );
      } finally {
        await reader.close();
      }

      await psql(`DELETE FROM ${state.schema}.kysely_migration WHERE name = '${latestPostgresMigration}'`);
      await assert.rejects(
        StateStore.openPostgresReadOnly(dir, state),
        /is at migration \S+, behind this version of backupctl .*run a command that writes \(backupctl apply\)/,
      );
    });
  });

  it("says what to grant when the URL's user may not create the schema", async () => {
    await inTempDir(async (dir) => {
      const server = await stateServer();
      const password = "limited-secret-4711";
      await server.server.createUser("limited", password);
      const url = `postgresql://limited:${password}@${server.server.host}:${server.server.port}/${server.database}`;
      await assert.rejects(
        StateStore.open(dir, { postgres: { url, schema: "not_mine" } }),
        (error) =>
          error instanceof StateUnwritableError && !error.message.includes(password) &&
          /\(schema not_mine\) cannot be opened: permission denied .*GRANT CREATE ON DATABASE/.test(error.message),
      );
    });
  });

  it("is never written by an older backupctl: a schema migrated further is refused with the fix", async () => {
    await inTempDir(async (dir) => {
      const state = await postgresBackend.postgresState(dir);
      assert.ok(state);
      const store = await StateStore.open(dir, { postgres: state });
      await store.close();
      await psql(
        `INSERT INTO ${state.schema}.kysely_migration (name, timestamp) VALUES ('9999_from_the_future', now()::text)`,
      );
      await assert.rejects(
        StateStore.open(dir, { postgres: state }),
        (error) =>
          error instanceof StateUnwritableError &&
          /was migrated by a newer backupctl \(9999_from_the_future; this version knows up to \S+\): upgrade backupctl/
            .test(error.message),
      );
    });
  });

  it("frees the writers' lock of a writer paused inside its transaction, after three busy timeouts", async () => {
    await inTempDir(async (dir) => {
      const state = await postgresBackend.postgresState(dir);
      assert.ok(state);
      const store = await StateStore.open(dir, { postgres: state, busyTimeoutMs: 300 });
      let resume = () => {};
      let writing: Promise<unknown> = Promise.resolve();
      try {
        assert.equal(writerIdleLimitMs(300), 1000);
        const paused = new Promise<void>((resolve) => (resume = resolve));
        let writerPid = 0;
        // A writer that took the lock and then stops running, as a SIGSTOPped process does between two statements.
        writing = postgresStateDialect(300).writeTransaction(storeDb(store), async (db) => {
          writerPid = (await sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`.execute(db)).rows[0].pid;
          await paused;
        });
        const lockFree = () =>
          psql(
            `SELECT pg_try_advisory_xact_lock(hashtext('backupctl state ' || '${state.schema}'))`,
          ).then((answer) => answer === "t");
        await waitFor("the writer to hold the lock", async () => writerPid > 0 && !(await lockFree()), 10_000);
        // PostgreSQL ends the idle session: its transaction rolls back and the lock is free for the other writers.
        await waitFor(
          "the paused writer's session to be ended",
          async () => (await psql(`SELECT count(*) FROM pg_stat_activity WHERE pid = ${writerPid}`)) === "0",
          20_000,
        );
        assert.equal(await lockFree(), true);
        resume();
        await assert.rejects(writing, "its commit finds the connection gone");
      } finally {
        resume(); // a failed check must not leave the writer holding its connection (close would wait for it)
        await writing.catch(() => {});
        await store.close();
      }
    });
  });

  it("outlives the server ending a connection it holds between two queries (an uncaught error before)", async () => {
    await inTempDir(async (dir) => {
      const store = await postgresBackend.open(dir);
      try {
        await storeDb(store).connection().execute(async (connection) => {
          const { rows } = await sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`.execute(connection);
          // The timeout makes PostgreSQL wait until the backend has exited: its FATAL message is on the way.
          await psql(`SELECT pg_terminate_backend(${rows[0].pid}, 10000)`);
          // Turns of the event loop while no query runs on the connection: the client reads the closing then.
          for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
          await assert.rejects(sql`SELECT 1`.execute(connection));
        });
        // The pool opens a new connection for the next query.
        const { rows } = await sql<{ one: number }>`SELECT 1 AS one`.execute(storeDb(store));
        assert.equal(rows[0].one, 1);
      } finally {
        await store.close();
      }
    });
  });

  it("sends writes to the fallback file when PostgreSQL refuses connections, and replays them into it", async () => {
    await inTempDir(async (dir) => {
      const server = await stateServer();
      const warnings: string[] = [];
      const store = await postgresBackend.open(dir, { warn: (message) => warnings.push(message) });
      try {
        await store.startRun({
          id: "run-1",
          project: "p",
          command: "apply",
          startedAt: "2026-11-21T03:00:00.000Z",
          fingerprint: "sha256:f",
          host: "h",
        });
        // No new connection for the role (53300), and its open ones ended (57P01).
        await psql(`ALTER ROLE ${server.user} CONNECTION LIMIT 0`);
        // The timeout makes PostgreSQL wait until each backend has exited: without it the call returns at once,
        // and on a loaded machine the write below could still reach a backend about to end.
        await psql(
          `SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity WHERE usename = '${server.user}'`,
        );
        await store.finishRun("run-1", {
          status: "succeeded",
          finishedAt: "2026-11-21T03:01:00.000Z",
          durationMs: 60_000,
        });
        assert.equal(store.degraded, true);
        assert.ok(existsSync(join(dir, fallbackFileName)));
        assert.equal(warnings.length, 1);
        assert.match(
          warnings[0],
          /cannot be written \(PostgreSQL .*\): this process's results go to .*fallback\.jsonl/,
        );
        assert.ok(!warnings[0].includes(server.password), "no password in the warning");
      } finally {
        await psql(`ALTER ROLE ${server.user} CONNECTION LIMIT -1`);
        await store.close();
      }
      const reopened = await postgresBackend.open(dir);
      try {
        assert.deepEqual(reopened.replayed, { applied: 1, rejected: 0 });
        const run = await storeDb(reopened).selectFrom("runs").select(["status", "duration_ms"])
          .executeTakeFirstOrThrow();
        assert.deepEqual({ ...run }, { status: "succeeded", duration_ms: 60_000 });
        assert.equal(existsSync(join(dir, fallbackFileName)), false);
      } finally {
        await reopened.close();
      }
    });
  });
});

describe("copying a state into PostgreSQL (state push)", () => {
  /** A SQLite state with a run, a stage and a snapshot. */
  async function sqliteState(dir: string): Promise<StateStore> {
    const store = await sqliteBackend.open(dir);
    await store.startRun({
      id: "run-1",
      project: "p",
      command: "apply",
      startedAt: "2026-11-21T03:00:00.000Z",
      fingerprint: "sha256:f",
      host: "h",
    });
    const stage = await store.startStage({
      runId: "run-1",
      type: "backup",
      project: "p",
      source: "s",
      repository: "r",
      startedAt: "2026-11-21T03:00:01.000Z",
    });
    await store.finishStage(stage, {
      status: "succeeded",
      finishedAt: "2026-11-21T03:00:02.000Z",
      durationMs: 1,
      snapshotId: "b".repeat(64),
    });
    await store.markRepositoryInitialized("r", "/srv/r", "2026-11-21T02:00:00.000Z");
    await store.addSnapshots("r", [{
      id: "b".repeat(64),
      short_id: "bbbbbbbb",
      time: "2026-11-21T03:00:02.000Z",
      project: "p",
      source: "s",
      run_id: "run-1",
      hostname: "h",
      tags: "[]",
      paths: "[]",
      size: null,
      recorded_at: "2026-11-21T03:00:03.000Z",
      original: null,
    }]);
    await store.bumpSerial();
    return store;
  }

  it("copies every row and the lineage; new ids continue after the copied ones", async () => {
    await inTempDir(async (dir) => {
      const source = await sqliteState(dir);
      const target = await postgresBackend.open(dir);
      try {
        assert.equal(await target.contents(), undefined, "a fresh state is empty");
        const counts = await source.copyInto(target);
        assert.deepEqual(counts, {
          // The stage's start, running then succeeded (latest_stages, kept by the triggers).
          latest_stages: 2,
          meta: 3,
          runs: 1,
          stages: 1,
          snapshots: 1,
          repositories: 1,
          outbox: 0,
          retention_policies: 0,
          applied_plans: 0,
          runners: 0,
          config_seen: 0,
          leases: 0,
          fenced_writes: 0,
        });
        assert.equal(await target.lineage(), await source.lineage());
        assert.equal(await target.serial(), 1);
        assert.equal(await target.contents(), "1 runs, 1 stages, 1 snapshots, 1 repositories, serial 1");
        // The snapshot the copied stage recorded is vouched for there too.
        assert.deepEqual([...await target.snapshotStates()], [[`r\u0000${"b".repeat(64)}`, "complete"]]);
        const next = await target.startStage({ runId: null, type: "check", startedAt: "2026-11-22T00:00:00.000Z" });
        assert.ok(next > 1, `a new stage id after the copied ones, got ${next}`);
      } finally {
        await source.close();
        await target.close();
      }
    });
  });

  it("leaves the target as it was when the copy fails midway", async () => {
    await inTempDir(async (dir) => {
      const source = await sqliteState(dir);
      const target = await postgresBackend.open(dir);
      const schema = schemaFor(dir);
      try {
        await target.startRun({
          id: "theirs",
          project: "q",
          command: "apply",
          startedAt: "2026-11-20T03:00:00.000Z",
          fingerprint: "sha256:g",
          host: "h2",
        });
        const lineage = await target.lineage();
        // The target's disk "fills" when the snapshots arrive, after meta, runs and stages were replaced.
        await psql(`CREATE FUNCTION ${schema}.refuse() RETURNS trigger LANGUAGE plpgsql AS
          $$ BEGIN RAISE EXCEPTION 'could not extend file' USING ERRCODE = '53100'; END $$;
          CREATE TRIGGER refuse BEFORE INSERT ON ${schema}.snapshots FOR EACH ROW EXECUTE FUNCTION ${schema}.refuse();`);
        await assert.rejects(source.copyInto(target), /could not extend file/);
        const runs = await storeDb(target).selectFrom("runs").select("id").execute();
        assert.deepEqual(runs.map((run) => run.id), ["theirs"]);
        assert.equal(await target.lineage(), lineage);
        assert.equal(await target.serial(), 0);
      } finally {
        await source.close();
        await target.close();
      }
    });
  });
});

describe("postgresUnwritableReason", () => {
  it("maps the SQLSTATEs of a database that cannot take writes now, and only those", () => {
    const pg = (code: string, message = "x") => Object.assign(new Error(message), { code });
    for (const code of ["08006", "08001", "57P01", "57P03", "53100", "53300", "25006", "55P03", "58030", "XX000"]) {
      assert.ok(postgresUnwritableReason(pg(code)), code);
    }
    assert.match(postgresUnwritableReason(pg("53100", "could not extend file")) ?? "", /disk is full \(53100: /);
    assert.match(postgresUnwritableReason(pg("25006")) ?? "", /read-only/);
    assert.ok(postgresUnwritableReason(pg("ECONNREFUSED", "connect ECONNREFUSED 127.0.0.1:1")));
    assert.ok(postgresUnwritableReason(new Error("Connection terminated unexpectedly")));
    for (const code of ["23505", "23503", "42P01", "42601", "22P02"]) {
      assert.equal(postgresUnwritableReason(pg(code)), undefined, code);
    }
    assert.equal(postgresUnwritableReason(new TypeError("cannot read properties of undefined")), undefined);
    assert.equal(postgresUnwritableReason("08006"), undefined);
  });
});
