/** When backups are due: each project's schedule around now, the backups it makes due, and overdue projects. */
import type { NormalizedProject } from "../config/normalize.ts";
import { parseDuration } from "../config/duration.ts";
import { nextSlot, previousSlot, slotsBetween } from "../config/schedule.ts";
import type { DraftOf } from "./document.ts";
import { groupKey, type ObservedIndex } from "./observed-index.ts";
import { humanDuration, isoSeconds } from "../format/time.ts";
import type { Overdue } from "./types.ts";

const day = 86_400_000;

/**
 * A deterministic delay in [0, jitter) per project, so projects sharing a schedule spread out while every plan of
 * the same project stays the same (FNV-1a of the project name).
 */
export function jitterOffset(project: NormalizedProject): number {
  const jitter = project.jitter ? parseDuration(project.jitter) ?? 0 : 0;
  if (jitter <= 0) return 0;
  let hash = 0x811c9dc5;
  for (const char of project.name) {
    hash ^= char.codePointAt(0)!;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  // Whole seconds: plans print times to the second, and "due at" must be exactly the time they announce.
  return Math.floor(((hash / 0x1_0000_0000) * jitter) / 1000) * 1000;
}

/** A project's schedule around `now`, computed once per plan (cron evaluation is the planner's costliest step). */
export interface ProjectTimes {
  /** The latest cron slot whose jittered time is at or before now, and that jittered time. */
  slot?: Date;
  dueAt?: Date;
  /** When the next backup will be due, jitter included. */
  nextDue: Date;
  /** The interval between the latest and the next slot. */
  interval: number;
}

export function projectTimes(project: NormalizedProject, now: Date): ProjectTimes {
  const offset = jitterOffset(project);
  const shifted = new Date(now.getTime() - offset);
  const slot = previousSlot(project.schedule, project.timezone, shifted);
  const next = nextSlot(project.schedule, project.timezone, shifted);
  return {
    slot,
    dueAt: slot && new Date(slot.getTime() + offset),
    nextDue: new Date(next.getTime() + offset),
    interval: slot ? next.getTime() - slot.getTime() : day,
  };
}

/** `backup` now: every selected source of the project, whatever its schedule (see `OnDemand` in planner.ts). */
export function backupNowActions(
  project: NormalizedProject,
  times: ProjectTimes,
  sources: readonly string[] | undefined,
): DraftOf<"backup">[] {
  const zone = project.timezone === "UTC" ? "" : `, ${project.timezone}`;
  return project.sources.filter((source) => sources === undefined || sources.includes(source.name)).map((source) => ({
    type: "backup",
    project: project.name,
    source: source.name,
    repository: project.repositories[0],
    reason: `on demand (backupctl backup); the schedule ${project.schedule}${zone} is unchanged, next due ` +
      isoSeconds(times.nextDue),
    destructive: false,
  }));
}

export function backupActions(
  project: NormalizedProject,
  times: ProjectTimes,
  index: ObservedIndex,
): DraftOf<"backup">[] {
  const repository = project.repositories[0];
  const drafts: DraftOf<"backup">[] = [];
  for (const source of project.sources) {
    const key = groupKey(project.name, source.name, repository);
    const reason = source.discovered?.unlisted !== undefined
      ? `the server's databases could not be listed (${source.discovered.unlisted}): fails until it answers`
      : backupReason(project, times, index.success.get(key), index.failure.get(key), source.discovered !== undefined);
    if (reason) {
      drafts.push({
        type: "backup",
        project: project.name,
        source: source.name,
        repository,
        reason,
        destructive: false,
      });
    }
  }
  return drafts;
}

/** Why a source is due now, or undefined when its latest slot already has a successful backup. */
function backupReason(
  project: NormalizedProject,
  due: ProjectTimes,
  lastSuccess: string | undefined,
  lastFailure: string | undefined,
  /** A database listed on its server (`databases: "all"`): never backed up means new since the last run. */
  discovered = false,
): string | undefined {
  const failed = lastFailure ? `; last attempt failed at ${isoSeconds(new Date(lastFailure))}` : "";
  if (lastSuccess === undefined) return `${discovered ? "new database, " : ""}never backed up${failed}`;
  const success = new Date(lastSuccess);
  if (due.slot === undefined || due.dueAt === undefined || success.getTime() >= due.slot.getTime()) return undefined;
  const zone = project.timezone === "UTC" ? "" : `, ${project.timezone}`;
  const jitter = due.dueAt.getTime() > due.slot.getTime()
    ? `, jitter +${humanDuration(due.dueAt.getTime() - due.slot.getTime())}`
    : "";
  const missed = slotsBetween(project.schedule, project.timezone, success, due.slot);
  const coalesced = missed > 1 ? `; ${missed} slots missed since the last success, one backup covers them` : "";
  return `due since ${isoSeconds(due.dueAt)} (${project.schedule}${zone}${jitter})${coalesced}${failed}`;
}

/** How old a project's last success may grow before it is overdue: its maxAge, else twice its interval (≥ 2 min). */
export function maxAgeMs(project: NormalizedProject, times: Pick<ProjectTimes, "interval">): number {
  return project.maxAge ? parseDuration(project.maxAge)! : Math.max(2 * times.interval, 2 * 60_000);
}

/** A max age as plans and messages write it: the configured maxAge, else the default's duration ("2d"). */
export function maxAgeText(project: NormalizedProject, ms: number): string {
  return project.maxAge ?? humanDuration(ms).replace(" ", "");
}

/**
 * The newest success of something a project backs up on a schedule other than the project's own (a pgbackrest()
 * source's stanza: plan/pitr-actions.ts), with how old it may grow, judged by {@link maxAgeMs} on its own schedule.
 */
export interface Freshness {
  lastSuccess: string;
  maxAgeMs: number;
  /** The pgbackrest() source and its stanza. */
  source: string;
  stanza: string;
}

/**
 * A project is overdue when a source's last success is older than maxAge (default: twice the interval between the
 * latest and the next slot, at least two minutes). The dumps are judged together, by the oldest of their last
 * successes; each of `others` (pgBackRest's stanzas) on its own. The entry names the oldest success that is too old.
 */
export function overdueProject(
  project: NormalizedProject,
  times: ProjectTimes,
  index: ObservedIndex,
  now: Date,
  others: readonly Freshness[] = [],
): Overdue[] {
  const successes = project.sources.map((s) =>
    index.success.get(groupKey(project.name, s.name, project.repositories[0]))
  );
  const known = successes.filter((at): at is string => at !== undefined);
  const judged: (Pick<Freshness, "lastSuccess" | "maxAgeMs"> & Partial<Freshness>)[] = [...others];
  if (known.length > 0) {
    judged.unshift({ lastSuccess: known.reduce((a, b) => (a < b ? a : b)), maxAgeMs: maxAgeMs(project, times) });
  }
  const late = judged.filter((item) => now.getTime() - Date.parse(item.lastSuccess) > item.maxAgeMs);
  if (late.length === 0) return [];
  const oldest = late.reduce((a, b) => (Date.parse(b.lastSuccess) < Date.parse(a.lastSuccess) ? b : a));
  return [{
    project: project.name,
    last_success: isoSeconds(new Date(oldest.lastSuccess)),
    max_age: maxAgeText(project, oldest.maxAgeMs),
    ...(oldest.stanza !== undefined ? { source: oldest.source, stanza: oldest.stanza } : {}),
  }];
}
