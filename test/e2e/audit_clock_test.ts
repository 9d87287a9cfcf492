/**
 * `--now` reaches every audited stage, not only apply's own: the takeover of a stale lock by apply, `unlock` and
 * `restore` record their stages on the command's clock (src/apply/stage.ts), and a success's words go to
 * `stages.note`, not `stages.error`. A demo copy with a real restic repository.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { runCli } from "../support/cli.ts";
import { type DemoDir, makeDemo } from "../support/demo.ts";

interface StageRow {
  type: string;
  status: string;
  started_at: string;
  finished_at: string;
  error: string | null;
  note: string | null;
}

describe("--now in the audit of takeovers, unlock and restore", () => {
  let demo: DemoDir;
  let target: string;
  const cli = (args: string[]) => runCli(["--config", demo.config, ...args], { env: demo.env, timeoutMs: 180_000 });
  const stages = (type: string): StageRow[] => {
    const result = spawnSync("sqlite3", [
      "-json",
      join(demo.dir, ".backupctl", "state.db"),
      `SELECT type, status, started_at, finished_at, error, note FROM stages WHERE type = '${type}' ORDER BY id`,
    ], { encoding: "utf8" });
    assert.equal(result.status, 0, result.stderr);
    return JSON.parse(result.stdout || "[]");
  };
  /** A lock file of `demo` held by a process that is gone. */
  const staleLock = async () => {
    const gone = spawn("true");
    await new Promise((resolve) => gone.on("close", resolve));
    const holder = {
      pid: gone.pid,
      host: hostname(),
      command: "apply",
      run_id: null,
      started_at: new Date().toISOString(),
      process_start: null,
    };
    writeFileSync(join(demo.dir, ".backupctl", "locks", "demo.lock"), JSON.stringify(holder) + "\n", { mode: 0o600 });
  };
  /** The stage started on the shifted clock: on the day --now names, not today. */
  const onDay = (row: StageRow | undefined, day: string) => {
    assert.ok(row, "the stage was audited");
    assert.ok(row.started_at.startsWith(day), `started ${row.started_at}, expected on ${day}`);
    assert.ok(row.finished_at.startsWith(day), `finished ${row.finished_at}, expected on ${day}`);
  };

  before(async () => {
    demo = makeDemo();
    target = mkdtempSync(join(tmpdir(), "backupctl-restore-"));
    const applied = await cli(["apply", "--now", "2031-03-01T03:00:00Z"]);
    assert.equal(applied.code, 0, applied.stdout + applied.stderr);
  });
  after(() => {
    demo.cleanup();
    rmSync(target, { recursive: true, force: true });
  });

  it("dates apply's takeover of a stale lock by --now, with a note", async () => {
    await staleLock();
    const applied = await cli(["apply", "--now", "2031-03-02T03:00:00Z"]);
    assert.equal(applied.code, 0, applied.stdout + applied.stderr);
    assert.match(applied.stdout, /~ recover: took over the stale lock of demo/);
    const takeover = stages("recover").find((row) => row.note?.startsWith("took over the stale lock of demo"));
    onDay(takeover, "2031-03-02");
    assert.equal(takeover?.error, null);
    assert.equal(takeover?.status, "succeeded");
  });

  it("dates unlock's stages by --now", async () => {
    await staleLock();
    const before = stages("unlock").length;
    const result = await cli(["unlock", "--now", "2031-03-03T12:00:00Z"]);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    const rows = stages("unlock").slice(before);
    assert.equal(rows.length, 2, JSON.stringify(rows)); // the lock file, then restic's locks in `local`
    for (const row of rows) {
      onDay(row, "2031-03-03");
      assert.equal(row.status, "succeeded");
      assert.equal(row.error, null);
    }
    assert.match(rows[0].note ?? "", /^removed the stale lock of demo held by apply/);
    assert.match(rows[1].note ?? "", /^restic: /);
  });

  it("dates a restore's stage by --now", async () => {
    const result = await cli(["restore", "demo", "--to", target, "--now", "2031-03-04T08:00:00Z"]);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    const rows = stages("restore");
    assert.ok(rows.length > 0, "restores are audited");
    for (const row of rows) {
      onDay(row, "2031-03-04");
      assert.equal(row.status, "succeeded");
    }
  });
});
