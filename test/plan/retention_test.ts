/**
 * Unit tests of src/plan/retention.ts with plain data; retention_oracle_test.ts checks the same rules against restic.
 * Runs under `deno test -A test/plan/retention_test.ts` and `bun --no-install test ./test/plan/retention_test.ts`.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Retention } from "../../src/config/types.ts";
import {
  applyRetention,
  describePolicyChange,
  policyKey,
  type RetentionDecision,
  type RetentionSnapshot,
} from "../../src/plan/retention.ts";

/** Snapshots named by their time, so a decision reads as a list of times. */
function at(...times: string[]): RetentionSnapshot[] {
  return times.map((time) => ({ id: time, time }));
}

function kept(decision: RetentionDecision): string[] {
  return decision.keep.map(({ id }) => id);
}

function reasonsOf(decision: RetentionDecision): Record<string, string[]> {
  return Object.fromEntries(decision.keep.map(({ id, reasons }) => [id, reasons]));
}

describe("applyRetention: one rule at a time", () => {
  it("last n keeps the n newest, whatever order they come in", () => {
    const snapshots = at(
      "2026-11-20T10:00:00Z",
      "2026-11-22T10:00:00Z",
      "2026-11-21T10:00:00Z",
      "2026-11-19T10:00:00Z",
    );
    const decision = applyRetention(snapshots, { last: 2 });
    assert.deepEqual(decision, {
      keep: [
        { id: "2026-11-22T10:00:00Z", reasons: ["last snapshot"] },
        { id: "2026-11-21T10:00:00Z", reasons: ["last snapshot"] },
      ],
      forget: ["2026-11-20T10:00:00Z", "2026-11-19T10:00:00Z"],
    });
  });

  it("last n larger than the group keeps everything", () => {
    const decision = applyRetention(at("2026-11-20T10:00:00Z", "2026-11-21T10:00:00Z"), { last: 1000 });
    assert.deepEqual(decision.forget, []);
  });

  it("hourly keeps the newest snapshot of each of the n most recent hours that have one (gaps do not count)", () => {
    const snapshots = at(
      "2026-11-22T10:50:00Z",
      "2026-11-22T10:05:00Z",
      "2026-11-22T09:59:59Z",
      "2026-11-22T09:00:00Z",
      "2026-11-22T05:30:00Z", // four empty hours before it: still the third hour kept
      "2026-11-22T04:30:00Z",
    );
    assert.deepEqual(kept(applyRetention(snapshots, { hourly: 3 })), [
      "2026-11-22T10:50:00Z",
      "2026-11-22T09:59:59Z",
      "2026-11-22T05:30:00Z",
    ]);
  });

  it("daily buckets by the UTC calendar day", () => {
    const snapshots = at(
      "2026-11-22T00:00:00Z",
      "2026-11-21T23:59:59Z",
      "2026-11-21T00:00:00Z",
      "2026-11-20T12:00:00Z",
    );
    const decision = applyRetention(snapshots, { daily: 2 });
    assert.deepEqual(kept(decision), ["2026-11-22T00:00:00Z", "2026-11-21T23:59:59Z"]);
    assert.deepEqual(decision.forget, ["2026-11-21T00:00:00Z", "2026-11-20T12:00:00Z"]);
  });

  it("weekly uses ISO weeks: Monday starts a week, and a week belongs to the year of its Thursday", () => {
    const snapshots = at(
      "2025-01-01T00:00:00Z", // ISO 2025-W01
      "2024-12-30T00:00:00Z", // Monday: ISO 2025-W01 too, in calendar 2024
      "2024-12-29T23:59:59Z", // Sunday: ISO 2024-W52
      "2024-12-23T00:00:00Z", // ISO 2024-W52
    );
    assert.deepEqual(kept(applyRetention(snapshots, { weekly: 10 })), ["2025-01-01T00:00:00Z", "2024-12-29T23:59:59Z"]);
  });

  it("weekly knows years with 53 ISO weeks (2020, 2026)", () => {
    const snapshots = at(
      "2021-01-04T00:00:00Z", // 2021-W01
      "2021-01-03T23:59:59Z", // 2020-W53
      "2021-01-01T00:00:00Z", // 2020-W53
      "2020-12-28T00:00:00Z", // 2020-W53
      "2020-12-27T23:59:59Z", // 2020-W52
    );
    assert.deepEqual(kept(applyRetention(snapshots, { weekly: 10 })), [
      "2021-01-04T00:00:00Z",
      "2021-01-03T23:59:59Z",
      "2020-12-27T23:59:59Z",
    ]);
    const around2026 = at(
      "2027-01-04T00:00:00Z",
      "2027-01-01T00:30:00Z",
      "2026-12-31T23:30:00Z",
      "2026-12-27T12:00:00Z",
    );
    assert.deepEqual(kept(applyRetention(around2026, { weekly: 10 })), [
      "2027-01-04T00:00:00Z",
      "2027-01-01T00:30:00Z",
      "2026-12-27T12:00:00Z",
    ]);
  });

  it("monthly and yearly keep the newest of each month and year", () => {
    const snapshots = at(
      "2026-03-01T00:00:00Z",
      "2026-02-28T23:59:59Z",
      "2026-02-01T00:00:00Z",
      "2025-12-31T23:59:59Z",
      "2025-01-01T00:00:00Z",
      "2024-06-01T00:00:00Z",
    );
    assert.deepEqual(kept(applyRetention(snapshots, { monthly: 3 })), [
      "2026-03-01T00:00:00Z",
      "2026-02-28T23:59:59Z",
      "2025-12-31T23:59:59Z",
    ]);
    assert.deepEqual(kept(applyRetention(snapshots, { yearly: 5 })), [
      "2026-03-01T00:00:00Z",
      "2025-12-31T23:59:59Z",
      "2024-06-01T00:00:00Z",
    ]);
  });

  it("within keeps what is strictly after newest − duration, measured from the newest snapshot, not from now", () => {
    const snapshots = at(
      "2019-05-10T12:00:00Z",
      "2019-05-09T12:00:01Z",
      "2019-05-09T12:00:00Z",
      "2019-05-01T00:00:00Z",
    );
    const decision = applyRetention(snapshots, { within: "1d" });
    assert.deepEqual(decision, {
      keep: [
        { id: "2019-05-10T12:00:00Z", reasons: ["within 1d"] },
        { id: "2019-05-09T12:00:01Z", reasons: ["within 1d"] },
      ],
      forget: ["2019-05-09T12:00:00Z", "2019-05-01T00:00:00Z"],
    });
  });

  it("within subtracts months on the calendar like Go's AddDate: Mar 31 − 1m = Feb 31 = Mar 3", () => {
    const snapshots = at(
      "2021-03-31T06:15:00Z",
      "2021-03-03T06:15:01Z",
      "2021-03-03T06:15:00Z",
      "2021-02-28T06:15:00Z",
    );
    assert.deepEqual(kept(applyRetention(snapshots, { within: "1m" })), [
      "2021-03-31T06:15:00Z",
      "2021-03-03T06:15:01Z",
    ]);
  });

  it("within from a leap day: Feb 29 2024 − 1y = Feb 29 2023 = Mar 1 2023", () => {
    const snapshots = at(
      "2024-02-29T12:00:00Z",
      "2023-03-01T12:00:01Z",
      "2023-03-01T12:00:00Z",
      "2023-02-28T12:00:00Z",
    );
    assert.deepEqual(kept(applyRetention(snapshots, { within: "1y" })), [
      "2024-02-29T12:00:00Z",
      "2023-03-01T12:00:01Z",
    ]);
  });

  it("within applies years, months and days on the calendar, then hours exactly", () => {
    // 2026-05-31T10:00 − 1y2m3d = "2025-03-28" 10:00, − 4h = 2025-03-28T06:00.
    const snapshots = at("2026-05-31T10:00:00Z", "2025-03-28T06:00:01Z", "2025-03-28T06:00:00Z");
    assert.deepEqual(kept(applyRetention(snapshots, { within: "1y2m3d4h" })), [
      "2026-05-31T10:00:00Z",
      "2025-03-28T06:00:01Z",
    ]);
    const hours = at("2026-11-22T12:00:00Z", "2026-11-21T00:00:01Z", "2026-11-21T00:00:00Z");
    assert.deepEqual(kept(applyRetention(hours, { within: "36h" })), ["2026-11-22T12:00:00Z", "2026-11-21T00:00:01Z"]);
  });

  it("withinDaily keeps the newest snapshot of every day inside the window", () => {
    const snapshots = at(
      "2026-11-22T18:00:00Z",
      "2026-11-22T06:00:00Z",
      "2026-11-21T18:00:00Z",
      "2026-11-20T18:00:01Z", // inside: after 2026-11-20T18:00:00
      "2026-11-20T17:00:00Z", // same day, already kept
      "2026-11-19T18:00:00Z",
    );
    const decision = applyRetention(snapshots, { withinDaily: "2d" });
    assert.deepEqual(reasonsOf(decision), {
      "2026-11-22T18:00:00Z": ["daily within 2d"],
      "2026-11-21T18:00:00Z": ["daily within 2d"],
      "2026-11-20T18:00:01Z": ["daily within 2d"],
    });
  });

  it("withinHourly, withinWeekly, withinMonthly and withinYearly bucket like their counted rules", () => {
    const snapshots = at(
      "2026-11-22T10:30:00Z",
      "2026-11-22T10:10:00Z",
      "2026-11-22T09:10:00Z",
      "2026-11-16T00:00:00Z", // Monday: a new ISO week
      "2026-11-15T23:00:00Z",
      "2026-10-31T23:00:00Z",
      "2025-12-31T23:00:00Z",
      "2024-01-01T00:00:00Z",
    );
    assert.deepEqual(kept(applyRetention(snapshots, { withinHourly: "2h" })), [
      "2026-11-22T10:30:00Z",
      "2026-11-22T09:10:00Z",
    ]);
    assert.deepEqual(kept(applyRetention(snapshots, { withinWeekly: "14d" })), [
      "2026-11-22T10:30:00Z",
      "2026-11-15T23:00:00Z",
    ]);
    assert.deepEqual(kept(applyRetention(snapshots, { withinMonthly: "1y" })), [
      "2026-11-22T10:30:00Z",
      "2026-10-31T23:00:00Z",
      "2025-12-31T23:00:00Z",
    ]);
    assert.deepEqual(kept(applyRetention(snapshots, { withinYearly: "2y" })), [
      "2026-11-22T10:30:00Z",
      "2025-12-31T23:00:00Z",
    ]);
  });
});

describe("applyRetention: combinations, zeros and edge cases", () => {
  it("a snapshot kept by several rules lists every reason, in restic's order", () => {
    const snapshots = at(
      "2026-11-22T10:00:00Z",
      "2026-11-22T09:00:00Z",
      "2026-11-21T10:00:00Z",
      "2026-10-01T10:00:00Z",
    );
    const decision = applyRetention(snapshots, { daily: 2, last: 1, monthly: 2, within: "1d", withinDaily: "7d" });
    assert.deepEqual(decision.keep, [
      {
        id: "2026-11-22T10:00:00Z",
        reasons: ["within 1d", "last snapshot", "daily snapshot", "monthly snapshot", "daily within 7d"],
      },
      { id: "2026-11-22T09:00:00Z", reasons: ["within 1d"] },
      { id: "2026-11-21T10:00:00Z", reasons: ["daily snapshot", "daily within 7d"] },
      { id: "2026-10-01T10:00:00Z", reasons: ["monthly snapshot"] },
    ]);
    assert.deepEqual(decision.forget, []);
  });

  it("the classic last + daily + weekly + monthly policy", () => {
    const snapshots: RetentionSnapshot[] = [];
    for (let day = 0; day < 100; day++) {
      const time = new Date(Date.UTC(2026, 7, 1, 3) + day * 86_400_000).toISOString().replace(".000", "");
      snapshots.push({ id: `d${day}`, time });
    }
    const decision = applyRetention(snapshots, { last: 3, daily: 7, weekly: 4, monthly: 3 });
    // Day 99 is Sunday 2026-11-08. Each rule counts from the newest on its own: the 7 newest days (the 3 newest also
    // "last"); Sundays of ISO weeks 45, 44, 43, 42 (day 99 again, 92, 85, 78); the last days of November (99 again),
    // October (91) and September (60).
    assert.deepEqual(kept(decision), [
      "d99",
      "d98",
      "d97",
      "d96",
      "d95",
      "d94",
      "d93",
      "d92",
      "d91",
      "d85",
      "d78",
      "d60",
    ]);
    assert.deepEqual(reasonsOf(decision).d99, [
      "last snapshot",
      "daily snapshot",
      "weekly snapshot",
      "monthly snapshot",
    ]);
    assert.equal(decision.keep.length + decision.forget.length, 100);
  });

  it("counts of 0 and zero durations are no rules; a policy of only those keeps everything", () => {
    const snapshots = at("2026-11-22T10:00:00Z", "2026-11-21T10:00:00Z", "2026-11-20T10:00:00Z");
    assert.deepEqual(
      applyRetention(snapshots, { last: 1, daily: 0, within: "0d" }),
      applyRetention(snapshots, { last: 1 }),
    );
    for (const policy of [{}, { hourly: 0, yearly: 0 }, { within: "0y0m0d0h" }, { minSnapshots: 3 }] as Retention[]) {
      assert.deepEqual(applyRetention(snapshots, policy), {
        keep: snapshots.map(({ id }) => ({ id, reasons: ["policy is empty"] })),
        forget: [],
      });
    }
  });

  it("an empty group keeps and forgets nothing", () => {
    assert.deepEqual(applyRetention([], { daily: 7 }), { keep: [], forget: [] });
  });

  it("snapshots at the same instant are ordered by id, so the decision does not depend on input order", () => {
    const tie = "2026-11-22T10:00:00Z";
    const snapshots = [{ id: "c", time: tie }, { id: "a", time: tie }, { id: "b", time: tie }, {
      id: "z",
      time: "2026-11-21T10:00:00Z",
    }];
    const decision = applyRetention(snapshots, { last: 2, daily: 2 });
    assert.deepEqual(decision, {
      keep: [
        { id: "a", reasons: ["last snapshot", "daily snapshot"] },
        { id: "b", reasons: ["last snapshot"] },
        { id: "z", reasons: ["daily snapshot"] },
      ],
      forget: ["c"],
    });
    assert.deepEqual(applyRetention([...snapshots].reverse(), { last: 2, daily: 2 }), decision);
  });

  it("orders and compares to the nanosecond", () => {
    const snapshots = [
      { id: "newest", time: "2026-11-22T10:00:00.000000002Z" },
      { id: "older", time: "2026-11-22T10:00:00.000000001Z" },
      { id: "edge", time: "2026-11-21T10:00:00.000000002Z" }, // exactly newest − 1d: outside
      { id: "inside", time: "2026-11-21T10:00:00.000000003Z" },
    ];
    assert.deepEqual(kept(applyRetention(snapshots, { last: 1 })), ["newest"]);
    assert.deepEqual(kept(applyRetention(snapshots, { within: "1d" })), ["newest", "older", "inside"]);
    const spellings = [
      { id: "utc", time: "2026-11-22T10:00:00.499999999Z" },
      { id: "offset", time: "2026-11-22T12:00:00.5+02:00" }, // 10:00:00.5 UTC
      { id: "lower", time: "2026-11-22t09:59:59z" },
    ];
    assert.deepEqual(kept(applyRetention(spellings, { last: 3 })), ["offset", "utc", "lower"]);
  });

  it("buckets on the wall clock of the offset written in the time, as restic does", () => {
    const snapshots = at("2024-01-01T00:30:00+01:00", "2023-12-31T23:10:00Z");
    // 2023-12-31T23:30Z is in 2024 at +01:00: two years, one UTC day apart.
    assert.deepEqual(kept(applyRetention(snapshots, { yearly: 5 })), snapshots.map(({ id }) => id));
    assert.deepEqual(kept(applyRetention(at("2024-01-01T00:30:00Z", "2023-12-31T23:10:00Z"), { daily: 1 })), [
      "2024-01-01T00:30:00Z",
    ]);
  });

  it("with now, a snapshot in the future is no anchor for within (restic skips it), but is itself kept", () => {
    const snapshots = at(
      "2027-01-01T00:00:00Z",
      "2026-11-21T12:00:00Z",
      "2026-11-20T12:00:01Z",
      "2026-11-20T12:00:00Z",
    );
    const now = new Date("2026-11-22T00:00:00Z");
    assert.deepEqual(kept(applyRetention(snapshots, { within: "1d" }, { now })), [
      "2027-01-01T00:00:00Z",
      "2026-11-21T12:00:00Z",
      "2026-11-20T12:00:01Z",
    ]);
    // Without now nothing is in the future: the anchor is 2027-01-01 and the window holds only it.
    assert.deepEqual(kept(applyRetention(snapshots, { within: "1d" })), ["2027-01-01T00:00:00Z"]);
    // Everything in the future: restic anchors at year 1, so every window holds every snapshot.
    const early = new Date("2020-01-01T00:00:00Z");
    assert.deepEqual(kept(applyRetention(snapshots, { withinDaily: "1d" }, { now: early })), [
      "2027-01-01T00:00:00Z",
      "2026-11-21T12:00:00Z",
      "2026-11-20T12:00:01Z",
    ]);
  });

  it("rejects a time or a duration restic would not accept", () => {
    assert.throws(() => applyRetention(at("yesterday"), { last: 1 }), /not an RFC 3339 snapshot time/);
    assert.throws(
      () => applyRetention(at("2026-11-22T10:00:00Z"), { within: "2w" }),
      /retention\.within: not a restic/,
    );
  });

  it("decides 100,000 snapshots in 1,000 groups in well under a second", () => {
    const groups: RetentionSnapshot[][] = [];
    let state = 7;
    for (let group = 0; group < 1000; group++) {
      const snapshots: RetentionSnapshot[] = [];
      for (let n = 0; n < 100; n++) {
        state = (state * 1_103_515_245 + 12_345) % 2_147_483_648;
        const time = new Date(Date.UTC(2024, 0, 1) + (state % (3 * 365 * 86_400)) * 1000).toISOString();
        snapshots.push({ id: `${group}-${n}`, time });
      }
      groups.push(snapshots);
    }
    const policy: Retention = {
      last: 3,
      hourly: 24,
      daily: 7,
      weekly: 5,
      monthly: 12,
      yearly: 3,
      within: "2d",
      withinDaily: "1m",
      withinWeekly: "1y",
    };
    // The best of three rounds: the first pays for compilation, and test machines are often busy.
    let elapsed = Infinity;
    for (let round = 0; round < 3; round++) {
      const started = performance.now();
      let decided = 0;
      for (const snapshots of groups) {
        const decision = applyRetention(snapshots, policy);
        decided += decision.keep.length + decision.forget.length;
      }
      elapsed = Math.min(elapsed, performance.now() - started);
      assert.equal(decided, 100_000);
    }
    console.log(`applyRetention: 100,000 snapshots in 1,000 groups in ${elapsed.toFixed(0)} ms`);
    assert.ok(elapsed < 1000, `took ${elapsed.toFixed(0)} ms`);
  });
});

describe("policyKey", () => {
  it("is canonical JSON of the keep rules, whatever the key order", () => {
    assert.equal(policyKey({ weekly: 4, daily: 7, within: "14d" }), '{"daily":7,"weekly":4,"within":"14d"}');
    assert.equal(policyKey({ within: "14d", daily: 7, weekly: 4 }), policyKey({ weekly: 4, within: "14d", daily: 7 }));
  });

  it("leaves out minSnapshots, undefined values and rules restic ignores; spells durations as restic does", () => {
    assert.equal(
      policyKey({ daily: 7, minSnapshots: 3, weekly: undefined, monthly: 0, withinDaily: "0d", within: "0y14d" }),
      '{"daily":7,"within":"14d"}',
    );
  });

  it("differs when a rule changes", () => {
    assert.notEqual(policyKey({ daily: 7 }), policyKey({ daily: 8 }));
    assert.notEqual(policyKey({ daily: 7 }), policyKey({ daily: 7, within: "1d" }));
    assert.notEqual(policyKey({ withinDaily: "7d" }), policyKey({ withinWeekly: "7d" }));
  });
});

describe("describePolicyChange", () => {
  it("lists the rules that changed, in restic's order, absent rules as none", () => {
    assert.equal(
      describePolicyChange({ weekly: 4, daily: 30 }, { daily: 7 }),
      "daily 30 → 7, weekly 4 → none",
    );
    assert.equal(
      describePolicyChange({ daily: 7 }, { within: "14d", daily: 7, withinMonthly: "1y" }),
      "within none → 14d, withinMonthly none → 1y",
    );
  });

  it("reports no change when the same snapshots would be kept", () => {
    assert.equal(describePolicyChange({ daily: 7, minSnapshots: 1 }, { daily: 7, minSnapshots: 5 }), "no change");
    assert.equal(
      describePolicyChange({ daily: 7, weekly: 0, within: "0y2d" }, { within: "2d", daily: 7 }),
      "no change",
    );
  });
});
