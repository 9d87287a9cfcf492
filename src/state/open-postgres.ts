/**
 * Opening a PostgreSQL state: for writes (its schema created if missing, migrated, given its lineage) or only to read
 * it (no migration, no DDL, every transaction read-only on the server). A schema another, newer backupctl migrated
 * is never written; one behind this version is not read (a reader does not migrate), each said with the fix.
 */
import { randomUUID } from "node:crypto";
import { type Kysely, Migrator, sql } from "kysely";
import { redact } from "../config/secrets.ts";
import { StateUnwritableError } from "../errors.ts";
import { connectPostgres, describeUrl, type PostgresState, postgresUnwritableReason } from "./dialect-postgres.ts";
import { latestPostgresMigration, postgresMigrationProvider } from "./migrations-postgres.ts";
import type { Database } from "./schema.ts";

const migrationTable = "kysely_migration";
const migrationLockTable = "kysely_migration_lock";

/** How a PostgreSQL state is named in messages: its server and database, and its schema; never its credentials. */
export function describePostgresState(state: PostgresState): string {
  return `${describeUrl(state.url)} (schema ${state.schema})`;
}

/**
 * Opens `state` for writes: creates its schema when missing and migrates it. `dir` is the local state folder (for the
 * error's sake: fallback.jsonl and the locks stay there).
 */
export async function openPostgresForWrites(dir: string, state: PostgresState): Promise<Kysely<Database>> {
  const db = connectPostgres(state);
  try {
    await sql`CREATE SCHEMA IF NOT EXISTS ${sql.id(state.schema)}`.execute(db);
    const applied = await appliedMigration(db, state.schema);
    if (applied !== undefined && applied > latestPostgresMigration) {
      throw new StateUnwritableError(
        dir,
        `the state ${describePostgresState(state)} was migrated by a newer backupctl (${applied}; this version ` +
          `knows up to ${latestPostgresMigration}): upgrade backupctl on this host; it does not write to that state`,
      );
    }
    const migrator = new Migrator({
      db,
      provider: postgresMigrationProvider,
      migrationTableSchema: state.schema,
      migrationTableName: migrationTable,
      migrationLockTableName: migrationLockTable,
    });
    const { error } = await migrator.migrateToLatest();
    if (error) throw error;
    await db.insertInto("meta").values({ key: "lineage", value: randomUUID() })
      .onConflict((c) => c.column("key").doNothing()).execute();
    return db;
  } catch (error) {
    await db.destroy();
    throw postgresOpenError(dir, state, error);
  }
}

/**
 * Opens `state` only to read it (status, history, plan without --out): nothing is created or migrated. A schema
 * missing or behind this version is a StateUnwritableError saying to run a command that writes first.
 */
export async function openPostgresForReading(dir: string, state: PostgresState): Promise<Kysely<Database>> {
  const db = connectPostgres(state, { readOnly: true });
  try {
    const applied = await appliedMigration(db, state.schema);
    if (applied === undefined || applied < latestPostgresMigration) {
      const found = applied === undefined
        ? "holds no backupctl state yet"
        : `is at migration ${applied}, behind this version of backupctl (${latestPostgresMigration})`;
      throw new StateUnwritableError(
        dir,
        `the state ${describePostgresState(state)} ${found}: run a command that writes (backupctl apply) once with ` +
          "this version, which creates or upgrades it",
      );
    }
    return db;
  } catch (error) {
    await db.destroy();
    throw postgresOpenError(dir, state, error);
  }
}

/** The newest migration applied to the schema, undefined when none was (or the schema does not exist). */
async function appliedMigration(db: Kysely<Database>, schema: string): Promise<string | undefined> {
  const exists = await sql<{ found: boolean }>`
    SELECT to_regclass(${`${schema}.${migrationTable}`}) IS NOT NULL AS found`.execute(db);
  if (!exists.rows[0]?.found) return undefined;
  const row = await db.withTables<{ [migrationTable]: { name: string } }>()
    .selectFrom(migrationTable).select("name").orderBy("name", "desc").limit(1).executeTakeFirst();
  return row?.name;
}

/**
 * The error for a failed open, its message redacted and naming the state without credentials: a connection failure,
 * a server that cannot write or a missing privilege is a StateUnwritableError with the fix (exit 1); anything else
 * (a failed migration, a bug) an Error with the original as its cause.
 */
function postgresOpenError(dir: string, state: PostgresState, error: unknown): Error {
  if (error instanceof StateUnwritableError) return error;
  const message = redact(error instanceof Error ? error.message : String(error));
  const what = `the state ${describePostgresState(state)} cannot be opened`;
  const reason = postgresUnwritableReason(error);
  if (reason !== undefined || isConnectionError(error)) {
    return new StateUnwritableError(
      dir,
      `${what}: ${redact(reason ?? message)}: check the URL (--state-url, BACKUPCTL_STATE_URL or the config's ` +
        "state.url), that the server runs and accepts this user",
    );
  }
  if (errorCode(error) === "42501") {
    return new StateUnwritableError(
      dir,
      `${what}: ${message}: let the URL's user create the schema (GRANT CREATE ON DATABASE …), or create the schema ` +
        `${state.schema} owned by that user`,
    );
  }
  return new Error(`${what}: ${message}`, { cause: error });
}

function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

/** Errors of the connection itself: authentication (28*), a missing database (3D000), a URL that does not parse. */
function isConnectionError(error: unknown): boolean {
  const code = errorCode(error) ?? "";
  if (code.startsWith("28") || code === "3D000" || code === "ENOTFOUND") return true;
  return error instanceof TypeError || /invalid url|getaddrinfo/i.test(String((error as Error)?.message));
}
