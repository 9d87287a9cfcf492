/**
 * Recovery time objectives and the evidence of drills (issue 22, point 4), with real restic and SQLite drills made by
 * real applies: a drill slower than its project's `verify.rto` is audited as passed and sent as `drill.slow` to a
 * webhook receiver on loopback, one within its objective is not; `status --json` gives the last drill's time against
 * the objective and the trend of the last drills; `verify --report json|markdown --since` lists every drill of the
 * period with its snapshot, what was restored and checked, duration and result, and a project with a drill declared
 * but none in the period as a gap.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { repoRoot, runCli, spawnCli, waitFor } from "../support/cli.ts";
import { type HttpReceiver, startHttpReceiver } from "../support/receivers.ts";

const day = (n: number, time = "02:00:00") => `2026-11-0${n}T${time}Z`;

describe("recovery time objectives and the evidence report of drills", () => {
  let dir = "";
  let config = "";
  let http: HttpReceiver;
  const env = { EVIDENCE_RESTIC_PASSWORD: "evidence-restic-password-4711" };
  const cli = (args: string[]) => runCli(["--config", config, ...args], { env, timeoutMs: 120_000 });
  const drillMessages = () =>
    http.requests.map((r) => JSON.parse(r.body) as { event: string; project: string; title: string })
      .filter((m) => m.event === "drill.slow" || m.event === "verify.failed");

  before(async () => {
    http = await startHttpReceiver();
    dir = mkdtempSync(join(tmpdir(), "backupctl-evidence-"));
    mkdirSync(join(dir, "data"));
    mkdirSync(join(dir, "scratch"));
    for (const name of ["shop", "fast", "idle"]) {
      execFileSync("sqlite3", [join(dir, "data", `${name}.db`)], {
        input: `CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT);
          WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300)
          INSERT INTO customers (name) SELECT 'customer ' || i FROM n;`,
      });
    }
    config = join(dir, "backup.config.ts");
    const project = (name: string, rto: string, enabled = true) => `
    ${name}: {
      enabled: ${enabled},
      schedule: "0 3 * * *",
      sources: [sqlite({ path: "data/${name}.db", name: "db" })],
      repositories: ["local"],
      retention: { last: 5 },
      notify: ["hook"],
      verify: { every: "1d", into: sqlite({ path: "scratch/${name}-drill.db" }),
        check: "SELECT count(*) FROM customers", rto: "${rto}" },
    },`;
    writeFileSync(
      config,
      `import { defineConfig, env, restic, sqlite, webhook } from ${JSON.stringify(join(repoRoot, "src", "mod.ts"))};
export default defineConfig({
  repositories: { local: restic({ url: ".backupctl/restic", password: env("EVIDENCE_RESTIC_PASSWORD") }) },
  notifiers: { hook: webhook({ url: "${http.url}/hook", events: ["drill.slow", "verify.failed"] }) },
  projects: {${project("shop", "1ms")}${project("fast", "1h")}${project("idle", "1h", false)}
  },
});
`,
    );
    // A backup, then a drill on day 1; a backup and a drill on day 2 (idle is disabled: never drilled).
    for (const [now, drills] of [[day(1), false], [day(1, "02:10:00"), true], [day(2, "02:30:00"), true]] as const) {
      const applied = await cli(["apply", "--now", now]);
      assert.equal(applied.code, 0, applied.stdout + applied.stderr);
      const slow = /! verify shop took .*, longer than its recovery time objective 1ms \(drill\.slow\)/;
      if (drills) assert.match(applied.stdout, slow);
      else assert.doesNotMatch(applied.stdout, /verify/);
      assert.doesNotMatch(applied.stdout, /verify fast took/);
    }
  });
  after(async () => {
    await http?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("sends drill.slow for a drill over its objective, and nothing for one within it", () => {
    const messages = drillMessages();
    assert.deepEqual(messages.map((m) => `${m.event} ${m.project}`), ["drill.slow shop", "drill.slow shop"]);
    assert.match(
      messages[0].title,
      /^shop: the restore drill of db took .+, longer than its recovery time objective 1ms$/,
    );
  });

  it("shows in status the last drill's time against the objective and the trend of the last drills", async () => {
    const status = await cli(["status", "--json", "--now", day(2, "06:00:00")]);
    const projects = JSON.parse(status.stdout).projects as {
      project: string;
      last_drill: { status: string; duration_ms: number; rto: string; slow: boolean } | null;
      drill_trend: { status: string; duration_ms: number }[];
    }[];
    const shop = projects.find((p) => p.project === "shop")!;
    const fast = projects.find((p) => p.project === "fast")!;
    assert.equal(shop.last_drill?.status, "succeeded");
    assert.equal(shop.last_drill?.rto, "1ms");
    assert.equal(shop.last_drill?.slow, true);
    assert.ok(shop.last_drill!.duration_ms > 1);
    assert.equal(fast.last_drill?.slow, false);
    assert.equal(shop.drill_trend.length, 2);
    assert.ok(shop.drill_trend.every((d) => d.status === "succeeded" && d.duration_ms > 0));
    assert.equal(shop.drill_trend.at(-1)!.duration_ms, shop.last_drill!.duration_ms, "oldest first, the last one last");
    const text = await cli(["status", "--now", day(2, "06:00:00")]);
    assert.match(text.stdout, /succeeded .* ago in .+ \(over its RTO 1ms\)/);
    assert.match(text.stdout, /drill times, the last ones oldest first:\n(.*\n)* {2}shop: \S+( \S+)? → \S+/);
  });

  it("exports the last drill's time and the objective in /metrics", async () => {
    // At 02:40 on day 2 nothing is due (backed up and drilled at 02:30): watch only serves.
    const watch = spawnCli(["--config", config, "watch", "--listen", "127.0.0.1:0", "--now", day(2, "02:40:00")], {
      env,
    });
    try {
      const url = await waitFor(
        "watch listening",
        () => /on (http:\/\/127\.0\.0\.1:\d+)/.exec(watch.output())?.[1],
        60_000,
      );
      const metrics = await (await fetch(`${url}/metrics`)).text();
      const value = (name: string, project: string) =>
        Number(new RegExp(`^${name}\\{project="${project}",runner="[^"]+"\\} (\\S+)$`, "m").exec(metrics)?.[1]);
      assert.ok(value("backupctl_drill_duration_seconds", "shop") > 0.001, metrics);
      assert.equal(value("backupctl_drill_rto_seconds", "shop"), 0.001);
      assert.equal(value("backupctl_drill_rto_seconds", "fast"), 3600);
    } finally {
      process.kill(watch.pid, "SIGTERM");
      await watch.done;
    }
  });

  it("lists every drill of the period with its evidence, and a declared drill with none as a gap", async () => {
    const json = await cli(["verify", "--report", "json", "--since", "2d", "--now", day(2, "06:00:00")]);
    assert.equal(json.code, 0, json.stderr);
    const report = JSON.parse(json.stdout) as {
      projects: {
        project: string;
        rto: string | null;
        drills: {
          at: string;
          snapshot: string;
          restored_and_checked: string;
          duration_ms: number;
          result: string;
          within_rto: boolean | null;
        }[];
      }[];
    };
    assert.deepEqual(report.projects.map((p) => `${p.project} ${p.drills.length}`), ["shop 2", "fast 2", "idle 0"]);
    const [shop, fast] = report.projects;
    for (const drill of [...shop.drills, ...fast.drills]) {
      assert.equal(drill.result, "succeeded");
      assert.match(drill.snapshot, /^[0-9a-f]{8,64}$/);
      assert.match(
        drill.restored_and_checked,
        /^restored db \(snapshot [0-9a-f]{8}, .+\) from local into a scratch sqlite database in .+; check query found 300 \(at least 1 expected\)$/,
      );
    }
    assert.ok(shop.drills.every((d) => d.within_rto === false));
    assert.ok(fast.drills.every((d) => d.within_rto === true));
    assert.ok(shop.drills[0].at < shop.drills[1].at, "oldest first");
    // A shorter period leaves out the first day's drills.
    const recent = JSON.parse(
      (await cli(["verify", "--report", "json", "--since", "12h", "--now", day(2, "06:00:00")]))
        .stdout,
    ) as typeof report;
    assert.deepEqual(recent.projects.map((p) => p.drills.length), [1, 1, 0]);

    const markdown = await cli(["verify", "--report", "markdown", "--since", "2d", "--now", day(2, "06:00:00")]);
    assert.match(markdown.stdout, /^# Restore drill evidence\n/);
    assert.match(markdown.stdout, /## shop\n\n2 drills, 2 passed; recovery time objective 1ms, missed 2 times\n/);
    assert.match(markdown.stdout, /\| [0-9a-f]{8} \| restored db \(snapshot .*\| passed, over the RTO \|/);
    assert.match(markdown.stdout, /## idle\n\n\*\*No drill in this period\.\*\*/);
    const bad = await cli(["verify", "--report", "pdf"]);
    assert.equal(bad.code, 64);
    assert.match(bad.stderr, /--report: expected markdown or json, got "pdf"/);
  });
});
