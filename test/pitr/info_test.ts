/**
 * pitr/info.ts with plain data: `info --output=json` parsed (pgBackRest 2.45's shape), the expire prediction under
 * count retention (fulls, differentials, and what depends on them), and the restorable span with its errors naming
 * the nearest time. The same prediction is compared with the real `expire` in pgbackrest_test.ts.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { checkRestorable, expirationsFor, parseInfo, restorableRange } from "../../src/pitr/info.ts";
import type { PitrBackup, PitrInfo } from "../../src/pitr/types.ts";

function rawBackup(label: string, type: string, prior: string | null, start: number) {
  return {
    archive: { start: "000000010000000000000002", stop: "000000010000000000000003" },
    backrest: { format: 5, version: "2.45" },
    database: { id: 1, "repo-key": 1 },
    error: false,
    info: { delta: 100, repository: { delta: 10, size: 30 }, size: 300 },
    label,
    lsn: { start: "0/2000028", stop: "0/3000050" },
    prior,
    reference: prior ? [prior] : null,
    timestamp: { start, stop: start + 3 },
    type,
  };
}

const json = `[{"archive":[{"database":{"id":1,"repo-key":1},"id":"15-1","max":"000000010000000000000006",
  "min":"000000010000000000000001"}],"backup":${
  JSON.stringify([
    rawBackup("20261206-223232F_20261206-223240I", "incr", "20261206-223232F", 1796596360),
    rawBackup("20261206-223232F", "full", null, 1796596352),
  ])
},"cipher":"none","db":[{"id":1,"repo-key":1,"system-id":7716322468823218119,"version":"15"}],"name":"demo",
  "repo":[{"cipher":"none","key":1,"status":{"code":0,"message":"ok"}}],
  "status":{"code":0,"lock":{"backup":{"held":true}},"message":"ok"}}]`;

describe("parseInfo", () => {
  it("reads the stanza's backups oldest first, its archive and status", () => {
    const info = parseInfo(json, "demo");
    assert.equal(info.status.code, 0);
    assert.equal(info.backupRunning, true);
    assert.deepEqual(info.archive, { min: "000000010000000000000001", max: "000000010000000000000006" });
    assert.deepEqual(info.backups.map((b) => [b.label, b.type, b.prior]), [
      ["20261206-223232F", "full", null],
      ["20261206-223232F_20261206-223240I", "incr", "20261206-223232F"],
    ]);
    assert.equal(info.backups[0].stop.toISOString(), new Date(1796596355_000).toISOString());
    assert.equal(info.backups[0].databaseBytes, 300);
    assert.equal(info.backups[0].repositoryDeltaBytes, 10);
  });

  it("names a stanza the output does not hold", () => {
    assert.throws(() => parseInfo(json, "other"), /nothing about stanza other/);
  });
});

function backup(label: string, type: PitrBackup["type"], prior: string | null, day: number): PitrBackup {
  const start = new Date(Date.UTC(2026, 11, day, 1));
  return {
    label,
    type,
    prior,
    start,
    stop: new Date(start.getTime() + 600_000),
    databaseBytes: 0,
    repositoryBytes: 0,
    repositoryDeltaBytes: 0,
    archiveStart: "",
    archiveStop: "",
    error: false,
  };
}

/** Two weeks: a full each Sunday, a diff on Wednesday, incrs on the other days. */
const twoWeeks: PitrInfo = {
  stanza: "demo",
  status: { code: 0, message: "ok" },
  backupRunning: false,
  cipher: "none",
  backups: [
    backup("F1", "full", null, 1),
    backup("F1_I2", "incr", "F1", 2),
    backup("F1_D3", "diff", "F1", 3),
    backup("F1_I4", "incr", "F1_D3", 4),
    backup("F2", "full", null, 8),
    backup("F2_I9", "incr", "F2", 9),
    backup("F2_D10", "diff", "F2", 10),
    backup("F2_I11", "incr", "F2_D10", 11),
  ],
};

describe("expirationsFor", () => {
  it("expires the fulls beyond the count with everything that depends on them", () => {
    assert.deepEqual(expirationsFor(twoWeeks, { full: 1 }), ["F1", "F1_I2", "F1_D3", "F1_I4"]);
    assert.deepEqual(expirationsFor(twoWeeks, { full: 2 }), []);
    assert.deepEqual(expirationsFor(twoWeeks, { full: 5 }), []);
  });

  it("expires differentials beyond their count (fulls counted, not expired by it) with their incrs", () => {
    // full, diff, full, diff counted: keeping 2 leaves F2 and F2_D10; F1_D3 goes with its incr, F1 stays.
    assert.deepEqual(expirationsFor(twoWeeks, { full: 2, diff: 2 }), ["F1_D3", "F1_I4"]);
    assert.deepEqual(expirationsFor(twoWeeks, { full: 2, diff: 1 }), ["F1_D3", "F1_I4"]);
  });
});

describe("restorableRange and checkRestorable", () => {
  it("runs from the end of the oldest backup to the newest of the last backup and the last archived WAL", () => {
    const range = restorableRange(twoWeeks);
    assert.equal(range?.earliest.toISOString(), "2026-12-01T01:10:01.000Z");
    assert.equal(range?.latest.toISOString(), "2026-12-11T01:10:01.000Z");
    const later = restorableRange(twoWeeks, new Date("2026-12-11T09:00:00Z"));
    assert.equal(later?.latest.toISOString(), "2026-12-11T09:00:00.000Z");
    assert.equal(restorableRange({ ...twoWeeks, backups: [] }), undefined);
  });

  it("names the nearest restorable time for a target outside the span", () => {
    const range = restorableRange(twoWeeks);
    assert.throws(
      () => checkRestorable(new Date("2026-11-30T00:00:00Z"), range, "demo"),
      /before the oldest backup ended: the nearest restorable time is 2026-12-01T01:10:01Z \(restorable times of stanza demo run from 2026-12-01T01:10:01Z to 2026-12-11T01:10:01Z\)/,
    );
    assert.throws(
      () => checkRestorable(new Date("2026-12-12T00:00:00Z"), range, "demo"),
      /after the last archived WAL: the nearest restorable time is 2026-12-11T01:10:01Z .*--to-time latest/,
    );
    assert.doesNotThrow(() => checkRestorable(new Date("2026-12-05T00:00:00Z"), range, "demo"));
    assert.throws(() => checkRestorable(new Date(), undefined, "demo"), /no backup to restore from/);
  });
});
