/** Cron schedules (five fields or an @alias) read in an IANA time zone, evaluated with cron-parser. */
import { type CronExpression, CronExpressionParser } from "cron-parser";
import { createRequire } from "node:module";
import { cut, describeValue } from "./issues.ts";

/*
 * cron-parser's own luxon (a CommonJS module of its own): told the locale and the zone it would otherwise ask ICU for
 * when it makes a date (its system locale and zone; every date cron-parser makes here is then set to the schedule's
 * zone). Schedules in UTC then never start ICU, which costs about 17 ms and 6 MiB at the first use.
 */
const luxon = createRequire(createRequire(import.meta.url).resolve("cron-parser"))("luxon") as {
  Settings: { defaultLocale: string; defaultZone: string };
};
luxon.Settings.defaultLocale = "en-US";
luxon.Settings.defaultZone = "UTC";

const aliases = new Set(["@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"]);

/**
 * Answers of the pure functions below, by their arguments: a fleet's config repeats a few schedules and zones over
 * hundreds of projects, and a cron-parser or Intl call costs a tenth of a millisecond. Emptied when full, so a
 * long-running watch, asking with a new `now` every minute, keeps it small.
 */
const memo = new Map<string, string | number | undefined>();
const memoLimit = 20_000;

function remembered<T extends string | number | undefined>(key: string, compute: () => T): T {
  if (memo.has(key)) return memo.get(key) as T;
  const value = compute();
  if (memo.size >= memoLimit) memo.clear();
  memo.set(key, value);
  return value;
}

/** Returns why the expression is not a valid schedule, or undefined when it is. */
export function scheduleProblem(expression: string): string | undefined {
  return remembered(`problem\u0000${expression}`, () => computeScheduleProblem(expression));
}

function computeScheduleProblem(expression: string): string | undefined {
  const text = expression.trim();
  if (text.startsWith("@")) {
    return aliases.has(text)
      ? undefined
      : `unknown schedule alias ${describeValue(text)}; use one of ${[...aliases].join(", ")}`;
  }
  const fields = text.split(/\s+/).filter(Boolean);
  if (fields.length !== 5) {
    return `expected a five-field cron expression (minute hour day-of-month month day-of-week) or @daily etc., ` +
      `got ${fields.length} field${fields.length === 1 ? "" : "s"} in ${describeValue(expression)}`;
  }
  if (fields.some((field) => /(?<![A-Za-z])H(?![A-Za-z])/i.test(field))) {
    // cron-parser picks a random value for H on every parse, which would make plans unstable.
    return `"H" (hashed) values are not supported in ${describeValue(expression)}: write the minute and hour you want`;
  }
  try {
    CronExpressionParser.parse(text, { tz: "UTC" });
    return undefined;
  } catch (error) {
    return `invalid cron expression ${describeValue(expression)}: ${cut((error as Error).message, 160)}`;
  }
}

/** Returns why the name is not a known IANA time zone, or undefined when it is. */
export function timezoneProblem(name: string): string | undefined {
  return remembered(`zone\u0000${name}`, () => computeTimezoneProblem(name));
}

function computeTimezoneProblem(name: string): string | undefined {
  if (name === "UTC") return undefined; // valid without asking ICU, whose start costs more than the whole check
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: name });
    return undefined;
  } catch {
    return `unknown time zone ${describeValue(name)}; use an IANA name such as "UTC" or "Europe/Berlin"`;
  }
}

/*
 * cron-parser's prev() and next() disagree with each other around daylight-saving changes: prev() skips the slot
 * that next() moves into the spring gap, and both may return a repeated autumn local time twice, depending on where
 * they start. Near a change, both functions below therefore step next() forward from 3 hours before it, so every
 * slot follows one rule: a local time that does not exist fires once just after the gap, a repeated one fires once.
 */

const hour = 3_600_000;
const day = 24 * hour;
const offsetFormats = new Map<string, Intl.DateTimeFormat>();

/** The zone's UTC offset at an instant, as text ("GMT+01:00"). */
function utcOffset(timezone: string, at: number): string {
  let format = offsetFormats.get(timezone);
  if (!format) {
    format = new Intl.DateTimeFormat("en-US", { timeZone: timezone, timeZoneName: "longOffset" });
    offsetFormats.set(timezone, format);
  }
  return format.formatToParts(new Date(at)).find((part) => part.type === "timeZoneName")?.value ?? "";
}

/** The instant (to the minute) the zone's offset changes within [from, to], which spans at most a few days. */
function offsetChange(timezone: string, from: number, to: number): number | undefined {
  if (timezone === "UTC" || from >= to) return undefined;
  const before = utcOffset(timezone, from);
  if (before === utcOffset(timezone, to)) return undefined;
  let low = from;
  let high = to;
  while (high - low > 60_000) {
    const middle = low + Math.floor((high - low) / 2);
    if (utcOffset(timezone, middle) === before) low = middle;
    else high = middle;
  }
  return high;
}

/** Slots stepped forward with next() from `start`; stops at the first slot after `until`. */
function* slotsFrom(expression: string, timezone: string, start: number, until: number): Generator<Date> {
  const iterator = CronExpressionParser.parse(expression, { tz: timezone, currentDate: new Date(start) });
  for (let steps = 0; steps < 100_000; steps++) {
    const slot = iterator.next().toDate();
    yield slot;
    if (slot.getTime() > until) return;
  }
}

/**
 * The fixed-offset zone ("UTC+1:00") equal to `timezone` over [from, to], when its offset is the same at both ends.
 * Over such a window (8 days at most: offset changes are months apart) the named zone and the fixed one map local
 * times identically, and cron-parser (luxon) evaluates fixed zones several times faster than named ones.
 */
function fixedZone(timezone: string, from: number, to: number): string | undefined {
  if (timezone === "UTC") return "UTC+0";
  const offset = utcOffset(timezone, from);
  if (offset !== utcOffset(timezone, to)) return undefined;
  const match = /^GMT([+-])(\d{2}):(\d{2})$/.exec(offset);
  if (!match) return offset === "GMT" ? "UTC+0" : undefined;
  return `UTC${match[1]}${Number(match[2])}:${match[3]}`;
}

/** The latest slot at or before `now`, or undefined when the schedule has none (it cannot, for valid crons). */
export function previousSlot(expression: string, timezone: string, now: Date): Date | undefined {
  const at = remembered(
    `previous\u0000${expression}\u0000${timezone}\u0000${now.getTime()}`,
    () => computePreviousSlot(expression, timezone, now)?.getTime(),
  );
  return at === undefined ? undefined : new Date(at);
}

function computePreviousSlot(expression: string, timezone: string, now: Date): Date | undefined {
  const text = expression.trim();
  const window = now.getTime() - 8 * day;
  const fixed = fixedZone(timezone, window, now.getTime() + 3 * hour);
  if (fixed) {
    const quick = CronExpressionParser.parse(text, { tz: fixed, currentDate: new Date(now.getTime() + 1) });
    const slot = previousOf(quick);
    if (slot && slot.getTime() >= window + 3 * hour) return slot;
  }
  const iterator = CronExpressionParser.parse(text, { tz: timezone, currentDate: new Date(now.getTime() + 1) });
  const candidate = previousOf(iterator);
  if (candidate === undefined) return undefined;
  const change = offsetChange(
    timezone,
    Math.max(candidate.getTime() - 3 * hour, now.getTime() - 8 * day),
    now.getTime() + 3 * hour,
  );
  if (change === undefined) return candidate;
  let latest: Date | undefined;
  for (const slot of slotsFrom(text, timezone, Math.min(change - 3 * hour, now.getTime()), now.getTime())) {
    if (slot.getTime() <= now.getTime()) latest = slot;
  }
  return latest ?? candidate;
}

/**
 * The iterator's previous slot, undefined when it has none. What cron-parser's hasPrev() answers, found once: hasPrev()
 * looks for the slot and forgets it, and prev() would look again.
 */
function previousOf(iterator: CronExpression): Date | undefined {
  try {
    return iterator.prev().toDate();
  } catch {
    return undefined;
  }
}

/** The first slot strictly after `now`. */
export function nextSlot(expression: string, timezone: string, now: Date): Date {
  return new Date(
    remembered(
      `next\u0000${expression}\u0000${timezone}\u0000${now.getTime()}`,
      () => computeNextSlot(expression, timezone, now).getTime(),
    ),
  );
}

function computeNextSlot(expression: string, timezone: string, now: Date): Date {
  const text = expression.trim();
  const window = now.getTime() + 8 * day;
  const fixed = fixedZone(timezone, now.getTime() - 3 * hour, window);
  if (fixed) {
    const slot = CronExpressionParser.parse(text, { tz: fixed, currentDate: now }).next().toDate();
    if (slot.getTime() <= window - 3 * hour) return slot;
  }
  const candidate = CronExpressionParser.parse(text, { tz: timezone, currentDate: now }).next().toDate();
  const change = offsetChange(
    timezone,
    now.getTime() - 3 * hour,
    Math.min(candidate.getTime() + 3 * hour, now.getTime() + 8 * day),
  );
  if (change === undefined || change - 3 * hour >= now.getTime()) return candidate;
  for (const slot of slotsFrom(text, timezone, change - 3 * hour, now.getTime())) {
    if (slot.getTime() > now.getTime()) return slot;
  }
  return candidate;
}

/** Slots in (after, upTo], capped at `limit` (to count missed runs without walking years of minutes). */
export function slotsBetween(expression: string, timezone: string, after: Date, upTo: Date, limit = 1000): number {
  const iterator = CronExpressionParser.parse(expression.trim(), { tz: timezone, currentDate: after, endDate: upTo });
  let count = 0;
  // next() throws past endDate: what hasNext() would find out by looking for the same slot first.
  for (; count < limit; count++) {
    try {
      iterator.next();
    } catch {
      break;
    }
  }
  return count;
}
