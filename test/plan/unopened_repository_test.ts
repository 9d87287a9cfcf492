/**
 * A repository restic could not open (a wrong password, a server that cannot be reached) may well exist: the planner
 * never initializes it, and warns with the cause it was given. Plain data, no restic.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { sqlite } from "../../src/config/helpers.ts";
import { loadedConfig, observedState, planAt } from "../support/plan-fixtures.ts";

const project = { schedule: "0 3 * * *", sources: [sqlite({ path: "/srv/shop/shop.db" })], retention: { daily: 7 } };
const wrongPassword = 'wrong password or no key found — the password does not open this repository: check env("PW")';

describe("plan: a repository that cannot be opened", () => {
  it("is not initialized, and the plan says why, while a missing one is", () => {
    const loaded = loadedConfig({ shop: { ...project, repositories: ["local", "offsite"] } });
    const result = planAt(
      loaded,
      observedState({
        repositories: { local: { initialized: false, unreachable: wrongPassword }, offsite: { initialized: false } },
      }),
    );
    const inits = result.actions.filter((action) => action.type === "init");
    assert.deepEqual(inits.map((action) => action.repository), ["offsite"]);
    assert.deepEqual(result.warnings, [
      `repository local cannot be opened, so it is not initialized and its stages will fail: ${wrongPassword}`,
    ]);
    // The backup is still planned: it fails with the cause, which is recorded, notified and shown by status.
    assert.deepEqual(result.actions.filter((action) => action.type === "backup").map((a) => a.repository), ["local"]);
  });

  it("warns once for a repository shared by two projects, and not for repositories out of scope", () => {
    const loaded = loadedConfig({
      shop: { ...project, repositories: ["local"] },
      blog: { ...project, repositories: ["local"] },
      other: { ...project, repositories: ["archive"] },
    });
    const observed = observedState({
      repositories: {
        local: { initialized: false, unreachable: "connection refused" },
        offsite: { initialized: true },
        archive: { initialized: false, unreachable: "connection refused" },
      },
    });
    const result = planAt(loaded, observed, undefined, ["shop", "blog"]);
    assert.deepEqual(result.actions.filter((action) => action.type === "init"), []);
    assert.equal(
      result.warnings.filter((warning) => warning.startsWith("repository local cannot be opened")).length,
      1,
    );
    assert.equal(result.warnings.some((warning) => warning.includes("archive")), false);
  });
});
