/**
 * After backupctl stops its own restic, the locks of gone restic processes made since the stage began are removed
 * (a SIGINT that arrives while restic writes its lock leaves the lock behind); an older stale lock stays for the
 * plan's recovery to show, and a live restic's lock is never touched. Real restic, real killed processes.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Restic } from "../../src/repository/restic.ts";
import { runTool, waitFor } from "../support/cli.ts";

const password = "own-locks-4711";

describe("removing the locks of a restic backupctl stopped", () => {
  let dir: string;
  let repo: string;
  let repository: Restic;
  const env = () => ({ RESTIC_REPOSITORY: repo, RESTIC_PASSWORD: password });
  // Lock ids only: restic's local backend writes a lock as ID-tmp-N first, then renames it.
  const lockFiles = () => readdirSync(join(repo, "locks")).filter((name) => /^[0-9a-f]{64}$/.test(name)).sort();

  /** A `restic backup --stdin` holding its lock on a FIFO that never ends; resolves once its lock file exists. */
  const holder = async (name: string): Promise<{ child: ChildProcess; lock: string; release(): void }> => {
    const fifo = join(dir, `${name}.fifo`);
    assert.equal(spawnSync("mkfifo", [fifo]).status, 0);
    const held = openSync(fifo, "r+");
    const known = new Set(lockFiles());
    const child = spawn("restic", ["--no-cache", "backup", "--stdin", "--stdin-filename", name], {
      env: { ...process.env, ...env() },
      stdio: [held, "ignore", "ignore"],
    });
    let lock: string | undefined;
    await waitFor(
      `${name}'s restic lock`,
      () => (lock = lockFiles().find((id) => !known.has(id))) !== undefined,
      30_000,
    );
    return { child, lock: lock!, release: () => closeSync(held) };
  };
  const kill = async (process: ChildProcess) => {
    process.kill("SIGKILL");
    if (process.exitCode === null && process.signalCode === null) {
      await new Promise((resolve) => process.on("close", resolve));
    }
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "backupctl-own-locks-"));
    writeFileSync(join(dir, "password"), password, { mode: 0o600 });
    repo = join(dir, "repo");
    const init = await runTool("restic", ["--no-cache", "init"], { env: env() });
    assert.equal(init.code, 0, init.stderr);
    repository = new Restic("main", { type: "restic", url: repo, password: { secret: "file", path: "password" } }, dir);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("removes a gone restic's lock made since the stage began, keeps an older one and a live one", async () => {
    const older = await holder("older");
    await kill(older.child);
    older.release();
    // The lock's time is restic's clock in whole seconds and more: the stage begins clearly after the older lock.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const stageBegan = Date.now();
    const stopped = await holder("stopped");
    const live = await holder("live");
    try {
      await kill(stopped.child);
      stopped.release();
      assert.deepEqual(lockFiles(), [older.lock, stopped.lock, live.lock].sort());

      assert.equal(await repository.removeOwnLocksSince(stageBegan - 1000), 1);
      assert.deepEqual(lockFiles(), [older.lock, live.lock].sort(), "only the stopped restic's lock went");
      assert.equal(await repository.removeOwnLocksSince(stageBegan - 1000), 0, "nothing more is its own");
    } finally {
      await kill(live.child);
      live.release();
    }
  });
});
