/**
 * Back up now (issue 18, point 1), through the real CLI with real restic: `backup PROJECT…` runs the project's backup
 * at the real time, outside the schedule, with the copies, audit, locks and notifications of a scheduled one, and
 * leaves the schedule's next slot where it was; `--source`/`--repository` narrow it; unknown names are usage errors;
 * `apply --dry-run` points to `plan`; `forget PROJECT…` applies retention now under apply's approval rules.
 * Runs under `deno test -A test/e2e/backup_now_test.ts` and
 * `bun --no-install test --timeout 300000 ./test/e2e/backup_now_test.ts`.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { runCli, runTool, spawnCli, waitFor } from "../support/cli.ts";
import { type DemoDir, makeDemo } from "../support/demo.ts";

interface Snapshot {
  id: string;
  time: string;
  tags: string[];
  original?: string;
}

interface PlanJson {
  actions: { type: string; source?: string; repository?: string; approval?: string; snapshots?: string[] }[];
  next_due: { project: string; at: string }[];
}

describe("backup now and forget now", () => {
  let demo: DemoDir;
  const second = () => join(demo.dir, "second-repo");
  const gate = () => join(demo.dir, "gate");
  const cli = (args: string[]) => runCli(["--config", demo.config, ...args], { env: demo.env });
  const snapshots = async (repository: string) => {
    const result = await runTool("restic", ["--no-cache", "snapshots", "--json"], {
      env: { RESTIC_REPOSITORY: repository, RESTIC_PASSWORD: demo.env.DEMO_RESTIC_PASSWORD },
    });
    assert.equal(result.code, 0, result.stderr);
    return JSON.parse(result.stdout) as Snapshot[];
  };
  const sql = async (query: string) => {
    const result = await runTool("sqlite3", ["-json", join(demo.dir, ".backupctl", "state.db"), query]);
    assert.equal(result.code, 0, result.stderr);
    return (result.stdout.trim() ? JSON.parse(result.stdout) : []) as Record<string, unknown>[];
  };
  const planJson = async () => {
    const result = await cli(["plan", "--project", "demo", "--json"]);
    assert.equal(result.code, 0, result.stderr);
    return JSON.parse(result.stdout) as PlanJson;
  };
  const config = (retention: string) =>
    writeFileSync(
      demo.config,
      `import { command, defineConfig, env, files, restic, sqlite } from "backupctl";
export default defineConfig({
  timezone: "UTC",
  repositories: {
    local: restic({ url: ".backupctl/restic-demo", password: env("DEMO_RESTIC_PASSWORD") }),
    second: restic({ url: "second-repo", password: env("DEMO_RESTIC_PASSWORD") }),
  },
  projects: {
    demo: {
      schedule: "0 * * * *",
      sources: [sqlite({ path: "demo/app.db" }), files({ name: "uploads", paths: ["demo/uploads"] })],
      repositories: ["local", "second"],
      retention: ${retention},
    },
    slow: {
      schedule: "0 3 * * *",
      sources: [command({ name: "slow", filename: "slow.txt", run: "while [ ! -e ${gate()} ]; do sleep 0.1; done; echo slow-data" })],
      repositories: ["local"],
      retention: { last: 10 },
    },
  },
});
`,
    );
  /**
   * Each (source, repository) group of demo: how many snapshots restic holds. One listing per repository, counted
   * here by tags: every restic call costs its key derivation (~0.7 s of CPU), the listing itself is small.
   */
  const counts = async () => {
    const out: Record<string, number> = {};
    for (const [name, repository] of [["local", demo.repository], ["second", second()]]) {
      const listed = await snapshots(repository);
      for (const source of ["app", "uploads"]) {
        const tags = ["project=demo", `source=${source}`];
        out[`${source}@${name}`] = listed.filter((s) => tags.every((tag) => s.tags.includes(tag))).length;
      }
    }
    return out;
  };

  before(() => {
    demo = makeDemo();
    config("{ last: 3 }");
  });
  after(() => {
    writeFileSync(gate(), "");
    demo.cleanup();
  });

  it("backs up now at the real time, with its copies, audited as command backup; the schedule's next slot is unchanged", async () => {
    const applied = await cli(["apply", "--project", "demo"]);
    assert.equal(applied.code, 0, applied.stdout + applied.stderr);
    const before = await planJson();
    assert.deepEqual(before.actions, [], "the scheduled plan has nothing to do after apply");
    const [scheduledRun] = await sql("SELECT started_at FROM runs WHERE project = 'demo' AND command = 'apply'");

    const started = Math.floor(Date.now() / 1000) * 1000;
    const result = await cli(["backup", "demo"]);
    const finished = Date.now();
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.match(result.stdout, /\+ backup app → local {2}on demand \(backupctl backup\); the schedule 0 \* \* \* \*/);
    assert.match(result.stdout, /\+ backup demo\/app → local: snapshot [0-9a-f]{8}/);
    assert.match(result.stdout, /\+ copy demo\/uploads local → second: 1 snapshot/);
    assert.match(result.stdout, /\nBackup complete: 4 succeeded, 0 failed\.\n/);

    // The new snapshots carry the real time, not a slot's or a future one; the copies followed.
    const made = (await snapshots(demo.repository)).filter((s) => Date.parse(s.time) >= started);
    assert.equal(made.length, 2, "one new snapshot per source");
    for (const snapshot of made) {
      assert.ok(Date.parse(snapshot.time) <= finished, `snapshot time ${snapshot.time} is not in the future`);
    }
    const copies = await snapshots(second());
    assert.equal(copies.length, 4);
    assert.ok(made.every((m) => copies.some((c) => c.original === m.id)), "each new snapshot was copied");

    // Audited like a scheduled run, under its own command name.
    const runs = await sql(
      "SELECT id, command, status, started_at FROM runs WHERE project = 'demo' ORDER BY started_at",
    );
    assert.deepEqual(runs.map((r) => [r.command, r.status]), [["apply", "succeeded"], ["backup", "succeeded"]]);
    assert.ok(Date.parse(String(runs[1].started_at)) >= started && Date.parse(String(runs[1].started_at)) <= finished);
    assert.ok(String(runs[1].started_at) > String(scheduledRun.started_at));
    const stages = await sql(`SELECT type, source, repository, status FROM stages WHERE run_id = '${runs[1].id}'`);
    assert.deepEqual(
      stages.filter((s) => s.type === "backup" || s.type === "copy").map((s) => [s.type, s.source, s.repository]),
      [["backup", "app", "local"], ["backup", "uploads", "local"], ["copy", "app", "second"], [
        "copy",
        "uploads",
        "second",
      ]],
    );
    assert.ok(stages.every((s) => s.status === "succeeded"));

    // The schedule did not move: same next due, nothing due, not overdue; status agrees.
    const after = await planJson();
    assert.deepEqual(after.actions, []);
    assert.deepEqual(after.next_due, before.next_due);
    assert.ok(Date.parse(after.next_due[0].at) > finished, "the next slot is still ahead");
    const status = await cli(["status", "--json"]);
    const row = (JSON.parse(status.stdout) as {
      projects: { project: string; last_success: string; next_due: string; due: boolean; overdue: boolean }[];
    })
      .projects.find((p) => p.project === "demo")!;
    assert.equal(row.due, false);
    assert.equal(row.overdue, false);
    assert.ok(Date.parse(row.last_success) <= Date.now(), "last success is not in the future");
    assert.ok(Date.parse(row.next_due) > Date.parse(row.last_success), "next due comes after the last success");
    assert.equal(Date.parse(row.next_due), Date.parse(before.next_due[0].at));
  });

  it("--source and --repository narrow it: the backup always goes to the first repository, copies only where named", async () => {
    const before = await counts();
    const onlyLocal = await cli(["backup", "demo", "--source", "uploads", "--repository", "local"]);
    assert.equal(onlyLocal.code, 0, onlyLocal.stdout + onlyLocal.stderr);
    assert.doesNotMatch(onlyLocal.stdout, /[+✗] copy/);
    assert.deepEqual(await counts(), { ...before, "uploads@local": before["uploads@local"] + 1 });

    const toSecond = await cli(["backup", "demo", "-s", "app", "-r", "second"]);
    assert.equal(toSecond.code, 0, toSecond.stdout + toSecond.stderr);
    assert.match(toSecond.stdout, /\+ copy demo\/app local → second: 1 snapshot/);
    assert.deepEqual(await counts(), {
      ...before,
      "uploads@local": before["uploads@local"] + 1,
      "app@local": before["app@local"] + 1,
      "app@second": before["app@second"] + 1,
    });
  });

  it("unknown projects, sources and repositories are usage errors (exit 64) naming the valid ones; nothing runs", async () => {
    const runsBefore = (await sql("SELECT count(*) AS n FROM runs"))[0].n;
    const cases: [string[], RegExp][] = [
      [["backup", "shop"], /unknown project "shop"; declared projects: demo, slow/],
      [["backup", "demo", "--source", "db"], /--source: project demo has no source "db"; its sources: app, uploads/],
      [
        ["backup", "demo", "--repository", "offsite"],
        /--repository: project demo has no repository "offsite"; its repositories: local, second/,
      ],
      [
        ["backup", "demo", "slow", "--source", "uploads"],
        /--source: project slow has none of the sources named \(uploads\); its sources: slow/,
      ],
      [["forget", "shop"], /unknown project "shop"; declared projects: demo, slow/],
      [["backup"], /missing required argument 'projects'/],
    ];
    for (const [args, message] of cases) {
      const result = await cli(args);
      assert.equal(result.code, 64, `${args.join(" ")}: ${result.stdout}${result.stderr}`);
      assert.match(result.stderr, message, args.join(" "));
    }
    assert.equal((await sql("SELECT count(*) AS n FROM runs"))[0].n, runsBefore);
  });

  it("apply --dry-run is a usage error that points to plan, not an unknown option", async () => {
    const result = await cli(["apply", "--dry-run"]);
    assert.equal(result.code, 64, result.stdout + result.stderr);
    assert.match(result.stderr, /apply has no --dry-run: `backupctl plan` shows what apply would do/);
    assert.doesNotMatch(result.stderr, /unknown option/);
    assert.equal(result.stdout, "");
  });

  it("backup never forgets, and leaves a changed retention needing approval", async () => {
    config("{ last: 2 }");
    const before = await counts();
    const result = await cli(["backup", "demo"]);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.doesNotMatch(result.stdout, /^\s*[-~✗!] (HELD: )?(forget|prune)/m);
    // The copy to second also brings the uploads snapshot that `--repository local` did not copy.
    assert.match(result.stdout, /\+ copy uploads → second {2}copy the new backup and 1 snapshot it lacks from local/);
    assert.deepEqual(await counts(), {
      "app@local": before["app@local"] + 1,
      "uploads@local": before["uploads@local"] + 1,
      "app@second": before["app@second"] + 1,
      "uploads@second": before["uploads@second"] + 2,
    });
    const plan = await planJson();
    const forgets = plan.actions.filter((a) => a.type === "forget");
    assert.equal(forgets.length, 4);
    assert.ok(forgets.every((a) => a.approval === "required"), "the policy change still needs approval");
  });

  it("forget now shows what it forgets, holds what needs approval, and forgets it with --auto-approve, then prunes", async () => {
    const before = await counts();
    const held = await cli(["forget", "demo"]);
    assert.equal(held.code, 0, held.stdout + held.stderr);
    assert.match(
      held.stdout,
      /- forget \d+ snapshots? of app in local \(needs approval\) {2}retention last 2 keeps 2 of/,
    );
    assert.match(held.stdout, /! HELD: forget \d+ snapshots? of demo\/app in local needs approval: retention changed/);
    assert.match(held.stdout, /Review it, then run `backupctl forget demo --auto-approve`/);
    assert.match(held.stdout, /~ prune local: skipped, none of its deletions ran/);
    assert.match(held.stdout, /\nForget complete: 0 succeeded, 0 failed, 4 deletions held for approval\.\n/);
    assert.match(held.stderr, /Review the plan and run `backupctl forget demo --auto-approve`/);
    assert.deepEqual(await counts(), before, "nothing was forgotten");

    const approved = await cli(["forget", "demo", "--auto-approve"]);
    assert.equal(approved.code, 0, approved.stdout + approved.stderr);
    assert.match(approved.stdout, /- forget \d+ snapshots? of demo\/app in local: done/);
    assert.match(approved.stdout, /~ prune local: done/);
    assert.match(approved.stdout, /~ prune second: done/);
    assert.deepEqual(await counts(), { "app@local": 2, "uploads@local": 2, "app@second": 2, "uploads@second": 2 });
    const stages = await sql(
      "SELECT type, status FROM stages WHERE type IN ('forget', 'prune') AND status = 'succeeded'",
    );
    assert.equal(stages.filter((s) => s.type === "forget").length, 4);

    const nothing = await cli(["forget", "demo"]);
    assert.equal(nothing.code, 0, nothing.stdout + nothing.stderr);
    assert.match(nothing.stdout, /Nothing to forget: the retention of demo keeps every snapshot/);
  });

  it("a routine forget now runs without approval; forget --prune prunes even when nothing is forgotten", async () => {
    assert.equal((await cli(["backup", "demo", "--source", "uploads"])).code, 0);
    const routine = await cli(["forget", "demo"]);
    assert.equal(routine.code, 0, routine.stdout + routine.stderr);
    assert.doesNotMatch(routine.stdout, /HELD|needs approval/);
    assert.match(routine.stdout, /- forget 1 snapshot of demo\/uploads in local: done/);
    assert.deepEqual(await counts(), { "app@local": 2, "uploads@local": 2, "app@second": 2, "uploads@second": 2 });

    const pruned = await cli(["forget", "demo", "--prune"]);
    assert.equal(pruned.code, 0, pruned.stdout + pruned.stderr);
    assert.match(pruned.stdout, /~ prune local {2}requested \(forget --prune\)/);
    assert.match(pruned.stdout, /~ prune local: done/);
    assert.match(pruned.stdout, /\nForget complete: 2 succeeded, 0 failed\.\n/);
  });

  it("a project locked by another run ends backup with exit 4, as apply; the lock names command backup", async () => {
    rmSync(gate(), { force: true });
    const first = spawnCli(["--config", demo.config, "backup", "slow"], { env: demo.env });
    const lockFile = join(demo.dir, ".backupctl", "locks", "slow.lock");
    const holder = await waitFor("the lock of slow", () => {
      if (!existsSync(lockFile)) return undefined;
      try {
        return JSON.parse(readFileSync(lockFile, "utf8")) as { pid: number; command: string };
      } catch {
        return undefined; // being written
      }
    });
    assert.equal(holder.pid, first.pid);
    assert.equal(holder.command, "backup");
    const second = await cli(["backup", "slow"]);
    assert.equal(second.code, 4, second.stdout + second.stderr);
    assert.match(second.stderr, /project slow is locked: held by backup \(pid \d+/);
    const apply = await cli(["apply", "--project", "slow"]);
    assert.equal(apply.code, 4, apply.stdout + apply.stderr);
    const forget = await cli(["forget", "slow"]);
    assert.equal(forget.code, 4, forget.stdout + forget.stderr);
    // --wait: a short wait still ends with exit 4, saying how long it waited; Ctrl-C ends a wait with nothing run.
    const impatient = await cli(["apply", "--project", "slow", "--wait", "1s"]);
    assert.equal(impatient.code, 4, impatient.stdout + impatient.stderr);
    assert.match(impatient.stderr, /^Waiting up to 1s \(--wait\): project slow is locked/m);
    assert.match(impatient.stderr, /waited 1s \(--wait\): project slow is locked: held by backup/);
    const interrupted = spawnCli(["--config", demo.config, "forget", "slow", "--wait", "10m"], { env: demo.env });
    await waitFor("forget to wait", () => interrupted.output().includes("Waiting up to 10m"));
    process.kill(interrupted.pid, "SIGINT");
    const stopped = await interrupted.done;
    assert.equal(stopped.code, 130, stopped.stdout + stopped.stderr);
    assert.match(stopped.stderr, /stopped by SIGINT while waiting for a lock: nothing ran/);
    // A patient backup waits for the first to end, then runs.
    const patient = spawnCli(["--config", demo.config, "backup", "slow", "--wait", "10m"], { env: demo.env });
    await waitFor("backup to wait", () => patient.output().includes("Waiting up to 10m"));
    writeFileSync(gate(), "");
    const done = await first.done;
    assert.equal(done.code, 0, done.stdout + done.stderr);
    assert.match(done.stdout, /\+ backup slow\/slow → local: snapshot/);
    const waited = await patient.done;
    assert.equal(waited.code, 0, waited.stdout + waited.stderr);
    assert.match(waited.stdout, /\+ backup slow\/slow → local: snapshot/);
    assert.ok(!existsSync(lockFile), "the lock is released");
    const runs = await sql("SELECT command, status FROM runs WHERE project = 'slow' ORDER BY started_at");
    assert.deepEqual(
      runs,
      [{ command: "backup", status: "succeeded" }, { command: "backup", status: "succeeded" }],
      "the refused and stopped commands recorded no run; the patient backup ran after the first",
    );
  });
});
