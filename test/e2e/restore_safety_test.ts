/**
 * `backupctl restore` never writes over what a target holds unless the operator says so (`--force`), and checks
 * before anything is written: `--to` refuses an existing dump file, a non-empty folder for a files source and a
 * folder that is a symbolic link; `--into-database` refuses a PostgreSQL, MariaDB or SQLite database holding tables.
 * `--force` restores anyway (an existing dump file is replaced only once the new one is whole). `--print-commands`
 * for a command() source prints what an operator can run. Real PostgreSQL, MariaDB, SQLite and restic.
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type CliResult, runCli, runTool, spawnCli, waitFor } from "../support/cli.ts";
import { type MariadbServer, startMariadb } from "../support/mariadb.ts";
import { type PostgresServer, startPostgres } from "../support/postgres.ts";

const show = (result: CliResult) => `exit ${result.code}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`;

describe("restore refuses a target that holds data unless --force, and checks before writing anything", () => {
  let pg: PostgresServer;
  let db: MariadbServer;
  let dir = "";
  let config = "";
  const secrets = {
    SAFETY_RESTIC_PASSWORD: `restic-safety-${randomBytes(5).toString("hex")}`,
    PG_BACKUP_PASSWORD: `pg-backup-${randomBytes(5).toString("hex")}`,
    PG_RESTORER_PASSWORD: `pg-restorer-${randomBytes(5).toString("hex")}`,
    MDB_BACKUP_PASSWORD: `mdb-backup-${randomBytes(5).toString("hex")}`,
    MDB_RESTORER_PASSWORD: `mdb-restorer-${randomBytes(5).toString("hex")}`,
  };
  /** Short snapshot ids apply printed, by "project/source". */
  const snapshot: Record<string, string> = {};
  const out = (name: string) => join(dir, "out", name);
  const uploads = () => join(dir, "data", "uploads");

  const cli = (args: string[], env: Record<string, string> = {}) =>
    runCli(["--config", config, ...args], {
      env: { ...secrets, BACKUPCTL_CONFIG: undefined, BACKUPCTL_STATE_DIR: undefined, ...env },
    });
  const restoreStages = async () => {
    const result = await runTool("sqlite3", [
      join(dir, ".backupctl", "state.db"),
      "SELECT count(*) FROM stages WHERE type = 'restore';",
    ]);
    assert.equal(result.code, 0, result.stderr);
    return Number(result.stdout.trim());
  };
  /** Every entry under `at`, as relative paths, sorted (links not followed). */
  const tree = (at: string): string[] => {
    const found: string[] = [];
    const walk = (path: string, prefix: string) => {
      for (const name of readdirSync(path).sort()) {
        found.push(prefix + name);
        if (lstatSync(join(path, name)).isDirectory()) walk(join(path, name), `${prefix}${name}/`);
      }
    };
    walk(at, "");
    return found;
  };

  before(async () => {
    for (const program of ["pg_dump", "pg_restore", "psql", "mariadb-dump", "mariadb", "sqlite3", "restic"]) {
      assert.equal(spawnSync("sh", ["-c", 'command -v "$1"', "sh", program]).status, 0, `${program} is installed`);
    }
    dir = mkdtempSync(join(tmpdir(), "backupctl-e2e-restore-safety-"));
    config = join(dir, "backup.config.ts");
    [pg, db] = await Promise.all([startPostgres(), startMariadb()]);

    await pg.createUser("backup", secrets.PG_BACKUP_PASSWORD);
    await pg.createUser("restorer", secrets.PG_RESTORER_PASSWORD);
    await pg.createDatabase("shop", "backup");
    await pg.psql(
      "SET ROLE backup; CREATE TABLE orders (id integer PRIMARY KEY, label text); " +
        "INSERT INTO orders SELECT i, 'order ' || i FROM generate_series(1, 50) AS i;",
      "shop",
    );
    // Owned by the restorer (so it may create tables there), but holding a table of the superuser's that the
    // restorer has no right on: information_schema would not show it to the restorer, pg_class does.
    for (const name of ["shop_busy", "shop_empty"]) await pg.createDatabase(name, "restorer");
    await pg.psql("CREATE TABLE keep (note text); INSERT INTO keep VALUES ('mine');", "shop_busy");

    for (const name of ["wiki", "wiki_busy"]) await db.createDatabase(name);
    await db.createUser("backup", secrets.MDB_BACKUP_PASSWORD, "wiki");
    await db.createUser("restorer", secrets.MDB_RESTORER_PASSWORD, "wiki_busy");
    await db.sql(
      "CREATE TABLE pages (id INT PRIMARY KEY, title VARCHAR(50)); INSERT INTO pages VALUES (1, 'home');",
      "wiki",
    );
    await db.sql("CREATE TABLE keep (note VARCHAR(50)); INSERT INTO keep VALUES ('mine');", "wiki_busy");

    mkdirSync(join(uploads(), "nested"), { recursive: true });
    writeFileSync(join(uploads(), "invoice.txt"), "the invoice\n");
    writeFileSync(join(uploads(), "nested", "photo.bin"), randomBytes(2000));
    execFileSync("sqlite3", [
      join(dir, "data", "app.db"),
      "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO customers VALUES (1, 'ada'), (2, 'bob');",
    ]);

    const project = (sources: string) =>
      `{ schedule: "0 3 * * *", sources: [${sources}], repositories: ["local"], retention: { last: 5 } }`;
    writeFileSync(
      config,
      `import { command, defineConfig, env, files, mysql, postgres, restic, sqlite } from "backupctl";

export default defineConfig({
  timezone: "UTC",
  repositories: { local: restic({ url: "repository", password: env("SAFETY_RESTIC_PASSWORD") }) },
  projects: {
    pg: ${
        project(
          `postgres({ host: "127.0.0.1", port: ${pg.port}, database: "shop", user: "backup", ` +
            `password: env("PG_BACKUP_PASSWORD") })`,
        )
      },
    maria: ${
        project(
          `mysql({ host: "127.0.0.1", port: ${db.port}, database: "wiki", user: "backup", ` +
            `password: env("MDB_BACKUP_PASSWORD") })`,
        )
      },
    // The files source first: a refusal must come before it is restored, not when the dump after it is reached.
    lite: ${project(`files({ name: "uploads", paths: ["data/uploads"] }), sqlite({ path: "data/app.db" })`)},
    cmd: ${project(`command({ name: "notes", run: "printf 'note one\\\\nnote two\\\\n'", filename: "notes.txt" })`)},
  },
});
`,
    );
    const applied = await cli(["apply", "--now", "2027-02-01T10:00:00Z"]);
    assert.equal(applied.code, 0, show(applied));
    for (const match of applied.stdout.matchAll(/\+ backup (\S+) → local: snapshot ([0-9a-f]{8})/g)) {
      snapshot[match[1]] = match[2];
    }
    assert.deepEqual(Object.keys(snapshot).sort(), ["cmd/notes", "lite/app", "lite/uploads", "maria/wiki", "pg/shop"]);
  });

  after(async () => {
    await Promise.all([pg?.stop(), db?.stop()]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("--to: an existing dump file and a non-empty folder for a files source are refused before anything is written", async () => {
    const stages = await restoreStages();
    // The dump's file exists: refused, although the files source (restored first) would go in without a clash.
    const taken = out("taken");
    mkdirSync(taken, { recursive: true });
    writeFileSync(join(taken, "app.sql"), "mine\n");
    const refused = await cli(["restore", "lite", "--to", taken]);
    assert.deepEqual(tree(taken), ["app.sql"], `nothing restored into the folder: ${show(refused)}`);
    assert.equal(refused.code, 64, show(refused));
    assert.equal(
      refused.stderr,
      `Error: nothing restored: ${join(taken, "app.sql")} exists; ${taken} is not empty (1 entry): restic restore ` +
        "of uploads would overwrite the snapshot's files it holds. Restore into a new or empty folder, or add " +
        "--overwrite to write there anyway\n",
    );
    assert.equal(readFileSync(join(taken, "app.sql"), "utf8"), "mine\n");

    // A files source into a folder holding a file it would overwrite (restic restore does, silently).
    const inPlace = out("in-place");
    const mine = join(inPlace, uploads(), "invoice.txt");
    mkdirSync(join(inPlace, uploads()), { recursive: true });
    writeFileSync(mine, "my edited invoice\n");
    const overwrite = await cli(["restore", "lite", "--source", "uploads", "--to", inPlace]);
    assert.equal(overwrite.code, 64, show(overwrite));
    assert.match(overwrite.stderr, new RegExp(`^Error: nothing restored: ${inPlace} is not empty \\(1 entry\\)`));
    assert.match(overwrite.stderr, /add --overwrite/);
    assert.equal(readFileSync(mine, "utf8"), "my edited invoice\n");
    assert.ok(!existsSync(join(inPlace, uploads(), "nested")), "nothing restored");
    assert.equal(await restoreStages(), stages, "a refused restore is no restore");
    // Asked for: --overwrite writes there.
    const allowed = await cli(["restore", "lite", "--source", "uploads", "--to", inPlace, "--overwrite"]);
    assert.equal(allowed.code, 0, show(allowed));
    assert.ok(existsSync(join(inPlace, uploads(), "nested")), "restored with --overwrite");

    // A dump alone into a folder holding other things: only its own file matters.
    const shared = out("shared");
    mkdirSync(shared, { recursive: true });
    writeFileSync(join(shared, "unrelated.txt"), "x\n");
    const dumpOnly = await cli(["restore", "lite", "--source", "app", "--to", shared]);
    assert.equal(dumpOnly.code, 0, show(dumpOnly));
    assert.deepEqual(tree(shared), ["app.sql", "unrelated.txt"]);
  });

  it("--to with --force restores over them: the dump file replaced whole, the files overwritten", async () => {
    const taken = out("taken");
    const forced = await cli(["restore", "lite", "--to", taken, "--force"]);
    assert.equal(forced.code, 0, show(forced));
    assert.match(readFileSync(join(taken, "app.sql"), "utf8"), /INSERT INTO "?customers"? VALUES\(1,'ada'\)/);
    assert.equal(lstatSync(join(taken, "app.sql")).mode & 0o777, 0o600);
    assert.ok(!readdirSync(taken).some((name) => name.includes("restoring")), "no partial file left");
    assert.equal(readFileSync(join(taken, uploads(), "invoice.txt"), "utf8"), "the invoice\n");

    const inPlace = out("in-place");
    const again = await cli(["restore", "lite", "--source", "uploads", "--to", inPlace, "--force"]);
    assert.equal(again.code, 0, show(again));
    assert.equal(readFileSync(join(inPlace, uploads(), "invoice.txt"), "utf8"), "the invoice\n");
  });

  it("--to a symbolic link to a folder is refused (it would restore where the link points); --force follows it", async () => {
    const real = out("real");
    mkdirSync(real, { recursive: true });
    const link = out("link");
    symlinkSync(real, link);
    const refused = await cli(["restore", "cmd", "--to", link]);
    assert.equal(refused.code, 64, show(refused));
    assert.equal(
      refused.stderr,
      `Error: nothing restored: ${link} is a symbolic link to ${real}. Restore into a new or empty folder, or add ` +
        "--overwrite to write there anyway\n",
    );
    assert.deepEqual(readdirSync(real), []);
    const forced = await cli(["restore", "cmd", "--to", link, "--force"]);
    assert.equal(forced.code, 0, show(forced));
    assert.equal(readFileSync(join(real, "notes.txt"), "utf8"), "note one\nnote two\n");
  });

  it("--into-database refuses a PostgreSQL database with tables, even ones the restorer cannot read; --force restores", async () => {
    const stages = await restoreStages();
    const url = (database: string) =>
      `postgresql://restorer@127.0.0.1:${pg.port}/${database}?passwordEnv=PG_RESTORER_PASSWORD`;
    // restic starts while the target is checked (restore/stream.ts): a wrapper on PATH notes each restic it starts.
    const wrappers = join(dir, "restic-wrapper");
    mkdirSync(wrappers, { recursive: true });
    const started = join(wrappers, "started.log");
    const realRestic = execFileSync("sh", ["-c", "command -v restic"]).toString().trim();
    writeFileSync(
      join(wrappers, "restic"),
      `#!/bin/sh\necho "$$ $*" >> '${started}'\nexec '${realRestic}' "$@"\n`,
      { mode: 0o755 },
    );
    const refused = await cli(["restore", "pg", "--into-database", "--target-db", url("shop_busy")], {
      PATH: `${wrappers}:${process.env.PATH}`,
    });
    assert.equal(refused.code, 64, show(refused));
    // It was started, and it is gone when the refusal is said: stopped, its lock (if it took one) removed.
    const dumps = readFileSync(started, "utf8").split("\n").filter((line) => / dump /.test(line));
    assert.equal(dumps.length, 1, `one restic dump started beside the check: ${dumps.join("; ")}`);
    const pid = Number(dumps[0].split(" ")[0]);
    assert.throws(() => process.kill(pid, 0), /ESRCH/, "the restic started beside the check was stopped");
    // A restic stopped while it wrote its lock can leave the write's temporary file (`ID-tmp-N`), which is no lock.
    const locks = readdirSync(join(dir, "repository", "locks")).filter((name) => /^[0-9a-f]{64}$/.test(name));
    assert.deepEqual(locks, [], "no lock left in the repository");
    const fifoFolders = existsSync(join(dir, ".backupctl", "tmp"))
      ? readdirSync(join(dir, ".backupctl", "tmp")).filter((name) => name.includes("fifo"))
      : [];
    assert.deepEqual(fifoFolders, [], "the stream's FIFO folder was removed");
    assert.equal(
      refused.stderr,
      `Error: nothing restored: postgres database shop_busy on 127.0.0.1:${pg.port} is not empty (1 table: ` +
        "public.keep), and the dump would be mixed into what it holds. Restore into an empty database, add " +
        "--clean to replace the dump's objects there, or add --overwrite to restore into it anyway\n",
    );
    const tables = "SELECT string_agg(tablename, ',') FROM pg_tables WHERE schemaname = 'public';";
    assert.equal((await pg.psql(tables, "shop_busy")).trim(), "keep", "nothing restored");
    assert.equal(await restoreStages(), stages, "nothing started");

    const empty = await cli(["restore", "pg", "--into-database", "--target-db", url("shop_empty")]);
    assert.equal(empty.code, 0, show(empty));
    assert.equal((await pg.psql("SELECT count(*) FROM orders;", "shop_empty")).trim(), "50");

    const forced = await cli(["restore", "pg", "--into-database", "--target-db", url("shop_busy"), "--force"]);
    assert.equal(forced.code, 0, show(forced));
    assert.equal((await pg.psql("SELECT count(*) FROM orders;", "shop_busy")).trim(), "50");
    assert.equal((await pg.psql("SELECT note FROM keep;", "shop_busy")).trim(), "mine");

    // A database that cannot be inspected is not restored into either: the client's words say why.
    const missing = await cli(["restore", "pg", "--into-database", "--target-db", url("no_such_db")]);
    assert.equal(missing.code, 1, show(missing));
    assert.match(
      missing.stderr,
      /checking that the target is empty failed \(exit 2\): .*database "no_such_db" does not exist/s,
    );
    assert.ok(!missing.stderr.includes(secrets.PG_RESTORER_PASSWORD));
  });

  it("kill -9 while the target is checked: nothing is restored, restic ends, the next restore cleans up", async () => {
    await pg.createDatabase("shop_killed", "restorer");
    const url = `postgresql://restorer@127.0.0.1:${pg.port}/shop_killed?passwordEnv=PG_RESTORER_PASSWORD`;
    // The check (psql) is held for seconds by a wrapper; restic, started beside it, is noted by another.
    const wrappers = join(dir, "killed-wrappers");
    mkdirSync(wrappers, { recursive: true });
    const started = join(wrappers, "started.log");
    const real = (program: string) => execFileSync("sh", ["-c", `command -v ${program}`]).toString().trim();
    writeFileSync(
      join(wrappers, "restic"),
      `#!/bin/sh\necho "$$ $*" >> '${started}'\nexec '${real("restic")}' "$@"\n`,
      { mode: 0o755 },
    );
    writeFileSync(join(wrappers, "psql"), `#!/bin/sh\nsleep 5\nexec '${real("psql")}' "$@"\n`, { mode: 0o755 });
    const stages = await restoreStages();
    const running = spawnCli(["--config", config, "restore", "pg", "--into-database", "--target-db", url], {
      env: {
        ...secrets,
        BACKUPCTL_CONFIG: undefined,
        BACKUPCTL_STATE_DIR: undefined,
        PATH: `${wrappers}:${process.env.PATH}`,
      },
    });
    const resticPid = await waitFor("restic started beside the check", () => {
      const line = existsSync(started) ? readFileSync(started, "utf8").split("\n").find((l) => / dump /.test(l)) : "";
      return line ? Number(line.split(" ")[0]) : undefined;
    }, 30_000);
    process.kill(running.pid, "SIGKILL");
    assert.equal((await running.done).signal, "SIGKILL");
    const gone = () => {
      try {
        process.kill(resticPid, 0);
        return false;
      } catch {
        return true;
      }
    };
    await waitFor("the restic of the killed restore to end", gone, 30_000);
    const tables = "SELECT count(*) FROM pg_tables WHERE schemaname = 'public';";
    assert.equal((await pg.psql(tables, "shop_killed")).trim(), "0", "the database client never started");
    assert.equal(await restoreStages(), stages, "no restore stage was started");

    // The next restore removes the killed one's private folder and restores.
    const next = await cli(["restore", "pg", "--into-database", "--target-db", url]);
    assert.equal(next.code, 0, show(next));
    assert.equal((await pg.psql("SELECT count(*) FROM orders;", "shop_killed")).trim(), "50");
    const fifoFolders = existsSync(join(dir, ".backupctl", "tmp"))
      ? readdirSync(join(dir, ".backupctl", "tmp")).filter((name) => name.includes("fifo"))
      : [];
    assert.deepEqual(fifoFolders, [], "the killed restore's FIFO folder was removed");
  });

  it("--into-database refuses a MariaDB database with tables and a SQLite file with tables; an empty file is fine", async () => {
    const url = `mysql://restorer@127.0.0.1:${db.port}/wiki_busy?passwordEnv=MDB_RESTORER_PASSWORD`;
    const maria = await cli(["restore", "maria", "--into-database", "--target-db", url]);
    assert.equal(maria.code, 64, show(maria));
    assert.equal(
      maria.stderr,
      `Error: nothing restored: mysql database wiki_busy on 127.0.0.1:${db.port} is not empty (1 table: keep), and ` +
        "the dump would be mixed into what it holds. Restore into an empty database, or add --overwrite to restore " +
        "into it anyway\n",
    );
    assert.equal((await db.sql("SHOW TABLES;", "wiki_busy")).trim(), "keep", "nothing restored");
    const forced = await cli(["restore", "maria", "--into-database", "--target-db", url, "--force"]);
    assert.equal(forced.code, 0, show(forced));
    assert.equal((await db.sql("SELECT title FROM pages;", "wiki_busy")).trim(), "home");

    const busy = out("busy.db");
    execFileSync("sqlite3", [busy, "CREATE TABLE keep (note TEXT); CREATE VIEW shown AS SELECT * FROM keep;"]);
    const bytes = readFileSync(busy);
    const lite = await cli(["restore", "lite", "--source", "app", "--into-database", "--target-db", `sqlite:${busy}`]);
    assert.equal(lite.code, 64, show(lite));
    assert.equal(
      lite.stderr,
      `Error: nothing restored: sqlite:${busy} is not empty (2 tables: keep, shown), and the dump would be mixed ` +
        "into what it holds. Restore into an empty database, or add --overwrite to restore into it anyway\n",
    );
    assert.ok(readFileSync(busy).equals(bytes), "the file is untouched");

    const blank = out("blank.db");
    writeFileSync(blank, "");
    const intoBlank = await cli([
      "restore",
      "lite",
      "--source",
      "app",
      "--into-database",
      "--target-db",
      `sqlite:${blank}`,
    ]);
    assert.equal(intoBlank.code, 0, show(intoBlank));
    assert.equal(execFileSync("sqlite3", [blank, "SELECT name FROM customers ORDER BY id;"]).toString(), "ada\nbob\n");
  });

  it("--print-commands for a command() source prints the restic dump that works, and a note instead of a database client", async () => {
    const printed = await cli(["restore", "cmd", "--print-commands"]);
    assert.equal(printed.code, 0, show(printed));
    const id = snapshot["cmd/notes"];
    assert.equal(
      printed.stdout,
      [
        `# cmd/notes, snapshot ${id} in local`,
        "# The repository (each secret read from where the config keeps it):",
        "unset RESTIC_REPOSITORY_FILE RESTIC_PASSWORD_FILE RESTIC_PASSWORD_COMMAND RESTIC_KEY_HINT",
        `export RESTIC_REPOSITORY=${join(dir, "repository")}`,
        'export RESTIC_PASSWORD="${SAFETY_RESTIC_PASSWORD:?set SAFETY_RESTIC_PASSWORD first}"',
        "# The dump as a file:",
        `restic dump ${id} /notes.txt > notes.txt`,
        "# notes is a command() source: load notes.txt with the program that reads what its `run` writes, or pipe " +
        `\`restic dump ${id} /notes.txt\` into it.`,
        "",
      ].join("\n"),
    );
    assert.ok(!printed.stdout.includes("undefined"));
    const work = out("manual");
    mkdirSync(work, { recursive: true });
    const line = printed.stdout.split("\n").find((l) => l.startsWith("restic dump"))!;
    const ran = spawnSync("sh", ["-c", line], {
      cwd: work,
      encoding: "utf8",
      env: {
        ...process.env,
        RESTIC_REPOSITORY: join(dir, "repository"),
        RESTIC_PASSWORD: secrets.SAFETY_RESTIC_PASSWORD,
        RESTIC_CACHE_DIR: join(dir, "restic-cache"),
      },
    });
    assert.equal(ran.status, 0, ran.stderr);
    assert.equal(readFileSync(join(work, "notes.txt"), "utf8"), "note one\nnote two\n");
  });
});
