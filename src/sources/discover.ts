/**
 * Lists the databases of a server declared with `databases: "all"`, when planning: one query with the source's own
 * client, credentials and container (psql, or the mariadb/mysql client), exactly as its dumps will connect.
 *
 * PostgreSQL: the databases that accept connections and are not templates (`datallowconn AND NOT datistemplate`:
 * template0 and template1 are never listed), read through the maintenance database (`database`, default
 * "postgres"). MySQL/MariaDB: `SHOW DATABASES` without the system schemas (information_schema, performance_schema,
 * sys, mysql), which are the server's own and are not restored into another server with a dump.
 */
import { databaseSource } from "../config/discovered.ts";
import { defaultMaintenanceDatabase, type ServerSource } from "../config/normalize.ts";
import { SourceError } from "../errors.ts";
import { run, type RunResult } from "../exec/run.ts";
import { mysqlClient } from "./mysql.ts";
import { dbnameArgument, postgresClient } from "./postgres.ts";
import type { SourceContext } from "./types.ts";

/** The schemas a MySQL or MariaDB server keeps for itself, never listed as databases to back up. */
export const mysqlSystemSchemas = ["information_schema", "performance_schema", "sys", "mysql"];

/** How long the listing may take (a server that accepts the connection but never answers). */
const listingTimeoutMs = 60_000;

/** The server's databases, sorted by name, before the source's `exclude`; throws SourceError when it cannot tell. */
export async function listDatabases(server: ServerSource, context: SourceContext): Promise<string[]> {
  const maintenance = server.type === "postgres" ? server.database ?? defaultMaintenanceDatabase : "";
  const source = databaseSource(server, maintenance, server.name);
  let result: RunResult;
  let rows: string[];
  if (source.type === "postgres") {
    const client = postgresClient(source, context);
    try {
      result = await run(
        client.command([
          "psql",
          "--no-password",
          "--no-psqlrc",
          "--no-align",
          "--tuples-only",
          // NUL between rows: a database name may hold a newline.
          "--record-separator-zero",
          ...client.args,
          `--dbname=${dbnameArgument(maintenance)}`,
          "-c",
          "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY datname",
        ]),
        { env: client.env, timeoutMs: listingTimeoutMs },
      );
    } finally {
      client.cleanup?.();
    }
    rows = result.stdout.split("\0").map((row) => row.replace(/^\n/, "")).filter((row) => row !== "");
  } else if (source.type === "mysql") {
    const client = mysqlClient(source, context);
    try {
      result = await run(client.command([...client.args, "--batch", "--skip-column-names", "-e", "SHOW DATABASES"]), {
        env: client.env,
        timeoutMs: listingTimeoutMs,
      });
    } finally {
      client.cleanup?.();
    }
    rows = result.stdout.split("\n").filter((row) => row !== "").map(unescapeBatch)
      .filter((row) => !mysqlSystemSchemas.includes(row));
  } else {
    throw new SourceError(`source ${server.name}: databases: "all" is not supported for ${server.type}() sources`);
  }
  if (result.code !== 0) {
    const why = result.timedOut
      ? `no answer within ${listingTimeoutMs / 1000} s`
      : `exit ${result.code ?? result.signal}`;
    throw new SourceError(
      `${result.argv[0]} failed (${why})${result.stderrTail ? `: ${result.stderrTail.trim()}` : ""}`,
    );
  }
  return [...new Set(rows)].sort();
}

/** A value of the mariadb client's batch output, whose tab, newline, NUL and backslash come escaped. */
function unescapeBatch(value: string): string {
  const escapes: Record<string, string> = { n: "\n", t: "\t", "0": "\0", "\\": "\\" };
  return value.replace(/\\([nt0\\])/g, (_, c: string) => escapes[c]);
}
