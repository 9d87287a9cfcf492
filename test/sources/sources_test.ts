/**
 * What each source kind hands the pipeline (src/sources/): the producer's argv and environment, the private files
 * that carry its secrets, the file name in the snapshot, the format check, and the refusals that come before any
 * process starts. A secret reaches a producer through a private file or its environment, never its argv. The dumps
 * themselves, with real servers, are test/e2e/databases_test.ts.
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { spawnSync } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { commandInput } from "../../src/sources/command.ts";
import { filesInput } from "../../src/sources/files.ts";
import { mongodbInput } from "../../src/sources/mongodb.ts";
import { mysqlClient, mysqlInput, optionFileValue } from "../../src/sources/mysql.ts";
import {
  dbnameArgument,
  pgpassField,
  postgresClient,
  postgresGlobalsInput,
  postgresInput,
} from "../../src/sources/postgres.ts";
import { sqliteInput } from "../../src/sources/sqlite.ts";

const root = mkdtempSync(join(tmpdir(), "backupctl-sources-test-"));
const context = { configDir: join(root, "config"), privateDir: join(root, "state", "tmp") };
const password = "pa:ss\\word \"'$(id)` #1";
const passwordVariable = "UNIT_SOURCES_PASSWORD";
const secret = { secret: "env" as const, name: passwordVariable };

before(() => {
  mkdirSync(context.configDir, { recursive: true });
  process.env[passwordVariable] = password;
});
after(() => {
  delete process.env[passwordVariable];
  rmSync(root, { recursive: true, force: true });
});

const bytes = (text: string) => new TextEncoder().encode(text);

/** A secret's file: private (0600 in a 0700 folder under the state's private tmp/), holding `expected`. */
function assertPrivateFile(path: string, expected: string | RegExp): void {
  assert.ok(path.startsWith(`${context.privateDir}/secret-${process.pid}-`), path);
  assert.equal(statSync(path).mode & 0o777, 0o600);
  assert.equal(statSync(dirname(path)).mode & 0o777, 0o700);
  const text = readFileSync(path, "utf8");
  if (typeof expected === "string") assert.equal(text, expected);
  else assert.match(text, expected);
}

function assertNotInArgv(argv: string[], value: string): void {
  for (const arg of argv) assert.ok(!arg.includes(value), `argv holds the secret: ${arg}`);
}

describe("postgres", () => {
  const source = {
    type: "postgres" as const,
    name: "app",
    host: "db.internal",
    port: 5433,
    database: "app",
    user: "backup",
    password: secret,
    options: ["--exclude-table=audit_log"],
  };

  it("pg_dump -Fc -Z0 with the password in a private pgpass file, never argv; the file goes at cleanup", () => {
    const input = postgresInput(source, context);
    assert.deepEqual(input.argv, [
      "pg_dump",
      "-Fc",
      "-Z0",
      "--no-password",
      "--host=db.internal",
      "--port=5433",
      "--username=backup",
      "--exclude-table=audit_log",
      "--dbname=app",
    ]);
    assertNotInArgv(input.argv, "pa:ss");
    const pgpass = input.env?.PGPASSFILE ?? "";
    assert.deepEqual(input.env, {
      PGCONNECT_TIMEOUT: "10",
      PGAPPNAME: "backupctl",
      PGPASSFILE: pgpass,
      PGPASSWORD: "", // an inherited PGPASSWORD must not win over the file
    });
    assertPrivateFile(pgpass, `db.internal:5433:app:backup:${pgpassField(password)}\n`);
    assert.equal(input.filename, "app.pgdump");
    assert.equal(input.package, "postgresql-client");
    input.cleanup?.();
    assert.equal(existsSync(dirname(pgpass)), false);
  });

  it("without a password, no pgpass file: libpq's own defaults apply", () => {
    const input = postgresInput({ type: "postgres", name: "local", database: "app" }, context);
    assert.deepEqual(input.argv, ["pg_dump", "-Fc", "-Z0", "--no-password", "--dbname=app"]);
    assert.deepEqual(input.env, { PGCONNECT_TIMEOUT: "10", PGAPPNAME: "backupctl" });
    assert.equal(input.cleanup, undefined);
  });

  it("checks that the dump is a custom-format archive", () => {
    const input = postgresInput({ type: "postgres", name: "local", database: "app" }, context);
    assert.equal(input.check?.(bytes("PGDMP\x01\x0e"), bytes("")), undefined);
    assert.match(input.check?.(bytes("-- SQL"), bytes("")) ?? "", /not a pg_dump custom-format archive/);
  });

  it("globals: pg_dumpall --globals-only, its pgpass line for any database, SQL checked", () => {
    const input = postgresGlobalsInput({ ...source, name: "app-globals" }, context);
    assert.deepEqual(input.argv, [
      "pg_dumpall",
      "--globals-only",
      "--no-password",
      "--host=db.internal",
      "--port=5433",
      "--username=backup",
      "--database=app",
    ]);
    assertPrivateFile(input.env?.PGPASSFILE ?? "", `db.internal:5433:*:backup:${pgpassField(password)}\n`);
    assert.equal(input.filename, "app-globals.sql");
    assert.equal(input.check?.(bytes("SET default_transaction_read_only = off;"), bytes("")), undefined);
    assert.match(input.check?.(bytes("   "), bytes("")) ?? "", /empty/);
    assert.match(input.check?.(bytes("hello"), bytes("")) ?? "", /does not look like pg_dumpall output/);
    input.cleanup?.();
  });

  it("client programs connect the same way, their pgpass for the database asked", () => {
    const client = postgresClient(source, context, "scratch");
    try {
      assert.deepEqual(client.args, ["--host=db.internal", "--port=5433", "--username=backup"]);
      assertPrivateFile(client.env.PGPASSFILE, `db.internal:5433:scratch:backup:${pgpassField(password)}\n`);
    } finally {
      client.cleanup?.();
    }
  });

  it("a database name that looks like a connection string is passed literally; pgpass fields are escaped", () => {
    assert.equal(dbnameArgument("app"), "app");
    assert.equal(dbnameArgument("host=evil dbname=x"), "dbname='host=evil dbname=x'");
    assert.equal(dbnameArgument("postgresql://evil/x"), "dbname='postgresql://evil/x'");
    assert.equal(dbnameArgument("it's=\\"), "dbname='it\\'s=\\\\'");
    assert.equal(pgpassField("a:b\\c"), "a\\:b\\\\c");
  });

  it("a password whose variable is unset fails before anything starts, naming the variable only", () => {
    const unset = { secret: "env" as const, name: "UNIT_SOURCES_UNSET" };
    assert.throws(
      () => postgresInput({ type: "postgres", name: "app", database: "app", password: unset }, context),
      /secret env\("UNIT_SOURCES_UNSET"\) is not set: export UNIT_SOURCES_UNSET/,
    );
  });
});

describe("mysql", () => {
  const source = {
    type: "mysql" as const,
    name: "shop",
    host: "db.internal",
    port: 3307,
    database: "-shop",
    user: "dumper-7",
    password: secret,
  };

  it("user and password in a private option file given first; HOME there so ~/.my.cnf cannot win; -- before the name", () => {
    const input = mysqlInput(source, context);
    const defaults = input.argv[1].replace("--defaults-extra-file=", "");
    assert.match(input.argv[0], /^(mariadb-dump|mysqldump)$/);
    assert.deepEqual(input.argv.slice(1), [
      `--defaults-extra-file=${defaults}`,
      "--single-transaction",
      "--quick",
      "--routines",
      "--events",
      "--triggers",
      "--hex-blob",
      "--host=db.internal",
      "--port=3307",
      "--protocol=TCP",
      "--",
      "-shop",
    ]);
    assertNotInArgv(input.argv, "pa:ss");
    assertNotInArgv(input.argv, "dumper-7");
    assertPrivateFile(defaults, `[client]\nuser="dumper-7"\npassword=${optionFileValue(password)}\n`);
    assert.deepEqual(input.env, { HOME: dirname(defaults) });
    assert.equal(input.filename, "shop.sql");
    input.cleanup?.();
    assert.equal(existsSync(defaults), false);
  });

  it("checks for the completion comment, unless the options leave comments out", () => {
    const input = mysqlInput({ type: "mysql", name: "shop", database: "shop" }, context);
    assert.equal(input.env, undefined);
    assert.equal(input.check?.(bytes(""), bytes("-- Dump completed on 2026-12-06\n")), undefined);
    assert.match(input.check?.(bytes(""), bytes("INSERT INTO t VALUES (1")) ?? "", /cut short/);
    input.cleanup?.();
    const compact = mysqlInput({ type: "mysql", name: "shop", database: "shop", options: ["--compact"] }, context);
    assert.equal(compact.check, undefined);
    compact.cleanup?.();
  });

  it("the client connects the same way", () => {
    const client = mysqlClient(source, context);
    try {
      const [program, defaults, ...rest] = client.command([...client.args, "-e", "SELECT 1"]);
      assert.match(program, /^(mariadb|mysql)$/);
      assert.deepEqual(rest, ["--host=db.internal", "--port=3307", "--protocol=TCP", "-e", "SELECT 1"]);
      assertPrivateFile(defaults.replace("--defaults-extra-file=", ""), /^\[client\]\nuser="dumper-7"\n/);
    } finally {
      client.cleanup?.();
    }
  });

  it("option-file values are double-quoted with escapes, so '#', quotes and spaces survive", () => {
    assert.equal(optionFileValue(' a#b"c\\d\n'), '" a#b\\"c\\\\d\\n"');
  });
});

describe("mongodb", () => {
  it("the URI and password go in a private config file, never argv", () => {
    process.env.UNIT_SOURCES_URI = "mongodb://backup:uri-secret@db.internal/app";
    try {
      const input = mongodbInput({
        type: "mongodb",
        name: "events",
        uri: { secret: "env", name: "UNIT_SOURCES_URI" },
        host: "ignored.internal",
        port: 27018,
        password: secret,
        database: "app",
        authenticationDatabase: "admin",
        options: ["--gzip"],
      }, context);
      const config = input.argv[3].replace("--config=", "");
      assert.deepEqual(input.argv, [
        "mongodump",
        "--archive",
        "--quiet",
        `--config=${config}`,
        "--authenticationDatabase=admin",
        "--db=app",
        "--gzip",
      ]);
      assertNotInArgv(input.argv, "uri-secret");
      assertNotInArgv(input.argv, "pa:ss");
      assertPrivateFile(
        config,
        `uri: "mongodb://backup:uri-secret@db.internal/app"\npassword: ${JSON.stringify(password)}\n`,
      );
      assert.equal(input.filename, "events.archive");
      input.cleanup?.();
      assert.equal(existsSync(config), false);
    } finally {
      delete process.env.UNIT_SOURCES_URI;
    }
  });

  it("without secrets: host, port and user in argv, no config file; the archive's magic number is checked", () => {
    const input = mongodbInput(
      { type: "mongodb", name: "events", host: "db.internal", port: 27018, user: "reader" },
      context,
    );
    assert.deepEqual(input.argv, [
      "mongodump",
      "--archive",
      "--quiet",
      "--host=db.internal",
      "--port=27018",
      "--username=reader",
    ]);
    assert.equal(input.cleanup, undefined);
    assert.equal(input.check?.(new Uint8Array([0x6d, 0xe2, 0x99, 0x81, 0]), new Uint8Array()), undefined);
    assert.match(input.check?.(bytes("{}"), new Uint8Array()) ?? "", /not a mongodump archive/);
  });
});

describe("sqlite", () => {
  it("sqlite3 -bail PATH .dump, a relative path read from the config's folder", () => {
    writeFileSync(join(context.configDir, "app.db"), "SQLite format 3\u0000 and the rest");
    const input = sqliteInput({ type: "sqlite", name: "app", path: "app.db" }, context.configDir);
    assert.deepEqual(input.argv, ["sqlite3", "-bail", join(context.configDir, "app.db"), ".dump"]);
    assert.equal(input.filename, "app.sql");
    assert.equal(input.check?.(bytes("PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\n"), bytes("COMMIT;\n")), undefined);
    assert.match(input.check?.(bytes("BEGIN TRANSACTION;"), bytes("INSERT")) ?? "", /cut short/);
    assert.match(input.check?.(bytes("hello"), bytes("COMMIT;")) ?? "", /does not start like an sqlite3 \.dump/);
  });

  it("an empty file is an empty database; a missing file or one that is not SQLite fails before anything runs", () => {
    writeFileSync(join(context.configDir, "empty.db"), "");
    assert.equal(sqliteInput({ type: "sqlite", name: "e", path: "empty.db" }, context.configDir).kind, "stream");
    assert.throws(
      () => sqliteInput({ type: "sqlite", name: "gone", path: "gone.db" }, context.configDir),
      { name: "SourceError", message: /source gone: SQLite database .*gone\.db does not exist/ },
    );
    writeFileSync(join(context.configDir, "text.db"), "not a database at all");
    assert.throws(
      () => sqliteInput({ type: "sqlite", name: "text", path: "text.db" }, context.configDir),
      { name: "SourceError", message: /text\.db is not an SQLite database/ },
    );
  });
});

describe("files", () => {
  it("paths for restic, relative ones from the config's folder, with the exclude patterns", () => {
    mkdirSync(join(context.configDir, "uploads"), { recursive: true });
    const input = filesInput(
      { type: "files", name: "uploads", paths: ["uploads", root], exclude: ["*.tmp"] },
      context.configDir,
    );
    assert.deepEqual(input, {
      kind: "paths",
      paths: [join(context.configDir, "uploads"), root],
      flags: ["--exclude", "*.tmp"],
    });
  });

  it("the typed options become restic backup flags, exclude files from the config's folder, extraArgs last", () => {
    mkdirSync(join(context.configDir, "uploads"), { recursive: true });
    writeFileSync(join(context.configDir, "excludes.txt"), "*.log\n");
    const input = filesInput({
      type: "files",
      name: "uploads",
      paths: ["uploads"],
      exclude: ["*.tmp"],
      excludeCaches: true,
      oneFileSystem: true,
      excludeIfPresent: [".nobackup", ".skip"],
      excludeLargerThan: "2G",
      excludeFile: "excludes.txt",
      extraArgs: ["--iexclude", "*.BAK"],
    }, context.configDir);
    assert.deepEqual(input.flags, [
      "--exclude",
      "*.tmp",
      "--exclude-caches",
      "--one-file-system",
      "--exclude-if-present",
      ".nobackup",
      "--exclude-if-present",
      ".skip",
      "--exclude-larger-than",
      "2G",
      "--exclude-file",
      join(context.configDir, "excludes.txt"),
      "--iexclude",
      "*.BAK",
    ]);
  });

  it("a missing exclude file is an error: without it, what it excludes would be backed up", () => {
    mkdirSync(join(context.configDir, "uploads"), { recursive: true });
    assert.throws(
      () =>
        filesInput(
          { type: "files", name: "uploads", paths: ["uploads"], excludeFile: ["missing.txt"] },
          context.configDir,
        ),
      { name: "SourceError", message: new RegExp(`excludeFile ${join(context.configDir, "missing.txt")} not found`) },
    );
  });

  it("a missing path is an error naming every missing one, never skipped", () => {
    assert.throws(
      () => filesInput({ type: "files", name: "docs", paths: ["uploads", "a", "/b"] }, context.configDir),
      {
        name: "SourceError",
        message: `source docs: paths ${
          join(context.configDir, "a")
        }, /b not found; fix the path in the config or remove it (a missing path is never skipped silently)`,
      },
    );
  });
});

describe("command", () => {
  it("a string runs with bash -o pipefail -c; env values resolved from secret references into the environment", () => {
    const input = commandInput({
      type: "command",
      name: "redis",
      run: "redis-cli --rdb - | cat",
      filename: "dump.rdb",
      env: { REDISCLI_AUTH: secret, MODE: "full" },
    }, context);
    assert.deepEqual(input.argv, ["bash", "-o", "pipefail", "-c", "redis-cli --rdb - | cat"]);
    assert.deepEqual(input.env, { REDISCLI_AUTH: password, MODE: "full" });
    assert.equal(input.filename, "dump.rdb");
    assert.equal(input.package, "bash");
  });

  it("a list runs the program directly", () => {
    const input = commandInput(
      { type: "command", name: "etcd", run: ["etcdctl", "snapshot", "save", "-"], filename: "etcd.db" },
      context,
    );
    assert.deepEqual(input.argv, ["etcdctl", "snapshot", "save", "-"]);
    assert.deepEqual(input.env, {});
    assert.equal(input.package, "etcdctl");
  });
});

describe("inside a container (container:)", () => {
  const inContainer = { container: "db-1", containerRuntime: "podman" as const };

  it("postgres: pg_dump through podman exec -i, the password in PGPASSWORD named by -e, no pgpass file", () => {
    const input = postgresInput({
      type: "postgres",
      name: "shop",
      host: "db.internal",
      port: 5433,
      database: "shop",
      user: "dumper",
      password: secret,
      options: ["--exclude-table=audit"],
      ...inContainer,
    }, context);
    assert.deepEqual(input.argv, [
      "podman",
      "exec",
      "-i",
      "-e",
      "PGCONNECT_TIMEOUT",
      "-e",
      "PGAPPNAME",
      "-e",
      "PGPASSWORD",
      "db-1",
      "pg_dump",
      "-Fc",
      "-Z0",
      "--no-password",
      "--host=db.internal",
      "--port=5433",
      "--username=dumper",
      "--exclude-table=audit",
      "--dbname=shop",
    ]);
    assert.deepEqual(input.env, { PGCONNECT_TIMEOUT: "10", PGAPPNAME: "backupctl", PGPASSWORD: password });
    assertNotInArgv(input.argv, "pa:ss");
    assert.equal(input.cleanup, undefined);
    assert.equal(input.package, "podman");
  });

  it("mysql: mariadb-dump or mysqldump chosen in the container, --user in argv, the password in MYSQL_PWD", () => {
    const input = mysqlInput(
      { type: "mysql", name: "wiki", database: "wiki", user: "dumper", password: secret, ...inContainer },
      context,
    );
    assert.deepEqual(input.argv.slice(0, 8), ["podman", "exec", "-i", "-e", "MYSQL_PWD", "db-1", "sh", "-c"]);
    assert.deepEqual(input.argv.slice(9), [
      "mariadb-dump",
      "--user=dumper",
      "--single-transaction",
      "--quick",
      "--routines",
      "--events",
      "--triggers",
      "--hex-blob",
      "--",
      "wiki",
    ]);
    assert.deepEqual(input.env, { MYSQL_PWD: password });
    assertNotInArgv(input.argv, "pa:ss");
    assert.equal(input.cleanup, undefined);
  });

  it("mongodb: the config reaches mongodump on its stdin from the exec's environment, then leaves it", () => {
    const input = mongodbInput(
      { type: "mongodb", name: "events", password: secret, user: "reader", ...inContainer },
      context,
    );
    assert.deepEqual(input.argv.slice(0, 6), ["podman", "exec", "-i", "-e", "BACKUPCTL_MONGODUMP_CONFIG", "db-1"]);
    assertNotInArgv(input.argv, "pa:ss");
    assert.equal(input.cleanup, undefined);
    // What runs in the container, run here with a stand-in mongodump that shows what it was given.
    const bin = mkdtempSync(join(root, "bin-"));
    writeFileSync(
      join(bin, "mongodump"),
      '#!/bin/sh\necho "args: $*"\necho "variable: ${BACKUPCTL_MONGODUMP_CONFIG:-unset}"\ncat /dev/stdin\n',
      { mode: 0o755 },
    );
    const [program, ...args] = input.argv.slice(6);
    const ran = spawnSync(program, args, {
      encoding: "utf8",
      env: { PATH: `${bin}:${process.env.PATH}`, ...input.env },
    });
    assert.equal(ran.status, 0, ran.stderr);
    assert.equal(
      ran.stdout,
      "args: --config=/dev/stdin --archive --quiet --username=reader\nvariable: unset\n" +
        `password: ${JSON.stringify(password)}\n`,
    );
  });
});
