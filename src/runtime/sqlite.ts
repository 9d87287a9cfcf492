/**
 * The SQLite driver for Kysely, chosen by runtime: node:sqlite through Kysely's SqliteDialect on Deno,
 * bun:sqlite through kysely-bun-sqlite on Bun. Each runtime's module is imported only on that runtime.
 */
import type { Dialect } from "kysely";
import { pathToFileURL } from "node:url";
import { runtimeName } from "./detect.ts";

/**
 * How the database file is opened. `read-only`: no writes (SQLite still needs the -shm file of a WAL database, and
 * creates it when missing). `immutable`: read-only, and SQLite is told the file cannot change, so it needs no -shm,
 * no lock and no write anywhere, which a read-only or full folder allows; content still in the -wal file is not seen.
 */
export type SqliteMode = "read-write" | "read-only" | "immutable";

export async function sqliteDialect(path: string, mode: SqliteMode = "read-write"): Promise<Dialect> {
  if (runtimeName === "bun") {
    const { bunSqliteDialect } = await import("./sqlite-bun.ts");
    return bunSqliteDialect(path, mode);
  }
  const { nodeSqliteDialect } = await import("./sqlite-node.ts");
  return nodeSqliteDialect(path, mode);
}

/** The `file:` URI SQLite reads the immutable flag from. */
export function immutableUri(path: string): string {
  const url = pathToFileURL(path);
  url.search = "immutable=1";
  return url.href;
}

/** SQLite's primary result codes by name (the extended codes' low byte), to read a driver that gives only the name. */
const primaryCodes: Record<string, number> = {
  SQLITE_ERROR: 1,
  SQLITE_INTERNAL: 2,
  SQLITE_PERM: 3,
  SQLITE_ABORT: 4,
  SQLITE_BUSY: 5,
  SQLITE_LOCKED: 6,
  SQLITE_NOMEM: 7,
  SQLITE_READONLY: 8,
  SQLITE_INTERRUPT: 9,
  SQLITE_IOERR: 10,
  SQLITE_CORRUPT: 11,
  SQLITE_NOTFOUND: 12,
  SQLITE_FULL: 13,
  SQLITE_CANTOPEN: 14,
  SQLITE_PROTOCOL: 15,
  SQLITE_EMPTY: 16,
  SQLITE_SCHEMA: 17,
  SQLITE_TOOBIG: 18,
  SQLITE_CONSTRAINT: 19,
  SQLITE_MISMATCH: 20,
  SQLITE_MISUSE: 21,
  SQLITE_NOLFS: 22,
  SQLITE_AUTH: 23,
  SQLITE_FORMAT: 24,
  SQLITE_RANGE: 25,
  SQLITE_NOTADB: 26,
  SQLITE_NOTICE: 27,
  SQLITE_WARNING: 28,
};

/**
 * The primary result code (SQLITE_BUSY is 5, SQLITE_IOERR_WRITE is 10) of an error the SQLite driver threw; undefined
 * for an error that carries no SQLite code (a driver without codes, an error of the file system or of the code).
 * The drivers differ: node:sqlite (Deno) throws an Error with `code: "ERR_SQLITE_ERROR"` and the extended result code
 * in `errcode`; bun:sqlite a SQLiteError with `code: "SQLITE_BUSY"` (or an extended name such as
 * `SQLITE_IOERR_WRITE`) and the extended result code in `errno`, which may be missing. Both shapes are read whatever
 * the runtime, so that one runtime's tests cover the other's.
 */
export function sqliteResultCode(error: unknown): number | undefined {
  if (typeof error !== "object" || error === null) return undefined;
  const { code, errcode, errno } = error as { code?: unknown; errcode?: unknown; errno?: unknown };
  if (typeof errcode === "number") return errcode & 0xff;
  if (typeof code !== "string" || !code.startsWith("SQLITE_")) return undefined;
  if (typeof errno === "number") return errno & 0xff;
  const named = Object.entries(primaryCodes).find(([name]) => code === name || code.startsWith(`${name}_`));
  // A name this list lacks is an error all the same, not one of those that say the database cannot be written.
  return named?.[1] ?? primaryCodes.SQLITE_ERROR;
}
