/**
 * The state store on SQLite: everything SQLite-only lives here (PRAGMAs, BEGIN IMMEDIATE, what its errors mean, its
 * -wal and -shm files, the read-only and immutable opens). The drivers' differences between Deno and Bun are in
 * runtime/sqlite*.ts.
 */
import { existsSync, statSync } from "node:fs";
import { Kysely, sql } from "kysely";
import { sqliteDialect, type SqliteMode, sqliteResultCode } from "../runtime/sqlite.ts";
import { type Savepoint, type StateDialect, writeInTransaction } from "./dialect.ts";
import type { Database } from "./schema.ts";

/**
 * How much of the database file SQLite reads through a memory map rather than read() calls into its small page cache
 * (2 MiB by default): a plan over a long history looks up each of 100,000 snapshots in an index of the audit, and
 * mapped pages made that a third faster. Address space only; the kernel's page cache holds the pages either way.
 */
const mmapBytes = 1 << 30;

/** Opens the database file in `mode` (runtime/sqlite.ts), through the runtime's driver. */
export async function connectSqlite(path: string, mode: SqliteMode = "read-write"): Promise<Kysely<Database>> {
  const db = new Kysely<Database>({ dialect: await sqliteDialect(path, mode) });
  try {
    await sql`PRAGMA mmap_size = ${sql.raw(String(mmapBytes))}`.execute(db);
  } catch (error) {
    await db.destroy(); // the caller never gets it to close
    throw error;
  }
  return db;
}

/**
 * Sets up a connection that writes: WAL (readers never wait for the writer), a busy timeout, synchronous NORMAL
 * (safe in WAL mode), and foreign keys checked.
 */
export async function prepareForWrites(db: Kysely<Database>, busyTimeoutMs: number): Promise<void> {
  await sql`PRAGMA busy_timeout = ${sql.raw(String(busyTimeoutMs))}`.execute(db);
  await sql`PRAGMA journal_mode = WAL`.execute(db);
  await sql`PRAGMA synchronous = NORMAL`.execute(db);
  await sql`PRAGMA foreign_keys = ON`.execute(db);
}

/** The files SQLite keeps for a database: the file itself, and in WAL mode its -wal and -shm files. */
export function databaseFiles(path: string): string[] {
  return [path, `${path}-wal`, `${path}-shm`];
}

/** One way to open a database file without writing, and what a reader then does not see. */
export interface ReadOnlyOpen {
  connect(): Promise<Kysely<Database>>;
  /** What this open misses (results still in the -wal file), for the reader to be told. */
  misses?: string;
}

/**
 * The ways to open the database file at `path` without writing, in the order to try them. Immutable needs nothing
 * written (no -shm, no lock), which a read-only or full folder allows, but misses what is still in the -wal file: it
 * is tried first only when there is none.
 */
export function readOnlyOpens(path: string): ReadOnlyOpen[] {
  const wal = `${path}-wal`;
  const immutable = { connect: () => connectSqlite(path, "immutable") };
  if (!(existsSync(wal) && statSync(wal).size > 0)) return [immutable];
  return [
    { connect: () => connectSqlite(path, "read-only") },
    { ...immutable, misses: `the last results, still in ${wal}` },
  ];
}

/**
 * Whether SQLite's error says the file or its folder cannot be written (read-only, full, failing, not openable), as
 * opposed to a lock held by another process or a corrupt file.
 */
export function sqliteCannotWrite(error: unknown): boolean {
  return /readonly database|disk I\/O error|database or disk is full|unable to open database file/i
    .test(sqliteStateDialect.unwritableReason(error) ?? "");
}

/** SQLite primary result codes meaning the database cannot be written (busy, read-only, full, I/O, corrupt). */
const unwritableCodes = new Set([
  3, // SQLITE_PERM
  5, // SQLITE_BUSY
  6, // SQLITE_LOCKED
  8, // SQLITE_READONLY
  10, // SQLITE_IOERR
  11, // SQLITE_CORRUPT
  13, // SQLITE_FULL
  14, // SQLITE_CANTOPEN
  15, // SQLITE_PROTOCOL
  26, // SQLITE_NOTADB
]);

/** SQLite's messages for those codes, for an error that carries no code. */
const unwritableMessages = [
  "database is locked",
  "database table is locked",
  "attempt to write a readonly database",
  "disk I/O error",
  "database disk image is malformed",
  "database or disk is full",
  "unable to open database file",
  "file is not a database",
];

export const sqliteStateDialect: StateDialect = {
  /**
   * BEGIN IMMEDIATE takes the write lock at once (waiting the busy timeout there). Unlike Kysely's transaction(), a
   * failed ROLLBACK does not hide the error that caused it: SQLite has rolled back by itself after a full disk or an
   * I/O error, and that error is what tells the store to fall back.
   */
  async writeTransaction(db, body) {
    return await writeInTransaction(db, (connection) => sql`BEGIN IMMEDIATE`.execute(connection), body);
  },

  async readTransaction(db, body) {
    // A deferred transaction reads one snapshot of the WAL database from its first read to its end.
    return await db.connection().execute(async (connection) => {
      await sql`BEGIN`.execute(connection);
      try {
        return await body(connection);
      } finally {
        await sql`COMMIT`.execute(connection).catch(() => {});
      }
    });
  },

  // julianday's fraction is good to about a millisecond; the leases it times last minutes.
  clockMs: sql<number>`CAST(ROUND((julianday('now') - 2440587.5) * 86400000) AS INTEGER)`,
  inventoryAsText: false,

  restartIdentities() {
    // AUTOINCREMENT keeps sqlite_sequence at the largest id inserted, given or generated.
    return Promise.resolve();
  },

  async savepoint(db, name): Promise<Savepoint> {
    // SQLite keeps the transaction usable after a failed statement: what follows a rollback to here still commits.
    await sql`SAVEPOINT ${sql.id(name)}`.execute(db);
    return {
      rollback: async () => {
        await sql`ROLLBACK TO ${sql.id(name)}`.execute(db);
      },
      release: async () => {
        await sql`RELEASE ${sql.id(name)}`.execute(db);
      },
    };
  },

  unwritableReason(error) {
    if (typeof error !== "object" || error === null) return undefined;
    const message = (error as { message?: unknown }).message;
    const text = typeof message === "string" ? message : String(error);
    const code = sqliteResultCode(error);
    if (code !== undefined) return unwritableCodes.has(code) ? text : undefined;
    return unwritableMessages.some((known) => text.includes(known)) ? text : undefined;
  },
};
