/**
 * The state store's databases, for tests that run the same cases on each: SQLite (a file in the state folder) and
 * PostgreSQL (a real server started once per test file, the first time a case needs it; a schema of its own per state
 * folder, so a case that reopens its folder finds its state again, and no two cases share one). A file using the
 * PostgreSQL backend calls `stopStateBackends()` in an `after` hook.
 */
import { createHash, randomBytes } from "node:crypto";
import type { OpenOptions, PostgresState } from "../../src/state/store.ts";
import { stateFileName, StateStore } from "../../src/state/store.ts";
import { join } from "node:path";
import pg from "pg";
import { type PostgresServer, startPostgres } from "./postgres.ts";
import { holdWriteLock } from "./sqlite-lock.ts";

export interface StateBackend {
  name: "sqlite" | "postgres";
  /** Opens (creating) the state of the folder `dir`: the same state each time for the same folder. */
  open(dir: string, options?: OpenOptions): Promise<StateStore>;
  /** The PostgreSQL state of `dir` (undefined on SQLite). */
  postgresState(dir: string): Promise<PostgresState | undefined>;
  /**
   * Holds the write lock of the state of `dir` from another connection, as a busy neighbour would, until released:
   * the store's writes wait its busy timeout, then go to the fallback file.
   */
  holdWriteLock(dir: string): Promise<{ release(): Promise<void> }>;
}

/** The shared test server, with a login role that must give its password and a database it owns. */
export interface StateServer {
  server: PostgresServer;
  user: string;
  password: string;
  database: string;
  /** The URL of the test database, with the role's password in it. */
  url: string;
}

let shared: Promise<StateServer> | undefined;

/** Starts the file's PostgreSQL server on first use. */
export function stateServer(): Promise<StateServer> {
  shared ??= (async () => {
    const server = await startPostgres();
    const user = "backupctl_state";
    const password = `pw-${randomBytes(12).toString("hex")}`;
    const database = "state";
    await server.createUser(user, password);
    await server.createDatabase(database, user);
    const url = `postgresql://${user}:${password}@${server.host}:${server.port}/${database}`;
    return { server, user, password, database, url };
  })();
  return shared;
}

/** Stops the server if one was started. */
export async function stopStateBackends(): Promise<void> {
  const started = shared;
  shared = undefined;
  if (started) await (await started).server.stop();
}

/** A schema name of the state folder `dir`: stable for the folder, distinct between folders. */
export function schemaFor(dir: string): string {
  return `s_${createHash("sha256").update(dir).digest("hex").slice(0, 24)}`;
}

export const sqliteBackend: StateBackend = {
  name: "sqlite",
  open: (dir, options) => StateStore.open(dir, options),
  postgresState: () => Promise.resolve(undefined),
  holdWriteLock: (dir) => holdWriteLock(join(dir, stateFileName)),
};

export const postgresBackend: StateBackend = {
  name: "postgres",
  async open(dir, options) {
    const postgres = await postgresBackend.postgresState(dir);
    return await StateStore.open(dir, { ...options, postgres });
  },
  async postgresState(dir) {
    return { url: (await stateServer()).url, schema: schemaFor(dir) };
  },
  async holdWriteLock(dir) {
    // The same advisory lock dialect-postgres.ts takes, held by a transaction left open.
    const client = new pg.Client({ connectionString: (await stateServer()).url });
    await client.connect();
    await client.query("BEGIN");
    await client.query("SELECT pg_advisory_xact_lock(hashtext('backupctl state ' || $1::text))", [schemaFor(dir)]);
    return {
      async release() {
        await client.query("ROLLBACK");
        await client.end();
      },
    };
  },
};

/** Both databases: `for (const backend of stateBackends) describe(backend.name, …)`. */
export const stateBackends: StateBackend[] = [sqliteBackend, postgresBackend];
