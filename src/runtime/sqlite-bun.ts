/** bun:sqlite through kysely-bun-sqlite. */
// @ts-ignore: bun:sqlite exists only under Bun; this module is imported only there.
import { constants, Database } from "bun:sqlite";
import type { Dialect } from "kysely";
import { BunSqliteDialect } from "kysely-bun-sqlite";
import { immutableUri, type SqliteMode } from "./sqlite.ts";

export function bunSqliteDialect(path: string, mode: SqliteMode = "read-write"): Dialect {
  if (mode === "read-write") {
    return new BunSqliteDialect({ database: new Database(path, { create: true, strict: true }) });
  }
  // Flags, not options: bun:sqlite takes a `file:` URI (for immutable=1) only with SQLITE_OPEN_URI.
  const flags = constants.SQLITE_OPEN_READONLY | (mode === "immutable" ? constants.SQLITE_OPEN_URI : 0);
  return new BunSqliteDialect({ database: new Database(mode === "immutable" ? immutableUri(path) : path, flags) });
}
