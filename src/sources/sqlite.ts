/**
 * SQLite: `sqlite3 DB .dump` streams SQL text read inside one transaction, so the copy is consistent while the
 * application keeps writing, needs no temp file, and deduplicates well from day to day. Restore: `sqlite3 new.db < dump`.
 */
import { closeSync, existsSync, openSync, readSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import type { SqliteSource } from "../config/types.ts";
import { SourceError } from "../errors.ts";
import type { StreamInput } from "./types.ts";

export function sqliteInput(source: SqliteSource & { name: string }, configDir: string): StreamInput {
  const path = isAbsolute(source.path) ? source.path : resolve(configDir, source.path);
  if (!existsSync(path)) {
    throw new SourceError(
      `source ${source.name}: SQLite database ${path} does not exist (check the path in the config)`,
    );
  }
  if (!hasSqliteHeader(path)) {
    throw new SourceError(`source ${source.name}: ${path} is not an SQLite database`);
  }
  return {
    kind: "stream",
    // -bail stops at the first error so a damaged database fails the producer instead of yielding a partial dump.
    argv: ["sqlite3", "-bail", path, ".dump"],
    filename: `${source.name}.sql`,
    allowEmpty: source.allowEmpty ?? false,
    package: "sqlite3",
    check: (head, tail) => {
      const start = new TextDecoder().decode(head.subarray(0, 64));
      const end = new TextDecoder().decode(tail.subarray(Math.max(0, tail.length - 64))).trimEnd();
      if (!start.includes("BEGIN TRANSACTION;")) return "it does not start like an sqlite3 .dump (BEGIN TRANSACTION;)";
      return end.endsWith("COMMIT;") ? undefined : "it is cut short: an sqlite3 .dump ends with COMMIT;";
    },
  };
}

function hasSqliteHeader(path: string): boolean {
  const header = new Uint8Array(16);
  const fd = openSync(path, "r");
  try {
    const read = readSync(fd, header, 0, 16, 0);
    // An empty file is a valid, empty database to sqlite3.
    return read === 0 || new TextDecoder().decode(header) === "SQLite format 3\u0000";
  } finally {
    closeSync(fd);
  }
}
