/**
 * A PostgreSQL state end to end (issue 20, points 1 and 2), on a real server started by the test: `apply`, `status`
 * and `history` with BACKUPCTL_STATE_URL record and read in PostgreSQL and leave no state.db; a reader writes nothing;
 * the URL's password is never shown, also when the connection fails; a password on the command line or as a literal
 * in the config is refused; `state push` / `state pull` round-trip a real state row for row.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { stateTables } from "../../src/state/copy.ts";
import { StateStore } from "../../src/state/store.ts";
import { runCli } from "../support/cli.ts";
import { type DemoDir, makeDemo } from "../support/demo.ts";
import { freePort } from "../support/postgres.ts";
import { type StateServer, stateServer, stopStateBackends } from "../support/state-backends.ts";
import { storeDb } from "../support/state-db.ts";

const now = "2026-11-02T10:00:00Z";

describe("a PostgreSQL state", () => {
  let pg: StateServer;
  let demo: DemoDir;
  const cli = (args: string[], env: Record<string, string | undefined> = {}) =>
    runCli(["--config", demo.config, ...args], { env: { ...demo.env, ...env } });
  /** The URL without its password, which then comes from PGPASSWORD. */
  const bareUrl = () => `postgresql://${pg.user}@${pg.server.host}:${pg.server.port}/${pg.database}`;
  const noPassword = (result: { stdout: string; stderr: string }) => {
    assert.ok(!result.stdout.includes(pg.password), `password in stdout: ${result.stdout}`);
    assert.ok(!result.stderr.includes(pg.password), `password in stderr: ${result.stderr}`);
  };

  before(async () => {
    pg = await stateServer();
    demo = makeDemo();
  });
  after(async () => {
    demo.cleanup();
    await stopStateBackends();
  });

  it("apply, status and history with BACKUPCTL_STATE_URL record and read in PostgreSQL, not in state.db", async () => {
    const env = { BACKUPCTL_STATE_URL: pg.url };
    const apply = await cli(["apply", "--auto-approve", "--now", now], env);
    assert.equal(apply.code, 0, apply.stdout + apply.stderr);
    noPassword(apply);
    assert.equal(existsSync(join(demo.dir, ".backupctl", "state.db")), false, "no SQLite state");
    const runs = await pg.server.psql(
      "SELECT project || ' ' || status FROM backupctl.runs ORDER BY started_at",
      pg.database,
    );
    assert.deepEqual(runs.trim().split("\n"), ["demo succeeded"]);
    const stages = await pg.server.psql(
      "SELECT count(*) FROM backupctl.stages WHERE type = 'backup' AND status = 'succeeded' AND bytes > 0",
      pg.database,
    );
    assert.equal(stages.trim(), "2", "both sources' backups, with their sizes");
    const snapshots = await pg.server.psql("SELECT count(*) FROM backupctl.snapshots", pg.database);
    assert.equal(snapshots.trim(), "2");

    const status = await cli(["status", "--json", "--now", now], env);
    assert.equal(status.code, 0, status.stdout + status.stderr);
    noPassword(status);
    assert.equal(status.stderr, "", "a reader of a PostgreSQL state has no warning to give");
    const projects = JSON.parse(status.stdout).projects as { name: string; last_run?: { status: string } }[];
    assert.equal(projects.length, 1);
    const history = await cli(["history", "--json"], env);
    assert.equal(history.code, 0, history.stderr);
    const entries = JSON.parse(history.stdout) as { kind: string; project: string; status: string }[];
    assert.ok(entries.some((e) => e.kind === "backup" && e.project === "demo" && e.status === "succeeded"));
    assert.ok(entries.some((e) => e.kind === "init"));
    assert.equal(existsSync(join(demo.dir, ".backupctl", "state.db")), false, "still no SQLite state");
  });

  it("a reader creates nothing: status on an empty database says to run a command that writes", async () => {
    await pg.server.createDatabase("empty", pg.user);
    const url = `postgresql://${pg.user}:${pg.password}@${pg.server.host}:${pg.server.port}/empty`;
    const status = await cli(["status"], { BACKUPCTL_STATE_URL: url });
    assert.equal(status.code, 1, status.stdout + status.stderr);
    noPassword(status);
    assert.match(status.stderr, /holds no backupctl state yet: run a command that writes \(backupctl apply\)/);
    assert.match(status.stderr, /postgresql:\/\/127\.0\.0\.1:\d+\/empty \(schema backupctl\)/);
    const schemas = await pg.server.psql("SELECT count(*) FROM pg_namespace WHERE nspname = 'backupctl'", "empty");
    assert.equal(schemas.trim(), "0", "no schema created by a reader");
  });

  it("never shows the password: a closed port, a wrong password", async () => {
    const closed = await freePort();
    const down = await cli(["apply", "--auto-approve", "--now", now], {
      BACKUPCTL_STATE_URL: `postgresql://${pg.user}:${pg.password}@127.0.0.1:${closed}/${pg.database}`,
    });
    assert.equal(down.code, 1, down.stdout + down.stderr);
    noPassword(down);
    assert.match(
      down.stderr,
      new RegExp(`postgresql://127\\.0\\.0\\.1:${closed}/state \\(schema backupctl\\) cannot be opened`),
    );
    const wrong = await cli(["history"], {
      BACKUPCTL_STATE_URL: `postgresql://${pg.user}:${pg.password}x@127.0.0.1:${pg.server.port}/${pg.database}`,
    });
    assert.equal(wrong.code, 1, wrong.stdout + wrong.stderr);
    noPassword(wrong);
    assert.ok(!wrong.stderr.includes(`${pg.password}x`));
    assert.match(wrong.stderr, /password authentication failed/);
  });

  it("refuses a password on the command line (exit 64) and as a literal in the config (exit 3)", async () => {
    const flag = await cli(["status", "--state-url", pg.url]);
    assert.equal(flag.code, 64, flag.stderr);
    noPassword(flag);
    assert.match(flag.stderr, /--state-url: the URL holds a password, .* put the URL in BACKUPCTL_STATE_URL/);

    const literal = mkdtempSync(join(tmpdir(), "backupctl-pgstate-config-"));
    try {
      const config = join(literal, "backup.config.ts");
      writeFileSync(
        config,
        readFileSync(demo.config, "utf8").replace(
          "export default defineConfig({",
          `export default defineConfig({\n  state: { url: ${JSON.stringify(pg.url)} },`,
        ),
      );
      const validate = await runCli(["--config", config, "validate"], { env: demo.env });
      assert.equal(validate.code, 3, validate.stdout + validate.stderr);
      noPassword(validate);
      assert.match(
        validate.stderr,
        /state\.url: a literal URL must not hold a password: write url: env\("BACKUPCTL_STATE_URL"\)/,
      );
    } finally {
      rmSync(literal, { recursive: true, force: true });
    }
  });

  it("state push and state pull round-trip a real state, row for row; a non-empty target needs --force", async () => {
    const local = makeDemo();
    try {
      const run = (args: string[], env: Record<string, string> = {}) =>
        runCli(["--config", local.config, ...args], { env: { ...local.env, ...env } });
      for (const at of ["2026-11-02T10:00:00Z", "2026-11-03T10:00:00Z"]) {
        const apply = await run(["apply", "--auto-approve", "--now", at]);
        assert.equal(apply.code, 0, apply.stdout + apply.stderr);
      }
      const viaPassword = { PGPASSWORD: pg.password };
      const nothing = await run(["state", "push", bareUrl(), "--state-dir", join(local.dir, "nowhere")], viaPassword);
      assert.equal(nothing.code, 64, nothing.stdout + nothing.stderr);
      assert.match(nothing.stderr, /there is no local state to push: .*nowhere\/state\.db does not exist/);
      const push = await run(["state", "push", bareUrl(), "--schema", "moved"], viaPassword);
      assert.equal(push.code, 0, push.stdout + push.stderr);
      assert.match(push.stdout, /into postgresql:\/\/127\.0\.0\.1:\d+\/state \(schema moved\)/);
      assert.match(push.stdout, /^ {2}runs +2$/m);
      assert.match(push.stdout, /verified: every table of the target holds as many rows as the source's/);

      const again = await run(["state", "push", bareUrl(), "--schema", "moved"], viaPassword);
      assert.equal(again.code, 1, again.stdout + again.stderr);
      assert.match(again.stderr, /already holds a state \(2 runs, .*\): nothing was copied.* add --force/);
      const forced = await run(["state", "push", bareUrl(), "--schema", "moved", "--force"], viaPassword);
      assert.equal(forced.code, 0, forced.stdout + forced.stderr);
      assert.match(forced.stdout, /\(replacing 2 runs, /);

      const pulledDir = join(local.dir, "pulled");
      const movedConfig = join(local.dir, "moved.config.ts");
      writeFileSync(
        movedConfig,
        readFileSync(local.config, "utf8").replace(
          "export default defineConfig({",
          'export default defineConfig({\n  state: { url: env("MOVED_STATE_URL"), schema: "moved" },',
        ),
      );
      const pull = await runCli(["--config", movedConfig, "state", "pull", join(pulledDir, "state.db")], {
        env: { ...local.env, MOVED_STATE_URL: pg.url },
      });
      assert.equal(pull.code, 0, pull.stdout + pull.stderr);
      noPassword(pull);

      const original = await StateStore.open(join(local.dir, ".backupctl"));
      const pulled = await StateStore.open(pulledDir);
      try {
        for (const { table, key } of stateTables) {
          const rows = async (store: StateStore) =>
            (await storeDb(store).selectFrom(table).selectAll().orderBy(key as never).execute())
              .map((row) => ({ ...row }));
          const expected = await rows(original);
          assert.deepEqual(await rows(pulled), expected, table);
          if (["meta", "runs", "stages", "snapshots", "repositories"].includes(table)) {
            assert.ok(expected.length > 0, table);
          }
        }
        assert.equal(await pulled.lineage(), await original.lineage());
      } finally {
        await original.close();
        await pulled.close();
      }
    } finally {
      local.cleanup();
    }
  });
});
