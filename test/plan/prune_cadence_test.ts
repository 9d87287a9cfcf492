/**
 * When the planner prunes (issue 18, point 6): a forget alone no longer means a prune. A repository with forgotten
 * snapshots is pruned when it was never pruned, when `prune.every` (default 7d) has passed since its last prune, or
 * when half of its snapshots or more were forgotten since; a prune that failed or was cut short after forgets is
 * planned again; a `prune.every` the config sets prunes on its cadence whatever was forgotten. Plain data, no clock.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  ago,
  applied,
  day,
  hour,
  loadedConfig,
  minute,
  NOW,
  observedState,
  ofType,
  planAt,
  type Raw,
  record,
  snap,
} from "../support/plan-fixtures.ts";
import { sqlite } from "../../src/config/helpers.ts";
import type { MaintenanceRecord } from "../../src/plan/types.ts";

/** A minutely project keeping its last 10 snapshots (the case: a forget every minute). */
function minutely(changes: Raw = {}): Raw {
  return {
    schedule: "* * * * *",
    sources: [sqlite({ path: "/srv/app.db", name: "app" })],
    repositories: ["local"],
    retention: { last: 10 },
    ...changes,
  };
}

/** `count` snapshots of app in local, one a minute up to now, newest first (id `aa` + the minutes ago). */
function perMinute(count: number, prefix = "aa") {
  return Array.from(
    { length: count },
    (_, i) => snap("local", `${prefix}${String(i).padStart(6, "0")}`, ago(i * minute), "app", "app"),
  );
}

function state(maintenance: MaintenanceRecord[], snapshots = perMinute(11)) {
  return observedState({
    backups: [record("app", "app", NOW)],
    snapshots,
    retention: [applied({ last: 10 }, "app", "app")],
    maintenance,
    repositories: { local: { initialized: true, initializedAt: ago(30 * day) } },
  });
}

const loaded = loadedConfig({ app: minutely() });

describe("prune cadence", () => {
  it("forgets without pruning when the repository was pruned within prune.every (default 7d) and little is forgotten", () => {
    const observed = state([
      { type: "prune", repository: "local", at: ago(hour) },
      { type: "prune_attempt", repository: "local", at: ago(hour) },
      { type: "forget", repository: "local", at: ago(minute), forgotten: 5 },
    ]);
    const result = planAt(loaded, observed);
    assert.deepEqual(ofType(result, "forget").map((f) => f.snapshots), [["aa000010"]]);
    assert.deepEqual(ofType(result, "prune"), []);
    assert.equal(result.summary.prune, 0);
  });

  it("prunes once prune.every has passed since the last prune; skippable when only this plan's forgets call for it", () => {
    const pending = state([
      { type: "prune", repository: "local", at: ago(7 * day) },
      { type: "forget", repository: "local", at: ago(minute), forgotten: 3 },
    ]);
    assert.deepEqual(ofType(planAt(loaded, pending), "prune").map((p) => p.reason), [
      "4 snapshots forgotten since the last prune 2026-11-14T10:00:00Z (7d ago), every 7d",
    ]);
    // Nothing forgotten before: the prune stands on this plan's forget, and apply skips it if the forget is held.
    const fresh = state([{ type: "prune", repository: "local", at: ago(8 * day) }]);
    assert.deepEqual(ofType(planAt(loaded, fresh), "prune").map((p) => p.reason), [
      "after forgetting 1 snapshot; 1 snapshot forgotten since the last prune 2026-11-13T10:00:00Z (8d ago), every 7d",
    ]);
    // Nothing forgotten at all: the default cadence prunes nothing.
    const none = state([{ type: "prune", repository: "local", at: ago(30 * day) }], perMinute(10));
    assert.deepEqual(ofType(planAt(loaded, none), "prune"), []);
  });

  it("uses the projects' prune.every instead of the default, and prunes on it even when nothing was forgotten", () => {
    const monthly = loadedConfig({ app: minutely({ prune: { every: "30d" } }) });
    const tenDays = state([
      { type: "prune", repository: "local", at: ago(10 * day) },
      { type: "forget", repository: "local", at: ago(minute), forgotten: 2 },
    ]);
    assert.deepEqual(ofType(planAt(monthly, tenDays), "prune"), [], "30d set: 10 days are not enough");
    const daily = loadedConfig({ app: minutely({ prune: { every: "1d" } }) });
    const yesterday = state([{ type: "prune", repository: "local", at: ago(25 * hour) }], perMinute(10));
    assert.deepEqual(ofType(planAt(daily, yesterday), "prune").map((p) => p.reason), [
      "last prune 2026-11-20T09:00:00Z (1d 1h ago), every 1d",
    ]);
  });

  it("prunes at once when half of the repository's snapshots or more were forgotten since the last prune", () => {
    // A retention change forgets 8 of 11 snapshots: a large share, right after a prune an hour ago.
    const shrunk = loadedConfig({ app: minutely({ retention: { last: 3 } }) });
    const observed = state([
      { type: "prune", repository: "local", at: ago(hour) },
      { type: "forget", repository: "local", at: ago(2 * minute), forgotten: 0 },
    ]);
    const result = planAt(shrunk, observed);
    assert.equal(ofType(result, "forget")[0].approval, "required");
    assert.deepEqual(ofType(result, "prune").map((p) => p.reason), [
      "after forgetting 8 snapshots; 8 of 11 snapshots (73%) in local forgotten since the last prune " +
      "2026-11-21T09:00:00Z (1h ago)",
    ]);
    // Forgets since the last prune add up: 10 before and 1 now are 11 of 21 (52%); 8 and 1 (9 of 19) are not.
    const many = state([
      { type: "prune", repository: "local", at: ago(hour) },
      { type: "forget", repository: "local", at: ago(minute), forgotten: 10 },
    ]);
    assert.deepEqual(ofType(planAt(loaded, many), "prune").map((p) => p.reason), [
      "after forgetting 1 snapshot; 11 of 21 snapshots (52%) in local forgotten since the last prune " +
      "2026-11-21T09:00:00Z (1h ago)",
    ]);
    const fewer = state([
      { type: "prune", repository: "local", at: ago(hour) },
      { type: "forget", repository: "local", at: ago(minute), forgotten: 8 },
    ]);
    assert.deepEqual(ofType(planAt(loaded, fewer), "prune"), []);
  });

  it("plans the first prune after the first forget of a repository never pruned", () => {
    const observed = state([]);
    assert.deepEqual(ofType(planAt(loaded, observed), "prune").map((p) => p.reason), [
      "after forgetting 1 snapshot; never pruned before",
    ]);
  });

  it("plans an interrupted prune again, whatever the cadence and the share say", () => {
    const observed = state([
      { type: "prune", repository: "local", at: ago(2 * day) },
      { type: "forget", repository: "local", at: ago(day), forgotten: 1 },
      { type: "prune_attempt", repository: "local", at: ago(day - minute) },
    ], perMinute(10));
    assert.deepEqual(ofType(planAt(loaded, observed), "prune").map((p) => p.reason), [
      "snapshots were forgotten at 2026-11-20T10:00:00Z and not pruned since (the prune after them failed or was " +
      "interrupted)",
    ]);
  });

  it("a minutely project keeping its last 60 is pruned about once an hour, not every minute", () => {
    const config = loadedConfig({ app: minutely({ retention: { last: 60 } }) });
    let lastPrune = ago(day);
    let forgotten = 0;
    let prunes = 0;
    const start = Date.parse(NOW);
    for (let m = 0; m < 24 * 60; m++) {
      const now = new Date(start + m * minute).toISOString();
      const snapshots = Array.from(
        { length: 61 },
        (_, i) =>
          snap(
            "local",
            `ab${String(m).padStart(4, "0")}${String(i).padStart(2, "0")}`,
            new Date(start + (m - i) * minute).toISOString(),
            "app",
            "app",
          ),
      );
      const observed = observedState({
        backups: [record("app", "app", now)],
        snapshots,
        retention: [applied({ last: 60 }, "app", "app")],
        maintenance: [
          { type: "prune", repository: "local", at: lastPrune },
          ...(forgotten ? [{ type: "forget" as const, repository: "local", at: now, forgotten }] : []),
        ],
      });
      const result = planAt(config, observed, now);
      assert.equal(ofType(result, "forget")[0]?.snapshots?.length, 1, now);
      if (ofType(result, "prune").length > 0) {
        prunes++;
        lastPrune = now;
        forgotten = 0;
      } else forgotten++;
    }
    assert.ok(prunes >= 20 && prunes <= 25, `${prunes} prunes in a day`);
  });
});
