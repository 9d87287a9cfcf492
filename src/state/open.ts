/**
 * Opening the state database in its folder: for writes (created 0600 in a 0700 folder, migrated, given its lineage)
 * or, when the folder cannot be written, only to read it. Why a folder cannot be written is found out here and said
 * with the fix (writable.ts).
 */
import { randomUUID } from "node:crypto";
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { DEFAULT_MIGRATION_TABLE, type Kysely, Migrator } from "kysely";
import { StateUnwritableError, UsageError } from "../errors.ts";
import { connectSqlite, databaseFiles, prepareForWrites, readOnlyOpens, sqliteCannotWrite } from "./dialect-sqlite.ts";
import { fallbackFileName } from "./fallback.ts";
import { latestMigration, migrationProvider } from "./migrations.ts";
import type { Database } from "./schema.ts";
import { explainFileError, stateFolderProblem } from "./writable.ts";

export const stateFileName = "state.db";

/** How long a write waits for another process's lock when neither the option nor the environment says. */
export const defaultBusyTimeoutMs = 5000;

/** Creates the state folder (0700) if needed. */
export function ensureStateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
}

/**
 * Opens the database of `dir` for writes, creating and migrating it when needed. Reads first: an up-to-date
 * database opens without writing, also while another process holds its lock.
 */
export async function openForWrites(dir: string, busyTimeoutMs: number | undefined): Promise<Kysely<Database>> {
  const timeout = busyTimeoutFor(busyTimeoutMs);
  ensureStateDir(dir);
  const path = join(dir, stateFileName);
  if (!existsSync(path)) closeSync(openSync(path, "a", 0o600));
  restrictToOwner(path);
  const db = await connectSqlite(path);
  try {
    await prepareForWrites(db, timeout);
    if (await appliedMigration(db) !== latestMigration) {
      const { error } = await new Migrator({ db, provider: migrationProvider }).migrateToLatest();
      if (error) {
        throw new Error(`cannot migrate the state database ${path}: ${(error as Error).message ?? String(error)}`);
      }
    }
    const lineage = await db.selectFrom("meta").select("value").where("key", "=", "lineage").executeTakeFirst();
    if (!lineage) {
      await db.insertInto("meta").values({ key: "lineage", value: randomUUID() })
        .onConflict((c) => c.column("key").doNothing()).execute();
    }
    return db;
  } catch (error) {
    await db.destroy();
    throw error;
  }
}

/**
 * The newest migration the database records, or undefined (a new database has no migration table). An up-to-date
 * database is not handed to the Migrator, whose checks read the schema of every table and sort with the locale's
 * collation (about 20 ms of every command's start, measured).
 */
async function appliedMigration(db: Kysely<Database>): Promise<string | undefined> {
  const tables = await db.withTables<{ sqlite_master: { name: string; type: string } }>().selectFrom("sqlite_master")
    .select("name").where("type", "=", "table").where("name", "=", DEFAULT_MIGRATION_TABLE).executeTakeFirst();
  if (!tables) return undefined;
  const applied = await db.withTables<{ [DEFAULT_MIGRATION_TABLE]: { name: string } }>()
    .selectFrom(DEFAULT_MIGRATION_TABLE).select("name").orderBy("name", "desc").limit(1).executeTakeFirst();
  return applied?.name;
}

/** Once open (and the fallback replayed): the files the database made beside its own are the owner's alone too. */
export function restrictDatabaseFiles(path: string): void {
  for (const file of databaseFiles(path).slice(1)) {
    if (existsSync(file)) restrictToOwner(file);
  }
}

/**
 * Opens the database of a folder that cannot be written, only to read it: no migration, no replay. `problem` says
 * why the folder cannot be written; the result's `unwritable` adds what the reader does not see (writes still in the
 * -wal file, results waiting in the fallback file).
 */
export async function openForReading(
  dir: string,
  problem: string,
): Promise<{ db: Kysely<Database>; unwritable: string }> {
  const path = join(dir, stateFileName);
  if (!existsSync(path)) throw new StateUnwritableError(dir, `${problem} (and it holds no state database yet)`);
  let failure: unknown;
  for (const attempt of readOnlyOpens(path)) {
    const db = await attempt.connect();
    try {
      const applied = await db.withTables<{ [DEFAULT_MIGRATION_TABLE]: { name: string } }>()
        .selectFrom(DEFAULT_MIGRATION_TABLE).select("name").orderBy("name", "desc").limit(1).executeTakeFirst();
      if (applied?.name !== latestMigration) {
        await db.destroy();
        throw new StateUnwritableError(
          dir,
          `${problem} (and the state database must first be upgraded to this version of backupctl, which writes)`,
        );
      }
      const waiting = waitingInFallback(dir);
      const unseen = [
        attempt.misses ?? "",
        waiting > 0 ? `${waiting} results waiting in ${fallbackFileName}` : "",
      ].filter(Boolean);
      return { db, unwritable: unseen.length > 0 ? `${problem} (not shown: ${unseen.join(", ")})` : problem };
    } catch (error) {
      if (error instanceof StateUnwritableError) throw error;
      await db.destroy();
      failure = error;
    }
  }
  throw new StateUnwritableError(
    dir,
    `${problem} (and ${path} cannot be read either: ${(failure as Error)?.message ?? failure})`,
  );
}

/**
 * The StateUnwritableError for an error that opening the state threw because the folder cannot be written, found by
 * trying to write there (see writable.ts); undefined for any other error (a lock held past the busy timeout, a corrupt
 * file, a bug), which is thrown as it is.
 */
export function unwritableStateError(dir: string, error: unknown): StateUnwritableError | undefined {
  if (error instanceof StateUnwritableError) return error;
  const path = join(dir, stateFileName);
  const cannotWrite = sqliteCannotWrite(error);
  const problem = explainFileError(error, dir) ??
    (cannotWrite || (error as { code?: unknown })?.code !== undefined
      ? stateFolderProblem(dir, databaseFiles(path).filter((file) => existsSync(file)))
      : undefined);
  if (problem) return new StateUnwritableError(dir, problem);
  if (cannotWrite) {
    return new StateUnwritableError(
      dir,
      `the state database ${path} cannot be written (${(error as Error).message}): free space in ${dir} and check ` +
        "the permissions of the folder and its files",
    );
  }
  return undefined;
}

/**
 * How long a write waits for another writer: the option, else BACKUPCTL_DB_BUSY_TIMEOUT_MS, else 5000 (SQLite's busy
 * timeout; PostgreSQL's lock_timeout on the writers' lock).
 */
export function busyTimeoutFor(busyTimeoutMs: number | undefined): number {
  const timeout = busyTimeoutMs ?? busyTimeoutFromEnvironment();
  if (!Number.isSafeInteger(timeout) || timeout < 0) {
    throw new RangeError(`busyTimeoutMs must be a whole number of milliseconds, got ${timeout}`);
  }
  return timeout;
}

function busyTimeoutFromEnvironment(): number {
  const text = process.env.BACKUPCTL_DB_BUSY_TIMEOUT_MS?.trim();
  if (!text) return defaultBusyTimeoutMs;
  if (!/^\d+$/.test(text)) {
    throw new UsageError(
      `BACKUPCTL_DB_BUSY_TIMEOUT_MS: expected a whole number of milliseconds such as 5000, got "${text}"`,
    );
  }
  return Number(text);
}

/** How many lines fallback.jsonl holds (results a replay has yet to write into the database). */
function waitingInFallback(dir: string): number {
  try {
    return readFileSync(join(dir, fallbackFileName), "utf8").split("\n").filter((line) => line.trim()).length;
  } catch {
    return 0;
  }
}

/** chmod 0600 when the mode differs: a database file made immutable, which chmod refuses, still opens to be read. */
function restrictToOwner(path: string): void {
  if ((statSync(path).mode & 0o777) !== 0o600) chmodSync(path, 0o600);
}
