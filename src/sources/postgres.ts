/**
 * PostgreSQL: `pg_dump -Fc -Z0` streams the custom archive format, read inside one repeatable-read snapshot, so the
 * copy is consistent while the application keeps writing. `-Z0` leaves compression to restic: a compressed dump
 * changes entirely when one row changes, which would defeat restic's deduplication. Restore with `pg_restore`.
 *
 * The password never reaches argv: it goes into a private pgpass file (0600, removed when the stage ends) named by
 * PGPASSFILE, and `--no-password` makes a missing or wrong password fail at once instead of prompting. Inside a
 * container (`container:`), where a file of this host does not exist, it goes into PGPASSWORD of the exec's
 * environment instead (sources/container.ts).
 */
import { resolveSecret } from "../config/secrets.ts";
import type { PostgresSource } from "../config/types.ts";
import type { SourceContext, StreamInput } from "./types.ts";
import { type PrivateFile, writePrivateFile } from "../exec/private-file.ts";
import { containerArgv, containerPackage } from "./container.ts";

/** The config's PostgreSQL source, with its name defaulted (see config/normalize.ts). */
export type NamedPostgresSource = PostgresSource & { name: string };

/** The first bytes of every pg_dump custom-format archive. */
const customFormatMagic = "PGDMP";

/**
 * The `pg_dump -Fc -Z0` stream of one database, stored in the snapshot as `<name>.pgdump`.
 * Throws when the password's secret reference cannot be resolved.
 */
export function postgresInput(source: NamedPostgresSource, context: SourceContext): StreamInput {
  const client = postgresClient(source, context);
  return {
    kind: "stream",
    argv: client.command([
      "pg_dump",
      "-Fc",
      "-Z0",
      "--no-password",
      ...client.args,
      ...(source.options ?? []),
      `--dbname=${dbnameArgument(source.database)}`,
    ]),
    env: client.env,
    filename: `${source.name}.pgdump`,
    allowEmpty: source.allowEmpty ?? false,
    package: containerPackage(source, "postgresql-client"),
    check: (head) =>
      new TextDecoder().decode(head.subarray(0, customFormatMagic.length)) === customFormatMagic
        ? undefined
        : `it is not a pg_dump custom-format archive (it does not start with "${customFormatMagic}")`,
    cleanup: client.cleanup,
  };
}

/**
 * Roles and tablespaces of the whole cluster (`pg_dumpall --globals-only`), as plain SQL stored as
 * `<name>-globals.sql` (the source is named `<name>-globals`): pg_dump leaves them out, and a database restored without its roles lacks its owners and
 * grants. It reads pg_authid (role password hashes), which needs a superuser. The source's `options` are pg_dump
 * options and are not passed on.
 */
export function postgresGlobalsInput(source: NamedPostgresSource, context: SourceContext): StreamInput {
  // pg_dumpall connects to the source's own database: the backup user may connect to it, maybe to nothing else.
  const client = postgresClient(source, context, "*");
  return {
    kind: "stream",
    argv: client.command([
      "pg_dumpall",
      "--globals-only",
      "--no-password",
      ...client.args,
      `--database=${dbnameArgument(source.database)}`,
    ]),
    env: client.env,
    filename: `${source.name}.sql`, // the source is already named <name>-globals
    allowEmpty: source.allowEmpty ?? false,
    package: containerPackage(source, "postgresql-client"),
    check: (head, tail) => {
      const text = new TextDecoder().decode(head) + new TextDecoder().decode(tail);
      if (text.trim() === "") return "it is empty";
      return text.includes("CREATE ROLE") || text.includes("SET ")
        ? undefined
        : "it does not look like pg_dumpall output (no SET or CREATE ROLE statement)";
    },
    cleanup: client.cleanup,
  };
}

/** How a client program connects as the source does; see {@link postgresClient}. */
export interface PostgresClient {
  /** Connection options (host, port, user), to put after the program's name. */
  args: string[];
  env: Record<string, string>;
  /** The program's argv as run: itself, or inside the source's container. */
  command: (argv: string[]) => string[];
  /** Removes the private pgpass file, when there is one; call it when the program has exited. */
  cleanup?: () => void;
}

/**
 * How a client program (pg_dump, pg_restore, psql) connects as the source does: on this host with a private pgpass
 * file for `database` ("*": any); in the source's container with PGPASSWORD in the exec's environment.
 */
export function postgresClient(
  source: NamedPostgresSource,
  context: SourceContext,
  database = source.database,
): PostgresClient {
  if (source.container !== undefined) {
    const env = environment(undefined);
    if (source.password) env.PGPASSWORD = resolveSecret(source.password, context.configDir);
    return {
      args: connectionArgs(source),
      env,
      command: (argv) => containerArgv(source, argv, env),
    };
  }
  const pgpass = passwordFile(source, context, database);
  return {
    args: connectionArgs(source),
    env: environment(pgpass),
    command: (argv) => argv,
    cleanup: pgpass?.remove,
  };
}

function connectionArgs(source: NamedPostgresSource): string[] {
  const args: string[] = [];
  if (source.host !== undefined) args.push(`--host=${source.host}`);
  if (source.port !== undefined) args.push(`--port=${source.port}`);
  if (source.user !== undefined) args.push(`--username=${source.user}`);
  return args;
}

function environment(pgpass: PrivateFile | undefined): Record<string, string> {
  const env: Record<string, string> = {
    // Without a limit an unreachable host hangs the stage until its timeout (hours by default).
    PGCONNECT_TIMEOUT: "10",
    // Shows up in pg_stat_activity, so a DBA sees who holds the long-running snapshot.
    PGAPPNAME: "backupctl",
  };
  if (pgpass) {
    env.PGPASSFILE = pgpass.path;
    // libpq prefers PGPASSWORD to the pgpass file; an empty one counts as unset, so an inherited value cannot win.
    env.PGPASSWORD = "";
  }
  return env;
}

/**
 * A private pgpass file for the configured password, or undefined when none is configured (then libpq's own
 * defaults apply: ~/.pgpass, PGPASSWORD, peer or trust authentication).
 */
function passwordFile(source: NamedPostgresSource, context: SourceContext, database: string): PrivateFile | undefined {
  if (!source.password) return undefined;
  const password = resolveSecret(source.password, context.configDir);
  // An unset field is a wildcard: libpq matches a socket connection as "localhost" and fills in its default port.
  const line = [
    source.host === undefined ? "*" : pgpassField(source.host),
    source.port === undefined ? "*" : String(source.port),
    database === "*" ? "*" : pgpassField(database),
    source.user === undefined ? "*" : pgpassField(source.user),
    pgpassField(password),
  ].join(":");
  return writePrivateFile(context.privateDir, "pgpass", `${line}\n`);
}

/** Escapes a pgpass field: ':' and '\' are the only special characters. */
export function pgpassField(value: string): string {
  return value.replace(/[\\:]/g, (c) => `\\${c}`);
}

/**
 * pg_dump reads `--dbname` as a connection string when it contains '=' or starts with a postgres:// URI; such a
 * database name is passed as a quoted `dbname='…'` keyword instead, so it is always taken literally.
 */
export function dbnameArgument(database: string): string {
  if (!database.includes("=") && !/^postgres(ql)?:\/\//.test(database)) return database;
  return `dbname='${database.replace(/[\\']/g, (c) => `\\${c}`)}'`;
}
