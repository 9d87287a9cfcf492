/**
 * exec/run.ts with real programs: exit codes and signals as results (never thrown), argv passed without a shell's
 * reading of it, stdin text and path redirections, the environment, bounded output with secrets redacted, and the
 * timeout that stops the whole process group with the program's stop signal, then SIGKILL.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { rememberEnvSecrets, rememberSecret } from "../../src/config/secrets.ts";
import { onPath, run, start, tail } from "../../src/exec/run.ts";

const scratch = mkdtempSync(join(tmpdir(), "backupctl-run-test-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

/** Whether a process is still there (a zombie of an exited child counts as gone). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, "utf8"));
  } catch {
    return false;
  }
}

describe("run", () => {
  it("returns the exit code and output, and never throws for a failure", async () => {
    const ok = await run(["sh", "-c", "echo out; echo err >&2"]);
    assert.deepEqual([ok.code, ok.signal, ok.stdout, ok.stderr], [0, null, "out\n", "err\n"]);
    const failed = await run(["sh", "-c", "echo first >&2; echo why >&2; exit 7"]);
    assert.equal(failed.code, 7);
    assert.equal(failed.stderrTail, "first\nwhy");
    assert.deepEqual(failed.argv, ["sh", "-c", "echo first >&2; echo why >&2; exit 7"]);
  });

  it("reports a program killed by a signal with its signal and no exit code", async () => {
    const result = await run(["sh", "-c", "kill -TERM $$"]);
    assert.equal(result.code, null);
    assert.equal(result.signal, "SIGTERM");
  });

  it("passes each argument as it is: no word splitting, globbing or expansion", async () => {
    const tricky = ["a b", "$HOME", "`id`", "'quoted'", '"double"', "*", "semi;colon", "back\\slash", ""];
    const result = await run(["printf", "[%s]", ...tricky]);
    assert.equal(result.stdout, tricky.map((arg) => `[${arg}]`).join(""));
  });

  it("writes `input` to stdin, and redirects stdin and stdout to paths", async () => {
    assert.equal((await run(["cat"], { input: "line one\nline two\n" })).stdout, "line one\nline two\n");
    const from = join(scratch, "in.txt");
    const to = join(scratch, "out.txt");
    writeFileSync(from, "through files\n");
    const result = await run(["tr", "a-z", "A-Z"], { stdinFrom: from, stdoutTo: to });
    assert.equal(result.code, 0);
    assert.equal(result.stdout, "");
    assert.equal(readFileSync(to, "utf8"), "THROUGH FILES\n");
  });

  it("runs in `cwd`", async () => {
    assert.equal((await run(["pwd", "-P"], { cwd: scratch })).stdout.trim(), scratch);
  });

  it("adds `env` to the inherited environment, removes a variable given as undefined, withholds env() secrets", async () => {
    process.env.UNIT_RUN_INHERITED = "inherited";
    process.env.UNIT_RUN_REMOVED = "removed";
    process.env.UNIT_RUN_WITHHELD = "hunter2-run";
    rememberEnvSecrets({ password: { secret: "env", name: "UNIT_RUN_WITHHELD" } });
    try {
      const result = await run(
        ["sh", "-c", 'echo "${UNIT_RUN_INHERITED-unset} ${UNIT_RUN_REMOVED-unset} ${UNIT_RUN_WITHHELD-unset} $GIVEN"'],
        { env: { GIVEN: "given", UNIT_RUN_REMOVED: undefined } },
      );
      assert.equal(result.stdout, "inherited unset unset given\n");
    } finally {
      delete process.env.UNIT_RUN_INHERITED;
      delete process.env.UNIT_RUN_REMOVED;
      delete process.env.UNIT_RUN_WITHHELD;
    }
  });

  it("redacts remembered secrets from stderr", async () => {
    rememberSecret("unit-run-secret-Zq8");
    const result = await run(["sh", "-c", "echo 'password unit-run-secret-Zq8 rejected' >&2; exit 1"]);
    assert.ok(!result.stderr.includes("unit-run-secret-Zq8"), result.stderr);
    assert.ok(!result.stderrTail.includes("unit-run-secret-Zq8"), result.stderrTail);
    assert.match(result.stderrTail, /^password .+ rejected$/);
  });

  it("keeps the last 64 KiB of stderr, and at most 64 MiB of stdout; `stream` keeps none", async () => {
    const noisy = await run(["perl", "-e", 'print STDERR "first\\n", "x" x 200000, "\\nlast\\n"']);
    assert.ok(noisy.stderr.length <= 64 * 1024, `${noisy.stderr.length} characters of stderr`);
    assert.ok(noisy.stderr.endsWith("last\n"));
    assert.ok(!noisy.stderr.includes("first"));
    const mib = 1024 * 1024;
    const big = await run(["head", "-c", String(65 * mib), "/dev/zero"]);
    assert.equal(big.code, 0);
    assert.ok(big.stdout.length > 0 && big.stdout.length <= 64 * mib, `${big.stdout.length} characters of stdout`);
    const streamed = await run(["head", "-c", String(mib), "/dev/zero"], { stdout: "stream" });
    assert.equal(streamed.stdout, "");
  });

  it("stops a program that runs too long with its stop signal and says it timed out", async () => {
    // The trap proves the program got SIGINT, not SIGTERM: restic removes its lock only on SIGINT.
    const script = 'trap "echo got INT; exit 3" INT; trap "echo got TERM; exit 4" TERM; echo ready; ' +
      "while :; do sleep 0.05; done";
    const result = await run(["sh", "-c", script], { timeoutMs: 300, stopSignal: "SIGINT" });
    assert.equal(result.timedOut, true);
    assert.equal(result.code, 3);
    assert.equal(result.stdout, "ready\ngot INT\n");
    const ended = await run(["true"], { timeoutMs: 10_000 });
    assert.equal(ended.timedOut, undefined);
  });

  it("sends SIGKILL after the grace when the stop signal is ignored", async () => {
    const result = await run(["sh", "-c", 'trap "" TERM; echo ready; while :; do sleep 0.05; done'], {
      timeoutMs: 200,
      stopGraceMs: 200,
    });
    assert.equal(result.timedOut, true);
    assert.equal(result.signal, "SIGKILL");
  });

  it("stops the whole process group: what the program left running in the background goes with it", async () => {
    const child = start(["sh", "-c", "sleep 300 & echo $!; sleep 300"], { timeoutMs: 60_000 });
    const orphan = await new Promise<number>((resolve) => {
      let seen = "";
      child.stdout.on("data", (chunk: Uint8Array | string) => {
        seen += chunk.toString();
        if (seen.includes("\n")) resolve(Number(seen.trim()));
      });
    });
    assert.ok(alive(orphan));
    child.kill();
    const result = await child.result;
    assert.equal(result.signal, "SIGTERM");
    assert.equal(result.timedOut, undefined);
    // The orphan is not our child: it is reparented, then reaped by init once the signal has ended it.
    const deadline = Date.now() + 10_000;
    while (alive(orphan) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.ok(!alive(orphan), `background process ${orphan} still running`);
  });
});

describe("tail", () => {
  it("keeps the last non-empty lines, at most 2 KiB", () => {
    assert.equal(tail("a\n\nb\n  \nc\n", 2), "b\nc");
    assert.equal(tail(`${"y".repeat(5000)}\n`).length, 2048);
  });
});

describe("onPath", () => {
  it("finds a program on PATH and not one that does not exist", async () => {
    assert.equal(await onPath("sh"), true);
    assert.equal(await onPath("backupctl-no-such-program"), false);
  });
});
