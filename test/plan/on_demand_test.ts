/**
 * Unit tests of the on-demand plans (src/plan/planner.ts, `onDemand`): `backup` backs up every selected source now,
 * whatever the schedule, with the copies that follow and nothing else; `forget` plans only retention and its prunes.
 * And the schedule after a backup made outside it: a success at 10:17 covers the 10:00 slot, never the 11:00 one.
 * Runs under `deno test -A test/plan/on_demand_test.ts` and `bun --no-install test ./test/plan/on_demand_test.ts`.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { files, postgres } from "../../src/config/helpers.ts";
import { type OnDemand, plan } from "../../src/plan/planner.ts";
import {
  applied,
  at,
  daily,
  loadedConfig,
  NOW,
  observedState,
  type Raw,
  readable,
  record,
} from "../support/plan-fixtures.ts";
import type { ObservedState } from "../../src/plan/types.ts";

/** shop: a postgres source and files, hourly, backed up to local and copied to offsite and archive. */
function shop(changes: Raw = {}): Raw {
  return {
    schedule: "0 * * * *",
    sources: [postgres({ database: "shop" }), files({ paths: ["/srv/uploads"] })],
    repositories: ["local", "offsite", "archive"],
    retention: { last: 2 },
    ...changes,
  };
}

const loaded = loadedConfig({ shop: shop(), blog: { ...shop(), repositories: ["local"] } });

function planned(observed: ObservedState, onDemand?: OnDemand, now = NOW, projects = ["shop"]) {
  return readable(plan(loaded, observed, at(now), { projects, generatedAt: at(NOW), onDemand }));
}

const summary = (actions: { type: string; source?: string; repository?: string }[]) =>
  actions.map((a) => [a.type, a.source ?? null, a.repository].join(" "));

/** shop fully backed up at 10:00 (NOW) everywhere, with three snapshots of each source in each repository. */
function upToDate(): ObservedState {
  const repositories = ["local", "offsite", "archive"];
  return observedState({
    backups: ["shop", "files"].map((source) => record("shop", source, NOW)),
    snapshots: repositories.flatMap((repository) =>
      ["shop", "files"].flatMap((source) => daily(repository, `${repository[0]}${source[0]}`, [18, 19, 20]))
        .map((s, i) => ({ ...s, source: i < 3 ? "shop" : "files", tags: [] }))
    ),
    retention: repositories.flatMap((repository) =>
      ["shop", "files"].map((source) => applied({ last: 2 }, "shop", source, repository))
    ),
  });
}

describe("on-demand plans", () => {
  it("the scheduled plan has nothing to back up; backup now backs up every source and copies to each other repository", () => {
    const observed = upToDate();
    const scheduled = planned(observed);
    assert.equal(scheduled.summary.backup, 0);
    assert.ok(scheduled.summary.forget > 0, "retention drops the oldest of three in the scheduled plan");
    const now = planned(observed, { command: "backup" });
    assert.deepEqual(summary(now.actions), [
      "backup shop local",
      "backup files local",
      "copy shop offsite",
      "copy files offsite",
      "copy shop archive",
      "copy files archive",
    ]);
    assert.equal(now.summary.forget, 0, "backup never forgets");
    assert.match(now.actions[0].reason, /^on demand \(backupctl backup\); the schedule 0 \* \* \* \* is unchanged/);
    assert.match(now.actions[0].reason, /next due 2026-11-21T11:00:00Z$/);
    assert.deepEqual(now.next_due, scheduled.next_due, "the next due time is the schedule's");
  });

  it("--source and --repository narrow the backups and the copies; the backup always goes to the first repository", () => {
    const observed = upToDate();
    assert.deepEqual(summary(planned(observed, { command: "backup", sources: ["files"] }).actions), [
      "backup files local",
      "copy files offsite",
      "copy files archive",
    ]);
    assert.deepEqual(summary(planned(observed, { command: "backup", repositories: ["archive"] }).actions), [
      "backup shop local",
      "backup files local",
      "copy shop archive",
      "copy files archive",
    ]);
    assert.deepEqual(summary(planned(observed, { command: "backup", repositories: ["local"] }).actions), [
      "backup shop local",
      "backup files local",
    ]);
  });

  it("initializes only the repositories the backup and its copies use", () => {
    const observed = { ...upToDate(), repositories: {} };
    const inits = (demand: OnDemand) =>
      planned(observed, demand).actions.filter((a) => a.type === "init").map((a) => a.repository);
    assert.deepEqual(inits({ command: "backup", repositories: ["local"] }), ["local"]);
    assert.deepEqual(inits({ command: "backup", repositories: ["offsite"] }), ["local", "offsite"]);
    assert.deepEqual(inits({ command: "forget" }), []);
  });

  it("forget now plans retention's forgets (with their approval) and the prunes after them, nothing else", () => {
    const observed = upToDate();
    const forget = planned(observed, { command: "forget" });
    assert.deepEqual(
      forget.actions.map((a) => [a.type, a.repository, a.approval ?? null]),
      [
        ...["local", "offsite", "archive"].flatMap((r) => [["forget", r, "routine"], ["forget", r, "routine"]]),
        ["prune", "local", null],
        ["prune", "offsite", null],
        ["prune", "archive", null],
      ],
    );
    const changed = planned({ ...observed, retention: [] }, { command: "forget" });
    assert.ok(changed.actions.filter((a) => a.type === "forget").every((a) => a.approval === "required"));
  });

  it("forget --prune prunes every repository of the project even when nothing is forgotten now", () => {
    const observed = { ...upToDate(), snapshots: [] };
    assert.deepEqual(planned(observed, { command: "forget" }).actions, []);
    assert.deepEqual(
      planned(observed, { command: "forget", prune: true }).actions.map((a) => [a.type, a.repository, a.reason]),
      ["local", "offsite", "archive"].map((r) => [
        "prune",
        r,
        "requested (forget --prune): frees the space of snapshots forgotten before",
      ]),
    );
  });

  it("a backup at 10:17 covers the 10:00 slot, not the 11:00 one, and makes nothing overdue", () => {
    const before = observedState({ backups: ["shop", "files"].map((s) => record("shop", s, "2026-11-21T09:00:00Z")) });
    assert.equal(planned(before, undefined, "2026-11-21T10:17:00Z").summary.backup, 2, "10:00 is due at 10:17");
    const after = observedState({ backups: ["shop", "files"].map((s) => record("shop", s, "2026-11-21T10:17:00Z")) });
    const at1030 = planned(after, undefined, "2026-11-21T10:30:00Z");
    assert.equal(at1030.summary.backup, 0, "the manual backup covers the slot that had passed");
    assert.deepEqual(at1030.next_due, [{ project: "shop", at: "2026-11-21T11:00:00Z" }]);
    assert.deepEqual(at1030.overdue, []);
    const at1100 = planned(after, undefined, "2026-11-21T11:00:00Z");
    assert.equal(at1100.summary.backup, 2, "11:00 is due at 11:00 as if no manual backup had been made");
    assert.match(at1100.actions[0].reason, /^due since 2026-11-21T11:00:00Z/);
  });
});
