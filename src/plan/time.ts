/** Time formatting shared by plan output and status: ISO-8601 UTC to the second, and short ages. */
export function isoSeconds(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** "3d 4h", "2h 5m", "45s": the largest two units. */
export function humanDuration(ms: number): string {
  const abs = Math.abs(ms);
  if (abs < 1000) return `${Math.round(abs)}ms`;
  const units: [string, number][] = [["d", 86_400_000], ["h", 3_600_000], ["m", 60_000], ["s", 1000]];
  const parts: string[] = [];
  let rest = abs;
  for (const [unit, size] of units) {
    const n = Math.floor(rest / size);
    if (n > 0 || (parts.length === 0 && unit === "s")) parts.push(`${n}${unit}`);
    rest -= n * size;
    if (parts.length === 2) break;
  }
  return parts.join(" ");
}
