/** node:sqlite (Deno) adapted to the small SqliteDatabase interface that Kysely's SqliteDialect needs. */
import { type Dialect, type SqliteDatabase, SqliteDialect, type SqliteStatement } from "kysely";
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { immutableUri, type SqliteMode } from "./sqlite.ts";

type Parameter = null | number | bigint | string | Uint8Array;

function toParameters(parameters: ReadonlyArray<unknown>): Parameter[] {
  return parameters.map((value) => (typeof value === "boolean" ? Number(value) : value ?? null) as Parameter);
}

/** A row as setReturnArrays(true) makes it (node:sqlite's types describe the object rows only). */
function asArray(row: unknown): unknown[] {
  return row as unknown[];
}

/**
 * node:sqlite makes each row an object with a null prototype, which V8 keeps as a hash table: slow to make and slow to
 * read (100,000 inventory rows took a third longer to read, and reading their fields took ten times as long, as the
 * same rows read as arrays). The statement returns arrays, and each row becomes a plain object here, its properties set
 * in the columns' order, so that the rows of a statement share one shape. A later column of the same name wins, as in
 * node:sqlite's own objects.
 */
class NodeSqliteStatement implements SqliteStatement {
  readonly reader: boolean;
  private readonly names: string[];
  constructor(private readonly statement: StatementSync) {
    this.names = statement.columns().map((column) => column.name);
    this.reader = this.names.length > 0;
    if (this.reader) statement.setReturnArrays(true);
  }
  private row(values: unknown[]): Record<string, unknown> {
    const row: Record<string, unknown> = {};
    for (let i = 0; i < this.names.length; i++) row[this.names[i]] = values[i];
    return row;
  }
  all(parameters: ReadonlyArray<unknown>): unknown[] {
    return this.statement.all(...toParameters(parameters)).map((values) => this.row(asArray(values)));
  }
  run(parameters: ReadonlyArray<unknown>) {
    const result = this.statement.run(...toParameters(parameters));
    return { changes: result.changes, lastInsertRowid: result.lastInsertRowid };
  }
  *iterate(parameters: ReadonlyArray<unknown>): IterableIterator<unknown> {
    for (const values of this.statement.iterate(...toParameters(parameters))) yield this.row(asArray(values));
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
