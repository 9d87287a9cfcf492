/** Timing helpers for the benchmarks: medians of repeated runs, ratios against a baseline from the same run. */
export interface Row {
  benchmark: string;
  case: string;
  value: string;
  baseline: string;
  ratio: number;
  note: string;
}

/** Runs `work` `runs` times and returns each duration in milliseconds. */
export async function time(runs: number, work: () => unknown): Promise<number[]> {
  const durations: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    await work();
    durations.push(performance.now() - start);
  }
  return durations;
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}
