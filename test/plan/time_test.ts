import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { humanDuration, isoSeconds } from "../../src/plan/time.ts";

describe("time formatting", () => {
  it("shows durations with their two largest units, milliseconds under a second", () => {
    assert.equal(humanDuration(0), "0ms");
    assert.equal(humanDuration(640), "640ms");
    assert.equal(humanDuration(45_000), "45s");
    assert.equal(humanDuration(2 * 3_600_000 + 5 * 60_000 + 7_000), "2h 5m");
    assert.equal(humanDuration(3 * 86_400_000 + 4 * 3_600_000), "3d 4h");
    assert.equal(humanDuration(-90_000), "1m 30s");
  });

  it("prints ISO-8601 UTC to the second", () => {
    assert.equal(isoSeconds(new Date("2026-11-21T03:00:00.123Z")), "2026-11-21T03:00:00Z");
  });
});
