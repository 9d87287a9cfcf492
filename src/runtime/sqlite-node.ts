/** node:sqlite (Deno) adapted to the small SqliteDatabase interface that Kysely's SqliteDialect needs. */
import { type Dialect, type SqliteDatabase, SqliteDialect, type SqliteStatement } from "kysely";
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { immutableUri, type SqliteMode } from "./sqlite.ts";

type Parameter = null | number | bigint | string | Uint8Array;

function toParameters(parameters: ReadonlyArray<unknown>): Parameter[] {
  return parameters.map((value) => (typeof value === "boolean" ? Number(value) : value ?? null) as Parameter);
}

class NodeSqliteStatement implements SqliteStatement {
  readonly reader: boolean;
  constructor(private readonly statement: StatementSync) {
    this.reader = statement.columns().length > 0;
  }
  all(parameters: ReadonlyArray<unknown>): unknown[] {
    return this.statement.all(...toParameters(parameters));
  }
  run(parameters: ReadonlyArray<unknown>) {
    const result = this.statement.run(...toParameters(parameters));
    return { changes: result.changes, lastInsertRowid: result.lastInsertRowid };
  }
  iterate(parameters: ReadonlyArray<unknown>): IterableIterator<unknown> {
    return this.statement.iterate(...toParameters(parameters)) as IterableIterator<unknown>;
  }
}

export function nodeSqliteDialect(path: string, mode: SqliteMode = "read-write"): Dialect {
  const database: SqliteDatabase = (() => {
    const db = mode === "read-write"
      ? new DatabaseSync(path)
      : new DatabaseSync(mode === "immutable" ? immutableUri(path) : path, { readOnly: true });
    return {
      close: () => db.close(),
      prepare: (sql: string) => new NodeSqliteStatement(db.prepare(sql)),
    };
  })();
  return new SqliteDialect({ database });
}
