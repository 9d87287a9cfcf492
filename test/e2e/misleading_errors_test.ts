/**
 * Errors that used to mislead (issue 16, point 9), each with the real fault:
 * - a wrong repository password, or a REST server on a closed port, planned `+ init` ("not initialized"): now the
 *   plan warns with restic's cause and what to check, plans no init, and apply runs none;
 * - a read-only repository was "another restic process holds the repository lock" and retried: now its message names
 *   the path and "read-only file system", and it is not retried;
 * - a full or read-only state folder made every command, status included, fail with "disk I/O error … (this is a
 *   bug)": now status, history, snapshots and plan show the last written state with a warning naming the folder and
 *   the fix, and commands that write fail with exit 1 saying the same.
 *
 * The full and read-only folders are real: a 2 MiB tmpfs filled up, then remounted read-only (root only, like the
 * tmpfs of faults_test.ts; skipped elsewhere). restic runs as root, so a read-only repository is a read-only bind mount.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { runCli, runTool } from "../support/cli.ts";
import { freePort } from "../support/sshd.ts";

const password = "misleading-errors-right-4711";

/** Mounts with `mount ARGS`; false when this machine does not let us (not root). */
function tryMount(args: string[]): boolean {
  try {
    execFileSync("mount", args, { stdio: "pipe" });
    return true;
  } catch {
    return false;
  }
}

describe("errors that name their cause", () => {
  let dir: string;
  let config: string;
  let port: number;
  const mounts: string[] = [];
  const cli = (args: string[], env: Record<string, string> = {}) =>
    runCli(["--config", config, ...args], { env: { REPO_PASSWORD: password, ...env }, timeoutMs: 240_000 });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "backupctl-misleading-"));
    mkdirSync(join(dir, "data"));
    writeFileSync(join(dir, "data", "file.txt"), "some data\n");
    port = await freePort();
    config = join(dir, "backup.config.ts");
    writeFileSync(
      config,
      `import { defineConfig, env, files, restic } from "backupctl";
export default defineConfig({
  repositories: {
    local: restic({ url: "repo", password: env("REPO_PASSWORD") }),
    remote: restic({ url: "rest:http://127.0.0.1:${port}/repo", password: env("REPO_PASSWORD") }),
  },
  defaults: { retry: { attempts: 2, baseDelay: "100ms", maxDelay: "200ms" } },
  projects: {
    app: { schedule: "0 3 * * *", repositories: ["local"], retention: { last: 3 }, sources: [files({ name: "data", paths: ["data"] })] },
    offsite: { schedule: "0 3 * * *", repositories: ["remote"], retention: { last: 3 }, sources: [files({ name: "data", paths: ["data"] })] },
  },
});
`,
    );
    // The local repository exists, made with the right password.
    const init = await runTool("restic", ["--no-cache", "init"], {
      env: { RESTIC_REPOSITORY: join(dir, "repo"), RESTIC_PASSWORD: password },
    });
    assert.equal(init.code, 0, init.stderr);
  });
  after(() => {
    for (const mount of mounts.reverse()) {
      try {
        execFileSync("umount", [mount], { stdio: "pipe" });
      } catch {
        // not mounted (any more)
      }
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it("a wrong password or a closed port: no init planned or run, a warning with restic's cause and what to check", async () => {
    const stateDir = join(dir, "state-password");
    const wrong = { REPO_PASSWORD: "not-the-password" };
    const planned = await cli(["--state-dir", stateDir, "plan"], wrong);
    assert.equal(planned.code, 0, planned.stdout + planned.stderr);
    assert.doesNotMatch(planned.stdout, /\+ init/);
    assert.match(planned.stdout, /0 to initialize/);
    assert.match(
      planned.stdout,
      /! repository local cannot be opened, so it is not initialized and its stages will fail: wrong password or no key found — the password does not open this repository: check env\("REPO_PASSWORD"\)/,
    );
    assert.match(
      planned.stdout,
      /! repository remote cannot be opened, .*connection refused — the backend cannot be reached: check that the server is up/,
    );
    const json = await cli(["--state-dir", stateDir, "plan", "--json"], wrong);
    const plan = JSON.parse(json.stdout) as { actions: { type: string }[]; warnings: string[] };
    assert.deepEqual(plan.actions.filter((a) => a.type === "init"), []);
    assert.equal(plan.warnings.filter((w) => /cannot be opened/.test(w)).length, 2);

    const applied = await cli(["--state-dir", stateDir, "apply", "--now", "2026-12-01T04:00:00Z"], wrong);
    assert.equal(applied.code, 1, applied.stdout + applied.stderr);
    assert.doesNotMatch(applied.stdout, /\+ init\b|created|adopted/);
    assert.match(
      applied.stdout,
      /✗ backup app\/data → local failed: repository local: restic backup failed \(exit 1\) — the password does not open this repository: check env\("REPO_PASSWORD"\); restic said: wrong password or no key found/,
    );
    // The existing repository still has its one key, and nothing was made at the closed port's path.
    assert.equal(readdirSync(join(dir, "repo", "keys")).length, 1);
    const stages = await runTool("sqlite3", [
      join(stateDir, "state.db"),
      "SELECT count(*) FROM stages WHERE type = 'init'",
    ]);
    assert.equal(stages.stdout.trim(), "0");
    // status names the cause in its one line per failing project.
    const status = await cli(["--state-dir", stateDir, "status"], wrong);
    assert.equal(status.code, 1);
    assert.match(status.stdout, /app: .*check env\("REPO_PASSWORD"\); restic said: wrong password or no key found/);
    // With the right password, the repository is adopted, not initialized again.
    const right = await cli(["--state-dir", stateDir, "plan", "--project", "app"]);
    assert.equal(right.code, 0, right.stdout + right.stderr);
    assert.doesNotMatch(right.stdout, /\+ init|cannot be opened/);
  });

  it("a read-only repository: its path and 'read-only file system', no lock error, no retry", async (t) => {
    const repo = join(dir, "repo");
    if (!tryMount(["--bind", repo, repo])) {
      t.skip("cannot bind-mount here: needs root");
      return;
    }
    mounts.push(repo);
    execFileSync("mount", ["-o", "remount,ro,bind", repo]);
    try {
      const stateDir = join(dir, "state-read-only");
      // restic 0.14 tries to write its lock for ~45 s before it gives up.
      const applied = await cli([
        "--state-dir",
        stateDir,
        "apply",
        "--project",
        "app",
        "--now",
        "2026-12-01T04:00:00Z",
      ]);
      assert.equal(applied.code, 1, applied.stdout + applied.stderr);
      assert.match(
        applied.stdout,
        new RegExp(
          "✗ backup app/data → local failed: repository local: restic backup failed \\(exit 1\\) — the file system " +
            `restic writes to is read-only .*; restic said: open ${repo}/locks/\\S+: read-only file system\\n`,
        ),
      );
      assert.doesNotMatch(applied.stdout, /another restic process|attempt 1\/2 failed \(transient\)/);
      assert.doesNotMatch(applied.stdout, /github\.com\/restic|runtime\.goexit/, "no Go stack frames");
    } finally {
      execFileSync("umount", [repo]);
      mounts.splice(mounts.indexOf(repo), 1);
    }
  });

  it("a full, then read-only state folder: status and the reading commands show the last state, writing ones exit 1 naming the fix", async (t) => {
    const stateDir = join(dir, "state-tmpfs");
    mkdirSync(stateDir);
    if (!tryMount(["-t", "tmpfs", "-o", "size=2m", "tmpfs", stateDir])) {
      t.skip("cannot mount a 2 MiB tmpfs here: needs root");
      return;
    }
    mounts.push(stateDir);
    const state = ["--state-dir", stateDir];
    const first = await cli([...state, "status"]);
    assert.ok(existsSync(join(stateDir, "state.db")), first.stdout + first.stderr);

    const expectReadable = async (warning: RegExp) => {
      for (const args of [["status"], ["status", "--json"], ["history"], ["snapshots"], ["plan", "--project", "app"]]) {
        const result = await cli([...state, ...args]);
        const what = `${args.join(" ")}: ${result.stdout}${result.stderr}`;
        assert.equal(result.code, args[0] === "status" ? 1 : 0, what);
        assert.match(result.stderr, warning, what);
        assert.match(result.stderr, /shown from the last written state/, what);
        assert.doesNotMatch(result.stderr, /this is a bug|disk I\/O error/, what);
        if (args.join(" ") === "status") assert.match(result.stdout, /PROJECT +LAST SUCCESS/, what);
        if (args.join(" ") === "status --json") {
          assert.match((JSON.parse(result.stdout) as { state_unwritable: string }).state_unwritable, warning, what);
        }
        if (args[0] === "plan") assert.match(result.stdout, /\+ backup data → local/, what);
      }
    };
    const expectRefused = async (message: RegExp) => {
      for (
        const args of [["apply", "--project", "app"], ["snapshots", "--refresh"], [
          "plan",
          "--out",
          join(dir, "p.json"),
        ]]
      ) {
        const result = await cli([...state, ...args]);
        const what = `${args.join(" ")}: ${result.stdout}${result.stderr}`;
        assert.equal(result.code, 1, what);
        assert.match(result.stderr, message, what);
        assert.doesNotMatch(result.stderr, /this is a bug|disk I\/O error/, what);
      }
    };

    // Full: a file takes all the room left.
    const fill = join(stateDir, "fill");
    try {
      execFileSync("dd", ["if=/dev/zero", `of=${fill}`, "bs=4k"], { stdio: "pipe" });
    } catch {
      // "No space left on device": the point
    }
    const full = new RegExp(`the disk of the state folder ${stateDir} is full: free space on it`);
    await expectReadable(full);
    await expectRefused(new RegExp(`^Error: ${full.source}`, "m"));

    // Read-only, with room again.
    rmSync(fill);
    execFileSync("mount", ["-o", "remount,ro", stateDir]);
    const readOnly = new RegExp(
      `the state folder ${stateDir} is on a read-only file system: remount it read-write, or point --state-dir`,
    );
    await expectReadable(readOnly);
    await expectRefused(new RegExp(`^Error: ${readOnly.source}`, "m"));

    // Writable again: no warning, and the state is as it was.
    execFileSync("mount", ["-o", "remount,rw", stateDir]);
    const again = await cli([...state, "history"]);
    assert.equal(again.code, 0, again.stdout + again.stderr);
    assert.equal(again.stderr, "");
  });
});
