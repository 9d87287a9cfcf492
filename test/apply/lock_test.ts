/**
 * Project locks against real processes: holders are child processes of the runtime running the tests (Deno or Bun)
 * or `sleep`, stale holders are processes that really exited, and the takeover race is eight processes let loose on
 * the same stale lock at the same instant.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";
import { after, before, describe, it } from "node:test";
import {
  acquireProjectLock,
  currentProcessStart,
  inspectLocks,
  type LockHolder,
  lockPath,
  locksDir,
  removeLock,
  waitForProjectLock,
} from "../../src/apply/lock.ts";
import { LockError } from "../../src/errors.ts";
import { processStartOf } from "../../src/runtime/process.ts";
import { repoRoot } from "../support/cli.ts";

const host = hostname();
let scratch: string;
let childScript: string;
const children: ChildProcess[] = [];

/** A child holding or racing for a lock; it reports each step as a JSON line. */
const childSource = (lockModule: string) => `
import { existsSync } from "node:fs";
import { acquireProjectLock } from ${JSON.stringify(lockModule)};
const [stateDir, project, host, mode, go] = process.argv.slice(2);
const say = (event) => process.stdout.write(JSON.stringify({ pid: process.pid, ...event }) + "\\n");
if (mode === "race") {
  say({ event: "ready" });
  while (!existsSync(go)) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
}
let lock;
try {
  lock = acquireProjectLock(stateDir, project, { command: "test-" + mode, runId: "run-" + process.pid, host });
} catch (error) {
  say({ event: "lost", name: error.name, message: error.message });
  process.exit(0);
}
say({ event: "locked", tookOver: lock.tookOver ?? null });
await new Promise((resolve) => setTimeout(resolve, 50));
if (mode === "exit") process.exit(0);
if (mode === "throw") throw new Error("uncaught on purpose");
if (mode === "throw-later") {
  setTimeout(() => { throw new Error("uncaught later on purpose"); }, 10);
} else {
  for await (const _ of process.stdin);
  lock.release();
  say({ event: "released" });
}
`;

function runtimeArgv(script: string): string[] {
  if ("Bun" in globalThis) return [process.execPath, "--no-install", script];
  return [process.execPath, "run", "--allow-all", "--quiet", "--config", `${repoRoot}/deno.json`, script];
}

interface Child {
  pid: number;
  next(): Promise<Record<string, unknown> & { pid: number; event: string }>;
  /** Ends its stdin: a holder releases and exits. */
  finish(): void;
  closed: Promise<number | null>;
}

function startChild(stateDir: string, project: string, mode: string, go = ""): Child {
  const [program, ...prefix] = runtimeArgv(childScript);
  const proc = spawn(program, [...prefix, stateDir, project, host, mode, go], { stdio: ["pipe", "pipe", "pipe"] });
  children.push(proc);
  let stderr = "";
  proc.stderr!.on("data", (chunk) => (stderr += chunk));
  const closed = new Promise<number | null>((resolve) => proc.on("close", (code) => resolve(code)));
  const queue: string[] = [];
  const waiting: ((line: string) => void)[] = [];
  createInterface({ input: proc.stdout! }).on("line", (line) => {
    const waiter = waiting.shift();
    if (waiter) waiter(line);
    else queue.push(line);
  });
  return {
    pid: proc.pid!,
    next: () => {
      const line = queue.length > 0
        ? Promise.resolve(queue.shift()!)
        : new Promise<string>((resolve) => waiting.push(resolve));
      const died = closed.then((code): never => {
        throw new Error(`the child exited (${code}) without saying more: ${stderr}`);
      });
      return Promise.race([line, died]).then((text) => JSON.parse(text));
    },
    finish: () => proc.stdin!.end(),
    closed,
  };
}

/** The pid of a process that has exited (and been reaped). */
async function deadPid(): Promise<number> {
  const proc = spawn("true");
  await new Promise((resolve) => proc.on("close", resolve));
  return proc.pid!;
}

/** A live process that is not ours to lock with: `sleep 30`, killed after the tests. */
function sleeper(): { pid: number; start: string | null } {
  const proc = spawn("sleep", ["30"]);
  children.push(proc);
  return { pid: proc.pid!, start: processStartOf(proc.pid!) };
}

function newStateDir(): string {
  return mkdtempSync(join(scratch, "state-"));
}

function writeLock(stateDir: string, project: string, holder: Partial<LockHolder>): LockHolder {
  const full: LockHolder = {
    pid: 1,
    host,
    command: "apply",
    run_id: "20261121T030000Z-ab12cd",
    started_at: new Date(Date.now() - 12 * 60_000).toISOString(),
    process_start: null,
    ...holder,
  };
  mkdirSync(locksDir(stateDir), { recursive: true, mode: 0o700 });
  writeFileSync(lockPath(stateDir, project), JSON.stringify(full, null, 2) + "\n", { mode: 0o600 });
  return full;
}

const readHolder = (stateDir: string, project: string) =>
  JSON.parse(readFileSync(lockPath(stateDir, project), "utf8")) as LockHolder;

/** Files other than lock files left in the locks folder: temp files and claim markers must not stay. */
const leftovers = (stateDir: string) => readdirSync(locksDir(stateDir)).filter((name) => !name.endsWith(".lock"));

before(() => {
  scratch = mkdtempSync(join(tmpdir(), "backupctl-lock-"));
  childScript = join(scratch, "lock-child.ts");
  writeFileSync(childScript, childSource(pathToFileURL(join(repoRoot, "src/apply/lock.ts")).href));
});

after(() => {
  for (const child of children) child.kill("SIGKILL");
  rmSync(scratch, { recursive: true, force: true });
});

describe("acquireProjectLock", () => {
  it("writes the holder to a 0600 file in a 0700 folder; setRunId rewrites it; release removes it", () => {
    const stateDir = newStateDir();
    const lock = acquireProjectLock(stateDir, "app", { command: "apply", host });
    assert.equal(lock.path, join(stateDir, "locks", "app.lock"));
    assert.equal(lock.tookOver, undefined);
    assert.equal(statSync(locksDir(stateDir)).mode & 0o777, 0o700);
    assert.equal(statSync(lock.path).mode & 0o777, 0o600);
    const written = readHolder(stateDir, "app");
    assert.deepEqual(Object.keys(written).sort(), ["command", "host", "pid", "process_start", "run_id", "started_at"]);
    assert.equal(written.pid, process.pid);
    assert.equal(written.host, host);
    assert.equal(written.command, "apply");
    assert.equal(written.run_id, null);
    assert.match(written.started_at, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    assert.ok(Math.abs(Date.parse(written.started_at) - Date.now()) < 60_000);
    assert.equal(written.process_start, currentProcessStart());
    assert.match(written.process_start!, /^\d+$/, "Linux reports the start time");
    assert.deepEqual(written, lock.holder);

    lock.setRunId("20261121T030000Z-ab12cd");
    assert.equal(readHolder(stateDir, "app").run_id, "20261121T030000Z-ab12cd");
    assert.equal(lock.holder.run_id, "20261121T030000Z-ab12cd");
    assert.equal(statSync(lock.path).mode & 0o777, 0o600);

    lock.release();
    assert.deepEqual(readdirSync(locksDir(stateDir)), []);
    lock.release();
    acquireProjectLock(stateDir, "app", { command: "apply", host }).release();
  });

  it("refuses a lock held by another live process with a LockError naming holder, host, run and since", async () => {
    const stateDir = newStateDir();
    const holder = startChild(stateDir, "app", "hold");
    assert.deepEqual((await holder.next()).event, "locked");
    const error = (() => {
      try {
        acquireProjectLock(stateDir, "app", { command: "apply", host });
      } catch (error) {
        return error;
      }
      assert.fail("the second acquire succeeded");
    })();
    assert.ok(error instanceof LockError);
    assert.equal(error.exitCode, 4);
    assert.match(error.message, /^project app is locked: held by test-hold /);
    assert.ok(error.message.includes(`(pid ${holder.pid} on host ${host}, run run-${holder.pid})`), error.message);
    assert.match(error.message, / since \d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z \(\d+(ms|s) ago\); wait for it/);
    assert.equal(readHolder(stateDir, "app").pid, holder.pid, "the holder's lock is untouched");

    holder.finish();
    assert.equal((await holder.next()).event, "released");
    assert.equal(await holder.closed, 0);
    acquireProjectLock(stateDir, "app", { command: "apply", host }).release();
  });

  it("takes over the lock of a process that has exited, and reports it", async () => {
    const stateDir = newStateDir();
    const dead = writeLock(stateDir, "app", { pid: await deadPid(), run_id: "run-dead" });
    const lock = acquireProjectLock(stateDir, "app", { command: "apply", host });
    assert.deepEqual(lock.tookOver, dead);
    assert.equal(readHolder(stateDir, "app").pid, process.pid);
    lock.release();
    assert.deepEqual(readdirSync(locksDir(stateDir)), []);
  });

  it("judges a live pid with another process start as stale (pid reuse), with the right one as live", () => {
    const stateDir = newStateDir();
    const other = sleeper();
    assert.ok(other.start);
    writeLock(stateDir, "app", { pid: other.pid, process_start: other.start });
    assert.throws(() => acquireProjectLock(stateDir, "app", { command: "apply", host }), LockError);
    assert.equal(inspectLocks(stateDir)[0].state, "live");

    const reused = writeLock(stateDir, "app", { pid: other.pid, process_start: String(Number(other.start) + 1) });
    assert.equal(inspectLocks(stateDir)[0].state, "stale");
    const lock = acquireProjectLock(stateDir, "app", { command: "apply", host });
    assert.deepEqual(lock.tookOver, reused);
    lock.release();
  });

  it("never takes over a lock taken on another host, even with a pid that is gone here", async () => {
    const stateDir = newStateDir();
    writeLock(stateDir, "app", { pid: await deadPid(), host: "db1.elsewhere.invalid" });
    const before = readFileSync(lockPath(stateDir, "app"), "utf8");
    assert.throws(
      () => acquireProjectLock(stateDir, "app", { command: "apply", host }),
      (error: Error) =>
        error instanceof LockError && /on host db1\.elsewhere\.invalid/.test(error.message) &&
        /another host/.test(error.message) && error.message.includes("`backupctl unlock app --force`"),
    );
    assert.equal(readFileSync(lockPath(stateDir, "app"), "utf8"), before);
  });

  it("refuses an unreadable lock file and leaves it alone", () => {
    const stateDir = newStateDir();
    writeLock(stateDir, "app", {});
    writeFileSync(lockPath(stateDir, "app"), "{ not json");
    assert.throws(
      () => acquireProjectLock(stateDir, "app", { command: "apply", host }),
      (error: Error) => error instanceof LockError && /cannot be read \(the file is not JSON\)/.test(error.message),
    );
    assert.equal(readFileSync(lockPath(stateDir, "app"), "utf8"), "{ not json");
  });

  it("steps over a claim marker left by a process that died while taking the lock over", async () => {
    const stateDir = newStateDir();
    const dead = writeLock(stateDir, "app", { pid: await deadPid() });
    const identity = JSON.stringify([dead.host, dead.pid, dead.process_start, dead.started_at]);
    const marker = `${lockPath(stateDir, "app")}.claim-${
      createHash("sha256").update(identity).digest("hex").slice(0, 16)
    }-0`;
    writeFileSync(marker, JSON.stringify({ ...dead, pid: await deadPid(), command: "claim" }));
    const lock = acquireProjectLock(stateDir, "app", { command: "apply", host });
    assert.equal(lock.tookOver?.pid, dead.pid);
    assert.deepEqual(leftovers(stateDir), [], "the abandoned marker is swept");
    lock.release();
  });

  it("lets exactly one of 8 processes take over the same stale lock at once", async () => {
    for (let round = 0; round < 3; round++) {
      const stateDir = newStateDir();
      const dead = writeLock(stateDir, "race", { pid: await deadPid() });
      const go = join(stateDir, "go");
      const racers = Array.from({ length: 8 }, () => startChild(stateDir, "race", "race", go));
      for (const racer of racers) assert.equal((await racer.next()).event, "ready");
      writeFileSync(go, "");
      const results = await Promise.all(racers.map((racer) => racer.next()));
      const winners = results.filter((r) => r.event === "locked");
      assert.equal(winners.length, 1, JSON.stringify(results));
      const [winner] = winners;
      assert.deepEqual(winner.tookOver, dead);
      assert.equal(readHolder(stateDir, "race").pid, winner.pid);
      for (const loser of results.filter((r) => r !== winner)) {
        assert.equal(loser.event, "lost");
        assert.equal(loser.name, "LockError");
        assert.ok(String(loser.message).includes(`pid ${winner.pid} on host`), String(loser.message));
      }
      for (const racer of racers) racer.finish();
      await Promise.all(racers.map((racer) => racer.closed));
      assert.deepEqual(readdirSync(locksDir(stateDir)), [], "released, no temp files or claim markers left");
    }
  });

  it("releases the locks of a process that exits without releasing them, or dies of an uncaught error", async () => {
    for (const mode of ["exit", "throw", "throw-later"]) {
      const stateDir = newStateDir();
      const child = startChild(stateDir, "app", mode);
      assert.equal((await child.next()).event, "locked", mode);
      const code = await child.closed;
      assert.equal(code === 0, mode === "exit", `${mode}: exit code ${code}`);
      assert.deepEqual(readdirSync(locksDir(stateDir)), [], `${mode}: the lock file is gone`);
    }
  });
});

describe("release, setRunId and removeLock", () => {
  it("never remove or overwrite someone else's lock", async () => {
    const stateDir = newStateDir();
    const mine = acquireProjectLock(stateDir, "app", { command: "apply", host });
    // As `backupctl unlock --force` would: then another process takes the lock.
    assert.equal(removeLock(mine.path, mine.holder), true);
    const other = startChild(stateDir, "app", "hold");
    assert.equal((await other.next()).event, "locked");
    const theirs = readFileSync(mine.path, "utf8");

    assert.throws(() => mine.setRunId("run-late"), /no longer held by this process/);
    mine.release();
    assert.equal(readFileSync(mine.path, "utf8"), theirs);
    assert.equal(removeLock(mine.path, mine.holder), false);
    assert.equal(readFileSync(mine.path, "utf8"), theirs);

    other.finish();
    await other.closed;
    assert.deepEqual(readdirSync(locksDir(stateDir)), []);
  });
});

describe("waitForProjectLock", () => {
  it("waits for a holder that releases, then takes the lock", async () => {
    const stateDir = newStateDir();
    const holder = startChild(stateDir, "app", "hold");
    assert.equal((await holder.next()).event, "locked");
    const started = Date.now();
    setTimeout(() => holder.finish(), 400);
    const lock = await waitForProjectLock(stateDir, "app", { command: "watch", host }, {
      timeoutMs: 30_000,
      pollMs: 50,
    });
    assert.ok(Date.now() - started >= 350, "it waited for the release");
    assert.equal(readHolder(stateDir, "app").command, "watch");
    assert.equal(lock.tookOver, undefined, "released, not taken over");
    lock.release();
  });

  it("gives up after its time limit with a LockError saying how long it waited and who holds the lock", async () => {
    const stateDir = newStateDir();
    const holder = startChild(stateDir, "app", "hold");
    assert.equal((await holder.next()).event, "locked");
    const started = Date.now();
    await assert.rejects(
      waitForProjectLock(stateDir, "app", { command: "watch", host }, { timeoutMs: 500, pollMs: 50 }),
      (error: Error) =>
        error instanceof LockError &&
        /^waited \d+ms for the lock of project app: project app is locked: held by test-hold/.test(error.message) &&
        error.message.includes(`pid ${holder.pid}`),
    );
    const waited = Date.now() - started;
    assert.ok(waited >= 500, `waited ${waited} ms`);
    assert.equal(readHolder(stateDir, "app").pid, holder.pid);
    holder.finish();
    await holder.closed;
  });
});

describe("inspectLocks", () => {
  it("lists every lock with its state, or those of the projects asked for", async () => {
    const stateDir = newStateDir();
    const other = sleeper();
    writeLock(stateDir, "live", { pid: other.pid, process_start: other.start });
    writeLock(stateDir, "stale", { pid: await deadPid() });
    writeLock(stateDir, "foreign", { host: "db1.elsewhere.invalid" });
    writeFileSync(lockPath(stateDir, "broken"), "");
    const states = Object.fromEntries(inspectLocks(stateDir).map((lock) => [lock.project, lock.state]));
    assert.deepEqual(states, { broken: "unreadable", foreign: "foreign-host", live: "live", stale: "stale" });
    const broken = inspectLocks(stateDir, ["broken"]);
    assert.equal(broken.length, 1);
    assert.equal(broken[0].holder, null);
    assert.equal(broken[0].problem, "the file is empty");
    assert.equal(inspectLocks(stateDir, ["live"])[0].holder?.pid, other.pid);
    assert.deepEqual(inspectLocks(stateDir, ["missing"]), []);
    assert.deepEqual(inspectLocks(newStateDir()), [], "no locks folder yet");
    // Judged from another host, a lock of this one cannot be checked.
    assert.equal(inspectLocks(stateDir, ["live"], "db1.elsewhere.invalid")[0].state, "foreign-host");
    assert.equal(removeLock(lockPath(stateDir, "broken"), ""), true, "an unreadable file goes by its exact text");
  });
});
