/**
 * pitr/retention.ts: a project's retention mapped to pgBackRest's count of full backups, so that point-in-time
 * recovery reaches back over the policy's longest period (docs/postgres-pitr.md, "Retention").
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { pgBackRestRetention } from "../../src/pitr/retention.ts";

describe("pgBackRestRetention", () => {
  it("keeps enough fulls to reach back over the policy's longest period", () => {
    assert.deepEqual(pgBackRestRetention({ weekly: 4 }, "@weekly", "UTC"), { full: 5 });
    assert.deepEqual(pgBackRestRetention({ daily: 7 }, "@weekly", "UTC"), { full: 2 });
    assert.deepEqual(pgBackRestRetention({ daily: 7, weekly: 4, monthly: 3 }, "0 1 * * 0", "Europe/Zurich"), {
      full: 15,
    });
    assert.deepEqual(pgBackRestRetention({ within: "14d" }, "@daily", "UTC"), { full: 15 });
    assert.deepEqual(pgBackRestRetention({ last: 10 }, "@weekly", "UTC"), { full: 2 });
  });
});
