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
