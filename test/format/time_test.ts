import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { humanDuration, isoSeconds, localTime, localTimesIn } from "../../src/format/time.ts";

describe("time formatting", () => {
  it("shows durations with their largest unit and the next one, milliseconds under a second", () => {
    assert.equal(humanDuration(0), "0ms");
    assert.equal(humanDuration(640), "640ms");
    assert.equal(humanDuration(45_000), "45s");
    assert.equal(humanDuration(2 * 3_600_000 + 5 * 60_000 + 7_000), "2h 5m");
    assert.equal(humanDuration(3 * 86_400_000 + 4 * 3_600_000), "3d 4h");
    assert.equal(humanDuration(-90_000), "1m 30s");
  });

  it("never skips a zero unit in the middle: 23 h 0 m 30 s is 23h 0m, not 23h 30s; a whole unit stands alone", () => {
    assert.equal(humanDuration(23 * 3_600_000 + 30_000), "23h 0m");
    assert.equal(humanDuration(2 * 86_400_000 + 59_000), "2d 0h");
    assert.equal(humanDuration(60_000 + 999), "1m 0s");
    assert.equal(humanDuration(3_600_000), "1h");
    assert.equal(humanDuration(7 * 86_400_000), "7d");
  });

  it("prints ISO-8601 UTC to the second", () => {
    assert.equal(isoSeconds(new Date("2026-11-21T03:00:00.123Z")), "2026-11-21T03:00:00Z");
  });

  it("prints a time in a zone with its offset, across DST changes", () => {
    // Europe/Berlin: CET (+01:00) in winter, CEST (+02:00) from the last Sunday of March, 02:00 local.
    assert.equal(localTime(new Date("2026-12-07T02:00:00Z"), "Europe/Berlin"), "2026-12-07 03:00:00+01:00");
    assert.equal(localTime(new Date("2026-03-29T00:59:59Z"), "Europe/Berlin"), "2026-03-29 01:59:59+01:00");
    assert.equal(localTime(new Date("2026-03-29T01:00:00Z"), "Europe/Berlin"), "2026-03-29 03:00:00+02:00");
    // The fall-back night has two 02:30s; the offset tells them apart.
    assert.equal(localTime(new Date("2026-10-25T00:30:00Z"), "Europe/Berlin"), "2026-10-25 02:30:00+02:00");
    assert.equal(localTime(new Date("2026-10-25T01:30:00Z"), "Europe/Berlin"), "2026-10-25 02:30:00+01:00");
    assert.equal(localTime(new Date("2026-03-05T12:00:00.999Z"), "America/St_Johns"), "2026-03-05 08:30:00-03:30");
    assert.equal(localTime(new Date("2026-11-21T00:00:00Z"), "UTC"), "2026-11-21 00:00:00+00:00");
    assert.equal(localTime(new Date("2026-12-31T23:30:00Z"), "Asia/Kolkata"), "2027-01-01 05:00:00+05:30");
  });

  it("rewrites the ISO UTC times in a text, and only those", () => {
    assert.equal(
      localTimesIn("due since 2026-11-21T03:00:00Z (0 3 * * *), run 20261121T030000Z-abc", "Europe/Berlin"),
      "due since 2026-11-21 04:00:00+01:00 (0 3 * * *), run 20261121T030000Z-abc",
    );
  });
});

describe("localTime against Intl, instant by instant", () => {
  /** What Intl says the wall clock reads at `at`, with the offset worked out from it (no caching). */
  const formatters = new Map<string, Intl.DateTimeFormat>();
  function reference(at: Date, timeZone: string): string {
    const formatter = formatters.get(timeZone) ?? new Intl.DateTimeFormat("en-US", {
      timeZone,
      hourCycle: "h23",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
    });
    formatters.set(timeZone, formatter);
    const parts: Record<string, string> = {};
    for (const part of formatter.formatToParts(at)) parts[part.type] = part.value;
    const wall = Date.UTC(+parts.year, +parts.month - 1, +parts.day, +parts.hour, +parts.minute, +parts.second);
    const offset = Math.round((wall - at.getTime()) / 60_000);
    const pad = (n: number) => String(Math.abs(n)).padStart(2, "0");
    return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}:${parts.second}` +
      `${offset < 0 ? "-" : "+"}${pad(Math.trunc(offset / 60))}:${pad(offset % 60)}`;
  }

  it("agrees every 17 min 13 s of a year, across daylight saving changes of whole, half and quarter hours", () => {
    const zones = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu", "Pacific/Chatham"];
    for (const zone of zones) {
      for (let at = Date.UTC(2026, 0, 1); at < Date.UTC(2027, 0, 1); at += 1_033_000) {
        const date = new Date(at);
        assert.equal(localTime(date, zone), reference(date, zone), `${zone} at ${date.toISOString()}`);
      }
    }
  });
});
