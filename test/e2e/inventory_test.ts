/**
 * After a clean backup, apply adds the snapshots restic reported to the inventory instead of listing the repository
 * again; the rows must be exactly those a real refresh (`restic snapshots`) gives. After a failed backup the
 * repository is listed again.
 */
import assert from "node:assert/strict";
import { renameSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { runCli, runTool } from "../support/cli.ts";
import { type DemoDir, makeDemo } from "../support/demo.ts";

const day1 = "2026-11-21T10:00:00Z";
const day2 = "2026-11-22T10:00:00Z";
const columns = "id, short_id, time, project, source, run_id, hostname, tags, paths, size, original";

type HistoryJson = { id: string; stages: { type: string; status: string }[] }[];

describe("the inventory after apply", () => {
  let demo: DemoDir;
  const cli = (args: string[]) => runCli(["--config", demo.config, ...args], { env: demo.env });
  const inventory = async () => {
    const db = join(demo.dir, ".backupctl", "state.db");
    const result = await runTool("sqlite3", ["-json", db, `SELECT ${columns} FROM snapshots ORDER BY id`]);
    assert.equal(result.code, 0, result.stderr);
    return JSON.parse(result.stdout || "[]") as Record<string, unknown>[];
  };
  const stagesOfLastRun = async () => {
    const history = JSON.parse((await cli(["history", "--json", "--limit", "1"])).stdout) as HistoryJson;
    return history[0].stages.map((stage) => `${stage.type} ${stage.status}`);
  };

  before(() => {
    demo = makeDemo();
  });
  after(() => demo.cleanup());

  it("holds the new snapshots with full ids, as restic lists them, without a refresh stage", async () => {
    const applied = await cli(["apply", "--now", day1]);
    assert.equal(applied.code, 0, applied.stdout + applied.stderr);
    assert.deepEqual(await stagesOfLastRun(), ["backup succeeded", "backup succeeded"]);
    const recorded = await inventory();
    assert.equal(recorded.length, 2);
    for (const row of recorded) assert.match(String(row.id), /^[0-9a-f]{64}$/);
    // What a refresh would write: restic's own listing (the refresh itself now skips restic when the ids match).
    const listed = await runTool("restic", ["--no-cache", "snapshots", "--json"], {
      env: { RESTIC_REPOSITORY: demo.repository, RESTIC_PASSWORD: demo.env.DEMO_RESTIC_PASSWORD },
    });
    assert.equal(listed.code, 0, listed.stderr);
    const restic = (JSON.parse(listed.stdout) as Record<string, unknown>[]).map((snapshot) => ({
      id: snapshot.id,
      short_id: snapshot.short_id,
      time: new Date(String(snapshot.time)).toISOString(),
      hostname: snapshot.hostname,
      tags: JSON.stringify(snapshot.tags),
      paths: JSON.stringify(snapshot.paths),
    })).sort((a, b) => String(a.id).localeCompare(String(b.id)));
    assert.deepEqual(
      recorded.map(({ id, short_id, time, hostname, tags, paths }) => ({ id, short_id, time, hostname, tags, paths })),
      restic,
    );
    for (const row of recorded) assert.ok(Number(row.size) > 0, `size of ${row.id}`);
  });

  it("skips restic when a local repository's snapshot files match the inventory, and not when they differ", async () => {
    const keys = join(demo.repository, "keys");
    renameSync(keys, `${keys}.away`); // restic cannot open the repository now; listing snapshots/ still works
    try {
      const refreshed = await cli(["plan", "--refresh", "--now", day1]);
      assert.equal(refreshed.code, 0, refreshed.stdout + refreshed.stderr);
      assert.doesNotMatch(refreshed.stdout + refreshed.stderr, /refresh|failed/i);
    } finally {
      renameSync(`${keys}.away`, keys);
    }
    const [first] = await inventory();
    const forgot = await runTool("restic", ["--no-cache", "forget", String(first.id)], {
      env: { RESTIC_REPOSITORY: demo.repository, RESTIC_PASSWORD: demo.env.DEMO_RESTIC_PASSWORD },
    });
    assert.equal(forgot.code, 0, forgot.stderr);
    const refreshed = await cli(["plan", "--refresh", "--now", day1]);
    assert.equal(refreshed.code, 0, refreshed.stdout + refreshed.stderr);
    assert.deepEqual((await inventory()).map((row) => row.id).includes(first.id), false);
    assert.equal((await inventory()).length, 1);
  });

  it("lists the repository again when a backup failed", async () => {
    // The SQLite database becomes a folder: sqlite3 fails (a permission change would not stop root).
    await runTool("sh", ["-c", `mv "$1" "$1.moved" && mkdir "$1"`, "sh", demo.database]);
    const applied = await cli(["apply", "--now", day2]);
    assert.equal(applied.code, 1, applied.stdout + applied.stderr);
    const stages = await stagesOfLastRun();
    assert.ok(stages.includes("backup failed"), stages.join(", "));
    assert.ok(stages.includes("refresh succeeded"), stages.join(", "));
    assert.equal((await inventory()).length, 2, "the files snapshot of day 2 is in the inventory");
  });
});
