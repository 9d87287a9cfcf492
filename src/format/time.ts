/**
 * Time formatting shared by plan output, status, history and snapshots: ISO-8601 UTC to the second (JSON, plan files),
 * times for people in a time zone with its UTC offset, and short durations.
 */
export function isoSeconds(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** The machine's time zone (TZ, else the system's), "UTC" when the runtime cannot tell. */
export function machineTimeZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
}

/**
 * Two ISO-8601 times written the same way (both UTC to the second, or both with milliseconds), earlier first: as text,
 * code point by code point. Not localeCompare, whose collation needs ICU (about 17 ms and 6 MiB on first use) and
 * cannot change the order of such strings.
 */
export function compareTimes(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let formatter = formatters.get(timeZone);
  if (!formatter) {
    formatter = new Intl.DateTimeFormat("en-US", {
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
  }
  return formatter;
}

/**
 * The offset from UTC of `timeZone` at `at` (ms), in minutes. Offsets change on whole quarter hours (daylight saving
 * and zone changes alike), so one Intl lookup serves a quarter of an hour: a page of a thousand times needs far fewer
 * than a thousand (each takes microseconds).
 */
function offsetMinutesAt(timeZone: string, at: number): number {
  if (timeZone === "UTC") return 0; // no lookup: ICU's start costs more than the rest of a plan's formatting
  const bucket = Math.floor(at / 900_000);
  const key = `${timeZone}\u0000${bucket}`;
  let offset = offsets.get(key);
  if (offset === undefined) {
    const start = bucket * 900_000;
    const parts: Record<string, string> = {};
    for (const part of formatterFor(timeZone).formatToParts(new Date(start))) parts[part.type] = part.value;
    const [year, month, day, hour, minute, second] = ["year", "month", "day", "hour", "minute", "second"]
      .map((type) => Number(parts[type]));
    offset = Math.round((Date.UTC(year, month - 1, day, hour, minute, second) - start) / 60_000);
    if (offsets.size > 50_000) offsets.clear();
    offsets.set(key, offset);
  }
  return offset;
}

const offsets = new Map<string, number>();

/**
 * A time for people: `2026-12-07 03:00:00+01:00`, the wall-clock time in `timeZone` (IANA) and its offset from UTC,
 * to the second. Unambiguous across DST changes (the offset tells the two 02:30s of a fall-back night apart).
 */
export function localTime(date: Date, timeZone: string): string {
  const at = Math.floor(date.getTime() / 1000) * 1000;
  const offsetMinutes = offsetMinutesAt(timeZone, at);
  const wall = new Date(at + offsetMinutes * 60_000);
  const sign = offsetMinutes < 0 ? "-" : "+";
  const abs = Math.abs(offsetMinutes);
  const pad = (n: number, width = 2) => String(n).padStart(width, "0");
  return `${pad(wall.getUTCFullYear(), 4)}-${pad(wall.getUTCMonth() + 1)}-${pad(wall.getUTCDate())} ` +
    `${pad(wall.getUTCHours())}:${pad(wall.getUTCMinutes())}:${pad(wall.getUTCSeconds())}` +
    `${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

/** ISO-8601 UTC times to the second (`2026-11-21T03:00:00Z`, as plan reasons carry them) written in `timeZone`. */
export function localTimesIn(text: string, timeZone: string): string {
  return text.replace(/\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{3})?Z\b/g, (iso) => localTime(new Date(iso), timeZone));
}

/**
 * "3d 4h", "17h", "23h 0m", "2m 5s", "45s": the largest unit, and the next one unless nothing is left after the
 * largest. The next unit is shown even when it is zero: 23 h 0 min 30 s is "23h 0m", never "23h 30s".
 */
export function humanDuration(ms: number): string {
  const abs = Math.abs(ms);
  if (abs < 1000) return `${Math.round(abs)}ms`;
  const units: [string, number][] = [["d", 86_400_000], ["h", 3_600_000], ["m", 60_000], ["s", 1000]];
  const parts: string[] = [];
  let rest = abs;
  for (const [unit, size] of units) {
    const n = Math.floor(rest / size);
    if (n > 0 || parts.length > 0) parts.push(`${n}${unit}`);
    rest -= n * size;
    if (parts.length === 2 || (parts.length === 1 && rest === 0)) break;
  }
  return parts.join(" ");
}
