/**
 * What a failed restic command means, from real restic output (restic 0.14 exits 1 for all of these): a repository
 * that is not there (the only reason to plan an init), one that is there but does not open (a wrong password, a closed
 * port, a folder restic may not read), a lock another restic holds (the only lock error, and transient), and a
 * read-only repository, whose real cause restic prints above a Go stack trace and "unable to create lock in backend".
 */
import assert from "node:assert/strict";
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { isTransient } from "../../src/apply/retry.ts";
import { Restic } from "../../src/repository/restic.ts";
import { classifyResticFailure, ResticError } from "../../src/repository/restic-errors.ts";
import { resticAdvice } from "../../src/repository/restic-advice.ts";
import { env, restic } from "../../src/config/helpers.ts";
import { startRestServer } from "../support/rclone.ts";
import { freePort } from "../support/sshd.ts";
import { runTool, waitFor } from "../support/cli.ts";

const password = "restic-errors-right-4711";

describe("restic failures", () => {
  let dir: string;
  let repo: string;
  const repository = (url: string, passwordFile = "password") =>
    new Restic("main", { type: "restic", url, password: { secret: "file", path: passwordFile } }, dir);
  /** The ResticError a promise rejects with. */
  const failureOf = async (promise: Promise<unknown>): Promise<ResticError> => {
    try {
      await promise;
    } catch (error) {
      assert.ok(error instanceof ResticError, `a ResticError, got ${error}`);
      return error;
    }
    assert.fail("expected restic to fail");
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "backupctl-restic-errors-"));
    writeFileSync(join(dir, "password"), password, { mode: 0o600 });
    writeFileSync(join(dir, "wrong"), "not-the-password", { mode: 0o600 });
    repo = join(dir, "repo");
    const init = await runTool("restic", ["--no-cache", "init"], {
      env: { RESTIC_REPOSITORY: repo, RESTIC_PASSWORD: password },
    });
    assert.equal(init.code, 0, init.stderr);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("a folder without a repository is the only 'not initialized'", async () => {
    assert.equal(await repository(join(dir, "missing")).isInitialized(), false);
    assert.equal(await repository(repo).isInitialized(), true);
  });

  it("a wrong password does not open an existing repository: an error naming the cause, never 'not initialized'", async () => {
    const error = await failureOf(repository(repo, "wrong").isInitialized());
    assert.equal(error.failure.kind, "wrong-password");
    assert.equal(error.failure.cause, "wrong password or no key found");
    assert.equal(error.failure.transient, false);
    assert.match(
      error.summary,
      /^wrong password or no key found — the password does not open this repository: check file\("wrong"\)$/,
    );
  });

  it("a REST server that cannot be reached is unreachable (transient), not 'not initialized'", async () => {
    const port = await freePort();
    const error = await failureOf(repository(`rest:http://127.0.0.1:${port}/repo`).isInitialized());
    assert.equal(error.failure.kind, "unreachable");
    assert.match(error.failure.cause, /connection refused/);
    assert.equal(error.failure.transient, true);
    assert.match(error.message, /the backend cannot be reached: check that the server is up/);
  });

  it("a REST server that answers has no repository at a new path: 'not initialized'", async () => {
    const server = await startRestServer();
    try {
      assert.equal(await repository(`${server.url}fresh`).isInitialized(), false);
    } finally {
      await server.stop();
    }
  });

  it("a repository restic may not read is permission denied, not 'not initialized'", async (t) => {
    if (process.getuid?.() !== 0) {
      t.skip("needs root to run restic as another user (setpriv)");
      return;
    }
    // restic as nobody, on a repository only root may read.
    chmodSync(dir, 0o755);
    chmodSync(repo, 0o700);
    const result = await runTool("setpriv", [
      "--reuid=65534",
      "--regid=65534",
      "--clear-groups",
      "restic",
      "--no-cache",
      "cat",
      "--no-lock",
      "config",
    ], { env: { RESTIC_REPOSITORY: repo, RESTIC_PASSWORD: password } });
    assert.equal(result.code, 1, result.stderr);
    const failure = classifyResticFailure(result.code, result.stderr);
    assert.equal(failure.kind, "permission-denied");
    assert.match(failure.cause, /open .*\/repo\/keys: permission denied/);
    assert.equal(failure.transient, false);
  });

  it("a lock another restic holds is the lock error, and transient", async () => {
    // A backup reading a stdin the test keeps open holds its (shared) lock; prune needs an exclusive one.
    const holder: ChildProcess = spawn("restic", ["--no-cache", "backup", "--stdin"], {
      env: { ...process.env, RESTIC_REPOSITORY: repo, RESTIC_PASSWORD: password },
      stdio: ["pipe", "ignore", "ignore"],
    });
    try {
      await waitFor("restic's lock", () => readdirSync(join(repo, "locks")).length > 0);
      const error = await failureOf(repository(repo).prune());
      assert.equal(error.failure.kind, "locked");
      assert.match(error.failure.cause, /repository is already locked by PID \d+/);
      assert.equal(error.transient, true, "set where restic's exit code and output were read");
      assert.equal(isTransient(error), true);
      assert.match(error.message, /another restic process holds the repository lock/);
    } finally {
      holder.stdin!.end("a few bytes\n");
      await new Promise((resolve) => holder.once("close", resolve));
    }
  });

  it("a read-only repository names the path and 'read-only file system', is not a lock error and not retried", async (t) => {
    const readOnly = join(dir, "read-only");
    mkdirSync(readOnly);
    execFileSync("cp", ["-a", `${repo}/.`, readOnly]);
    try {
      execFileSync("mount", ["--bind", readOnly, readOnly], { stdio: "pipe" });
    } catch (error) {
      t.skip(`cannot bind-mount here (${(error as Error).message.split("\n")[0]}): needs root`);
      return;
    }
    try {
      execFileSync("mount", ["-o", "remount,ro,bind", readOnly], { stdio: "pipe" });
      // Opening needs no lock: the repository is there, and says so at once.
      assert.equal(await repository(readOnly).isInitialized(), true);
      // Listing takes a lock, which restic 0.14 tries to write for ~45 s, then ends with a stack trace.
      const error = await failureOf(repository(readOnly).snapshots());
      assert.equal(error.failure.kind, "read-only");
      assert.match(error.failure.cause, new RegExp(`^open ${readOnly}/locks/\\S+: read-only file system$`));
      assert.equal(error.transient, false);
      assert.equal(isTransient(error), false);
      const [first] = error.message.split("\n");
      assert.match(
        first,
        /^repository main: restic snapshots failed \(exit 1\) — the file system restic writes to is read-only/,
      );
      assert.match(first, /restic said: open \S+\/locks\/\S+: read-only file system$/);
      assert.doesNotMatch(error.message, /another restic process/);
      assert.doesNotMatch(error.message, /github\.com\/restic|runtime\.goexit/, "no Go stack frames");
    } finally {
      execFileSync("umount", [readOnly]);
    }
  });
});

describe("classifyResticFailure", () => {
  it("reads restic ≥ 0.17's exit codes when the text says nothing more", () => {
    assert.equal(
      classifyResticFailure(10, "Fatal: repository does not exist: unable to open config file").kind,
      "not-initialized",
    );
    assert.equal(classifyResticFailure(12, "Fatal: something").kind, "wrong-password");
    const lock = classifyResticFailure(11, "Fatal: unable to create lock in backend: repository is locked");
    assert.deepEqual([lock.kind, lock.transient], ["locked", true]);
  });

  it("an exit 11 caused by a read-only file system is that cause, not a held lock", () => {
    const failure = classifyResticFailure(
      11,
      "open /srv/restic/locks/abc-tmp-1: read-only file system\nFatal: unable to create lock in backend",
    );
    assert.deepEqual([failure.kind, failure.transient], ["read-only", false]);
  });

  it("a config file that cannot be read for another reason is not 'not initialized'", () => {
    for (
      const stderr of [
        "Fatal: unable to open config file: open /srv/restic/config: permission denied\nIs there a repository at the following location?\n/srv/restic",
        'Fatal: unable to open config file: client.Head: Head "http://127.0.0.1:1/config": dial tcp 127.0.0.1:1: connect: connection refused\nIs there a repository at the following location?',
        "Fatal: unable to open config file: something new\nIs there a repository at the following location?",
      ]
    ) {
      assert.notEqual(classifyResticFailure(1, stderr).kind, "not-initialized", stderr);
    }
  });

  it("an sftp session that never started is an unreachable server, retried, also without ssh's own line", () => {
    // Seen when restic's pipe from ssh closed before ssh's "Connection refused" was read.
    const failure = classifyResticFailure(
      1,
      "Fatal: unable to open repository at sftp:root@127.0.0.1:/srv/repo: unable to start the sftp session, " +
        "error: read |0: file already closed",
    );
    assert.deepEqual([failure.kind, failure.transient], ["unreachable", true]);
    const refused = classifyResticFailure(
      1,
      "subprocess ssh: root@127.0.0.1: Permission denied (publickey).\n" +
        "Fatal: unable to open repository at sftp:root@127.0.0.1:/srv/repo: unable to start the sftp session, error: EOF",
    );
    assert.deepEqual([refused.kind, refused.transient], ["refused", false], "a refusal named by ssh stays one");
  });

  it("a flag this restic does not know is named, not retried, and the advice names the setting", async () => {
    // restic prints cobra's usage error on stderr, the unknown flag on its first line (restic 0.14 says so of
    // --read-concurrency, which came with 0.15; a made-up flag keeps the test true on every version).
    const result = await runTool("restic", ["backup", "--no-such-flag", "2", "/nonexistent"]);
    assert.notEqual(result.code, 0);
    const failure = classifyResticFailure(result.code, result.stderr);
    assert.deepEqual([failure.kind, failure.transient, failure.cause], [
      "unknown-flag",
      false,
      "unknown flag: --no-such-flag",
    ]);
    assert.match(
      resticAdvice("unknown-flag", restic({ url: "/r", password: env("P") })),
      /readConcurrency. needs restic 0\.15/,
    );
  });

  it("a PID is not an HTTP status", () => {
    const failure = classifyResticFailure(
      1,
      "unable to create lock in backend: repository is already locked by PID 403 on db1 by root (UID 0, GID 0)",
    );
    assert.equal(failure.kind, "locked");
  });
});
