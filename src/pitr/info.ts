/**
 * Reading what pgBackRest keeps, as plain data: the stanza's backups from `info --output=json`, the backups its
 * `expire` would delete under a retention (so the plan shows them before they happen), and the span of time a
 * restore can reach. Pure functions: no process, no clock.
 */
import { SourceError } from "../errors.ts";
import { isoSeconds } from "../format/time.ts";
import type { PgBackRestRetention, PitrBackup, PitrBackupType, PitrInfo, RestorableRange } from "./types.ts";

type Json = Record<string, unknown>;

function object(value: unknown): Json {
  return typeof value === "object" && value !== null && !Array.isArray(value) ? value as Json : {};
}

function number(value: unknown): number {
  return typeof value === "number" ? value : 0;
}

function text(value: unknown): string {
  return typeof value === "string" ? value : "";
}

const backupTypes = new Set<string>(["full", "diff", "incr"]);

function parseBackup(raw: unknown): PitrBackup {
  const backup = object(raw);
  const info = object(backup.info);
  const repository = object(info.repository);
  const archive = object(backup.archive);
  const timestamp = object(backup.timestamp);
  const type = text(backup.type);
  if (!backupTypes.has(type)) throw new SourceError(`pgbackrest info: unknown backup type "${type}"`);
  return {
    label: text(backup.label),
    type: type as PitrBackupType,
    start: new Date(number(timestamp.start) * 1000),
    stop: new Date(number(timestamp.stop) * 1000),
    prior: typeof backup.prior === "string" ? backup.prior : null,
    databaseBytes: number(info.size),
    repositoryBytes: number(repository.size),
    repositoryDeltaBytes: number(repository.delta),
    archiveStart: text(archive.start),
    archiveStop: text(archive.stop),
    error: backup.error === true,
  };
}

/** The stanza named in the output of `pgbackrest info --output=json` (an array of stanzas). */
export function parseInfo(json: string, stanza: string): PitrInfo {
  // system-id is a 64-bit integer JSON.parse would round: it is not read, but quoted so nothing is lost silently.
  const parsed: unknown = JSON.parse(json.replace(/"system-id":\s*(\d+)/g, '"system-id":"$1"'));
  const found = (Array.isArray(parsed) ? parsed : []).map(object).find((entry) => entry.name === stanza);
  if (!found) throw new SourceError(`pgbackrest info printed nothing about stanza ${stanza}`);
  const status = object(found.status);
  const lock = object(object(status.lock).backup);
  const backups = (Array.isArray(found.backup) ? found.backup : []).map(parseBackup)
    .sort((a, b) => a.start.getTime() - b.start.getTime());
  // Several database ids follow a stanza-upgrade: the archive of the current one (the last) is what restores use.
  const archives = (Array.isArray(found.archive) ? found.archive : []).map(object);
  const current = archives.at(-1);
  return {
    stanza,
    status: { code: number(status.code), message: text(status.message) },
    backupRunning: lock.held === true,
    cipher: text(found.cipher),
    backups,
    ...(current && text(current.min) !== "" ? { archive: { min: text(current.min), max: text(current.max) } } : {}),
  };
}

/**
 * The labels `pgbackrest expire` deletes under `retention`, oldest first, as pgBackRest 2.x decides (count-based
 * retention): the full backups beyond the newest `full`, and beyond the newest `diff` differential ones (fulls count
 * as differentials there but are not expired by it), each with every backup that depends on it.
 */
export function expirationsFor(info: PitrInfo, retention: PgBackRestRetention): string[] {
  const backups = info.backups;
  const expired = new Set<string>();
  const fulls = backups.filter((b) => b.type === "full");
  for (const full of fulls.slice(0, Math.max(0, fulls.length - retention.full))) expired.add(full.label);
  if (retention.diff !== undefined) {
    const counted = backups.filter((b) => (b.type === "full" || b.type === "diff") && !expired.has(b.label));
    for (const backup of counted.slice(0, Math.max(0, counted.length - retention.diff))) {
      if (backup.type === "diff") expired.add(backup.label);
    }
  }
  // A backup whose prior is gone cannot be restored: it goes too (backups are oldest first, priors before them).
  for (const backup of backups) {
    if (backup.prior !== null && expired.has(backup.prior)) expired.add(backup.label);
  }
  return backups.filter((b) => expired.has(b.label)).map((b) => b.label);
}

/**
 * The times a restore can reach: from the end of the oldest backup (the second after) to the newest of the last backup's end and the
 * last WAL segment the server archived (`lastArchivedAt`, from archive.ts). Undefined without a backup.
 */
export function restorableRange(info: PitrInfo, lastArchivedAt?: Date | null): RestorableRange | undefined {
  const usable = info.backups;
  if (usable.length === 0) return undefined;
  // pgBackRest dates a backup's end to the second and restores to a time only from a backup that stopped strictly
  // before it (at that resolution): the first reachable moment is the second after.
  const earliest = usable[0].stop.getTime() + 1000;
  const newestStop = Math.max(...usable.map((b) => b.stop.getTime() + 1000));
  const latest = Math.max(newestStop, lastArchivedAt?.getTime() ?? 0);
  return { earliest: new Date(earliest), latest: new Date(latest) };
}

export function noBackupMessage(stanza: string): string {
  return `stanza ${stanza} has no backup to restore from: run \`backupctl apply\` to make the first full backup`;
}

/**
 * Refuses a target outside `range` (or a stanza without a backup), naming the nearest restorable time and the whole
 * span, so the next command can be typed from the message.
 */
export function checkRestorable(target: Date, range: RestorableRange | undefined, stanza: string): void {
  if (!range) throw new SourceError(noBackupMessage(stanza));
  const span = `restorable times of stanza ${stanza} run from ${isoSeconds(range.earliest)} to ` +
    `${isoSeconds(range.latest)}`;
  if (target.getTime() < range.earliest.getTime()) {
    throw new SourceError(
      `${isoSeconds(target)} is before the oldest backup ended: the nearest restorable time is ` +
        `${isoSeconds(range.earliest)} (${span})`,
    );
  }
  if (target.getTime() > range.latest.getTime()) {
    throw new SourceError(
      `${isoSeconds(target)} is after the last archived WAL: the nearest restorable time is ` +
        `${isoSeconds(range.latest)} (${span}); use --to-time latest for everything archived`,
    );
  }
}
