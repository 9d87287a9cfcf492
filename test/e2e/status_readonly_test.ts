/**
 * `status` and `plan` are read-only (issue 19, point 4): on a state left by an apply killed with SIGKILL mid-backup (a
 * run still marked running, its stale project lock, its private FIFO folder), they name what was left behind and
 * change nothing: every table's rows and the state folder's files are the same before and after. The next `apply`
 * then repairs it as before. Real processes throughout: the CLI, restic, sqlite3.
 */
import assert from "node:assert/strict";
import { existsSync, lstatSync, readdirSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { after, before, describe, it } from "node:test";
import { processesWith } from "../support/inspect.ts";
import { runCli, runTool, spawnCli, waitFor } from "../support/cli.ts";
import { type DemoDir, makeDemo } from "../support/demo.ts";

const at = (hour: number) => `2026-12-09T${String(hour).padStart(2, "0")}:00:00Z`;

describe("status and plan on the leftovers of a killed apply", () => {
  let demo: DemoDir;
  let runId: string;
  let deadPid: number;
  const stateDir = () => join(demo.dir, ".backupctl");
  const producer = () => join(demo.dir, "prod.sh");
  const started = () => join(demo.dir, "started");
  const release = () => join(demo.dir, "release");
  const produce = (script: string) => writeFileSync(producer(), `${script}\n`);
  const cli = (args: string[]) => runCli(["--config", demo.config, ...args], { env: demo.env, timeoutMs: 180_000 });
  const query = async (text: string) => {
    const result = await runTool("sqlite3", ["-json", join(stateDir(), "state.db"), text]);
    assert.equal(result.code, 0, result.stderr);
    return JSON.parse(result.stdout || "[]") as Record<string, unknown>[];
  };

  /**
   * Every row of every table (sqlite3's dump, schema included), and every file and folder of the state folder with
   * its type, mode, size and modification time. The database's own files are left out of the listing: opening it
   * (this dump as much as a status) folds a WAL the killed process left into state.db; its rows are what count.
   */
  const snapshot = async () => {
    const dump = await runTool("sqlite3", [join(stateDir(), "state.db"), ".dump"]);
    assert.equal(dump.code, 0, dump.stderr);
    const files: string[] = [];
    const walk = (dir: string) => {
      for (const name of readdirSync(dir).sort()) {
        const path = join(dir, name);
        const rel = relative(stateDir(), path);
        if (/^state\.db(-wal|-shm|-journal)?$/.test(rel)) continue;
        const stat = lstatSync(path);
        const type = stat.isDirectory() ? "dir" : stat.isFIFO() ? "fifo" : stat.isFile() ? "file" : "other";
        files.push(`${rel} ${type} ${(stat.mode & 0o7777).toString(8)} ${stat.size} ${stat.mtimeMs}`);
        if (stat.isDirectory()) walk(path);
      }
    };
    walk(stateDir());
    return { rows: dump.stdout, files };
  };

  before(async () => {
    demo = makeDemo();
    writeFileSync(
      demo.config,
      `import { command, defineConfig, env, restic } from "backupctl";
export default defineConfig({
  repositories: { local: restic({ url: "restic-repo", password: env("DEMO_RESTIC_PASSWORD") }) },
  projects: {
    p1: {
      schedule: "0 * * * *",
      retry: { attempts: 1 },
      repositories: ["local"],
      retention: { last: 3 },
      sources: [command({ name: "p1", filename: "p1.bin", run: "bash ${producer()}" })],
    },
  },
});
`,
    );
    // 100 kB, then a sign, then it waits for the test: backupctl is killed while the stream is open.
    produce(
      `head -c 100000 /dev/urandom; touch ${started()}; while [ ! -e ${release()} ]; do sleep 0.05; done`,
    );
    const victim = spawnCli(["--config", demo.config, "apply", "--now", at(1)], { env: demo.env });
    await waitFor("the dump to stream into restic", () => existsSync(started()));
    deadPid = victim.pid;
    process.kill(victim.pid, "SIGKILL"); // backupctl alone: its children end on their own (restic's gate stops it)
    assert.equal((await victim.done).signal, "SIGKILL");
    writeFileSync(release(), "");
    await waitFor(
      "restic and the producer to end",
      () => processesWith("--stdin-filename p1.bin", demo.dir).length === 0 && processesWith(producer()).length === 0,
    );
    const running = await query("SELECT id FROM runs WHERE status = 'running'");
    assert.equal(running.length, 1, "the killed apply's run is still marked running");
    runId = String(running[0].id);
    assert.ok(existsSync(join(stateDir(), "locks", "p1.lock")), "its project lock is left");
    assert.ok(
      readdirSync(join(stateDir(), "tmp")).some((name) => name.startsWith(`secret-${deadPid}-fifo-`)),
      "its private FIFO folder is left",
    );
  });
  after(() => {
    if (demo) {
      writeFileSync(release(), "");
      demo.cleanup();
    }
  });

  it("status names the interrupted run, the stale lock and the private folder, and changes nothing", async () => {
    const before = await snapshot();
    const status = await cli(["status", "--now", at(1)]);
    assert.equal(status.code, 1, "never succeeded, last run interrupted: " + status.stdout + status.stderr);
    assert.match(status.stdout, /^leftovers of processes that are gone, repaired by the next apply or watch/m);
    assert.match(
      status.stdout,
      new RegExp(`^  run ${runId} of p1: interrupted: process gone \\(pid ${deadPid}, started .*backup p1\\)$`, "m"),
    );
    assert.match(
      status.stdout,
      new RegExp(`^  lock of p1: stale lock: held by pid ${deadPid} since .*process gone$`, "m"),
    );
    assert.match(status.stdout, new RegExp(`^  tmp/secret-${deadPid}-fifo-\\S+: leftover private folder`, "m"));
    assert.match(status.stdout, /^✗\s+p1\s+never\s+interrupted\s/m);
    assert.match(status.stdout, new RegExp(`^p1: never succeeded; last run ${runId} interrupted: process gone`, "m"));
    assert.doesNotMatch(status.stdout, /recover:/);
    assert.deepEqual(await snapshot(), before, "status --text wrote nothing");

    const json = await cli(["status", "--json", "--now", at(1)]);
    assert.equal(json.code, 1, json.stderr);
    const report = JSON.parse(json.stdout);
    assert.equal(report.recovered, undefined);
    assert.deepEqual(report.leftovers.interrupted_runs.map((r: { id: string }) => r.id), [runId]);
    assert.equal(report.leftovers.interrupted_runs[0].pid, deadPid);
    assert.deepEqual(report.leftovers.stale_locks.map((l: { project: string; pid: number }) => [l.project, l.pid]), [[
      "p1",
      deadPid,
    ]]);
    assert.equal(report.leftovers.files.length, 1);
    assert.match(report.leftovers.files[0], new RegExp(`^tmp/secret-${deadPid}-fifo-`));
    assert.equal(report.projects[0].health, "failing");
    assert.equal(report.projects[0].last_run.status, "interrupted");
    assert.deepEqual(await snapshot(), before, "status --json wrote nothing");
  });

  it("plan (without --out or --refresh) shows the recover actions and changes nothing", async () => {
    const before = await snapshot();
    const text = await cli(["plan", "--now", at(1)]);
    assert.equal(text.code, 0, text.stdout + text.stderr);
    assert.match(text.stdout, new RegExp(`recover: mark run ${runId} of p1 interrupted`));
    assert.match(text.stdout, /recover: remove the stale lock of p1/);
    assert.match(text.stdout, /recover: delete 1 leftover private folder/);
    const json = await cli(["plan", "--json", "--now", at(1)]);
    assert.equal(json.code, 0, json.stderr);
    assert.ok(JSON.parse(json.stdout).actions.some((a: { type: string }) => a.type === "recover"));
    assert.deepEqual(await snapshot(), before, "plan wrote nothing");
  });

  it("the next apply repairs them as before", async () => {
    produce("head -c 1000 /dev/urandom");
    const apply = await cli(["apply", "--now", at(2)]);
    assert.equal(apply.code, 0, apply.stdout + apply.stderr);
    assert.match(apply.stdout, new RegExp(`~ recover: took over the stale lock of p1: .*pid ${deadPid}.*process gone`));
    assert.match(apply.stdout, new RegExp(`~ recover: run ${runId} of p1 marked interrupted`));
    assert.match(apply.stdout, /~ recover: deleted 1 leftover private folder/);
    const [run] = await query(`SELECT status, error FROM runs WHERE id = '${runId}'`);
    assert.equal(run.status, "interrupted");
    assert.match(String(run.error), /its process ended without finishing/);
    assert.deepEqual(readdirSync(join(stateDir(), "tmp")).filter((name) => name.startsWith(`secret-${deadPid}-`)), []);
    assert.deepEqual(readdirSync(join(stateDir(), "locks")).filter((name) => !name.startsWith(".")), []);

    const status = await cli(["status", "--now", at(2)]);
    assert.equal(status.code, 0, status.stdout + status.stderr);
    assert.doesNotMatch(status.stdout, /leftovers/);
    assert.match(status.stdout, /^✓\s+p1\s/m);
  });
});
