/**
 * A pgbackrest() source end to end, with the real CLI, a real PostgreSQL cluster archiving into a real pgBackRest
 * repository (test/support/pgbackrest.ts) and a webhook receiver on loopback: the first plan shows stanza-create and
 * a full backup, apply runs them; a stopped archive_command makes status exit 1 and apply send archive.stale; a
 * retention cut shows its expirations by label in the plan, holds them without approval and runs them with it; a
 * newest backup older than maxAge makes the project overdue in plan, status, /metrics and a backup.overdue.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type CliResult, runCli, spawnCli, waitFor } from "../support/cli.ts";
import { clusterConfigText, type PgBackRestCluster, startPgBackRestCluster } from "../support/pgbackrest.ts";
import { freePort } from "../support/postgres.ts";
import { type HttpReceiver, startHttpReceiver } from "../support/receivers.ts";

let pg: PgBackRestCluster;
let receiver: HttpReceiver;
let dir: string;

/** An ISO time to the second, as plans and messages write it. */
const isoSecond = (at: Date) => at.toISOString().replace(/\.\d{3}Z$/, "Z");

const show = (result: CliResult) => `exit ${result.code}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`;

/**
 * Writes the config: one project of the cluster's stanza, `retention`, a webhook. Fulls are due once a year, so that
 * no backup falls due while the tests run (pgBackRest stamps backups with the real clock, which --now cannot move).
 */
function writeConfig(retention: string, extra = ""): void {
  const { repository } = pg.source;
  writeFileSync(
    join(dir, "backup.config.ts"),
    `import { defineConfig, pgbackrest, webhook } from "backupctl";

export default defineConfig({
  repositories: {},
  notifiers: { ops: webhook({ url: ${JSON.stringify(`${receiver.url}/hook`)} }) },
  projects: {
    ledger: {
      schedule: "@daily",
      sources: [pgbackrest({
        stanza: "main",
        ${clusterConfigText(pg)}
        repository: { path: ${JSON.stringify(repository.path)} },
        schedule: { full: "0 0 1 1 *" },
        rpo: "10m",
      })],
      repositories: [],
      retention: ${retention},
      notify: ["ops"],${extra}
    },
  },
});
`,
  );
}

function cli(args: string[]): Promise<CliResult> {
  return runCli(["--config", join(dir, "backup.config.ts"), "--state-dir", join(dir, "state"), ...args], {
    timeoutMs: 240_000,
  });
}

async function waitUntil(condition: () => Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let wait = 20; !(await condition()); wait = Math.min(wait * 2, 500)) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, wait));
  }
}

const archiver = async () => {
  const row = await pg.server.psql(
    "SELECT failed_count || ' ' || coalesce(last_archived_wal, '-') || ' ' || coalesce(last_failed_wal, '-') " +
      "FROM pg_stat_archiver;",
  );
  const [failed, archived, lastFailed] = row.trim().split(" ");
  return { failed: Number(failed), archived, lastFailed };
};

before(async () => {
  pg = await startPgBackRestCluster({ stanza: "main" });
  receiver = await startHttpReceiver();
  dir = mkdtempSync(join(tmpdir(), "backupctl-pitr-e2e-"));
  writeConfig("{ yearly: 1 }");
});

after(async () => {
  await receiver?.stop();
  if (!process.env.KEEP) {
    await pg?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
});

describe("pgbackrest() source: plan, apply, archive health, retention", () => {
  it("plans stanza-create and a full backup, and apply runs them", async () => {
    const plan = await cli(["plan"]);
    assert.equal(plan.code, 0, show(plan));
    assert.match(plan.stdout, /\+ stanza-create main \(pgBackRest\)/, show(plan));
    assert.match(plan.stdout, /\+ backup main → stanza main \(pgBackRest full\)\s+never backed up/, show(plan));
    assert.match(plan.stdout, /Plan: 1 to back up, 0 to copy, 1 to initialize, 0 snapshots to forget, 0 checks\./);

    const json = JSON.parse((await cli(["plan", "--format", "json"])).stdout);
    assert.deepEqual(json.actions.map((a: { type: string }) => a.type), ["stanza_create", "pitr_backup"]);
    assert.equal(json.actions[1].backup_type, "full");

    const apply = await cli(["apply"]);
    assert.equal(apply.code, 0, show(apply));
    assert.match(apply.stdout, /stanza-create main \(ledger\/main\): done/, show(apply));
    assert.match(apply.stdout, /\+ backup ledger\/main → stanza main \(full\): \d{8}-\d{6}F, /, show(apply));
    const info = await pg.pgbackrest.info();
    assert.equal(info.status.code, 0, info.status.message);
    assert.deepEqual(info.backups.map((b) => b.type), ["full"]);

    const inventory = await cli(["snapshots", "--json"]);
    assert.equal(inventory.code, 0, show(inventory));
    const listed = JSON.parse(inventory.stdout) as { repository: string; id: string; backup_type: string }[];
    assert.deepEqual(listed.map((s) => [s.repository, s.id, s.backup_type]), [
      ["pgbackrest:main", info.backups[0].label, "full"],
    ]);
    const table = await cli(["snapshots"]);
    assert.match(
      table.stdout,
      new RegExp(`^${info.backups[0].label}\\s+\\S+ \\S+\\s+pgbackrest:main\\s+ledger\\s+main\\s`, "m"),
    );

    const again = await cli(["plan", "--detailed-exitcode"]);
    assert.equal(again.code, 0, show(again));
    assert.match(again.stdout, /No changes\. Backups are up to date\./);

    const history = await cli(["history", "--project", "ledger"]);
    assert.match(history.stdout, /backup/, show(history));
  });

  it("a stopped archive_command makes status exit 1 and sends archive.stale", async () => {
    const healthy = await cli(["status"]);
    assert.equal(healthy.code, 0, show(healthy));
    assert.match(healthy.stdout, /ledger\/main \(stanza main\): 1 backups, newest backup \d{8}-\d{6}F \(full/);

    await pg.server.psql("ALTER SYSTEM SET archive_command = 'false'; SELECT pg_reload_conf();");
    const before = await archiver();
    await pg.server.psql("CREATE TABLE IF NOT EXISTS t (n int); INSERT INTO t VALUES (1); SELECT pg_switch_wal();");
    await waitUntil(async () => (await archiver()).failed > before.failed, "the archiver to fail");

    const status = await cli(["status"]);
    assert.equal(status.code, 1, show(status));
    assert.match(status.stdout, /✗ archive\.stale: archiving fails: [0-9A-F]{24} failed at /, show(status));
    assert.match(status.stdout, /archive_command is 'false', not 'pgbackrest /, show(status));
    const statusJson = JSON.parse((await cli(["status", "--json"])).stdout);
    assert.equal(statusJson.projects[0].health, "failing");
    assert.match(statusJson.projects[0].pitr[0].archive_stale, /^archiving fails/);

    const plan = await cli(["plan"]);
    assert.match(plan.stdout, /! pgbackrest ledger\/main: add to postgresql\.conf \(backupctl never edits it\): /);
    assert.match(plan.stdout, /archive_mode = on; archive_command = 'pgbackrest --config=\S+main\.conf --stanza=main/);

    const requests = receiver.requests.length;
    const apply = await cli(["apply"]);
    assert.equal(apply.code, 0, show(apply));
    await receiver.waitFor(requests + 1, 15_000);
    const stale = receiver.requests.slice(requests).map((r) => JSON.parse(r.body))
      .find((m: { event: string }) => m.event === "archive.stale");
    assert.ok(stale, `no archive.stale among ${receiver.requests.slice(requests).map((r) => r.body).join("\n")}`);
    assert.equal(stale.project, "ledger");
    assert.equal(stale.stanza, "main");
    assert.match(stale.error, /^archiving fails/);

    // Sent once per episode: a second apply the same day sends no second one.
    const second = await cli(["apply"]);
    assert.equal(second.code, 0, show(second));
    assert.equal(
      receiver.requests.slice(requests).filter((r) => JSON.parse(r.body).event === "archive.stale").length,
      1,
    );

    await pg.server.psql("ALTER SYSTEM RESET archive_command; SELECT pg_reload_conf();");
    await waitUntil(async () => {
      const now = await archiver();
      return now.archived !== "-" && now.archived >= now.lastFailed;
    }, "the archiver to catch up");
    const recovered = await cli(["status"]);
    assert.equal(recovered.code, 0, show(recovered));
  });

  it("shows expirations by label, holds them when a retention cut causes them, runs them when approved", async () => {
    // Two more fulls, taken by pgBackRest directly: { yearly: 1 } with yearly fulls keeps three.
    for (let n = 0; n < 2; n++) await pg.pgbackrest.backup("full", { expireAuto: false });
    const fulls = (await pg.pgbackrest.info()).backups.filter((b) => b.type === "full").map((b) => b.label);
    assert.equal(fulls.length, 3);
    const unchanged = await cli(["plan", "--format", "json"]);
    assert.deepEqual(JSON.parse(unchanged.stdout).actions, [], show(unchanged));

    writeConfig("{ daily: 7 }");
    const plan = await cli(["plan"]);
    assert.match(
      plan.stdout,
      /! 1 pgBackRest backup of ledger\/main \(stanza main\) would be expired because retention changed \(pgBackRest repo1-retention-full 3 → 2\)/,
      show(plan),
    );
    assert.match(plan.stdout, /- expire 1 pgBackRest backup of main in stanza main \(needs approval\)/);
    assert.match(plan.stdout, new RegExp(`^\\s+${fulls[0]}$`, "m"), "the label to expire is listed");
    assert.match(plan.stdout, /Plan: 0 to back up, 0 to copy, 0 to initialize, 1 snapshots to forget, 0 checks\./);

    // Through a saved plan: what it held runs from the file once approved, as a held forget does.
    const requests = receiver.requests.length;
    const planFile = join(dir, "expire.plan.json");
    const saved = await cli(["plan", "--out", planFile]);
    assert.equal(saved.code, 0, show(saved));
    const held = await cli(["apply", planFile]);
    assert.match(
      held.stdout,
      /! HELD: expire 1 pgBackRest backup of ledger\/main \(stanza main\) needs approval/,
      show(held),
    );
    assert.match(held.stdout, new RegExp(`run \`backupctl apply ${planFile} --auto-approve\``), show(held));
    assert.deepEqual((await pg.pgbackrest.info()).backups.map((b) => b.label), fulls, "nothing expired");
    await waitUntil(
      () =>
        Promise.resolve(receiver.requests.slice(requests).some((r) => JSON.parse(r.body).event === "deletions.held")),
      "deletions.held",
    );

    const approved = await cli(["apply", planFile, "--auto-approve"]);
    assert.equal(approved.code, 0, show(approved));
    assert.match(approved.stdout, /except for deletions held for approval: only that deletion runs now, once/);
    assert.match(approved.stdout, /- expire 1 pgBackRest backup of ledger\/main \(stanza main\): done/, show(approved));
    assert.deepEqual((await pg.pgbackrest.info()).backups.map((b) => b.label), fulls.slice(1));

    const after = await cli(["plan", "--format", "json"]);
    assert.deepEqual(JSON.parse(after.stdout).actions, [], "the new retention is applied: nothing more to expire");
  });

  it("plans a restore drill of the stanza and runs it into a scratch cluster, audited", async () => {
    await pg.server.psql("INSERT INTO t VALUES (2);");
    writeConfig(
      "{ daily: 7 }",
      '\n      verify: { every: "7d", check: "SELECT count(*) FROM t", expect: { minRows: 1 } },',
    );
    const plan = await cli(["plan"]);
    assert.match(
      plan.stdout,
      /~ verify ledger \(restore drill from pgbackrest:main\)\s+never restored in a drill/,
      show(plan),
    );
    const apply = await cli(["apply"]);
    assert.equal(apply.code, 0, show(apply));
    const status = JSON.parse((await cli(["status", "--json"])).stdout);
    assert.equal(status.projects[0].last_drill?.status, "succeeded", JSON.stringify(status.projects[0]));
    const again = await cli(["plan", "--format", "json"]);
    assert.deepEqual(JSON.parse(again.stdout).actions, [], "the drill is not due again before verify.every");
  });

  it("is overdue when its newest backup is older than maxAge: plan, status (exit 1), /metrics, backup.overdue", async () => {
    writeConfig("{ daily: 7 }", '\n      maxAge: "1h",');
    const fresh = await cli(["status", "--json"]);
    assert.equal(JSON.parse(fresh.stdout).projects[0].overdue, false, show(fresh));
    const newest = (await pg.pgbackrest.info()).backups.at(-1);
    assert.ok(newest);
    // pgBackRest stamps its backups with the real clock: plan, status, apply and watch look from two hours later.
    const later = new Date(Date.now() + 2 * 3_600_000).toISOString();

    const plan = await cli(["plan", "--now", later]);
    assert.match(
      plan.stdout,
      /! project ledger is overdue: newest pgBackRest backup of main \(stanza main\) started [^,]+, longer ago than its maxAge 1h/,
      show(plan),
    );
    const status = await cli(["status", "--now", later]);
    assert.equal(status.code, 1, show(status));
    assert.match(status.stdout, /OVERDUE/, show(status));
    assert.match(
      status.stdout,
      /✗ overdue: the newest backup started \S+, longer ago than the maxAge 1h/,
      show(status),
    );
    const json = JSON.parse((await cli(["status", "--json", "--now", later])).stdout);
    assert.equal(json.projects[0].health, "overdue");
    assert.equal(json.projects[0].pitr[0].backup_overdue?.includes(isoSecond(newest.start)), true);

    const requests = receiver.requests.length;
    const apply = await cli(["apply", "--now", later]);
    assert.equal(apply.code, 0, show(apply));
    await waitUntil(
      () =>
        Promise.resolve(receiver.requests.slice(requests).some((r) => JSON.parse(r.body).event === "backup.overdue")),
      "backup.overdue",
    );
    const overdue = receiver.requests.slice(requests).map((r) => JSON.parse(r.body))
      .find((m: { event: string }) => m.event === "backup.overdue");
    assert.equal(overdue.project, "ledger");
    assert.equal(overdue.stanza, "main");
    assert.equal(overdue.lastSuccessAt, isoSecond(newest.start));
    assert.equal(overdue.maxAge, "1h");
    assert.match(overdue.title, /^ledger: no pgBackRest backup of main for 2h/);

    const port = await freePort();
    const watch = spawnCli([
      "--config",
      join(dir, "backup.config.ts"),
      "--state-dir",
      join(dir, "state"),
      "watch",
      "--now",
      later,
      "--listen",
      `127.0.0.1:${port}`,
    ]);
    try {
      await waitFor("watch to serve /metrics", () => watch.output().includes(`127.0.0.1:${port}`));
      const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      assert.match(metrics, /^backupctl_overdue\{project="ledger"[^}]*\} 1$/m, metrics);
    } finally {
      process.kill(watch.pid, "SIGTERM");
      await watch.done;
    }
  });
});
