/**
 * Databases a dump is restored into: the program that reads the dump on stdin (pg_restore or psql, the mariadb
 * client, sqlite3), the tables a restore would be mixed with, how a drill's scratch database is made empty first, and
 * how the drill's check query runs. A target is described like a source (`postgres({ … })`, `mysql({ … })`,
 * `sqlite({ path })`), from a drill's `into` or from `restore --target-db URL`. Passwords go through the same
 * private files as the sources', never argv.
 */
import { existsSync, rmSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import type { MysqlSource, PostgresSource, SqliteSource } from "../config/types.ts";
import { SourceError, UsageError } from "../errors.ts";
import { run, type RunResult } from "../exec/run.ts";
import type { SourceContext } from "../sources/types.ts";
import { containerPackage } from "../sources/container.ts";
import { mysqlClient } from "../sources/mysql.ts";
import { dbnameArgument, postgresClient } from "../sources/postgres.ts";

export type DatabaseTarget = PostgresSource | MysqlSource | SqliteSource;

/** What a dump in a snapshot is, from its file name: what reads it back. */
export type DumpFormat = "pg_custom" | "pg_sql" | "mysql_sql" | "sqlite_sql";

/** A program that reads the dump on stdin and writes it into the target. */
export interface RestoreSink {
  argv: string[];
  env?: Record<string, string | undefined>;
  package: string;
  cleanup: () => void;
}

/** The dump format of a source's snapshot file (after removing an encryption extension). */
export function dumpFormat(sourceType: string, filename: string): DumpFormat | undefined {
  if (sourceType === "postgres") return filename.endsWith(".pgdump") ? "pg_custom" : "pg_sql";
  if (sourceType === "mysql") return "mysql_sql";
  if (sourceType === "sqlite") return "sqlite_sql";
  return undefined;
}

function named<T extends DatabaseTarget>(target: T): T & { name: string } {
  return { ...target, name: "restore-target" };
}

function sqlitePath(target: SqliteSource, configDir: string): string {
  return isAbsolute(target.path) ? target.path : resolve(configDir, target.path);
}

/** The program reading a dump of `format` into `target`, refusing a pairing that cannot work. */
export function restoreSink(
  target: DatabaseTarget,
  format: DumpFormat,
  context: SourceContext,
  /** More pg_restore options for a custom-format dump (postgres-selection.ts: --table, --schema, --clean, --jobs). */
  pgRestoreArgs: string[] = [],
): RestoreSink {
  const wanted: Record<DumpFormat, DatabaseTarget["type"]> = {
    pg_custom: "postgres",
    pg_sql: "postgres",
    mysql_sql: "mysql",
    sqlite_sql: "sqlite",
  };
  if (wanted[format] !== target.type) {
    throw new UsageError(`a ${wanted[format]} dump cannot be restored into a ${target.type} database`);
  }
  switch (target.type) {
    case "postgres": {
      const client = postgresClient(named(target), context);
      const dbname = `--dbname=${dbnameArgument(target.database)}`;
      const argv = client.command(
        format === "pg_custom"
          // No owner or grants from the source cluster: the target's user owns what it restores.
          ? [
            "pg_restore",
            "--no-password",
            "--exit-on-error",
            "--no-owner",
            "--no-privileges",
            ...pgRestoreArgs,
            ...client.args,
            dbname,
          ]
          : ["psql", "--no-password", "--quiet", "--set=ON_ERROR_STOP=1", ...client.args, dbname],
      );
      return {
        argv,
        env: client.env,
        package: containerPackage(target, "postgresql-client"),
        cleanup: () => client.cleanup?.(),
      };
    }
    case "mysql": {
      const client = mysqlClient(named(target), context);
      return {
        argv: client.command([...client.args, "--", target.database]),
        env: client.env,
        package: containerPackage(target, "mariadb-client"),
        cleanup: () => client.cleanup?.(),
      };
    }
    case "sqlite": {
      const path = sqlitePath(target, context.configDir);
      return { argv: ["sqlite3", "-bail", path], package: "sqlite3", cleanup: () => {} };
    }
  }
}

function checked(result: RunResult, what: string): RunResult {
  if (result.code !== 0) {
    throw new SourceError(
      `${what} failed (exit ${result.code ?? result.signal})${result.stderrTail ? `: ${result.stderrTail}` : ""}`,
    );
  }
  return result;
}

/**
 * Makes a drill's scratch database empty: PostgreSQL and MySQL drop and create it (the drill user needs that right),
 * SQLite removes the file. Never called for a `restore --into-database`, which restores into what exists.
 */
export async function recreate(target: DatabaseTarget, context: SourceContext): Promise<void> {
  switch (target.type) {
    case "postgres": {
      // Connected to the maintenance database: the scratch one cannot be dropped while connected to it.
      const client = postgresClient(named({ ...target, database: "postgres" }), context, "*");
      try {
        const quoted = `"${target.database.replaceAll('"', '""')}"`;
        for (const statement of [`DROP DATABASE IF EXISTS ${quoted} WITH (FORCE)`, `CREATE DATABASE ${quoted}`]) {
          checked(
            await run(
              client.command([
                "psql",
                "--no-password",
                "--quiet",
                "--set=ON_ERROR_STOP=1",
                ...client.args,
                "--dbname=postgres",
                "-c",
                statement,
              ]),
              { env: client.env },
            ),
            `preparing the scratch database ${target.database}`,
          );
        }
      } finally {
        client.cleanup?.();
      }
      return;
    }
    case "mysql": {
      const client = mysqlClient(named(target), context);
      try {
        const quoted = `\`${target.database.replaceAll("`", "``")}\``;
        checked(
          await run(
            client.command([...client.args, "-e", `DROP DATABASE IF EXISTS ${quoted}; CREATE DATABASE ${quoted}`]),
            { env: client.env },
          ),
          `preparing the scratch database ${target.database}`,
        );
      } finally {
        client.cleanup?.();
      }
      return;
    }
    case "sqlite": {
      const path = sqlitePath(target, context.configDir);
      if (!existsSync(dirname(path))) {
        throw new SourceError(`the folder of the scratch SQLite file ${path} does not exist`);
      }
      rmSync(path, { force: true });
      for (const suffix of ["-wal", "-shm", "-journal"]) rmSync(path + suffix, { force: true });
      return;
    }
  }
}

/** Runs one SQL query in `target` with its client, rows one a line (tab-separated, no header). */
async function query(target: DatabaseTarget, sql: string, context: SourceContext): Promise<RunResult> {
  switch (target.type) {
    case "postgres": {
      const client = postgresClient(named(target), context);
      try {
        return await run(
          client.command([
            "psql",
            "--no-password",
            "--no-align",
            "--tuples-only",
            "--set=ON_ERROR_STOP=1",
            ...client.args,
            `--dbname=${dbnameArgument(target.database)}`,
            "-c",
            sql,
          ]),
          { env: client.env },
        );
      } finally {
        client.cleanup?.();
      }
    }
    case "mysql": {
      const client = mysqlClient(named(target), context);
      try {
        return await run(
          client.command([...client.args, "--batch", "--skip-column-names", "-e", sql, "--", target.database]),
          { env: client.env },
        );
      } finally {
        client.cleanup?.();
      }
    }
    case "sqlite":
      return await run(["sqlite3", "-bail", "-readonly", sqlitePath(target, context.configDir), sql]);
  }
}

/**
 * Creates the schemas a `restore --schema` restores into, when missing: pg_restore 15 `--schema=S` restores the
 * objects in S but not S itself (tried: "schema does not exist"). Owned by the target's user, as --no-owner makes
 * everything pg_restore creates.
 */
export async function createSchemas(target: PostgresSource, schemas: string[], context: SourceContext): Promise<void> {
  if (schemas.length === 0) return;
  const sql = schemas.map((schema) => `CREATE SCHEMA IF NOT EXISTS "${schema.replaceAll('"', '""')}";`).join(" ");
  checked(await query(target, sql, context), `creating the schema${schemas.length === 1 ? "" : "s"} to restore`);
}

/**
 * Runs a drill's check query and returns its row count: the number when the query returns one row with one whole
 * number (`SELECT count(*) FROM orders`), else the number of rows it returned.
 */
export async function checkQuery(target: DatabaseTarget, sql: string, context: SourceContext): Promise<number> {
  const result = checked(await query(target, sql, context), "the check query");
  const rows = result.stdout.split("\n").filter((line) => line.trim() !== "");
  if (rows.length === 1 && /^\d+$/.test(rows[0].trim())) return Number(rows[0].trim());
  return rows.length;
}

/**
 * The tables and views of the target database, whose presence makes `restore --into-database` refuse it (unless
 * --force): a dump loaded there would be mixed with them. PostgreSQL: every schema but the system ones, from
 * pg_class (which, unlike information_schema, lists tables the connecting user has no right on), leaving out what
 * an extension installed; MySQL/MariaDB: information_schema.tables of the database; SQLite: sqlite_master, and
 * nothing for a file that does not exist yet (or is empty).
 */
export async function existingTables(target: DatabaseTarget, context: SourceContext): Promise<string[]> {
  if (target.type === "sqlite" && !existsSync(sqlitePath(target, context.configDir))) return [];
  const sql: Record<DatabaseTarget["type"], string> = {
    postgres: `SELECT n.nspname || '.' || c.relname FROM pg_catalog.pg_class c
      JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
        AND n.nspname NOT IN ('pg_catalog', 'information_schema')
        AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'
        AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
          WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
      ORDER BY 1`,
    mysql: "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() ORDER BY 1",
    sqlite: "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite\\_%' " +
      "ESCAPE '\\' ORDER BY 1",
  };
  const result = checked(await query(target, sql[target.type], context), "checking that the target is empty");
  return result.stdout.split("\n").filter((line) => line.trim() !== "");
}

/**
 * `--target-db URL`: `postgresql://USER@HOST:PORT/DB`, `mysql://USER@HOST:PORT/DB` or `sqlite:PATH`. A password in
 * the URL is refused (it would sit in the shell history and in ps): it comes from PGPASSWORD/`~/.pgpass`, `~/.my.cnf`,
 * or from the environment variable named by `?passwordEnv=NAME`.
 */
export function parseTargetUrl(text: string): DatabaseTarget {
  if (text.startsWith("sqlite:")) {
    const path = text.slice("sqlite:".length).replace(/^\/\//, "");
    if (!path) throw new UsageError("--target-db: sqlite:PATH needs a path, e.g. sqlite:/srv/restore/app.db");
    return { type: "sqlite", path };
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(
      `--target-db: expected postgresql://USER@HOST:PORT/DB, mysql://USER@HOST:PORT/DB or sqlite:PATH, got "${text}"`,
    );
  }
  if (url.password) {
    throw new UsageError(
      "--target-db: do not put a password in the URL (it would show in ps and shell history); name an environment " +
        "variable that holds it with ?passwordEnv=NAME",
    );
  }
  const database = decodeURIComponent(url.pathname.replace(/^\//, ""));
  if (!database) throw new UsageError(`--target-db: the URL names no database (…/DBNAME)`);
  const passwordEnv = url.searchParams.get("passwordEnv");
  const common = {
    host: url.hostname || undefined,
    port: url.port ? Number(url.port) : undefined,
    user: url.username ? decodeURIComponent(url.username) : undefined,
    password: passwordEnv ? { secret: "env" as const, name: passwordEnv } : undefined,
    database,
  };
  if (url.protocol === "postgres:" || url.protocol === "postgresql:") return { type: "postgres", ...common };
  if (url.protocol === "mysql:" || url.protocol === "mariadb:") return { type: "mysql", ...common };
  throw new UsageError(`--target-db: unknown scheme ${url.protocol} (postgresql:, mysql: or sqlite:)`);
}

/** Whether `target` is the project's own source database (restoring there overwrites production). */
export function sameDatabase(target: DatabaseTarget, source: DatabaseTarget, configDir: string): boolean {
  if (target.type !== source.type) return false;
  if (target.type === "sqlite" && source.type === "sqlite") {
    return sqlitePath(target, configDir) === sqlitePath(source, configDir);
  }
  const a = target as PostgresSource | MysqlSource;
  const b = source as PostgresSource | MysqlSource;
  const local = (host: string | undefined) => host === undefined || host === "localhost" || host === "127.0.0.1";
  const sameHost = a.host === b.host || (local(a.host) && local(b.host));
  return sameHost && (a.port ?? 0) === (b.port ?? 0) && a.database === b.database;
}
