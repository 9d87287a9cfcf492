/**
 * The clock runs and snapshots are recorded with. `--now ISO` shifts it: time then flows from that instant, so
 * durations stay real while schedules, audit rows and restic's --time see the chosen date.
 */
export interface Clock {
  now(): Date;
}

export function createClock(start?: Date): Clock {
  if (!start) return { now: () => new Date() };
  const offset = start.getTime() - Date.now();
  return { now: () => new Date(Date.now() + offset) };
}
