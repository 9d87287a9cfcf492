/**
 * exec/fifo.ts with real FIFOs and programs: a FifoFolder's modes and lifetime, `hold()` keeping a reader from seeing
 * the end of a stream, the tap's count and edges, and the gate, which lets restic (here `cat` or a stand-in) see the
 * end of its stream on `commit` only and stops it otherwise. The gate with real restic is test/apply/pipeline_test.ts.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { after, describe, it } from "node:test";
import { FifoFolder, gateArgv, parseTap, stopAndWait, tapArgv } from "../../src/exec/fifo.ts";
import { type RunningProcess, start } from "../../src/exec/run.ts";

const scratch = mkdtempSync(join(tmpdir(), "backupctl-fifo-test-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

/**
 * A stand-in for restic: says "ready" once its SIGINT and SIGTERM handlers are set, reads its stdin to the end, then
 * says "stored". Its handlers say which signal came and exit 130 or 143. Perl's default (deferred) signals would lose
 * a signal that arrives just before it blocks in read(2); PERL_SIGNALS=unsafe runs the handler at once, as restic's
 * own handling does; the handlers write and exit without Perl's buffers, which they may interrupt.
 */
const standIn = [
  "env",
  "PERL_SIGNALS=unsafe",
  "perl",
  "-e",
  "use POSIX; sub said { syswrite STDOUT, $_[0] } " +
  '$SIG{INT} = sub { said "got INT\\n"; POSIX::_exit(130) }; $SIG{TERM} = sub { said "got TERM\\n"; POSIX::_exit(143) }; ' +
  'said "ready\\n"; 1 while sysread STDIN, my $buffer, 65536; said "stored\\n"',
];

/** Whether `promise` is still pending after `ms`: for what must not happen yet, such as a reader seeing an end. */
async function pendingAfter(promise: Promise<unknown>, ms: number): Promise<boolean> {
  const pending = Symbol("pending");
  const timer = new Promise((resolve) => setTimeout(() => resolve(pending), ms));
  return await Promise.race([promise, timer]) === pending;
}

/** Resolves once the program printed `line` on stdout. */
function printed(child: RunningProcess, line: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = "";
    const listen = (chunk: Uint8Array | string) => {
      seen += chunk.toString();
      if (!seen.includes(`${line}\n`)) return;
      child.stdout.off("data", listen);
      resolve();
    };
    child.stdout.on("data", listen);
    void child.result.then((result) => reject(new Error(`exited (${result.code}) before "${line}": ${result.stderr}`)));
  });
}

describe("FifoFolder", () => {
  it("makes a private folder (0700) of FIFOs (0600) named after this process, removed with everything in it", async () => {
    const privateDir = join(scratch, "private");
    const fifos = FifoFolder.create(privateDir);
    assert.equal(statSync(privateDir).mode & 0o777, 0o700);
    assert.ok(basename(fifos.dir).startsWith(`secret-${process.pid}-fifo-`), fifos.dir);
    assert.equal(statSync(fifos.dir).mode & 0o777, 0o700);
    const paths = await fifos.make("dump", "tap");
    assert.deepEqual(paths, [join(fifos.dir, "dump"), join(fifos.dir, "tap")]);
    for (const path of paths) {
      assert.ok(statSync(path).isFIFO(), path);
      assert.equal(statSync(path).mode & 0o777, 0o600);
    }
    fifos.hold(paths[0]);
    fifos.remove();
    assert.equal(statSync(fifos.dir, { throwIfNoEntry: false }), undefined);
  });

  it("without a private folder, lives under the system's temporary folder", () => {
    const fifos = FifoFolder.create();
    try {
      assert.ok(fifos.dir.startsWith(join(tmpdir(), `backupctl-fifo-${process.pid}-`)), fifos.dir);
      assert.equal(statSync(fifos.dir).mode & 0o777, 0o700);
    } finally {
      fifos.remove();
    }
  });

  it("says where it failed when a FIFO cannot be made", async () => {
    const fifos = FifoFolder.create(join(scratch, "private"));
    try {
      await fifos.make("taken");
      await assert.rejects(fifos.make("taken"), /cannot make the FIFOs of the stream in .*File exists/);
    } finally {
      fifos.remove();
    }
  });

  it("makes the FIFOs before one it cannot make, and names the one it could not", async () => {
    const fifos = FifoFolder.create(join(scratch, "private"));
    try {
      writeFileSync(join(fifos.dir, "second"), "");
      await assert.rejects(fifos.make("first", "second", "third"), /second.*File exists|File exists.*second/);
      assert.ok(statSync(join(fifos.dir, "first")).isFIFO());
      assert.equal(statSync(join(fifos.dir, "first")).mode & 0o777, 0o600);
      assert.ok(statSync(join(fifos.dir, "second")).isFile(), "the file in the way is left as it was");
    } finally {
      fifos.remove();
    }
  });

  it("hold(): the reader sees the end of the stream only once it is let go, whatever the writers did", async () => {
    const fifos = FifoFolder.create(join(scratch, "private"));
    try {
      const [fifo] = await fifos.make("stream");
      const release = fifos.hold(fifo);
      const reader = start(["cat"], { stdinFrom: fifo });
      const writer = await start(["printf", "all of it"], { stdoutTo: fifo }).result;
      assert.equal(writer.code, 0);
      assert.ok(await pendingAfter(reader.result, 300), "the reader saw an end while the FIFO was held");
      release();
      release(); // a second call does nothing
      const result = await reader.result;
      assert.deepEqual([result.code, result.stdout], [0, "all of it"]);
    } finally {
      fifos.remove();
    }
  });
});

describe("tap", () => {
  it("copies its input to the FIFO, counts the bytes and keeps the first and last 64 KiB", async () => {
    const fifos = FifoFolder.create(join(scratch, "private"));
    try {
      const [fifo] = await fifos.make("out");
      const reader = start(["wc", "-c"], { stdinFrom: fifo });
      const size = 200_000;
      const input = Array.from({ length: size }, (_, i) => String.fromCharCode(97 + (i % 26))).join("");
      const tap = await start(tapArgv(fifo, true), { input }).result;
      assert.equal(tap.code, 0, tap.stderr);
      assert.equal((await reader.result).stdout.trim(), String(size));
      const report = parseTap(tap.stdout);
      assert.equal(report?.bytes, size);
      assert.equal(new TextDecoder().decode(report?.head), input.slice(0, 65536));
      assert.equal(new TextDecoder().decode(report?.tail), input.slice(-65536));

      const [plain] = await fifos.make("plain");
      const drain = start(["cat"], { stdinFrom: plain, stdout: "stream" });
      const counted = await start(tapArgv(plain, false), { input: "12345" }).result;
      await drain.result;
      assert.deepEqual(parseTap(counted.stdout), { bytes: 5 }, "without edges, only the count");

      // With hash: the SHA-256 of what went through (Digest::SHA is in the test machine's perl).
      const [hashed] = await fifos.make("hashed");
      const sink = start(["cat"], { stdinFrom: hashed, stdout: "stream" });
      const summed = await start(tapArgv(hashed, false, true), { input }).result;
      await sink.result;
      assert.deepEqual(parseTap(summed.stdout), {
        bytes: size,
        sha256: createHash("sha256").update(input).digest("hex"),
      });
    } finally {
      fifos.remove();
    }
  });

  it("parseTap: the last count line wins over progress lines; a count alone when stopped; nothing from garbage", () => {
    assert.deepEqual(parseTap("+10\n+20\n30\n"), { bytes: 30 });
    assert.equal(parseTap("+10\n")?.bytes, undefined);
    assert.equal(parseTap("tap: read: Input/output error\n"), undefined);
    const edges = parseTap("3 6162 6263\n");
    assert.equal(edges?.bytes, 3);
    assert.equal(new TextDecoder().decode(edges?.head), "ab");
    assert.equal(new TextDecoder().decode(edges?.tail), "bc");
  });
});

describe("gate", () => {
  it("commit: the program behind it gets the whole stream and its end; the gate exits as it did", async () => {
    const fifos = FifoFolder.create(join(scratch, "private"));
    try {
      const [fifo] = await fifos.make("stream");
      const gate = start(gateArgv(fifo, ["sh", "-c", 'cat; echo "saw the end" >&2; exit 5']));
      await printed(gate, "gate: holding");
      assert.equal((await start(["printf", "the dump"], { stdoutTo: fifo }).result).code, 0);
      assert.ok(await pendingAfter(gate.result, 300), "the program saw the end of the stream before commit");
      gate.stdin.write("commit\n");
      gate.stdin.end();
      const result = await gate.result;
      assert.equal(result.code, 5);
      assert.equal(result.stdout, "gate: holding\nthe dump");
      assert.equal(result.stderr, "saw the end\n");
    } finally {
      fifos.remove();
    }
  });

  it("exits 128 + the signal when the program behind it was killed by one", async () => {
    const fifos = FifoFolder.create(join(scratch, "private"));
    try {
      const [fifo] = await fifos.make("stream");
      // Its input stays open (no verdict yet): the program's own end is what the gate reports.
      const gate = start(gateArgv(fifo, ["sh", "-c", "kill -KILL $$"]));
      assert.equal((await gate.result).code, 128 + 9);
      gate.stdin.end();
    } finally {
      fifos.remove();
    }
  });

  it("abandon: its input ended without `commit`, the program is stopped with SIGINT before it sees the end", async () => {
    const fifos = FifoFolder.create(join(scratch, "private"));
    try {
      const [fifo] = await fifos.make("stream");
      // A stand-in for restic: on SIGINT it says so and exits 130; seeing the end would print "stored".
      const gate = start(gateArgv(fifo, standIn));
      await printed(gate, "ready");
      assert.equal((await start(["printf", "half a dump"], { stdoutTo: fifo }).result).code, 0);
      gate.stdin.end();
      const result = await gate.result;
      assert.equal(result.code, 130);
      assert.equal(result.stdout, "gate: holding\nready\ngot INT\n");
      assert.match(result.stderr, /the stream was not declared complete: restic stopped, no snapshot stored/);
    } finally {
      fifos.remove();
    }
  });

  it("turns a SIGTERM it gets into SIGINT for the program behind it", async () => {
    const fifos = FifoFolder.create(join(scratch, "private"));
    try {
      const [fifo] = await fifos.make("stream");
      const gate = start(gateArgv(fifo, standIn));
      // The gate relays the stand-in's "ready" from its main loop, so by then it has its signal handlers.
      await printed(gate, "ready");
      // To the gate alone (the stop of its whole group is SIGINT, restic's stop signal).
      const result = await stopAndWait(
        { kill: (signal) => process.kill(gate.pid ?? 0, signal), result: gate.result },
        "SIGTERM",
      );
      assert.equal(result.stdout, "gate: holding\nready\ngot INT\n");
      assert.equal(result.code, 130);
    } finally {
      fifos.remove();
    }
  });
});
