/**
 * The state store on PostgreSQL (a state shared by several hosts): everything PostgreSQL-only lives here — the pool
 * of the npm `pg` driver behind Kysely's PostgresDialect, the schema the tables live in (search_path), how writers are
 * serialized, and what its SQLSTATEs mean. The URL is a secret: it never appears in a message (see `describeUrl`).
 */
import { Kysely, PostgresDialect, sql } from "kysely";
import pg from "pg";
import { stateSchemaPattern } from "../config/schema-values.ts";
import { rememberSecret } from "../config/secrets.ts";
import { type Savepoint, type StateDialect, writeInTransaction } from "./dialect.ts";
import type { Database } from "./schema.ts";

/** Where a PostgreSQL state is: the connection URL (a secret) and the schema its tables live in. */
export interface PostgresState {
  url: string;
  schema: string;
}

/** The pg type id of bigint (int8): counts and byte sizes, read as numbers (they stay far below 2^53). */
const int8Oid = 20;

/**
 * Opens a pool on `state`. Every connection's search_path is the state's schema only, so the tables, the migrations'
 * own tables and the raw SQL of src/state all live there without naming it. `readOnly`: every transaction is
 * read-only on the server, so a reader cannot write even by mistake.
 */
export function connectPostgres(state: PostgresState, options: { readOnly?: boolean } = {}): Kysely<Database> {
  // Checked by the config already; here because search_path takes the name unquoted.
  if (!stateSchemaPattern.test(state.schema)) {
    throw new RangeError(`state schema must match ${stateSchemaPattern}, got "${state.schema}"`);
  }
  rememberUrlSecrets(state.url);
  // No JIT: the state's queries are short, and a cost estimate over the server's threshold (a history of a million
  // rows) made PostgreSQL spend more time compiling a plan than running it (400 ms of 1 s for observe's queries).
  const settings = [`-c search_path=${state.schema}`, "-c jit=off"];
  if (options.readOnly) settings.push("-c default_transaction_read_only=on");
  const pool = new pg.Pool({
    connectionString: state.url,
    options: settings.join(" "),
    application_name: "backupctl",
    max: 4,
    connectionTimeoutMillis: 15_000,
    types: {
      getTypeParser: ((oid: number, format?: "text" | "binary") =>
        oid === int8Oid
          ? (value: string) =>
            Number(value)
          : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
    },
  });
  // A connection the server closed (restart, admin kill, a lost network) must not crash the process. The pool's own
  // handler covers idle connections; a connection checked out (a transaction, a lease holder's session) reports the
  // closing on the client itself, between its queries, where nothing listens: without a listener of its own that is
  // an uncaught error. The query in flight, or the next one, fails with the cause, and callers handle that.
  pool.on("error", () => {});
  pool.on("connect", (client) => client.on("error", () => {}));
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
}

/**
 * The URL as it may be shown: scheme, host, port and database, without user, password or parameters. A URL that
 * does not parse is shown as a placeholder (its text may hold the password).
 */
export function describeUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
  } catch {
    return "postgresql://(unparseable URL)";
  }
}

/** The URL and its password are secrets: remembered for redaction before any connection can fail with them. */
function rememberUrlSecrets(url: string): void {
  rememberSecret(url);
  try {
    const parsed = new URL(url);
    if (parsed.password) {
      rememberSecret(parsed.password);
      rememberSecret(decodeURIComponent(parsed.password));
    }
  } catch {
    // Unparseable: only the whole text is known.
  }
}

/**
 * The key of the advisory lock every writer of one state takes: one per schema, so two states in one database do not
 * wait for each other. hashtext is stable across servers of one major version, which is all that shares a lock.
 */
const writerLock = sql`pg_advisory_xact_lock(hashtext('backupctl state ' || current_schema()))`;

/**
 * The dialect for a pool from connectPostgres. `lockTimeoutMs` is the busy timeout: how long a write waits for the
 * writer lock (55P03 lock_not_available after it, which makes the store fall back, as SQLITE_BUSY does).
 *
 * A writer that stops between two statements of its transaction (SIGSTOP, a frozen VM, a process whose event loop
 * hangs) would hold the writer lock for as long as its connection lives, and every other runner of the fleet would
 * fall back to its file instead of taking the paused one's work over. PostgreSQL ends such a session once it has been
 * idle inside the transaction for three busy timeouts (at least a second): its transaction rolls back, the lock is
 * free, and the paused process finds its connection gone when it resumes (its write goes to its fallback file, and
 * the fence judges it at replay). A write's statements follow each other within milliseconds.
 */
export function postgresStateDialect(lockTimeoutMs: number): StateDialect {
  const idleMs = writerIdleLimitMs(lockTimeoutMs);
  return {
    /**
     * READ COMMITTED plus a transaction-level advisory lock taken first: writers run one at a time, each seeing the
     * previous one's commit, like BEGIN IMMEDIATE on SQLite. SERIALIZABLE with retries would need every body to be
     * safe to run twice (they enqueue notifications, assign stage ids): one lock is simpler and writes are short.
     */
    async writeTransaction(db, body) {
      return await writeInTransaction(db, async (connection) => {
        await sql`BEGIN`.execute(connection);
        await sql`SET LOCAL lock_timeout = ${sql.lit(`${lockTimeoutMs}ms`)}`.execute(connection);
        await sql`SET LOCAL idle_in_transaction_session_timeout = ${sql.lit(`${idleMs}ms`)}`.execute(connection);
        await sql`SELECT ${writerLock}`.execute(connection);
      }, body);
    },

    async readTransaction(db, body) {
      return await db.connection().execute(async (connection) => {
        await sql`BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY`.execute(connection);
        try {
          return await body(connection);
        } finally {
          await sql`COMMIT`.execute(connection).catch(() => {});
        }
      });
    },

    // clock_timestamp, not now(): now() is the transaction's start, and a lease is judged at the statement.
    clockMs: sql<number>`(extract(epoch from clock_timestamp()) * 1000)::bigint`,
    inventoryAsText: true,

    async restartIdentities(db, tables) {
      for (const { table, column } of tables) {
        await sql`SELECT setval(pg_get_serial_sequence(${table}, ${column}), coalesce(max(${sql.ref(column)}), 0) + 1,
          false) FROM ${sql.table(table)}`.execute(db);
      }
    },

    async savepoint(db, name): Promise<Savepoint> {
      // A failed statement aborts the whole transaction on PostgreSQL until it is rolled back to a savepoint.
      await sql`SAVEPOINT ${sql.id(name)}`.execute(db);
      return {
        rollback: async () => {
          await sql`ROLLBACK TO SAVEPOINT ${sql.id(name)}`.execute(db);
        },
        release: async () => {
          await sql`RELEASE SAVEPOINT ${sql.id(name)}`.execute(db);
        },
      };
    },

    unwritableReason: postgresUnwritableReason,
  };
}

/** SQLSTATEs (or their class, two characters) meaning the database cannot take writes now, and what they mean. */
const unwritableStates: [string, string][] = [
  ["08", "the connection to PostgreSQL failed"],
  ["57P", "PostgreSQL is shutting down or restarting"],
  ["53100", "PostgreSQL's disk is full"],
  ["53200", "PostgreSQL is out of memory"],
  ["53300", "PostgreSQL has too many connections"],
  ["53", "PostgreSQL is out of resources"],
  ["25006", "the PostgreSQL server or transaction is read-only (a standby?)"],
  ["55P03", "another writer held the state's lock past the busy timeout"],
  ["40P01", "a deadlock was detected"],
  ["58", "PostgreSQL has a system or I/O error"],
  ["XX", "PostgreSQL reported an internal error"],
];

/** Node's codes for a connection that cannot be made or was lost. */
const networkCodes = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "EPIPE"]);

/** The message when `error` says the PostgreSQL state cannot take writes now, else undefined. */
export function postgresUnwritableReason(error: unknown): string | undefined {
  if (typeof error !== "object" || error === null) return undefined;
  const { code, message } = error as { code?: unknown; message?: unknown };
  const text = typeof message === "string" ? message : String(error);
  if (typeof code === "string") {
    const known = unwritableStates.find(([prefix]) => code.startsWith(prefix));
    if (known) return `${known[1]} (${code}: ${text})`;
    if (networkCodes.has(code)) return `PostgreSQL cannot be reached (${text})`;
  }
  if (
    /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error/i
      .test(text)
  ) {
    return `the connection to PostgreSQL failed (${text})`;
  }
  return undefined;
}

/** How long a writer may sit idle inside its transaction before PostgreSQL ends its session (see above). */
export function writerIdleLimitMs(lockTimeoutMs: number): number {
  return Math.max(3 * lockTimeoutMs, 1000);
}
