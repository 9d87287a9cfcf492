/**
 * exec/: the output sink keeps the newest bytes up to its cap, run() passes argv and redirection paths through
 * without shell quoting (spaces, quotes, `$` and newlines arrive as written), a missing program is exit 127, a
 * program's output classifies as transient or not, and `which` finds programs like `command -v`.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, describe, it } from "node:test";
import { transientOutput } from "../../src/exec/failure.ts";
import { OutputSink } from "../../src/exec/output-sink.ts";
import { run } from "../../src/exec/run.ts";
import { which } from "../../src/exec/which.ts";

const dir = mkdtempSync(join(tmpdir(), "backupctl-exec-"));
after(() => rmSync(dir, { recursive: true, force: true }));

describe("OutputSink", () => {
  it("keeps the newest bytes up to its cap, across chunks", () => {
    const sink = new OutputSink(10);
    for (const chunk of ["0123456789", "abcdef", "XYZ"]) sink.write(chunk);
    assert.equal(sink.text(), "3456789abcdefXYZ".slice(-10));
  });

  it("with a cap of 0 keeps nothing, yet lets the stream flow", async () => {
    const sink = new OutputSink(0);
    const stream = Readable.from(["a", "b", "c"]);
    // As zx does: its listener appends each chunk, then the sink's counts and trims it.
    stream.on("data", (chunk: string) => sink.chunks.push(chunk));
    sink.follow(stream);
    await new Promise((resolve) => stream.once("end", resolve));
    assert.equal(sink.text(), "");
  });

  it("does not split a multi-byte character it keeps whole", () => {
    const sink = new OutputSink(64);
    const bytes = Buffer.from("größe ✓");
    sink.write(bytes.subarray(0, 3));
    sink.write(bytes.subarray(3));
    assert.equal(sink.text(), "größe ✓");
  });
});

describe("run", () => {
  it("passes argv and redirection paths as written, with no shell quoting", async () => {
    const odd = `it's "odd" $HOME \`x\` a\nb`;
    const input = join(dir, "in put 'x' $y.txt");
    const output = join(dir, 'out "put" $(z).txt');
    writeFileSync(input, "from the file\n");
    const echoed = await run(["printf", "%s|", odd, "second"]);
    assert.equal(echoed.code, 0, echoed.stderr);
    assert.equal(echoed.stdout, `${odd}|second|`);
    const copied = await run(["cat"], { stdinFrom: input, stdoutTo: output });
    assert.equal(copied.code, 0, copied.stderr);
    assert.equal(readFileSync(output, "utf8"), "from the file\n");
  });

  it("gives stdin its input and keeps stderr's last lines", async () => {
    const result = await run(["sh", "-c", 'cat; for i in 1 2 3 4 5 6 7 8 9 10; do echo "line $i" >&2; done; exit 3'], {
      input: "given\n",
    });
    assert.equal(result.code, 3);
    assert.equal(result.stdout, "given\n");
    assert.match(result.stderr, /^line 1\n/);
    assert.equal(result.stderrTail.split("\n").length, 8);
    assert.match(result.stderrTail, /line 10$/);
  });

  it("a missing program exits 127", async () => {
    const result = await run(["backupctl-no-such-program-4711"]);
    assert.equal(result.code, 127);
  });

  it("a timeout stops the program and says so", async () => {
    const result = await run(["sleep", "30"], { timeoutMs: 200, stopGraceMs: 1000 });
    assert.equal(result.timedOut, true);
    assert.equal(result.code, null);
    assert.equal(result.signal, "SIGTERM");
  });
});

describe("transientOutput", () => {
  it("a refused or dropped connection is transient; a refused login or a full disk is not", () => {
    assert.equal(transientOutput("pg_dump: error: could not connect to server: Connection refused"), true);
    assert.equal(transientOutput("ERROR 1040 (HY000): Too many connections"), true);
    assert.equal(transientOutput("FATAL: password authentication failed for user backup"), false);
    assert.equal(transientOutput("connection reset; then: No space left on device"), false);
    assert.equal(transientOutput(""), false);
  });
});

describe("which", () => {
  it("finds an executable on PATH like command -v, and nothing for a missing one", () => {
    assert.equal(which("sh", "/nonexistent:/bin:/usr/bin"), "/bin/sh");
    assert.equal(which("backupctl-no-such-program-4711"), undefined);
    const notExecutable = join(dir, "plain");
    writeFileSync(notExecutable, "#!/bin/sh\n");
    assert.equal(which("plain", dir), undefined);
  });
});
