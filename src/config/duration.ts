/** Durations in the config: "90s", "15m", "2h", "7d", "1w", and sums like "1h30m". m is minutes here. */
const durationPart = /(\d+)(ms|s|m|h|d|w)/gy;
const unitMs: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** Parses a duration; returns undefined when the text is not one. */
export function parseDuration(text: string): number | undefined {
  if (text.length === 0) return undefined;
  durationPart.lastIndex = 0;
  let total = 0;
  let consumed = 0;
  for (let match = durationPart.exec(text); match; match = durationPart.exec(text)) {
    total += Number(match[1]) * unitMs[match[2]];
    consumed = durationPart.lastIndex;
  }
  return consumed === text.length ? total : undefined;
}

/** restic's own duration notation for `--keep-within*`: years, months, days, hours ("1y6m", "14d", "12h"). */
const resticDuration = /^(?=\d)(\d+y)?(\d+m)?(\d+d)?(\d+h)?$/;

export function isResticDuration(text: string): boolean {
  return resticDuration.test(text);
}

export interface ResticDuration {
  years: number;
  months: number;
  days: number;
  hours: number;
}

export function parseResticDuration(text: string): ResticDuration | undefined {
  const match = resticDuration.exec(text);
  if (!match) return undefined;
  const n = (part: string | undefined) => (part ? Number(part.slice(0, -1)) : 0);
  return { years: n(match[1]), months: n(match[2]), days: n(match[3]), hours: n(match[4]) };
}
