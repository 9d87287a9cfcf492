/**
 * pitr/archive.ts with plain data: the postgresql.conf lines printed for the operator, what differs from them, and
 * when an archive is stale (WAL waiting and the last archived segment older than the RPO). The same functions run
 * against a real archiving cluster in pgbackrest_test.ts.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { requiredSettings, settingsProblems, staleArchive } from "../../src/pitr/archive.ts";
import type { ArchiveStatus } from "../../src/pitr/types.ts";

const command = "pgbackrest --config=/state/pgbackrest/main/main.conf --stanza=main archive-push %p";

const healthy: ArchiveStatus = {
  archiveMode: "on",
  archiveCommand: command,
  walLevel: "replica",
  lastArchivedWal: "000000010000000000000007",
  lastArchivedAt: new Date("2026-12-06T10:00:00Z"),
  failedCount: 0,
  lastFailedWal: null,
  lastFailedAt: null,
  currentWal: "000000010000000000000008",
  pendingWal: true,
};

describe("archive settings", () => {
  it("prints the lines to add, archive_timeout half the RPO (at least a minute)", () => {
    assert.deepEqual(requiredSettings({ archiveCommand: command, rpoMs: 15 * 60_000 }), [
      "wal_level = replica",
      "archive_mode = on",
      `archive_command = '${command}'`,
      "archive_timeout = 450",
    ]);
    assert.equal(requiredSettings({ archiveCommand: "it's" })[2], "archive_command = 'it''s'");
    assert.equal(requiredSettings({ archiveCommand: command, rpoMs: 30_000 })[3], "archive_timeout = 60");
  });

  it("says what differs: mode, level, command, and failures newer than the last success", () => {
    assert.deepEqual(settingsProblems(healthy, { archiveCommand: command }), []);
    const problems = settingsProblems({
      ...healthy,
      archiveMode: "off",
      walLevel: "minimal",
      archiveCommand: "",
      failedCount: 3,
      lastFailedWal: "000000010000000000000008",
      lastFailedAt: new Date("2026-12-06T10:05:00Z"),
    }, { archiveCommand: command });
    assert.equal(problems.length, 4);
    assert.match(problems[0], /wal_level is minimal/);
    assert.match(problems[1], /archive_mode is off: set archive_mode = on/);
    assert.match(problems[2], /archive_command is empty, not '.*--stanza=main archive-push %p'/);
    assert.match(problems[3], /archiving fails: 000000010000000000000008 failed at 2026-12-06T10:05:00Z \(3 failures/);
    const recovered = { ...healthy, failedCount: 1, lastFailedAt: new Date("2026-12-06T09:00:00Z") };
    assert.deepEqual(settingsProblems(recovered, { archiveCommand: command }), []);
  });
});

describe("staleArchive", () => {
  const rpo = 15 * 60_000;
  it("is stale when WAL waits and the last archived segment is older than the RPO", () => {
    assert.equal(staleArchive(healthy, rpo, new Date("2026-12-06T10:14:00Z")), undefined);
    assert.match(
      staleArchive(healthy, rpo, new Date("2026-12-06T10:20:00Z")) ?? "",
      /000000010000000000000007.*20 min ago, more than the RPO of 15 min.*000000010000000000000008 is waiting/,
    );
    assert.match(staleArchive({ ...healthy, lastArchivedAt: null }, rpo, new Date()) ?? "", /no WAL segment/);
  });

  it("is never stale on a quiet server whose WAL is all archived", () => {
    const quiet = { ...healthy, currentWal: healthy.lastArchivedWal, pendingWal: false };
    assert.equal(staleArchive(quiet, rpo, new Date("2026-12-08T00:00:00Z")), undefined);
  });
});
