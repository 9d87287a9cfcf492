/**
 * How a project's retention drives pgBackRest's: the time its policy reaches back (the longest of its keep-hourly …
 * keep-yearly periods and keep-within durations) becomes the number of full backups to keep, so that a restore can
 * reach any moment of that time. With fulls every `interval`, N fulls reach back at least (N - 1) × interval, hence
 * N = ceil(span / interval) + 1: keep-weekly 4 with weekly fulls keeps 5 fulls (28 days and more of point-in-time
 * recovery). Differential and incremental backups, and the WAL, go with their full (pgBackRest's own rule). `last`
 * counts snapshots, not time: a policy of `last` alone keeps two fulls. Pure: the schedule's interval is its average over a
 * fixed year.
 */
import { parseResticDuration } from "../config/duration.ts";
import { slotsBetween } from "../config/schedule.ts";
import type { Retention } from "../config/types.ts";
import type { PgBackRestRetention } from "./types.ts";

const hour = 3_600_000;
const day = 24 * hour;

/** The time the policy reaches back, in milliseconds (0 when it only counts snapshots). */
export function retentionSpanMs(retention: Retention): number {
  const periods = [
    (retention.hourly ?? 0) * hour,
    (retention.daily ?? 0) * day,
    (retention.weekly ?? 0) * 7 * day,
    (retention.monthly ?? 0) * 31 * day,
    (retention.yearly ?? 0) * 366 * day,
  ];
  const withins = [
    retention.within,
    retention.withinHourly,
    retention.withinDaily,
    retention.withinWeekly,
    retention.withinMonthly,
    retention.withinYearly,
  ];
  for (const text of withins) {
    const parsed = text === undefined ? undefined : parseResticDuration(text);
    if (parsed) {
      periods.push(parsed.years * 366 * day + parsed.months * 31 * day + parsed.days * day + parsed.hours * hour);
    }
  }
  return Math.max(0, ...periods);
}

/** The average time between two slots of a schedule, over the year 2026. */
export function scheduleIntervalMs(expression: string, timezone: string): number {
  const from = new Date("2026-01-01T00:00:00Z");
  const to = new Date("2027-01-01T00:00:00Z");
  const slots = slotsBetween(expression, timezone, from, to, 10_000);
  return slots === 0 ? to.getTime() - from.getTime() : (to.getTime() - from.getTime()) / slots;
}

/** pgBackRest's retention for a project's `retention` with full backups on `fullSchedule`. */
export function pgBackRestRetention(retention: Retention, fullSchedule: string, timezone: string): PgBackRestRetention {
  const span = retentionSpanMs(retention);
  // Only `last`: the newest full and the one before, so a restore to before the newest full stays possible.
  if (span === 0) return { full: 2 };
  // A few seconds of slack so that exactly four weeks of weekly fulls is 4 intervals, not 4.00001.
  const intervals = Math.ceil((span - 60_000) / scheduleIntervalMs(fullSchedule, timezone));
  return { full: Math.max(1, intervals) + 1 };
}
