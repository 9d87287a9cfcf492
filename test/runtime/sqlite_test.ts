/**
 * runtime/sqlite.ts: reading SQLite's result code from what each driver throws. The real driver of the runtime
 * running the test throws here, and both drivers' shapes are read whatever the runtime.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Kysely, sql } from "kysely";
import { sqliteDialect, sqliteResultCode } from "../../src/runtime/sqlite.ts";

describe("sqliteResultCode", () => {
  it("reads the primary code of what this runtime's driver throws", async () => {
    const dir = mkdtempSync(join(tmpdir(), "backupctl-sqlite-"));
    const db = new Kysely<unknown>({ dialect: await sqliteDialect(join(dir, "x.db")) });
    try {
      await sql`CREATE TABLE t (id INTEGER PRIMARY KEY)`.execute(db);
      await sql`INSERT INTO t (id) VALUES (1)`.execute(db);
      const duplicate = await sql`INSERT INTO t (id) VALUES (1)`.execute(db).then(() => undefined, (e) => e);
      assert.equal(sqliteResultCode(duplicate), 19, "SQLITE_CONSTRAINT (extended: SQLITE_CONSTRAINT_PRIMARYKEY)");
      const missing = await sql`SELECT * FROM nowhere`.execute(db).then(() => undefined, (e) => e);
      assert.equal(sqliteResultCode(missing), 1, "SQLITE_ERROR");
    } finally {
      await db.destroy();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("reads node:sqlite's errcode and bun:sqlite's errno or name, as the low byte of the extended code", () => {
    assert.equal(sqliteResultCode({ code: "ERR_SQLITE_ERROR", errcode: 517, message: "database is locked" }), 5);
    assert.equal(sqliteResultCode({ code: "SQLITE_IOERR_WRITE", errno: 778 }), 10);
    assert.equal(sqliteResultCode({ code: "SQLITE_IOERR_WRITE" }), 10);
    assert.equal(sqliteResultCode({ code: "SQLITE_FULL" }), 13);
    assert.equal(sqliteResultCode({ code: "SQLITE_SOMETHING_NEW" }), 1, "a name it does not know is an error");
  });

  it("gives nothing for errors that are not SQLite's", () => {
    assert.equal(sqliteResultCode(new Error("database is locked")), undefined);
    assert.equal(sqliteResultCode(Object.assign(new Error("ENOSPC"), { code: "ENOSPC", errno: -28 })), undefined);
    assert.equal(sqliteResultCode("SQLITE_BUSY"), undefined);
    assert.equal(sqliteResultCode(null), undefined);
  });
});
