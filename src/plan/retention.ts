/**
 * Retention with the exact semantics of `restic forget` (restic 0.14, `internal/restic/snapshot_policy.go`), as a
 * pure function over one group of snapshots, so a plan can say which snapshots a forget will remove before it runs.
 * docs/retention.md explains the rules for operators; test/plan/retention_oracle_test.ts checks them against restic.
 */
import type { Retention } from "../config/types.ts";
import { parseResticDuration, type ResticDuration } from "../config/duration.ts";
import { canonicalJson } from "../config/fingerprint.ts";

/**
 * The key of a retention group: the snapshots of one source of a project in one repository, to which retention
 * applies on their own. The planner, the executor and the state's read model group snapshots by it.
 */
export function retentionGroupKey(project: string, source: string, repository: string): string {
  return `${project}\u0000${source}\u0000${repository}`;
}

/** One snapshot of a retention group. */
export interface RetentionSnapshot {
  id: string;
  /** ISO 8601 / RFC 3339 time as restic records it, e.g. "2026-11-22T03:00:00.123456789Z". */
  time: string;
}

/** What `restic forget` would do with one group. */
export interface RetentionDecision {
  /** Kept snapshots, newest first, each with every rule that keeps it, in restic's words. */
  keep: { id: string; reasons: string[] }[];
  /** Ids of the snapshots forget would remove, newest first. */
  forget: string[];
}

/** Options of {@link applyRetention}. */
export interface RetentionOptions {
  /**
   * The present. restic measures `within*` rules from the newest snapshot that is not in the future (at or after its
   * host's clock), so one snapshot with a wrong, far-future time cannot shrink every window. Omitted, no snapshot
   * counts as in the future, and such a snapshot becomes the anchor: pass `now` whenever the decision is acted on.
   */
  now?: Date;
}

/** The keep rules, in the order restic evaluates and reports them. */
const countRules = ["last", "hourly", "daily", "weekly", "monthly", "yearly"] as const;
const withinRules = ["within", "withinHourly", "withinDaily", "withinWeekly", "withinMonthly", "withinYearly"] as const;
type CountRule = (typeof countRules)[number];
type WithinRule = (typeof withinRules)[number];

/** A calendar period: the number restic compares to tell whether two snapshots share an hour, day, week, … */
type Bucket = "hour" | "day" | "week" | "month" | "year";

const countBuckets: Record<Exclude<CountRule, "last">, Bucket> = {
  hourly: "hour",
  daily: "day",
  weekly: "week",
  monthly: "month",
  yearly: "year",
};
/** The period and the words of each within rule; plain `within` keeps every snapshot of its window. */
const withinBuckets: Record<WithinRule, [Bucket | "each", string]> = {
  within: ["each", "within"],
  withinHourly: ["hour", "hourly within"],
  withinDaily: ["day", "daily within"],
  withinWeekly: ["week", "weekly within"],
  withinMonthly: ["month", "monthly within"],
  withinYearly: ["year", "yearly within"],
};

/** A snapshot time to the nanosecond (JS numbers cannot hold nanoseconds since 1970 exactly, so two parts). */
interface Instant {
  /** Whole seconds since 1970-01-01T00:00:00Z. */
  sec: number;
  nano: number;
  /** The offset written in the time, in seconds east of UTC: restic buckets by the wall clock at that offset. */
  offset: number;
}

interface Parsed extends Instant {
  id: string;
  /** Worked out when a rule first needs them. */
  buckets: Buckets | undefined;
}

/** The value of the two digits at `at`, or NaN. */
function twoDigits(text: string, at: number): number {
  const high = text.charCodeAt(at) - 48;
  const low = text.charCodeAt(at + 1) - 48;
  return high >= 0 && high <= 9 && low >= 0 && low <= 9 ? high * 10 + low : NaN;
}

/**
 * A snapshot of the group, its time parsed: an object of one shape made at once (a fleet's plan makes 100,000 of
 * them), not the instant spread into a new object and grown by its buckets later.
 */
function parsed(snapshot: RetentionSnapshot): Parsed {
  const { sec, nano, offset } = parseInstant(snapshot.time);
  return { id: snapshot.id, sec, nano, offset, buckets: undefined };
}

/**
 * Parses the RFC 3339 times restic writes ("YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)"), by hand rather than with a
 * regular expression or Date: inventories hold many thousands, and Date would drop the nanoseconds.
 */
function parseInstant(time: string): Instant {
  const fail = () => new Error(`not an RFC 3339 snapshot time: ${JSON.stringify(time)}`);
  const separators = time[4] === "-" && time[7] === "-" && time[13] === ":" && time[16] === ":";
  if (!separators || !"Tt ".includes(time[10])) throw fail();
  const month = twoDigits(time, 5);
  const day = twoDigits(time, 8);
  const hour = twoDigits(time, 11);
  const minute = twoDigits(time, 14);
  const second = twoDigits(time, 17);
  if (!(month >= 1 && month <= 12 && day >= 1 && day <= 31 && hour <= 23 && minute <= 59 && second <= 60)) throw fail();
  const wall = daysFromCivil(twoDigits(time, 0) * 100 + twoDigits(time, 2), month, day) * 86_400 + hour * 3600 +
    minute * 60 + second;
  let at = 19;
  let nano = 0;
  if (time[at] === ".") {
    for (let scale = 100_000_000; ++at < time.length && scale >= 1; scale /= 10) {
      const digit = time.charCodeAt(at) - 48;
      if (digit < 0 || digit > 9) break;
      nano += digit * scale;
    }
    if (at === 20) throw fail();
  }
  let offset = 0;
  if ((time[at] === "+" || time[at] === "-") && time[at + 3] === ":" && at + 6 === time.length) {
    offset = (time[at] === "-" ? -1 : 1) * (twoDigits(time, at + 1) * 3600 + twoDigits(time, at + 4) * 60);
  } else if (!((time[at] === "Z" || time[at] === "z") && at + 1 === time.length)) throw fail();
  if (Number.isNaN(wall + offset)) throw fail();
  return { sec: wall - offset, nano, offset };
}

/** Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm; no Date quirks for small years). */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146_097 + doe - 719_468;
}

function civilFromDays(days: number): { year: number; month: number; day: number } {
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const doe = z - era * 146_097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const month = mp < 10 ? mp + 3 : mp - 9;
  return { year: yoe + era * 400 + (month <= 2 ? 1 : 0), month, day: doy - Math.floor((153 * mp + 2) / 5) + 1 };
}

/** restic's bucket numbers of one snapshot, worked out once: YYYYMMDDHH, YYYYMMDD, ISO year*100+week, YYYYMM, YYYY. */
type Buckets = Record<Bucket, number>;

/** The bucket numbers on the snapshot's own wall clock (restic reads the time in the offset it was written with). */
function bucketsOf(instant: Instant): Buckets {
  const wall = instant.sec + instant.offset;
  const days = Math.floor(wall / 86_400);
  const date = dayBuckets(days);
  return {
    hour: date.day * 100 + Math.floor((wall - days * 86_400) / 3600),
    day: date.day,
    week: date.week,
    month: date.month,
    year: date.year,
  };
}

/**
 * The buckets of a day (days since 1970) but its hour, remembered: the groups of a fleet's inventory share their
 * days (a snapshot a day each), and the calendar arithmetic is most of what a bucket costs. Emptied when full, so a
 * long-running watch keeps it small.
 */
const dayMemo = new Map<number, Omit<Buckets, "hour">>();
const dayMemoLimit = 10_000;

function dayBuckets(days: number): Omit<Buckets, "hour"> {
  const known = dayMemo.get(days);
  if (known) return known;
  const { year, month, day } = civilFromDays(days);
  // ISO 8601: a week belongs to the year of its Thursday; weeks start on Monday. 1970-01-01 was a Thursday.
  const thursday = days - (((days + 3) % 7) + 7) % 7 + 3;
  const isoYear = civilFromDays(thursday).year;
  const week = Math.floor((thursday - daysFromCivil(isoYear, 1, 1)) / 7) + 1;
  const buckets = {
    day: year * 10_000 + month * 100 + day,
    week: isoYear * 100 + week,
    month: year * 100 + month,
    year,
  };
  if (dayMemo.size >= dayMemoLimit) dayMemo.clear();
  dayMemo.set(days, buckets);
  return buckets;
}

/**
 * `latest.AddDate(-years, -months, -days).Add(-hours)` in Go: calendar arithmetic on the wall clock, where a day past
 * the month's end flows into the next month (Mar 31 − 1m = "Feb 31" = Mar 3), then exact hours.
 */
function subtractDuration(latest: Instant, duration: ResticDuration): Instant {
  const wall = latest.sec + latest.offset;
  const days = Math.floor(wall / 86_400);
  const timeOfDay = wall - days * 86_400;
  const { year, month, day } = civilFromDays(days);
  const months = (year - duration.years) * 12 + (month - 1 - duration.months);
  const shifted = daysFromCivil(Math.floor(months / 12), (months % 12 + 12) % 12 + 1, 1) + day - 1 - duration.days;
  return { sec: shifted * 86_400 + timeOfDay - latest.offset - duration.hours * 3600, nano: latest.nano, offset: 0 };
}

function isAfter(a: Instant, b: Instant): boolean {
  return a.sec > b.sec || (a.sec === b.sec && a.nano > b.nano);
}

function isZero(duration: ResticDuration): boolean {
  return duration.years === 0 && duration.months === 0 && duration.days === 0 && duration.hours === 0;
}

/** restic's `Duration.String()`: zero parts left out ("0y14d" → "14d"). */
function formatDuration({ years, months, days, hours }: ResticDuration): string {
  const part = (n: number, unit: string) => (n !== 0 ? `${n}${unit}` : "");
  return part(years, "y") + part(months, "m") + part(days, "d") + part(hours, "h");
}

function durationOf(rule: WithinRule, text: string): ResticDuration {
  const duration = parseResticDuration(text);
  if (!duration) throw new Error(`retention.${rule}: not a restic duration: ${JSON.stringify(text)}`);
  return duration;
}

/** The rules restic acts on: counts above zero and non-zero durations (restic ignores the others). */
interface EffectiveRules {
  counts: { rule: CountRule; count: number }[];
  withins: { rule: WithinRule; duration: ResticDuration }[];
}

function effectiveRules(policy: Retention): EffectiveRules {
  const counts = countRules.flatMap((rule) => {
    const count = policy[rule];
    return count !== undefined && count > 0 ? [{ rule, count }] : [];
  });
  const withins = withinRules.flatMap((rule) => {
    const text = policy[rule];
    if (text === undefined) return [];
    const duration = durationOf(rule, text);
    return isZero(duration) ? [] : [{ rule, duration }];
  });
  return { counts, withins };
}

/** A rule being applied down the list: what bucket it last kept and how many keeps it has left. */
interface Tally {
  reason: string;
  bucket: Bucket | "each";
  left: number;
  last: number;
  cutoff?: Instant;
}

/**
 * Applies the keep rules of `policy` (ignores minSnapshots) to ONE group of snapshots, like `restic forget`.
 *
 * Snapshots are taken newest first; each rule keeps what it keeps and a snapshot no rule keeps is forgotten:
 * - `last n`: the n newest.
 * - `hourly|daily|weekly|monthly|yearly n`: going from the newest, the first snapshot of each new hour/day/ISO week/
 *   month/year, until n were kept. Periods are read on the wall clock of the offset written in the snapshot's time
 *   (UTC for backupctl). Periods without snapshots do not count.
 * - `within D`: every snapshot after (newest − D), newest being the newest snapshot not in the future (see
 *   {@link RetentionOptions.now}); y/m/d subtract on the calendar like Go's AddDate, h subtracts hours.
 * - `withinHourly D` … `withinYearly D`: the newest snapshot of every hour/day/week/month/year, among those after
 *   (newest − D).
 * A policy without rules keeps everything. Snapshots at the very same instant are ordered by id (restic's own order
 * for them is arbitrary): which of them is kept may differ from restic, how many are kept does not.
 */
export function applyRetention(
  snapshots: readonly RetentionSnapshot[],
  policy: Retention,
  options: RetentionOptions = {},
): RetentionDecision {
  const keep: RetentionDecision["keep"] = [];
  const forget = decide(snapshots, policy, options, (id, reasons) => keep.push({ id, reasons }));
  return { keep, forget };
}

/**
 * The ids {@link applyRetention} forgets, newest first, without the reasons for what it keeps: the planner asks this of
 * every group of a fleet, and the reasons of 100,000 kept snapshots would be made only to be dropped.
 */
export function retentionForgets(
  snapshots: readonly RetentionSnapshot[],
  policy: Retention,
  options: RetentionOptions = {},
): string[] {
  return decide(snapshots, policy, options);
}

/** Applies the policy (see {@link applyRetention}): returns what it forgets, and tells `keep` what it keeps and why. */
function decide(
  snapshots: readonly RetentionSnapshot[],
  policy: Retention,
  options: RetentionOptions,
  keep?: (id: string, reasons: string[]) => void,
): string[] {
  const list: Parsed[] = snapshots.map(parsed);
  list.sort((a, b) => b.sec - a.sec || b.nano - a.nano || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));

  const rules = effectiveRules(policy);
  if (rules.counts.length === 0 && rules.withins.length === 0) {
    for (const snapshot of list) keep?.(snapshot.id, ["policy is empty"]);
    return [];
  }

  const now = options.now ? instantOfDate(options.now) : undefined;
  const latest = now ? list.find((snapshot) => isAfter(now, snapshot)) : list[0];

  // restic's order: within, then the counted rules, then the other within rules.
  const withinTally = ({ rule, duration }: EffectiveRules["withins"][number]): Tally => {
    const [bucket, words] = withinBuckets[rule];
    // No snapshot in the past: restic measures from Go's zero time (year 1), so the window holds every snapshot.
    const cutoff = latest ? subtractDuration(latest, duration) : undefined;
    return { reason: `${words} ${formatDuration(duration)}`, bucket, left: Infinity, last: -1, cutoff };
  };
  const tallies: Tally[] = [
    ...rules.withins.filter(({ rule }) => rule === "within").map(withinTally),
    ...rules.counts.map(({ rule, count }): Tally =>
      rule === "last"
        ? { reason: "last snapshot", bucket: "each", left: count, last: -1 }
        : { reason: `${rule} snapshot`, bucket: countBuckets[rule], left: count, last: -1 }
    ),
    ...rules.withins.filter(({ rule }) => rule !== "within").map(withinTally),
  ];

  const forget: string[] = [];
  list.forEach((snapshot, position) => {
    // Every rule sees every snapshot (each keeps its own count); the reasons are collected only when asked for.
    const reasons: string[] | undefined = keep ? [] : undefined;
    let kept = false;
    for (const tally of tallies) {
      if (tally.left <= 0) continue;
      if (tally.cutoff && !isAfter(snapshot, tally.cutoff)) continue;
      // restic compares with the bucket it last kept, not the previous snapshot's (they differ only across offsets).
      const value = tally.bucket === "each" ? position : (snapshot.buckets ??= bucketsOf(snapshot))[tally.bucket];
      if (value === tally.last) continue;
      tally.last = value;
      tally.left--;
      kept = true;
      reasons?.push(tally.reason);
    }
    if (!kept) forget.push(snapshot.id);
    else if (keep && reasons) keep(snapshot.id, reasons);
  });
  return forget;
}

function instantOfDate(date: Date): Instant {
  const ms = date.getTime();
  const sec = Math.floor(ms / 1000);
  return { sec, nano: (ms - sec * 1000) * 1_000_000, offset: 0 };
}

/** The keep rules as restic acts on them: zero counts and zero durations dropped, durations in restic's spelling. */
function normalizedRules(policy: Retention): Record<string, number | string> {
  const rules = effectiveRules(policy);
  const out: Record<string, number | string> = {};
  for (const { rule, count } of rules.counts) out[rule] = count;
  for (const { rule, duration } of rules.withins) out[rule] = formatDuration(duration);
  return out;
}

/**
 * Canonical JSON of the keep rules only (sorted keys, no minSnapshots, no undefined) — used to detect policy changes.
 * Rules restic ignores (a count of 0, a zero duration) are left out and durations are spelled as restic does
 * ("0y14d" → "14d"), so two policies that forget the same snapshots have the same key.
 */
export function policyKey(policy: Retention): string {
  return canonicalJson(normalizedRules(policy));
}

/**
 * Human description of a change between two policies, e.g. "daily 30 → 7, weekly 4 → none": the rules that differ,
 * in restic's order, named as in the config. "no change" when both keep the same.
 */
export function describePolicyChange(before: Retention, after: Retention): string {
  const was = normalizedRules(before);
  const now = normalizedRules(after);
  const changes = [...countRules, ...withinRules]
    .filter((rule) => was[rule] !== now[rule])
    .map((rule) => `${rule} ${was[rule] ?? "none"} → ${now[rule] ?? "none"}`);
  return changes.length > 0 ? changes.join(", ") : "no change";
}
