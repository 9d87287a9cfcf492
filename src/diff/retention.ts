/** The retention and encryption parts of a project's config diff, and their descriptions in words. */
import { parseResticDuration } from "../config/duration.ts";
import type { Encryption, Retention } from "../config/types.ts";
import type { ConfigChange } from "./types.ts";
import { approval, fieldChanges, kindOf, same } from "./values.ts";

const countRules = ["last", "hourly", "daily", "weekly", "monthly", "yearly"] as const;
const withinRules = [
  "within",
  "withinHourly",
  "withinDaily",
  "withinWeekly",
  "withinMonthly",
  "withinYearly",
] as const;

/** `daily 7, weekly 4, within 2d` */
export function retentionText(retention: Retention): string {
  return Object.entries(retention)
    .filter(([, value]) => value !== undefined)
    .map(([key, value]) => `${key} ${value}`)
    .join(", ");
}

/** Approximate length of a restic duration in hours, for comparing two of them. */
function withinHours(text: string): number {
  const d = parseResticDuration(text);
  if (!d) return Number.NaN;
  return d.years * 8766 + d.months * 730.5 + d.days * 24 + d.hours;
}

function withinWhat(rule: (typeof withinRules)[number]): string {
  return rule === "within" ? "snapshots" : `${rule.slice("within".length).toLowerCase()} snapshots`;
}

export function diffRetention(project: string, before: Retention, after: Retention): ConfigChange[] {
  const changes: ConfigChange[] = [];
  const subject = `retention of ${project}`;
  const more = "more snapshots will be kept; nothing is forgotten";
  const push = (key: string, consequence: string, destructive: boolean) => {
    const from = (before as Record<string, unknown>)[key];
    const to = (after as Record<string, unknown>)[key];
    changes.push({
      kind: kindOf(from, to),
      subject,
      detail: `${key} ${from ?? "not set"} → ${to ?? "not set"}`,
      consequence,
      destructive,
    });
  };
  for (const rule of countRules) {
    const from = before[rule];
    const to = after[rule];
    if (from === to) continue;
    const what = rule === "last" ? "snapshots" : `${rule} snapshots`;
    if (to === undefined) {
      push(
        rule,
        `${what} are no longer kept by this rule: those no other rule keeps will be forgotten ${approval}`,
        true,
      );
    } else if (from !== undefined && to < from) {
      push(
        rule,
        rule === "last"
          ? `snapshots beyond the last ${to} will be forgotten unless another rule keeps them ${approval}`
          : `older ${what} will be forgotten ${approval}`,
        true,
      );
    } else {
      push(rule, more, false);
    }
  }
  for (const rule of withinRules) {
    const from = before[rule];
    const to = after[rule];
    if (from === to) continue;
    const what = withinWhat(rule);
    if (to === undefined) {
      push(
        rule,
        `${what} are no longer kept for ${from}: those no other rule keeps will be forgotten ${approval}`,
        true,
      );
    } else if (from !== undefined && withinHours(to) < withinHours(from)) {
      push(rule, `${what} older than ${to} will be forgotten unless another rule keeps them ${approval}`, true);
    } else if (from !== undefined && withinHours(to) === withinHours(from)) {
      push(rule, "the same length, written differently; nothing is forgotten", false);
    } else {
      push(rule, more, false);
    }
  }
  const from = before.minSnapshots;
  const to = after.minSnapshots;
  if (from !== to) {
    if (to === undefined || (from !== undefined && to < from)) {
      push(
        "minSnapshots",
        `the deletion guard is weaker: a forget that leaves ${
          to === undefined ? "any number of snapshots" : `${to} or more snapshots`
        } in a group no longer needs approval`,
        true,
      );
    } else {
      push(
        "minSnapshots",
        `the deletion guard is stronger: a forget that would leave fewer than ${to} snapshots in a group needs ` +
          "approval; nothing is forgotten",
        false,
      );
    }
  }
  return changes;
}

/** `gpg for backup@example.com`, `age for age1…`, `gpg for the keys in keys/backup.pub.asc`. */
export function describeEncryption(encryption: Encryption): string {
  const recipients = encryption.type === "gpg"
    ? (encryption.recipient === undefined ? [] : [encryption.recipient].flat())
    : encryption.recipients ?? [];
  const file = encryption.type === "gpg" ? encryption.keyFile : encryption.recipientsFile;
  const parts = [
    ...(recipients.length > 0 ? [recipients.join(", ")] : []),
    ...(file !== undefined ? [`the keys in ${file}`] : []),
  ];
  return `${encryption.type} for ${parts.length > 0 ? parts.join(" and ") : "(no recipient)"}`;
}

export function diffEncryption(project: string, before?: Encryption, after?: Encryption): ConfigChange[] {
  if (same(before, after)) return [];
  const subject = `encryption of ${project}`;
  if (!before && after) {
    return [{
      kind: "added",
      subject,
      detail: describeEncryption(after),
      consequence: `dumps will be encrypted with ${describeEncryption(after)} before restic; restores and drills ` +
        "need the private key",
      destructive: false,
    }];
  }
  if (before && !after) {
    return [{
      kind: "removed",
      subject,
      detail: `${describeEncryption(before)} removed`,
      consequence: "dumps will no longer be encrypted before restic (the repository's own encryption still " +
        "applies); existing snapshots stay encrypted and still need the old key",
      destructive: true,
    }];
  }
  const b = before!;
  const a = after!;
  const recipientsChanged = describeEncryption(b) !== describeEncryption(a);
  return [{
    kind: "changed",
    subject,
    detail: recipientsChanged
      ? `${describeEncryption(b)} → ${describeEncryption(a)}`
      : fieldChanges(b as unknown as Record<string, unknown>, a as unknown as Record<string, unknown>).join("; "),
    consequence: recipientsChanged
      ? `dumps will be encrypted with ${describeEncryption(a)} instead of ${describeEncryption(b)}; older ` +
        "snapshots still need the old key to restore"
      : "restores and drills decrypt with the new key settings",
    destructive: false,
  }];
}
