/**
 * A full disk or a read-only folder met where no command has its own message for it: the typed EnvironmentError's
 * message (the path, the cause, what to do) and exit 1, never "this is a bug". The folders are real: a tiny tmpfs
 * filled up, and a read-only bind mount (root only, like misleading_errors_test.ts; skipped elsewhere).
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { runCli } from "../support/cli.ts";
import { type DemoDir, makeDemo } from "../support/demo.ts";

/** Mounts with `mount ARGS`; false when this machine does not let us (not root). */
function tryMount(args: string[]): boolean {
  try {
    execFileSync("mount", args, { stdio: "pipe" });
    return true;
  } catch {
    return false;
  }
}

describe("environment failures are typed errors that say what to do", () => {
  let demo: DemoDir;
  let dir: string;
  const mounts: string[] = [];
  const cli = (args: string[]) => runCli(["--config", demo.config, ...args], { env: demo.env });

  before(() => {
    demo = makeDemo();
    dir = mkdtempSync(join(tmpdir(), "backupctl-environment-"));
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
    demo.cleanup();
  });

  it("a plan written into a read-only folder: exit 1 naming the file and the fix", async (t) => {
    const readOnly = join(dir, "read-only");
    mkdirSync(readOnly);
    if (!tryMount(["--bind", readOnly, readOnly])) {
      t.skip("cannot bind-mount here: needs root");
      return;
    }
    mounts.push(readOnly);
    execFileSync("mount", ["-o", "remount,ro,bind", readOnly]);
    const out = join(readOnly, "plan.json");
    const result = await cli(["plan", "--out", out]);
    assert.equal(result.code, 1, result.stdout + result.stderr);
    assert.match(
      result.stderr,
      new RegExp(`^Error: cannot save the plan to ${out}: the file system is read-only: remount it read-write`, "m"),
    );
    assert.doesNotMatch(result.stderr, /this is a bug|EROFS/);
  });

  it("a plan written onto a full disk: exit 1 naming the cause and the fix", async (t) => {
    const full = join(dir, "full");
    mkdirSync(full);
    if (!tryMount(["-t", "tmpfs", "-o", "size=64k", "tmpfs", full])) {
      t.skip("cannot mount a tmpfs here: needs root");
      return;
    }
    mounts.push(full);
    try {
      execFileSync("dd", ["if=/dev/zero", `of=${join(full, "fill")}`, "bs=4k"], { stdio: "pipe" });
    } catch {
      // "No space left on device": the point
    }
    const out = join(full, "plan.json");
    const result = await cli(["plan", "--out", out]);
    assert.equal(result.code, 1, result.stdout + result.stderr);
    // The write fails (Node names no path for it), and the message still names the plan file, the cause and the fix;
    // nothing is left under either name: no truncated plan for `apply` to read.
    assert.match(
      result.stderr,
      new RegExp(`^Error: cannot save the plan to ${out}: the disk is full: free space on it`, "m"),
    );
    assert.doesNotMatch(result.stderr, /this is a bug|ENOSPC/);
    assert.deepEqual(readdirSync(full), ["fill"]);
  });

  it("a backup whose private folder is read-only: the stage fails naming the folder and the fix", async (t) => {
    const stateDir = join(dir, "state");
    const first = await cli(["--state-dir", stateDir, "apply", "--project", "demo"]);
    assert.equal(first.code, 0, first.stdout + first.stderr);
    const privateDir = join(stateDir, "tmp");
    mkdirSync(privateDir, { recursive: true });
    if (!tryMount(["--bind", privateDir, privateDir])) {
      t.skip("cannot bind-mount here: needs root");
      return;
    }
    mounts.push(privateDir);
    execFileSync("mount", ["-o", "remount,ro,bind", privateDir]);
    writeFileSync(join(demo.dir, "demo", "uploads", "new.txt"), "more\n");
    const result = await cli(["--state-dir", stateDir, "apply", "--project", "demo", "--now", "2030-01-01T04:00:00Z"]);
    assert.equal(result.code, 1, result.stdout + result.stderr);
    assert.match(
      result.stdout,
      new RegExp(
        `failed: cannot make a private folder for the stream's FIFOs in ${privateDir}: the file system is read-only`,
      ),
    );
    assert.doesNotMatch(result.stdout + result.stderr, /this is a bug|EROFS|attempt 1\/\d failed \(transient\)/);
  });
});
