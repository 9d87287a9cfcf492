/** The config-wide part of a config diff: repositories, notifiers and top-level settings. */
import type { NormalizedConfig } from "../config/normalize.ts";
import type { Notifier, Repository } from "../config/types.ts";
import type { ConfigChange } from "./types.ts";
import { describeFields, fieldChanges, keptNote, kindOf, list, same, showField, showValue } from "./values.ts";

// ---- config-wide --------------------------------------------------------------------------------------------------

function projectsUsing(config: NormalizedConfig, key: "repositories" | "notify", name: string): string[] {
  return Object.values(config.projects).filter((p) => (p[key] ?? []).includes(name)).map((p) => p.name);
}

export function diffRepositories(before: NormalizedConfig, after: NormalizedConfig): ConfigChange[] {
  const changes: ConfigChange[] = [];
  for (const [name, repository] of Object.entries(after.repositories)) {
    const old = before.repositories[name];
    const subject = `repository ${name}`;
    if (!old) {
      const users = projectsUsing(after, "repositories", name);
      changes.push({
        kind: "added",
        subject,
        detail: `declared: ${describeRepository(repository)}`,
        consequence: users.length > 0
          ? `used by ${list(users)}: initialized at the next apply if it does not exist yet`
          : "declared but not used by any project yet",
        destructive: false,
      });
      continue;
    }
    changes.push(...diffRepository(name, old, repository, after));
  }
  for (const [name, repository] of Object.entries(before.repositories)) {
    if (name in after.repositories) continue;
    changes.push({
      kind: "removed",
      subject: `repository ${name}`,
      detail: `no longer declared (was ${describeRepository(repository)})`,
      consequence: `backupctl no longer manages it or its snapshots; ${keptNote}`,
      destructive: true,
    });
  }
  return changes;
}

function describeRepository(repository: Repository): string {
  return `${repository.type} ${showValue(repository.url)}, password ${showValue(repository.password)}`;
}

function diffRepository(name: string, before: Repository, after: Repository, config: NormalizedConfig) {
  const changes: ConfigChange[] = [];
  const subject = `repository ${name}`;
  const users = projectsUsing(config, "repositories", name);
  const usedBy = users.length > 0 ? list(users) : "no project";
  if (!same(before.url, after.url)) {
    changes.push({
      kind: "changed",
      subject,
      detail: `url ${showValue(before.url)} → ${showValue(after.url)}`,
      consequence: `backups of ${usedBy} go to the new location (initialized at the next apply if needed); ` +
        `snapshots at the old location are no longer managed, ${keptNote}`,
      destructive: false,
    });
  }
  if (!same(before.password, after.password)) {
    changes.push({
      kind: "changed",
      subject,
      detail: `password ${showValue(before.password)} → ${showValue(after.password)}`,
      consequence: "restic opens the repository with the new password reference: it must hold a key of the " +
        "repository (add one first with `restic key add`)",
      destructive: false,
    });
  }
  const rest = fieldChanges(before as unknown as Record<string, unknown>, after as unknown as Record<string, unknown>, {
    skip: ["url", "password"],
  });
  if (rest.length > 0) {
    changes.push({
      kind: "changed",
      subject,
      detail: rest.join("; "),
      consequence: `restic runs for ${name} with the new settings from the next apply`,
      destructive: false,
    });
  }
  return changes;
}

export function diffNotifiers(before: NormalizedConfig, after: NormalizedConfig): ConfigChange[] {
  const changes: ConfigChange[] = [];
  for (const [name, notifier] of Object.entries(after.notifiers)) {
    const old = before.notifiers[name];
    const subject = `notifier ${name}`;
    const users = projectsUsing(after, "notify", name);
    if (!old) {
      changes.push({
        kind: "added",
        subject,
        detail: `declared: ${describeNotifier(notifier)}`,
        consequence: users.length > 0
          ? `events of ${list(users)} are sent through it`
          : "declared but not used by any project yet (add it to a project's notify list)",
        destructive: false,
      });
      continue;
    }
    const fields = fieldChanges(
      old as unknown as Record<string, unknown>,
      notifier as unknown as Record<string, unknown>,
      { notifier: true },
    );
    if (fields.length > 0) {
      changes.push({
        kind: "changed",
        subject,
        detail: fields.join("; "),
        consequence: "notifications through it use the new settings",
        destructive: false,
      });
    }
  }
  for (const [name, notifier] of Object.entries(before.notifiers)) {
    if (name in after.notifiers) continue;
    changes.push({
      kind: "removed",
      subject: `notifier ${name}`,
      detail: `no longer declared (was ${describeNotifier(notifier)})`,
      consequence: "no notifications are sent through it anymore",
      destructive: false,
    });
  }
  return changes;
}

function describeNotifier(notifier: Notifier): string {
  return describeFields(notifier as unknown as Record<string, unknown>, { notifier: true });
}

/** Config-wide settings other than repositories, notifiers and projects. The config's time zone is reported per
 * project (where it takes effect), so it is skipped here. */
export function diffSettings(before: NormalizedConfig, after: NormalizedConfig): ConfigChange[] {
  const skip = new Set(["repositories", "notifiers", "projects", "timezone"]);
  const b = before as unknown as Record<string, unknown>;
  const a = after as unknown as Record<string, unknown>;
  const keys = [...new Set([...Object.keys(b), ...Object.keys(a)])].filter((key) => !skip.has(key));
  const changes: ConfigChange[] = [];
  for (const key of keys) {
    if (same(b[key], a[key])) continue;
    changes.push({
      kind: kindOf(b[key], a[key]),
      subject: key,
      detail: `${showField(key, b[key])} → ${showField(key, a[key])}`,
      consequence: settingConsequence(key, b[key], a[key]),
      destructive: false,
    });
  }
  return changes;
}

function settingConsequence(key: string, before: unknown, after: unknown): string {
  switch (key) {
    case "host":
      return `new snapshots are recorded with host ${showValue(after)} instead of ${showValue(before)}`;
    case "stateDir":
      return "the state database is read from the new folder (unless --state-dir or BACKUPCTL_STATE_DIR is set): " +
        "move the old one there to keep the run history";
    case "defaults":
      return "projects without their own retry policy or stage timeout use the new defaults";
    default:
      return `changed from ${showValue(before)} to ${showValue(after)}`;
  }
}
