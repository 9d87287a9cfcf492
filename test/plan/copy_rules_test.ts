/**
 * Unit tests of "dump once, send to many" (src/plan/planner.ts): the copy actions that bring a project's later
 * repositories up to its first (primary) one, and the init of a repository that only receives copies with the
 * chunker parameters of the repository it copies from. Plain data in, plain data out: no processes, no clock, no
 * state database.
 * Runs under `deno test -A test/plan/copy_rules_test.ts` and `bun --no-install test ./test/plan/copy_rules_test.ts`.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  ago,
  applied,
  daily,
  day,
  loadedConfig,
  NOW,
  observedState,
  ofType,
  planAt,
  type Raw,
  record,
  snap,
} from "../support/plan-fixtures.ts";
import { files, postgres, sqlite } from "../../src/config/helpers.ts";
import type { InventorySnapshot, PlanAction } from "../../src/plan/types.ts";

/** A project with one postgres source "shop" backed up to local and copied to offsite, daily at 03:00, keeping 10. */
function shopProject(changes: Raw = {}): Raw {
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

describe("copy rules: the new backup", () => {
  it("copies the new backup to the later repository right after backing it up, with no older snapshot", () => {
    const result = planAt(loadedConfig({ shop: shopProject() }), observedState());
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
    const result = planAt(loadedConfig({ shop: shopProject() }), observed);
    assert.deepEqual(result.actions.map((a) => [a.id, a.type, a.repository, a.reason]), [
      ["a1", "backup", "local", "due since 2026-11-21T03:00:00Z (0 3 * * *)"],
      ["a2", "copy", "offsite", "copy the new backup from local"],
    ]);
    assert.deepEqual(result.actions[1].snapshots, []);
  });

  it("makes no copy for a project with a single repository", () => {
    const result = planAt(loadedConfig({ shop: shopProject({ repositories: ["local"] }) }), observedState());
    assert.deepEqual(result.actions.map((a) => a.type), ["backup"]);
    assert.equal(result.summary.copy, 0);
  });
});

describe("copy rules: snapshots the later repository lacks", () => {
  const loaded = loadedConfig({ shop: shopProject() });

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
      shop: shopProject({ sources: [postgres({ database: "shop" }), files({ paths: ["/srv/shop"] })] }),
      blog: shopProject({ sources: [sqlite({ path: "/srv/blog.db" })], repositories: ["local"] }),
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

describe("copy rules: what counts as present", () => {
  const loaded = loadedConfig({ shop: shopProject() });

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

describe("copy rules: snapshots the plan forgets", () => {
  const loaded = loadedConfig({ shop: shopProject({ retention: { last: 2 } }) });
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
      shop: shopProject({
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

describe("copy rules: three repositories", () => {
  it("plans one copy per (source, later repository), repository by repository, each with its own snapshots", () => {
    const loaded = loadedConfig({
      shop: shopProject({
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
      shop: shopProject({
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
      shop: shopProject({ repositories: ["local", "archive"] }),
      blog: shopProject({ sources: [sqlite({ path: "/srv/blog.db" })], repositories: ["offsite", "archive"] }),
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

describe("copy rules: init with the chunker parameters of the repository copied from", () => {
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
      shop: shopProject({ repositories: ["local", "archive"] }),
      blog: shopProject({ sources: [sqlite({ path: "/srv/blog.db" })], repositories: ["offsite", "archive"] }),
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
      blog: shopProject({ sources: [sqlite({ path: "/srv/blog.db" })], repositories: ["offsite", "archive"] }),
      shop: shopProject({ repositories: ["local", "archive"] }),
    });
    assert.deepEqual(ofType(planAt(loaded, observedState({ repositories: {} })), "init"), [
      init("a1", "offsite"),
      init("a2", "local"),
      initFrom("a3", "archive", "offsite"),
    ]);
  });

  it("gives a plain init to a repository that is the first of any project, even if later in another", () => {
    const loaded = loadedConfig({
      shop: shopProject({ repositories: ["local", "offsite"] }),
      blog: shopProject({ sources: [sqlite({ path: "/srv/blog.db" })], repositories: ["offsite"] }),
    });
    assert.deepEqual(ofType(planAt(loaded, observedState({ repositories: {} })), "init"), [
      init("a1", "local"),
      init("a2", "offsite"),
    ]);
  });

  it("judges by the active projects only: a project filter or a disabled project changes the init", () => {
    const projects = (blog: Raw = {}) => ({
      shop: shopProject({ repositories: ["local", "archive"] }),
      blog: shopProject({ sources: [sqlite({ path: "/srv/blog.db" })], repositories: ["archive"], ...blog }),
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
    const result = planAt(loadedConfig({ shop: shopProject() }), observed);
    assert.deepEqual(result.actions.map((a) => [a.id, a.type, a.repository, a.chunker_from ?? ""]), [
      ["a1", "init", "offsite", "local"],
      ["a2", "backup", "local", ""],
      ["a3", "copy", "offsite", ""],
    ]);
  });
});

describe("copy rules: the summary and the order of actions", () => {
  it("counts copy actions, not snapshots (forgets count snapshots)", () => {
    const loaded = loadedConfig({ shop: shopProject({ retention: { last: 2 } }) });
    const five = daily("local", "aa", [17, 18, 19, 20, 21]);
    const result = planAt(
      loaded,
      observedState({ backups: upToDate, snapshots: five, retention: [applied({ last: 2 })] }),
    );
    assert.equal(ofType(result, "copy")[0].snapshots?.length, 2);
    assert.deepEqual(result.summary, { ...ZERO, copy: 1, forget: 3, prune: 1 });

    const many = planAt(
      loadedConfig({ shop: shopProject() }),
      observedState({ backups: upToDate, snapshots: daily("local", "aa", [14, 15, 16, 17, 18, 19, 20, 21]) }),
    );
    assert.deepEqual(many.summary, { ...ZERO, copy: 1 });
    assert.equal(many.actions[0].snapshots?.length, 8);
  });

  it("puts copies after the backups and before the forgets: init, backup, copy, forget, prune, check, verify", () => {
    const loaded = loadedConfig({
      shop: shopProject({
        retention: { last: 2 },
        verify: { every: "7d", into: sqlite({ path: "/tmp/x.db" }) },
      }),
      blog: shopProject({
        sources: [sqlite({ path: "/srv/blog.db" })],
        repositories: ["local", "archive"],
        retention: { last: 2 },
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
    assert.deepEqual(result.summary, { backup: 1, copy: 2, init: 1, forget: 4, prune: 1, check: 1, verify: 1 });
  });
});
