/**
 * The planning rules of pgbackrest() sources, with plain data (src/plan/pitr-actions.ts): stanza-create for a
 * missing stanza, each backup type due on its own schedule (a full covering an incr), expirations by label held for
 * approval when the retention changed, the check cadence, the archive's health as warnings, and the retention
 * mapping. No process, no clock.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { plan } from "../../src/plan/planner.ts";
import { pitrPolicyKey, pitrRetention } from "../../src/plan/pitr-actions.ts";
import { renderText, summaryLine } from "../../src/plan/render.ts";
import type { ObservedState, PitrObservation } from "../../src/plan/types.ts";
import type { ArchiveStatus, PitrInfo } from "../../src/pitr/types.ts";
import { emptyState, pitrBackup, pitrConfig } from "../support/golden.ts";

const archiveCommand = "pgbackrest --config=/x/ledger.conf --stanza=ledger archive-push %p";
const healthy: ArchiveStatus = {
  archiveMode: "on",
  archiveCommand,
  walLevel: "replica",
  lastArchivedWal: "000000010000000000000040",
  lastArchivedAt: new Date("2026-11-23T09:59:00Z"),
  failedCount: 0,
  lastFailedWal: null,
  lastFailedAt: null,
  currentWal: "000000010000000000000041",
  pendingWal: true,
};
const full1 = "20261115-000000F";
const full2 = "20261122-000000F";

function info(backups = [pitrBackup(full1, "full", "2026-11-15T00:00:00Z", null)], code = 0): PitrInfo {
  return {
    stanza: "ledger",
    status: { code, message: code === 0 ? "ok" : "missing stanza path" },
    backupRunning: false,
    cipher: "none",
    backups,
  };
}

function observed(seen: Partial<PitrObservation>, changes: Partial<ObservedState> = {}): ObservedState {
  return {
    ...emptyState,
    pitr: [{ project: "ledger", source: "ledger", info: info(), archive: healthy, archiveCommand, ...seen }],
    ...changes,
  };
}

/** Monday 2026-11-23 10:00 UTC: Sunday's full (00:00 UTC) and Monday's incr (00:00 UTC) have passed. */
const monday = new Date("2026-11-23T10:00:00Z");

function planAt(state: ObservedState, now = monday, retention?: Record<string, unknown>) {
  return plan(pitrConfig(retention), state, now, { generatedAt: now, planId: "p" });
}

describe("pgbackrest() sources in the plan", () => {
  it("creates a missing stanza and makes its first full backup", () => {
    const p = planAt(observed({ info: info([], 1) }));
    assert.deepEqual(p.actions.map((a) => a.type), ["stanza_create", "pitr_backup"]);
    const backup = p.actions[1];
    assert.ok(backup.type === "pitr_backup");
    assert.equal(backup.backup_type, "full");
    assert.equal(backup.reason, "never backed up");
    assert.equal(summaryLine(p), "Plan: 1 to back up, 0 to copy, 1 to initialize, 0 snapshots to forget, 0 checks.");
    assert.match(renderText(p), /\+ stanza-create ledger \(pgBackRest\)/);
  });

  it("creates a stanza whose stanza-create was cut short (pgBackRest: missing stanza data), not one with backups", () => {
    const cut = planAt(observed({ info: { ...info([], 3), status: { code: 3, message: "missing stanza data" } } }));
    assert.deepEqual(cut.actions.map((a) => a.type), ["stanza_create", "pitr_backup"]);
    assert.match(
      cut.actions[0].reason,
      /stanza ledger is incomplete in \/srv\/pgbackrest \(pgBackRest: missing stanza data\)/,
    );
    const damaged = planAt(observed({ info: { ...info(), status: { code: 3, message: "missing stanza data" } } }));
    assert.equal(damaged.actions.some((a) => a.type === "stanza_create"), false);
  });

  it("plans the strongest type due: a full due covers the incr due too, an incr after this week's full", () => {
    const fullDue = planAt(observed({}, {
      retention: [{
        project: "ledger",
        source: "ledger",
        repository: "pgbackrest:ledger",
        policy: pitrPolicyKey({ full: 2 }),
        at: "x",
      }],
    }));
    const backups = fullDue.actions.filter((a) => a.type === "pitr_backup");
    assert.deepEqual(backups.map((a) => a.type === "pitr_backup" && a.backup_type), ["full"]);
    assert.match(backups[0].reason, /^due since 2026-11-22T00:00:00Z \(0 1 \* \* 0, Europe\/Berlin\); last full/);

    const withFull = info([
      pitrBackup(full1, "full", "2026-11-15T00:00:00Z", null),
      pitrBackup(full2, "full", "2026-11-22T00:00:00Z", null),
    ]);
    const incr = planAt(observed({ info: withFull }));
    const due = incr.actions.filter((a) => a.type === "pitr_backup");
    assert.deepEqual(due.map((a) => a.type === "pitr_backup" && a.backup_type), ["incr"]);

    const done = info([
      ...withFull.backups,
      pitrBackup(`${full2}_20261123-000000I`, "incr", "2026-11-23T00:00:00Z", full2),
    ]);
    assert.deepEqual(planAt(observed({ info: done })).actions.filter((a) => a.type === "pitr_backup"), []);
  });

  it("shows expirations by label: routine under the applied retention, held when it changed or was never applied", () => {
    const full0 = "20261108-000000F";
    const backups = info([
      pitrBackup(full0, "full", "2026-11-08T00:00:00Z", null),
      pitrBackup(`${full0}_20261109-000000I`, "incr", "2026-11-09T00:00:00Z", full0),
      pitrBackup(full1, "full", "2026-11-15T00:00:00Z", null),
      pitrBackup(full2, "full", "2026-11-22T00:00:00Z", null),
    ]);
    const applied = (full: number) => [{
      project: "ledger",
      source: "ledger",
      repository: "pgbackrest:ledger",
      policy: pitrPolicyKey({ full }),
      at: "2026-11-22T01:00:00Z",
    }];
    // weekly: 1 with weekly fulls keeps 2 of them (the engine's mapping).
    const routine = planAt(observed({ info: backups }, { retention: applied(2) }), monday, { weekly: 1 });
    const expire = routine.actions.find((a) => a.type === "pitr_expire");
    assert.ok(expire?.type === "pitr_expire");
    assert.deepEqual(expire.labels, [full0, `${full0}_20261109-000000I`]);
    assert.equal(expire.approval, "routine");
    assert.equal(expire.destructive, true);
    assert.equal(routine.summary.forget, 2);

    const changed = planAt(observed({ info: backups }, { retention: applied(3) }), monday, { weekly: 1 });
    const held = changed.actions.find((a) => a.type === "pitr_expire");
    assert.ok(held?.type === "pitr_expire");
    assert.equal(held.approval, "required");
    assert.equal(held.approval_reason, "retention changed (pgBackRest repo1-retention-full 3 → 2)");
    assert.match(renderText(changed), /! 2 pgBackRest backups of ledger\/ledger \(stanza ledger\) would be expired/);

    const never = planAt(observed({ info: backups }), monday, { weekly: 1 });
    assert.equal(never.actions.find((a) => a.type === "pitr_expire")?.approval, "required");
    assert.match(JSON.stringify(never.actions), /never applied to this stanza/);

    const kept = planAt(observed({ info: backups }, { retention: applied(3) }), monday, { weekly: 2 });
    assert.equal(kept.actions.some((a) => a.type === "pitr_expire"), false);
  });

  it("checks the stanza on the project's check cadence, counted from the first backup", () => {
    const early = planAt(observed({}), new Date("2026-11-22T00:05:00Z"));
    assert.equal(early.actions.some((a) => a.type === "pitr_check"), false);
    const later = planAt(observed({}), new Date("2026-11-22T00:30:00Z"));
    const check = later.actions.find((a) => a.type === "pitr_check");
    assert.equal(check?.reason, "never checked since the first backup 2026-11-15T00:10:00Z (7d 0h ago), every 7d");
    const checked = planAt(
      observed({}, { maintenance: [{ type: "check", repository: "pgbackrest:ledger", at: "2026-11-22T00:00:00Z" }] }),
      new Date("2026-11-22T00:30:00Z"),
    );
    assert.equal(checked.actions.some((a) => a.type === "pitr_check"), false);
  });

  it("warns of archiving problems, prints the postgresql.conf lines, and says archive.stale past the rpo", () => {
    const off = planAt(observed({ archive: { ...healthy, archiveMode: "off", archiveCommand: "" } }));
    assert.ok(off.warnings.some((w) => /archive_mode is off/.test(w)));
    const lines = off.warnings.find((w) => w.includes("add to postgresql.conf"));
    assert.ok(lines?.includes(`archive_command = '${archiveCommand}'`), String(lines));
    assert.ok(lines?.includes("archive_mode = on"));

    const stale = planAt(observed({ archive: { ...healthy, lastArchivedAt: new Date("2026-11-23T09:00:00Z") } }));
    assert.ok(
      stale.warnings.some((w) => /archive\.stale: the last archived WAL segment/.test(w)),
      stale.warnings.join("\n"),
    );
    assert.equal(planAt(observed({})).warnings.length, 0);

    const unread = planAt(observed({ info: undefined, infoError: "pgbackrest info: permission denied" }));
    assert.ok(unread.warnings.some((w) => /cannot be read, so nothing is planned for it: pgbackrest info/.test(w)));
    assert.equal(unread.actions.length, 0);
  });

  it("plans a restore drill of the stanza on verify.every once it has a backup", () => {
    const verify = { verify: { every: "7d", check: "SELECT count(*) FROM pg_class", rto: "15m" } };
    const drill = plan(pitrConfig({ weekly: 1 }, verify), observed({}), monday, { generatedAt: monday });
    const action = drill.actions.find((a) => a.type === "verify");
    assert.deepEqual(action && { ...action, id: "" }, {
      id: "",
      type: "verify",
      project: "ledger",
      repository: "pgbackrest:ledger",
      reason: "never restored in a drill (stanza ledger, to a scratch cluster)",
      destructive: false,
    });
    const recent = observed({}, { maintenance: [{ type: "verify", project: "ledger", at: "2026-11-20T00:00:00Z" }] });
    const none = plan(pitrConfig({ weekly: 1 }, verify), recent, monday, { generatedAt: monday });
    assert.equal(none.actions.some((a) => a.type === "verify"), false);
    const empty = plan(pitrConfig({ weekly: 1 }, verify), observed({ info: info([], 1) }), monday, {
      generatedAt: monday,
    });
    assert.equal(empty.actions.some((a) => a.type === "verify"), false, "nothing to drill before the first backup");
    assert.throws(
      () => pitrConfig({ weekly: 1 }, { verify: { every: "7d", sample: { files: 3 } } }),
      /verify\.sample: not for the drill of a pgbackrest\(\) source/,
    );
  });

  it("is next due at the earlier of the project's schedule and its stanza's", () => {
    const weekly = plan(pitrConfig({ weekly: 1 }, { schedule: "@weekly" }), observed({}), monday, {
      generatedAt: monday,
    });
    // Tuesday 01:00 in Berlin, the next incr, before the project's own Sunday.
    assert.deepEqual(weekly.next_due, [{ project: "ledger", at: "2026-11-24T00:00:00Z" }]);
  });

  it("is overdue as dumps are: the newest backup older than twice the interval of its schedules, or maxAge", () => {
    // Monday 10:00 UTC: the latest slot is Monday's incr (00:00 UTC), the next Tuesday's: one day, so two days allowed.
    const sunday = pitrBackup(full2, "full", "2026-11-22T00:00:00Z", null);
    assert.deepEqual(planAt(observed({ info: info([sunday]) })).overdue, []);
    const friday = pitrBackup("20261120-000000F", "full", "2026-11-20T00:00:00Z", null);
    const late = planAt(observed({ info: info([friday]) }));
    assert.deepEqual(late.overdue, [{
      project: "ledger",
      last_success: "2026-11-20T00:00:00Z",
      max_age: "2d",
      source: "ledger",
      stanza: "ledger",
    }]);
    assert.match(
      renderText(late),
      /! project ledger is overdue: newest pgBackRest backup of ledger \(stanza ledger\) started 2026-11-20 00:00:00\+00:00, longer ago than its maxAge 2d/,
    );
    // maxAge rules when set; a backup with checksum errors does not count; never backed up is not overdue.
    const strict = plan(pitrConfig({ weekly: 1 }, { maxAge: "6h" }), observed({ info: info([sunday]) }), monday, {
      generatedAt: monday,
    });
    assert.deepEqual(strict.overdue.map((o) => [o.last_success, o.max_age]), [["2026-11-22T00:00:00Z", "6h"]]);
    const damaged = { ...pitrBackup(`${full2}_20261123-000000I`, "incr", "2026-11-23T00:00:00Z", full2), error: true };
    assert.equal(planAt(observed({ info: info([friday, damaged]) })).overdue.length, 1);
    assert.deepEqual(planAt(observed({ info: info([], 1) })).overdue, []);
    assert.deepEqual(planAt(observed({ info: undefined, infoError: "unreadable" })).overdue, []);
  });

  it("plans nothing for a source that was not observed, nor on demand", () => {
    assert.equal(planAt({ ...emptyState }).actions.length, 0);
    const p = plan(pitrConfig(), observed({ info: info([], 1) }), monday, {
      generatedAt: monday,
      onDemand: { command: "backup" },
    });
    assert.equal(p.actions.length, 0);
  });
});

describe("pitrRetention: the project's retention as pgBackRest's (the engine's mapping)", () => {
  const at = (retention: Record<string, unknown>) => {
    const project = pitrConfig(retention).config.projects.ledger;
    return pitrRetention(project, project.pitr[0]).full;
  };
  it("keeps one full more than the longest window spans at the weekly full interval", () => {
    assert.equal(at({ daily: 7, weekly: 4 }), 5);
    assert.equal(at({ weekly: 1 }), 2);
    assert.equal(at({ daily: 8 }), 3);
    assert.equal(at({ last: 3 }), 2);
  });
});
