import { Kysely, sql } from "kysely";
import { sqliteDialect } from "/work/main/src/runtime/sqlite.ts";
import { spawn } from "node:child_process";
import { mkdtempSync, openSync, writeSync, closeSync, chmodSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
const dir = mkdtempSync(join(tmpdir(), "exp-"));
const path = join(dir, "x.db");
const db = new Kysely<any>({ dialect: await sqliteDialect(path) });
await sql`PRAGMA busy_timeout = 200`.execute(db);
await sql`PRAGMA journal_mode = WAL`.execute(db);
await sql`CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL UNIQUE)`.execute(db);
await sql`INSERT INTO t (v) VALUES ('a')`.execute(db);
function show(label: string, e: any) {
  console.log(label, JSON.stringify({ name: e?.name, ctor: e?.constructor?.name, code: e?.code, errcode: e?.errcode, errno: e?.errno, errstr: e?.errstr, message: e?.message, keys: Object.keys(e ?? {}) }));
}
try { await sql`INSERT INTO t (v) VALUES ('a')`.execute(db); } catch (e) { show("unique", e); }
const child = spawn("sqlite3", [path], { stdio: ["pipe", "pipe", "pipe"] });
child.stdin.write("BEGIN EXCLUSIVE;\nSELECT 'locked';\n");
await new Promise((r) => child.stdout.once("data", r));
try { await sql`INSERT INTO t (v) VALUES ('b')`.execute(db); } catch (e) { show("busy", e); }
console.log("read", (await sql`SELECT count(*) AS n FROM t`.execute(db)).rows);
try { await db.transaction().execute(async (trx) => { await sql`INSERT INTO t (v) VALUES ('c')`.execute(trx); }); } catch (e) { show("busy-trx", e); }
child.stdin.end();
await new Promise((r) => child.once("exit", r));
await sql`PRAGMA max_page_count = 2`.execute(db).catch((e) => show("mpc", e));
try { await sql`INSERT INTO t (v) VALUES (${"x".repeat(20000)})`.execute(db); } catch (e) { show("full", e); }
await sql`PRAGMA max_page_count = 1000000`.execute(db);
// corrupt header
const fd = openSync(path, "r+"); writeSync(fd, Buffer.from("garbage garbage garbage garbage garbage garbage garbage garbage garbage garbage garbage garbage")); closeSync(fd);
try { await sql`INSERT INTO t (v) VALUES ('d')`.execute(db); console.log("corrupt insert ok"); } catch (e) { show("corrupt", e); }
try { await sql`SELECT * FROM t`.execute(db); console.log("corrupt read ok"); } catch (e) { show("corrupt-read", e); }
const db2 = new Kysely<any>({ dialect: await sqliteDialect(path) });
try { await sql`SELECT * FROM t`.execute(db2); console.log("corrupt read2 ok"); } catch (e) { show("corrupt-read2", e); }
