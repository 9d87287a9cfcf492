/**
 * The everyday commands end to end on a demo: `status` (the table, its JSON and its exit code), `history` (stages,
 * filters, JSON), `restic R -- ARGS` (the repository's credentials without a password in any argv, restic's exit
 * code) and the event log (`--log-format json`, `--log-file`). Also: the history queries run on the audit's indexes,
 * and a project that never succeeded (status after an interrupted run; a failing apply without runtime warnings).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { sql } from "kysely";
import { StateStore } from "../../src/state/store.ts";
import { runCli } from "../support/cli.ts";
import { type DemoDir, makeDemo } from "../support/demo.ts";
import { sampleCommandLines } from "../support/inspect.ts";
import { storeDb } from "../support/state-db.ts";

const dayAt = (n: number, hour = 10) => new Date(Date.UTC(2026, 10, 1 + n, hour)).toISOString().replace(".000Z", "Z");

describe("operator commands", () => {
  let demo: DemoDir;
  const password = "operator-test-password-5521";
  const cli = (args: string[], env: Record<string, string> = {}) =>
    runCli(["--config", demo.config, ...args], { env: { ...demo.env, ...env } });
  const failing = () =>
    writeFileSync(
      demo.config,
      readFileSync(demo.config, "utf8").replace(
        'sqlite({ path: "demo/app.db" })',
        'sqlite({ path: "demo/missing.db" })',
      ),
    );

  before(async () => {
    demo = makeDemo(password);
    const first = await cli(["apply", "--now", dayAt(1)]);
    assert.equal(first.code, 0, first.stdout + first.stderr);
  });
  after(() => demo.cleanup());

  it("status: one row per project, exit 0 while healthy, JSON with health, checks, drills and notifications", async () => {
    const result = await cli(["status", "--now", dayAt(1, 11)]);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    const [header, row] = result.stdout.trim().split("\n");
    assert.match(
      header,
      /PROJECT\s+LAST SUCCESS\s+LAST RESULT\s+NEXT DUE\s+SNAPSHOTS\s+LAST CHECK\s+LAST DRILL\s+NOTIFY/,
    );
    assert.match(
      row,
      /^✓\s+demo\s+2026-11-02 10:00:\d\d\+00:00 \(\d+[hm]( \d+[ms])? ago\)\s+succeeded\s+2026-11-03 03:00:00\+00:00\s+local 2, newest \d+[hm]( \d+[ms])? ago /,
    );
    const json = JSON.parse((await cli(["status", "--json", "--now", dayAt(1, 11)])).stdout);
    const [project] = json.projects;
    assert.equal(project.health, "ok");
    assert.equal(project.overdue, false);
    assert.deepEqual(Object.keys(project.last_check), ["local"]);
    assert.equal(project.last_drill, null);
    assert.equal(project.pending_notifications, 0);
  });

  it("status exits 1 and names the error once the last run failed; history shows the failed stage", async () => {
    failing();
    const apply = await cli(["apply", "--now", dayAt(2)]);
    assert.equal(apply.code, 1);
    const status = await cli(["status", "--now", dayAt(2, 11)]);
    assert.equal(status.code, 1, status.stdout);
    assert.match(status.stdout, /^✗\s+demo\s.*\sfailed\s/m);
    assert.match(status.stdout, /^demo: last run \S+ failed: backup missing: .*does not exist/m);

    const history = await cli(["history"]);
    assert.equal(history.code, 0, history.stderr);
    const lines = history.stdout.split("\n");
    assert.match(lines[0], /^✗ 2026-11-03 10:00:\d\d\+00:00 {2}demo {2}failed in \S+( \S+)? {2}\(\S+, apply on \S+\)$/);
    assert.match(history.stdout, /^ {4}✗ backup missing → local/m);
    assert.match(history.stdout, /^ {8}.*demo\/missing\.db does not exist/m);
    assert.match(history.stdout, /^✓ 2026-11-02 10:00:\d\d\+00:00 {2}demo {2}succeeded/m);
    assert.match(
      history.stdout,
      /^ {4}✓ backup app → local {2}\(\S+( \S+)?, [\d.]+ KiB read, [\d.]+ (B|KiB) added, snapshot [0-9a-f]{8}\)$/m,
    );

    const failedOnly = JSON.parse((await cli(["history", "--failed", "--json", "--kind", "backup"])).stdout);
    assert.equal(failedOnly.length, 1);
    assert.equal(failedOnly[0].status, "failed");
    const failedStage = failedOnly[0].stages.find((s: { status: string }) => s.status === "failed");
    assert.equal(failedStage.type, "backup");
    assert.equal(failedStage.source, "missing");
    assert.match(failedStage.error, /does not exist/);
    assert.ok(
      failedOnly[0].stages.some((s: { source: string; status: string }) =>
        s.source === "uploads" && s.status === "succeeded"
      ),
      "the files source still ran",
    );
    const since = JSON.parse(
      (await cli(["history", "--since", "2026-11-03T00:00:00Z", "--json", "--kind=backup"])).stdout,
    );
    assert.deepEqual(since.map((r: { status: string }) => r.status), ["failed"]);
    assert.equal(JSON.parse((await cli(["history", "--limit", "1", "--json"])).stdout).length, 1);
    assert.equal(JSON.parse((await cli(["history", "--project", "other", "--json"])).stdout).length, 0);
    const bad = await cli(["history", "--since", "last tuesday"]);
    assert.equal(bad.code, 64);
    assert.match(bad.stderr, /--since: expected an ISO time or a duration/);
  });

  it("restic R -- ARGS runs restic with the repository's credentials, none of them in any argv", async () => {
    // `check` runs long enough (a second or so) for the sampler to see restic's command line.
    const sampler = sampleCommandLines();
    const check = await cli(["restic", "local", "--", "check"]);
    const seen = sampler.stop();
    assert.equal(check.code, 0, check.stderr);
    assert.match(check.stdout, /no errors were found/);
    assert.ok(seen.commandLines.some((line) => /^(\S*\/)?restic check\b/.test(line)), "restic ran");
    assert.ok(!seen.commandLines.some((line) => line.includes(password)), "the password is in no command line");
    const snapshots = await cli(["restic", "local", "--", "snapshots", "--json"]);
    assert.equal(snapshots.code, 0, snapshots.stderr);
    // Day 1: app and uploads; day 2 (app failing): uploads again.
    assert.equal((JSON.parse(snapshots.stdout) as unknown[]).length, 3);
    const failed = await cli(["restic", "local", "--", "cat", "blob", "0000"]);
    assert.equal(failed.code, 1, "restic's own exit code");
    const wrong = await cli(["restic", "local", "--", "snapshots"], { DEMO_RESTIC_PASSWORD: "not-it" });
    // restic 0.14 exits 1 for a wrong password (12 from 0.17 on): whatever it returns is passed through.
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /wrong password/);
    const unknown = await cli(["restic", "nowhere", "--", "snapshots"]);
    assert.equal(unknown.code, 64);
    assert.match(unknown.stderr, /unknown repository "nowhere"; declared: local/);
  });

  it("--log-format json and --log-file write one JSON record per line with the run id, project and stage", async () => {
    writeFileSync(demo.config, readFileSync(demo.config, "utf8").replace("demo/missing.db", "demo/app.db"));
    const file = join(demo.dir, "logs", "backupctl.log");
    const result = await cli(["--log-format", "json", "--log-file", file, "apply", "--now", dayAt(3)]);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    const records = result.stdout.trim().split("\n").map((line) => JSON.parse(line));
    const backup = records.find((r) => /^\s+\+ backup demo\/app/.test(r.message));
    assert.ok(backup, result.stdout);
    assert.equal(backup.project, "demo");
    assert.match(backup.run_id, /^\d{8}T\d{6}Z-[0-9a-f]{6}$/);
    assert.equal(backup.stage, "backup demo/app");
    assert.equal(backup.level, "INFO");
    const logged = readFileSync(file, "utf8").trim().split("\n").map((line) => JSON.parse(line));
    assert.deepEqual(logged.map((r) => r.message), records.map((r) => r.message));
    assert.ok(!readFileSync(file, "utf8").includes(password));

    // --log-file with the human output: the output keeps its blank lines, the file gets no empty records.
    const textFile = join(demo.dir, "logs", "text.log");
    const text = await cli(["--log-file", textFile, "apply", "--now", dayAt(4)]);
    assert.equal(text.code, 0, text.stdout + text.stderr);
    assert.match(text.stdout, /\n\nApply complete: /);
    const fileRecords = readFileSync(textFile, "utf8").trim().split("\n").map((line) => JSON.parse(line));
    assert.ok(fileRecords.length > 3, JSON.stringify(fileRecords));
    assert.deepEqual(fileRecords.filter((r) => String(r.message).trim() === ""), []);
    assert.ok(fileRecords.some((r) => /^Apply complete: /.test(r.message)), JSON.stringify(fileRecords));
  });

  it("the history queries use the audit's indexes", async () => {
    const store = await StateStore.open(join(demo.dir, ".backupctl"));
    try {
      const base = storeDb(store).selectFrom("runs").selectAll().orderBy("started_at", "desc").limit(20);
      for (
        const query of [
          base.where("project", "in", ["demo"]),
          base.where("status", "in", ["failed", "interrupted"]),
          base.where("started_at", ">=", "2026-11-01"),
          base,
        ]
      ) {
        const compiled = query.compile();
        const explained = await sql<{ detail: string }>`EXPLAIN QUERY PLAN ${
          sql.raw(inline(compiled.sql, compiled.parameters))
        }`.execute(storeDb(store));
        const detail = explained.rows.map((r) => r.detail).join("; ");
        assert.match(detail, /USING (COVERING )?INDEX runs_/, `${compiled.sql}: ${detail}`);
        assert.doesNotMatch(detail, /SCAN runs(?! USING)/, `${compiled.sql}: ${detail}`);
      }
      // The operations audited without a run (forget, prune, check, restore, init …), with each filter and none.
      const operations = storeDb(store).selectFrom("stages").selectAll().where("run_id", "is", null)
        .orderBy("started_at", "desc").orderBy("id", "desc").limit(20);
      for (
        const query of [
          operations,
          operations.where("type", "in", ["forget", "prune"]),
          operations.where("project", "in", ["demo"]),
          operations.where("status", "in", ["failed", "interrupted"]),
          operations.where("started_at", ">=", "2026-11-01"),
        ]
      ) {
        const compiled = query.compile();
        const explained = await sql<{ detail: string }>`EXPLAIN QUERY PLAN ${
          sql.raw(inline(compiled.sql, compiled.parameters))
        }`.execute(storeDb(store));
        const detail = explained.rows.map((r) => r.detail).join("; ");
        assert.match(detail, /USING (COVERING )?INDEX stages_/, `${compiled.sql}: ${detail}`);
        assert.doesNotMatch(detail, /SCAN stages(?! USING)/, `${compiled.sql}: ${detail}`);
      }
    } finally {
      await store.close();
    }
  });
});

describe("a project that never succeeded", () => {
  let demo: DemoDir;
  const cli = (args: string[]) => runCli(["--config", demo.config, ...args], { env: demo.env });

  before(() => {
    demo = makeDemo();
    writeFileSync(
      demo.config,
      `import { command, defineConfig, env, restic } from "backupctl";
export default defineConfig({
  timezone: "UTC",
  repositories: { local: restic({ url: ".backupctl/restic-demo", password: env("DEMO_RESTIC_PASSWORD") }) },
  projects: {
    dump: {
      schedule: "0 3 * * *",
      retry: { attempts: 1 },
      sources: [command({ name: "prod", run: "exit 1", filename: "prod.dump" })],
      repositories: ["local"],
      retention: { last: 3 },
    },
  },
});
`,
    );
  });
  after(() => demo.cleanup());

  it("a failing apply prints no runtime deprecation warning (Deno: DEP0190 from a shell spawned with arguments)", async () => {
    const apply = await cli(["apply", "--auto-approve", "--now", dayAt(1)]);
    assert.equal(apply.code, 1, apply.stdout + apply.stderr);
    assert.match(apply.stdout, /✗ backup dump\/prod → local failed/);
    assert.doesNotMatch(apply.stdout + apply.stderr, /DeprecationWarning|DEP0\d{3}/);
  });

  it("status exits 1 when the last run was interrupted and none ever succeeded, and says so", async () => {
    // What a kill -9 of apply leaves: a run still marked running by a process that is gone.
    const store = await StateStore.open(join(demo.dir, ".backupctl"));
    const runId = "20261102T110000Z-0dead1";
    try {
      await store.startRun({
        id: runId,
        project: "dump",
        command: "apply",
        startedAt: "2026-11-02T11:00:00.000Z",
        fingerprint: "sha256:" + "0".repeat(64),
        host: hostname(),
      });
      const gone = spawnSync("true").pid!;
      await storeDb(store).updateTable("runs").set({ pid: gone, process_start: null }).where("id", "=", runId)
        .execute();
    } finally {
      await store.close();
    }
    const status = await cli(["status", "--now", dayAt(1, 12)]);
    assert.equal(status.code, 1, status.stdout + status.stderr);
    assert.match(status.stdout, new RegExp(`^  run ${runId} of dump: interrupted: process gone \\(pid \\d+`, "m"));
    assert.match(status.stdout, /^✗\s+dump\s+never\s+interrupted\s/m);
    assert.match(status.stdout, new RegExp(`^dump: never succeeded; last run ${runId} interrupted`, "m"));
    const json = JSON.parse((await cli(["status", "--json", "--now", dayAt(1, 12)])).stdout);
    assert.equal(json.projects[0].health, "failing");
    assert.equal(json.projects[0].last_success, null);
    assert.equal(json.projects[0].last_run.status, "interrupted");
  });
});

/** The query with its parameters written in (EXPLAIN QUERY PLAN takes no bound parameters here). */
function inline(text: string, parameters: readonly unknown[]): string {
  let i = 0;
  return text.replace(/\?/g, () => {
    const value = parameters[i++];
    return typeof value === "number" ? String(value) : `'${String(value).replaceAll("'", "''")}'`;
  });
}
