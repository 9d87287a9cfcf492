/**
 * The per-project part of a config diff: a project added or removed, its settings, schedule, sources, repositories
 * and notifications (retention and encryption in diff/retention.ts).
 */
import type { NamedSource, NormalizedProject, ServerSource } from "../config/normalize.ts";
import { isSecretRef } from "../config/secrets.ts";
import { diffEncryption, diffRetention, retentionText } from "./retention.ts";
import type { ConfigChange } from "./types.ts";
import { describeFields, fieldChanges, keptNote, kindOf, list, plural, same, showField, showValue } from "./values.ts";

export function projectAdded(project: NormalizedProject): ConfigChange {
  const [primary, ...copies] = project.repositories;
  const sources = declared(project).map((s) => s.name);
  const detail = `schedule ${scheduleText(project.schedule, project.timezone)}, ` +
    `${plural(sources.length, "source")} (${list(sources)}) to ${primary}` +
    `${copies.length > 0 ? `, copies to ${list(copies)}` : ""}, retention ${retentionText(project.retention)}` +
    `${project.enabled ? "" : ", disabled"}`;
  return {
    kind: "added",
    subject: `project ${project.name}`,
    detail,
    consequence: project.enabled
      ? "the next apply backs it up (never backed up yet)"
      : "declared disabled: nothing runs until it is enabled",
    destructive: false,
    project: project.name,
  };
}

export function projectRemoved(project: NormalizedProject): ConfigChange {
  return {
    kind: "removed",
    subject: `project ${project.name}`,
    detail: `no longer declared (was ${plural(project.sources.length, "source")} to ${list(project.repositories)})`,
    consequence: `no more backups run; its snapshots are no longer managed: ${keptNote}`,
    destructive: true,
    project: project.name,
  };
}

/** Keys of a project compared by dedicated code; every other key gets a generic change. */
const projectKeys = new Set([
  "name",
  "enabled",
  "schedule",
  "timezone",
  "sources",
  "servers",
  "repositories",
  "retention",
  "encrypt",
  "notify",
]);

export function diffProject(before: NormalizedProject, after: NormalizedProject): ConfigChange[] {
  const name = after.name;
  const changes: ConfigChange[] = [];
  if (before.enabled !== after.enabled) {
    changes.push({
      kind: "changed",
      subject: `project ${name}`,
      detail: after.enabled ? "enabled" : "disabled",
      consequence: after.enabled
        ? "plan and apply consider it again: a backup runs at the next apply when due"
        : "no backups run while it is disabled; its snapshots are kept",
      destructive: false,
    });
  }
  changes.push(
    ...diffSchedule(before, after),
    ...diffSources(before, after),
    ...diffProjectRepositories(before, after),
    ...diffRetention(name, before.retention, after.retention),
    ...diffEncryption(name, before.encrypt, after.encrypt),
    ...diffNotify(before, after),
  );
  const b = before as unknown as Record<string, unknown>;
  const a = after as unknown as Record<string, unknown>;
  for (const key of [...new Set([...Object.keys(b), ...Object.keys(a)])]) {
    if (projectKeys.has(key) || same(b[key], a[key])) continue;
    const objects = isPlainObject(b[key]) && isPlainObject(a[key]);
    changes.push({
      kind: kindOf(b[key], a[key]),
      subject: `${key} of ${name}`,
      detail: objects
        ? fieldChanges(b[key] as Record<string, unknown>, a[key] as Record<string, unknown>).join("; ")
        : `${showField(key, b[key])} → ${showField(key, a[key])}`,
      consequence: projectSettingConsequence(key, name, b[key], a[key]),
      destructive: false,
    });
  }
  return changes.map((change) => ({ ...change, project: name }));
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !isSecretRef(value);
}

/** Defaults of project settings, as shown when a setting is added or removed. */
const projectDefaults: Record<string, string> = {
  maxAge: "the default (twice the schedule's interval)",
  timeout: "the default (6h)",
  jitter: "none",
};

function projectSettingConsequence(key: string, project: string, before: unknown, after: unknown): string {
  const plain = (value: unknown) =>
    value === undefined ? projectDefaults[key] ?? "the default" : typeof value === "string" ? value : showValue(value);
  const from = plain(before);
  const to = plain(after);
  switch (key) {
    case "hooks":
      return `the backups of ${project} run the new hooks`;
    case "verify":
      if (after === undefined) return `no more restore drills for ${project}`;
      if (before === undefined) return `restore drills of ${project} run every ${plain(pick(after, "every"))}`;
      return `restore drills of ${project} use the new settings`;
    case "maxAge":
      return `${project} is reported overdue after ${to} without a successful backup, instead of ${from}`;
    case "retry":
      return `failed stages of ${project} are retried with the new policy`;
    case "timeout":
      return `a backup stage of ${project} is stopped after ${to} instead of ${from}`;
    case "jitter":
      return `backups of ${project} start up to ${to} after each slot instead of ${from}`;
    case "prune":
      return `the repositories of ${project} are pruned every ${plain(pick(after, "every"))} instead of ` +
        plain(pick(before, "every"));
    case "check":
      return `the repositories of ${project} are checked with the new cadence (${to} instead of ${from})`;
    default:
      return `changed from ${from} to ${to}`;
  }
}

function pick(value: unknown, key: string): unknown {
  return isPlainObject(value) ? value[key] : undefined;
}

function scheduleText(schedule: string, timezone: string): string {
  return `${schedule} (${timezone})`;
}

function diffSchedule(before: NormalizedProject, after: NormalizedProject): ConfigChange[] {
  const scheduleChanged = before.schedule !== after.schedule;
  const zoneChanged = before.timezone !== after.timezone;
  if (!scheduleChanged && !zoneChanged) return [];
  const showZone = zoneChanged || after.timezone !== "UTC";
  const at = (p: NormalizedProject) => (showZone ? scheduleText(p.schedule, p.timezone) : p.schedule);
  const detail = scheduleChanged ? `${at(before)} → ${at(after)}` : `timezone ${before.timezone} → ${after.timezone}`;
  return [{
    kind: "changed",
    subject: `schedule of ${after.name}`,
    detail,
    consequence: `backups run at ${at(after)} instead of ${at(before)}`,
    destructive: false,
  }];
}

function describeSource(source: NamedSource | ServerSource): string {
  return describeFields(source as unknown as Record<string, unknown>, { skip: ["name"] });
}

/** A project's declared sources: its sources, and its `databases: "all"` servers (whose databases are not known here). */
function declared(project: NormalizedProject): (NamedSource | ServerSource)[] {
  return [...project.sources, ...(project.servers ?? [])];
}

function diffSources(before: NormalizedProject, after: NormalizedProject): ConfigChange[] {
  const project = after.name;
  const changes: ConfigChange[] = [];
  const old = new Map(declared(before).map((s) => [s.name, s]));
  const current = new Set(declared(after).map((s) => s.name));
  for (const source of declared(after)) {
    const subject = `source ${project}/${source.name}`;
    const previous = old.get(source.name);
    if (!previous) {
      changes.push({
        kind: "added",
        subject,
        detail: describeSource(source),
        consequence: !after.enabled
          ? `backed up once ${project} is enabled`
          : "databases" in source && source.databases === "all"
          ? "the next apply lists the server's databases and backs up each as its own source"
          : "the next apply backs it up (never backed up yet)",
        destructive: false,
      });
      continue;
    }
    const fields = fieldChanges(
      previous as unknown as Record<string, unknown>,
      source as unknown as Record<string, unknown>,
      { skip: ["name"] },
    );
    if (fields.length === 0) continue;
    changes.push({
      kind: "changed",
      subject,
      detail: fields.join("; "),
      consequence: previous.type !== source.type
        ? `the next backup dumps a ${source.type} source instead of ${previous.type}; ` +
          `older snapshots still restore as ${previous.type}`
        : `the next backup of ${project}/${source.name} uses the new settings`,
      destructive: false,
    });
  }
  for (const source of declared(before)) {
    if (current.has(source.name)) continue;
    changes.push({
      kind: "removed",
      subject: `source ${project}/${source.name}`,
      detail: `no longer declared (was ${describeSource(source)})`,
      consequence: "no longer backed up; its snapshots are kept, never deleted automatically",
      destructive: false,
    });
  }
  const kept = (sources: (NamedSource | ServerSource)[]) =>
    sources.map((s) => s.name).filter((n) => old.has(n) && current.has(n));
  const order = [kept(declared(before)), kept(declared(after))];
  if (changes.length === 0 && !same(order[0], order[1])) {
    changes.push({
      kind: "changed",
      subject: `sources of ${project}`,
      detail: `order ${list(order[0])} → ${list(order[1])}`,
      consequence: "sources are backed up in the new order",
      destructive: false,
    });
  }
  return changes;
}

function diffProjectRepositories(before: NormalizedProject, after: NormalizedProject): ConfigChange[] {
  const project = after.name;
  const subject = `repositories of ${project}`;
  const changes: ConfigChange[] = [];
  const [oldPrimary] = before.repositories;
  const [newPrimary] = after.repositories;
  if (oldPrimary !== newPrimary) {
    const fate = after.repositories.includes(oldPrimary)
      ? `${oldPrimary} receives copies instead`
      : `${oldPrimary} no longer receives backups`;
    changes.push({
      kind: "changed",
      subject,
      detail: `primary ${oldPrimary} → ${newPrimary}`,
      consequence: `the next backup goes to ${newPrimary}${
        before.repositories.includes(newPrimary) ? "" : " (initialized at the next apply if needed)"
      }; ${fate}`,
      destructive: false,
    });
  }
  for (const name of after.repositories.slice(1)) {
    if (before.repositories.includes(name)) continue;
    changes.push({
      kind: "added",
      subject,
      detail: `copies to ${name}`,
      consequence: `snapshots of ${project} are copied to ${name} from the next apply`,
      destructive: false,
    });
  }
  for (const name of before.repositories) {
    if (after.repositories.includes(name)) continue;
    changes.push({
      kind: "removed",
      subject,
      detail: name === oldPrimary ? `${name} (was the primary) removed` : `copies to ${name} removed`,
      consequence: `${project} is no longer backed up or copied to ${name}; its snapshots there are no longer ` +
        `managed: ${keptNote}`,
      destructive: true,
    });
  }
  const copies = (names: string[], other: string[]) => names.slice(1).filter((n) => other.slice(1).includes(n));
  if (
    changes.length === 0 &&
    !same(copies(before.repositories, after.repositories), copies(after.repositories, before.repositories))
  ) {
    changes.push({
      kind: "changed",
      subject,
      detail: `copies ${list(before.repositories.slice(1))} → ${list(after.repositories.slice(1))}`,
      consequence: "copies are made in the new order",
      destructive: false,
    });
  }
  return changes;
}

function diffNotify(before: NormalizedProject, after: NormalizedProject): ConfigChange[] {
  const project = after.name;
  const subject = `notifications of ${project}`;
  const old = before.notify ?? [];
  const current = after.notify ?? [];
  return [
    ...current.filter((n) => !old.includes(n)).map((n): ConfigChange => ({
      kind: "added",
      subject,
      detail: `notify ${n}`,
      consequence: `events of ${project} are also sent to ${n}`,
      destructive: false,
    })),
    ...old.filter((n) => !current.includes(n)).map((n): ConfigChange => ({
      kind: "removed",
      subject,
      detail: `notify ${n}`,
      consequence: `events of ${project} are no longer sent to ${n}`,
      destructive: false,
    })),
  ];
}
