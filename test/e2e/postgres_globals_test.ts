/**
 * postgres({ globals: true }) with a real server: the database and its roles are backed up as two snapshots, each
 * its own source (`shop` and `shop-globals`) with its own due state and retention.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { runCli, runTool } from "../support/cli.ts";
import { type DemoDir, makeDemo } from "../support/demo.ts";
import { type PostgresServer, startPostgres } from "../support/postgres.ts";

const password = "pg-globals-secret-71x";

describe("postgres globals", () => {
  let demo: DemoDir;
  let server: PostgresServer;

  before(async () => {
    demo = makeDemo();
    server = await startPostgres();
    await server.psql(`CREATE ROLE backup_admin LOGIN SUPERUSER PASSWORD '${password}'`);
    await server.psql(`CREATE ROLE reporting NOLOGIN`);
    await server.createDatabase("shop");
    await server.psql(
      "CREATE TABLE orders (id int primary key, total numeric); INSERT INTO orders VALUES (1, 9.5)",
      "shop",
    );
    writeFileSync(
      demo.config,
      `import { defineConfig, env, postgres, restic } from "backupctl";
export default defineConfig({
  repositories: { local: restic({ url: ".backupctl/restic-demo", password: env("DEMO_RESTIC_PASSWORD") }) },
  projects: { app: { schedule: "0 3 * * *", repositories: ["local"], retention: { daily: 7 },
    sources: [postgres({ host: "127.0.0.1", port: ${server.port}, database: "shop", user: "backup_admin", password: env("PG_PASSWORD"), globals: true })] } },
});
`,
    );
  });
  after(async () => {
    await server?.stop();
    demo?.cleanup();
  });

  it("plans and backs up the database and its globals as two sources", async () => {
    const env = { ...demo.env, PG_PASSWORD: password };
    const plan = JSON.parse((await runCli(["--config", demo.config, "plan", "--json"], { env })).stdout) as {
      actions: { type: string; source?: string }[];
    };
    assert.deepEqual(plan.actions.filter((a) => a.type === "backup").map((a) => a.source), ["shop", "shop-globals"]);
    const result = await runCli(["--config", demo.config, "apply"], { env });
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.ok(!(result.stdout + result.stderr).includes(password));
    const dump = await runTool("restic", [
      "--no-cache",
      "dump",
      "latest",
      "/shop-globals.sql",
      "--tag",
      "source=shop-globals",
    ], {
      env: { RESTIC_REPOSITORY: demo.repository, RESTIC_PASSWORD: demo.env.DEMO_RESTIC_PASSWORD },
    });
    assert.equal(dump.code, 0, dump.stderr);
    assert.match(dump.stdout, /CREATE ROLE reporting;/);
    assert.match(dump.stdout, /CREATE ROLE backup_admin;/);
    const main = await runTool("restic", ["--no-cache", "dump", "latest", "/shop.pgdump", "--tag", "source=shop"], {
      env: { RESTIC_REPOSITORY: demo.repository, RESTIC_PASSWORD: demo.env.DEMO_RESTIC_PASSWORD },
    });
    assert.ok(main.stdout.startsWith("PGDMP"));
  });
});
