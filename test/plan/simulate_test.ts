/**
 * The retention simulation, pure (src/plan/simulate.ts): the horizon's syntax, the replay of a schedule's backups
 * under a policy (counts, rules, oldest restore point, checkpoints), today's snapshots taken as the start, and the
 * storage estimate. test/e2e/simulate_test.ts checks the same against restic replaying real applies.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { files } from "../../src/config/helpers.ts";
import { formatHorizon, parseHorizon, simulateGroup, simulateProjects } from "../../src/plan/simulate.ts";
import { loadedConfig } from "../support/plan-fixtures.ts";

const day = 86_400_000;
const now = new Date("2026-11-01T12:00:00Z");

function project(retention: Record<string, number>, schedule = "0 3 * * *") {
  const loaded = loadedConfig({
    app: { schedule, sources: [files({ paths: ["/srv/app"] })], repositories: ["local"], retention },
  });
  return loaded.config.projects.app;
}

describe("retention simulation", () => {
  it("reads horizons up to 10 years, y being 365 days", () => {
    assert.equal(parseHorizon("1y"), 365 * day);
    assert.equal(parseHorizon("2y6w"), 2 * 365 * day + 42 * day);
    assert.equal(parseHorizon("90d"), 90 * day);
    assert.equal(parseHorizon("10y"), 3650 * day);
    for (const bad of ["11y", "0d", "forever", "y", "1y1", ""]) assert.equal(parseHorizon(bad), undefined, bad);
    assert.equal(formatHorizon(365 * day), "1y");
    assert.equal(formatHorizon(20 * day), "20d");
  });

  it("replays the schedule's backups under the policy: what is kept at each checkpoint and why", () => {
    const result = simulateGroup(project({ last: 3 }), { source: "files", repository: "local" }, [], now, 10 * day);
    assert.equal(result.backups, 10, "one backup a day at 03:00 for 10 days");
    // An apply forgets over the snapshots it finds, then backs up: between applies a group holds one more than the
    // policy keeps (the newest is counted at the next apply), as restic does after the same applies.
    assert.deepEqual(result.points.map((p) => `${p.label} ${p.kept}`), ["now 0", "after 7d 4", "after 10d 4"]);
    const end = result.points.at(-1)!;
    assert.deepEqual(end.byRule, { "last snapshot": 3 }, "retention now would keep three of the four");
    assert.equal(end.oldest, "2026-11-08T03:00:00.000Z", "the 8th to the 11th");
  });

  it("starts from today's snapshots and keeps the newest of each bucket", () => {
    const today = Array.from({ length: 10 }, (_, i) => ({
      id: `s${i}`,
      time: new Date(now.getTime() - (i + 1) * day).toISOString(),
    }));
    const result = simulateGroup(
      project({ daily: 5, weekly: 3 }),
      { source: "files", repository: "local" },
      today,
      now,
      30 * day,
    );
    assert.equal(result.points[0].kept, 10, "now: what there is, before any forget");
    const end = result.points.at(-1)!;
    assert.equal(end.byRule["daily snapshot"], 5);
    assert.equal(end.byRule["weekly snapshot"], 3);
    // 5 days, plus the weeks before them that hold a snapshot of their own.
    assert.ok(end.kept >= 5 && end.kept <= 8, String(end.kept));
    assert.ok(Date.parse(end.oldest!) < now.getTime() + 30 * day - 5 * day);
  });

  it("estimates storage from the history: the full size once, a typical addition per further snapshot", () => {
    const loaded = loadedConfig({
      app: {
        schedule: "0 3 * * *",
        sources: [files({ paths: ["/srv/app"] })],
        repositories: ["local"],
        retention: { last: 4 },
      },
    });
    const bytes = new Map([["app\u0000files\u0000local", { full: 1_000_000, typical: 10_000 }]]);
    const [group] = simulateProjects(Object.values(loaded.config.projects), [], now, 7 * day, bytes);
    const end = group.points.at(-1)!;
    assert.equal(end.kept, 5);
    assert.equal(end.storageBytes, 1_000_000 + 4 * 10_000);
    assert.equal(group.points[0].storageBytes, undefined, "nothing kept yet: no estimate");
  });
});
