/**
 * MySQL and MariaDB: `mariadb-dump` (or `mysqldump` where MariaDB's client is not installed) streams SQL text.
 * `--single-transaction` reads InnoDB tables inside one consistent snapshot without locking them; `--quick` streams
 * rows instead of buffering each table in memory. Restore with `mariadb DB < dump` (or `mysql`).
 *
 * The user and password never reach argv: they go into a private option file (0600, removed when the stage ends)
 * passed with `--defaults-extra-file`, which the client only honours as the very first option. Inside a container
 * (`container:`), where a file of this host does not exist, the user goes in `--user` and the password in MYSQL_PWD of
 * the exec's environment (deprecated by MySQL 8, still read by its clients and MariaDB's; sources/container.ts).
 */
import { dirname } from "node:path";
import { resolveSecret } from "../config/secrets.ts";
import type { MysqlSource } from "../config/types.ts";
import { which } from "../exec/which.ts";
import type { SourceContext, StreamInput } from "./types.ts";
import { writePrivateFile } from "../exec/private-file.ts";
import { containerArgv, containerPackage, mariadbOrMysql } from "./container.ts";

/** The config's MySQL/MariaDB source, with its name defaulted (see config/normalize.ts). */
export type NamedMysqlSource = MysqlSource & { name: string };

/** The `mariadb-dump`/`mysqldump` stream of one database, stored in the snapshot as `<name>.sql`. */
export function mysqlInput(source: NamedMysqlSource, context: SourceContext): StreamInput {
  const client = mysqlClient(source, context, "dump");
  const options = source.options ?? [];
  // "--" so a database name starting with "-" is never read as an option.
  const argv = client.command([
    "--single-transaction",
    "--quick",
    "--routines",
    "--events",
    "--triggers",
    // Binary columns as hex literals: raw bytes in SQL text break when the dump passes through a charset conversion.
    "--hex-blob",
    ...client.args,
    ...options,
    "--",
    source.database,
  ]);
  // Without comments the dump has no completion marker to look for.
  const commentless = options.some((option) => option === "--compact" || option === "--skip-comments");
  return {
    kind: "stream",
    argv,
    env: client.env,
    filename: `${source.name}.sql`,
    allowEmpty: source.allowEmpty ?? false,
    package: containerPackage(source, "mariadb-client"),
    check: commentless
      ? undefined
      : (_head, tail) =>
        new TextDecoder().decode(tail).includes("-- Dump completed")
          ? undefined
          : 'it is cut short: a complete dump ends with "-- Dump completed"',
    cleanup: client.cleanup,
  };
}

/** A private option file with the source's user and password (the first option of any client program). */
function defaultsFile(source: NamedMysqlSource, context: SourceContext) {
  const settings = ["[client]"];
  if (source.user !== undefined) settings.push(`user=${optionFileValue(source.user)}`);
  if (source.password) settings.push(`password=${optionFileValue(resolveSecret(source.password, context.configDir))}`);
  return writePrivateFile(context.privateDir, "my.cnf", `${settings.join("\n")}\n`);
}

/** How a client program connects as the source does; see {@link mysqlClient}. */
export interface MysqlClient {
  /** Host and port options, to put after the program's own options. */
  args: string[];
  env: Record<string, string> | undefined;
  /** The program's argv as run, given its arguments: the option file first on this host, or inside the container. */
  command: (rest: string[]) => string[];
  /** Removes the private option file, when there is one; call it when the program has exited. */
  cleanup?: () => void;
}

/**
 * How the `mariadb`/`mysql` client (or with `program: "dump"` mariadb-dump/mysqldump) connects as the source does:
 * on this host through a private option file; in the source's container with `--user` and MYSQL_PWD in the exec's
 * environment. The database is not included.
 */
export function mysqlClient(
  source: NamedMysqlSource,
  context: SourceContext,
  program: "client" | "dump" = "client",
): MysqlClient {
  const args: string[] = [];
  if (source.host !== undefined) args.push(`--host=${source.host}`);
  // A port only means something over TCP: with host "localhost" (or none) the client would use its socket instead.
  if (source.port !== undefined) args.push(`--port=${source.port}`, "--protocol=TCP");
  if (source.container !== undefined) {
    const env: Record<string, string> = {};
    if (source.password) env.MYSQL_PWD = resolveSecret(source.password, context.configDir);
    const user = source.user === undefined ? [] : [`--user=${source.user}`];
    const [mariadb, mysql] = program === "dump" ? ["mariadb-dump", "mysqldump"] : ["mariadb", "mysql"];
    return {
      args,
      env,
      command: (rest) => containerArgv(source, mariadbOrMysql(mariadb, mysql, [...user, ...rest]), env),
    };
  }
  const defaults = defaultsFile(source, context);
  const credentials = source.user !== undefined || source.password !== undefined;
  return {
    args,
    // The client reads ~/.my.cnf (and MySQL's ~/.mylogin.cnf) after the extra file, so a user or password there would
    // win over the config's: point HOME at the private folder, where neither exists.
    env: credentials ? { HOME: dirname(defaults.path) } : undefined,
    command: (rest) => [
      program === "dump" ? dumpProgram() : clientProgram(),
      `--defaults-extra-file=${defaults.path}`,
      ...rest,
    ],
    cleanup: defaults.remove,
  };
}

const chosen = new Map<string, string>();

/** MariaDB's name for a client program when installed (it deprecates the MySQL names), else MySQL's; looked up once. */
function program(mariadb: string, mysql: string): string {
  if (!chosen.has(mariadb)) {
    chosen.set(mariadb, which(mariadb) === undefined ? mysql : mariadb);
  }
  return chosen.get(mariadb)!;
}

/** The client program that reads a dump: `mariadb`, or `mysql` where MariaDB's client is not installed. */
export const clientProgram = () => program("mariadb", "mysql");
const dumpProgram = () => program("mariadb-dump", "mysqldump");

/**
 * A value for a MySQL option file: double-quoted, so '#' (a comment) and leading or trailing spaces survive, with
 * the escapes the option-file reader understands for backslash, quotes and control characters.
 */
export function optionFileValue(value: string): string {
  const escapes: Record<string, string> = {
    "\\": "\\\\",
    '"': '\\"',
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\b": "\\b",
  };
  return `"${value.replace(/[\\"\n\r\t\b]/g, (c) => escapes[c])}"`;
}
