/**
 * `backupctl restore` end to end, with a real PostgreSQL cluster and MariaDB server on 127.0.0.1, SQLite, gpg, age
 * and restic: every kind of source is backed up with `apply`, then restored both ways (`--to DIR`, loaded by hand
 * into a fresh database; `--into-database --target-db URL`) and compared with the source row for row. Encrypted
 * projects restore transparently, `--snapshot` picks an older state, an unknown id names the nearest snapshots,
 * `--print-commands` prints working commands without a secret, the project's own database and a SQLite file with
 * tables are refused (restore_safety_test.ts has the other refusals), and every restore is audited as a `restore`
 * stage.
 */
import assert from "node:assert/strict";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { after, before, describe, it } from "node:test";
import { type CliResult, runCli, runTool } from "../support/cli.ts";
import { mariadbIdent, type MariadbServer, startMariadb } from "../support/mariadb.ts";
import { ident, type PostgresServer, startPostgres } from "../support/postgres.ts";

/** The clock of the first apply and of the second one (a new backup of `lite` one day later). */
const firstDay = "2027-01-04T10:00:00Z";
const nextDay = "2027-01-05T10:00:00Z";

const show = (result: CliResult) => `exit ${result.code}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`;

/** Fails unless `actual` holds exactly the rows of `expected`, in order, naming the first row that differs. */
function assertSameRows(what: string, actual: string[], expected: string[]): void {
  if (!what.endsWith(".empty_table")) assert.ok(expected.length > 0, `${what}: the source has rows to compare`);
  for (let i = 0; i < Math.min(actual.length, expected.length); i++) {
    assert.equal(actual[i], expected[i], `${what}: row ${i + 1} differs`);
  }
  assert.equal(actual.length, expected.length, `${what}: row count`);
}

/** Runs a program with a file as its stdin (dumps are binary: never through a JS string). */
function runWithStdin(program: string, args: string[], file: string, env: Record<string, string> = {}) {
  return new Promise<{ code: number | null; stderr: string }>((resolve) => {
    const fd = openSync(file, "r");
    const child = spawn(program, args, { stdio: [fd, "ignore", "pipe"], env: { ...process.env, ...env } });
    let stderr = "";
    child.stderr!.on("data", (chunk) => (stderr += chunk));
    child.on("close", (code) => resolve({ code, stderr }));
  });
}

/** Every file under `dir`, as relative path → bytes (hex). */
function filesOf(dir: string): Record<string, string> {
  const found: Record<string, string> = {};
  const walk = (at: string) => {
    for (const name of readdirSync(at)) {
      const path = join(at, name);
      if (statSync(path).isDirectory()) walk(path);
      else found[relative(dir, path)] = readFileSync(path).toString("hex");
    }
  };
  walk(dir);
  return found;
}

describe("restore: PostgreSQL, MariaDB, SQLite and files, plain and encrypted, both ways", () => {
  let pg: PostgresServer;
  let db: MariadbServer;
  let dir = "";
  let config = "";
  let gpgHome = "";
  const secrets = {
    RESTORE_RESTIC_PASSWORD: `restic-restore-${randomBytes(5).toString("hex")}`,
    PG_BACKUP_PASSWORD: `pg-backup-${randomBytes(5).toString("hex")}`,
    // ':' and '\' must survive the pgpass file a --target-db password goes through.
    PG_RESTORER_PASSWORD: `rst:pw\\${randomBytes(5).toString("hex")}`,
    MDB_BACKUP_PASSWORD: `mdb-backup-${randomBytes(5).toString("hex")}`,
    // Quotes and '#' must survive the client's option file.
    MDB_RESTORER_PASSWORD: `rst "m" #${randomBytes(5).toString("hex")}`,
    GPG_SECRET_KEY: "",
    AGE_IDENTITY: "",
  };
  /** Short snapshot ids apply printed, by "project/source" (the first apply's, then `lite/app@2` for the second). */
  const snapshot: Record<string, string> = {};
  /** Restores run so far, as the audit must list them: project, source, status, short snapshot id. */
  const restores: { project: string; source: string; status: string; snapshot: string }[] = [];
  /** Into-database restores: the bytes they reported, by "project/source". */
  const out = (name: string) => join(dir, "out", name);

  const cli = (args: string[], options: { cwd?: string; timeoutMs?: number } = {}) =>
    runCli(["--config", config, ...args], {
      env: { ...secrets, BACKUPCTL_CONFIG: undefined, BACKUPCTL_STATE_DIR: undefined },
      ...options,
    });
  const restic = (args: string[]) =>
    runTool("restic", ["--no-cache", ...args], {
      env: { RESTIC_REPOSITORY: join(dir, "repository"), RESTIC_PASSWORD: secrets.RESTORE_RESTIC_PASSWORD },
    });
  const sqlite = (database: string, sql: string) => execFileSync("sqlite3", [database, sql]).toString();
  const stages = async () => {
    const result = await runTool("sqlite3", [
      "-json",
      join(dir, ".backupctl", "state.db"),
      "SELECT project, source, repository, status, snapshot_id, bytes, error FROM stages WHERE type = 'restore' " +
      "ORDER BY id;",
    ]);
    assert.equal(result.code, 0, result.stderr);
    return (result.stdout.trim() ? JSON.parse(result.stdout) : []) as {
      project: string;
      source: string;
      repository: string;
      status: string;
      snapshot_id: string;
      bytes: number | null;
      error: string | null;
    }[];
  };

  const pgTables = ["customers", "orders", "empty_table"];
  const pgRows = async (database: string, table: string) =>
    (await pg.psql(`SELECT to_json(t)::text FROM ${ident(table)} AS t ORDER BY id;`, database)).split("\n")
      .filter(Boolean);
  const assertPgCopy = async (copy: string) => {
    for (const table of pgTables) {
      assertSameRows(`${copy}.${table}`, await pgRows(copy, table), await pgRows("shop", table));
    }
    assert.equal(
      await pg.psql("SELECT last_value FROM orders_id_seq;", copy),
      await pg.psql("SELECT last_value FROM orders_id_seq;", "shop"),
      "the sequence continues where the source's did",
    );
  };
  /** Loads a restored .pgdump into a new database by hand (pg_restore) and compares it with the source. */
  const loadPgDump = async (file: string, database: string) => {
    await pg.createDatabase(database);
    const loaded = await runWithStdin("pg_restore", [
      "--no-owner",
      "--exit-on-error",
      "--host",
      pg.socketDir,
      "--port",
      String(pg.port),
      "--username",
      "postgres",
      "--dbname",
      database,
    ], file);
    assert.equal(loaded.code, 0, loaded.stderr);
    await assertPgCopy(database);
  };
  const mdbColumns: Record<string, string> = {
    customers: "id, name, note, balance, created_at, HEX(avatar), active",
    orders: "id, customer_id, amount, placed_at, label",
    empty_table: "id",
  };
  const mdbRows = async (database: string, table: string) =>
    (await db.sql(`SELECT ${mdbColumns[table]} FROM ${mariadbIdent(table)} ORDER BY id;`, database)).split("\n")
      .filter(Boolean);
  const assertMdbCopy = async (copy: string) => {
    for (const table of Object.keys(mdbColumns)) {
      assertSameRows(`${copy}.${table}`, await mdbRows(copy, table), await mdbRows("wiki", table));
    }
  };
  const liteRows = (database: string) =>
    sqlite(
      database,
      "SELECT quote(id), quote(name), quote(note), quote(balance), quote(avatar) FROM customers ORDER BY id;",
    )
      .split("\n").filter(Boolean);
  /** The SQLite source's rows when the first apply backed it up (the second apply changes them). */
  let liteFirstRows: string[] = [];

  before(async () => {
    for (
      const program of ["pg_dump", "pg_restore", "psql", "mariadb-dump", "mariadb", "sqlite3", "restic", "gpg", "age"]
    ) {
      assert.equal(spawnSync("sh", ["-c", 'command -v "$1"', "sh", program]).status, 0, `${program} is installed`);
    }
    dir = mkdtempSync(join(tmpdir(), "backupctl-e2e-restore-"));
    config = join(dir, "backup.config.ts");
    [pg, db] = await Promise.all([startPostgres(), startMariadb()]);

    await pg.createUser("backup", secrets.PG_BACKUP_PASSWORD);
    await pg.createUser("restorer", secrets.PG_RESTORER_PASSWORD);
    await pg.createDatabase("shop", "backup");
    for (const name of ["shop_into", "shop_gpg_into"]) await pg.createDatabase(name, "restorer");
    await pg.psql(
      `SET ROLE backup;
      CREATE TABLE customers (
        id integer PRIMARY KEY, name text NOT NULL, note text, balance numeric(12, 2), created_at timestamptz,
        avatar bytea, tags text[], active boolean
      );
      INSERT INTO customers
        SELECT i, 'customer ' || i, CASE WHEN i % 7 = 0 THEN E'line one\\nline "two" with ''quotes'' \\\\ and\\ttab ' || i END,
          i * 12.34 - 5000, timestamptz '2020-01-01 00:00:00+00' + i * interval '1 hour 17 minutes 3.123456 seconds',
          decode(md5(i::text), 'hex') || '\\x00ff00'::bytea, ARRAY['a', 'b,' || i, NULL], i % 3 = 0
        FROM generate_series(1, 2000) AS i;
      CREATE TABLE orders (
        id bigserial PRIMARY KEY, customer_id integer REFERENCES customers (id), amount numeric(10, 3),
        placed_at timestamp, payload jsonb
      );
      INSERT INTO orders (customer_id, amount, placed_at, payload)
        SELECT 1 + i % 2000, i / 7.0, timestamp '2024-02-29 12:00' - i * interval '1 minute 1.5 seconds',
          jsonb_build_object('n', i, 's', E'\\u00fc\\u00e9 "q" \\u2603')
        FROM generate_series(1, 3000) AS i;
      CREATE TABLE empty_table (id integer PRIMARY KEY);`,
      "shop",
    );

    for (const name of ["wiki", "wiki_into", "wiki_age_into", "wiki_from_file", "wiki_age_from_file"]) {
      await db.createDatabase(name);
    }
    await db.createUser("backup", secrets.MDB_BACKUP_PASSWORD, "wiki");
    await db.createUser("restorer", secrets.MDB_RESTORER_PASSWORD, "wiki_into");
    await db.sql("GRANT ALL PRIVILEGES ON `wiki_age_into`.* TO 'restorer'@'127.0.0.1';");
    await db.sql(
      `CREATE TABLE customers (
        id INT PRIMARY KEY, name VARCHAR(200) NOT NULL, note TEXT NULL, balance DECIMAL(12, 2),
        created_at DATETIME(6), avatar BLOB, active BOOLEAN
      ) ENGINE = InnoDB;
      INSERT INTO customers
        SELECT seq, CONCAT('customer ', seq),
          IF(seq % 7 = 0, CONCAT('line one\\nline "two" with ''quotes'' \\\\ and\\ttab ', seq), NULL),
          seq * 12.34 - 5000, TIMESTAMP('2020-01-01') + INTERVAL seq * 4623123456 MICROSECOND,
          UNHEX(CONCAT(MD5(seq), '00FF00')), seq % 3 = 0
        FROM seq_1_to_2000;
      CREATE TABLE orders (
        id BIGINT AUTO_INCREMENT PRIMARY KEY, customer_id INT, amount DECIMAL(10, 3), placed_at DATETIME,
        label VARCHAR(100) CHARACTER SET utf8mb4, FOREIGN KEY (customer_id) REFERENCES customers (id)
      ) ENGINE = InnoDB;
      INSERT INTO orders (customer_id, amount, placed_at, label)
        SELECT 1 + seq % 2000, seq / 7, TIMESTAMP('2024-02-29 12:00:00') - INTERVAL seq MINUTE,
          CONCAT(_utf8mb4 X'C3BCC3A9', ' "q" ', seq, _utf8mb4 X'E29883')
        FROM seq_1_to_3000;
      CREATE TABLE empty_table (id INT PRIMARY KEY) ENGINE = InnoDB;`,
      "wiki",
    );

    mkdirSync(join(dir, "data", "uploads", "nested", "deeper"), { recursive: true });
    sqlite(
      join(dir, "data", "app.db"),
      `CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, note TEXT, balance REAL, avatar BLOB);
      WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500)
      INSERT INTO customers SELECT i, 'customer ' || i,
        CASE WHEN i % 5 = 0 THEN 'line one' || char(10) || 'it''s "two"' END, i * 1.25 - 100, randomblob(16) FROM n;`,
    );
    writeFileSync(join(dir, "data", "uploads", "invoice 42.txt"), "Invoice 42\n");
    writeFileSync(join(dir, "data", "uploads", "nested", "deeper", "photo.bin"), randomBytes(70_000));

    gpgHome = mkdtempSync(join(tmpdir(), "bk-gpg-"));
    const gpg = (args: string[]) =>
      execFileSync("gpg", ["--batch", "--no-tty", ...args], {
        env: { ...process.env, GNUPGHOME: gpgHome },
        stdio: ["ignore", "pipe", "pipe"],
      }).toString();
    gpg([
      "--pinentry-mode",
      "loopback",
      "--passphrase",
      "",
      "--quick-generate-key",
      "restore test <restore@example.com>",
      "future-default",
      "default",
      "never",
    ]);
    writeFileSync(join(dir, "backup.pub.asc"), gpg(["--armor", "--export", "restore@example.com"]));
    secrets.GPG_SECRET_KEY = gpg(["--armor", "--export-secret-keys", "restore@example.com"]);
    assert.match(secrets.GPG_SECRET_KEY, /PRIVATE KEY BLOCK/);
    execFileSync("age-keygen", ["-o", join(dir, "age.key")], { stdio: "ignore" });
    secrets.AGE_IDENTITY = readFileSync(join(dir, "age.key"), "utf8");
    rmSync(join(dir, "age.key"));
    const recipient = /public key: (age1\w+)/.exec(secrets.AGE_IDENTITY)![1];

    const pgSource = `postgres({ host: "127.0.0.1", port: ${pg.port}, database: "shop", user: "backup", ` +
      `password: env("PG_BACKUP_PASSWORD") })`;
    const mdbSource = `mysql({ host: "127.0.0.1", port: ${db.port}, database: "wiki", user: "backup", ` +
      `password: env("MDB_BACKUP_PASSWORD") })`;
    const project = (sources: string, extra = "") =>
      `{ schedule: "0 3 * * *", sources: [${sources}], repositories: ["local"], retention: { last: 5 }${extra} }`;
    writeFileSync(
      config,
      `import { age, defineConfig, env, files, gpg, mysql, postgres, restic, sqlite } from "backupctl";

export default defineConfig({
  timezone: "UTC",
  repositories: { local: restic({ url: "repository", password: env("RESTORE_RESTIC_PASSWORD") }) },
  projects: {
    pg: ${project(pgSource)},
    maria: ${project(mdbSource)},
    lite: ${project(`sqlite({ path: "data/app.db" }), files({ name: "uploads", paths: ["data/uploads"] })`)},
    pg_gpg: ${project(pgSource, `, encrypt: gpg({ keyFile: "backup.pub.asc", secretKey: env("GPG_SECRET_KEY") })`)},
    maria_age: ${project(mdbSource, `, encrypt: age({ recipients: ["${recipient}"], identity: env("AGE_IDENTITY") })`)},
  },
});
`,
    );
  });

  after(async () => {
    if (gpgHome) {
      spawnSync("gpgconf", ["--kill", "gpg-agent"], { env: { ...process.env, GNUPGHOME: gpgHome }, stdio: "ignore" });
      rmSync(gpgHome, { recursive: true, force: true });
    }
    await Promise.all([pg?.stop(), db?.stop()]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("apply backs up every source; the encrypted projects' dumps are stored encrypted", async () => {
    const result = await cli(["apply", "--now", firstDay]);
    assert.equal(result.code, 0, show(result));
    for (const match of result.stdout.matchAll(/\+ backup (\S+) → local: snapshot ([0-9a-f]{8})/g)) {
      snapshot[match[1]] = match[2];
    }
    assert.deepEqual(
      Object.keys(snapshot).sort(),
      ["lite/app", "lite/uploads", "maria/wiki", "maria_age/wiki", "pg/shop", "pg_gpg/shop"],
    );
    const listed = await restic(["snapshots", "--json"]);
    assert.equal(listed.code, 0, listed.stderr);
    const paths = Object.fromEntries(
      (JSON.parse(listed.stdout) as { short_id: string; paths: string[] }[]).map((s) => [s.short_id, s.paths]),
    );
    assert.deepEqual(paths[snapshot["pg_gpg/shop"]], ["/shop.pgdump.gpg"]);
    assert.deepEqual(paths[snapshot["maria_age/wiki"]], ["/wiki.sql.age"]);
    assert.deepEqual(paths[snapshot["pg/shop"]], ["/shop.pgdump"]);
    liteFirstRows = liteRows(join(dir, "data", "app.db"));
  });

  it("PostgreSQL --to DIR writes the .pgdump (0600); pg_restore of it equals the source row for row", async () => {
    const result = await cli(["restore", "pg", "--to", out("pg")]);
    assert.equal(result.code, 0, show(result));
    const file = join(out("pg"), "shop.pgdump");
    assert.match(
      result.stdout,
      new RegExp(
        `^restored pg/shop \\(snapshot ${
          snapshot["pg/shop"]
        } of 2027-01-04T10:00:\\d\\d(\\.000)?Z, [\\d.]+ [KM]iB\\) from local to ${file}\n$`,
      ),
    );
    restores.push({ project: "pg", source: "shop", status: "succeeded", snapshot: snapshot["pg/shop"] });
    assert.equal(readFileSync(file).subarray(0, 5).toString("latin1"), "PGDMP");
    assert.equal(statSync(file).mode & 0o777, 0o600);
    await loadPgDump(file, "shop_from_file");
  });

  it("PostgreSQL --into-database --target-db postgresql://… restores into that database, row for row", async () => {
    const url = `postgresql://restorer@127.0.0.1:${pg.port}/shop_into?passwordEnv=PG_RESTORER_PASSWORD`;
    const result = await cli(["restore", "pg", "--into-database", "--target-db", url]);
    assert.equal(result.code, 0, show(result));
    assert.match(
      result.stdout,
      new RegExp(
        `^restored pg/shop \\(snapshot ${
          snapshot["pg/shop"]
        } of 2027-01-04T10:00:\\d\\d(\\.000)?Z, [\\d.]+ KiB\\) from local ` +
          `into postgres database shop_into on 127\\.0\\.0\\.1:${pg.port} in \\d+(ms|s)\n$`,
      ),
    );
    restores.push({ project: "pg", source: "shop", status: "succeeded", snapshot: snapshot["pg/shop"] });
    for (const value of Object.values(secrets)) {
      assert.ok(!(result.stdout + result.stderr).includes(value), "no secret shown");
    }
    await assertPgCopy("shop_into");
    assert.equal(
      (await pg.psql("SELECT tableowner FROM pg_tables WHERE tablename = 'orders';", "shop_into")).trim(),
      "restorer",
      "restored without the source's owners: the target's user owns the tables",
    );
    const bytes = (await stages()).at(-1)!.bytes;
    assert.equal(bytes, statSync(join(out("pg"), "shop.pgdump")).size, "the audit records the dump's size");
  });

  it("MariaDB --to DIR writes the .sql; mariadb < it equals the source row for row", async () => {
    const result = await cli(["restore", "maria", "--to", out("maria")]);
    assert.equal(result.code, 0, show(result));
    const file = join(out("maria"), "wiki.sql");
    assert.match(
      result.stdout,
      new RegExp(`^restored maria/wiki \\(snapshot ${snapshot["maria/wiki"]} of .*\\) from local to ${file}\n$`),
    );
    restores.push({ project: "maria", source: "wiki", status: "succeeded", snapshot: snapshot["maria/wiki"] });
    assert.match(readFileSync(file, "utf8"), /-- Dump completed/);
    const loaded = await runWithStdin(
      "mariadb",
      ["--no-defaults", `--socket=${db.socket}`, "--user=root", "wiki_from_file"],
      file,
    );
    assert.equal(loaded.code, 0, loaded.stderr);
    await assertMdbCopy("wiki_from_file");
  });

  it("MariaDB --into-database --target-db mysql://… restores into that database, row for row", async () => {
    const url = `mysql://restorer@127.0.0.1:${db.port}/wiki_into?passwordEnv=MDB_RESTORER_PASSWORD`;
    const result = await cli(["restore", "maria", "--into-database", "--target-db", url]);
    assert.equal(result.code, 0, show(result));
    assert.match(
      result.stdout,
      new RegExp(
        `^restored maria/wiki \\(snapshot ${
          snapshot["maria/wiki"]
        } of .*, [\\d.]+ KiB\\) from local into mysql database ` +
          `wiki_into on 127\\.0\\.0\\.1:${db.port} in \\S+\n$`,
      ),
    );
    restores.push({ project: "maria", source: "wiki", status: "succeeded", snapshot: snapshot["maria/wiki"] });
    await assertMdbCopy("wiki_into");
  });

  it("SQLite and files --to DIR: sqlite3 new.db < app.sql equals the source; the files have the same bytes", async () => {
    const result = await cli(["restore", "lite", "--to", out("lite")]);
    assert.equal(result.code, 0, show(result));
    const lines = result.stdout.trim().split("\n");
    assert.equal(lines.length, 2, show(result));
    assert.match(
      lines[0],
      new RegExp(
        `^restored lite/app \\(snapshot ${snapshot["lite/app"]} of .*\\) from local to ${
          join(out("lite"), "app.sql")
        }$`,
      ),
    );
    assert.match(
      lines[1],
      new RegExp(
        `^restored lite/uploads \\(snapshot ${snapshot["lite/uploads"]} of .*\\) from local to ${out("lite")}$`,
      ),
    );
    restores.push({ project: "lite", source: "app", status: "succeeded", snapshot: snapshot["lite/app"] });
    restores.push({ project: "lite", source: "uploads", status: "succeeded", snapshot: snapshot["lite/uploads"] });
    const copy = join(out("lite"), "new.db");
    const loaded = await runWithStdin("sqlite3", ["-bail", copy], join(out("lite"), "app.sql"));
    assert.equal(loaded.code, 0, loaded.stderr);
    assertSameRows("new.db customers", liteRows(copy), liteRows(join(dir, "data", "app.db")));
    // restic keeps the absolute paths below the target folder.
    const restored = filesOf(join(out("lite"), join(dir, "data", "uploads")));
    const original = filesOf(join(dir, "data", "uploads"));
    assert.deepEqual(Object.keys(restored).sort(), ["invoice 42.txt", "nested/deeper/photo.bin"]);
    assert.deepEqual(restored, original);
  });

  it("SQLite --into-database --target-db sqlite:PATH creates the file; relative paths start where backupctl runs", async () => {
    const cwd = join(dir, "elsewhere");
    mkdirSync(cwd);
    const result = await cli(
      ["restore", "lite", "--source", "app", "--into-database", "--target-db", "sqlite:into.db"],
      { cwd },
    );
    assert.equal(result.code, 0, show(result));
    assert.match(
      result.stdout,
      new RegExp(
        `^restored lite/app \\(snapshot ${snapshot["lite/app"]} of .*, [\\d.]+ KiB\\) from local into sqlite:${
          join(cwd, "into.db")
        } in \\S+\n$`,
      ),
    );
    restores.push({ project: "lite", source: "app", status: "succeeded", snapshot: snapshot["lite/app"] });
    assert.ok(!existsSync(join(dir, "into.db")), "not next to the config");
    assertSameRows("into.db customers", liteRows(join(cwd, "into.db")), liteRows(join(dir, "data", "app.db")));
  });

  it("gpg: both ways decrypt with the configured secretKey, transparently", async () => {
    const toDir = await cli(["restore", "pg_gpg", "--to", out("pg_gpg")]);
    assert.equal(toDir.code, 0, show(toDir));
    const file = join(out("pg_gpg"), "shop.pgdump");
    assert.match(
      toDir.stdout,
      new RegExp(`^restored pg_gpg/shop \\(snapshot ${snapshot["pg_gpg/shop"]} of .*\\) from local to ${file}\n$`),
    );
    restores.push({ project: "pg_gpg", source: "shop", status: "succeeded", snapshot: snapshot["pg_gpg/shop"] });
    assert.deepEqual(readdirSync(out("pg_gpg")), ["shop.pgdump"], "written decrypted, under the plain name");
    assert.equal(readFileSync(file).subarray(0, 5).toString("latin1"), "PGDMP");
    await loadPgDump(file, "shop_gpg_from_file");

    const url = `postgresql://restorer@127.0.0.1:${pg.port}/shop_gpg_into?passwordEnv=PG_RESTORER_PASSWORD`;
    const into = await cli(["restore", "pg_gpg", "--into-database", "--target-db", url]);
    assert.equal(into.code, 0, show(into));
    assert.match(into.stdout, /^restored pg_gpg\/shop \(snapshot [0-9a-f]{8} .* into postgres database shop_gpg_into /);
    restores.push({ project: "pg_gpg", source: "shop", status: "succeeded", snapshot: snapshot["pg_gpg/shop"] });
    await assertPgCopy("shop_gpg_into");
    for (const value of Object.values(secrets)) {
      assert.ok(!(toDir.stdout + toDir.stderr + into.stdout + into.stderr).includes(value), "no secret shown");
    }
  });

  it("age: both ways decrypt with the configured identity, transparently", async () => {
    const toDir = await cli(["restore", "maria_age", "--to", out("maria_age")]);
    assert.equal(toDir.code, 0, show(toDir));
    const file = join(out("maria_age"), "wiki.sql");
    assert.match(
      toDir.stdout,
      new RegExp(
        `^restored maria_age/wiki \\(snapshot ${snapshot["maria_age/wiki"]} of .*\\) from local to ${file}\n$`,
      ),
    );
    restores.push({ project: "maria_age", source: "wiki", status: "succeeded", snapshot: snapshot["maria_age/wiki"] });
    assert.deepEqual(readdirSync(out("maria_age")), ["wiki.sql"]);
    const loaded = await runWithStdin(
      "mariadb",
      ["--no-defaults", `--socket=${db.socket}`, "--user=root", "wiki_age_from_file"],
      file,
    );
    assert.equal(loaded.code, 0, loaded.stderr);
    await assertMdbCopy("wiki_age_from_file");

    const url = `mysql://restorer@127.0.0.1:${db.port}/wiki_age_into?passwordEnv=MDB_RESTORER_PASSWORD`;
    const into = await cli(["restore", "maria_age", "--into-database", "--target-db", url]);
    assert.equal(into.code, 0, show(into));
    assert.match(into.stdout, /^restored maria_age\/wiki \(snapshot [0-9a-f]{8} .* into mysql database wiki_age_into /);
    restores.push({ project: "maria_age", source: "wiki", status: "succeeded", snapshot: snapshot["maria_age/wiki"] });
    await assertMdbCopy("wiki_age_into");
    for (const value of Object.values(secrets)) {
      assert.ok(!(toDir.stdout + toDir.stderr + into.stdout + into.stderr).includes(value), "no secret shown");
    }
  });

  it("--snapshot SHORT_ID restores that older state; latest restores the newer one", async () => {
    const source = join(dir, "data", "app.db");
    sqlite(
      source,
      "UPDATE customers SET name = name || ' (renamed)' WHERE id % 2 = 0; DELETE FROM customers WHERE id > 450;",
    );
    const newRows = liteRows(source);
    assert.notDeepEqual(newRows, liteFirstRows);
    const applied = await cli(["apply", "--now", nextDay, "--project", "lite"]);
    assert.equal(applied.code, 0, show(applied));
    const second = /\+ backup lite\/app → local: snapshot ([0-9a-f]{8})/.exec(applied.stdout)?.[1];
    assert.ok(second && second !== snapshot["lite/app"], show(applied));
    snapshot["lite/app@2"] = second;

    const older = await cli([
      "restore",
      "lite",
      "--source",
      "app",
      "--snapshot",
      snapshot["lite/app"],
      "--into-database",
      "--target-db",
      `sqlite:${out("older.db")}`,
    ]);
    assert.equal(older.code, 0, show(older));
    assert.match(older.stdout, new RegExp(`\\(snapshot ${snapshot["lite/app"]} of 2027-01-04T10:00:\\d\\d`));
    restores.push({ project: "lite", source: "app", status: "succeeded", snapshot: snapshot["lite/app"] });
    assertSameRows("older.db customers", liteRows(out("older.db")), liteFirstRows);

    const latest = await cli([
      "restore",
      "lite",
      "--source",
      "app",
      "--into-database",
      "--target-db",
      `sqlite:${out("latest.db")}`,
    ]);
    assert.equal(latest.code, 0, show(latest));
    assert.match(latest.stdout, new RegExp(`\\(snapshot ${second} of 2027-01-05T10:00:\\d\\d`));
    restores.push({ project: "lite", source: "app", status: "succeeded", snapshot: second });
    assertSameRows("latest.db customers", liteRows(out("latest.db")), newRows);
  });

  it("an id that matches no snapshot exits 64 and names the nearest snapshots; nothing is written", async () => {
    const result = await cli(["restore", "lite", "--source", "app", "--snapshot", "0000beef", "--to", out("none")]);
    assert.equal(result.code, 64, show(result));
    assert.match(
      result.stderr,
      /^Error: no snapshot 0000beef of lite\/app in local\. The nearest: [0-9a-f]{8} \(2027-01-0[45]T10:00:\d\dZ\), [0-9a-f]{8} \(2027-01-0[45]T10:00:\d\dZ\) \(`backupctl snapshots -p PROJECT` lists them all\)\.\n$/,
    );
    for (const id of [snapshot["lite/app"], snapshot["lite/app@2"]]) {
      assert.ok(result.stderr.includes(id), `lists ${id}`);
    }
    assert.ok(!result.stderr.includes(snapshot["lite/uploads"]), "only snapshots of that source");
    assert.ok(!existsSync(out("none")), "no folder created");
    const tooShort = await cli(["restore", "lite", "--source", "app", "--snapshot", "abc", "--to", out("none")]);
    assert.equal(tooShort.code, 64, show(tooShort));
    assert.match(tooShort.stderr, /expected "latest" or a snapshot id \(at least 4 hex characters\), got "abc"/);
  });

  it("--print-commands prints working restic dump lines and references secrets without their values", async () => {
    const before = (await stages()).length;
    const plain = await cli(["restore", "pg", "--print-commands"]);
    assert.equal(plain.code, 0, show(plain));
    const id = snapshot["pg/shop"];
    assert.equal(
      plain.stdout,
      [
        `# pg/shop, snapshot ${id} in local`,
        "# The repository (each secret read from where the config keeps it):",
        "unset RESTIC_REPOSITORY_FILE RESTIC_PASSWORD_FILE RESTIC_PASSWORD_COMMAND RESTIC_KEY_HINT",
        `export RESTIC_REPOSITORY=${join(dir, "repository")}`,
        'export RESTIC_PASSWORD="${RESTORE_RESTIC_PASSWORD:?set RESTORE_RESTIC_PASSWORD first}"',
        "# The dump as a file:",
        `restic dump ${id} /shop.pgdump > shop.pgdump`,
        `# Or straight into PostgreSQL database shop on 127.0.0.1:${pg.port}, the source's own (--target-db URL ` +
        "prints another); created when missing. In one transaction: a database that still holds these tables " +
        "refuses it.",
        `export PGHOST=127.0.0.1 PGPORT=${pg.port} PGUSER=backup`,
        'export PGPASSWORD="${PG_BACKUP_PASSWORD:?set PG_BACKUP_PASSWORD first}"',
        `psql --no-psqlrc --dbname=postgres --tuples-only --no-align --command="SELECT 1 FROM pg_database WHERE ` +
        `datname = 'shop'" | grep -q 1 || createdb shop`,
        `restic dump ${id} /shop.pgdump | pg_restore --no-owner --no-privileges --exit-on-error --single-transaction ` +
        "--dbname=shop",
        "",
      ].join("\n"),
    );
    const encrypted = await cli(["restore", "pg_gpg", "--print-commands"]);
    assert.equal(encrypted.code, 0, show(encrypted));
    const gpgId = snapshot["pg_gpg/shop"];
    assert.ok(
      encrypted.stdout.includes(
        "printf '%s\\n' \"${GPG_SECRET_KEY:?set GPG_SECRET_KEY first}\" | gpg --batch --quiet --import\n" +
          "# The dump as a file:\n" +
          `restic dump ${gpgId} /shop.pgdump.gpg | gpg --batch --quiet --decrypt > shop.pgdump\n`,
      ),
      encrypted.stdout,
    );
    const aged = await cli(["restore", "maria_age", "--print-commands"]);
    assert.equal(aged.code, 0, show(aged));
    assert.ok(
      aged.stdout.includes(
        `restic dump ${snapshot["maria_age/wiki"]} /wiki.sql.age | age --decrypt -i <(printf '%s\\n' ` +
          `"\${AGE_IDENTITY:?set AGE_IDENTITY first}") | mariadb --host=127.0.0.1 --port=${db.port} --protocol=TCP ` +
          "--user=backup -- wiki\n",
      ),
      aged.stdout,
    );
    for (const result of [plain, encrypted, aged]) {
      for (const [name, value] of Object.entries(secrets)) {
        assert.ok(!(result.stdout + result.stderr).includes(value), `${name}'s value is never printed`);
      }
    }
    assert.equal((await stages()).length, before, "printing commands restores nothing");

    // The printed lines work as they are: run them with the repository's environment (and gpg's keyring).
    const work = join(dir, "manual");
    mkdirSync(work);
    const env = {
      ...process.env,
      RESTIC_REPOSITORY: join(dir, "repository"),
      RESTIC_PASSWORD: secrets.RESTORE_RESTIC_PASSWORD,
      RESTIC_CACHE_DIR: join(dir, "restic-cache"),
      GNUPGHOME: gpgHome,
    };
    const line = (text: string, start: string) =>
      text.split("\n").find((l) => l.startsWith(start) && l.includes(" > "))!;
    for (
      const [command, restoredBy] of [[line(plain.stdout, "restic dump"), "pg"], [
        line(encrypted.stdout, "restic dump"),
        "pg_gpg",
      ]]
    ) {
      rmSync(join(work, "shop.pgdump"), { force: true });
      const ran = spawnSync("sh", ["-c", command], { cwd: work, env, encoding: "utf8" });
      assert.equal(ran.status, 0, `${command}: ${ran.stderr}`);
      assert.ok(
        readFileSync(join(work, "shop.pgdump")).equals(readFileSync(join(out(restoredBy), "shop.pgdump"))),
        `${command} gives the file restore --to wrote`,
      );
    }
  });

  it("the project's own database and a SQLite file with tables are refused without --force", async () => {
    const shopBefore = await pgRows("shop", "orders");
    const ownPg = await cli([
      "restore",
      "pg",
      "--into-database",
      "--target-db",
      `postgresql://backup@localhost:${pg.port}/shop?passwordEnv=PG_BACKUP_PASSWORD`,
    ]);
    assert.equal(ownPg.code, 64, show(ownPg));
    assert.equal(
      ownPg.stderr,
      `Error: the target is pg's own postgres database (postgres database shop on localhost:${pg.port}): restoring ` +
        "there overwrites production data. Restore into another database, or add --force if that is what you want\n",
    );
    assert.deepEqual(await pgRows("shop", "orders"), shopBefore);

    const ownMdb = await cli([
      "restore",
      "maria",
      "--into-database",
      "--target-db",
      `mysql://backup@127.0.0.1:${db.port}/wiki?passwordEnv=MDB_BACKUP_PASSWORD`,
    ]);
    assert.equal(ownMdb.code, 64, show(ownMdb));
    assert.match(
      ownMdb.stderr,
      /^Error: the target is maria's own mysql database \(mysql database wiki on 127\.0\.0\.1:\d+\)/,
    );

    const appDb = join(dir, "data", "app.db");
    const ownLite = await cli([
      "restore",
      "lite",
      "--source",
      "app",
      "--into-database",
      "--target-db",
      `sqlite:${appDb}`,
    ]);
    assert.equal(ownLite.code, 64, show(ownLite));
    assert.match(ownLite.stderr, new RegExp(`^Error: the target is lite's own sqlite database \\(sqlite:${appDb}\\)`));

    const existing = out("existing.db");
    sqlite(existing, "CREATE TABLE keep (note TEXT); INSERT INTO keep VALUES ('mine');");
    const bytes = readFileSync(existing);
    const taken = await cli([
      "restore",
      "lite",
      "--source",
      "app",
      "--into-database",
      "--target-db",
      `sqlite:${existing}`,
    ]);
    assert.equal(taken.code, 64, show(taken));
    assert.equal(
      taken.stderr,
      `Error: nothing restored: sqlite:${existing} is not empty (1 table: keep), and the dump would be mixed into ` +
        "what it holds. Restore into an empty database, or add --overwrite to restore into it anyway\n",
    );
    assert.ok(readFileSync(existing).equals(bytes), "the existing file is untouched");
  });

  it("a restore that fails is audited as failed with the client's error", async () => {
    // No table, so the restore starts (a database with tables is refused before: restore_safety_test.ts), but a
    // composite type named like a table of the dump: pg_restore fails at that table's CREATE TABLE.
    await pg.createDatabase("shop_clash", "restorer");
    await pg.psql("CREATE TYPE empty_table AS (id integer);", "shop_clash");
    const url = `postgresql://restorer@127.0.0.1:${pg.port}/shop_clash?passwordEnv=PG_RESTORER_PASSWORD`;
    // pg_restore quits at once while restic still has most of the dump to write: that must not hang.
    const result = await cli(["restore", "pg", "--into-database", "--target-db", url], { timeoutMs: 60_000 });
    assert.equal(result.code, 1, show(result));
    assert.match(result.stderr, /restore of pg\/shop failed/);
    assert.match(result.stderr, /pg_restore failed \(exit 1\)/);
    assert.match(result.stderr, /relation "empty_table" already exists/);
    assert.ok(!result.stderr.includes(secrets.PG_RESTORER_PASSWORD), "no password shown");
    restores.push({ project: "pg", source: "shop", status: "failed", snapshot: snapshot["pg/shop"] });
  });

  it("every restore is audited as a restore stage: project, source, repository, snapshot, outcome", async () => {
    const audited = await stages();
    assert.deepEqual(
      audited.map((s) => ({
        project: s.project,
        source: s.source,
        status: s.status,
        snapshot: s.snapshot_id?.slice(0, 8),
      })),
      restores,
    );
    assert.ok(audited.every((s) => s.repository === "local"));
    assert.ok(audited.every((s) => s.snapshot_id?.length === 64), "full snapshot ids");
    const failed = audited.at(-1)!;
    assert.match(failed.error ?? "", /^into a database: pg_restore failed .*relation "empty_table" already exists/s);
    for (const stage of audited) {
      for (const value of Object.values(secrets)) assert.ok(!(stage.error ?? "").includes(value), "no secret audited");
    }
  });
});
