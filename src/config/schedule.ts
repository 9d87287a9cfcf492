/** Cron schedules (five fields or an @alias) read in an IANA time zone, evaluated with cron-parser. */
import { CronExpressionParser } from "cron-parser";

const aliases = new Set(["@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"]);

/** Returns why the expression is not a valid schedule, or undefined when it is. */
export function scheduleProblem(expression: string): string | undefined {
  const text = expression.trim();
  if (text.startsWith("@")) {
    return aliases.has(text) ? undefined : `unknown schedule alias "${text}"; use one of ${[...aliases].join(", ")}`;
  }
  const fields = text.split(/\s+/).filter(Boolean);
  if (fields.length !== 5) {
    return `expected a five-field cron expression (minute hour day-of-month month day-of-week) or @daily etc., ` +
      `got ${fields.length} field${fields.length === 1 ? "" : "s"} in "${expression}"`;
  }
  if (fields.some((field) => /(?<![A-Za-z])H(?![A-Za-z])/i.test(field))) {
    // cron-parser picks a random value for H on every parse, which would make plans unstable.
    return `"H" (hashed) values are not supported in "${expression}": write the minute and hour you want`;
  }
  try {
    CronExpressionParser.parse(text, { tz: "UTC" });
    return undefined;
  } catch (error) {
    return `invalid cron expression "${expression}": ${(error as Error).message}`;
  }
}

/** Returns why the name is not a known IANA time zone, or undefined when it is. */
export function timezoneProblem(name: string): string | undefined {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: name });
    return undefined;
  } catch {
    return `unknown time zone "${name}"; use an IANA name such as "UTC" or "Europe/Berlin"`;
  }
}

/** The latest slot at or before `now`, or undefined when the schedule has none (it cannot, for valid crons). */
export function previousSlot(expression: string, timezone: string, now: Date): Date | undefined {
  const iterator = CronExpressionParser.parse(expression.trim(), {
    tz: timezone,
    currentDate: new Date(now.getTime() + 1),
  });
  return iterator.hasPrev() ? iterator.prev().toDate() : undefined;
}

/** The first slot strictly after `now`. */
export function nextSlot(expression: string, timezone: string, now: Date): Date {
  const iterator = CronExpressionParser.parse(expression.trim(), { tz: timezone, currentDate: now });
  return iterator.next().toDate();
}

/** Slots in (after, upTo], capped at `limit` (to count missed runs without walking years of minutes). */
export function slotsBetween(expression: string, timezone: string, after: Date, upTo: Date, limit = 1000): number {
  const iterator = CronExpressionParser.parse(expression.trim(), { tz: timezone, currentDate: after, endDate: upTo });
  let count = 0;
  while (count < limit && iterator.hasNext()) {
    iterator.next();
    count++;
  }
  return count;
}
