/**
 * `restore --print-commands`: the shell commands of a manual restore, for an operator without backupctl (bash, with
 * restic and the database clients installed). They run as printed: every secret is read where the config keeps it
 * (`RESTIC_PASSWORD_FILE=PATH`, a variable's `"${NAME:?…}"`, a file's `"$(cat PATH)"`), never shown; the database
 * client gets the whole connection (host, port, user, database, the database created when missing). The target is
 * `--target-db` when given, else the source's own database: the restore runs in one transaction where the client
 * can, so a database that still holds the tables refuses it instead of mixing the dump into what is there.
 */
import { isAbsolute, resolve } from "node:path";
import { shellSecret } from "../config/secrets.ts";
import type { Encryption, MysqlSource, PostgresSource } from "../config/types.ts";
import type { Restic } from "../repository/restic.ts";
import { shellWord } from "../repository/restic-manual.ts";
import { clientProgram } from "../sources/mysql.ts";
import { dbnameArgument } from "../sources/postgres.ts";
import { type Located, restoredName } from "./restore.ts";
import type { DatabaseTarget } from "./targets.ts";

/** The shell commands of a manual restore of `located` from `repository` (secrets referenced, never shown). */
export function manualCommands(
  located: Located,
  repository: Restic,
  configDir: string,
  target?: DatabaseTarget,
  selection: { include?: string[]; pgRestore?: string[]; jobs?: number } = {},
): string[] {
  const restic = repository.manualRestic();
  const id = located.snapshot.short_id;
  const lines = [
    "# The repository (each secret read from where the config keeps it):",
    ...repository.manualEnvironment(),
  ];
  if (located.source.type === "files") {
    const include = (selection.include ?? []).map((path) => ` --include ${shellWord(path)}`).join("");
    lines.push(
      `# Restore the ${
        include ? "paths asked for" : "files"
      } under ./restore (restic keeps their absolute paths below ` +
        "it; restore into an empty folder: restic 0.14 writes through a link it finds there):",
    );
    lines.push(`${restic} restore ${id} --target ./restore${include}`);
    return lines;
  }
  const decrypt = located.encrypted ? decryption(located, configDir, lines) : "";
  const file = restoredName(located);
  const dump = `${restic} dump ${id} ${shellWord(located.dumpPath!)}${decrypt}`;
  lines.push("# The dump as a file:", `${dump} > ${shellWord(file)}`);
  const source = located.source;
  const into = target ??
    (source.type === "postgres" || source.type === "mysql" || source.type === "sqlite" ? source : undefined);
  const whose = target ? "the --target-db" : "the source's own (--target-db URL prints another)";
  if (into?.type === "postgres" && (located.format === "pg_custom" || located.format === "pg_sql")) {
    lines.push(
      `# Or straight into PostgreSQL database ${into.database}${where(into)}, ${whose}; created when missing. In one ` +
        "transaction: a database that still holds these tables refuses it.",
      ...postgresConnection(into, configDir),
    );
    const exists = `SELECT 1 FROM pg_database WHERE datname = '${into.database.replaceAll("'", "''")}'`;
    lines.push(
      `psql --no-psqlrc --dbname=postgres --tuples-only --no-align --command=${doubleQuoted(exists)} | grep -q 1 || ` +
        `createdb ${shellWord(into.database)}`,
    );
    const dbname = `--dbname=${shellWord(dbnameArgument(into.database))}`;
    const chosen = (selection.pgRestore ?? []).map((arg) => ` ${shellWord(arg)}`).join("");
    // No owner or grants from the source cluster: the target's user owns what it restores.
    const pgRestore = `pg_restore --no-owner --no-privileges --exit-on-error${chosen}`;
    if (located.format === "pg_custom" && (selection.jobs ?? 1) > 1) {
      // Parallel jobs read a file, not a pipe (and cannot run in one transaction): the dump file above first.
      lines.push(`${pgRestore} --jobs=${selection.jobs} ${dbname} ${shellWord(file)}`, `rm ${shellWord(file)}`);
    } else {
      lines.push(
        located.format === "pg_custom"
          ? `${dump} | ${pgRestore} --single-transaction ${dbname}`
          : `${dump} | psql --no-psqlrc --quiet --set=ON_ERROR_STOP=1 --single-transaction ${dbname}`,
      );
    }
  } else if (into?.type === "mysql" && located.format === "mysql_sql") {
    const client = [clientProgram(), ...mysqlConnection(into)].join(" ");
    const quoted = `\`${into.database.replaceAll("`", "``")}\``;
    lines.push(
      `# Or straight into MariaDB/MySQL database ${into.database}${where(into)}, ${whose}; created when missing. The ` +
        "dump replaces the tables it holds.",
      ...(into.password
        ? [`export MYSQL_PWD=${shellSecret(into.password, configDir)}`]
        : ["# The password: the client's option files (~/.my.cnf), or export MYSQL_PWD."]),
      `${client} --execute=${shellWord(`CREATE DATABASE IF NOT EXISTS ${quoted}`)}`,
      `${dump} | ${client} -- ${shellWord(into.database)}`,
    );
  } else if (into?.type === "sqlite" && located.format === "sqlite_sql") {
    const path = isAbsolute(into.path) ? into.path : resolve(configDir, into.path);
    lines.push(
      `# Or straight into the SQLite file ${path}, ${whose}. A file that still holds these tables refuses it ` +
        "(move a damaged one away first).",
      `${dump} | sqlite3 -bail ${shellWord(path)}`,
    );
  } else if (source.type === "mongodb") {
    lines.push("# Or straight into MongoDB:", `${dump} | mongorestore --archive --uri=TARGET_URI`);
  } else if (source.type === "command") {
    // What reads a command() source's dump is known to whoever wrote its `run`, not to backupctl.
    lines.push(
      `# ${source.name} is a command() source: load ${file} with the program that reads what its \`run\` ` +
        `writes, or pipe \`${dump}\` into it.`,
    );
  }
  return lines;
}

/** The decryption filter of the dump (` | gpg …`), after the lines that prepare its key. */
function decryption(located: Located, configDir: string, lines: string[]): string {
  const encrypt: Encryption | undefined = located.project.encrypt;
  if (located.encrypted === ".gpg") {
    if (encrypt?.type !== "gpg" || !encrypt.secretKey) {
      lines.push("# gpg decrypts with the project's private key, which must be in your keyring (gpg --import).");
      return " | gpg --decrypt";
    }
    lines.push(
      "# gpg decrypts with the project's private key, imported into a keyring of its own:",
      'export GNUPGHOME="$(mktemp -d)"',
      `printf '%s\\n' ${shellSecret(encrypt.secretKey, configDir)} | gpg --batch --quiet --import`,
    );
    const passphrase = encrypt.passphrase
      ? ` --pinentry-mode loopback --passphrase-file <(printf '%s\\n' ${shellSecret(encrypt.passphrase, configDir)})`
      : "";
    return ` | gpg --batch --quiet${passphrase} --decrypt`;
  }
  if (encrypt?.type !== "age" || !encrypt.identity) {
    lines.push("# age decrypts with the project's identity: replace IDENTITY_FILE with the file holding it.");
    return " | age --decrypt -i IDENTITY_FILE";
  }
  return ` | age --decrypt -i <(printf '%s\\n' ${shellSecret(encrypt.identity, configDir)})`;
}

/** A word in double quotes (easier to read around SQL's single quotes); single quotes where `!` would expand. */
function doubleQuoted(text: string): string {
  return text.includes("!") ? shellWord(text) : `"${text.replace(/[\\"$`]/g, (c) => `\\${c}`)}"`;
}

function where(target: PostgresSource | MysqlSource): string {
  if (target.host === undefined) return target.port === undefined ? "" : ` (port ${target.port})`;
  return ` on ${target.host}${target.port === undefined ? "" : `:${target.port}`}`;
}

/** libpq's variables for the target; pg_restore, psql and createdb all read them. */
function postgresConnection(target: PostgresSource, configDir: string): string[] {
  const settings = [
    target.host === undefined ? undefined : `PGHOST=${shellWord(target.host)}`,
    target.port === undefined ? undefined : `PGPORT=${target.port}`,
    target.user === undefined ? undefined : `PGUSER=${shellWord(target.user)}`,
  ].filter((setting) => setting !== undefined);
  const lines = settings.length > 0 ? [`export ${settings.join(" ")}`] : [];
  lines.push(
    target.password
      ? `export PGPASSWORD=${shellSecret(target.password, configDir)}`
      : "# The password: ~/.pgpass, or export PGPASSWORD.",
  );
  return lines;
}

/** The mariadb client's connection options (the password goes through MYSQL_PWD). */
function mysqlConnection(target: MysqlSource): string[] {
  const args: string[] = [];
  if (target.host !== undefined) args.push(`--host=${shellWord(target.host)}`);
  // A port only means something over TCP: with host "localhost" (or none) the client would use its socket instead.
  if (target.port !== undefined) args.push(`--port=${target.port}`, "--protocol=TCP");
  if (target.user !== undefined) args.push(`--user=${shellWord(target.user)}`);
  return args;
}
