/**
 * Which database a state store is on: the SQLite file of the state folder, or a PostgreSQL state. The PostgreSQL
 * modules (and the `pg` driver under them) are loaded only by a process whose state is there.
 */
import type { Kysely } from "kysely";
import type { StateDialect } from "./dialect.ts";
import type { PostgresState } from "./dialect-postgres.ts";
import { sqliteStateDialect } from "./dialect-sqlite.ts";
import type { Database } from "./schema.ts";

/** A store's database: its dialect, and how it is named in messages. */
export interface Backend {
  dialect: StateDialect;
  /** The SQLite file, or the PostgreSQL state described without credentials. */
  label: string;
  postgres: boolean;
}

export function sqliteBackend(path: string): Backend {
  return { dialect: sqliteStateDialect, label: path, postgres: false };
}

/**
 * Opens a PostgreSQL state: for writes (created and migrated when needed; writes wait `lockTimeoutMs` for the
 * writers' lock) or, `readOnly`, only to read it. `dir` is the local state folder, named by its errors.
 */
export async function openPostgresBackend(
  dir: string,
  state: PostgresState,
  options: { readOnly?: boolean; lockTimeoutMs?: number },
): Promise<{ db: Kysely<Database>; backend: Backend }> {
  const [open, dialect] = await Promise.all([import("./open-postgres.ts"), import("./dialect-postgres.ts")]);
  const db = options.readOnly
    ? await open.openPostgresForReading(dir, state)
    : await open.openPostgresForWrites(dir, state);
  return {
    db,
    backend: {
      dialect: dialect.postgresStateDialect(options.lockTimeoutMs ?? 0),
      label: open.describePostgresState(state),
      postgres: true,
    },
  };
}
