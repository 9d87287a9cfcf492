/**
 * Unit tests of the pure planner (src/plan/planner.ts), its schedule arithmetic (src/config/schedule.ts) and the plan
 * renderings (src/plan/render.ts). Plain data in, plain data out: no processes, no clock, no state database.
 * Runs under `deno test -A test/plan/` and `bun --no-install test ./test/plan/`.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { at, loadedConfig, observedState, type Raw, record } from "../support/plan-fixtures.ts";
import process from "node:process";
import { files, postgres, sqlite } from "../../src/config/helpers.ts";
import { nextSlot, previousSlot } from "../../src/config/schedule.ts";
import { isEmpty, plan, summarize } from "../../src/plan/planner.ts";
import type { ObservedState, Plan, PlanAction } from "../../src/plan/types.ts";

// picocolors decides at import time whether to colour: switch colours off before render.ts (and picocolors) load.
process.env.NO_COLOR = "1";
const { renderJson, renderText, summaryLine } = await import("../../src/plan/render.ts");

/** Removes ANSI escapes, in case picocolors was loaded with colours on by another test file in the same process. */
function plain(text: string): string {
  // deno-lint-ignore no-control-regex
  return text.replace(/\x1b\[[0-9;]*m/g, "");
}

/** A project with one postgres source "shop" backed up to local (copies to offsite), daily at 03:00. */
function shopProject(changes: Raw = {}): Raw {
  return {
    schedule: "0 3 * * *",
    sources: [postgres({ database: "shop" })],
    repositories: ["local", "offsite"],
    retention: { daily: 7 },
    ...changes,
  };
}

const GENERATED = at("2026-11-21T10:00:05.123Z");

function planAt(
  loaded: ReturnType<typeof loadedConfig>,
  observed: ObservedState,
  now: string,
  projects?: string[],
): Plan {
  return plan(loaded, observed, at(now), { projects, generatedAt: GENERATED });
}

function backup(id: string, project: string, source: string, reason: string, repository = "local"): PlanAction {
  return { id, type: "backup", project, source, repository, reason, destructive: false };
}

function init(id: string, repository: string): PlanAction {
  return { id, type: "init", repository, reason: "repository not initialized", destructive: false };
}

/** The init of a repository that only receives copies: it takes the chunker parameters of the one copied from. */
function initFrom(id: string, repository: string, from: string): PlanAction {
  return {
    id,
    type: "init",
    repository,
    chunker_from: from,
    reason: `repository not initialized (chunker parameters of ${from})`,
    destructive: false,
  };
}

/** A copy of the new backup (and no older snapshot) from the primary to a later repository. */
function copyNew(id: string, project: string, source: string, repository = "offsite", from = "local"): PlanAction {
  return {
    id,
    type: "copy",
    project,
    source,
    repository,
    from,
    snapshots: [],
    reason: `copy the new backup from ${from}`,
    destructive: false,
  };
}

const ZERO = { backup: 0, copy: 0, init: 0, forget: 0, prune: 0, check: 0, verify: 0 };

describe("plan: never backed up", () => {
  it("initializes each uninitialized repository first, then backs up every source to the first repository", () => {
    const loaded = loadedConfig({
      shop: shopProject({
        sources: [
          postgres({ database: "shop" }),
          files({ paths: ["/srv/shop/uploads"] }),
          sqlite({ path: "/srv/shop/sessions.db" }),
        ],
      }),
    });
    const result = planAt(loaded, observedState({ repositories: {} }), "2026-11-21T10:00:00Z");
    assert.deepEqual(result.actions, [
      init("a1", "local"),
      initFrom("a2", "offsite", "local"),
      backup("a3", "shop", "shop", "never backed up"),
      backup("a4", "shop", "files", "never backed up"),
      backup("a5", "shop", "sessions", "never backed up"),
      copyNew("a6", "shop", "shop"),
      copyNew("a7", "shop", "files"),
      copyNew("a8", "shop", "sessions"),
    ]);
    assert.deepEqual(result.summary, { ...ZERO, backup: 3, copy: 3, init: 2 });
  });

  it("initializes a repository shared by two projects once", () => {
    const loaded = loadedConfig({
      shop: shopProject({ repositories: ["local"] }),
      blog: shopProject({ sources: [sqlite({ path: "/srv/blog/blog.db" })], repositories: ["local", "archive"] }),
    });
    const result = planAt(loaded, observedState({ repositories: {} }), "2026-11-21T10:00:00Z");
    assert.deepEqual(result.actions, [
      init("a1", "local"),
      initFrom("a2", "archive", "local"),
      backup("a3", "shop", "shop", "never backed up"),
      backup("a4", "blog", "blog", "never backed up"),
      copyNew("a5", "blog", "blog", "archive"),
    ]);
  });

  it("gives initialized repositories no init action, and treats initialized: false like an unknown repository", () => {
    const loaded = loadedConfig({
      shop: shopProject({ repositories: ["local", "offsite", "archive"] }),
    });
    const observed = observedState({
      repositories: { local: { initialized: true }, offsite: { initialized: false } },
    });
    const result = planAt(loaded, observed, "2026-11-21T10:00:00Z");
    assert.deepEqual(result.actions, [
      initFrom("a1", "offsite", "local"),
      initFrom("a2", "archive", "local"),
      backup("a3", "shop", "shop", "never backed up"),
      copyNew("a4", "shop", "shop", "offsite"),
      copyNew("a5", "shop", "shop", "archive"),
    ]);
  });

  it("backs up to the first repository even when only a later one has a backup of the source", () => {
    const loaded = loadedConfig({ shop: shopProject() });
    const observed = observedState({ backups: [record("shop", "shop", "2026-11-21T03:00:10.000Z", "offsite")] });
    const result = planAt(loaded, observed, "2026-11-21T10:00:00Z");
    assert.deepEqual(result.actions, [
      backup("a1", "shop", "shop", "never backed up"),
      copyNew("a2", "shop", "shop"),
    ]);
  });
});

describe("plan: due and not due", () => {
  const loaded = loadedConfig({ shop: shopProject() });

  it("is due when the last success is before the latest slot (UTC: no zone in the reason)", () => {
    const observed = observedState({ backups: [record("shop", "shop", "2026-11-20T03:00:12.000Z")] });
    const result = planAt(loaded, observed, "2026-11-21T10:00:00Z");
    assert.deepEqual(result.actions, [
      backup("a1", "shop", "shop", "due since 2026-11-21T03:00:00Z (0 3 * * *)"),
      copyNew("a2", "shop", "shop"),
    ]);
    assert.deepEqual(result.summary, { ...ZERO, backup: 1, copy: 1 });
  });

  it("names the project's time zone in the reason when it is not UTC, and reports the slot in UTC", () => {
    const berlin = loadedConfig({ shop: shopProject() }, { timezone: "Europe/Berlin" });
    const observed = observedState({ backups: [record("shop", "shop", "2026-11-20T02:00:12.000Z")] });
    const result = planAt(berlin, observed, "2026-11-21T10:00:00Z");
    assert.deepEqual(result.actions, [
      backup("a1", "shop", "shop", "due since 2026-11-21T02:00:00Z (0 3 * * *, Europe/Berlin)"),
      copyNew("a2", "shop", "shop"),
    ]);
  });

  it("lets a project's timezone override the config's", () => {
    const overridden = loadedConfig({ shop: shopProject({ timezone: "UTC" }) }, { timezone: "Europe/Berlin" });
    const observed = observedState({ backups: [record("shop", "shop", "2026-11-20T03:00:12.000Z")] });
    const result = planAt(overridden, observed, "2026-11-21T10:00:00Z");
    assert.deepEqual(result.actions, [
      backup("a1", "shop", "shop", "due since 2026-11-21T03:00:00Z (0 3 * * *)"),
      copyNew("a2", "shop", "shop"),
    ]);
  });

  it("plans nothing when the last success is after the latest slot, and lists the next slot", () => {
    const observed = observedState({ backups: [record("shop", "shop", "2026-11-21T03:00:30.000Z")] });
    const result = planAt(loaded, observed, "2026-11-21T10:00:00Z");
    assert.deepEqual(result.actions, []);
    assert.deepEqual(result.summary, ZERO);
    assert.deepEqual(result.warnings, []);
    assert.deepEqual(result.next_due, [{ project: "shop", at: "2026-11-22T03:00:00Z" }]);
    assert.equal(isEmpty(result), true);
  });

  it("uses the newest of several records for the same source, in any order", () => {
    const newestLast = [
      record("shop", "shop", "2026-11-19T03:00:05.000Z"),
      record("shop", "shop", "2026-11-21T03:00:05.000Z"),
    ];
    for (const backups of [newestLast, [...newestLast].reverse()]) {
      const result = planAt(loaded, observedState({ backups }), "2026-11-21T10:00:00Z");
      assert.deepEqual(result.actions, [], JSON.stringify(backups));
    }
  });

  it("is not due when now is exactly the slot and the success is at the slot", () => {
    const observed = observedState({ backups: [record("shop", "shop", "2026-11-21T03:00:00.000Z")] });
    const result = planAt(loaded, observed, "2026-11-21T03:00:00.000Z");
    assert.deepEqual(result.actions, []);
    assert.deepEqual(result.next_due, [{ project: "shop", at: "2026-11-22T03:00:00Z" }]);
  });

  it("is due when now is exactly the slot and the success is 1 ms before it", () => {
    const observed = observedState({ backups: [record("shop", "shop", "2026-11-21T02:59:59.999Z")] });
    const result = planAt(loaded, observed, "2026-11-21T03:00:00.000Z");
    assert.deepEqual(result.actions, [
      backup("a1", "shop", "shop", "due since 2026-11-21T03:00:00Z (0 3 * * *)"),
      copyNew("a2", "shop", "shop"),
    ]);
  });

  it("is not due 1 ms before the slot when the previous slot has a success", () => {
    const observed = observedState({ backups: [record("shop", "shop", "2026-11-20T03:00:00.000Z")] });
    const result = planAt(loaded, observed, "2026-11-21T02:59:59.999Z");
    assert.deepEqual(result.actions, []);
    assert.deepEqual(result.next_due, [{ project: "shop", at: "2026-11-21T03:00:00Z" }]);
  });

  it("adds the failure newer than the last success to the reason", () => {
    const observed = observedState({
      backups: [record("shop", "shop", "2026-11-20T03:00:12.000Z")],
      failures: [record("shop", "shop", "2026-11-21T03:00:04.000Z")],
    });
    const result = planAt(loaded, observed, "2026-11-21T10:00:00Z");
    assert.deepEqual(result.actions, [
      backup(
        "a1",
        "shop",
        "shop",
        "due since 2026-11-21T03:00:00Z (0 3 * * *); last attempt failed at 2026-11-21T03:00:04Z",
      ),
      copyNew("a2", "shop", "shop"),
    ]);
  });

  it("says never backed up and when the last attempt failed for a source that never succeeded", () => {
    const observed = observedState({ failures: [record("shop", "shop", "2026-11-21T03:00:04.000Z")] });
    const result = planAt(loaded, observed, "2026-11-21T10:00:00Z");
    assert.deepEqual(result.actions, [
      backup("a1", "shop", "shop", "never backed up; last attempt failed at 2026-11-21T03:00:04Z"),
      copyNew("a2", "shop", "shop"),
    ]);
  });

  it("does not attach another source's or another repository's failure", () => {
    const twoSources = loadedConfig({
      shop: shopProject({ sources: [postgres({ database: "shop" }), files({ paths: ["/srv/shop"] })] }),
    });
    const observed = observedState({
      backups: [
        record("shop", "shop", "2026-11-20T03:00:12.000Z"),
        record("shop", "files", "2026-11-20T03:00:13.000Z"),
      ],
      failures: [
        record("shop", "files", "2026-11-21T03:00:04.000Z"),
        record("shop", "shop", "2026-11-21T03:00:05.000Z", "offsite"),
      ],
    });
    const result = planAt(twoSources, observed, "2026-11-21T10:00:00Z");
    assert.deepEqual(result.actions, [
      backup("a1", "shop", "shop", "due since 2026-11-21T03:00:00Z (0 3 * * *)"),
      backup(
        "a2",
        "shop",
        "files",
        "due since 2026-11-21T03:00:00Z (0 3 * * *); last attempt failed at 2026-11-21T03:00:04Z",
      ),
      copyNew("a3", "shop", "shop"),
      copyNew("a4", "shop", "files"),
    ]);
  });
});

describe("plan: per source, project filter, disabled projects", () => {
  it("makes only a newly added source due in a backed-up project", () => {
    const loaded = loadedConfig({
      shop: shopProject({
        sources: [postgres({ database: "shop" }), files({ paths: ["/srv/shop"] }), sqlite({ path: "/srv/s.db" })],
      }),
    });
    const observed = observedState({
      backups: [
        record("shop", "shop", "2026-11-21T03:00:12.000Z"),
        record("shop", "files", "2026-11-21T03:00:40.000Z"),
      ],
    });
    const result = planAt(loaded, observed, "2026-11-21T10:00:00Z");
    assert.deepEqual(result.actions, [backup("a1", "shop", "s", "never backed up"), copyNew("a2", "shop", "s")]);
  });

  it("plans only the selected projects, and initializes only their repositories", () => {
    const loaded = loadedConfig({
      a: shopProject({ repositories: ["local"] }),
      b: shopProject({ repositories: ["archive"] }),
    });
    const result = planAt(loaded, observedState({ repositories: {} }), "2026-11-21T10:00:00Z", ["a"]);
    assert.deepEqual(result.actions, [init("a1", "local"), backup("a2", "a", "shop", "never backed up")]);
    assert.deepEqual(result.next_due, [{ project: "a", at: "2026-11-22T03:00:00Z" }]);
    assert.deepEqual(result.warnings, []);
  });

  it("plans nothing for a disabled project and warns about it", () => {
    const loaded = loadedConfig({
      a: shopProject({ repositories: ["local"] }),
      b: shopProject({ repositories: ["archive"], enabled: false }),
    });
    const result = planAt(loaded, observedState({ repositories: {} }), "2026-11-21T10:00:00Z");
    assert.deepEqual(result.actions, [init("a1", "local"), backup("a2", "a", "shop", "never backed up")]);
    assert.deepEqual(result.warnings, ["project b is disabled (enabled: false): nothing is planned for it"]);
    assert.deepEqual(result.next_due, [{ project: "a", at: "2026-11-22T03:00:00Z" }]);
  });

  it("does not warn about a disabled project the filter left out", () => {
    const loaded = loadedConfig({
      a: shopProject({ repositories: ["local"] }),
      b: shopProject({ repositories: ["archive"], enabled: false }),
    });
    const result = planAt(loaded, observedState(), "2026-11-21T10:00:00Z", ["a"]);
    assert.deepEqual(result.warnings, []);
    assert.deepEqual(result.actions, [backup("a1", "a", "shop", "never backed up")]);
  });
});

describe("schedule slots across daylight-saving changes", () => {
  const berlin = "Europe/Berlin";
  const iso = (date: Date | undefined) => date?.toISOString();

  it('"0 3 * * *" in Berlin is 02:00Z in winter time and 01:00Z from 2026-03-29 (CEST)', () => {
    assert.equal(iso(previousSlot("0 3 * * *", berlin, at("2026-03-28T12:00:00Z"))), "2026-03-28T02:00:00.000Z");
    assert.equal(iso(nextSlot("0 3 * * *", berlin, at("2026-03-28T12:00:00Z"))), "2026-03-29T01:00:00.000Z");
    assert.equal(iso(previousSlot("0 3 * * *", berlin, at("2026-03-29T00:59:59.999Z"))), "2026-03-28T02:00:00.000Z");
    assert.equal(iso(previousSlot("0 3 * * *", berlin, at("2026-03-29T01:00:00Z"))), "2026-03-29T01:00:00.000Z");
    assert.equal(iso(nextSlot("0 3 * * *", berlin, at("2026-03-29T01:00:00Z"))), "2026-03-30T01:00:00.000Z");
  });

  it('"0 3 * * *" in Berlin is back at 02:00Z from 2026-10-25 (CET)', () => {
    assert.equal(iso(previousSlot("0 3 * * *", berlin, at("2026-10-24T12:00:00Z"))), "2026-10-24T01:00:00.000Z");
    assert.equal(iso(nextSlot("0 3 * * *", berlin, at("2026-10-24T12:00:00Z"))), "2026-10-25T02:00:00.000Z");
    assert.equal(iso(previousSlot("0 3 * * *", berlin, at("2026-10-25T01:59:59Z"))), "2026-10-24T01:00:00.000Z");
    assert.equal(iso(previousSlot("0 3 * * *", berlin, at("2026-10-25T12:00:00Z"))), "2026-10-25T02:00:00.000Z");
  });

  it('"30 2 * * *" in Berlin on ordinary days around both changes', () => {
    assert.equal(iso(previousSlot("30 2 * * *", berlin, at("2026-03-28T12:00:00Z"))), "2026-03-28T01:30:00.000Z");
    assert.equal(iso(previousSlot("30 2 * * *", berlin, at("2026-03-30T12:00:00Z"))), "2026-03-30T00:30:00.000Z");
    assert.equal(iso(nextSlot("30 2 * * *", berlin, at("2026-03-30T12:00:00Z"))), "2026-03-31T00:30:00.000Z");
    assert.equal(iso(previousSlot("30 2 * * *", berlin, at("2026-10-24T12:00:00Z"))), "2026-10-24T00:30:00.000Z");
    assert.equal(iso(nextSlot("30 2 * * *", berlin, at("2026-10-24T12:00:00Z"))), "2026-10-25T00:30:00.000Z");
    assert.equal(iso(previousSlot("30 2 * * *", berlin, at("2026-10-26T12:00:00Z"))), "2026-10-26T01:30:00.000Z");
  });

  it('"30 2 * * *" in Berlin on 2026-10-25 (02:30 happens twice): the first 02:30 (CEST, 00:30Z) is a slot', () => {
    assert.equal(iso(previousSlot("30 2 * * *", berlin, at("2026-10-25T00:30:00Z"))), "2026-10-25T00:30:00.000Z");
    assert.equal(iso(previousSlot("30 2 * * *", berlin, at("2026-10-25T00:59:59Z"))), "2026-10-25T00:30:00.000Z");
    assert.equal(iso(nextSlot("30 2 * * *", berlin, at("2026-10-25T00:30:00Z"))), "2026-10-26T01:30:00.000Z");
  });

  it(
    'fires "30 2 * * *" in Berlin once on 2026-10-25: no second slot at the repeated 02:30 (CET, 01:30Z)',
    () => {
      assert.equal(iso(previousSlot("30 2 * * *", berlin, at("2026-10-25T12:00:00Z"))), "2026-10-25T00:30:00.000Z");
      assert.equal(iso(nextSlot("30 2 * * *", berlin, at("2026-10-25T01:00:00Z"))), "2026-10-26T01:30:00.000Z");
    },
  );

  /**
   * Every half hour (at :15 and :45) from noon the day before a change to midnight after it: previousSlot(t) ≤ t <
   * nextSlot(t), the slot nextSlot announces is one previousSlot returns at that instant, and no slot lies between
   * previousSlot(t) and t or between t and nextSlot(t).
   * Each distinct problem is reported once, with the first instant it shows at.
   */
  function sweep(expression: string, timezone: string, changeDay: string) {
    const problems = new Map<string, string>();
    const report = (key: string, message: string) => problems.has(key) || problems.set(key, message);
    const start = Date.parse(`${changeDay}T00:15:00Z`) - 12 * 3_600_000;
    for (let t = start; t < start + 36 * 3_600_000; t += 1_800_000) {
      const now = new Date(t);
      const previous = previousSlot(expression, timezone, now)!;
      const next = nextSlot(expression, timezone, now);
      if (previous.getTime() > t) report(`p${iso(previous)}`, `previousSlot(${iso(now)}) = ${iso(previous)} > now`);
      if (next.getTime() <= t) report(`n${iso(next)}`, `nextSlot(${iso(now)}) = ${iso(next)} <= now`);
      const seen = previousSlot(expression, timezone, next)!;
      if (seen.getTime() !== next.getTime()) {
        report(`s${iso(next)}`, `nextSlot(${iso(now)}) = ${iso(next)}, but previousSlot(${iso(next)}) = ${iso(seen)}`);
      }
      const skipped = previousSlot(expression, timezone, new Date(next.getTime() - 1))!;
      if (skipped.getTime() !== previous.getTime()) {
        report(`k${iso(skipped)}`, `nextSlot(${iso(now)}) = ${iso(next)} skips the slot ${iso(skipped)}`);
      }
      const following = nextSlot(expression, timezone, previous);
      if (following.getTime() <= t) {
        report(
          `f${iso(previous)}`,
          `previousSlot(${iso(now)}) = ${iso(previous)}, but nextSlot of it = ${iso(following)}`,
        );
      }
    }
    return [...problems.values()];
  }

  it('"0 3 * * *": previousSlot and nextSlot agree around both changes in Berlin and New York', () => {
    assert.deepEqual(sweep("0 3 * * *", berlin, "2026-03-29"), []);
    assert.deepEqual(sweep("0 3 * * *", berlin, "2026-10-25"), []);
    assert.deepEqual(sweep("0 3 * * *", "America/New_York", "2026-03-08"), []);
    assert.deepEqual(sweep("0 3 * * *", "America/New_York", "2026-11-01"), []);
  });

  it(
    '"30 2 * * *": previousSlot and nextSlot agree around both changes in Berlin',
    () => {
      assert.deepEqual(sweep("30 2 * * *", berlin, "2026-03-29"), []);
      assert.deepEqual(sweep("30 2 * * *", berlin, "2026-10-25"), []);
    },
  );
});

describe("plan: daylight-saving changes", () => {
  const berlin = (schedule: string) =>
    loadedConfig({ shop: shopProject({ schedule, timezone: "Europe/Berlin", repositories: ["local"] }) });

  it('"0 3 * * *" Berlin: a success at 2026-03-28 03:00 CET is enough until 01:00Z on 2026-03-29', () => {
    const loaded = berlin("0 3 * * *");
    const observed = observedState({ backups: [record("shop", "shop", "2026-03-28T02:00:20.000Z")] });

    const before = planAt(loaded, observed, "2026-03-29T00:59:59Z");
    assert.deepEqual(before.actions, []);
    assert.deepEqual(before.next_due, [{ project: "shop", at: "2026-03-29T01:00:00Z" }]);

    const after = planAt(loaded, observed, "2026-03-29T01:00:00Z");
    assert.deepEqual(after.actions, [
      backup("a1", "shop", "shop", "due since 2026-03-29T01:00:00Z (0 3 * * *, Europe/Berlin)"),
    ]);
  });

  it('"0 3 * * *" Berlin: on 2026-10-25 the slot is 02:00Z, not 01:00Z', () => {
    const loaded = berlin("0 3 * * *");
    const observed = observedState({ backups: [record("shop", "shop", "2026-10-24T01:00:20.000Z")] });
    assert.deepEqual(planAt(loaded, observed, "2026-10-25T01:30:00Z").actions, []);
    assert.deepEqual(planAt(loaded, observed, "2026-10-25T02:00:00Z").actions, [
      backup("a1", "shop", "shop", "due since 2026-10-25T02:00:00Z (0 3 * * *, Europe/Berlin)"),
    ]);
  });

  it('"30 2 * * *" Berlin: due at the first 02:30 of 2026-10-25 (00:30Z)', () => {
    const loaded = berlin("30 2 * * *");
    const observed = observedState({ backups: [record("shop", "shop", "2026-10-24T00:30:20.000Z")] });
    assert.deepEqual(planAt(loaded, observed, "2026-10-25T00:29:59Z").actions, []);
    assert.deepEqual(planAt(loaded, observed, "2026-10-25T00:45:00Z").actions, [
      backup("a1", "shop", "shop", "due since 2026-10-25T00:30:00Z (30 2 * * *, Europe/Berlin)"),
    ]);
  });

  it(
    '"30 2 * * *" Berlin: a success after the first 02:30 of 2026-10-25 is not planned again that day',
    () => {
      const loaded = berlin("30 2 * * *");
      const observed = observedState({ backups: [record("shop", "shop", "2026-10-25T00:30:20.000Z")] });
      for (const now of ["2026-10-25T01:30:00Z", "2026-10-25T12:00:00Z"]) {
        const result = planAt(loaded, observed, now);
        assert.deepEqual(result.actions, [], now);
        assert.deepEqual(result.next_due, [{ project: "shop", at: "2026-10-26T01:30:00Z" }], now);
      }
    },
  );

  it('"30 2 * * *" Berlin: after the spring change the next real slot (2026-03-30 00:30Z) makes it due', () => {
    const loaded = berlin("30 2 * * *");
    const observed = observedState({ backups: [record("shop", "shop", "2026-03-28T01:30:20.000Z")] });
    assert.deepEqual(planAt(loaded, observed, "2026-03-30T00:30:00Z").actions, [
      backup(
        "a1",
        "shop",
        "shop",
        "due since 2026-03-30T00:30:00Z (30 2 * * *, Europe/Berlin); " +
          "2 slots missed since the last success, one backup covers them",
      ),
    ]);
  });

  it(
    '"30 2 * * *" Berlin: when the announced next due time of 2026-03-29 arrives, the project is due',
    () => {
      const loaded = berlin("30 2 * * *");
      const observed = observedState({ backups: [record("shop", "shop", "2026-03-28T01:30:20.000Z")] });
      const early = planAt(loaded, observed, "2026-03-29T00:30:00Z");
      assert.deepEqual(early.actions, []);
      const [{ at: announced }] = early.next_due;
      assert.equal(planAt(loaded, observed, announced).actions.length, 1, `nothing is due at ${announced}`);
    },
  );

  it('"0 3 * * *" America/New_York: 08:00Z before 2026-03-08, 07:00Z on it', () => {
    const loaded = loadedConfig({
      shop: shopProject({ timezone: "America/New_York", repositories: ["local"] }),
    });
    const observed = observedState({ backups: [record("shop", "shop", "2026-03-07T08:00:20.000Z")] });

    const before = planAt(loaded, observed, "2026-03-08T06:59:59Z");
    assert.deepEqual(before.actions, []);
    assert.deepEqual(before.next_due, [{ project: "shop", at: "2026-03-08T07:00:00Z" }]);

    assert.deepEqual(planAt(loaded, observed, "2026-03-08T12:00:00Z").actions, [
      backup("a1", "shop", "shop", "due since 2026-03-08T07:00:00Z (0 3 * * *, America/New_York)"),
    ]);
  });
});

describe("plan: the document", () => {
  it("has format_version 1, times to the second, the fingerprint, the state's lineage and serial, and a summary", () => {
    const loaded = loadedConfig({
      shop: shopProject({ sources: [postgres({ database: "shop" }), files({ paths: ["/srv/shop"] })] }),
      blog: shopProject({
        schedule: "@hourly",
        sources: [sqlite({ path: "/srv/blog.db" })],
        repositories: ["offsite"],
      }),
    });
    const observed = observedState({
      lineage: "0d9e5c1e-5b7e-4a43-9d7c-3f6d1c8f2a10",
      serial: 42,
      repositories: { offsite: { initialized: true } },
      backups: [record("blog", "blog", "2026-11-21T09:00:03.000Z", "offsite")],
    });
    const result = plan(loaded, observed, at("2026-11-21T09:30:15.999Z"), { generatedAt: GENERATED });
    assert.deepEqual(result, {
      format_version: 1,
      plan_id: "",
      generated_at: "2026-11-21T10:00:05Z",
      now: "2026-11-21T09:30:15Z",
      config_fingerprint: "sha256:test",
      state: { lineage: "0d9e5c1e-5b7e-4a43-9d7c-3f6d1c8f2a10", serial: 42 },
      projects: ["shop", "blog"],
      actions: [
        init("a1", "local"),
        backup("a2", "shop", "shop", "never backed up"),
        backup("a3", "shop", "files", "never backed up"),
        copyNew("a4", "shop", "shop"),
        copyNew("a5", "shop", "files"),
      ],
      summary: { ...ZERO, backup: 2, copy: 2, init: 1 },
      warnings: [],
      overdue: [],
      not_managed: [],
      next_due: [
        { project: "shop", at: "2026-11-22T03:00:00Z" },
        { project: "blog", at: "2026-11-21T10:00:00Z" },
      ],
    });
  });

  it("records generatedAt without using it for decisions", () => {
    const loaded = loadedConfig({ shop: shopProject() });
    const observed = observedState({ backups: [record("shop", "shop", "2026-11-20T03:00:12.000Z")] });
    const now = at("2026-11-21T10:00:00Z");
    const early = plan(loaded, observed, now, { generatedAt: at("2020-01-01T00:00:00Z") });
    const late = plan(loaded, observed, now, { generatedAt: at("2030-01-01T00:00:00Z") });
    assert.equal(early.generated_at, "2020-01-01T00:00:00Z");
    assert.equal(late.generated_at, "2030-01-01T00:00:00Z");
    assert.deepEqual({ ...early, generated_at: "" }, { ...late, generated_at: "" });
    assert.equal(early.actions.length, 2);
  });

  it("summarize counts forgets by snapshot, checks and verifies apart, and leaves recover out", () => {
    const common = { id: "x", reason: "r", destructive: false };
    const group = { project: "shop", source: "db", repository: "local" };
    const actions: PlanAction[] = [
      { ...common, type: "backup", ...group },
      { ...common, type: "copy", ...group, repository: "offsite", from: "local", snapshots: ["51"] },
      { ...common, type: "forget", ...group, snapshots: ["51", "52", "53"], approval: "routine" },
      { ...common, type: "forget", ...group, snapshots: [], approval: "routine" },
      { ...common, type: "prune", repository: "local" },
      { ...common, type: "check", repository: "local" },
      { ...common, type: "verify", project: "shop", repository: "local" },
      { ...common, type: "recover", recover: "stale_lock", project: "shop" },
      { ...common, type: "init", repository: "local" },
    ];
    assert.deepEqual(
      summarize(actions),
      { backup: 1, copy: 1, init: 1, forget: 3, prune: 1, check: 1, verify: 1 },
    );
  });

  it("is pure: the same inputs give deep-equal plans and are left unchanged", () => {
    const loaded = loadedConfig({
      shop: shopProject({ sources: [postgres({ database: "shop" }), files({ paths: ["/srv/shop"] })] }),
      blog: shopProject({ enabled: false }),
    });
    const observed = observedState({
      repositories: { local: { initialized: true } },
      backups: [record("shop", "shop", "2026-11-20T03:00:12.000Z")],
      failures: [record("shop", "files", "2026-11-21T03:00:12.000Z")],
    });
    const loadedBefore = structuredClone(loaded);
    const observedBefore = structuredClone(observed);
    const now = at("2026-11-21T10:00:00Z");
    const first = plan(loaded, observed, now, { generatedAt: GENERATED });
    const second = plan(loaded, observed, now, { generatedAt: GENERATED });
    assert.deepEqual(first, second);
    assert.equal(first.actions.length, 5);
    assert.deepEqual(loaded, loadedBefore);
    assert.deepEqual(observed, observedBefore);
    assert.equal(now.toISOString(), "2026-11-21T10:00:00.000Z");
  });
});

describe("render", () => {
  const loaded = loadedConfig({
    shop: shopProject({
      sources: [postgres({ database: "shop" }), files({ paths: ["/srv/shop"] })],
      repositories: ["local"],
    }),
    blog: shopProject({ schedule: "@hourly", sources: [sqlite({ path: "/srv/blog.db" })], repositories: ["offsite"] }),
  });

  it("lists each action under its group and ends with the summary line", () => {
    const observed = observedState({
      repositories: { offsite: { initialized: true } },
      backups: [record("blog", "blog", "2026-11-21T10:00:01.000Z", "offsite")],
    });
    const result = planAt(loaded, observed, "2026-11-21T10:30:00Z");
    const text = plain(renderText(result));
    assert.equal(
      text,
      [
        "Repositories:",
        "  + init local  repository not initialized",
        "",
        "Project shop:",
        "  + backup shop → local  never backed up",
        "  + backup files → local  never backed up",
        "",
        "Plan: 2 to back up, 0 to copy, 1 to initialize, 0 snapshots to forget, 0 checks.",
        "",
      ].join("\n"),
    );
    assert.equal(
      summaryLine(result),
      "Plan: 2 to back up, 0 to copy, 1 to initialize, 0 snapshots to forget, 0 checks.",
    );
  });

  it("says there are no changes and names the earliest next due time for an empty plan", () => {
    const observed = observedState({
      backups: [
        record("shop", "shop", "2026-11-21T03:00:01.000Z"),
        record("shop", "files", "2026-11-21T03:00:02.000Z"),
        record("blog", "blog", "2026-11-21T10:00:01.000Z", "offsite"),
      ],
    });
    const result = planAt(loaded, observed, "2026-11-21T10:20:00Z");
    assert.deepEqual(result.actions, []);
    const text = plain(renderText(result));
    assert.ok(text.includes("No changes. Backups are up to date."), text);
    assert.ok(text.includes("Next due:"), text);
    assert.equal(text, "No changes. Backups are up to date.\nNext due: blog at 2026-11-21 11:00:00+00:00 (in 40m).\n");
  });

  it("puts warnings first", () => {
    const withDisabled = loadedConfig({
      shop: shopProject({ repositories: ["local"] }),
      old: shopProject({ enabled: false }),
    });
    const observed = observedState({ backups: [record("shop", "shop", "2026-11-21T03:00:01.000Z")] });
    const text = plain(renderText(planAt(withDisabled, observed, "2026-11-21T10:00:00Z")));
    assert.equal(
      text,
      "! project old is disabled (enabled: false): nothing is planned for it\n\n" +
        "No changes. Backups are up to date.\nNext due: shop at 2026-11-22 03:00:00+00:00 (in 17h).\n",
    );
  });

  it("renders JSON that parses back to the same plan", () => {
    const result = planAt(loaded, observedState({ repositories: {} }), "2026-11-21T10:00:00Z");
    assert.equal(result.actions.length, 5);
    const json = renderJson(result);
    assert.ok(json.endsWith("}\n"));
    assert.deepEqual(JSON.parse(json), result);
  });
});
