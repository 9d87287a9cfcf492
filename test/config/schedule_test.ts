import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { nextSlot, previousSlot, scheduleProblem, slotsBetween, timezoneProblem } from "../../src/config/schedule.ts";

describe("schedules", () => {
  it("accepts five fields, day and month names, and the @ aliases", () => {
    for (
      const ok of ["0 3 * * *", "0 3 * * THU", "*/15 * * * MON-FRI", "0 0 1 JAN *", "@daily", "@midnight", "@annually"]
    ) {
      assert.equal(scheduleProblem(ok), undefined, ok);
    }
  });

  it("rejects other field counts, hashed H values, bad ranges and unknown aliases", () => {
    assert.match(scheduleProblem("0 3 * *")!, /got 4 fields/);
    assert.match(scheduleProblem("0 0 3 * * *")!, /got 6 fields/);
    assert.match(scheduleProblem("H 3 * * *")!, /"H" \(hashed\) values are not supported/);
    assert.match(scheduleProblem("H/15 * * * *")!, /"H" \(hashed\)/);
    assert.match(scheduleProblem("61 * * * *")!, /invalid cron expression "61 \* \* \* \*"/);
    assert.match(scheduleProblem("@sometimes")!, /unknown schedule alias "@sometimes"/);
  });

  it("finds the latest slot at or before now, and the next one after it, in the project's time zone", () => {
    const at = new Date("2026-11-21T03:00:00Z");
    assert.equal(previousSlot("0 3 * * *", "UTC", at)?.toISOString(), "2026-11-21T03:00:00.000Z");
    assert.equal(
      previousSlot("0 3 * * *", "UTC", new Date(at.getTime() - 1))?.toISOString(),
      "2026-11-20T03:00:00.000Z",
    );
    assert.equal(nextSlot("0 3 * * *", "UTC", at).toISOString(), "2026-11-22T03:00:00.000Z");
    assert.equal(nextSlot("0 3 * * *", "Europe/Berlin", at).toISOString(), "2026-11-22T02:00:00.000Z");
    assert.equal(
      slotsBetween("0 * * * *", "UTC", new Date("2026-11-21T00:30:00Z"), new Date("2026-11-21T05:30:00Z")),
      5,
    );
  });

  it("validates IANA time zones", () => {
    assert.equal(timezoneProblem("Europe/Berlin"), undefined);
    assert.match(timezoneProblem("Mars/Olympus")!, /unknown time zone "Mars\/Olympus"/);
  });

  it("quotes at most 60 characters of a huge expression or zone, and of cron-parser's message about it", () => {
    const huge = "x".repeat(5_000_000);
    const problems = [
      scheduleProblem(huge)!,
      scheduleProblem(`${huge} * * * *`)!,
      scheduleProblem(`@${huge}`)!,
      scheduleProblem(`H${huge} * * * *`)!,
      timezoneProblem(`Europe/${huge}`)!,
    ];
    for (const problem of problems) assert.ok(problem.length < 400, `${problem.length}: ${problem.slice(0, 200)}`);
    assert.match(problems[0], /got 1 field in "x{57}"…$/);
    assert.match(problems[1], /^invalid cron expression "x{57}"…: /);
    assert.match(problems[4], /^unknown time zone "Europe\/x{50}"…; /);
  });
});
