/**
 * The planner's startup-recovery actions from what dead processes left (docs/operations.md): an interrupted run is
 * marked, its project's repositories get a restic unlock (once each), stale locks and private folders are removed,
 * partial snapshots forgotten; the text plan shows them first, the ones of no project under "Recovery:".
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { sqlite } from "../../src/config/helpers.ts";
import { renderText } from "../../src/plan/render.ts";
import { loadedConfig, observedState, ofType, planAt, snap } from "../support/plan-fixtures.ts";

const loaded = loadedConfig({
  shop: {
    schedule: "0 3 * * *",
    sources: [sqlite({ path: "/srv/shop.db", name: "shop" })],
    repositories: ["local", "offsite"],
    retention: { last: 2 },
  },
  blog: {
    schedule: "0 3 * * *",
    sources: [sqlite({ path: "/srv/blog.db", name: "blog" })],
    repositories: ["local"],
    retention: { last: 2 },
  },
});

const run = {
  id: "20261121T030000Z-abc123",
  project: "shop",
  stage: "backup shop",
  pid: 4242,
  startedAt: "2026-11-21T03:00:00Z",
};

describe("recover actions from leftovers", () => {
  it("marks the run, unlocks each repository of its project once, removes the lock and folders", () => {
    const observed = observedState({
      leftovers: {
        interruptedRuns: [run, { ...run, id: "20261121T030500Z-def456", pid: 4343 }],
        staleLocks: [{ project: "shop", pid: 4343, since: "2026-11-21T03:05:00Z", runId: "20261121T030500Z-def456" }],
        files: ["tmp/secret-4242-abc", "tmp/secret-4343-ssh-def"],
      },
    });
    const recover = ofType(planAt(loaded, observed), "recover");
    assert.deepEqual(recover.map((a) => [a.recover, a.project ?? null, a.repository ?? null, a.run_id ?? null]), [
      ["interrupted_run", "shop", null, run.id],
      ["interrupted_run", "shop", null, "20261121T030500Z-def456"],
      ["stale_lock", "shop", null, "20261121T030500Z-def456"],
      ["leftover_files", null, null, null],
      ["restic_unlock", null, "local", run.id],
      ["restic_unlock", null, "offsite", run.id],
    ]);
    assert.match(
      recover[0].reason,
      /^run 20261121T030000Z-abc123 \(pid 4242, started 2026-11-21T03:00:00Z\) ended without finishing during backup shop: mark it interrupted$/,
    );
    assert.deepEqual(recover[3].paths, ["tmp/secret-4242-abc", "tmp/secret-4343-ssh-def"]);
    assert.ok(recover.every((a) => !a.destructive));
  });

  it("forgets a snapshot of an unfinished run, after the local repairs", () => {
    const observed = observedState({
      leftovers: { interruptedRuns: [run], staleLocks: [], files: [] },
      snapshots: [snap("local", "a".repeat(64), "2026-11-21T03:00:10Z")],
      partials: [{ project: "shop", source: "shop", repository: "local", snapshot: "a".repeat(64), runId: run.id }],
    });
    const recover = ofType(planAt(loaded, observed), "recover");
    assert.deepEqual(recover.map((a) => a.recover), [
      "interrupted_run",
      "restic_unlock",
      "restic_unlock",
      "partial_snapshot",
    ]);
    assert.deepEqual(recover[3].snapshots, ["a".repeat(64)]);
    assert.equal(recover[3].run_id, run.id);
    assert.ok(recover[3].destructive);
  });

  it("the text plan groups them: project repairs under the project, the rest under Recovery", () => {
    const observed = observedState({
      leftovers: { interruptedRuns: [run], staleLocks: [], files: ["tmp/secret-1-x"] },
    });
    const text = renderText(planAt(loaded, observed));
    assert.match(text, /Project shop:\n {2}~ recover: mark run 20261121T030000Z-abc123 of shop interrupted {2}run /);
    assert.match(
      text,
      /Recovery:\n {2}~ recover: delete 1 leftover private folder {2}1 private temporary folder of processes that are gone: delete it\n {2}~ recover: remove stale restic locks in local/,
    );
  });

  it("nothing left behind: no recover action", () => {
    const observed = observedState({ leftovers: { interruptedRuns: [], staleLocks: [], files: [] } });
    assert.deepEqual(ofType(planAt(loaded, observed), "recover"), []);
  });
});
