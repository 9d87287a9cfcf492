/**
 * `databases: "all"` against real servers: a PostgreSQL cluster and a MariaDB server on 127.0.0.1, the real CLI,
 * psql/pg_dump/pg_dumpall, the mariadb client and mariadb-dump, restic. The databases are listed when planning (the
 * excluded, template and system ones left out), each backed up as its own source with the globals once; a database
 * created afterwards shows as new, a dropped one as no longer present with its snapshot kept; a dropped one restores
 * by its source name; a server that cannot be reached is said so, and what the state knows of it is still planned.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { runCli, runTool } from "../support/cli.ts";
import { type DemoDir, makeDemo } from "../support/demo.ts";
import { mariadbLiteral, type MariadbServer, startMariadb } from "../support/mariadb.ts";
import { type PostgresServer, startPostgres } from "../support/postgres.ts";

const pgPassword = "all-dbs-pg-secret-5521";
const mariaPassword = "all-dbs-maria-secret-8830";
const now = "2026-12-01T03:30:00Z";

interface PlanJson {
  actions: { type: string; source?: string; reason: string }[];
  not_managed: { kind: string; subject: string; detail: string }[];
  warnings: string[];
}

describe("databases: all, with real PostgreSQL and MariaDB servers", { timeout: 300_000 }, () => {
  let demo: DemoDir;
  let pg: PostgresServer;
  let maria: MariadbServer;
  const env = () => ({ ...demo.env, PG_PASSWORD: pgPassword, MARIA_PASSWORD: mariaPassword });
  const cli = (...args: string[]) => runCli(["--config", demo.config, ...args], { env: env() });
  const plan = async () => {
    const result = await cli("plan", "--json", "--now", now);
    assert.equal(result.code, 0, result.stderr);
    return JSON.parse(result.stdout) as PlanJson;
  };
  const backups = (plan: PlanJson) =>
    plan.actions.filter((a) => a.type === "backup").map((a) => `${a.source}: ${a.reason}`);
  const snapshotSources = async () => {
    const listed = await runTool("restic", ["--no-cache", "snapshots", "--json"], {
      env: { RESTIC_REPOSITORY: demo.repository, RESTIC_PASSWORD: demo.env.DEMO_RESTIC_PASSWORD },
    });
    assert.equal(listed.code, 0, listed.stderr);
    return (JSON.parse(listed.stdout) as { tags: string[] }[])
      .map((s) => s.tags.find((t) => t.startsWith("source="))?.slice("source=".length)).sort();
  };

  before(async () => {
    demo = makeDemo();
    [pg, maria] = await Promise.all([startPostgres(), startMariadb()]);
    await pg.psql(`CREATE ROLE backup_admin LOGIN SUPERUSER PASSWORD '${pgPassword}'`);
    for (const database of ["shop", "wiki", "scratch_1"]) await pg.createDatabase(database);
    await pg.psql("CREATE TABLE pages (id int primary key, title text); INSERT INTO pages VALUES (1, 'Home')", "wiki");
    await maria.sql(
      `CREATE USER 'backup'@'127.0.0.1' IDENTIFIED BY ${mariadbLiteral(mariaPassword)};\n` +
        "GRANT ALL PRIVILEGES ON *.* TO 'backup'@'127.0.0.1';\n" +
        "CREATE DATABASE app; CREATE DATABASE blog; CREATE DATABASE test_tmp;\n" +
        "CREATE TABLE app.users (id int primary key); INSERT INTO app.users VALUES (1), (2);",
    );
    writeFileSync(
      demo.config,
      `import { defineConfig, env, mysql, postgres, restic } from "backupctl";
export default defineConfig({
  repositories: { local: restic({ url: ".backupctl/restic-demo", password: env("DEMO_RESTIC_PASSWORD") }) },
  projects: { fleet: { schedule: "0 3 * * *", repositories: ["local"], retention: { daily: 7 },
    sources: [
      postgres({ name: "pg", host: "127.0.0.1", port: ${pg.port}, user: "backup_admin", password: env("PG_PASSWORD"),
        databases: "all", exclude: ["scratch_*"], globals: true }),
      mysql({ name: "maria", host: "127.0.0.1", port: ${maria.port}, user: "backup", password: env("MARIA_PASSWORD"),
        databases: "all", exclude: ["test_*"] }),
    ] } },
});
`,
    );
  });
  after(async () => {
    await Promise.all([pg?.stop(), maria?.stop()]);
    demo?.cleanup();
  });

  it("plans each database of both servers as a new source, globals once, excluded and system ones left out", async () => {
    assert.deepEqual(backups(await plan()), [
      "pg-globals: never backed up",
      "pg-postgres: new database, never backed up",
      "pg-shop: new database, never backed up",
      "pg-wiki: new database, never backed up",
      "maria-app: new database, never backed up",
      "maria-blog: new database, never backed up",
    ]);
  });

  it("applies: one snapshot per database, the password nowhere in the output", async () => {
    const result = await cli("apply", "--now", now);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.ok(!(result.stdout + result.stderr).includes(pgPassword));
    assert.ok(!(result.stdout + result.stderr).includes(mariaPassword));
    assert.deepEqual(await snapshotSources(), [
      "maria-app",
      "maria-blog",
      "pg-globals",
      "pg-postgres",
      "pg-shop",
      "pg-wiki",
    ]);
    const dump = await runTool("restic", [
      "--no-cache",
      "dump",
      "latest",
      "/maria-app.sql",
      "--tag",
      "source=maria-app",
    ], {
      env: { RESTIC_REPOSITORY: demo.repository, RESTIC_PASSWORD: demo.env.DEMO_RESTIC_PASSWORD },
    });
    assert.match(dump.stdout, /INSERT INTO `users` VALUES\s*\(1\),\s*\(2\)/);
  });

  it("a database created since shows as new, a dropped one as no longer present, its snapshot kept", async () => {
    await pg.createDatabase("shop_v2");
    await pg.psql("DROP DATABASE wiki");
    await maria.sql("DROP DATABASE blog; CREATE DATABASE forum");
    const after = await plan();
    assert.deepEqual(backups(after), [
      "pg-shop_v2: new database, never backed up",
      "maria-forum: new database, never backed up",
    ]);
    assert.deepEqual(
      after.not_managed.map((item) => `${item.subject}: ${item.detail}`),
      [
        "fleet/maria-blog in local: 1 snapshot: database no longer present on the server of maria (dropped, renamed " +
        "or excluded); its snapshots are kept",
        "fleet/pg-wiki in local: 1 snapshot: database no longer present on the server of pg (dropped, renamed or " +
        "excluded); its snapshots are kept",
      ].sort(),
    );
    const text = await cli("plan", "--now", now);
    assert.match(text.stdout, /\+ backup pg-shop_v2 → local {2}new database, never backed up/);
    assert.match(text.stdout, /\? fleet\/pg-wiki in local: 1 snapshot: database no longer present/);
  });

  it("restores the dropped database by its source name", async () => {
    await pg.createDatabase("wiki_restored");
    const result = await cli(
      "restore",
      "fleet",
      "--source",
      "pg-wiki",
      "--into-database",
      "--target-db",
      `postgresql://backup_admin@127.0.0.1:${pg.port}/wiki_restored?passwordEnv=PG_PASSWORD`,
    );
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.equal((await pg.psql("SELECT title FROM pages WHERE id = 1", "wiki_restored")).trim(), "Home");
  });

  it("a server that cannot be reached is said so, and the databases the state knows are still planned", async () => {
    await pg.pause();
    try {
      const later = "2026-12-02T03:30:00Z";
      const result = await cli("plan", "--json", "--now", later);
      assert.equal(result.code, 0, result.stderr);
      const planned = JSON.parse(result.stdout) as PlanJson;
      const warning = planned.warnings.find((w) => w.includes('source pg (databases: "all")'));
      assert.ok(warning, planned.warnings.join("\n"));
      assert.match(warning, /could not be listed: psql failed/);
      assert.match(warning, /The 3 databases backed up from it before are planned/);
      const pgBackups = planned.actions.filter((a) => a.type === "backup" && a.source?.startsWith("pg-"))
        .map((a) => a.source);
      assert.deepEqual(pgBackups, ["pg-globals", "pg-postgres", "pg-shop", "pg-wiki"]);
      // Nothing is said to be gone from a server that was not asked.
      assert.ok(!planned.not_managed.some((item) => item.subject.includes("pg-")), JSON.stringify(planned.not_managed));
    } finally {
      await pg.resume();
    }
  });
});
