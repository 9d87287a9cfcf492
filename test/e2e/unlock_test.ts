/**
 * `backupctl unlock` on a demo copy with a real restic repository: backupctl's own project lock (stale, live,
 * forced with and without a terminal) and a stale restic lock left by a restic process killed with SIGKILL.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { processStartOf } from "../../src/runtime/process.ts";
import { cliArgv, runCli, runTool } from "../support/cli.ts";
import { type DemoDir, makeDemo } from "../support/demo.ts";

const quote = (arg: string) => `'${arg.replaceAll("'", `'\\''`)}'`;

describe("backupctl unlock", () => {
  let demo: DemoDir;
  let lockFile: string;
  const sleepers: ReturnType<typeof spawn>[] = [];
  const cli = (args: string[]) => runCli(["--config", demo.config, ...args], { env: demo.env, timeoutMs: 120_000 });
  const resticEnv = () => ({ RESTIC_REPOSITORY: demo.repository, RESTIC_PASSWORD: demo.env.DEMO_RESTIC_PASSWORD });
  const resticLocks = async () => {
    const listed = await runTool("restic", ["--no-cache", "list", "locks", "--no-lock"], { env: resticEnv() });
    assert.equal(listed.code, 0, listed.stderr);
    return listed.stdout.split("\n").filter((line) => /^[0-9a-f]{64}$/.test(line));
  };
  const unlockStages = () => {
    const result = spawnSync("sqlite3", [
      "-json",
      join(demo.dir, ".backupctl", "state.db"),
      "SELECT project, repository, status, error, note FROM stages WHERE type = 'unlock' ORDER BY id",
    ], { encoding: "utf8" });
    assert.equal(result.status, 0, result.stderr);
    return JSON.parse(result.stdout || "[]") as {
      project: string | null;
      repository: string | null;
      status: string;
      error: string | null;
      note: string | null;
    }[];
  };
  const writeLock = (pid: number, processStart: string | null) => {
    const holder = {
      pid,
      host: hostname(),
      command: "apply",
      run_id: "20261121T030000Z-ab12cd",
      started_at: new Date(Date.now() - 12 * 60_000).toISOString(),
      process_start: processStart,
    };
    writeFileSync(lockFile, JSON.stringify(holder, null, 2) + "\n", { mode: 0o600 });
  };
  const liveHolder = () => {
    const sleeper = spawn("sleep", ["60"]);
    sleepers.push(sleeper);
    writeLock(sleeper.pid!, processStartOf(sleeper.pid!));
    return sleeper.pid!;
  };
  /** `unlock demo --force` in a pseudo-terminal (util-linux `script`), typing `answer` at the prompt. */
  const unlockOnTerminal = (answer: string) => {
    const command = [...cliArgv(), "--config", demo.config, "unlock", "demo", "--force"].map(quote).join(" ");
    return spawnSync("script", ["-qec", command, "/dev/null"], {
      input: `${answer}\n`,
      env: { ...process.env, ...demo.env, NO_COLOR: "1" },
      encoding: "utf8",
      timeout: 120_000,
    });
  };

  before(async () => {
    demo = makeDemo();
    const applied = await cli(["apply"]);
    assert.equal(applied.code, 0, applied.stdout + applied.stderr);
    lockFile = join(demo.dir, ".backupctl", "locks", "demo.lock");
  });
  after(() => {
    for (const sleeper of sleepers) sleeper.kill("SIGKILL");
    demo.cleanup();
  });

  it("says there is nothing to unlock", async () => {
    const result = await cli(["unlock"]);
    assert.equal(result.code, 0, result.stderr);
    // restic 0.14 says "successfully removed locks" even when there were none; newer versions say nothing then.
    assert.match(
      result.stdout,
      /^demo has no lock\nrestic unlock local: (successfully removed locks|no stale locks)\n$/,
    );
    assert.equal(result.stderr, "");
  });

  it("refuses an unknown project, listing the declared ones", async () => {
    const result = await cli(["unlock", "shop"]);
    assert.equal(result.code, 64);
    assert.match(result.stderr, /unknown project "shop"; declared projects: demo/);
  });

  it("removes the stale lock of a process that is gone, and audits it", async () => {
    const gone = spawn("true");
    await new Promise((resolve) => gone.on("close", resolve));
    writeLock(gone.pid!, null);
    const result = await cli(["unlock", "demo"]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(
      result.stdout,
      new RegExp(
        `^removed the stale lock of demo held by apply \\(pid ${gone.pid} on host ${hostname()}, ` +
          `run 20261121T030000Z-ab12cd\\) since \\S+Z \\(12m( \\d+s)? ago\\): that process is gone\n`,
      ),
    );
    assert.equal(existsSync(lockFile), false);
    const stages = unlockStages().filter((stage) => stage.repository === null);
    assert.equal(stages.length, 1, JSON.stringify(stages));
    assert.equal(stages[0].project, "demo");
    assert.equal(stages[0].status, "succeeded");
    assert.equal(stages[0].error, null, "a success has a note, not an error");
    assert.match(stages[0].note!, new RegExp(`^removed the stale lock of demo held by apply \\(pid ${gone.pid} `));
  });

  it("refuses a live lock with exit 4 naming its holder; --force without a terminal removes it loudly", async () => {
    const pid = liveHolder();
    const refused = await cli(["unlock"]);
    assert.equal(refused.code, 4, refused.stdout + refused.stderr);
    assert.match(
      refused.stderr,
      new RegExp(`^kept the live lock of demo held by apply \\(pid ${pid} on host .*still running`),
    );
    assert.match(refused.stdout, /^restic unlock local: /, "restic's stale locks are still cleared");
    assert.equal(JSON.parse(readFileSync(lockFile, "utf8")).pid, pid);

    const forced = await cli(["unlock", "demo", "--force"]);
    assert.equal(forced.code, 0, forced.stderr);
    assert.match(forced.stderr, new RegExp(`^WARNING: removing the live lock of demo held by apply \\(pid ${pid} `));
    assert.match(
      forced.stdout,
      new RegExp(`^removed the live lock of demo held by apply \\(pid ${pid} .*\\(--force\\)`),
    );
    assert.equal(existsSync(lockFile), false);
    const audited = unlockStages().filter((stage) => stage.repository === null).at(-1)!;
    assert.equal(audited.project, "demo");
    assert.match(
      audited.note!,
      new RegExp(`^removed the live lock of demo held by apply \\(pid ${pid} .*\\(--force\\)$`),
    );
  });

  it("asks on a terminal before removing a live lock; only 'yes' removes it", () => {
    const pid = liveHolder();
    const kept = unlockOnTerminal("y");
    assert.match(kept.stdout, new RegExp(`Remove the live lock of demo held by apply \\(pid ${pid} .*Only 'yes' will`));
    assert.equal(kept.status, 4, kept.stdout);
    assert.match(kept.stdout, /kept the live lock of demo held by apply .*: the answer was not 'yes'/);
    assert.equal(JSON.parse(readFileSync(lockFile, "utf8")).pid, pid);

    const removed = unlockOnTerminal("yes");
    assert.equal(removed.status, 0, removed.stdout);
    assert.match(removed.stdout, /removed the live lock of demo held by apply .*\(--force\)/);
    assert.doesNotMatch(removed.stdout, /WARNING/);
    assert.equal(existsSync(lockFile), false);
  });

  it("removes a stale restic lock left by a restic process killed with SIGKILL", async () => {
    // A backup reading stdin holds a restic lock for as long as its stdin gives no end. Its stdin is a FIFO this test
    // holds open for writing: a pipe from the test runtime was seen to reach its end early (restic then failed with
    // "no data read" and removed its lock itself).
    const fifo = join(demo.dir, "hold.fifo");
    assert.equal(spawnSync("mkfifo", [fifo]).status, 0);
    const held = openSync(fifo, "r+");
    const restic = spawn("restic", ["--no-cache", "backup", "--stdin", "--stdin-filename", "hold"], {
      env: { ...process.env, ...resticEnv() },
      stdio: [held, "ignore", "pipe"],
    });
    let stderr = "";
    restic.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    // Its own lock, known by the pid restic writes into it: a lock of some other restic (an earlier case's, still
    // being removed on a loaded machine) must not pass for it.
    let own: string | undefined;
    try {
      const deadline = Date.now() + 30_000;
      while (own === undefined) {
        assert.ok(Date.now() < deadline, "restic took no lock within 30 s");
        for (const id of await resticLocks()) {
          const lock = await runTool("restic", ["--no-cache", "cat", "lock", id, "--no-lock"], { env: resticEnv() });
          if (lock.code === 0 && (JSON.parse(lock.stdout) as { pid?: number }).pid === restic.pid) own = id;
        }
        if (own === undefined) await new Promise((resolve) => setTimeout(resolve, 200));
      }
    } finally {
      restic.kill("SIGKILL");
      await new Promise((resolve) => restic.on("close", resolve));
      closeSync(held);
    }
    assert.deepEqual(
      await resticLocks(),
      [own],
      `the killed restic left its lock, and it is the only one (restic ended by ${
        restic.signalCode ?? restic.exitCode
      }; ` +
        `its stderr: ${stderr.trim() || "(none)"})`,
    );

    const result = await cli(["unlock"]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^demo has no lock\nrestic unlock local: successfully removed (1 )?locks\n$/);
    assert.deepEqual(await resticLocks(), []);
    const stage = unlockStages().at(-1)!;
    assert.deepEqual({ ...stage, note: undefined }, {
      project: null,
      repository: "local",
      status: "succeeded",
      error: null,
      note: undefined,
    });
    assert.match(stage.note!, /^restic: successfully removed (1 )?locks$/);
  });

  it("reports a repository that cannot be opened (exit 1) after unlocking the others", async () => {
    const config = readFileSync(demo.config, "utf8");
    writeFileSync(
      demo.config,
      config
        .replace(
          "repositories: {",
          'repositories: {\n    missing: restic({ url: ".backupctl/nowhere", password: env("DEMO_RESTIC_PASSWORD") }),',
        )
        .replace('repositories: ["local"]', 'repositories: ["missing", "local"]'),
    );
    try {
      const result = await cli(["unlock", "demo"]);
      assert.equal(result.code, 1, result.stdout + result.stderr);
      assert.match(result.stderr, /^repository missing: restic unlock failed \(exit 1\) — no repository there/);
      assert.match(result.stdout, /^demo has no lock\nrestic unlock local: /);
      const [missing, local] = unlockStages().slice(-2);
      assert.deepEqual([missing.repository, missing.status], ["missing", "failed"]);
      assert.match(missing.error!, /restic unlock failed/);
      assert.deepEqual([local.repository, local.status], ["local", "succeeded"]);
    } finally {
      writeFileSync(demo.config, config);
    }
  });
});
