/** bun:sqlite through kysely-bun-sqlite. */
// @ts-ignore: bun:sqlite exists only under Bun; this module is imported only there.
import { Database } from "bun:sqlite";
import type { Dialect } from "kysely";
import { BunSqliteDialect } from "kysely-bun-sqlite";

export function bunSqliteDialect(path: string): Dialect {
  return new BunSqliteDialect({ database: new Database(path, { create: true, strict: true }) });
}
