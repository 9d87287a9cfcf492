/**
 * A partial snapshot that cannot be forgotten at once (another restic process holds a lock on the repository) is
 * recorded on its failed stage, planned as a recover action, and forgotten by the next apply. A failed dump never
 * leaves one (restic is stopped before the end of its stream); a files backup can: restic stores the snapshot and
 * exits 3 when a file cannot be read. Here that file is this test process's memory (/proc/PID/mem), whose first page
 * reads fail with EIO even for root.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { runCli, runTool, waitFor } from "../support/cli.ts";
import { type DemoDir, makeDemo } from "../support/demo.ts";

describe("recover: partial snapshots left by a failed backup", () => {
  let demo: DemoDir;
  const cli = (args: string[]) => runCli(["--config", demo.config, ...args], { env: demo.env });
  const resticEnv = () => ({ RESTIC_REPOSITORY: demo.repository, RESTIC_PASSWORD: demo.env.DEMO_RESTIC_PASSWORD });
  const snapshots = async () =>
    JSON.parse(
      (await runTool("restic", ["--no-cache", "snapshots", "--json", "--tag", "source=flaky"], { env: resticEnv() }))
        .stdout,
    ) as {
      id: string;
    }[];

  before(async () => {
    demo = makeDemo();
    writeFileSync(
      demo.config,
      `import { defineConfig, env, files, restic } from "backupctl";
export default defineConfig({
  repositories: { local: restic({ url: ".backupctl/restic-demo", password: env("DEMO_RESTIC_PASSWORD") }) },
  projects: { app: { schedule: "0 3 * * *", repositories: ["local"], retention: { daily: 7 },
    sources: [files({ name: "flaky", paths: ["/proc/${process.pid}/mem"] })] } },
});
`,
    );
    // Initialize the repository (the first apply's backup fails, as it will every time).
    await cli(["apply"]);
  });
  after(() => demo.cleanup());

  it("records the snapshot it could not forget, plans a recover action, and forgets it", async () => {
    // A restic backup waiting on stdin holds a shared lock: backups proceed, forget (exclusive) is refused.
    const holder = spawn("restic", ["--no-cache", "backup", "--stdin", "--stdin-filename", "hold"], {
      env: { ...process.env, ...resticEnv() },
      stdio: ["pipe", "ignore", "ignore"],
    });
    try {
      await waitFor(
        "the holding restic to take its lock",
        () => readdirSync(join(demo.repository, "locks")).length > 0,
      );
      const failed = await cli(["apply"]);
      assert.equal(failed.code, 1);
      assert.match(failed.stdout, /could not be forgotten .*the next apply forgets it \(a recover action\)/);
      assert.equal((await snapshots()).length, 1, "the partial snapshot is still there");
    } finally {
      holder.kill("SIGKILL");
      await new Promise((resolve) => holder.on("exit", resolve));
      await runTool("restic", ["--no-cache", "unlock"], { env: resticEnv() });
    }
    const [partial] = await snapshots();
    const plan = JSON.parse((await cli(["plan", "--refresh", "--json"])).stdout) as {
      actions: { type: string; snapshots?: string[]; reason: string }[];
    };
    const recover = plan.actions.find((a) => a.type === "recover");
    assert.ok(recover, JSON.stringify(plan.actions));
    assert.deepEqual(recover.snapshots, [partial.id]);
    assert.match(
      recover.reason,
      /^partial snapshot of a failed or interrupted backup \(run \d{8}T\d{6}Z-[0-9a-f]{6}\): forget it$/,
    );
    const applied = await cli(["apply"]);
    assert.match(applied.stdout, /~ recover: forgot the partial snapshot [0-9a-f]{8} of app\/flaky in local/);
    assert.deepEqual(await snapshots(), [], "the partial snapshot is gone; the failing source left none new");
  });
});
