/**
 * Selective restore, end to end with real restic and PostgreSQL: `--path` restores only part of a files snapshot,
 * never writing outside the target folder (links in the snapshot restored as links; a link in the target replaced,
 * not followed); `--table` and `--schema` restore only those objects of a dump, equal to the source; `--jobs 4`
 * equals a plain restore and leaves no dump file, even after `kill -9` (the next restore removes it); `--clean` is
 * refused without a terminal unless `--yes`. Each restore is a `restore` stage whose note says what was restored.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { cliArgv, type CliResult, runCli, runTool, spawnCli, waitFor } from "../support/cli.ts";
import { type PostgresServer, startPostgres } from "../support/postgres.ts";

const show = (result: CliResult) => `exit ${result.code}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`;

describe("selective restore: files paths, PostgreSQL tables and schemas, parallel jobs, --clean", () => {
  let pg: PostgresServer;
  let dir = "";
  let config = "";
  const secrets = {
    SEL_RESTIC_PASSWORD: `restic-sel-${randomBytes(5).toString("hex")}`,
    PG_BACKUP_PASSWORD: `pg-backup-${randomBytes(5).toString("hex")}`,
    PG_RESTORER_PASSWORD: `pg-restorer-${randomBytes(5).toString("hex")}`,
  };
  const site = () => join(dir, "data", "site");
  const outside = () => join(dir, "outside");
  const out = (name: string) => join(dir, "out", name);
  const privateTmp = () => join(dir, ".backupctl", "tmp");
  const env = { ...secrets, BACKUPCTL_CONFIG: undefined, BACKUPCTL_STATE_DIR: undefined };
  const cli = (args: string[]) => runCli(["--config", config, ...args], { env });
  const target = (database: string) =>
    `postgresql://restorer@127.0.0.1:${pg.port}/${database}?passwordEnv=PG_RESTORER_PASSWORD`;
  /** Every entry under `at`, as relative paths, sorted (links not followed). */
  const tree = (at: string): string[] => {
    const found: string[] = [];
    const walk = (path: string, prefix: string) => {
      for (const name of readdirSync(path).sort()) {
        found.push(prefix + name);
        if (lstatSync(join(path, name)).isDirectory()) walk(join(path, name), `${prefix}${name}/`);
      }
    };
    if (existsSync(at)) walk(at, "");
    return found;
  };
  /** The last restore stage's status and note. */
  const lastRestore = async () => {
    const result = await runTool("sqlite3", [
      join(dir, ".backupctl", "state.db"),
      "SELECT status || '|' || coalesce(note, '') FROM stages WHERE type = 'restore' ORDER BY id DESC LIMIT 1;",
    ]);
    assert.equal(result.code, 0, result.stderr);
    return result.stdout.trim();
  };
  /** Row count and a checksum of a table's rows, or "absent". */
  const fingerprint = async (database: string, table: string) => {
    const exists = await pg.psql(`SELECT to_regclass('${table}') IS NOT NULL;`, database);
    if (exists.trim() !== "t") return "absent";
    return (await pg.psql(
      `SELECT count(*) || ' ' || md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), '')) FROM ${table} t;`,
      database,
    )).trim();
  };
  /** Runs the CLI in a pseudo-terminal (so stdin and stdout are TTYs), typing `answer` at its prompt. */
  const onTerminal = (args: string[], answer: string) => {
    const quote = (arg: string) => `'${arg.replaceAll("'", `'\\''`)}'`;
    const command = [...cliArgv(), "--config", config, ...args].map(quote).join(" ");
    return spawnSync("script", ["-qec", command, "/dev/null"], {
      input: `${answer}\n`,
      env: Object.fromEntries(
        Object.entries({ ...process.env, ...env, NO_COLOR: "1" }).filter((entry) => entry[1] !== undefined),
      ),
      encoding: "utf8",
      timeout: 120_000,
    });
  };
  /** Runs the CLI in a pseudo-terminal and types Ctrl-C once its prompt shows. */
  const ctrlCAtPrompt = async (args: string[]) => {
    const quote = (arg: string) => `'${arg.replaceAll("'", `'\\''`)}'`;
    const command = [...cliArgv(), "--config", config, ...args].map(quote).join(" ");
    const child = spawn("script", ["-qec", command, "/dev/null"], {
      env: Object.fromEntries(
        Object.entries({ ...process.env, ...env, NO_COLOR: "1" }).filter((entry) => entry[1] !== undefined),
      ),
      stdio: ["pipe", "pipe", "pipe"],
    });
    let output = "";
    child.stdout!.on("data", (chunk) => (output += chunk));
    child.stderr!.on("data", (chunk) => (output += chunk));
    const code = new Promise<number | null>((resolve) => child.once("close", (exit) => resolve(exit)));
    await waitFor("the --clean prompt", () => output.includes("to go on: "), 60_000);
    child.stdin!.write("\x03");
    // A prompt that ignored Ctrl-C would wait forever: killed, it fails the test instead of hanging it.
    const hung = setTimeout(() => child.kill("SIGKILL"), 30_000);
    const exit = await code;
    clearTimeout(hung);
    child.stdin!.destroy();
    return { code: exit, output };
  };
  const restoreFolders = () =>
    existsSync(privateTmp()) ? readdirSync(privateTmp()).filter((name) => /^secret-\d+-restore-/.test(name)) : [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "backupctl-e2e-selective-"));
    config = join(dir, "backup.config.ts");
    pg = await startPostgres();
    await pg.createUser("backup", secrets.PG_BACKUP_PASSWORD);
    await pg.createUser("restorer", secrets.PG_RESTORER_PASSWORD);
    await pg.createDatabase("shop", "backup");
    await pg.psql(
      "SET ROLE backup; CREATE TABLE orders (id integer PRIMARY KEY, label text); " +
        "INSERT INTO orders SELECT i, 'order ' || i FROM generate_series(1, 400000) AS i; " +
        "CREATE TABLE customers (id integer PRIMARY KEY, name text); " +
        "INSERT INTO customers SELECT i, 'customer ' || i FROM generate_series(1, 300) AS i; " +
        "CREATE SCHEMA archive; CREATE TABLE archive.old_orders (id integer PRIMARY KEY, label text); " +
        "INSERT INTO archive.old_orders SELECT i, 'old ' || i FROM generate_series(1, 700) AS i;",
      "shop",
    );
    for (
      const name of [
        "shop_table",
        "shop_schema",
        "shop_plain",
        "shop_jobs",
        "shop_killed",
        "shop_clean",
        "shop_none",
        "shop_noschema",
        "shop_interrupted",
      ]
    ) {
      await pg.createDatabase(name, "restorer");
    }

    // A files source with links pointing out of it: absolute (/etc) and relative (../../outside).
    mkdirSync(join(site(), "docs", "deep"), { recursive: true });
    mkdirSync(join(site(), "keep"), { recursive: true });
    mkdirSync(outside(), { recursive: true });
    writeFileSync(join(site(), "docs", "a.txt"), "page a\n");
    writeFileSync(join(site(), "docs", "deep", "b.bin"), randomBytes(3000));
    writeFileSync(join(site(), "keep", "c.txt"), "kept\n");
    writeFileSync(join(site(), "keep", "c[1]*.txt"), "a name with glob characters\n");
    writeFileSync(join(site(), "keep", "c1x.txt"), "what the name would match as a pattern\n");
    symlinkSync("/etc", join(site(), "etc-link"));
    symlinkSync("../../outside", join(site(), "docs", "up-link"));

    await runTool("sqlite3", [join(dir, "data", "app.db"), "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);"]);
    writeFileSync(
      config,
      `import { defineConfig, env, files, postgres, restic, sqlite } from "backupctl";

export default defineConfig({
  timezone: "UTC",
  repositories: { local: restic({ url: "repository", password: env("SEL_RESTIC_PASSWORD") }) },
  projects: {
    site: { schedule: "0 3 * * *", sources: [files({ name: "site", paths: ["data/site"] })],
      repositories: ["local"], retention: { last: 5 } },
    lite: { schedule: "0 3 * * *", sources: [sqlite({ name: "app", path: "data/app.db" })],
      repositories: ["local"], retention: { last: 5 } },
    pg: { schedule: "0 3 * * *", repositories: ["local"], retention: { last: 5 },
      sources: [postgres({ host: "127.0.0.1", port: ${pg.port}, database: "shop", user: "backup",
        password: env("PG_BACKUP_PASSWORD") })] },
  },
});
`,
    );
    const applied = await cli(["apply", "--now", "2027-02-01T10:00:00Z"]);
    assert.equal(applied.code, 0, show(applied));
  });

  after(async () => {
    await pg?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("--path restores only that part of a files snapshot, links as links, nothing outside the folder", async () => {
    const to = out("docs");
    const restored = await cli(["restore", "site", "--source", "site", "--path", "docs", "--to", to]);
    assert.equal(restored.code, 0, show(restored));
    const docs = join(to, site(), "docs");
    assert.match(restored.stdout, new RegExp(`to ${to}: ${join(site(), "docs")}\\n`));
    assert.deepEqual(tree(join(to, site())), ["docs", "docs/a.txt", "docs/deep", "docs/deep/b.bin", "docs/up-link"]);
    assert.equal(readFileSync(join(docs, "a.txt"), "utf8"), "page a\n");
    assert.deepEqual(readFileSync(join(docs, "deep", "b.bin")), readFileSync(join(site(), "docs", "deep", "b.bin")));
    assert.ok(lstatSync(join(docs, "up-link")).isSymbolicLink());
    assert.equal(readlinkSync(join(docs, "up-link")), "../../outside");
    assert.deepEqual(readdirSync(outside()), [], "nothing written where the link points");
    assert.ok(!readdirSync(to).some((name) => name.startsWith(".backupctl-restoring")), "no staging folder left");
    assert.equal(await lastRestore(), `succeeded|paths: ${join(site(), "docs")}`);

    // Several paths, one absolute; a link to /etc comes back as a link.
    const two = out("two");
    const both = await cli([
      "restore",
      "site",
      "--path",
      join(site(), "etc-link"),
      "--path",
      "keep/c.txt",
      "--to",
      two,
    ]);
    assert.equal(both.code, 0, show(both));
    assert.deepEqual(tree(join(two, site())), ["etc-link", "keep", "keep/c.txt"]);
    assert.equal(readlinkSync(join(two, site(), "etc-link")), "/etc");

    // A path is a path, not a pattern: glob characters in it mean themselves.
    const literal = out("literal");
    const glob = await cli(["restore", "site", "--path", "keep/c[1]*.txt", "--to", literal]);
    assert.equal(glob.code, 0, show(glob));
    assert.deepEqual(tree(join(literal, site())), ["keep", "keep/c[1]*.txt"]);
  });

  it("--path refuses a non-empty folder without --force, a path not in the snapshot, and a link in the target is replaced, not followed", async () => {
    const to = out("busy");
    mkdirSync(join(to, site()), { recursive: true });
    writeFileSync(join(to, "mine.txt"), "mine\n");
    // A link where the snapshot has a folder: restic 0.14 would write docs/ through it, into outside/.
    symlinkSync(outside(), join(to, site(), "docs"));
    const refused = await cli(["restore", "site", "--path", "docs", "--to", to]);
    assert.equal(refused.code, 64, show(refused));
    assert.match(refused.stderr, /is not empty .*add --overwrite/);
    assert.ok(lstatSync(join(to, site(), "docs")).isSymbolicLink(), "nothing changed in the folder");

    const forced = await cli(["restore", "site", "--path", "docs", "--to", to, "--force"]);
    assert.equal(forced.code, 0, show(forced));
    assert.deepEqual(readdirSync(outside()), [], "nothing written through the link");
    assert.ok(lstatSync(join(to, site(), "docs")).isDirectory(), "the link was replaced by the snapshot's folder");
    assert.equal(readFileSync(join(to, site(), "docs", "a.txt"), "utf8"), "page a\n");
    assert.equal(readFileSync(join(to, "mine.txt"), "utf8"), "mine\n");

    // The staging folder a killed restore left (its process gone) is not the operator's: removed, not refused.
    const left = out("left");
    mkdirSync(join(left, ".backupctl-restoring-4194000-AbCdEf", "srv"), { recursive: true });
    writeFileSync(join(left, ".backupctl-restoring-4194000-AbCdEf", "srv", "half.txt"), "half\n");
    const again = await cli(["restore", "site", "--path", "keep", "--to", left]);
    assert.equal(again.code, 0, show(again));
    assert.deepEqual(readdirSync(left), [site().split("/")[1]]);

    const missing = out("missing");
    const none = await cli(["restore", "site", "--path", "docs/nope.txt", "--to", missing]);
    assert.equal(none.code, 64, show(none));
    assert.match(none.stderr, /holds no .*docs\/nope\.txt/);
    assert.deepEqual(tree(missing), [], "nothing restored");

    const elsewhere = await cli(["restore", "site", "--path", "/srv/other", "--to", out("elsewhere")]);
    assert.equal(elsewhere.code, 64, show(elsewhere));
    assert.match(elsewhere.stderr, /\/srv\/other is not in snapshot/);
    assert.ok(!existsSync(out("elsewhere")), "refused before anything was written");
  });

  it("--table and --schema restore only those objects, equal to the source", async () => {
    const table = await cli([
      "restore",
      "pg",
      "--into-database",
      "--target-db",
      target("shop_table"),
      "--table",
      "orders",
    ]);
    assert.equal(table.code, 0, show(table));
    assert.equal(await fingerprint("shop_table", "public.orders"), await fingerprint("shop", "public.orders"));
    assert.equal(await fingerprint("shop_table", "public.customers"), "absent");
    assert.equal(await fingerprint("shop_table", "archive.old_orders"), "absent");
    assert.equal(await lastRestore(), "succeeded|tables: orders");
    // pg_restore --table restores the table and its rows, not its constraints (separate entries of the dump).
    const keys = "SELECT count(*) FROM pg_constraint WHERE conrelid = 'public.orders'::regclass AND contype = 'p';";
    assert.equal((await pg.psql(keys, "shop")).trim(), "1");
    assert.equal((await pg.psql(keys, "shop_table")).trim(), "0");
    // A table the dump does not hold: pg_restore restores nothing and exits 0; backupctl says so and fails.
    const none = await cli(["restore", "pg", "--into-database", "--target-db", target("shop_none"), "--table", "nope"]);
    assert.equal(none.code, 64, show(none));
    assert.match(none.stderr, /the dump holds no table nope, so pg_restore restored nothing for it/);
    assert.match(await lastRestore(), /^failed\|/);
    assert.equal(
      (await pg.psql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public';", "shop_none")).trim(),
      "0",
    );
    // A schema the dump does not hold: restored nothing, said so.
    const noSchema = await cli([
      "restore",
      "pg",
      "--into-database",
      "--target-db",
      target("shop_noschema"),
      "--schema",
      "nosuch",
    ]);
    assert.equal(noSchema.code, 64, show(noSchema));
    assert.match(noSchema.stderr, /the dump holds no table in schema nosuch, so pg_restore restored nothing for it/);

    const schema = await cli([
      "restore",
      "pg",
      "--into-database",
      "--target-db",
      target("shop_schema"),
      "--schema",
      "archive",
    ]);
    assert.equal(schema.code, 0, show(schema));
    assert.equal(
      await fingerprint("shop_schema", "archive.old_orders"),
      await fingerprint("shop", "archive.old_orders"),
    );
    assert.equal(await fingerprint("shop_schema", "public.orders"), "absent");
    assert.equal(await fingerprint("shop_schema", "public.customers"), "absent");
    assert.equal(await lastRestore(), "succeeded|schemas: archive");
  });

  it("--table, --schema, --jobs and --clean are refused for a dump pg_restore does not read, and without --into-database", async () => {
    const lite = await cli([
      "restore",
      "lite",
      "--into-database",
      "--target-db",
      `sqlite:${out("new.db")}`,
      "--table",
      "notes",
    ]);
    assert.equal(lite.code, 64, show(lite));
    assert.match(lite.stderr, /lite\/app's dump \(app\.sql\) is not a PostgreSQL custom-format dump: restore it whole/);
    assert.ok(!existsSync(out("new.db")), "nothing restored");
    const toFolder = await cli(["restore", "pg", "--to", out("pgfolder"), "--jobs", "2"]);
    assert.equal(toFolder.code, 64, show(toFolder));
    assert.match(toFolder.stderr, /restore into a database: add --into-database/);
    const jobs = await cli(["restore", "pg", "--into-database", "--target-db", target("shop_none"), "--jobs", "0"]);
    assert.equal(jobs.code, 64, show(jobs));
    assert.match(jobs.stderr, /--jobs: expected a whole number .* from 1 to 64, got "0"/);
  });

  it("--jobs 4 equals a plain restore and leaves no dump file", async () => {
    const plain = await cli(["restore", "pg", "--into-database", "--target-db", target("shop_plain")]);
    assert.equal(plain.code, 0, show(plain));
    const jobs = await cli(["restore", "pg", "--into-database", "--target-db", target("shop_jobs"), "--jobs", "4"]);
    assert.equal(jobs.code, 0, show(jobs));
    for (const table of ["public.orders", "public.customers", "archive.old_orders"]) {
      const source = await fingerprint("shop", table);
      assert.notEqual(source, "absent");
      assert.equal(await fingerprint("shop_plain", table), source, table);
      assert.equal(await fingerprint("shop_jobs", table), source, table);
    }
    assert.equal(await lastRestore(), "succeeded|jobs: 4");
    assert.deepEqual(restoreFolders(), [], "no dump file left");
  });

  it("SIGINT during a --jobs restore removes its dump folder", async () => {
    const stopped = spawnCli(
      [
        "--config",
        config,
        "restore",
        "pg",
        "--into-database",
        "--target-db",
        target("shop_interrupted"),
        "--jobs",
        "2",
      ],
      { env },
    );
    await waitFor("the --jobs dump file", () => {
      const folders = restoreFolders();
      return folders.length > 0 && readdirSync(join(privateTmp(), folders[0])).length > 0;
    }, 60_000);
    process.kill(stopped.pid, "SIGINT");
    const ended = await stopped.done;
    assert.equal(ended.code, 130, `stopped before it finished: ${ended.stdout}${ended.stderr}`);
    assert.deepEqual(restoreFolders(), [], "the dump folder is gone");
    assert.match(await lastRestore(), /^interrupted\|/);
  });

  it("kill -9 of a --jobs restore leaves its dump folder; the next restore removes it", async () => {
    const killed = spawnCli(
      ["--config", config, "restore", "pg", "--into-database", "--target-db", target("shop_killed"), "--jobs", "2"],
      { env },
    );
    const [folder] = await waitFor("the --jobs dump file", () => {
      const folders = restoreFolders();
      return folders.length > 0 && readdirSync(join(privateTmp(), folders[0])).length > 0 && folders;
    }, 60_000);
    process.kill(killed.pid, "SIGKILL");
    const ended = await killed.done;
    assert.equal(ended.signal, "SIGKILL", `killed before it finished: ${ended.stdout}${ended.stderr}`);
    assert.ok(existsSync(join(privateTmp(), folder)), "kill -9 leaves the folder");
    assert.equal(lstatSync(join(privateTmp(), folder)).mode & 0o777, 0o700);
    const [file] = readdirSync(join(privateTmp(), folder));
    assert.equal(lstatSync(join(privateTmp(), folder, file)).mode & 0o777, 0o600);

    const next = await cli(["restore", "site", "--path", "keep", "--to", out("after-kill")]);
    assert.equal(next.code, 0, show(next));
    assert.deepEqual(restoreFolders(), [], "the next restore removed the leftover");
  });

  it("--clean into an existing database: refused without a terminal unless --yes, then replaces its objects", async () => {
    await pg.psql("SET ROLE restorer; CREATE TABLE orders (id integer PRIMARY KEY, label text);", "shop_clean");
    await pg.psql("SET ROLE restorer; INSERT INTO orders VALUES (1, 'changed since');", "shop_clean");
    const busy = await cli([
      "restore",
      "pg",
      "--into-database",
      "--target-db",
      target("shop_clean"),
      "--table",
      "orders",
    ]);
    assert.equal(busy.code, 64, show(busy));
    assert.match(busy.stderr, /is not empty .*add --clean/);

    const clean = [
      "restore",
      "pg",
      "--into-database",
      "--target-db",
      target("shop_clean"),
      "--table",
      "orders",
      "--clean",
    ];
    const refused = await cli(clean);
    assert.equal(refused.code, 64, show(refused));
    assert.match(refused.stderr, /no terminal to confirm it on\. Add --yes/);
    assert.equal((await pg.psql("SELECT label FROM orders;", "shop_clean")).trim(), "changed since", "untouched");

    // On a terminal (util-linux `script` makes one): the database's name must be typed.
    const wrong = onTerminal(clean, "yes");
    assert.equal(wrong.status, 64, `${wrong.stdout}${wrong.stderr}`);
    assert.match(wrong.stdout, /Type the database name \(shop_clean\) to go on: /);
    assert.match(wrong.stdout, /nothing restored: the answer was not the database name shop_clean/);
    assert.equal((await pg.psql("SELECT label FROM orders;", "shop_clean")).trim(), "changed since", "untouched");
    // Ctrl-C once the prompt shows (the terminal is then raw: readline gets it, not the process).
    const stopped = await ctrlCAtPrompt(clean);
    assert.equal(stopped.code, 130, `Ctrl-C at the prompt: ${stopped.output}`);
    assert.match(stopped.output, /nothing restored: stopped at the prompt \(Ctrl-C\)/);
    const typed = onTerminal(clean, "shop_clean");
    assert.equal(typed.status, 0, `${typed.stdout}${typed.stderr}`);
    assert.equal(await fingerprint("shop_clean", "public.orders"), await fingerprint("shop", "public.orders"));
    await pg.psql("SET ROLE restorer; DELETE FROM orders WHERE id > 1;", "shop_clean");

    const confirmed = await cli([...clean, "--yes"]);
    assert.equal(confirmed.code, 0, show(confirmed));
    assert.equal(await fingerprint("shop_clean", "public.orders"), await fingerprint("shop", "public.orders"));
    assert.equal(await lastRestore(), "succeeded|tables: orders; clean");
  });
});
