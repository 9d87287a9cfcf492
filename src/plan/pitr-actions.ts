/**
 * The planning rules of pgbackrest() sources (docs/postgres-pitr.md): stanza-create when the stanza does not exist,
 * a full, diff or incr backup when its own schedule is due, pgBackRest's expirations by label before they happen
 * (held for approval like forgets), `pgbackrest check` on the project's check cadence, the archive's health as
 * warnings, and the age of the newest backup for the overdue rule dumps follow. Pure: pgBackRest's info and the
 * cluster's archive state arrive as observed data.
 */
import { parseDuration } from "../config/duration.ts";
import { canonicalJson } from "../config/fingerprint.ts";
import type { NormalizedProject } from "../config/normalize.ts";
import { nextSlot, previousSlot } from "../config/schedule.ts";
import { humanDuration, isoSeconds } from "../format/time.ts";
import { requiredSettings, settingsProblems, staleArchive } from "../pitr/archive.ts";
import { expirationsFor } from "../pitr/info.ts";
import { repositoryLabel } from "../pitr/repository.ts";
import { pgBackRestRetention } from "../pitr/retention.ts";
import type { PgBackRestRetention, PgBackRestSource, PitrBackupType, PitrInfo } from "../pitr/types.ts";
import type { DraftOf, StaleArchive } from "./document.ts";
import { type Freshness, maxAgeMs } from "./due.ts";
import { defaultCheckEvery, pitrDrilled } from "./maintenance-actions.ts";
import { groupKey, type ObservedIndex } from "./observed-index.ts";
import type { ObservedState, PitrObservation } from "./types.ts";

/**
 * The name a stanza's rows carry where the audit and the retention records name a repository (stages, applied
 * policies, checks): never a declared restic repository's name, which cannot hold a ":".
 */
export function stanzaRepository(stanza: string): string {
  return `pgbackrest:${stanza}`;
}

/**
 * pgBackRest's retention from the project's, as the engine maps it (src/pitr/retention.ts; docs/postgres-pitr.md):
 * enough full backups to reach back over the policy's longest period, with what depends on them.
 */
export function pitrRetention(project: NormalizedProject, source: PgBackRestSource): PgBackRestRetention {
  return pgBackRestRetention(project.retention, source.schedule.full, project.timezone);
}

/** The key a retention is recorded and compared by (a change of it makes expirations need approval). */
export function pitrPolicyKey(retention: PgBackRestRetention): string {
  return canonicalJson(retention);
}

const strength: Record<PitrBackupType, number> = { full: 3, diff: 2, incr: 1 };

/**
 * The backup of a stanza due now, the strongest type first (a due full covers a diff or incr due too), or undefined.
 * A type's slot is covered by any backup of that type or a stronger one started at or after it.
 */
function dueBackup(
  project: NormalizedProject,
  source: PgBackRestSource,
  info: PitrInfo | undefined,
  now: Date,
): { type: PitrBackupType; reason: string } | undefined {
  const backups = info?.backups.filter((backup) => !backup.error) ?? [];
  if (!backups.some((backup) => backup.type === "full")) {
    return { type: "full", reason: backups.length === 0 ? "never backed up" : "no full backup left to build on" };
  }
  const zone = project.timezone === "UTC" ? "" : `, ${project.timezone}`;
  for (const type of ["full", "diff", "incr"] as const) {
    const schedule = source.schedule[type];
    if (schedule === undefined) continue;
    const slot = previousSlot(schedule, project.timezone, now);
    if (slot === undefined) continue;
    const covering = backups.filter((backup) => strength[backup.type] >= strength[type]);
    const last = covering.reduce((a, b) => (a.start.getTime() >= b.start.getTime() ? a : b));
    if (last.start.getTime() >= slot.getTime()) continue;
    return {
      type,
      reason: `due since ${isoSeconds(slot)} (${schedule}${zone}); last ${type === "full" ? "full" : "covering"} ` +
        `backup ${last.label} at ${isoSeconds(last.start)}`,
    };
  }
  return undefined;
}

/** pgBackRest's status codes of a stanza whose folder is not in the repository yet, and of one half made. */
const missingStanza = 1;
const missingStanzaData = 3;

/** The plan's actions and warnings for the pgbackrest() sources of the active projects. */
export function pitrActions(
  active: NormalizedProject[],
  observed: ObservedState,
  index: ObservedIndex,
  now: Date,
): {
  creates: DraftOf<"stanza_create">[];
  backups: DraftOf<"pitr_backup">[];
  expires: DraftOf<"pitr_expire">[];
  checks: DraftOf<"pitr_check">[];
  verifies: DraftOf<"verify">[];
  warnings: string[];
  stale: StaleArchive[];
} {
  const result = {
    creates: [] as DraftOf<"stanza_create">[],
    backups: [] as DraftOf<"pitr_backup">[],
    expires: [] as DraftOf<"pitr_expire">[],
    checks: [] as DraftOf<"pitr_check">[],
    verifies: [] as DraftOf<"verify">[],
    warnings: [] as string[],
    stale: [] as StaleArchive[],
  };
  const observations = new Map((observed.pitr ?? []).map((o) => [`${o.project}\u0000${o.source}`, o]));
  for (const project of active) {
    for (const source of project.pitr) {
      const seen = observations.get(`${project.name}\u0000${source.name}`);
      if (!seen) continue; // not observed: nothing can be said of it
      const label = `${project.name}/${source.name}`;
      const stanza = { project: project.name, source: source.name, stanza: source.stanza };
      result.warnings.push(...archiveWarnings(label, source, seen, now));
      const stale = staleArchiveOf(project.name, source, seen, now);
      if (stale) result.stale.push(stale);
      if (!seen.info) {
        result.warnings.push(
          `pgbackrest ${label}: stanza ${source.stanza} cannot be read, so nothing is planned for it: ${seen.infoError}`,
        );
        continue;
      }
      const info = seen.info;
      if (info.status.code === missingStanza || (info.status.code === missingStanzaData && info.backups.length === 0)) {
        result.creates.push({
          type: "stanza_create",
          ...stanza,
          reason: info.status.code === missingStanza
            ? `stanza ${source.stanza} does not exist in ${repositoryLabel(source.repository)}`
            : `stanza ${source.stanza} is incomplete in ${repositoryLabel(source.repository)} (pgBackRest: ` +
              `${info.status.message}): ` +
              "a stanza-create was cut short",
          destructive: false,
        });
      }
      if (info.backupRunning) {
        result.warnings.push(`pgbackrest ${label}: a backup of stanza ${source.stanza} is running: none is planned`);
      } else {
        const due = dueBackup(project, source, info, now);
        if (due) {
          result.backups.push({
            type: "pitr_backup",
            ...stanza,
            backup_type: due.type,
            reason: due.reason,
            destructive: false,
          });
        }
      }
      const expire = expireAction(project, source, info, index);
      if (expire) result.expires.push(expire);
      const check = checkAction(project, source, info, observed, now);
      if (check) result.checks.push(check);
      const verify = verifyAction(project, source, info, observed, now);
      if (verify) result.verifies.push(verify);
    }
  }
  return result;
}

/** The backups pgBackRest's expire would delete under the project's retention, and whether that needs approval. */
function expireAction(
  project: NormalizedProject,
  source: PgBackRestSource,
  info: PitrInfo,
  index: ObservedIndex,
): DraftOf<"pitr_expire"> | undefined {
  const retention = pitrRetention(project, source);
  const labels = expirationsFor(info, retention);
  if (labels.length === 0) return undefined;
  const applied = index.retention.get(groupKey(project.name, source.name, stanzaRepository(source.stanza)));
  const current = pitrPolicyKey(retention);
  const approval = applied === undefined
    ? "retention was never applied to this stanza by this state (adopted stanza or new state)"
    : applied !== current
    ? `retention changed (pgBackRest repo1-retention-full ${
      (JSON.parse(applied) as PgBackRestRetention).full
    } → ${retention.full})`
    : undefined;
  const kept = info.backups.length - labels.length;
  return {
    type: "pitr_expire",
    project: project.name,
    source: source.name,
    stanza: source.stanza,
    labels,
    destructive: true,
    approval: approval ? "required" : "routine",
    ...(approval ? { approval_reason: approval } : {}),
    reason: `retention keeps ${retention.full} full backup${retention.full === 1 ? "" : "s"} (repo1-retention-full), ` +
      `${kept} of ${info.backups.length} backups`,
  };
}

/** `pgbackrest check` on the project's check cadence, counted from the first backup when never checked. */
function checkAction(
  project: NormalizedProject,
  source: PgBackRestSource,
  info: PitrInfo,
  observed: ObservedState,
  now: Date,
): DraftOf<"pitr_check"> | undefined {
  const every = project.check?.every ?? defaultCheckEvery;
  const everyMs = parseDuration(every)!;
  const checked = observed.maintenance.find((record) =>
    record.type === "check" && record.repository === stanzaRepository(source.stanza)
  )?.at;
  const base = checked ?? info.backups[0]?.stop.toISOString();
  if (base === undefined || now.getTime() - Date.parse(base) < everyMs) return undefined;
  const since = `${isoSeconds(new Date(base))} (${humanDuration(now.getTime() - Date.parse(base))} ago)`;
  return {
    type: "pitr_check",
    project: project.name,
    source: source.name,
    stanza: source.stanza,
    reason: `${checked ? `last check ${since}` : `never checked since the first backup ${since}`}, every ${every}`,
    destructive: false,
  };
}

/**
 * A restore drill of the stanza into a scratch cluster (the engine's pitr/drill.ts, run by apply's verify) when the
 * project's drill is of this source, the stanza has a backup, and `verify.every` has passed since the last drill.
 */
function verifyAction(
  project: NormalizedProject,
  source: PgBackRestSource,
  info: PitrInfo,
  observed: ObservedState,
  now: Date,
): DraftOf<"verify"> | undefined {
  const spec = project.verify;
  if (!spec || !pitrDrilled(project) || (spec.source !== undefined && spec.source !== source.name)) return undefined;
  if (spec.source === undefined && project.pitr[0] !== source) return undefined;
  if (info.backups.length === 0) return undefined;
  const last = observed.maintenance.find((record) => record.type === "verify" && record.project === project.name)?.at;
  if (last && now.getTime() - Date.parse(last) < parseDuration(spec.every)!) return undefined;
  const since = last ? `${isoSeconds(new Date(last))} (${humanDuration(now.getTime() - Date.parse(last))} ago)` : "";
  return {
    type: "verify",
    project: project.name,
    repository: stanzaRepository(source.stanza),
    reason: last
      ? `last restore drill ${since}, every ${spec.every}`
      : `never restored in a drill (stanza ${source.stanza}, to a scratch cluster)`,
    destructive: false,
  };
}

/**
 * The archive's health as plan warnings: settings that differ from what the stanza needs (with the postgresql.conf
 * lines to add: backupctl never edits it), failures, and an archive older than the source's rpo.
 */
export function archiveWarnings(label: string, source: PgBackRestSource, seen: PitrObservation, now: Date): string[] {
  if (!seen.archive) return [`pgbackrest ${label}: the cluster's archiving cannot be read: ${seen.archiveError}`];
  const problems = settingsProblems(seen.archive, { archiveCommand: seen.archiveCommand });
  const warnings = problems.map((problem) => `pgbackrest ${label}: ${problem}`);
  const rpoMs = source.rpo ? parseDuration(source.rpo) : undefined;
  if (problems.some((problem) => !problem.startsWith("archiving fails"))) {
    const lines = requiredSettings({ archiveCommand: seen.archiveCommand, rpoMs });
    warnings.push(`pgbackrest ${label}: add to postgresql.conf (backupctl never edits it): ${lines.join("; ")}`);
  }
  const stale = rpoMs === undefined ? undefined : staleArchive(seen.archive, rpoMs, now);
  if (stale) warnings.push(`pgbackrest ${label}: archive.stale: ${stale}`);
  return warnings;
}

/**
 * A source's archive as `archive.stale` reports it: archiving fails (a segment failed after the last one archived),
 * or WAL has waited longer than the rpo since the last archived segment. Undefined when healthy or unknown.
 */
export function staleArchiveOf(
  project: string,
  source: PgBackRestSource,
  seen: Pick<PitrObservation, "archive">,
  now: Date,
): StaleArchive | undefined {
  const archive = seen.archive;
  if (!archive) return undefined;
  const failedAt = archive.lastFailedAt;
  const rpoMs = source.rpo ? parseDuration(source.rpo) : undefined;
  let reason: string | undefined;
  if (failedAt !== null && (archive.lastArchivedAt === null || failedAt > archive.lastArchivedAt)) {
    reason = `archiving fails: ${archive.lastFailedWal ?? "a segment"} failed at ${isoSeconds(failedAt)} ` +
      `(${archive.failedCount} failure${archive.failedCount === 1 ? "" : "s"} so far)`;
  } else if (rpoMs !== undefined) reason = staleArchive(archive, rpoMs, now);
  if (reason === undefined) return undefined;
  return {
    project,
    source: source.name,
    stanza: source.stanza,
    reason,
    last_archived_wal: archive.lastArchivedWal,
    last_archived_at: archive.lastArchivedAt ? isoSeconds(archive.lastArchivedAt) : null,
    ...(source.rpo ? { rpo: source.rpo } : {}),
  };
}

/**
 * How fresh each observed pgbackrest() source of the project is, for the rule dumps follow (plan/due.ts): its newest
 * backup (pgBackRest's info, not the audit: a backup made or lost outside backupctl counts) against the project's
 * maxAge, else twice the interval between the latest and the next slot of any of its backup types. A stanza without
 * a backup, or one that could not be read, is left out, as a dump never backed up is.
 */
export function pitrFreshness(project: NormalizedProject, observed: ObservedState, now: Date): Freshness[] {
  const result: Freshness[] = [];
  for (const seen of observed.pitr ?? []) {
    if (seen.project !== project.name) continue;
    const source = project.pitr.find((s) => s.name === seen.source);
    const newest = seen.info?.backups.filter((backup) => !backup.error).at(-1);
    if (!source || !newest) continue;
    const schedules = Object.values(source.schedule).filter((cron): cron is string => cron !== undefined);
    const latest = Math.max(...schedules.map((cron) => previousSlot(cron, project.timezone, now)?.getTime() ?? -1));
    const next = Math.min(...schedules.map((cron) => nextSlot(cron, project.timezone, now).getTime()));
    const interval = latest < 0 ? 86_400_000 : next - latest;
    result.push({
      lastSuccess: newest.start.toISOString(),
      maxAgeMs: maxAgeMs(project, { interval }),
      source: source.name,
      stanza: source.stanza,
    });
  }
  return result;
}

/**
 * The next slot of any backup type of the project's pgbackrest() sources after `now`, or undefined without one: the
 * project's next due time is the earlier of it and its own schedule's (watch wakes for it).
 */
export function pitrNextDue(project: NormalizedProject, now: Date): Date | undefined {
  const slots = project.pitr.flatMap((source) =>
    Object.values(source.schedule).filter((cron): cron is string => cron !== undefined)
      .map((cron) => nextSlot(cron, project.timezone, now))
  );
  return slots.length === 0 ? undefined : slots.reduce((a, b) => (a.getTime() <= b.getTime() ? a : b));
}
