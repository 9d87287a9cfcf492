/**
 * Unit tests of the planner's rules beyond "is a backup due" (docs/planning.md): coalesced missed slots, jitter,
 * retention forgets and the destroy guard, maintenance cadence (prune, check, verify), overdue projects, "Not
 * managed", "dump once, send to many" (the copies that bring a project's later repositories up to its first one, and
 * the init of a copies-only repository with the chunker parameters of the one it copies from) and the order of
 * actions. Plain data in, plain data out: no processes, no clock, no state database.
 * Runs under `deno test -A test/plan/planner_rules_test.ts` and `bun --no-install test ./test/plan/planner_rules_test.ts`.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  ago,
  applied,
  at,
  daily,
  day,
  hour,
  iso,
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
import { files, pgbackrest, postgres, sqlite } from "../../src/config/helpers.ts";
import { jitterOffset, planToApply } from "../../src/plan/planner.ts";
import { pitrBackup } from "../support/golden.ts";
import { applyRetention, describePolicyChange } from "../../src/plan/retention.ts";
import { humanDuration } from "../../src/format/time.ts";
import type { InventorySnapshot, ObservedState, PlanAction } from "../../src/plan/types.ts";

/** A project with one postgres source "shop" backed up to local, daily at 03:00, keeping the last 2 snapshots. */
function shopProject(changes: Raw = {}): Raw {
  return {
    schedule: "0 3 * * *",
    sources: [postgres({ database: "shop" })],
    repositories: ["local"],
    retention: { last: 2 },
    ...changes,
  };
}

describe("plan rules: missed slots coalesce", () => {
  const hourly = loadedConfig({ shop: shopProject({ schedule: "@hourly" }) });

  it("plans one backup for five missed hourly slots and says how many it covers", () => {
    const observed = observedState({ backups: [record("shop", "shop", "2026-11-21T04:00:10Z")] });
    const result = planAt(hourly, observed, "2026-11-21T09:30:00Z");
    assert.deepEqual(result.actions, [{
      id: "a1",
      type: "backup",
      project: "shop",
      source: "shop",
      repository: "local",
      reason: "due since 2026-11-21T09:00:00Z (@hourly); 5 slots missed since the last success, one backup covers them",
      destructive: false,
    }]);
    assert.equal(result.summary.backup, 1);
  });

  it("has no suffix for a single missed slot", () => {
    const observed = observedState({ backups: [record("shop", "shop", "2026-11-21T08:00:10Z")] });
    const [action] = planAt(hourly, observed, "2026-11-21T09:30:00Z").actions;
    assert.equal(action.reason, "due since 2026-11-21T09:00:00Z (@hourly)");
  });

  it("counts the slot a success started exactly at as covered", () => {
    const observed = observedState({ backups: [record("shop", "shop", "2026-11-21T07:00:00Z")] });
    const [action] = planAt(hourly, observed, "2026-11-21T09:30:00Z").actions;
    assert.match(action.reason, /; 2 slots missed since the last success, one backup covers them$/);
  });

  it("says 7 slots after a week without daily backups, before the failed attempt", () => {
    const loaded = loadedConfig({ shop: shopProject() });
    const observed = observedState({
      backups: [record("shop", "shop", "2026-11-14T03:00:10Z")],
      failures: [record("shop", "shop", "2026-11-21T03:00:05Z")],
    });
    const result = planAt(loaded, observed);
    assert.equal(result.actions.length, 1);
    assert.equal(
      result.actions[0].reason,
      "due since 2026-11-21T03:00:00Z (0 3 * * *); 7 slots missed since the last success, one backup covers them" +
        "; last attempt failed at 2026-11-21T03:00:05Z",
    );
  });
});

describe("plan rules: jitter", () => {
  const loaded = loadedConfig({
    shop: shopProject({ jitter: "30m" }),
    blog: shopProject({ jitter: "30m", sources: [sqlite({ path: "/srv/blog.db" })] }),
    plain: shopProject({ sources: [sqlite({ path: "/srv/plain.db" })] }),
  });
  const { shop, blog } = loaded.config.projects;
  const offset = jitterOffset(shop);
  const slot = Date.parse("2026-11-21T03:00:00Z");

  it("is a fixed offset in [0, 30m) per project name, different for two names, 0 without jitter", () => {
    assert.equal(jitterOffset(shop), offset);
    assert.equal(jitterOffset(structuredClone(shop)), offset);
    assert.notEqual(jitterOffset(blog), offset);
    for (const name of ["shop", "blog", "a", "b", "crm", "wiki", "x".repeat(64)]) {
      const value = jitterOffset({ ...shop, name });
      assert.ok(Number.isInteger(value) && value >= 0 && value < 30 * minute, `${name}: ${value}`);
    }
    assert.ok(offset > 0, "the test below needs a non-zero offset for shop");
    assert.equal(jitterOffset(loaded.config.projects.plain), 0);
    assert.ok(jitterOffset({ ...shop, jitter: "1h" }) < hour);
  });

  it("is not due between the slot and slot + offset, and due from then on with the jitter in the reason", () => {
    const observed = observedState({ backups: [record("shop", "shop", "2026-11-20T03:25:00Z")] });
    const exact = (ms: number) => new Date(ms).toISOString();
    for (const now of [slot, slot + 1000, slot + offset - 1]) {
      const result = planAt(loaded, observed, exact(now), ["shop"]);
      assert.deepEqual(result.actions, [], exact(now));
      assert.deepEqual(result.next_due, [{ project: "shop", at: iso(slot + offset) }], exact(now));
    }
    for (const now of [slot + offset, slot + offset + hour]) {
      const result = planAt(loaded, observed, exact(now), ["shop"]);
      assert.equal(result.actions.length, 1, exact(now));
      assert.equal(
        result.actions[0].reason,
        `due since ${iso(slot + offset)} (0 3 * * *, jitter +${humanDuration(offset)})`,
      );
      assert.match(result.actions[0].reason, /, jitter \+\d+m \d+s\)$/);
    }
  });

  it("gives the same plan twice, and includes the offset in next_due", () => {
    const observed = observedState({
      backups: [record("shop", "shop", "2026-11-21T03:30:00Z"), record("blog", "blog", "2026-11-21T03:30:00Z")],
    });
    const first = planAt(loaded, observed, NOW, ["shop", "blog"]);
    assert.deepEqual(planAt(loaded, observed, NOW, ["shop", "blog"]), first);
    assert.deepEqual(first.next_due, [
      { project: "shop", at: iso(slot + day + offset) },
      { project: "blog", at: iso(slot + day + jitterOffset(blog)) },
    ]);
    assert.notEqual(first.next_due[0].at, first.next_due[1].at);
  });
});

describe("plan rules: forget", () => {
  const loaded = loadedConfig({ shop: shopProject() });
  /** local: five daily snapshots of shop/shop, the newest (2026-11-21) from the last successful backup. */
  const five = daily("local", "aa", [17, 18, 19, 20, 21]);
  const base = {
    backups: [record("shop", "shop", "2026-11-21T03:00:00Z")],
    snapshots: five,
    retention: [applied({ last: 2 })],
  };

  it("forgets the ids retention drops, newest first, as a routine forget followed by a prune", () => {
    const result = planAt(loaded, observedState(base));
    const forget: PlanAction = {
      id: "a1",
      type: "forget",
      project: "shop",
      source: "shop",
      repository: "local",
      snapshots: ["aa000019", "aa000018", "aa000017"],
      destructive: true,
      approval: "routine",
      reason: "retention last 2 keeps 2 of 5 snapshots",
    };
    assert.deepEqual(result.actions, [
      forget,
      {
        id: "a2",
        type: "prune",
        repository: "local",
        reason: "after forgetting 3 snapshots; never pruned before",
        destructive: false,
      },
    ]);
    assert.deepEqual(forget.snapshots, applyRetention(five, { last: 2 }).forget);
    assert.equal(result.summary.forget, 3);
    assert.equal(result.summary.prune, 1);
  });

  it("never forgets the newest snapshot of a group, whatever the policy", () => {
    for (const retention of [{ last: 1 }, { daily: 1 }, { within: "1h" }, { withinDaily: "1d" }, { yearly: 1 }]) {
      const config = loadedConfig({ shop: shopProject({ retention }) });
      const observed = observedState({ ...base, retention: [applied(retention)] });
      const [forget] = ofType(planAt(config, observed), "forget");
      assert.deepEqual(forget.snapshots, ["aa000020", "aa000019", "aa000018", "aa000017"], JSON.stringify(retention));
    }
  });

  it("counts only complete snapshots: an incomplete or pending newest one neither counts nor lets the last complete one go", () => {
    // The crash-then-failure case: one good snapshot, then the newer incomplete one a killed run left.
    for (const state of ["incomplete", "pending"] as const) {
      const config = loadedConfig({ shop: shopProject({ retention: { last: 1 } }) });
      const good = { ...snap("local", "aa000021", "2026-11-21T03:00:05Z"), state: "complete" as const };
      const cut = { ...snap("local", "cc000001", "2026-11-21T15:00:05Z"), state };
      const observed = observedState({ ...base, snapshots: [good, cut], retention: [applied({ last: 1 })] });
      assert.deepEqual(ofType(planAt(config, observed, "2026-11-21T16:00:00Z"), "forget"), [], state);
    }
    // Among five complete and two incomplete ones, retention keeps its `last 2` of the complete ones only.
    const states = five.map((s) => ({ ...s, state: "complete" as const }));
    const cut = [
      { ...snap("local", "cc000001", "2026-11-20T12:00:00Z"), state: "incomplete" as const },
      { ...snap("local", "cc000002", "2026-11-21T12:00:00Z"), state: "incomplete" as const },
    ];
    const observed = observedState({ ...base, snapshots: [...states, ...cut] });
    const [forget] = ofType(planAt(loaded, observed, "2026-11-21T16:00:00Z"), "forget");
    assert.deepEqual(forget.snapshots, ["aa000019", "aa000018", "aa000017"]);
    assert.equal(forget.reason, "retention last 2 keeps 2 of 5 snapshots (2 incomplete or unfinished not counted)");
    // Adopted snapshots (made by a run this state does not know) count like complete ones.
    const adopted = observedState({ ...base, snapshots: five.map((s) => ({ ...s, state: "adopted" as const })) });
    assert.deepEqual(ofType(planAt(loaded, adopted), "forget")[0].snapshots, ["aa000019", "aa000018", "aa000017"]);
  });

  it("plans a prune again when snapshots were forgotten and the prune after them never succeeded", () => {
    const observed = (maintenance: { type: string; repository: string; at: string }[]) =>
      observedState({ ...base, snapshots: five.slice(3), maintenance } as Parameters<typeof observedState>[0]);
    const interrupted = observed([
      { type: "prune", repository: "local", at: "2026-11-19T03:10:00Z" },
      { type: "forget", repository: "local", at: "2026-11-21T03:05:00Z" },
      { type: "prune_attempt", repository: "local", at: "2026-11-21T03:06:00Z" },
    ]);
    const [prune] = ofType(planAt(loaded, interrupted), "prune");
    assert.match(prune.reason, /^snapshots were forgotten at 2026-11-21T03:05:00Z and not pruned since/);
    // A forget not followed by a failed prune (a recovered partial snapshot) plans none; nor does a prune that succeeded.
    const noAttempt = observed([
      { type: "prune", repository: "local", at: "2026-11-19T03:10:00Z" },
      { type: "forget", repository: "local", at: "2026-11-21T03:05:00Z" },
      { type: "prune_attempt", repository: "local", at: "2026-11-19T03:10:00Z" },
    ]);
    assert.deepEqual(ofType(planAt(loaded, noAttempt), "prune"), []);
  });

  it("gives apply each prune's trigger, and keeps it out of the plan document", () => {
    const triggers = (observed: ObservedState, config = loaded) =>
      planToApply(config, observed, at(NOW), { generatedAt: at(NOW) }).actions
        .flatMap((action) => action.type === "prune" ? [action.trigger] : []);
    // Due only because of this plan's forgets: apply skips it when none of them ran.
    assert.deepEqual(triggers(observedState(base)), ["after-forget"]);
    const unfinished = observedState({
      ...base,
      snapshots: five.slice(3),
      maintenance: [
        { type: "prune", repository: "local", at: "2026-11-19T03:10:00Z" },
        { type: "forget", repository: "local", at: "2026-11-21T03:05:00Z" },
        { type: "prune_attempt", repository: "local", at: "2026-11-21T03:06:00Z" },
      ],
    });
    assert.deepEqual(triggers(unfinished), ["unfinished"]);
    const weekly = loadedConfig({ shop: shopProject({ prune: { every: "7d" } }) });
    const cadence = observedState({
      ...base,
      snapshots: five.slice(3),
      maintenance: [{ type: "prune", repository: "local", at: "2026-11-14T10:00:00Z" }],
    });
    assert.deepEqual(triggers(cadence, weekly), ["cadence"]);
    // Snapshots forgotten before this plan make it due whatever this plan forgets.
    const earlier = observedState({
      ...base,
      snapshots: five.slice(3),
      maintenance: [
        { type: "prune", repository: "local", at: "2026-11-10T03:10:00Z" },
        { type: "forget", repository: "local", at: "2026-11-12T03:05:00Z", forgotten: 6 },
      ],
    });
    assert.deepEqual(triggers(earlier), ["forgotten"]);
    const document = planAt(loaded, observedState(base));
    assert.ok(ofType(document, "prune").every((prune) => !("trigger" in prune)));
    assert.doesNotMatch(JSON.stringify(document), /trigger/);
  });

  it("keeps snapshots newer than the group's last successful backup (a failed or unfinished run's)", () => {
    const observed = observedState({
      ...base,
      backups: [record("shop", "shop", "2026-11-19T03:00:00Z")],
      snapshots: [...five, snap("local", "bb000001", "2026-11-20T12:00:00Z")],
      retention: [applied({ last: 1 })],
    });
    const config = loadedConfig({ shop: shopProject({ retention: { last: 1 } }) });
    const [forget] = ofType(planAt(config, observed), "forget");
    // 2026-11-19T03:00:05 is the last success's own snapshot (restic stamps it after the stage started).
    assert.deepEqual(forget.snapshots, ["aa000018", "aa000017"]);
    assert.equal(forget.reason, "retention last 1 keeps 4 of 6 snapshots");
  });

  it("keeps snapshots dated after now", () => {
    // No success record: only the "after now" rule protects the two future snapshots.
    const config = loadedConfig({ shop: shopProject({ retention: { last: 1 } }) });
    const observed = observedState({
      snapshots: [
        ...daily("local", "aa", [17, 18, 19]),
        snap("local", "cc000001", "2026-11-21T10:00:01Z"),
        snap("local", "cc000002", "2026-11-22T03:00:05Z"),
      ],
      retention: [applied({ last: 1 })],
    });
    const [forget] = ofType(planAt(config, observed), "forget");
    assert.deepEqual(applyRetention(observed.snapshots, { last: 1 }).forget, [
      "cc000001",
      "aa000019",
      "aa000018",
      "aa000017",
    ]);
    assert.deepEqual(forget.snapshots, ["aa000019", "aa000018", "aa000017"]);
  });

  it("plans nothing when retention keeps everything, or a group has a single snapshot", () => {
    const keepAll = loadedConfig({ shop: shopProject({ retention: { last: 10 } }) });
    const observed = observedState({ ...base, retention: [applied({ last: 10 })] });
    assert.deepEqual(planAt(keepAll, observed).actions, []);
    const single = observedState({ ...base, snapshots: daily("local", "aa", [21]) });
    assert.deepEqual(planAt(loaded, single).actions, []);
  });

  it("makes one group per repository: the same project and source in two repositories gives two forgets", () => {
    const config = loadedConfig({ shop: shopProject({ repositories: ["local", "offsite"] }) });
    const observed = observedState({
      ...base,
      snapshots: [...five, ...daily("offsite", "bb", [19, 20, 21])],
      retention: [applied({ last: 2 }), applied({ last: 2 }, "shop", "shop", "offsite")],
    });
    const result = planAt(config, observed);
    assert.deepEqual(
      result.actions.map((a) => [a.id, a.type, a.repository, a.snapshots ?? [], a.approval ?? ""]),
      [
        // offsite's bb… snapshots are not copies of local's (no original): the two local keeps are copied there.
        ["a1", "copy", "offsite", ["aa000020", "aa000021"], ""],
        ["a2", "forget", "local", ["aa000019", "aa000018", "aa000017"], "routine"],
        ["a3", "forget", "offsite", ["bb000019"], "routine"],
        ["a4", "prune", "local", [], ""],
        ["a5", "prune", "offsite", [], ""],
      ],
    );
    assert.equal(result.actions[0].reason, "copy 2 snapshots it lacks from local");
    assert.equal(result.actions[4].reason, "after forgetting 1 snapshot; never pruned before");
    assert.equal(result.summary.forget, 4);
  });

  it("touches neither foreign snapshots nor other projects' nor undeclared sources'", () => {
    const config = loadedConfig({
      shop: shopProject(),
      blog: shopProject({ sources: [sqlite({ path: "/srv/blog.db" })], retention: { last: 10 } }),
    });
    const observed = observedState({
      ...base,
      backups: [...base.backups, record("blog", "blog", "2026-11-21T03:00:00Z")],
      snapshots: [
        ...five,
        ...daily("local", "f0", [10, 11, 12], null, null),
        ...daily("local", "b1", [15, 16, 17, 18], "blog", "blog"),
        ...daily("local", "e1", [15, 16, 17, 18], "legacy", "shop"),
        ...daily("local", "d1", [15, 16, 17, 18], "shop", "olddb"),
      ],
      retention: [applied({ last: 2 }), applied({ last: 10 }, "blog", "blog")],
    });
    const forgets = ofType(planAt(config, observed), "forget");
    assert.deepEqual(forgets.map((f) => f.snapshots), [["aa000019", "aa000018", "aa000017"]]);
  });

  it("needs approval, naming the change, when the policy differs from the one last applied", () => {
    const observed = observedState({ ...base, retention: [applied({ last: 5, weekly: 4 })] });
    const [forget] = ofType(planAt(loaded, observed), "forget");
    assert.equal(forget.approval, "required");
    const change = describePolicyChange({ last: 5, weekly: 4 }, { last: 2 });
    assert.equal(change, "last 5 → 2, weekly 4 → none");
    assert.equal(forget.approval_reason, `retention changed (${change})`);
    assert.equal(forget.destructive, true);
    assert.deepEqual(forget.snapshots, ["aa000019", "aa000018", "aa000017"]);
  });

  it("needs approval when the group was never under a policy of this state", () => {
    for (
      const retention of [[], [applied({ last: 2 }, "shop", "shop", "offsite")], [applied({ last: 2 }, "blog")]]
    ) {
      const [forget] = ofType(planAt(loaded, observedState({ ...base, retention })), "forget");
      assert.equal(forget.approval, "required", JSON.stringify(retention));
      assert.match(forget.approval_reason ?? "", /never applied/);
      assert.equal(
        forget.approval_reason,
        "retention was never applied to these snapshots by this state (adopted repository or new state)",
      );
    }
  });

  it("compares policies by their effect: minSnapshots and spelling do not make a change", () => {
    const config = loadedConfig({ shop: shopProject({ retention: { last: 2, within: "0y0m0d0h", minSnapshots: 1 } }) });
    const [forget] = ofType(planAt(config, observedState(base)), "forget");
    assert.equal(forget.approval, "routine");
    assert.equal("approval_reason" in forget, false);
  });

  it("needs approval when the forget would leave fewer than minSnapshots, even under the same policy", () => {
    const config = loadedConfig({ shop: shopProject({ retention: { last: 2, minSnapshots: 3 } }) });
    const [forget] = ofType(planAt(config, observedState(base)), "forget");
    assert.equal(forget.approval, "required");
    assert.equal(forget.approval_reason, "it would leave 2 snapshots, below minSnapshots 3");
    assert.match(forget.approval_reason ?? "", /below minSnapshots/);

    const atFloor = loadedConfig({ shop: shopProject({ retention: { last: 2, minSnapshots: 2 } }) });
    assert.equal(ofType(planAt(atFloor, observedState(base)), "forget")[0].approval, "routine");
  });

  it("gives every reason when several apply", () => {
    const config = loadedConfig({ shop: shopProject({ retention: { last: 2, minSnapshots: 4 } }) });
    const observed = observedState({ ...base, retention: [applied({ last: 3 })] });
    const [forget] = ofType(planAt(config, observed), "forget");
    assert.equal(
      forget.approval_reason,
      "retention changed (last 3 → 2); it would leave 2 snapshots, below minSnapshots 4",
    );
  });

  it("leaves disabled projects and projects outside the filter alone", () => {
    const config = loadedConfig({
      shop: shopProject({ enabled: false }),
      blog: shopProject({ sources: [sqlite({ path: "/srv/blog.db" })] }),
    });
    const observed = observedState({
      ...base,
      snapshots: [...five, ...daily("local", "b1", [15, 16, 17, 18], "blog", "blog")],
      backups: [...base.backups, record("blog", "blog", "2026-11-21T03:00:00Z")],
      retention: [applied({ last: 2 }), applied({ last: 2 }, "blog", "blog")],
    });
    assert.deepEqual(ofType(planAt(config, observed), "forget").map((f) => f.project), ["blog"]);
    assert.deepEqual(ofType(planAt(config, observed, NOW, ["shop"]), "forget"), []);
  });
});

describe("plan rules: prune", () => {
  const weekly = loadedConfig({ shop: shopProject({ prune: { every: "7d" } }) });
  const success = { backups: [record("shop", "shop", "2026-11-21T03:00:00Z")] };

  it("adds up the snapshots forgotten in a repository across groups", () => {
    const loaded = loadedConfig({
      shop: shopProject({ sources: [postgres({ database: "shop" }), files({ paths: ["/srv"] })] }),
    });
    const observed = observedState({
      backups: [record("shop", "shop", "2026-11-21T03:00:00Z"), record("shop", "files", "2026-11-21T03:00:00Z")],
      snapshots: [...daily("local", "aa", [18, 19, 20, 21]), ...daily("local", "bb", [19, 20, 21], "shop", "files")],
      retention: [applied({ last: 2 }), applied({ last: 2 }, "shop", "files")],
    });
    assert.deepEqual(ofType(planAt(loaded, observed), "prune"), [
      {
        id: "a3",
        type: "prune",
        repository: "local",
        reason: "after forgetting 3 snapshots; never pruned before",
        destructive: false,
      },
    ]);
  });

  it("is planned when prune.every has passed since the last prune", () => {
    const observed = observedState({
      ...success,
      maintenance: [{ type: "prune", repository: "local", at: ago(7 * day) }],
    });
    assert.deepEqual(planAt(weekly, observed).actions, [{
      id: "a1",
      type: "prune",
      repository: "local",
      reason: "last prune 2026-11-14T10:00:00Z (7d ago), every 7d",
      destructive: false,
    }]);
  });

  it("is planned when prune.every has passed since the initialization and the repository was never pruned", () => {
    const observed = observedState({
      ...success,
      repositories: { local: { initialized: true, initializedAt: ago(8 * day) } },
      maintenance: [{ type: "check", repository: "local", at: ago(hour) }],
    });
    const prunes = ofType(planAt(weekly, observed), "prune");
    assert.equal(prunes.length, 1);
    assert.equal(prunes[0].repository, "local");
    assert.match(prunes[0].reason, /2026-11-13T10:00:00Z \(8d ago\), every 7d$/);
  });

  it("is not planned before prune.every has passed, nor without prune.every and forgets", () => {
    const recent = observedState({
      ...success,
      repositories: { local: { initialized: true, initializedAt: ago(30 * day) } },
      maintenance: [{ type: "prune", repository: "local", at: ago(7 * day - 1000) }],
    });
    assert.deepEqual(ofType(planAt(weekly, recent), "prune"), []);
    const recentInit = observedState({
      ...success,
      repositories: { local: { initialized: true, initializedAt: ago(6 * day) } },
    });
    assert.deepEqual(ofType(planAt(weekly, recentInit), "prune"), []);
    const noCadence = loadedConfig({ shop: shopProject() });
    const old = observedState({
      ...success,
      maintenance: [{ type: "prune", repository: "local", at: ago(365 * day) }],
    });
    assert.deepEqual(ofType(planAt(noCadence, old), "prune"), []);
  });

  it("plans a single prune per repository when forgets and the cadence both call for one", () => {
    const observed = observedState({
      ...success,
      snapshots: daily("local", "aa", [18, 19, 20, 21]),
      retention: [applied({ last: 2 })],
      maintenance: [{ type: "prune", repository: "local", at: ago(30 * day) }],
    });
    // The cadence the config sets wins: that prune runs even if the forgets are held.
    assert.deepEqual(ofType(planAt(weekly, observed), "prune").map((p) => p.reason), [
      "last prune 2026-10-22T10:00:00Z (30d ago), every 7d",
    ]);
  });

  it("uses the shortest prune.every of the projects sharing the repository", () => {
    const loaded = loadedConfig({
      shop: shopProject({ prune: { every: "30d" } }),
      blog: shopProject({ sources: [sqlite({ path: "/srv/blog.db" })], prune: { every: "2d" } }),
    });
    const observed = observedState({
      backups: [record("shop", "shop", "2026-11-21T03:00:00Z"), record("blog", "blog", "2026-11-21T03:00:00Z")],
      maintenance: [{ type: "prune", repository: "local", at: ago(3 * day) }],
    });
    assert.deepEqual(ofType(planAt(loaded, observed), "prune").map((p) => p.reason), [
      "last prune 2026-11-18T10:00:00Z (3d ago), every 2d",
    ]);
  });
});

describe("plan rules: check", () => {
  const success = { backups: [record("shop", "shop", "2026-11-21T03:00:00Z")] };
  const initialized = (ms: number) => ({ local: { initialized: true, initializedAt: ago(ms) } });

  it("is planned by default every 7d since the initialization", () => {
    const loaded = loadedConfig({ shop: shopProject() });
    assert.deepEqual(planAt(loaded, observedState({ ...success, repositories: initialized(7 * day) })).actions, [{
      id: "a1",
      type: "check",
      repository: "local",
      reason: "never checked since initialization 2026-11-14T10:00:00Z (7d ago), every 7d",
      destructive: false,
    }]);
    const young = observedState({ ...success, repositories: initialized(7 * day - 1000) });
    assert.deepEqual(planAt(loaded, young).actions, []);
  });

  it("is planned by default every 7d since the last check, which wins over the initialization", () => {
    const loaded = loadedConfig({ shop: shopProject() });
    const checked = (ms: number) =>
      observedState({
        ...success,
        repositories: initialized(100 * day),
        maintenance: [{ type: "check", repository: "local", at: ago(ms) }],
      });
    assert.deepEqual(planAt(loaded, checked(3 * day)).actions, []);
    assert.deepEqual(ofType(planAt(loaded, checked(8 * day)), "check").map((c) => c.reason), [
      "last check 2026-11-13T10:00:00Z (8d ago), every 7d",
    ]);
  });

  it("reads a data subset when asked, and says so", () => {
    const loaded = loadedConfig({ shop: shopProject({ check: { every: "1d", readDataSubset: "5%" } }) });
    const observed = observedState({
      ...success,
      repositories: initialized(30 * day),
      maintenance: [{ type: "check", repository: "local", at: ago(day) }],
    });
    assert.deepEqual(planAt(loaded, observed).actions, [{
      id: "a1",
      type: "check",
      repository: "local",
      reason: "last check 2026-11-20T10:00:00Z (1d ago), every 1d, reading 5% of the data",
      destructive: false,
      read_data_subset: "5%",
    }]);
    const withoutSubset = loadedConfig({ shop: shopProject({ check: { every: "1d" } }) });
    const [check] = planAt(withoutSubset, observed).actions;
    assert.equal("read_data_subset" in check, false);
    assert.equal(check.reason, "last check 2026-11-20T10:00:00Z (1d ago), every 1d");
  });

  it("uses the shortest check.every of the projects sharing a repository", () => {
    const loaded = loadedConfig({
      shop: shopProject({ check: { every: "14d" } }),
      blog: shopProject({ sources: [sqlite({ path: "/srv/blog.db" })], check: { every: "2d" } }),
      wiki: shopProject({ sources: [sqlite({ path: "/srv/wiki.db" })], repositories: ["archive"] }),
    });
    const observed = observedState({
      backups: ["shop", "blog", "wiki"].map((p) =>
        record(p, p, "2026-11-21T03:00:00Z", p === "wiki" ? "archive" : "local")
      ),
      repositories: {
        local: { initialized: true, initializedAt: ago(100 * day) },
        archive: { initialized: true, initializedAt: ago(100 * day) },
      },
      maintenance: [
        { type: "check", repository: "local", at: ago(3 * day) },
        { type: "check", repository: "archive", at: ago(3 * day) },
      ],
    });
    assert.deepEqual(ofType(planAt(loaded, observed), "check").map((c) => [c.repository, c.reason]), [
      ["local", "last check 2026-11-18T10:00:00Z (3d ago), every 2d"],
    ]);
  });

  it("is never planned for a repository without an initialization time or a check record", () => {
    const loaded = loadedConfig({ shop: shopProject({ check: { every: "1d" } }) });
    assert.deepEqual(planAt(loaded, observedState(success)).actions, []);
    const notInitialized = observedState({ repositories: {} });
    assert.deepEqual(planAt(loaded, notInitialized).actions.map((a) => a.type), ["init", "backup"]);
    // A check record alone is enough to plan the next one.
    const checked = observedState({
      ...success,
      maintenance: [{ type: "check", repository: "local", at: ago(2 * day) }],
    });
    assert.deepEqual(ofType(planAt(loaded, checked), "check").length, 1);
  });
});

describe("plan rules: verify", () => {
  const loaded = loadedConfig({
    shop: shopProject({
      repositories: ["local", "offsite"],
      verify: { every: "7d", into: postgres({ database: "shop_drill" }) },
    }),
  });
  const success = { backups: [record("shop", "shop", "2026-11-21T03:00:00Z")] };

  it("is not planned before the project's first successful backup", () => {
    assert.deepEqual(ofType(planAt(loaded, observedState()), "verify"), []);
    const failedOnly = observedState({ failures: [record("shop", "shop", "2026-11-21T03:00:00Z")] });
    assert.deepEqual(ofType(planAt(loaded, failedOnly), "verify"), []);
    // A success in a later repository only does not count: drills restore from the first.
    const offsiteOnly = observedState({ backups: [record("shop", "shop", "2026-11-21T03:00:00Z", "offsite")] });
    assert.deepEqual(ofType(planAt(loaded, offsiteOnly), "verify"), []);
  });

  it("is planned after the first backup when there was never a drill", () => {
    assert.deepEqual(planAt(loaded, observedState(success)).actions, [{
      id: "a1",
      type: "verify",
      project: "shop",
      repository: "local",
      reason: "never restored in a drill",
      destructive: false,
    }]);
  });

  it("is planned when verify.every has passed since the last drill, and not before", () => {
    const drill = (ms: number) =>
      observedState({ ...success, maintenance: [{ type: "verify", project: "shop", at: ago(ms) }] });
    assert.deepEqual(ofType(planAt(loaded, drill(7 * day - 1000)), "verify"), []);
    assert.deepEqual(ofType(planAt(loaded, drill(7 * day)), "verify").map((v) => v.reason), [
      "last restore drill 2026-11-14T10:00:00Z (7d ago), every 7d",
    ]);
    // Another project's drill does not count.
    const other = observedState({ ...success, maintenance: [{ type: "verify", project: "blog", at: ago(hour) }] });
    assert.equal(ofType(planAt(loaded, other), "verify").length, 1);
  });

  it("is not planned for a project without verify", () => {
    const plainProject = loadedConfig({ shop: shopProject() });
    assert.deepEqual(ofType(planAt(plainProject, observedState(success)), "verify"), []);
  });
});

describe("plan rules: overdue", () => {
  it("lists a project whose last success is older than its maxAge", () => {
    const loaded = loadedConfig({ shop: shopProject({ maxAge: "1d" }) });
    const result = planAt(loaded, observedState({ backups: [record("shop", "shop", ago(2 * day))] }));
    assert.deepEqual(result.overdue, [{ project: "shop", last_success: "2026-11-19T10:00:00Z", max_age: "1d" }]);
    const fresh = planAt(loaded, observedState({ backups: [record("shop", "shop", ago(day))] }));
    assert.deepEqual(fresh.overdue, []);
  });

  it("defaults maxAge to twice the schedule's interval", () => {
    const daily = loadedConfig({ shop: shopProject() });
    assert.deepEqual(planAt(daily, observedState({ backups: [record("shop", "shop", ago(3 * day))] })).overdue, [
      { project: "shop", last_success: "2026-11-18T10:00:00Z", max_age: "2d" },
    ]);
    assert.deepEqual(planAt(daily, observedState({ backups: [record("shop", "shop", ago(1.5 * day))] })).overdue, []);
    const hourly = loadedConfig({ shop: shopProject({ schedule: "@hourly" }) });
    assert.deepEqual(planAt(hourly, observedState({ backups: [record("shop", "shop", ago(3 * hour))] })).overdue, [
      { project: "shop", last_success: "2026-11-21T07:00:00Z", max_age: "2h" },
    ]);
  });

  it("measures the default on the schedule around now: a weekday schedule is not overdue over the weekend", () => {
    const weekdays = loadedConfig({ shop: shopProject({ schedule: "0 3 * * 1-5" }) });
    const friday = observedState({ backups: [record("shop", "shop", "2026-11-20T03:00:10Z")] });
    // Sunday: the latest slot was Friday, the next is Monday (3 days), so maxAge is 6 days.
    const sunday = planAt(weekdays, friday, "2026-11-22T10:00:00Z");
    assert.deepEqual(sunday.actions, []);
    assert.deepEqual(sunday.overdue, []);
    // Wednesday with Monday's success: slots a day apart, maxAge 2 days, Tuesday's and Wednesday's slots missed.
    const monday = observedState({ backups: [record("shop", "shop", "2026-11-23T03:00:10Z")] });
    assert.deepEqual(planAt(weekdays, monday, "2026-11-25T10:00:00Z").overdue, [
      { project: "shop", last_success: "2026-11-23T03:00:10Z", max_age: "2d" },
    ]);
  });

  it("judges a project by its oldest source, and ignores sources never backed up and other repositories", () => {
    const loaded = loadedConfig({
      shop: shopProject({
        maxAge: "1d",
        repositories: ["local", "offsite"],
        sources: [postgres({ database: "shop" }), files({ paths: ["/srv"] }), sqlite({ path: "/srv/new.db" })],
      }),
    });
    const observed = observedState({
      backups: [
        record("shop", "shop", ago(hour)),
        record("shop", "files", ago(30 * hour)),
        record("shop", "shop", ago(100 * day), "offsite"),
      ],
    });
    assert.deepEqual(planAt(loaded, observed).overdue, [
      { project: "shop", last_success: "2026-11-20T04:00:00Z", max_age: "1d" },
    ]);
    assert.deepEqual(planAt(loaded, observedState()).overdue, []);
  });

  it("judges a pgbackrest() source by its newest backup beside the dumps, and names the older late one", () => {
    const loaded = loadedConfig({
      shop: shopProject({
        maxAge: "1d",
        sources: [
          postgres({ database: "shop" }),
          pgbackrest({
            stanza: "main",
            cluster: { dataDirectory: "/var/lib/postgresql/15/main" },
            repository: { path: "/srv/pgbackrest" },
            schedule: { full: "@weekly", incr: "@daily" },
          }),
        ],
      }),
    });
    const stanza = (start: string) => ({
      project: "shop",
      source: "main",
      archiveCommand: "pgbackrest archive-push %p",
      info: {
        stanza: "main",
        status: { code: 0, message: "ok" },
        backupRunning: false,
        cipher: "none",
        backups: [pitrBackup("20261101-000000F", "full", start, null)],
      },
    });
    const dump = (at: string) => [record("shop", "shop", at)];
    const late = planAt(loaded, observedState({ backups: dump(ago(hour)), pitr: [stanza(ago(2 * day))] }));
    assert.deepEqual(late.overdue, [{
      project: "shop",
      last_success: "2026-11-19T10:00:00Z",
      max_age: "1d",
      source: "main",
      stanza: "main",
    }]);
    const both = planAt(loaded, observedState({ backups: dump(ago(3 * day)), pitr: [stanza(ago(2 * day))] }));
    assert.deepEqual(both.overdue, [{ project: "shop", last_success: "2026-11-18T10:00:00Z", max_age: "1d" }]);
    const fresh = planAt(loaded, observedState({ backups: dump(ago(hour)), pitr: [stanza(ago(hour))] }));
    assert.deepEqual(fresh.overdue, []);
  });
});

describe("plan rules: not managed", () => {
  const loaded = loadedConfig({
    shop: shopProject({ retention: { last: 10 } }),
    old: shopProject({ enabled: false, repositories: ["offsite"], retention: { last: 10 } }),
  });
  const observed = observedState({
    backups: [record("shop", "shop", "2026-11-21T03:00:00Z")],
    knownProjects: ["shop", "legacy", "old"],
    knownRepositories: ["local", "offsite", "oldrepo"],
    snapshots: [
      ...daily("local", "aa", [20, 21]),
      ...daily("local", "e1", [10, 11], "legacy", "db"),
      ...daily("oldrepo", "e2", [12], "legacy", "db"),
      ...daily("local", "f0", [1, 2], null, null),
      ...daily("oldrepo", "f1", [3], null, null),
      ...daily("local", "d1", [5], "shop", "olddb"),
      ...daily("archive", "c1", [6, 7, 8], "shop", "shop"),
      ...daily("offsite", "b1", [9], "old", "shop"),
    ],
  });

  it("reports undeclared projects and repositories, foreign snapshots, dropped sources and repositories", () => {
    const result = planAt(loaded, observed);
    assert.deepEqual(result.not_managed, [
      {
        kind: "project",
        subject: "legacy",
        detail: "no longer declared; its 3 snapshots are kept, never deleted automatically",
      },
      { kind: "repository", subject: "oldrepo", detail: "no longer declared; nothing is done with it" },
      {
        kind: "foreign",
        subject: "local: snapshots not made by backupctl",
        detail: "2 snapshots: kept as they are",
      },
      {
        kind: "source",
        subject: "shop/olddb in local",
        detail: "1 snapshot: source no longer declared; its snapshots are kept",
      },
      {
        kind: "source",
        subject: "shop/shop in archive",
        detail: "3 snapshots: the project no longer uses this repository; its snapshots are kept",
      },
    ]);
    // Reported, never deleted: nothing outside the config's groups is forgotten.
    assert.deepEqual(result.actions, []);
  });

  it("lists groups whose newest snapshots share a second by name, whatever order the inventory has them in", () => {
    const tied = (order: string[]) =>
      planAt(
        loaded,
        observedState({
          ...observed,
          knownProjects: ["shop"],
          knownRepositories: ["local", "offsite"],
          snapshots: order.flatMap((source, i) => daily("local", `t${i}`, [9], "shop", source)),
        }),
      ).not_managed.map((entry) => entry.subject);
    const byName = ["shop/alpha in local", "shop/beta in local", "shop/gamma in local"];
    assert.deepEqual(tied(["gamma", "alpha", "beta"]), byName);
    assert.deepEqual(tied(["beta", "gamma", "alpha"]), byName);
  });

  it("is empty with a project filter", () => {
    assert.deepEqual(planAt(loaded, observed, NOW, ["shop"]).not_managed, []);
  });

  it("is empty when everything is declared", () => {
    const clean = observedState({
      ...observed,
      knownProjects: ["shop"],
      knownRepositories: ["local", "offsite"],
      snapshots: daily("local", "aa", [20, 21]),
    });
    assert.deepEqual(planAt(loaded, clean).not_managed, []);
  });
});

/** A project with one postgres source "shop" backed up to local and copied to offsite, daily at 03:00, keeping 10. */
function copiedShopProject(changes: Raw = {}): Raw {
  return {
    schedule: "0 3 * * *",
    sources: [postgres({ database: "shop" })],
    repositories: ["local", "offsite"],
    retention: { last: 10 },
    ...changes,
  };
}

/**
 * What `restic copy` leaves in `repository`: a snapshot with its own id, the original's time, host and tags, and the
 * original's id in `original`.
 */
function copied(repository: string, id: string, of: InventorySnapshot): InventorySnapshot {
  return { ...of, repository, id, short_id: id.slice(0, 8), original: of.id };
}

/** A copy action as the planner writes it. */
function copy(
  id: string,
  source: string,
  repository: string,
  snapshots: string[],
  reason: string,
  from = "local",
  project = "shop",
): PlanAction {
  return { id, type: "copy", project, source, repository, from, snapshots, reason, destructive: false };
}

const ZERO = { backup: 0, copy: 0, init: 0, forget: 0, prune: 0, check: 0, verify: 0 };

/** Not due at NOW: the shop/shop success at today's 03:00 slot. */
const upToDate = [record("shop", "shop", "2026-11-21T03:00:00Z")];

describe("plan rules: copies: the new backup", () => {
  it("copies the new backup to the later repository right after backing it up, with no older snapshot", () => {
    const result = planAt(loadedConfig({ shop: copiedShopProject() }), observedState());
    assert.deepEqual(result.actions, [
      {
        id: "a1",
        type: "backup",
        project: "shop",
        source: "shop",
        repository: "local",
        reason: "never backed up",
        destructive: false,
      },
      copy("a2", "shop", "offsite", [], "copy the new backup from local"),
    ]);
    assert.deepEqual(result.summary, { ...ZERO, backup: 1, copy: 1 });
    assert.equal(result.actions[1].approval, undefined, "a copy never needs approval");
  });

  it("copies only the new backup when the later repository already holds every older snapshot", () => {
    const local = daily("local", "aa", [19, 20]);
    const observed = observedState({
      backups: [record("shop", "shop", "2026-11-20T03:00:00Z")],
      snapshots: [...local, copied("offsite", "bb000019", local[0]), copied("offsite", "bb000020", local[1])],
    });
    const result = planAt(loadedConfig({ shop: copiedShopProject() }), observed);
    assert.deepEqual(result.actions.map((a) => [a.id, a.type, a.repository, a.reason]), [
      ["a1", "backup", "local", "due since 2026-11-21T03:00:00Z (0 3 * * *)"],
      ["a2", "copy", "offsite", "copy the new backup from local"],
    ]);
    assert.deepEqual(result.actions[1].snapshots, []);
  });

  it("makes no copy for a project with a single repository", () => {
    const result = planAt(loadedConfig({ shop: copiedShopProject({ repositories: ["local"] }) }), observedState());
    assert.deepEqual(result.actions.map((a) => a.type), ["backup"]);
    assert.equal(result.summary.copy, 0);
  });
});

describe("plan rules: copies: snapshots the later repository lacks", () => {
  const loaded = loadedConfig({ shop: copiedShopProject() });

  it("lists the missing snapshots of the primary oldest first, whatever the inventory's order", () => {
    // The inventory comes newest first (StateStore.observe); offsite holds a copy of the 19th only.
    const local = daily("local", "aa", [17, 18, 19, 20, 21]).reverse();
    const observed = observedState({
      backups: upToDate,
      snapshots: [...local, copied("offsite", "bb000019", local[2])],
    });
    const result = planAt(loaded, observed);
    assert.deepEqual(result.actions, [
      copy(
        "a1",
        "shop",
        "offsite",
        ["aa000017", "aa000018", "aa000020", "aa000021"],
        "copy 4 snapshots it lacks from local",
      ),
    ]);
  });

  it("orders by snapshot time, not by id", () => {
    const observed = observedState({
      backups: upToDate,
      snapshots: [
        snap("local", "0a000003", "2026-11-21T03:00:05Z"),
        snap("local", "ff000001", "2026-11-19T03:00:05Z"),
        snap("local", "7c000002", "2026-11-20T03:00:05Z"),
      ],
    });
    const [action] = ofType(planAt(loaded, observed), "copy");
    assert.deepEqual(action.snapshots, ["ff000001", "7c000002", "0a000003"]);
  });

  it("says 1 snapshot in the singular", () => {
    const local = daily("local", "aa", [20, 21]);
    const observed = observedState({
      backups: upToDate,
      snapshots: [...local, copied("offsite", "bb000020", local[0])],
    });
    assert.deepEqual(planAt(loaded, observed).actions, [
      copy("a1", "shop", "offsite", ["aa000021"], "copy 1 snapshot it lacks from local"),
    ]);
  });

  it("names both the new backup and the missing snapshots when a backup is due too", () => {
    const local = daily("local", "aa", [17, 18, 19, 20]);
    const observed = observedState({
      backups: [record("shop", "shop", "2026-11-20T03:00:00Z")],
      snapshots: [...local, copied("offsite", "bb000017", local[0]), copied("offsite", "bb000018", local[1])],
    });
    const result = planAt(loaded, observed);
    assert.deepEqual(result.actions.slice(1), [
      copy(
        "a2",
        "shop",
        "offsite",
        ["aa000019", "aa000020"],
        "copy the new backup and 2 snapshots it lacks from local",
      ),
    ]);
    assert.equal(result.actions[0].type, "backup");
  });

  it("copies neither foreign snapshots nor other projects' nor other sources'", () => {
    const loadedTwo = loadedConfig({
      shop: copiedShopProject({ sources: [postgres({ database: "shop" }), files({ paths: ["/srv/shop"] })] }),
      blog: copiedShopProject({ sources: [sqlite({ path: "/srv/blog.db" })], repositories: ["local"] }),
    });
    const observed = observedState({
      backups: [...upToDate, record("shop", "files", "2026-11-21T03:00:00Z"), record("blog", "blog", NOW)],
      snapshots: [
        ...daily("local", "aa", [21]),
        ...daily("local", "fa", [20, 21], "shop", "files"),
        ...daily("local", "cc", [20, 21], "blog", "blog"),
        ...daily("local", "ee", [20, 21], null, null),
        // offsite holds shop/shop's snapshot, under the files source's group: not where shop/shop is looked for.
        copied("offsite", "bb000021", { ...daily("local", "aa", [21])[0], source: "files" }),
      ],
    });
    const result = planAt(loadedTwo, observed);
    assert.deepEqual(result.actions, [
      copy("a1", "shop", "offsite", ["aa000021"], "copy 1 snapshot it lacks from local"),
      copy("a2", "files", "offsite", ["fa000020", "fa000021"], "copy 2 snapshots it lacks from local"),
    ]);
  });
});

describe("plan rules: copies: what counts as present", () => {
  const loaded = loadedConfig({ shop: copiedShopProject() });

  it("counts a copy whose original is the primary's snapshot, and a snapshot with the same id", () => {
    const local = daily("local", "aa", [18, 19, 20, 21]);
    const observed = observedState({
      backups: upToDate,
      snapshots: [
        ...local,
        copied("offsite", "bb000018", local[0]),
        { ...local[1], repository: "offsite" },
        copied("offsite", "bb000020", local[2]),
      ],
    });
    assert.deepEqual(planAt(loaded, observed).actions, [
      copy("a1", "shop", "offsite", ["aa000021"], "copy 1 snapshot it lacks from local"),
    ]);
  });

  it("does not count a copy of a snapshot the primary no longer has, nor a null or absent original", () => {
    const local = daily("local", "aa", [20, 21]);
    const observed = observedState({
      backups: upToDate,
      snapshots: [
        ...local,
        copied("offsite", "bb000010", snap("local", "aa000010", "2026-11-10T03:00:05Z")),
        { ...snap("offsite", "bb000011", "2026-11-20T03:00:05Z"), original: null },
        snap("offsite", "bb000012", "2026-11-20T03:00:05Z"),
      ],
    });
    assert.deepEqual(planAt(loaded, observed).actions, [
      copy("a1", "shop", "offsite", ["aa000020", "aa000021"], "copy 2 snapshots it lacks from local"),
    ]);
  });

  it("plans nothing when every snapshot is present and no backup is due", () => {
    const local = daily("local", "aa", [19, 20, 21]);
    const observed = observedState({
      backups: upToDate,
      snapshots: [
        ...local,
        copied("offsite", "bb000019", local[0]),
        copied("offsite", "bb000020", local[1]),
        { ...local[2], repository: "offsite" },
      ],
    });
    const result = planAt(loaded, observed);
    assert.deepEqual(result.actions, []);
    assert.deepEqual(result.summary, ZERO);
  });

  it("plans nothing for a project whose repositories are all empty and that is not due", () => {
    const result = planAt(loaded, observedState({ backups: upToDate }));
    assert.deepEqual(result.actions, []);
  });
});

describe("plan rules: copies: snapshots the plan forgets", () => {
  const loaded = loadedConfig({ shop: copiedShopProject({ retention: { last: 2 } }) });
  const five = daily("local", "aa", [17, 18, 19, 20, 21]);

  it("does not copy what the same plan forgets from the primary", () => {
    const observed = observedState({ backups: upToDate, snapshots: five, retention: [applied({ last: 2 })] });
    const result = planAt(loaded, observed);
    assert.deepEqual(result.actions.map((a) => [a.id, a.type, a.repository, a.snapshots ?? []]), [
      ["a1", "copy", "offsite", ["aa000020", "aa000021"]],
      ["a2", "forget", "local", ["aa000019", "aa000018", "aa000017"]],
      ["a3", "prune", "local", []],
    ]);
    assert.equal(result.actions[0].reason, "copy 2 snapshots it lacks from local");
  });

  it("plans no copy when everything the primary keeps is present, even if it forgets others", () => {
    const observed = observedState({
      backups: upToDate,
      snapshots: [...five, copied("offsite", "bb000020", five[3]), copied("offsite", "bb000021", five[4])],
      retention: [applied({ last: 2 })],
    });
    assert.deepEqual(planAt(loaded, observed).actions.map((a) => a.type), ["forget", "prune"]);
  });

  it("still copies snapshots forgotten only from the later repository, or from another source", () => {
    const twoSources = loadedConfig({
      shop: copiedShopProject({
        sources: [postgres({ database: "shop" }), files({ paths: ["/srv/shop"] })],
        retention: { last: 2 },
      }),
    });
    const localFiles = daily("local", "fa", [19, 20, 21], "shop", "files");
    const observed = observedState({
      backups: [...upToDate, record("shop", "files", "2026-11-21T03:00:00Z")],
      snapshots: [
        ...five,
        // offsite holds copies of the 17th to 19th: retention forgets the 17th there, the 20th and 21st are missing.
        copied("offsite", "bb000017", five[0]),
        copied("offsite", "bb000018", five[1]),
        copied("offsite", "bb000019", five[2]),
        ...localFiles.slice(1),
      ],
      retention: [applied({ last: 2 }), applied({ last: 2 }, "shop", "shop", "offsite")],
    });
    const result = planAt(twoSources, observed);
    assert.deepEqual(ofType(result, "copy"), [
      copy("a1", "shop", "offsite", ["aa000020", "aa000021"], "copy 2 snapshots it lacks from local"),
      copy("a2", "files", "offsite", ["fa000020", "fa000021"], "copy 2 snapshots it lacks from local"),
    ]);
    assert.deepEqual(ofType(result, "forget").map((f) => [f.repository, f.source, f.snapshots]), [
      ["local", "shop", ["aa000019", "aa000018", "aa000017"]],
      ["offsite", "shop", ["bb000017"]],
    ]);
  });
});

describe("plan rules: copies: three repositories", () => {
  it("plans one copy per (source, later repository), repository by repository, each with its own snapshots", () => {
    const loaded = loadedConfig({
      shop: copiedShopProject({
        sources: [postgres({ database: "shop" }), files({ paths: ["/srv/shop"] })],
        repositories: ["local", "offsite", "archive"],
      }),
    });
    const shop = daily("local", "aa", [20, 21]);
    const localFiles = daily("local", "fa", [19, 20], "shop", "files");
    const observed = observedState({
      backups: [...upToDate, record("shop", "files", "2026-11-20T03:00:00Z")],
      snapshots: [
        ...shop,
        ...localFiles,
        // offsite: all of shop, the 19th of files.
        copied("offsite", "bb000020", shop[0]),
        copied("offsite", "bb000021", shop[1]),
        copied("offsite", "fb000019", localFiles[0]),
        // archive: none of shop, all of files.
        copied("archive", "fc000019", localFiles[0]),
        copied("archive", "fc000020", localFiles[1]),
      ],
    });
    const result = planAt(loaded, observed);
    assert.deepEqual(result.actions, [
      {
        id: "a1",
        type: "backup",
        project: "shop",
        source: "files",
        repository: "local",
        reason: "due since 2026-11-21T03:00:00Z (0 3 * * *)",
        destructive: false,
      },
      copy("a2", "files", "offsite", ["fa000020"], "copy the new backup and 1 snapshot it lacks from local"),
      copy("a3", "shop", "archive", ["aa000020", "aa000021"], "copy 2 snapshots it lacks from local"),
      copy("a4", "files", "archive", [], "copy the new backup from local"),
    ]);
    const pairs = ofType(result, "copy").map((a) => `${a.source} → ${a.repository}`);
    assert.equal(new Set(pairs).size, pairs.length, "at most one copy per (source, repository)");
    assert.deepEqual(result.summary, { ...ZERO, backup: 1, copy: 3 });
  });

  it("copies every source to every later repository after a first backup", () => {
    const loaded = loadedConfig({
      shop: copiedShopProject({
        sources: [postgres({ database: "shop" }), files({ paths: ["/srv/shop"] })],
        repositories: ["local", "offsite", "archive"],
      }),
    });
    const result = planAt(loaded, observedState());
    assert.deepEqual(result.actions.map((a) => [a.id, a.type, a.source, a.repository, a.from ?? ""]), [
      ["a1", "backup", "shop", "local", ""],
      ["a2", "backup", "files", "local", ""],
      ["a3", "copy", "shop", "offsite", "local"],
      ["a4", "copy", "files", "offsite", "local"],
      ["a5", "copy", "shop", "archive", "local"],
      ["a6", "copy", "files", "archive", "local"],
    ]);
  });

  it("copies from each project's own first repository", () => {
    const loaded = loadedConfig({
      shop: copiedShopProject({ repositories: ["local", "archive"] }),
      blog: copiedShopProject({ sources: [sqlite({ path: "/srv/blog.db" })], repositories: ["offsite", "archive"] }),
    });
    const observed = observedState({
      backups: [...upToDate, record("blog", "blog", "2026-11-21T03:00:00Z", "offsite")],
      snapshots: [...daily("local", "aa", [21]), ...daily("offsite", "cc", [21], "blog", "blog")],
    });
    assert.deepEqual(planAt(loaded, observed).actions, [
      copy("a1", "shop", "archive", ["aa000021"], "copy 1 snapshot it lacks from local"),
      copy("a2", "blog", "archive", ["cc000021"], "copy 1 snapshot it lacks from offsite", "offsite", "blog"),
    ]);
  });
});

describe("plan rules: copies: init with the chunker parameters of the repository copied from", () => {
  const init = (id: string, repository: string): PlanAction => ({
    id,
    type: "init",
    repository,
    reason: "repository not initialized",
    destructive: false,
  });
  const initFrom = (id: string, repository: string, from: string): PlanAction => ({
    id,
    type: "init",
    repository,
    chunker_from: from,
    reason: `repository not initialized (chunker parameters of ${from})`,
    destructive: false,
  });

  it("initializes a copies-only repository after the plain inits, even when it is listed first", () => {
    const loaded = loadedConfig({
      shop: copiedShopProject({ repositories: ["local", "archive"] }),
      blog: copiedShopProject({ sources: [sqlite({ path: "/srv/blog.db" })], repositories: ["offsite", "archive"] }),
    });
    const result = planAt(loaded, observedState({ repositories: {} }));
    assert.deepEqual(ofType(result, "init"), [
      init("a1", "local"),
      init("a2", "offsite"),
      initFrom("a3", "archive", "local"),
    ]);
    assert.deepEqual(result.actions.slice(3).map((a) => [a.id, a.type, a.project, a.repository, a.from ?? ""]), [
      ["a4", "backup", "shop", "local", ""],
      ["a5", "backup", "blog", "offsite", ""],
      ["a6", "copy", "shop", "archive", "local"],
      ["a7", "copy", "blog", "archive", "offsite"],
    ]);
    assert.deepEqual(result.summary, { ...ZERO, init: 3, backup: 2, copy: 2 });
  });

  it("takes the first repository of the first project that lists it", () => {
    const loaded = loadedConfig({
      blog: copiedShopProject({ sources: [sqlite({ path: "/srv/blog.db" })], repositories: ["offsite", "archive"] }),
      shop: copiedShopProject({ repositories: ["local", "archive"] }),
    });
    assert.deepEqual(ofType(planAt(loaded, observedState({ repositories: {} })), "init"), [
      init("a1", "offsite"),
      init("a2", "local"),
      initFrom("a3", "archive", "offsite"),
    ]);
  });

  it("gives a plain init to a repository that is the first of any project, even if later in another", () => {
    const loaded = loadedConfig({
      shop: copiedShopProject({ repositories: ["local", "offsite"] }),
      blog: copiedShopProject({ sources: [sqlite({ path: "/srv/blog.db" })], repositories: ["offsite"] }),
    });
    assert.deepEqual(ofType(planAt(loaded, observedState({ repositories: {} })), "init"), [
      init("a1", "local"),
      init("a2", "offsite"),
    ]);
  });

  it("judges by the active projects only: a project filter or a disabled project changes the init", () => {
    const projects = (blog: Raw = {}) => ({
      shop: copiedShopProject({ repositories: ["local", "archive"] }),
      blog: copiedShopProject({ sources: [sqlite({ path: "/srv/blog.db" })], repositories: ["archive"], ...blog }),
    });
    const none = observedState({ repositories: {} });
    assert.deepEqual(ofType(planAt(loadedConfig(projects()), none), "init"), [
      init("a1", "local"),
      init("a2", "archive"),
    ]);
    assert.deepEqual(ofType(planAt(loadedConfig(projects()), none, NOW, ["shop"]), "init"), [
      init("a1", "local"),
      initFrom("a2", "archive", "local"),
    ]);
    assert.deepEqual(ofType(planAt(loadedConfig(projects({ enabled: false })), none), "init"), [
      init("a1", "local"),
      initFrom("a2", "archive", "local"),
    ]);
  });

  it("initializes only the later repository when the primary exists", () => {
    const observed = observedState({ repositories: { local: { initialized: true } } });
    const result = planAt(loadedConfig({ shop: copiedShopProject() }), observed);
    assert.deepEqual(result.actions.map((a) => [a.id, a.type, a.repository, a.chunker_from ?? ""]), [
      ["a1", "init", "offsite", "local"],
      ["a2", "backup", "local", ""],
      ["a3", "copy", "offsite", ""],
    ]);
  });
});

describe("plan rules: copies: the summary", () => {
  it("counts copy actions, not snapshots (forgets count snapshots)", () => {
    const loaded = loadedConfig({ shop: copiedShopProject({ retention: { last: 2 } }) });
    const five = daily("local", "aa", [17, 18, 19, 20, 21]);
    const result = planAt(
      loaded,
      observedState({ backups: upToDate, snapshots: five, retention: [applied({ last: 2 })] }),
    );
    assert.equal(ofType(result, "copy")[0].snapshots?.length, 2);
    assert.deepEqual(result.summary, { ...ZERO, copy: 1, forget: 3, prune: 1 });

    const many = planAt(
      loadedConfig({ shop: copiedShopProject() }),
      observedState({ backups: upToDate, snapshots: daily("local", "aa", [14, 15, 16, 17, 18, 19, 20, 21]) }),
    );
    assert.deepEqual(many.summary, { ...ZERO, copy: 1 });
    assert.equal(many.actions[0].snapshots?.length, 8);
  });
});

describe("plan rules: order of actions", () => {
  it("is init, backup, copy, forget, prune, check, verify, with ids a1… in that order", () => {
    const loaded = loadedConfig({
      shop: copiedShopProject({
        retention: { last: 2 },
        verify: { every: "7d", into: postgres({ database: "shop_drill" }) },
      }),
      blog: copiedShopProject({
        sources: [sqlite({ path: "/srv/blog.db" })],
        repositories: ["local", "archive"],
        retention: { last: 2 },
        verify: { every: "1d", into: sqlite({ path: "/tmp/y.db" }) },
      }),
    });
    const observed = observedState({
      repositories: {
        local: { initialized: true, initializedAt: ago(30 * day) },
        offsite: { initialized: true },
      },
      backups: [record("shop", "shop", "2026-11-19T03:00:00Z"), record("blog", "blog", "2026-11-21T03:00:00Z")],
      snapshots: [...daily("local", "aa", [16, 17, 18, 19]), ...daily("local", "cc", [18, 19, 20, 21], "blog", "blog")],
      retention: [applied({ last: 2 }), applied({ last: 2 }, "blog", "blog")],
    });
    const result = planAt(loaded, observed);
    assert.deepEqual(result.actions.map((a) => [a.id, a.type, a.project ?? "", a.repository]), [
      ["a1", "init", "", "archive"],
      ["a2", "backup", "shop", "local"],
      ["a3", "copy", "shop", "offsite"],
      ["a4", "copy", "blog", "archive"],
      ["a5", "forget", "shop", "local"],
      ["a6", "forget", "blog", "local"],
      ["a7", "prune", "", "local"],
      ["a8", "check", "", "local"],
      ["a9", "verify", "shop", "local"],
      ["a10", "verify", "blog", "local"],
    ]);
    assert.equal(result.actions[0].chunker_from, "local");
    assert.deepEqual(ofType(result, "copy"), [
      copy(
        "a3",
        "shop",
        "offsite",
        ["aa000018", "aa000019"],
        "copy the new backup and 2 snapshots it lacks from local",
      ),
      copy("a4", "blog", "archive", ["cc000020", "cc000021"], "copy 2 snapshots it lacks from local", "local", "blog"),
    ]);
    assert.deepEqual(result.summary, { backup: 1, copy: 2, init: 1, forget: 4, prune: 1, check: 1, verify: 2 });
  });
});

describe("plan rules: regressions", () => {
  it("does not let a snapshot dated in the future shrink a within window (no routine forget)", () => {
    const retention = { within: "7d" };
    const config = loadedConfig({ shop: shopProject({ retention }) });
    const observed = observedState({
      backups: [record("shop", "shop", "2026-11-21T03:00:00Z")],
      snapshots: [...daily("local", "aa", [17, 18, 19, 20]), snap("local", "ff000001", "2027-01-01T03:00:05Z")],
      retention: [applied(retention)],
    });
    assert.deepEqual(ofType(planAt(config, observed), "forget"), []);
  });

  it("announces a jittered next due time at which the project really is due", () => {
    const config = loadedConfig({ shop: shopProject({ jitter: "30m" }) });
    const observed = observedState({ backups: [record("shop", "shop", "2026-11-21T03:30:00Z")] });
    const first = planAt(config, observed);
    const [next] = first.next_due;
    assert.equal(jitterOffset(config.config.projects.shop) % 1000, 0, "the offset is whole seconds");
    assert.equal(planAt(config, observed, new Date(Date.parse(next.at) - 1000).toISOString()).actions.length, 0);
    assert.equal(planAt(config, observed, next.at).actions.length, 1);
  });

  it("reports snapshots of a project that is neither declared nor in the audit", () => {
    const config = loadedConfig({ shop: shopProject() });
    const observed = observedState({ snapshots: daily("local", "ee", [10, 11], "legacy", "db") });
    assert.deepEqual(planAt(config, observed).not_managed, [{
      kind: "project",
      subject: "legacy in local",
      detail: "2 snapshots: project not declared (and not in this state's audit); its snapshots are kept",
    }]);
  });

  it("protects copies in later repositories by the primary repository's last success", () => {
    const retention = { last: 1 };
    const config = loadedConfig({ shop: shopProject({ repositories: ["local", "offsite"], retention }) });
    const observed = observedState({
      backups: [record("shop", "shop", "2026-11-19T03:00:00Z")],
      snapshots: daily("offsite", "ab", [17, 18, 19, 20]),
      retention: [applied(retention, "shop", "shop", "offsite")],
    });
    const [forget] = ofType(planAt(config, observed), "forget");
    assert.deepEqual(forget.snapshots, ["ab000018", "ab000017"], "the 20th is newer than the last success");
  });
});
