/**
 * The planner end to end: days of backups simulated with --now against a real restic repository, routine and
 * approval-gated forgets, saved plans and their refusals, not-managed snapshots and checks.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { runCli, runTool } from "../support/cli.ts";
import { type DemoDir, makeDemo } from "../support/demo.ts";

interface Action {
  type: string;
  source?: string;
  repository: string;
  snapshots?: string[];
  approval?: string;
  approval_reason?: string;
  reason: string;
}
interface PlanJson {
  actions: Action[];
  summary: Record<string, number>;
  not_managed: { kind: string; subject: string; detail: string }[];
  state: { serial: number };
}
interface ResticSnapshot {
  id: string;
  time: string;
  tags?: string[];
}

const dayAt = (n: number) => new Date(Date.UTC(2026, 10, 1 + n, 10, 0, 0)).toISOString().replace(".000Z", "Z");

function writeConfig(
  demo: DemoDir,
  retention: string,
  sources = `sqlite({ path: "demo/app.db" }), files({ name: "uploads", paths: ["demo/uploads"] })`,
): void {
  writeFileSync(
    demo.config,
    `import { defineConfig, env, files, restic, sqlite } from "backupctl";
export default defineConfig({
  repositories: { local: restic({ url: ".backupctl/restic-demo", password: env("DEMO_RESTIC_PASSWORD") }) },
  projects: {
    demo: { schedule: "0 3 * * *", sources: [${sources}], repositories: ["local"], retention: ${retention} },
  },
});
`,
  );
}

describe("planner end to end with restic", () => {
  let demo: DemoDir;
  const cli = (args: string[]) => runCli(["--config", demo.config, ...args], { env: demo.env });
  const plan = async (now: string) => {
    const result = await cli(["plan", "--now", now, "--json"]);
    assert.equal(result.code, 0, result.stderr);
    return JSON.parse(result.stdout) as PlanJson;
  };
  const snapshots = async (source: string) => {
    const result = await runTool("restic", ["--no-cache", "snapshots", "--json", "--tag", `source=${source}`], {
      env: { RESTIC_REPOSITORY: demo.repository, RESTIC_PASSWORD: demo.env.DEMO_RESTIC_PASSWORD },
    });
    assert.equal(result.code, 0, result.stderr);
    return (JSON.parse(result.stdout) as ResticSnapshot[]).sort((a, b) => a.time.localeCompare(b.time));
  };

  before(() => {
    demo = makeDemo();
    writeConfig(demo, "{ daily: 3 }");
  });
  after(() => demo.cleanup());

  it("four days of backups, then routine retention forgets exactly the oldest snapshot by id", async () => {
    for (let day = 1; day <= 4; day++) {
      const result = await cli(["apply", "--now", dayAt(day)]);
      assert.equal(result.code, 0, result.stdout + result.stderr);
    }
    const before = await snapshots("app");
    assert.equal(before.length, 4);
    const planned = await plan(dayAt(5));
    const forget = planned.actions.filter((a) => a.type === "forget");
    assert.deepEqual(forget.map((a) => [a.source, a.approval, a.snapshots]), [
      ["app", "routine", [before[0].id]],
      ["uploads", "routine", [(await snapshots("uploads"))[0].id]],
    ]);
    assert.ok(
      planned.actions.some((a) =>
        a.type === "prune" && a.reason === "after forgetting 2 snapshots; never pruned before"
      ),
    );
    const text = await cli(["plan", "--now", dayAt(5)]);
    assert.match(text.stdout, /- forget 1 snapshot of app in local {2}retention daily 3 keeps 3 of 4 snapshots/);
    assert.match(text.stdout, /Plan: 2 to back up, 0 to copy, 0 to initialize, 2 snapshots to forget, 0 checks\./);

    const applied = await cli(["apply", "--now", dayAt(5)]);
    assert.equal(applied.code, 0, applied.stdout + applied.stderr);
    assert.match(applied.stdout, /- forget 1 snapshot of demo\/app in local: done/);
    assert.match(applied.stdout, /~ prune local: done/);
    const after = await snapshots("app");
    assert.equal(after.length, 4, "day 5 added, day 1 forgotten");
    assert.ok(!after.some((s) => s.id === before[0].id), "the planned id is gone");
    assert.ok(before.slice(1).every((s) => after.some((a) => a.id === s.id)), "the others are kept");
  });

  it("a reduced retention needs approval: held without --auto-approve (exit 0), done with it", async () => {
    writeConfig(demo, "{ daily: 1 }");
    const planned = await plan(dayAt(5));
    const forget = planned.actions.filter((a) => a.type === "forget");
    assert.equal(forget.length, 2);
    for (const action of forget) {
      assert.equal(action.approval, "required");
      assert.equal(action.approval_reason, "retention changed (daily 3 → 1)");
    }
    const text = await cli(["plan", "--now", dayAt(5)]);
    assert.match(
      text.stdout,
      /^! 3 snapshots of demo\/app in local would be forgotten because retention changed \(daily 3 → 1\)$/m,
    );

    const held = await cli(["apply", "--now", dayAt(5)]);
    assert.equal(held.code, 0, held.stdout + held.stderr);
    assert.match(held.stdout, /! HELD: forget 3 snapshots of demo\/app in local needs approval/);
    assert.match(held.stderr, /WARNING: 2 deletions were held back because they need approval/);
    assert.match(held.stdout, /~ prune local: skipped, none of its deletions ran/);
    assert.equal((await snapshots("app")).length, 4, "nothing forgotten");
    const again = await plan(dayAt(5));
    assert.equal(again.actions.filter((a) => a.approval === "required").length, 2, "still needs approval");

    const approved = await cli(["apply", "--now", dayAt(5), "--auto-approve"]);
    assert.equal(approved.code, 0, approved.stdout + approved.stderr);
    const left = await snapshots("app");
    assert.equal(left.length, 1);
    assert.equal(left[0].time.slice(0, 10), dayAt(5).slice(0, 10), "the newest is kept");
    const settled = await plan(dayAt(5));
    assert.deepEqual(settled.actions, [], "the new policy is now the applied one");
  });

  it("snapshots outside backupctl and of a dropped source are reported as not managed, never forgotten", async () => {
    const foreign = await runTool("restic", [
      "--no-cache",
      "backup",
      "--host",
      "elsewhere",
      "--tag",
      "manual",
      join(demo.dir, "demo", "uploads"),
    ], {
      env: { RESTIC_REPOSITORY: demo.repository, RESTIC_PASSWORD: demo.env.DEMO_RESTIC_PASSWORD },
    });
    assert.equal(foreign.code, 0, foreign.stderr);
    writeConfig(demo, "{ daily: 1 }", `sqlite({ path: "demo/app.db" })`);
    const applied = await cli(["apply", "--now", dayAt(6)]);
    assert.equal(applied.code, 0, applied.stdout + applied.stderr);
    const planned = await plan(dayAt(6));
    assert.deepEqual(planned.not_managed.map((n) => [n.kind, n.subject]).sort(), [
      ["foreign", "local: snapshots not made by backupctl"],
      ["source", "demo/uploads in local"],
    ]);
    assert.ok(!planned.actions.some((a) => a.source === "uploads"), "nothing is planned for the dropped source");
    const text = await cli(["plan", "--now", dayAt(6)]);
    assert.match(text.stdout, /^Not managed \(reported, never deleted\):$/m);
    assert.match(
      text.stdout,
      /^ {2}\? demo\/uploads in local: 1 snapshot: source no longer declared; its snapshots are kept$/m,
    );
    assert.match(text.stdout, /^ {2}\? local: snapshots not made by backupctl: 1 snapshot: kept as they are$/m);
  });

  it("checks the repository a week after its initialization, and again a week after that check", async () => {
    const planned = await plan(dayAt(9));
    const check = planned.actions.find((a) => a.type === "check");
    assert.ok(check, JSON.stringify(planned.actions));
    assert.match(
      check.reason,
      /^never checked since initialization 2026-11-02T10:00:\d\dZ \(\d+d \d+h ago\), every 7d$/,
    );
    const applied = await cli(["apply", "--now", dayAt(9)]);
    assert.equal(applied.code, 0, applied.stdout + applied.stderr);
    assert.match(applied.stdout, /~ check local: done/);
    assert.ok(!(await plan(dayAt(10))).actions.some((a) => a.type === "check"));
    // The check ran a few seconds after dayAt(9) (after the backups): a week later is dayAt(17) at the latest.
    assert.ok((await plan(dayAt(17))).actions.some((a) => a.type === "check"));
  });

  it("a saved plan applies once; edited, stale or malformed plan files are refused", async () => {
    const file = join(demo.dir, "plans", "next.json");
    const saved = await cli(["plan", "--now", dayAt(11), "--out", file]);
    assert.equal(saved.code, 0, saved.stderr);
    assert.match(saved.stderr, /Saved the plan to .*next\.json/);
    const document = JSON.parse(readFileSync(file, "utf8")) as PlanJson & { checksum: string; plan_id: string };
    assert.match(document.checksum, /^sha256:[0-9a-f]{64}$/);

    const edited = join(demo.dir, "edited.json");
    writeFileSync(edited, JSON.stringify({ ...document, actions: document.actions.slice(1) }));
    const refusedEdit = await cli(["apply", edited, "--now", dayAt(11)]);
    assert.equal(refusedEdit.code, 5, refusedEdit.stderr);
    assert.match(refusedEdit.stderr, /was edited after it was made/);

    const truncated = join(demo.dir, "truncated.json");
    writeFileSync(truncated, readFileSync(file, "utf8").slice(0, 200));
    const refusedTruncated = await cli(["apply", truncated]);
    assert.equal(refusedTruncated.code, 64);
    assert.match(refusedTruncated.stderr, /is not a plan file/);

    const first = await cli(["apply", file, "--now", dayAt(11)]);
    assert.equal(first.code, 0, first.stdout + first.stderr);
    assert.match(first.stdout, /\+ backup demo\/app → local: snapshot [0-9a-f]{8}/);
    const second = await cli(["apply", file, "--now", dayAt(11)]);
    assert.equal(second.code, 5);
    assert.match(second.stderr, /this plan was already applied/);

    const stale = join(demo.dir, "stale.json");
    assert.equal((await cli(["plan", "--now", dayAt(12), "--out", stale])).code, 0);
    assert.equal((await cli(["apply", "--now", dayAt(12)])).code, 0);
    const refusedStale = await cli(["apply", stale, "--now", dayAt(12)]);
    assert.equal(refusedStale.code, 5);
    assert.match(refusedStale.stderr, /the state changed since the plan was made \(serial \d+ → \d+\)/);

    const changed = join(demo.dir, "changed.json");
    assert.equal((await cli(["plan", "--now", dayAt(13), "--out", changed])).code, 0);
    writeConfig(demo, "{ daily: 2 }", `sqlite({ path: "demo/app.db" })`);
    const refusedConfig = await cli(["apply", changed, "--now", dayAt(13)]);
    assert.equal(refusedConfig.code, 5);
    assert.match(refusedConfig.stderr, /the configuration changed since the plan was made/);
  });

  it("renders a pull-request comment in markdown", async () => {
    const result = await cli(["plan", "--now", dayAt(14), "--format", "markdown"]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^### backupctl plan: 📋 Changes\n/);
    assert.match(
      result.stdout,
      /\*\*Plan: 1 to back up, 0 to copy, 0 to initialize, 0 snapshots to forget, 0 checks\.\*\*/,
    );
    assert.match(result.stdout, /<details><summary>Full plan<\/summary>/);
    assert.ok(result.stdout.length < 60_000);
  });
});
