import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { repoRoot, runTool } from "../support/cli.ts";
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

describe("schedules in UTC without ICU", () => {
  it("validates and evaluates a UTC schedule without constructing an Intl formatter; another zone still uses one", async () => {
    // In a process of its own: ICU's start (and luxon's cached answers) from other tests must not hide a use.
    const dir = mkdtempSync(join(tmpdir(), "backupctl-schedule-icu-"));
    try {
      const script = join(dir, "probe.ts");
      writeFileSync(
        script,
        `const made: string[] = [];
const Original = Intl.DateTimeFormat;
(Intl as unknown as Record<string, unknown>).DateTimeFormat = function (...args: unknown[]) {
  made.push(JSON.stringify(args));
  return new (Original as unknown as new (...a: unknown[]) => unknown)(...args);
};
const schedule = await import(${JSON.stringify(join(repoRoot, "src/config/schedule.ts"))});
const now = new Date("2026-12-07T05:00:00Z");
const utc = [
  schedule.scheduleProblem("0 3 * * *"),
  schedule.timezoneProblem("UTC"),
  schedule.previousSlot("0 3 * * *", "UTC", now).toISOString(),
  schedule.nextSlot("*/15 * * * *", "UTC", now).toISOString(),
];
const inUtc = made.length;
const berlin = schedule.previousSlot("0 3 * * *", "Europe/Berlin", now).toISOString();
console.log(JSON.stringify({ utc, inUtc, berlin, inBerlin: made.length - inUtc }));
`,
      );
      const argv = "Bun" in globalThis
        ? ["--no-install", script]
        : ["run", "--allow-all", "--quiet", "--config", join(repoRoot, "deno.json"), script];
      const result = await runTool(process.execPath, argv);
      assert.equal(result.code, 0, result.stderr);
      const probe = JSON.parse(result.stdout) as { utc: unknown[]; inUtc: number; berlin: string; inBerlin: number };
      assert.deepEqual(
        probe.utc,
        [undefined, undefined, "2026-12-07T03:00:00.000Z", "2026-12-07T05:15:00.000Z"].map(
          (value) => value ?? null,
        ),
      );
      assert.equal(probe.inUtc, 0, "no Intl.DateTimeFormat for UTC");
      assert.equal(probe.berlin, "2026-12-07T02:00:00.000Z");
      assert.ok(probe.inBerlin > 0, "a named zone is still read through ICU");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
