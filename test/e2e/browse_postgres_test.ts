/**
 * `snapshots ls --list` with a real PostgreSQL server: the table of contents of a pg_dump custom-format dump, read by
 * `pg_restore --list` from `restic dump` streamed through a FIFO (no copy on disk), plain and age-encrypted; the
 * globals dump (plain SQL) is refused with a clear message. Its own file: starting PostgreSQL is slow.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type CliResult, runCli, runTool } from "../support/cli.ts";
import { type DemoDir, makeDemo } from "../support/demo.ts";
import { type PostgresServer, startPostgres } from "../support/postgres.ts";

const password = "pg-browse-secret-93q";
const show = (result: CliResult) => `exit ${result.code}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`;

describe("snapshots ls --list: a PostgreSQL dump's table of contents", () => {
  let demo: DemoDir;
  let server: PostgresServer;
  let env: Record<string, string> = {};
  const cli = (...args: string[]) => runCli(["--config", demo.config, ...args], { env });

  before(async () => {
    demo = makeDemo();
    server = await startPostgres();
    await server.psql(`CREATE ROLE backup_admin LOGIN SUPERUSER PASSWORD '${password}'`);
    await server.createDatabase("shop");
    await server.psql(
      "CREATE TABLE orders (id int primary key, total numeric); INSERT INTO orders VALUES (1, 9.5);" +
        "CREATE SCHEMA billing; CREATE TABLE billing.invoices (id int primary key); CREATE VIEW big_orders AS " +
        "SELECT * FROM orders WHERE total > 100;" +
        // Some 20 MB: pg_restore has read the table of contents long before restic has sent it all.
        "CREATE TABLE blobs AS SELECT g AS id, repeat(md5(g::text), 32) AS body FROM generate_series(1, 20000) g",
      "shop",
    );
    execFileSync("age-keygen", ["-o", join(demo.dir, "age.key")], { stdio: "ignore" });
    const identity = readFileSync(join(demo.dir, "age.key"), "utf8");
    rmSync(join(demo.dir, "age.key"));
    const recipient = /public key: (age1\w+)/.exec(identity)?.[1];
    assert.ok(recipient);
    env = { ...demo.env, PG_PASSWORD: password, AGE_IDENTITY: identity };
    const source = `postgres({ host: "127.0.0.1", port: ${server.port}, database: "shop", user: "backup_admin", ` +
      `password: env("PG_PASSWORD") })`;
    writeFileSync(
      demo.config,
      `import { age, defineConfig, env, postgres, restic } from "backupctl";
export default defineConfig({
  repositories: { local: restic({ url: ".backupctl/restic-demo", password: env("DEMO_RESTIC_PASSWORD") }) },
  projects: {
    app: { schedule: "0 3 * * *", repositories: ["local"], retention: { daily: 7 },
      sources: [postgres({ host: "127.0.0.1", port: ${server.port}, database: "shop", user: "backup_admin", password: env("PG_PASSWORD"), globals: true })] },
    sealed: { schedule: "0 3 * * *", repositories: ["local"], retention: { daily: 7 }, sources: [${source}],
      encrypt: age({ recipients: ["${recipient}"], identity: env("AGE_IDENTITY") }) },
  },
});
`,
    );
    const applied = await cli("apply");
    assert.equal(applied.code, 0, show(applied));
  });

  after(async () => {
    await server?.stop();
    demo?.cleanup();
  });

  const privateLeftovers = () =>
    readdirSync(join(demo.dir, ".backupctl"), { recursive: true }).map(String).filter((p) => p.includes("fifo"));

  const resticLocks = async () => {
    const locks = await runTool("restic", ["--no-cache", "list", "locks", "--no-lock"], {
      env: { RESTIC_REPOSITORY: demo.repository, RESTIC_PASSWORD: demo.env.DEMO_RESTIC_PASSWORD },
    });
    assert.equal(locks.code, 0, locks.stderr);
    return locks.stdout.split("\n").filter((line) => line.trim() !== "");
  };

  it("lists the tables, the schema and the view of the dump", async () => {
    const result = await cli("snapshots", "ls", "app", "--list");
    assert.equal(result.code, 0, show(result));
    assert.match(result.stdout, /^snapshot [0-9a-f]{8} of app\/shop in local, .*, \/shop\.pgdump\n/);
    assert.match(result.stdout, /; Archive created at/);
    assert.match(result.stdout, /TABLE public orders postgres/);
    assert.match(result.stdout, /TABLE billing invoices postgres/);
    assert.match(result.stdout, /SCHEMA - billing postgres/);
    assert.match(result.stdout, /VIEW public big_orders postgres/);
    assert.match(result.stdout, /TABLE DATA public orders postgres/);
    assert.match(result.stdout, /TABLE DATA public blobs postgres/);
    assert.ok(!(result.stdout + result.stderr).includes(password));
    assert.deepEqual(privateLeftovers(), [], "the FIFOs are removed");
    // restic, cut off once pg_restore had the list, was stopped the way that removes its lock.
    assert.deepEqual(await resticLocks(), []);
  });

  it("--json gives the entries without pg_restore's comment lines", async () => {
    const result = await cli("snapshots", "ls", "app", "--source", "shop", "--list", "--json");
    assert.equal(result.code, 0, show(result));
    const listed = JSON.parse(result.stdout) as { snapshot: { source: string }; dump: string; entries: string[] };
    assert.equal(listed.snapshot.source, "shop");
    assert.equal(listed.dump, "/shop.pgdump");
    assert.ok(listed.entries.some((line) => / TABLE public orders /.test(line)), result.stdout);
    assert.ok(listed.entries.every((line) => !line.startsWith(";")));
  });

  it("an age-encrypted dump is decrypted on the way", async () => {
    const result = await cli("snapshots", "ls", "sealed", "--list");
    assert.equal(result.code, 0, show(result));
    assert.match(result.stdout, /, \/shop\.pgdump\.age\n/);
    assert.match(result.stdout, /TABLE public orders postgres/);
    assert.ok(!result.stdout.includes("AGE-SECRET-KEY"));
    assert.deepEqual(privateLeftovers(), []);
    assert.deepEqual(await resticLocks(), []);
  });

  it("a restic dump that fails is the error reported, not pg_restore's short input", async () => {
    const result = await runCli(["--config", demo.config, "snapshots", "ls", "app", "--list"], {
      env: { ...env, DEMO_RESTIC_PASSWORD: "not-the-password" },
    });
    assert.equal(result.code, 1, show(result));
    assert.match(result.stderr, /repository local: restic dump failed/);
    assert.doesNotMatch(result.stderr, /pg_restore/);
    assert.ok(!result.stderr.includes("not-the-password"));
    assert.deepEqual(privateLeftovers(), []);
  });

  it("the globals dump is plain SQL: --list says it needs a custom-format dump", async () => {
    const result = await cli("snapshots", "ls", "app", "--source", "shop-globals", "--list");
    assert.equal(result.code, 64, show(result));
    assert.match(result.stderr, /--list needs a PostgreSQL custom-format dump \(pg_dump -Fc, a \.pgdump file\)/);
    assert.match(result.stderr, /app\/shop-globals is a postgres source whose dump is plain SQL/);
  });
});
