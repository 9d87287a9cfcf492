/**
 * Retention simulation (`plan --simulate 1y`): what each group's policy keeps over time, from today's complete
 * snapshots and the project's schedule. Pure, like the planner: every future slot of the schedule (with the project's
 * jitter) is replayed as an apply at that instant would run it — the forget decided over the snapshots there are, with
 * the newest always kept, then the slot's new backup — so the counts are those restic holds after the same applies.
 * At each checkpoint it reports the snapshots kept, how many each rule keeps, the oldest restore point, and a storage
 * estimate from the history's bytes added per run.
 */
import { parseDuration } from "../config/duration.ts";
import type { NormalizedProject } from "../config/normalize.ts";
import { nextSlot } from "../config/schedule.ts";
import { jitterOffset } from "./due.ts";
import { applyRetention, type RetentionSnapshot } from "./retention.ts";

/** What the history says a backup of a group adds to its repository. */
export interface GroupBytes {
  /** The most one backup added: the first, full one, taken as the size of the data. */
  full: number;
  /** The median added by a backup: what each further kept snapshot holds of its own. */
  typical: number;
}

export interface SimulationPoint {
  /** ISO time of the checkpoint. */
  at: string;
  /** "now", "after 30d", … */
  label: string;
  kept: number;
  /** Snapshots kept by each rule ("daily snapshot": 7, …); one snapshot kept by two rules counts for both. */
  byRule: Record<string, number>;
  /** The oldest snapshot kept: the furthest back a restore can go. */
  oldest: string | null;
  /** Estimated bytes the kept snapshots hold in the repository; undefined without history. */
  storageBytes?: number;
}

export interface GroupSimulation {
  project: string;
  source: string;
  repository: string;
  points: SimulationPoint[];
  /** Backups the schedule makes in the horizon. */
  backups: number;
}

/** Checkpoints reported within a horizon, besides its end. */
const checkpoints: [string, number][] = [
  ["7d", 7 * 86_400_000],
  ["30d", 30 * 86_400_000],
  ["90d", 90 * 86_400_000],
  ["180d", 180 * 86_400_000],
  ["1y", 365 * 86_400_000],
];

/** Backups replayed at most per group: an hourly schedule over a year is 8,760. */
const maxSlots = 20_000;

/** The horizon `--simulate` accepts: a duration of at most 10 years, where `y` is 365 days ("1y", "2y6w", "90d"). */
export function parseHorizon(text: string): number | undefined {
  const years = /^(\d+)y(.*)$/.exec(text.trim());
  const rest = years ? (years[2] === "" ? 0 : parseDuration(years[2])) : parseDuration(text);
  const ms = rest === undefined ? undefined : rest + (years ? Number(years[1]) * 365 * 86_400_000 : 0);
  return ms !== undefined && ms > 0 && ms <= 3650 * 86_400_000 ? ms : undefined;
}

/**
 * Simulates one group from `snapshots` (its complete snapshots now) over `horizonMs` after `now`. Simulated snapshots
 * get ids `sim-N`.
 */
export function simulateGroup(
  project: NormalizedProject,
  group: { source: string; repository: string },
  snapshots: RetentionSnapshot[],
  now: Date,
  horizonMs: number,
  bytes?: GroupBytes,
): GroupSimulation {
  let held = [...snapshots];
  const end = now.getTime() + horizonMs;
  const offset = jitterOffset(project);
  const marks = checkpoints.filter(([, ms]) => ms < horizonMs).map(([label, ms]) => ({
    label: `after ${label}`,
    at: now.getTime() + ms,
  }));
  marks.push({ label: `after ${formatHorizon(horizonMs)}`, at: end });
  const points = [point("now", now, held, project, bytes)];
  let backups = 0;
  let cursor = now;
  let next = 0;
  for (let n = 0; n < maxSlots; n++) {
    const slot = nextSlot(project.schedule, project.timezone, new Date(cursor.getTime() - offset));
    const at = new Date(slot.getTime() + offset);
    // Checkpoints passed before this backup: the state as it stands then.
    while (next < marks.length && marks[next].at < Math.min(at.getTime(), end + 1)) {
      points.push(point(marks[next].label, new Date(marks[next].at), held, project, bytes));
      next++;
    }
    if (at.getTime() > end) break;
    held = forgetAt(held, project, at);
    held.push({ id: `sim-${++backups}`, time: at.toISOString() });
    cursor = new Date(at.getTime() + 1000);
  }
  while (next < marks.length) {
    points.push(point(marks[next].label, new Date(marks[next].at), held, project, bytes));
    next++;
  }
  return { project: project.name, source: group.source, repository: group.repository, points, backups };
}

/** What an apply at `at` leaves of `held`: retention's forgets, never the newest snapshot nor one after `at`. */
function forgetAt(held: RetentionSnapshot[], project: NormalizedProject, at: Date): RetentionSnapshot[] {
  if (held.length < 2) return held;
  const decision = applyRetention(held, project.retention, { now: at });
  if (decision.forget.length === 0) return held;
  const newest = held.reduce((a, b) => (a.time >= b.time ? a : b));
  const gone = new Set(decision.forget.filter((id) => id !== newest.id));
  return held.filter((s) => !gone.has(s.id) || Date.parse(s.time) > at.getTime());
}

function point(
  label: string,
  at: Date,
  held: RetentionSnapshot[],
  project: NormalizedProject,
  bytes: GroupBytes | undefined,
): SimulationPoint {
  const byRule: Record<string, number> = {};
  if (held.length > 0) {
    for (const kept of applyRetention(held, project.retention, { now: at }).keep) {
      for (const reason of kept.reasons) byRule[reason] = (byRule[reason] ?? 0) + 1;
    }
  }
  const oldest = held.length > 0 ? held.reduce((a, b) => (a.time <= b.time ? a : b)).time : null;
  return {
    at: at.toISOString(),
    label,
    kept: held.length,
    byRule,
    oldest,
    storageBytes: bytes && held.length > 0 ? bytes.full + bytes.typical * (held.length - 1) : undefined,
  };
}

/** "1y", "90d", "36h": the horizon as written back. */
export function formatHorizon(ms: number): string {
  const day = 86_400_000;
  if (ms % (365 * day) === 0) return `${ms / (365 * day)}y`;
  if (ms % day === 0) return `${ms / day}d`;
  return `${Math.round(ms / 3_600_000)}h`;
}

/** Simulates every group of the projects in scope from the observed inventory (see the top of this file). */
export function simulateProjects(
  projects: NormalizedProject[],
  snapshots: (RetentionSnapshot & { project: string | null; source: string | null; repository: string })[],
  now: Date,
  horizonMs: number,
  bytes: Map<string, GroupBytes>,
): GroupSimulation[] {
  const groups = new Map<string, RetentionSnapshot[]>();
  for (const s of snapshots) {
    const key = `${s.project}\u0000${s.source}\u0000${s.repository}`;
    groups.set(key, [...(groups.get(key) ?? []), { id: s.id, time: s.time }]);
  }
  return projects.filter((p) => p.enabled).flatMap((project) =>
    project.repositories.flatMap((repository) =>
      project.sources.map((source) => {
        const key = `${project.name}\u0000${source.name}\u0000${repository}`;
        // A copy holds what its primary repository's backups added: the primary's history stands for it.
        const history = bytes.get(key) ??
          bytes.get(`${project.name}\u0000${source.name}\u0000${project.repositories[0]}`);
        return simulateGroup(
          project,
          { source: source.name, repository },
          groups.get(key) ?? [],
          now,
          horizonMs,
          history,
        );
      })
    )
  );
}

/** The simulation as text (plan's text and markdown add it below the plan), times in `zone`. */
export function renderSimulation(
  simulations: GroupSimulation[],
  horizonMs: number,
  format: (bytes: number) => string,
  time: (iso: string) => string,
): string {
  const lines = [
    `Retention simulation over ${formatHorizon(horizonMs)} (the current policies, the schedules' backups):`,
  ];
  for (const group of simulations) {
    lines.push(`  ${group.project}/${group.source} in ${group.repository} (${group.backups} backups):`);
    for (const p of group.points) {
      const rules = Object.entries(p.byRule).map(([rule, n]) => `${n} ${rule.replace(/ snapshot$/, "")}`).join(", ");
      const storage = p.storageBytes === undefined ? "" : `, ~${format(p.storageBytes)}`;
      const oldest = p.oldest ? `, oldest restore point ${time(p.oldest)}` : "";
      lines.push(`    ${p.label.padEnd(10)} ${p.kept} kept${rules ? ` (${rules})` : ""}${oldest}${storage}`);
    }
  }
  return `${lines.join("\n")}\n`;
}
