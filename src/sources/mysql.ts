/**
 * MySQL and MariaDB: `mariadb-dump` (or `mysqldump` where MariaDB's client is not installed) streams SQL text.
 * `--single-transaction` reads InnoDB tables inside one consistent snapshot without locking them; `--quick` streams
 * rows instead of buffering each table in memory. Restore with `mariadb DB < dump` (or `mysql`).
 *
 * The user and password never reach argv: they go into a private option file (0600, removed when the stage ends)
 * passed with `--defaults-extra-file`, which the client only honours as the very first option.
 */
import { dirname } from "node:path";
import { resolveSecret } from "../config/secrets.ts";
import type { MysqlSource } from "../config/types.ts";
import { which } from "../exec/which.ts";
import type { SourceContext, StreamInput } from "./types.ts";
import { writePrivateFile } from "../exec/private-file.ts";

/** The config's MySQL/MariaDB source, with its name defaulted (see config/normalize.ts). */
export type NamedMysqlSource = MysqlSource & { name: string };

/** The `mariadb-dump`/`mysqldump` stream of one database, stored in the snapshot as `<name>.sql`. */
export function mysqlInput(source: NamedMysqlSource, context: SourceContext): StreamInput {
  const defaults = defaultsFile(source, context);
  const argv = [
    dumpProgram(),
    `--defaults-extra-file=${defaults.path}`,
    "--single-transaction",
    "--quick",
    "--routines",
    "--events",
    "--triggers",
    // Binary columns as hex literals: raw bytes in SQL text break when the dump passes through a charset conversion.
    "--hex-blob",
  ];
  if (source.host !== undefined) argv.push(`--host=${source.host}`);
  // A port only means something over TCP: with host "localhost" (or none) the client would use its socket instead.
  if (source.port !== undefined) argv.push(`--port=${source.port}`, "--protocol=TCP");
  const options = source.options ?? [];
  // "--" so a database name starting with "-" is never read as an option.
  argv.push(...options, "--", source.database);
  // Without comments the dump has no completion marker to look for.
  const commentless = options.some((option) => option === "--compact" || option === "--skip-comments");
  const credentials = source.user !== undefined || source.password !== undefined;
  return {
    kind: "stream",
    argv,
    // The client reads ~/.my.cnf (and MySQL's ~/.mylogin.cnf) after the extra file, so a user or password there would
    // win over the config's: point HOME at the private folder, where neither exists.
    env: credentials ? { HOME: dirname(defaults.path) } : undefined,
    filename: `${source.name}.sql`,
    allowEmpty: source.allowEmpty ?? false,
    package: "mariadb-client",
    check: commentless
      ? undefined
      : (_head, tail) =>
        new TextDecoder().decode(tail).includes("-- Dump completed")
          ? undefined
          : 'it is cut short: a complete dump ends with "-- Dump completed"',
    cleanup: defaults.remove,
  };
}

/** A private option file with the source's user and password (the first option of any client program). */
function defaultsFile(source: NamedMysqlSource, context: SourceContext) {
  const settings = ["[client]"];
  if (source.user !== undefined) settings.push(`user=${optionFileValue(source.user)}`);
  if (source.password) settings.push(`password=${optionFileValue(resolveSecret(source.password, context.configDir))}`);
  return writePrivateFile(context.privateDir, "my.cnf", `${settings.join("\n")}\n`);
}

/**
 * How the `mariadb`/`mysql` client connects as the source does (its option file first, then host and port); the
 * database is not included. Call `cleanup` after the client exits.
 */
export function mysqlClient(
  source: NamedMysqlSource,
  context: SourceContext,
): { program: string; args: string[]; env: Record<string, string> | undefined; cleanup: () => void } {
  const defaults = defaultsFile(source, context);
  const args = [`--defaults-extra-file=${defaults.path}`];
  if (source.host !== undefined) args.push(`--host=${source.host}`);
  if (source.port !== undefined) args.push(`--port=${source.port}`, "--protocol=TCP");
  const credentials = source.user !== undefined || source.password !== undefined;
  return {
    program: clientProgram(),
    args,
    env: credentials ? { HOME: dirname(defaults.path) } : undefined,
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
