/**
 * restore/targets.ts without a repository: `--target-db` URLs and their refusals, which program reads which dump into
 * which database (and the pairings refused), the "same database as the source" guard, and a scratch SQLite target
 * made empty and queried with the real sqlite3. Restores from real snapshots are test/e2e/restore_test.ts.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { postgres, sqlite } from "../../src/config/helpers.ts";
import {
  checkQuery,
  dumpFormat,
  existingTables,
  parseTargetUrl,
  recreate,
  restoreSink,
  sameDatabase,
} from "../../src/restore/targets.ts";

const root = mkdtempSync(join(tmpdir(), "backupctl-targets-test-"));
const context = { configDir: join(root, "config"), privateDir: join(root, "state", "tmp") };
mkdirSync(context.configDir, { recursive: true });
after(() => rmSync(root, { recursive: true, force: true }));

describe("parseTargetUrl", () => {
  it("reads postgresql:, postgres:, mysql:, mariadb: and sqlite: URLs", () => {
    assert.deepEqual(parseTargetUrl("postgresql://restorer@db.internal:5433/app_copy?passwordEnv=PGPW"), {
      type: "postgres",
      host: "db.internal",
      port: 5433,
      user: "restorer",
      password: { secret: "env", name: "PGPW" },
      database: "app_copy",
    });
    assert.deepEqual(parseTargetUrl("postgres:///local_db"), {
      type: "postgres",
      host: undefined,
      port: undefined,
      user: undefined,
      password: undefined,
      database: "local_db",
    });
    assert.equal(parseTargetUrl("mysql://u@h/shop").type, "mysql");
    assert.deepEqual(parseTargetUrl("mariadb://u%40x@h/my%20shop"), {
      type: "mysql",
      host: "h",
      port: undefined,
      user: "u@x",
      password: undefined,
      database: "my shop",
    });
    assert.deepEqual(parseTargetUrl("sqlite:/srv/restore/app.db"), { type: "sqlite", path: "/srv/restore/app.db" });
    assert.deepEqual(parseTargetUrl("sqlite://relative.db"), { type: "sqlite", path: "relative.db" });
  });

  it("refuses a password in the URL, never repeating it, and says how to give one", () => {
    assert.throws(() => parseTargetUrl("postgresql://u:hunter2-url@h/db"), (error: Error) => {
      assert.equal(error.name, "UsageError");
      assert.match(error.message, /do not put a password in the URL.*\?passwordEnv=NAME/);
      assert.ok(!error.message.includes("hunter2-url"), error.message);
      return true;
    });
  });

  it("refuses what it cannot read: no database, an unknown scheme, no path, not a URL", () => {
    const refusals: [string, RegExp][] = [
      ["postgresql://u@h/", /names no database/],
      ["mongodb://u@h/db", /unknown scheme mongodb: \(postgresql:, mysql: or sqlite:\)/],
      ["sqlite:", /sqlite:PATH needs a path/],
      ["just-a-name", /expected postgresql:\/\/USER@HOST:PORT\/DB, mysql:\/\/USER@HOST:PORT\/DB or sqlite:PATH/],
    ];
    for (const [url, message] of refusals) assert.throws(() => parseTargetUrl(url), { name: "UsageError", message });
  });
});

describe("dumpFormat and restoreSink", () => {
  it("tells the dump's format from the source type and file name", () => {
    assert.equal(dumpFormat("postgres", "app.pgdump"), "pg_custom");
    assert.equal(dumpFormat("postgres", "app-globals.sql"), "pg_sql");
    assert.equal(dumpFormat("mysql", "shop.sql"), "mysql_sql");
    assert.equal(dumpFormat("sqlite", "app.sql"), "sqlite_sql");
    assert.equal(dumpFormat("files", "x"), undefined);
    assert.equal(dumpFormat("command", "dump.rdb"), undefined);
  });

  it("pg_restore for an archive, psql for SQL, without the source's owners; the password in a pgpass file", () => {
    process.env.UNIT_RESTORE_PW = "hunter2-restore";
    try {
      const target = postgres({
        host: "h",
        database: "app_copy",
        user: "r",
        password: { secret: "env", name: "UNIT_RESTORE_PW" },
      });
      const archive = restoreSink(target, "pg_custom", context);
      assert.deepEqual(archive.argv, [
        "pg_restore",
        "--no-password",
        "--exit-on-error",
        "--no-owner",
        "--no-privileges",
        "--host=h",
        "--username=r",
        "--dbname=app_copy",
      ]);
      for (const arg of archive.argv) assert.ok(!arg.includes("hunter2-restore"));
      const pgpass = archive.env?.PGPASSFILE ?? "";
      assert.ok(existsSync(pgpass));
      archive.cleanup();
      assert.equal(existsSync(pgpass), false);
      const sql = restoreSink(target, "pg_sql", context);
      assert.deepEqual(sql.argv.slice(0, 4), ["psql", "--no-password", "--quiet", "--set=ON_ERROR_STOP=1"]);
      sql.cleanup();
    } finally {
      delete process.env.UNIT_RESTORE_PW;
    }
  });

  it("the mariadb client with -- before the database; sqlite3 -bail on the path from the config's folder", () => {
    const shop = restoreSink({ type: "mysql", database: "-shop" }, "mysql_sql", context);
    assert.deepEqual(shop.argv.slice(-2), ["--", "-shop"]);
    assert.match(shop.argv[1], /^--defaults-extra-file=/);
    shop.cleanup();
    assert.deepEqual(restoreSink(sqlite({ path: "copy.db" }), "sqlite_sql", context).argv, [
      "sqlite3",
      "-bail",
      join(context.configDir, "copy.db"),
    ]);
  });

  it("refuses a dump into a database of another kind", () => {
    assert.throws(() => restoreSink(sqlite({ path: "x.db" }), "pg_custom", context), {
      name: "UsageError",
      message: "a postgres dump cannot be restored into a sqlite database",
    });
    assert.throws(() => restoreSink(postgres({ database: "x" }), "mysql_sql", context), /a mysql dump cannot be/);
  });
});

describe("sameDatabase", () => {
  it("is the source's database when kind, host (local names alike), port and name match", () => {
    const source = postgres({ host: "localhost", port: 5432, database: "app" });
    assert.equal(sameDatabase(postgres({ host: "127.0.0.1", port: 5432, database: "app" }), source, "/c"), true);
    assert.equal(sameDatabase(postgres({ port: 5432, database: "app" }), source, "/c"), true);
    assert.equal(sameDatabase(postgres({ host: "localhost", port: 5432, database: "app_copy" }), source, "/c"), false);
    assert.equal(sameDatabase(postgres({ host: "other", port: 5432, database: "app" }), source, "/c"), false);
    assert.equal(sameDatabase(postgres({ host: "localhost", port: 5433, database: "app" }), source, "/c"), false);
    assert.equal(sameDatabase({ type: "mysql", host: "localhost", port: 5432, database: "app" }, source, "/c"), false);
  });

  it("for SQLite, compares the resolved paths", () => {
    assert.equal(sameDatabase(sqlite({ path: "/c/app.db" }), sqlite({ path: "app.db" }), "/c"), true);
    assert.equal(sameDatabase(sqlite({ path: "copy.db" }), sqlite({ path: "app.db" }), "/c"), false);
  });
});

describe("a scratch SQLite target", () => {
  const target = sqlite({ path: "scratch.db" });
  const path = join(context.configDir, "scratch.db");

  it("recreate removes the file and its journals; existingTables lists what a restore would mix with", async () => {
    assert.deepEqual(await existingTables(target, context), []); // no file yet
    execFileSync("sqlite3", [path, "CREATE TABLE orders (id INTEGER); CREATE VIEW recent AS SELECT * FROM orders;"]);
    writeFileSync(`${path}-journal`, "");
    assert.deepEqual(await existingTables(target, context), ["orders", "recent"]);
    await recreate(target, context);
    assert.equal(existsSync(path), false);
    assert.equal(existsSync(`${path}-journal`), false);
    await assert.rejects(recreate(sqlite({ path: "no/such/folder/x.db" }), context), {
      name: "SourceError",
      message: /the folder of the scratch SQLite file .*no\/such\/folder\/x\.db does not exist/,
    });
  });

  it("checkQuery: one whole number is the count, else the number of rows; a failing query is an error", async () => {
    execFileSync("sqlite3", [path, "CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('a'), ('b'), ('c');"]);
    assert.equal(await checkQuery(target, "SELECT count(*) FROM t", context), 3);
    assert.equal(await checkQuery(target, "SELECT v FROM t WHERE v <> 'a'", context), 2);
    assert.equal(await checkQuery(target, "SELECT 42", context), 42);
    await assert.rejects(checkQuery(target, "SELECT * FROM missing", context), {
      name: "SourceError",
      message: /the check query failed \(exit 1\): .*no such table: missing/,
    });
  });
});
