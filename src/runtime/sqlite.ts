/**
 * The SQLite driver for Kysely, chosen by runtime: node:sqlite through Kysely's SqliteDialect on Deno,
 * bun:sqlite through kysely-bun-sqlite on Bun. Each runtime's module is imported only on that runtime.
 */
import type { Dialect } from "kysely";
import { runtimeName } from "./detect.ts";

export async function sqliteDialect(path: string): Promise<Dialect> {
  if (runtimeName === "bun") {
    const { bunSqliteDialect } = await import("./sqlite-bun.ts");
    return bunSqliteDialect(path);
  }
  const { nodeSqliteDialect } = await import("./sqlite-node.ts");
  return nodeSqliteDialect(path);
}
