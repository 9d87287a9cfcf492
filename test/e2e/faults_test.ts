/**
 * Fault injection, each a real process and a real failure: backupctl killed with SIGKILL in the middle of a dump,
 * two applies at once, SIGTERM during a run, restic's temporary folder full. What must hold afterwards: the run is
 * recorded `interrupted` (by the next start for a SIGKILL), no lock and no private file of the dead process is left,
 * the snapshot restic made from the cut stream is forgotten, no child keeps running, and the next apply backs up.
 *
 * The dump is a `command` source that prints a first part, then waits for a file to appear before printing the rest:
 * the test decides when the dump may end. Related faults covered elsewhere: pg_dump killed mid-stream
 * (databases_test.ts), the SFTP server down and back (remote_test.ts), retries with backoff (retry_hooks_test.ts).
 */
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { processesWith, processTree } from "../support/inspect.ts";
import { type BackgroundCli, runCli, runTool, spawnCli, waitFor } from "../support/cli.ts";
import { type DemoDir, makeDemo } from "../support/demo.ts";

const dayAt = (n: number) => new Date(Date.UTC(2026, 10, 1 + n, 10)).toISOString().replace(".000Z", "Z");

interface RunRow {
  id: string;
  project: string;
  status: string;
  stage: string | null;
  error: string | null;
  pid: number;
}

interface Snapshot {
  id: string;
  tags: string[];
}

describe("fault injection", () => {
  let demo: DemoDir;
  const marker = `faults-${randomBytes(4).toString("hex")}`;
  const stateDir = () => join(demo.dir, ".backupctl");
  const gate = () => join(demo.dir, "gate");
  const cli = (args: string[], env: Record<string, string> = {}) =>
    runCli(["--config", demo.config, ...args], { env: { ...demo.env, ...env }, timeoutMs: 180_000 });
  const background = (args: string[], env: Record<string, string> = {}) =>
    spawnCli(["--config", demo.config, ...args], { env: { ...demo.env, ...env } });
  const sql = async <T>(query: string): Promise<T[]> => {
    const result = await runTool("sqlite3", ["-json", join(stateDir(), "state.db"), query]);
    assert.equal(result.code, 0, result.stderr);
    return result.stdout.trim() ? JSON.parse(result.stdout) as T[] : [];
  };
  const snapshots = async (): Promise<Snapshot[]> => {
    const result = await runTool("restic", ["--no-cache", "snapshots", "--json"], {
      env: { RESTIC_REPOSITORY: demo.repository, RESTIC_PASSWORD: demo.env.DEMO_RESTIC_PASSWORD },
    });
    assert.equal(result.code, 0, result.stderr);
    return JSON.parse(result.stdout) as Snapshot[];
  };
  /** The run of `project` that a background apply is in, once its dump has started streaming into restic. */
  const dumping = (project: string) =>
    waitFor(`the ${project} dump streaming into restic`, async () => {
      const [run] = await sql<RunRow>(`SELECT * FROM runs WHERE project = '${project}' AND status = 'running'`);
      // restic under this run's process (the other runtime's suite may run this file beside this one).
      return run && resticUnder(run.pid, project).length > 0 ? run : undefined;
    });
  const resticUnder = (pid: number, project: string) => {
    const tree = processTree(pid);
    return processesWith(`--stdin-filename ${project}.txt`).filter((p) => tree.includes(p));
  };
  const locks = () => existsSync(join(stateDir(), "locks")) ? readdirSync(join(stateDir(), "locks")) : [];
  const privateFolders = () => existsSync(join(stateDir(), "tmp")) ? readdirSync(join(stateDir(), "tmp")) : [];

  before(async () => {
    demo = makeDemo();
    // A dump that prints its first part, then waits for the gate file before its second part.
    const gated = (name: string) =>
      `command({ name: "${name}", filename: "${name}.txt", run: "echo first-part-${name}; ` +
      `while [ ! -e ${gate()} ]; do sleep 0.1; done; echo second-part-${name} # ${marker}" })`;
    writeFileSync(
      demo.config,
      `import { command, defineConfig, env, restic, sqlite } from "backupctl";
export default defineConfig({
  repositories: { local: restic({ url: ".backupctl/restic-demo", password: env("DEMO_RESTIC_PASSWORD") }) },
  defaults: { retry: { attempts: 2, baseDelay: "200ms", maxDelay: "1s" } },
  projects: {
    slow: { schedule: "0 3 * * *", repositories: ["local"], retention: { last: 10 }, sources: [${gated("slow")}] },
    quick: { schedule: "0 3 * * *", repositories: ["local"], retention: { last: 10 }, sources: [sqlite({ path: "demo/app.db" })] },
  },
});
`,
    );
    // The repository exists before the faults (and the quick project has a first backup).
    const first = await cli(["apply", "--project", "quick", "--now", dayAt(0)]);
    assert.equal(first.code, 0, first.stdout + first.stderr);
  });
  after(() => {
    writeFileSync(gate(), "");
    for (const pid of processesWith(marker)) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // gone
      }
    }
    demo.cleanup();
  });

  it("SIGKILL during a dump: the next apply marks the run interrupted, takes the lock, forgets the partial snapshot and backs up", async () => {
    rmSync(gate(), { force: true });
    const victim = background(["apply", "--project", "slow", "--now", dayAt(1)]);
    const run = await dumping("slow");
    assert.equal(run.pid, victim.pid, "the run row names the process");
    assert.deepEqual(locks(), ["slow.lock"]);
    const lock = JSON.parse(readFileSync(join(stateDir(), "locks", "slow.lock"), "utf8"));
    assert.equal(lock.pid, victim.pid);
    assert.equal(lock.run_id, run.id, "the lock names the run");
    const orphans = resticUnder(victim.pid, "slow");
    process.kill(victim.pid, "SIGKILL");
    const killed = await victim.done;
    assert.equal(killed.signal, "SIGKILL");
    // Without backupctl, restic's gate stops it before it sees the end of the stream: no snapshot of the dead run
    // (data_safety_test.ts covers that). A snapshot of the dead run made before this version's gate (or by restic
    // alone) must still be repaired: the test stores what restic would have stored, with the same tags.
    await waitFor(
      "the orphaned restic to finish",
      () => !processesWith("--stdin-filename slow.txt").some((pid) => orphans.includes(pid)),
    );
    assert.equal((await snapshots()).filter((s) => s.tags.includes(`run=${run.id}`)).length, 0);
    {
      const tags = ["backupctl", "project=slow", "source=slow", `run=${run.id}`].flatMap((tag) => ["--tag", tag]);
      const stored = await runTool(
        "restic",
        ["--no-cache", "backup", "--stdin", "--stdin-filename", "slow.txt", "--host", lock.host, ...tags],
        {
          env: { RESTIC_REPOSITORY: demo.repository, RESTIC_PASSWORD: demo.env.DEMO_RESTIC_PASSWORD },
          input: "first-part-slow\n",
        },
      );
      assert.equal(stored.code, 0, stored.stderr);
    }
    assert.equal((await snapshots()).filter((s) => s.tags.includes(`run=${run.id}`)).length, 1);

    // plan (read-only) shows every repair; the run stays `running` until apply does them.
    const planned = await cli(["plan", "--project", "slow", "--now", dayAt(1), "--refresh", "--format", "json"]);
    assert.equal(planned.code, 0, planned.stdout + planned.stderr);
    const recover = (JSON.parse(planned.stdout).actions as { type: string; recover?: string; run_id?: string }[])
      .filter((a) => a.type === "recover");
    // leftover_files: the dead process's FIFO folder (tmp/secret-PID-fifo-*), which held no data.
    assert.deepEqual(recover.map((a) => a.recover).sort(), [
      "interrupted_run",
      "leftover_files",
      "partial_snapshot",
      "restic_unlock",
      "stale_lock",
    ]);
    assert.ok(recover.filter((a) => a.recover !== "leftover_files").every((a) => a.run_id === run.id));
    assert.equal((await sql<RunRow>(`SELECT * FROM runs WHERE id = '${run.id}'`))[0].status, "running");

    writeFileSync(gate(), "");
    const next = await cli(["apply", "--project", "slow", "--now", dayAt(1)]);
    assert.equal(next.code, 0, next.stdout + next.stderr);
    assert.match(next.stdout, new RegExp(`~ recover: took over the stale lock of slow: apply \\(pid ${victim.pid}`));
    assert.match(next.stdout, new RegExp(`~ recover: run ${run.id} of slow marked interrupted`));
    assert.match(next.stdout, /~ recover: forgot the partial snapshot [0-9a-f]{8} of slow\/slow in local/);
    assert.match(next.stdout, /\+ backup slow\/slow → local: snapshot [0-9a-f]{8}/);

    const [interrupted] = await sql<RunRow>(`SELECT * FROM runs WHERE id = '${run.id}'`);
    assert.equal(interrupted.status, "interrupted");
    assert.equal(interrupted.stage, "backup slow", "the stage it was in is kept");
    assert.match(interrupted.error!, /its process ended without finishing/);
    const audit = await sql<{ type: string; status: string }>(
      `SELECT type, status FROM stages WHERE type IN ('recover', 'unlock') ORDER BY id`,
    );
    assert.ok(audit.filter((s) => s.type === "recover").length >= 2, JSON.stringify(audit));
    assert.ok(audit.some((s) => s.type === "unlock" && s.status === "succeeded"), JSON.stringify(audit));
    const left = (await snapshots()).filter((s) => s.tags.includes("project=slow"));
    assert.equal(left.length, 1, "only the new, complete backup remains");
    assert.ok(!left[0].tags.includes(`run=${run.id}`));
    assert.deepEqual(locks(), [], "no lock is left");
    assert.deepEqual(privateFolders(), []);
    const again = await cli(["plan", "--project", "slow", "--now", dayAt(1), "--refresh", "--detailed-exitcode"]);
    assert.equal(again.code, 0, again.stdout + again.stderr);
  });

  it("two applies of one project: the second exits 4 naming the holder; another project runs; status leaves the live run alone", async () => {
    rmSync(gate(), { force: true });
    let holder: BackgroundCli | undefined = background(["apply", "--project", "slow", "--now", dayAt(2)]);
    try {
      const run = await dumping("slow");
      const second = await cli(["apply", "--project", "slow", "--now", dayAt(2)]);
      assert.equal(second.code, 4, second.stdout + second.stderr);
      assert.match(
        second.stderr,
        new RegExp(`held by apply \\(pid ${holder.pid} on host [^,]+, run ${run.id}\\) since`),
      );
      assert.doesNotMatch(second.stderr, /^\s+at /m);
      const all = await cli(["apply", "--now", dayAt(2)]);
      assert.equal(all.code, 4, "an apply of every project needs the slow project's lock too");

      const other = await cli(["apply", "--project", "quick", "--now", dayAt(2)]);
      assert.equal(other.code, 0, other.stdout + other.stderr);
      assert.match(other.stdout, /\+ backup quick\/app → local: snapshot/);
      assert.doesNotMatch(other.stdout, /recover/, "the live run of slow is not recovered");

      const status = await cli(["status", "--now", dayAt(2)]);
      assert.equal(status.code, 0, status.stdout + status.stderr);
      assert.equal((await sql<RunRow>(`SELECT * FROM runs WHERE id = '${run.id}'`))[0].status, "running");

      writeFileSync(gate(), "");
      const finished = await holder.done;
      holder = undefined;
      assert.equal(finished.code, 0, finished.stdout + finished.stderr);
      assert.equal((await sql<RunRow>(`SELECT * FROM runs WHERE id = '${run.id}'`))[0].status, "succeeded");
      assert.deepEqual(locks(), []);
    } finally {
      writeFileSync(gate(), "");
      await holder?.done;
    }
  });

  it("SIGTERM during a dump: children stopped, run interrupted, lock released, exit 143", async () => {
    rmSync(gate(), { force: true });
    const victim = background(["apply", "--project", "slow", "--now", dayAt(3)]);
    const run = await dumping("slow");
    // restic (behind its gate) starts before the dump does: wait for this apply's dump (an earlier case's orphan,
    // waiting for a gate it missed, carries the same marker, so only processes under this apply count).
    const dump = await waitFor("the dump command under this apply", () => {
      const tree = processTree(victim.pid);
      const found = processesWith(marker).filter((pid) => tree.includes(pid));
      return found.length > 0 ? found : undefined;
    });
    const restic = resticUnder(victim.pid, "slow");
    const signalled = Date.now();
    process.kill(victim.pid, "SIGTERM");
    const result = await victim.done;
    assert.equal(result.code, 143, result.stdout + result.stderr);
    assert.ok(Date.now() - signalled < 15_000, `stopped in ${Date.now() - signalled} ms`);
    assert.match(result.stderr, /SIGTERM: stopping/);
    assert.match(result.stdout, new RegExp(`Run ${run.id} interrupted by SIGTERM`));
    // Signalled before backupctl exits; on a loaded machine the kernel may take a moment to end it.
    await waitFor(
      "the dump command to be stopped",
      () => !processesWith(marker).some((pid) => dump.includes(pid)),
      10_000,
    );
    assert.deepEqual(
      processesWith("--stdin-filename slow.txt").filter((pid) => restic.includes(pid)),
      [],
      "restic was stopped",
    );
    const [row] = await sql<RunRow>(`SELECT * FROM runs WHERE id = '${run.id}'`);
    assert.equal(row.status, "interrupted");
    assert.match(row.error!, /interrupted by SIGTERM/);
    const [stage] = await sql<{ status: string }>(
      `SELECT status FROM stages WHERE run_id = '${run.id}' AND type = 'backup' ORDER BY id DESC LIMIT 1`,
    );
    assert.equal(stage.status, "interrupted");
    assert.deepEqual(locks(), []);
    assert.deepEqual(privateFolders(), []);
    assert.deepEqual((await snapshots()).filter((s) => s.tags.includes(`run=${run.id}`)), []);
    // Lock ids only: a restic stopped while its local backend wrote a lock leaves the temporary ID-tmp-N file, which
    // restic never reads as a lock.
    assert.deepEqual(
      readdirSync(join(demo.repository, "locks")).filter((name) => /^[0-9a-f]{64}$/.test(name)),
      [],
      "restic, stopped with SIGINT, removed its lock",
    );

    writeFileSync(gate(), "");
    const next = await cli(["apply", "--project", "slow", "--now", dayAt(3)]);
    assert.equal(next.code, 0, next.stdout + next.stderr);
    assert.doesNotMatch(next.stdout, /marked interrupted/, "already recorded; nothing to recover");
  });

  it("state database locked past its timeout during a run: results go to fallback.jsonl and the next start replays them", async () => {
    rmSync(gate(), { force: true });
    const busy = { BACKUPCTL_DB_BUSY_TIMEOUT_MS: "500" };
    const applying = background(["apply", "--project", "slow", "--now", dayAt(5)], busy);
    const run = await dumping("slow");
    // Another process takes the database's write lock and keeps it (readers still read: WAL mode).
    const holder = spawn("sqlite3", [join(stateDir(), "state.db")], { stdio: ["pipe", "pipe", "inherit"] });
    let said = "";
    holder.stdout!.on("data", (chunk) => (said += chunk));
    holder.stdin!.write("BEGIN EXCLUSIVE;\nSELECT 'holding';\n");
    try {
      await waitFor("sqlite3 to hold the write lock", () => said.includes("holding"));
      writeFileSync(gate(), "");
      const result = await applying.done;
      assert.equal(result.code, 0, result.stdout + result.stderr);
      assert.match(result.stdout, /\+ backup slow\/slow → local: snapshot [0-9a-f]{8}/);
      assert.match(result.stderr, /fallback\.jsonl/);
      const fallback = readFileSync(join(stateDir(), "fallback.jsonl"), "utf8").trim().split("\n");
      assert.ok(fallback.length >= 2, fallback.join("\n"));
      assert.ok(fallback.every((line) => JSON.parse(line).v === 1), "one JSON object per line");
      assert.ok(fallback.some((line) => line.includes(run.id) && line.includes("finishRun")));
      assert.equal((statSync(join(stateDir(), "fallback.jsonl")).mode & 0o777).toString(8), "600");
      const [meanwhile] = await sql<RunRow>(`SELECT * FROM runs WHERE id = '${run.id}'`);
      assert.equal(meanwhile.status, "running", "the database did not get the result");
      assert.deepEqual(locks(), [], "the lock is a file: released all the same");
    } finally {
      holder.stdin!.end("ROLLBACK;\n");
      await new Promise((resolve) => holder.once("close", resolve));
    }

    const status = await cli(["status", "--now", dayAt(5)]);
    // By day 5 "quick" (last backed up on day 2) is overdue, and status says so with exit 1.
    assert.equal(status.code, 1, status.stdout + status.stderr);
    assert.match(status.stdout, /^!\s+quick\s.*OVERDUE/m);
    assert.match(status.stderr, /replayed \d+ results from fallback\.jsonl into the state database/);
    assert.doesNotMatch(status.stdout, /marked interrupted/, "the replayed run finished: nothing to recover");
    const [replayed] = await sql<RunRow>(`SELECT * FROM runs WHERE id = '${run.id}'`);
    assert.equal(replayed.status, "succeeded");
    const stages = await sql<{ type: string; status: string; snapshot_id: string | null }>(
      `SELECT type, status, snapshot_id FROM stages WHERE run_id = '${run.id}' AND type = 'backup'`,
    );
    assert.equal(stages.length, 1);
    assert.equal(stages[0].status, "succeeded");
    assert.match(stages[0].snapshot_id ?? "", /^[0-9a-f]{8,64}$/);
    assert.ok(!existsSync(join(stateDir(), "fallback.jsonl")), "cleared after the replay");
    assert.ok(!existsSync(join(stateDir(), "fallback.rejected.jsonl")));
    const plan = await cli(["plan", "--project", "slow", "--now", dayAt(5), "--detailed-exitcode"]);
    assert.equal(plan.code, 0, plan.stdout + plan.stderr);
  });

  it("restic's temporary folder full: a clear error, no snapshot, nothing half-written; with space the backup succeeds", async (t) => {
    const tiny = join(demo.dir, "tiny-tmp");
    mkdirSync(tiny);
    try {
      execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", tiny], { stdio: "pipe" });
    } catch (error) {
      t.skip(`cannot mount a 1 MiB tmpfs here (${(error as Error).message.split("\n")[0]}): needs root`);
      return;
    }
    try {
      writeFileSync(
        demo.config,
        readFileSync(demo.config, "utf8").replace(
          /quick: \{/,
          `big: { schedule: "0 3 * * *", repositories: ["local"], retention: { last: 3 }, sources: [command({ name: "big", filename: "big.bin", run: "head -c 40000000 /dev/urandom" })] },\n    quick: {`,
        ),
      );
      const full = await cli(["apply", "--project", "big", "--now", dayAt(4)], { TMPDIR: tiny });
      assert.equal(full.code, 1, full.stdout + full.stderr);
      assert.match(full.stdout, /✗ backup big\/big → local failed: .*no space left on device/is);
      assert.deepEqual((await snapshots()).filter((s) => s.tags.includes("project=big")), []);
      const used = readdirSync(tiny).map((name) => `${name}: ${statSync(join(tiny, name)).size}`);
      assert.deepEqual(used, [], "restic left nothing in its temporary folder");
      const [run] = await sql<RunRow>(`SELECT * FROM runs WHERE project = 'big' ORDER BY started_at DESC LIMIT 1`);
      assert.equal(run.status, "failed");

      const roomy = await cli(["apply", "--project", "big", "--now", dayAt(4)]);
      assert.equal(roomy.code, 0, roomy.stdout + roomy.stderr);
      assert.equal((await snapshots()).filter((s) => s.tags.includes("project=big")).length, 1);
    } finally {
      execFileSync("umount", [tiny]);
    }
  });
});
