/**
 * The streaming pipeline against real processes and a real restic repository: the dump flows from program to
 * program through FIFOs, never through backupctl; restic never sees the end of a stream that failed (so it stores
 * nothing, rather than a snapshot forgotten afterwards); a failing restic stops the producer at once; a restore's
 * database client never sees the end of a dump restic could not finish; the FIFO folder is gone afterwards.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { streamBackup } from "../../src/apply/pipeline.ts";
import { ExecError, SourceError } from "../../src/errors.ts";
import { FifoFolder, stopAndWait } from "../../src/exec/fifo.ts";
import { start } from "../../src/exec/run.ts";
import { type BackupOptions, Restic } from "../../src/repository/restic.ts";
import type { Located, RestoreContext } from "../../src/restore/restore.ts";
import { streamDump } from "../../src/restore/stream.ts";
import type { StreamInput } from "../../src/sources/types.ts";
import { processesWith } from "../support/inspect.ts";
import { runTool, waitFor } from "../support/cli.ts";

const passwordVariable = "PIPELINE_TEST_RESTIC_PASSWORD";
const password = `pipeline-${randomBytes(6).toString("hex")}`;

/**
 * Bytes this process's threads read through read(2) (their `rchar`; /proc/self/io would also count the children
 * it reaped).
 */
function ownRead(): number {
  let total = 0;
  for (const task of readdirSync("/proc/self/task")) {
    try {
      total += Number(/rchar: (\d+)/.exec(readFileSync(`/proc/self/task/${task}/io`, "utf8"))?.[1] ?? 0);
    } catch {
      // the thread ended
    }
  }
  return total;
}

/**
 * This process's FIFO folders (exec/fifo.ts) currently in the temporary folder: by the pid in their names, since the
 * other runtime's suite, running beside this one, makes its own there.
 */
function fifoFolders(): string[] {
  return readdirSync(tmpdir()).filter((name) => name.startsWith(`backupctl-fifo-${process.pid}-`)).sort();
}

describe("streaming pipeline (FIFOs between the processes)", () => {
  let scratch: string;
  let repository: Restic;
  let repoPath: string;
  const marker = `pipeline-${randomBytes(4).toString("hex")}`;
  let clock = Date.UTC(2026, 0, 1);
  const options = (extra: Partial<BackupOptions> = {}): BackupOptions => ({
    tags: ["backupctl", `marker=${marker}`],
    host: "pipeline-test",
    time: new Date(clock += 60_000),
    ...extra,
  });
  const snapshots = async (): Promise<{ id: string; paths: string[] }[]> => {
    const result = await runTool("restic", ["--no-cache", "snapshots", "--json"], {
      env: { RESTIC_REPOSITORY: repoPath, RESTIC_PASSWORD: password },
    });
    assert.equal(result.code, 0, result.stderr);
    return JSON.parse(result.stdout || "[]") ?? [];
  };
  // restic's locks by their ids: its local backend writes a lock as ID-tmp-N and renames it, and a restic stopped in
  // between leaves that temporary file, which restic never reads as a lock.
  const locks = () => readdirSync(join(repoPath, "locks")).filter((name) => /^[0-9a-f]{64}$/.test(name));
  const input = (argv: string[], extra: Partial<StreamInput> = {}): StreamInput => ({
    kind: "stream",
    argv,
    filename: "dump.bin",
    allowEmpty: false,
    package: "coreutils",
    ...extra,
  });

  before(async () => {
    process.env[passwordVariable] = password;
    scratch = mkdtempSync(join(tmpdir(), "backupctl-pipeline-test-"));
    repoPath = join(scratch, "repo");
    repository = new Restic(
      "local",
      { type: "restic", url: repoPath, password: { secret: "env", name: passwordVariable } },
      scratch,
      scratch,
    );
    assert.equal(await repository.init(), "created");
  });
  after(() => {
    rmSync(scratch, { recursive: true, force: true });
  });

  it("restic 0.14 stopped before the end of its stdin stores no snapshot (SIGTERM and SIGINT); SIGINT also removes its lock", async () => {
    for (const signal of ["SIGTERM", "SIGINT"] as const) {
      const fifos = FifoFolder.create();
      try {
        const [fifo] = await fifos.make("restic");
        const release = fifos.hold(fifo);
        const restic = repository.startStdinBackup(`killed-${signal}.bin`, options(), fifo);
        const producer = start(["head", "-c", "3000000", "/dev/urandom"], { stdoutTo: fifo });
        assert.equal((await producer.result).code, 0);
        // On a loaded machine restic may still be taking its lock: what is asserted below is what a signal does to
        // a restic that holds one.
        await waitFor("restic to hold its lock", () => locks().length === 1 || undefined, 60_000);
        // restic has read nearly all of it (3 MB cannot sit in a FIFO's 64 KiB, and backupctl's hold reads nothing):
        // it would store a snapshot as soon as it saw the end of the stream.
        // SIGTERM goes to restic alone, to show what it does to restic 0.14 itself (the gate would turn a SIGTERM
        // to the group into a SIGINT for restic, racing the SIGTERM): SIGINT goes to the group, as backupctl sends it.
        const resticPids = processesWith(`killed-${signal}.bin`)
          .filter((pid) => readFileSync(`/proc/${pid}/comm`, "utf8").trim() === "restic");
        assert.equal(resticPids.length, 1, "one restic process");
        const kill = signal === "SIGTERM" ? (sent: NodeJS.Signals) => process.kill(resticPids[0], sent) : restic.kill;
        const { code, signal: died } = await stopAndWait(
          { kill, result: restic.finished.then((done) => done.result) },
          signal,
        );
        release();
        assert.ok(code !== 0, `restic ended by ${signal}: exit ${code ?? died}`);
      } finally {
        fifos.remove();
      }
      assert.deepEqual(
        (await snapshots()).filter((s) => s.paths.some((path) => path.includes(`killed-${signal}`))),
        [],
        `${signal}: no snapshot`,
      );
      if (signal === "SIGTERM") {
        // SIGTERM kills restic 0.14 outright: its lock stays (stale, its process gone). The pipeline uses SIGINT.
        assert.equal(locks().length, 1, "SIGTERM: restic left its lock");
        await repository.unlock();
      } else {
        assert.deepEqual(locks(), [], "SIGINT: restic removed its lock");
      }
    }
  });

  it("the dump flows between the processes through the private FIFOs: backupctl reads none of it; the folder goes", async () => {
    const size = 256 * 1024 * 1024;
    const foldersBefore = fifoFolders();
    /** What the programs' stdin and stdout were, seen while the dump ran: program → "fd0 → fd1". */
    const wiring = new Map<string, string>();
    const folders: { name: string; mode: number; entries: { name: string; mode: number; fifo: boolean }[] }[] = [];
    const sample = () => {
      for (const name of fifoFolders()) {
        if (foldersBefore.includes(name) || folders.some((f) => f.name === name)) continue;
        try {
          const dir = join(tmpdir(), name);
          const entries = readdirSync(dir).map((entry) => {
            const stat = statSync(join(dir, entry));
            return { name: entry, mode: stat.mode & 0o777, fifo: stat.isFIFO() };
          });
          if (entries.length > 0) folders.push({ name, mode: statSync(dir).mode & 0o777, entries });
        } catch {
          // gone already
        }
      }
      for (const pid of readdirSync("/proc").filter((name) => /^\d+$/.test(name))) {
        try {
          const program = basename(readFileSync(`/proc/${pid}/cmdline`, "latin1").split("\0")[0]);
          if (!["head", "perl", "restic"].includes(program)) continue;
          const [fd0, fd1] = [0, 1].map((fd) => readlinkSync(`/proc/${pid}/fd/${fd}`).replace(tmpdir(), "$TMP"));
          const ours = `backupctl-fifo-${process.pid}-`;
          if (fd0.includes(ours) || fd1.includes(ours)) {
            wiring.set(program, `${fd0} → ${fd1}`.replace(/backupctl-fifo-[\w-]+/g, "FIFOS"));
          }
        } catch {
          // gone, or not ours
        }
      }
    };
    const watcher = setInterval(sample, 100);
    const before = ownRead();
    let result;
    try {
      result = await streamBackup(input(["head", "-c", String(size), "/dev/urandom"]), repository, options());
    } finally {
      clearInterval(watcher);
    }
    const read = ownRead() - before;
    assert.equal(result.bytes, size);
    assert.match(result.snapshotId ?? "", /^[0-9a-f]{8,64}$/);
    // producer → FIFO → tap → FIFO → restic: backupctl is not on the way (it holds restic's FIFO, never reads it).
    assert.match(wiring.get("head") ?? "", / → \$TMP\/FIFOS\/stream-0$/);
    assert.match(wiring.get("perl") ?? "", /^\$TMP\/FIFOS\/stream-0 → /);
    assert.match(wiring.get("restic") ?? "", /^\$TMP\/FIFOS\/stream-1 → /);
    // The wiring above is what keeps the dump out of this process; under Deno its threads' rchar confirms it (Bun
    // reads its children's sockets with recv, not counted there). CPU time is not asserted: on a loaded machine it
    // varies with the event loop's wakeups, not with the dump (benchmarks measure it: bench/).
    // Under Deno the test files of one runtime share a process (deno test --parallel): their own reads count too,
    // tens of MB at most; a dump passing through backupctl would be all of its 256 MB.
    assert.ok(read < size / 2, `backupctl read ${read} bytes while streaming a ${size}-byte dump`);
    assert.ok(folders.length > 0, "the FIFO folder was seen while the dump ran");
    for (const folder of folders) {
      assert.equal(folder.mode, 0o700, `${folder.name} is private`);
      for (const entry of folder.entries) {
        assert.ok(entry.fifo, `${entry.name} is a FIFO, not a file`);
        assert.equal(entry.mode, 0o600);
      }
    }
    assert.deepEqual(fifoFolders(), foldersBefore, "the FIFO folder was removed");
    // restic stored the whole dump.
    const dumped = await runTool("sh", ["-c", `restic --no-cache dump ${result.snapshotId} /dump.bin | wc -c`], {
      env: { RESTIC_REPOSITORY: repoPath, RESTIC_PASSWORD: password },
    });
    assert.equal(Number(dumped.stdout.trim()), size);
  });

  it("a producer that fails after writing data leaves no snapshot at all: restic never saw the end of the stream", async () => {
    const foldersBefore = fifoFolders();
    const failing = input(["sh", "-c", "head -c 5000000 /dev/urandom; echo 'connection lost' >&2; exit 3"], {
      filename: "failing.bin",
    });
    const before = (await snapshots()).length;
    await assert.rejects(streamBackup(failing, repository, options()), (error: Error) => {
      assert.ok(error instanceof ExecError, String(error));
      assert.match(
        error.message,
        /^sh \(the dump\) failed \(exit 3\) after \d+ bytes:\n\s+connection lost\nrestic was stopped before the end of the stream: no snapshot was stored$/,
      );
      // What the tap had counted when the stages were stopped: some, at most what the producer wrote.
      const counted = Number(/after (\d+) bytes/.exec(error.message)![1]);
      assert.ok(counted > 0 && counted <= 5_000_000, String(counted));
      return true;
    });
    assert.equal((await snapshots()).length, before, "no snapshot, not even one forgotten afterwards");
    assert.deepEqual(locks(), [], "restic (stopped by SIGINT) removed its lock");
    assert.deepEqual(fifoFolders(), foldersBefore, "the FIFO folder was removed after the failure");
  });

  it("a dump that fails its format check is never stored; neither is an empty one", async () => {
    const before = (await snapshots()).length;
    const checked = input(["sh", "-c", "printf 'NOT A DUMP'; head -c 100000 /dev/urandom"], {
      check: (head) => (Buffer.from(head.subarray(0, 5)).toString() === "PGDMP" ? undefined : "no PGDMP header"),
    });
    await assert.rejects(streamBackup(checked, repository, options()), (error: Error) => {
      assert.ok(error instanceof SourceError, String(error));
      assert.match(error.message, /^the dump failed verification: no PGDMP header\nrestic was stopped/);
      return true;
    });
    await assert.rejects(
      streamBackup(input(["true"]), repository, options()),
      /true produced an empty dump; set allowEmpty: true/,
    );
    const allowed = await streamBackup(input(["true"], { allowEmpty: true }), repository, options());
    assert.deepEqual(allowed, { snapshotId: undefined, bytes: 0, bytesAdded: 0 });
    assert.equal((await snapshots()).length, before);
    assert.deepEqual(locks(), []);
  });

  it("a failing restic stops a producer that would never end, and the stage fails with restic's error", async () => {
    const foldersBefore = fifoFolders();
    const wrong = new Restic(
      "wrong",
      { type: "restic", url: repoPath, password: { secret: "env", name: `${passwordVariable}_WRONG` } },
      scratch,
      scratch,
    );
    process.env[`${passwordVariable}_WRONG`] = "not the password";
    // An endless producer, marked so the test can see it is gone.
    const endless = input(["sh", "-c", "while :; do head -c 1048576 /dev/urandom; done", marker]);
    const started = Date.now();
    await assert.rejects(streamBackup(endless, wrong, options({ timeoutMs: 120_000 })), (error: Error) => {
      assert.ok(error instanceof ExecError, String(error));
      assert.match(error.message, /^repository wrong: restic backup --stdin failed \(exit 1\) — the password/);
      return true;
    });
    assert.ok(Date.now() - started < 30_000, `failed in ${Date.now() - started} ms, long before the timeout`);
    assert.deepEqual(processesWith(marker), [], "the producer was stopped");
    assert.deepEqual(fifoFolders(), foldersBefore);
  });

  it("restore: the database client sees the end of the dump only when restic dump succeeded", async () => {
    const stored = await streamBackup(
      input(["sh", "-c", "seq 1 200000"], { filename: "rows.txt" }),
      repository,
      options(),
    );
    const expected = Array.from({ length: 200000 }, (_, i) => `${i + 1}\n`).join("");
    const out = join(scratch, "restored.txt");
    // A sink that records whether it saw the end of its input (`cat` ends only then).
    const sink = {
      argv: ["sh", "-c", 'cat > "$1" && touch "$1.eof"', "sink", out],
      package: "dash",
      cleanup: () => {},
    };
    const located = (id: string, path: string) =>
      ({
        project: { name: "p" },
        source: { name: "s", type: "command" },
        repository: "local",
        snapshot: { id, short_id: id.slice(0, 8) },
        dumpPath: path,
      }) as unknown as Located;
    const ctx = {
      loaded: { dir: scratch },
      privateDir: scratch,
      repositoryFor: () => repository,
    } as unknown as RestoreContext;
    const foldersBefore = fifoFolders();

    const outcome = await streamDump(located(stored.snapshotId!, "/rows.txt"), { sink }, ctx);
    assert.equal(outcome.bytes, expected.length);
    assert.equal(readFileSync(out, "utf8"), expected);
    assert.ok(existsSync(`${out}.eof`));

    // restic dump fails (no such file in the snapshot): the sink is stopped without ever seeing an end.
    rmSync(out);
    rmSync(`${out}.eof`);
    await assert.rejects(
      streamDump(located(stored.snapshotId!, "/no-such-file.txt"), { sink }, ctx),
      /restic dump failed/,
    );
    assert.ok(!existsSync(`${out}.eof`), "the sink never saw the end of the stream");

    // To a file: written 0600 by restic itself, removed when the dump fails.
    const file = join(scratch, "rows-copy.txt");
    const copied = await streamDump(located(stored.snapshotId!, "/rows.txt"), { file }, ctx);
    assert.equal(copied.bytes, expected.length);
    assert.equal(readFileSync(file, "utf8"), expected);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const broken = join(scratch, "broken.txt");
    await assert.rejects(streamDump(located(stored.snapshotId!, "/no-such-file.txt"), { file: broken }, ctx));
    assert.ok(!existsSync(broken), "a failed restore leaves no partial file");
    writeFileSync(broken, "kept");
    await assert.rejects(
      streamDump(located(stored.snapshotId!, "/rows.txt"), { file: broken }, ctx),
      /cannot write the restored dump/,
    );
    assert.equal(readFileSync(broken, "utf8"), "kept", "an existing file is never overwritten");
    assert.deepEqual(fifoFolders(), foldersBefore);
  });
});
