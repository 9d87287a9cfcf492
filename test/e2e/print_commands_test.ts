/**
 * `restore --print-commands` prints commands an operator can run as printed. Every kind of source (PostgreSQL with
 * gpg, MariaDB with age, SQLite, files, command()) is backed up with `apply` into real restic repositories (one whose
 * password is an env() secret, one whose password is a file() secret); the printed commands are then run with bash
 * in an environment that holds only PATH, a fresh HOME and the variables the output itself names, after the
 * databases were lost (dropped, deleted) — and the data must come back row for row. No secret value is ever printed.
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type CliResult, runCli } from "../support/cli.ts";
import { type MariadbServer, startMariadb } from "../support/mariadb.ts";
import { type PostgresServer, startPostgres } from "../support/postgres.ts";

const show = (result: CliResult) => `exit ${result.code}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`;

describe("restore --print-commands: the printed commands restore every kind of source, run as printed", () => {
  let pg: PostgresServer;
  let db: MariadbServer;
  let dir = "";
  let config = "";
  /** Where the printed commands' mktemp folders (a gpg home) go, so their agents can be stopped. */
  let scratch = "";
  const secrets = {
    PC_RESTIC_PASSWORD: `restic-env-${randomBytes(6).toString("hex")}`,
    PC_PG_PASSWORD: `pg 'pw' $x ${randomBytes(6).toString("hex")}`,
    PC_MDB_PASSWORD: `mdb "pw" #${randomBytes(6).toString("hex")}`,
    PC_GPG_KEY: "",
  };
  /** Secrets kept in files (the config names their paths): their values must not be printed either. */
  const fileSecrets = {
    restic: `restic-file-${randomBytes(6).toString("hex")}`,
    gpgPassphrase: `gpg-pass-${randomBytes(6).toString("hex")}`,
    ageIdentity: "",
  };
  const cli = (args: string[]) =>
    runCli(["--config", config, ...args], {
      env: { ...secrets, BACKUPCTL_CONFIG: undefined, BACKUPCTL_STATE_DIR: undefined },
    });
  const pgRows = (database: string) => pg.psql("SELECT to_json(t)::text FROM customers AS t ORDER BY id;", database);
  const mdbRows = (database: string) =>
    db.sql("SELECT id, name, note, balance, HEX(avatar) FROM customers ORDER BY id;", database);
  const liteRows = (path: string) =>
    execFileSync("sqlite3", [path, "SELECT quote(id), quote(name), quote(avatar) FROM customers ORDER BY id;"])
      .toString();

  /**
   * Prints the commands, checks that no secret shows, and runs them with bash (-e, pipefail) in `work`, with only
   * PATH, HOME and the variables the output references (`"${NAME:?…}"`) set.
   */
  const printAndRun = async (args: string[], work: string) => {
    const printed = await cli(["restore", ...args, "--print-commands"]);
    assert.equal(printed.code, 0, show(printed));
    for (const [name, value] of [...Object.entries(secrets), ...Object.entries(fileSecrets)]) {
      for (const part of value.split("\n").filter((line) => line.length > 20 || line === value)) {
        assert.ok(!printed.stdout.includes(part) && !printed.stderr.includes(part), `${name}'s value is never printed`);
      }
    }
    const referenced = [...printed.stdout.matchAll(/\$\{(\w+):\?/g)].map((match) => match[1]);
    const env: Record<string, string> = { PATH: process.env.PATH!, HOME: join(work, "home"), TMPDIR: scratch };
    for (const name of referenced) {
      assert.ok(name in secrets, `the output references ${name}, a variable of the config`);
      env[name] = secrets[name as keyof typeof secrets];
    }
    mkdirSync(join(work, "home"), { recursive: true });
    const ran = spawnSync("bash", ["-e", "-o", "pipefail"], {
      cwd: work,
      env,
      input: printed.stdout,
      encoding: "utf8",
      timeout: 120_000,
    });
    assert.equal(ran.status, 0, `the printed commands fail:\n${printed.stdout}\n--- stderr\n${ran.stderr}`);
    return { printed: printed.stdout, referenced };
  };

  before(async () => {
    for (const program of ["psql", "pg_restore", "createdb", "mariadb", "sqlite3", "restic", "gpg", "age", "bash"]) {
      assert.equal(spawnSync("sh", ["-c", 'command -v "$1"', "sh", program]).status, 0, `${program} is installed`);
    }
    dir = mkdtempSync(join(tmpdir(), "backupctl-e2e-print-"));
    scratch = join(dir, "scratch");
    mkdirSync(scratch);
    config = join(dir, "backup.config.ts");
    [pg, db] = await Promise.all([startPostgres(), startMariadb()]);

    await pg.createUser("backup", secrets.PC_PG_PASSWORD);
    // The printed commands create the lost database again as the backup user.
    await pg.psql("ALTER ROLE backup CREATEDB;");
    await pg.createDatabase("shop", "backup");
    await pg.psql(
      `SET ROLE backup;
      CREATE TABLE customers (id integer PRIMARY KEY, name text NOT NULL, note text, avatar bytea);
      INSERT INTO customers SELECT i, 'customer ' || i, CASE WHEN i % 3 = 0 THEN E'it''s\\n"two"' END,
        decode(md5(i::text), 'hex') FROM generate_series(1, 300) AS i;`,
      "shop",
    );
    await db.createDatabase("wiki");
    await db.createUser("backup", secrets.PC_MDB_PASSWORD, "wiki");
    await db.sql("GRANT ALL PRIVILEGES ON `wiki_copy`.* TO 'backup'@'127.0.0.1';");
    await db.sql(
      `CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(100) NOT NULL, note TEXT NULL,
        balance DECIMAL(10, 2), avatar BLOB) ENGINE = InnoDB;
      INSERT INTO customers SELECT seq, CONCAT('customer ', seq), IF(seq % 3 = 0, 'it''s "two"', NULL),
        seq * 1.25 - 100, UNHEX(MD5(seq)) FROM seq_1_to_300;`,
      "wiki",
    );
    mkdirSync(join(dir, "data", "uploads", "nested"), { recursive: true });
    execFileSync("sqlite3", [
      join(dir, "data", "app.db"),
      `CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, avatar BLOB);
      WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300)
      INSERT INTO customers SELECT i, 'customer ' || i, randomblob(16) FROM n;`,
    ]);
    writeFileSync(join(dir, "data", "uploads", "invoice 42.txt"), "Invoice 42\n");
    writeFileSync(join(dir, "data", "uploads", "nested", "photo.bin"), randomBytes(20_000));

    mkdirSync(join(dir, "secrets"), { mode: 0o700 });
    writeFileSync(join(dir, "secrets", "restic-password"), `${fileSecrets.restic}\n`, { mode: 0o600 });
    writeFileSync(join(dir, "secrets", "gpg-passphrase"), `${fileSecrets.gpgPassphrase}\n`, { mode: 0o600 });
    const gpgHome = mkdtempSync(join(scratch, "gpg-"));
    const gpg = (args: string[]) =>
      execFileSync("gpg", ["--batch", "--no-tty", ...args], {
        env: { ...process.env, GNUPGHOME: gpgHome },
        stdio: ["ignore", "pipe", "pipe"],
      }).toString();
    gpg([
      "--pinentry-mode",
      "loopback",
      "--passphrase",
      fileSecrets.gpgPassphrase,
      "--quick-generate-key",
      "print test <print@example.com>",
      "future-default",
      "default",
      "never",
    ]);
    writeFileSync(join(dir, "backup.pub.asc"), gpg(["--armor", "--export", "print@example.com"]));
    secrets.PC_GPG_KEY = gpg([
      "--pinentry-mode",
      "loopback",
      "--passphrase",
      fileSecrets.gpgPassphrase,
      "--armor",
      "--export-secret-keys",
      "print@example.com",
    ]);
    assert.match(secrets.PC_GPG_KEY, /PRIVATE KEY BLOCK/);
    execFileSync("age-keygen", ["-o", join(dir, "secrets", "age.key")], { stdio: "ignore" });
    fileSecrets.ageIdentity = readFileSync(join(dir, "secrets", "age.key"), "utf8");
    const recipient = /public key: (age1\w+)/.exec(fileSecrets.ageIdentity)![1];

    const project = (sources: string, repository: string, extra = "") =>
      `{ schedule: "0 3 * * *", sources: [${sources}], repositories: ["${repository}"], retention: { last: 5 }${extra} }`;
    writeFileSync(
      config,
      `import { age, command, defineConfig, env, file, files, gpg, mysql, postgres, restic, sqlite } from "backupctl";

export default defineConfig({
  timezone: "UTC",
  repositories: {
    vault: restic({ url: "vault", password: env("PC_RESTIC_PASSWORD") }),
    box: restic({ url: "box", password: file("secrets/restic-password") }),
  },
  projects: {
    shop: ${
        project(
          `postgres({ host: "127.0.0.1", port: ${pg.port}, database: "shop", user: "backup", ` +
            `password: env("PC_PG_PASSWORD") })`,
          "vault",
          `, encrypt: gpg({ keyFile: "backup.pub.asc", secretKey: env("PC_GPG_KEY"), ` +
            `passphrase: file("secrets/gpg-passphrase") })`,
        )
      },
    wiki: ${
        project(
          `mysql({ host: "127.0.0.1", port: ${db.port}, database: "wiki", user: "backup", ` +
            `password: env("PC_MDB_PASSWORD") })`,
          "box",
          `, encrypt: age({ recipients: ["${recipient}"], identity: file("secrets/age.key") })`,
        )
      },
    lite: ${
        project(
          `sqlite({ path: "data/app.db" }), files({ name: "uploads", paths: ["data/uploads"] }), ` +
            `command({ name: "notes", run: "printf 'note one\\\\nnote two\\\\n'", filename: "notes.txt" })`,
          "box",
        )
      },
  },
});
`,
    );
    const applied = await cli(["apply", "--now", "2027-01-04T10:00:00Z"]);
    assert.equal(applied.code, 0, show(applied));
  });

  after(async () => {
    if (scratch && existsSync(scratch)) {
      for (const name of readdirSync(scratch)) {
        spawnSync("gpgconf", ["--kill", "gpg-agent"], {
          env: { ...process.env, GNUPGHOME: join(scratch, name) },
          stdio: "ignore",
        });
      }
    }
    await Promise.all([pg?.stop(), db?.stop()]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("PostgreSQL, gpg-encrypted, env() restic password: the lost database is created again and restored", async () => {
    const before = await pgRows("shop");
    assert.equal(before.split("\n").filter(Boolean).length, 300, "the source has rows to compare");
    await pg.psql("DROP DATABASE shop WITH (FORCE);");
    const work = join(dir, "work-shop");
    mkdirSync(work);
    const { printed, referenced } = await printAndRun(["shop"], work);
    assert.deepEqual(referenced.sort(), ["PC_GPG_KEY", "PC_PG_PASSWORD", "PC_RESTIC_PASSWORD"], printed);
    assert.match(printed, /^export RESTIC_PASSWORD="\$\{PC_RESTIC_PASSWORD:\?/m);
    assert.match(printed, new RegExp(`^export PGHOST=127\\.0\\.0\\.1 PGPORT=${pg.port} PGUSER=backup$`, "m"));
    assert.match(printed, /--passphrase-file <\(printf '%s\\n' "\$\(cat \/\S+\/secrets\/gpg-passphrase\)"\)/);
    assert.equal(await pgRows("shop"), before, "shop restored row for row");
    assert.ok(existsSync(join(work, "shop.pgdump")), "the dump as a file too");
  });

  it("PostgreSQL with --table, --clean and --jobs: the printed commands replace that table in parallel from the dump file", async () => {
    const before = await pgRows("shop");
    await pg.psql("DELETE FROM customers WHERE id > 100;", "shop");
    const work = join(dir, "work-part");
    mkdirSync(work);
    const { printed } = await printAndRun(["shop", "--table", "customers", "--clean", "--jobs", "2"], work);
    assert.match(
      printed,
      /^pg_restore --no-owner --no-privileges --exit-on-error '?--table=customers'? '?--clean'? '?--if-exists'? --jobs=2 /m,
    );
    assert.equal(await pgRows("shop"), before, "the table replaced row for row");
    assert.ok(!existsSync(join(work, "shop.pgdump")), "the dump file removed after");
  });

  it("MariaDB, age-encrypted, file() restic password, --target-db: a new database, row for row", async () => {
    const work = join(dir, "work-wiki");
    mkdirSync(work);
    const { printed, referenced } = await printAndRun([
      "wiki",
      "--target-db",
      `mysql://backup@127.0.0.1:${db.port}/wiki_copy?passwordEnv=PC_MDB_PASSWORD`,
    ], work);
    assert.deepEqual(referenced, ["PC_MDB_PASSWORD"], printed);
    assert.match(printed, new RegExp(`^export RESTIC_PASSWORD_FILE=${join(dir, "secrets", "restic-password")}$`, "m"));
    assert.ok(!/^export RESTIC_PASSWORD=/m.test(printed), printed);
    assert.equal(await mdbRows("wiki_copy"), await mdbRows("wiki"), "wiki_copy holds wiki's rows");
  });

  it("SQLite, files and a command() source: the lost SQLite file comes back, files and notes too", async () => {
    const source = join(dir, "data", "app.db");
    const before = liteRows(source);
    rmSync(source);
    const work = join(dir, "work-lite");
    mkdirSync(work);
    const { printed, referenced } = await printAndRun(["lite"], work);
    assert.deepEqual(referenced, [], printed);
    assert.equal(liteRows(source), before, "app.db restored row for row");
    assert.equal(readFileSync(join(work, "notes.txt"), "utf8"), "note one\nnote two\n");
    const uploads = join(work, "restore", dir, "data", "uploads");
    assert.equal(readFileSync(join(uploads, "invoice 42.txt"), "utf8"), "Invoice 42\n");
    assert.deepEqual(
      readFileSync(join(uploads, "nested", "photo.bin")),
      readFileSync(join(dir, "data", "uploads", "nested", "photo.bin")),
    );
  });
});
