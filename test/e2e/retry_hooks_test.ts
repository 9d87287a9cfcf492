/**
 * Retries, stage timeouts and hooks end to end: transient failures are retried with backoff (each attempt audited),
 * permanent ones are not; a stage past its timeout is stopped; hooks see the run's context and a failing before
 * hook aborts the run.
 */
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { processesWith } from "../support/inspect.ts";
import { runCli, waitFor } from "../support/cli.ts";
import { type DemoDir, makeDemo } from "../support/demo.ts";

const dayAt = (n: number) => new Date(Date.UTC(2026, 10, 1 + n, 10)).toISOString().replace(".000Z", "Z");

describe("retries, timeouts and hooks", () => {
  let demo: DemoDir;
  const cli = (args: string[]) => runCli(["--config", demo.config, ...args], { env: demo.env });
  const counter = () => join(demo.dir, "attempts");
  const hookLog = () => join(demo.dir, "hooks.log");
  function writeConfig(project: string): void {
    writeFileSync(
      demo.config,
      `import { command, defineConfig, env, restic } from "backupctl";
export default defineConfig({
  repositories: { local: restic({ url: ".backupctl/restic-demo", password: env("DEMO_RESTIC_PASSWORD") }) },
  defaults: { retry: { attempts: 3, baseDelay: "200ms", maxDelay: "1s" } },
  projects: { app: { schedule: "0 3 * * *", repositories: ["local"], retention: { daily: 7 }, ${project} } },
});
`,
    );
  }
  /** A command that fails with `message` on its first `failures` attempts, then prints a dump. */
  const flaky = (failures: number, message: string) =>
    `command({ name: "db", filename: "db.txt", run: "n=$(cat ${counter()} 2>/dev/null || echo 0); echo $((n+1)) > ${counter()}; if [ $n -lt ${failures} ]; then echo '${message}' >&2; exit 2; fi; seq 1 1000" })`;

  before(() => {
    demo = makeDemo();
  });
  after(() => demo.cleanup());

  it("retries a transient failure and succeeds, auditing each attempt", async () => {
    writeConfig(`sources: [${flaky(2, "could not connect to server: Connection refused")}]`);
    const result = await cli(["apply", "--now", dayAt(1)]);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.match(result.stdout, /! backup app\/db → local: attempt 1\/3 failed \(transient\), retrying in \d+ms/);
    assert.match(result.stdout, /! backup app\/db → local: attempt 2\/3 failed \(transient\), retrying in/);
    assert.match(result.stdout, /\+ backup app\/db → local: snapshot [0-9a-f]{8}/);
    assert.equal(readFileSync(counter(), "utf8").trim(), "3");
  });

  it("does not retry a permanent failure", async () => {
    writeFileSync(counter(), "0");
    writeConfig(`sources: [${flaky(5, "FATAL: password authentication failed for user backup")}]`);
    const result = await cli(["apply", "--now", dayAt(2)]);
    assert.equal(result.code, 1);
    assert.doesNotMatch(result.stdout, /retrying/);
    assert.equal(readFileSync(counter(), "utf8").trim(), "1", "one attempt only");
  });

  it("gives up after the configured attempts", async () => {
    writeFileSync(counter(), "0");
    writeConfig(`sources: [${flaky(9, "connection reset by peer")}]`);
    const result = await cli(["apply", "--now", dayAt(3)]);
    assert.equal(result.code, 1);
    assert.equal(readFileSync(counter(), "utf8").trim(), "3");
    assert.match(result.stdout, /✗ backup app\/db → local failed: bash \(the dump\) failed \(exit 2\)/);
  });

  it("retries a backup while another restic holds the repository's lock, and not one with a wrong password", async () => {
    writeConfig(`sources: [command({ name: "db", filename: "db.txt", run: "seq 1 100" })]`);
    // A live restic holding an exclusive lock: `key passwd` waits for its new password on a FIFO with its lock taken.
    const fifo = join(demo.dir, "new-password");
    execFileSync("mkfifo", [fifo]);
    const holder = spawn("restic", ["--no-cache", "key", "passwd", "--new-password-file", fifo], {
      env: { ...process.env, RESTIC_REPOSITORY: demo.repository, RESTIC_PASSWORD: demo.env.DEMO_RESTIC_PASSWORD },
      stdio: "ignore",
    });
    const gone = new Promise((resolve) => holder.once("close", resolve));
    try {
      await waitFor("restic's exclusive lock", () => readdirSync(join(demo.repository, "locks")).length > 0);
      const locked = await cli(["apply", "--now", dayAt(7)]);
      assert.equal(locked.code, 1, locked.stdout + locked.stderr);
      assert.match(locked.stdout, /! backup app\/db → local: attempt 1\/3 failed \(transient\), retrying in/);
      assert.match(locked.stdout, /! backup app\/db → local: attempt 2\/3 failed \(transient\), retrying in/);
      assert.match(
        locked.stdout,
        /✗ backup app\/db → local failed: .*another restic process holds the repository lock/,
      );
    } finally {
      holder.kill("SIGINT"); // restic removes its lock
      await gone;
    }

    const wrong = await runCli(["--config", demo.config, "apply", "--now", dayAt(8)], {
      env: { DEMO_RESTIC_PASSWORD: "not-the-password" },
    });
    assert.equal(wrong.code, 1, wrong.stdout + wrong.stderr);
    assert.match(wrong.stdout, /✗ backup app\/db → local failed: .*the password does not open this repository/);
    assert.doesNotMatch(wrong.stdout, /retrying/);
  });

  it("stops a stage that runs past its timeout", async () => {
    writeConfig(
      `timeout: "2s", sources: [command({ name: "slow", filename: "slow.txt", run: "echo start; sleep 30; echo end" })]`,
    );
    const started = Date.now();
    const result = await cli(["apply", "--now", dayAt(4)]);
    assert.equal(result.code, 1);
    assert.ok(Date.now() - started < 25_000, "the stage was stopped, not waited for");
    assert.match(result.stdout, /backup app\/slow → local failed: the stage ran out of time \(2s\) and was stopped/);
  });

  it("a producer that exits but leaves a child holding the dump open is stopped at the timeout, orphan included", async () => {
    const marker = `orphan-${process.pid}-${Date.now()}`;
    writeConfig(
      `retry: { attempts: 1 }, timeout: "3s", sources: [command({ name: "orphan", filename: "orphan.bin", run: ` +
        `"head -c 100000 /dev/urandom; (sleep 300; echo late ${marker}) & exit 0" })]`,
    );
    const started = Date.now();
    const result = await cli(["apply", "--now", dayAt(4)]);
    const took = Date.now() - started;
    assert.equal(result.code, 1, result.stdout + result.stderr);
    assert.match(result.stdout, /backup app\/orphan → local failed: the stage ran out of time \(3s\) and was stopped/);
    assert.ok(took < 20_000, `the stage ended at its timeout, not when the orphan did (${took} ms)`);
    await waitFor("the orphan to be stopped with its group", () => processesWith(marker).length === 0);
  });

  it("a hook that leaves a child holding its output does not hold up the run (what it started in the background is its own)", async () => {
    const marker = `hook-orphan-${process.pid}-${Date.now()}`;
    writeConfig(
      `timeout: "3s", sources: [command({ name: "ok", filename: "ok.txt", run: "seq 1 10" })], ` +
        `hooks: { after: "(sleep 300; echo ${marker}) & echo after-hook-done" }`,
    );
    const started = Date.now();
    const result = await cli(["apply", "--now", dayAt(4)]);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.match(result.stdout, /~ after hook: done/);
    assert.ok(Date.now() - started < 20_000, `${Date.now() - started} ms`);
    for (const pid of processesWith(marker)) process.kill(pid, "SIGKILL");
  });

  it("runs hooks with the run's context; a failing before hook aborts the run", async () => {
    const log = hookLog();
    const record = (name: string) => `echo "${name} $BACKUPCTL_PROJECT $BACKUPCTL_STATUS $BACKUPCTL_RUN_ID" >> ${log}`;
    writeConfig(
      `sources: [command({ name: "ok", filename: "ok.txt", run: "seq 1 10" })], hooks: { before: '${
        record("before")
      }', after: '${record("after")}', onFailure: '${record("onFailure")}' }`,
    );
    const ok = await cli(["apply", "--now", dayAt(5)]);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    const lines = readFileSync(log, "utf8").trim().split("\n");
    assert.equal(lines.length, 2);
    assert.match(lines[0], /^before app running \d{8}T\d{6}Z-[0-9a-f]{6}$/);
    assert.match(lines[1], /^after app succeeded \d{8}T\d{6}Z-[0-9a-f]{6}$/);

    writeConfig(
      `sources: [command({ name: "ok", filename: "ok.txt", run: "touch ${
        join(demo.dir, "ran")
      }; seq 1 10" })], hooks: { before: "echo 'maintenance window closed' >&2; exit 3", onFailure: '${
        record("onFailure")
      }' }`,
    );
    const aborted = await cli(["apply", "--now", dayAt(6)]);
    assert.equal(aborted.code, 1);
    assert.match(aborted.stdout, /✗ before hook failed: the before hook exited with 3: maintenance window closed/);
    assert.equal(existsSync(join(demo.dir, "ran")), false, "no source ran");
    assert.match(readFileSync(log, "utf8"), /onFailure app failed /);
  });
});

describe("progress of a long stage", () => {
  it("prints periodic progress lines off a terminal", async () => {
    const demo = makeDemo();
    try {
      writeFileSync(
        demo.config,
        `import { command, defineConfig, env, restic } from "backupctl";
export default defineConfig({
  repositories: { local: restic({ url: ".backupctl/restic-demo", password: env("DEMO_RESTIC_PASSWORD") }) },
  projects: { app: { schedule: "0 3 * * *", repositories: ["local"], retention: { daily: 7 },
    sources: [command({ name: "slow", filename: "slow.txt", run: "seq 1 100000; sleep 3; seq 1 10" })] } },
});
`,
      );
      const result = await runCli(["--config", demo.config, "apply"], {
        env: { ...demo.env, BACKUPCTL_PROGRESS_SECONDS: "1" },
      });
      assert.equal(result.code, 0, result.stdout + result.stderr);
      assert.match(
        result.stdout,
        /^ {2}… backup app\/slow → local: \d+(\.\d)? KiB, \d+(\.\d)? (B|KiB|MiB)\/s, \d+(ms|s)$/m,
      );
    } finally {
      demo.cleanup();
    }
  });
});
