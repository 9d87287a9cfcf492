/**
 * What the state store needs from a database beyond the SQL that Kysely builds: the few things each database does
 * its own way. dialect-sqlite.ts implements it for the local state file, dialect-postgres.ts for a state in PostgreSQL
 * (next to its own migration set); the rest of src/state is the same on both.
 */
import { type Kysely, type RawBuilder, sql } from "kysely";
import type { Database } from "./schema.ts";

export interface StateDialect {
  /**
   * Runs `body` in a transaction that holds the write lock from its start, so that it waits for another writer there
   * rather than failing midway after its reads. A failed rollback must not hide the error that caused it.
   */
  writeTransaction<T>(db: Kysely<Database>, body: (db: Kysely<Database>) => Promise<T>): Promise<T>;

  /**
   * Runs `body` in a transaction that only reads and sees one consistent state throughout (a state being copied while
   * another process writes to it).
   */
  readTransaction<T>(db: Kysely<Database>, body: (db: Kysely<Database>) => Promise<T>): Promise<T>;

  /**
   * After rows were inserted with their ids (a copied state): makes the next generated id follow the largest one.
   * SQLite's AUTOINCREMENT does that by itself.
   */
  restartIdentities(db: Kysely<Database>, tables: { table: string; column: string }[]): Promise<void>;

  /**
   * The database's clock in milliseconds since the epoch, as an SQL expression: leases and heartbeats are judged by
   * the one clock every runner shares, never by a host's own.
   */
  readonly clockMs: RawBuilder<number>;

  /**
   * Whether the planner's read model reads each snapshot of the inventory as one text value (observe.ts): where every
   * value read costs its own decoding (pg decodes each field of each row apart, and Deno's decoding is a call out of
   * JavaScript), joining the fields in SQL and splitting one value is cheaper than reading them as columns; where
   * values are cheap to read (SQLite, in the process), the joining costs more than it saves.
   */
  readonly inventoryAsText: boolean;

  /** Marks a point in the open transaction `db` that a part of it can be undone to, alone (a replayed line). */
  savepoint(db: Kysely<Database>, name: string): Promise<Savepoint>;

  /**
   * The database's message when `error` says the database cannot take writes now (locked past the wait, read-only,
   * full, failing, corrupt), else undefined: an error of the write itself (a constraint, a bug) is thrown as it is.
   */
  unwritableReason(error: unknown): string | undefined;
}

export interface Savepoint {
  /** Undoes what the transaction did since the savepoint. */
  rollback(): Promise<void>;
  /** Forgets the savepoint, keeping what was done since. */
  release(): Promise<void>;
}

/**
 * Runs `body` on one connection of `db` inside a transaction that `begin` opens (the dialect's own BEGIN and
 * settings), committed when `body` resolves and rolled back when it throws, keeping `body`'s error: a rollback on a
 * connection already gone (the server rolled back) is not a second error.
 */
export async function writeInTransaction<T>(
  db: Kysely<Database>,
  begin: (connection: Kysely<Database>) => Promise<unknown>,
  body: (db: Kysely<Database>) => Promise<T>,
): Promise<T> {
  return await db.connection().execute(async (connection) => {
    try {
      // Inside the try: a BEGIN whose settings fail (a lock wait timed out) leaves no transaction open either.
      await begin(connection);
      const result = await body(connection);
      await sql`COMMIT`.execute(connection);
      return result;
    } catch (error) {
      await sql`ROLLBACK`.execute(connection).catch(() => {});
      throw error;
    }
  });
}
