/**
 * A semantic diff of two validated configurations, for pull-request review where the production state is not
 * available (`backupctl diff`). Pure: two NormalizedConfigs in, a list of changes out, and their renderings.
 * Secret references appear only by name (`env("NAME")`, `file("PATH")`); plain values that carry credentials
 * (notifier URLs, `env` and `headers` values) are shown as `(sensitive)`, and URL credentials are scrubbed.
 */
import { canonicalJson } from "../config/fingerprint.ts";
import type { NamedSource, NormalizedConfig, NormalizedProject } from "../config/normalize.ts";
import { parseResticDuration } from "../config/duration.ts";
import { describeSecret, isSecretRef, redact } from "../config/secrets.ts";
import type { Encryption, Notifier, Repository, Retention } from "../config/types.ts";

/** One semantic change between the `--against` config (before) and the current one (after). */
export interface ConfigChange {
  kind: "added" | "removed" | "changed";
  /** What changed, e.g. `project shop`, `source shop/db`, `repository offsite`, `retention of shop`. */
  subject: string;
  /** The change itself, e.g. `daily 30 → 7`. */
  detail: string;
  /** What it means for backups, in words. */
  consequence: string;
  /** True when the change can lose backups or stops managing them (see docs/cli.md "diff"). */
  destructive: boolean;
  /** The project the change belongs to; absent for config-wide changes (repositories, notifiers, settings). */
  project?: string;
}

/** Counts of a diff, as in the summary line. */
export interface DiffSummary {
  added: number;
  removed: number;
  changed: number;
  destructive: number;
}

/** The largest markdown rendering (GitHub comments hold 65,536 characters). */
export const markdownLimit = 60_000;

const approval = "(needs approval on apply)";
const keptNote = "they are kept, never deleted automatically";

/**
 * Compares two configs and lists every change that matters for backups, config-wide changes first, then per
 * project in the order of the current config (removed projects last). Returns [] exactly when both configs have
 * the same canonical JSON (and so the same fingerprint).
 *
 * @example
 * ```ts
 * const changes = diffConfigs(before.config, after.config);
 * process.stdout.write(renderDiffText(changes));
 * ```
 */
export function diffConfigs(before: NormalizedConfig, after: NormalizedConfig): ConfigChange[] {
  if (canonicalJson(before) === canonicalJson(after)) return [];
  const changes: ConfigChange[] = [
    ...diffRepositories(before, after),
    ...diffNotifiers(before, after),
    ...diffSettings(before, after),
  ];
  for (const [name, project] of Object.entries(after.projects)) {
    const old = before.projects[name];
    changes.push(...(old ? diffProject(old, project) : [projectAdded(project)]));
  }
  for (const [name, project] of Object.entries(before.projects)) {
    if (!(name in after.projects)) changes.push(projectRemoved(project));
  }
  if (changes.length === 0) {
    changes.push({
      kind: "changed",
      subject: "configuration",
      detail: "values reordered or written differently",
      consequence: "no effect on backups",
      destructive: false,
    });
  }
  return changes;
}

/** Counts changes by kind, and the destructive ones. */
export function summarizeDiff(changes: ConfigChange[]): DiffSummary {
  const count = (kind: ConfigChange["kind"]) => changes.filter((c) => c.kind === kind).length;
  return {
    added: count("added"),
    removed: count("removed"),
    changed: count("changed"),
    destructive: changes.filter((c) => c.destructive).length,
  };
}

/** `Diff: N added, N removed, N changed (N destructive).` — a stable grammar, like the plan's summary line. */
export function diffSummaryLine(changes: ConfigChange[]): string {
  const s = summarizeDiff(changes);
  return `Diff: ${s.added} added, ${s.removed} removed, ${s.changed} changed (${s.destructive} destructive).`;
}

/** What `diff` prints when both configs are the same. */
export const noChangesLine = "No changes to the configuration.";

const symbols: Record<ConfigChange["kind"], string> = { added: "+", removed: "-", changed: "~" };

/**
 * Text: one line per change (`+`/`-`/`~`, subject, detail), its consequence indented below (prefixed with
 * `destructive:` when it is), then the summary line; or `No changes to the configuration.`.
 */
export function renderDiffText(changes: ConfigChange[]): string {
  if (changes.length === 0) return `${noChangesLine}\n`;
  const lines: string[] = [];
  for (const change of changes) {
    lines.push(`${symbols[change.kind]} ${change.subject}: ${change.detail}`);
    lines.push(`    ${change.destructive ? "destructive: " : ""}${change.consequence}`);
  }
  lines.push("", diffSummaryLine(changes));
  return lines.join("\n") + "\n";
}

/**
 * Markdown for a pull-request comment: a title naming the `--against` ref, the summary line, a `[!WARNING]` block
 * listing destructive changes, then one table per group (config-wide, then each project). Kept under `limit`
 * characters (default 60,000): longer output is cut at a line and ends with a note saying so.
 */
export function renderDiffMarkdown(changes: ConfigChange[], options: { against: string; limit?: number }): string {
  const limit = options.limit ?? markdownLimit;
  const head = [`### backupctl config diff against ${code(options.against)}`, ""];
  if (changes.length === 0) return [...head, noChangesLine, ""].join("\n");
  const lines = [...head, diffSummaryLine(changes), ""];
  const destructive = changes.filter((c) => c.destructive);
  if (destructive.length > 0) {
    const noun = destructive.length === 1 ? "change" : "changes";
    lines.push("> [!WARNING]", `> ${destructive.length} destructive ${noun}: review before merging.`);
    for (const change of destructive) {
      lines.push(`> - **${escapeMd(change.subject)}**: ${code(change.detail)} — ${escapeMd(change.consequence)}`);
    }
    lines.push("");
  }
  const groups = new Map<string, ConfigChange[]>();
  for (const change of changes) {
    const group = change.project === undefined ? "Configuration" : `Project ${code(change.project)}`;
    groups.set(group, [...(groups.get(group) ?? []), change]);
  }
  for (const [group, members] of groups) {
    lines.push(`#### ${group}`, "", "| | change | consequence |", "| --- | --- | --- |");
    for (const change of members) {
      const consequence = `${change.destructive ? "⚠️ **destructive:** " : ""}${escapeMd(change.consequence)}`;
      lines.push(
        `| ${code(symbols[change.kind])} | **${escapeMd(change.subject)}**: ${code(change.detail, true)} | ` +
          `${consequence} |`,
      );
    }
    lines.push("");
  }
  return truncate(lines, limit, changes.length, options.against);
}

function truncate(lines: string[], limit: number, total: number, against: string): string {
  const full = lines.join("\n");
  if (full.length <= limit) return full;
  const note = `\n_… output truncated at ${limit.toLocaleString("en-US")} characters; the diff has ${total} changes: ` +
    `run \`backupctl diff --against ${against.replace(/`/g, "")}\` locally for the full list._\n`;
  const kept: string[] = [];
  let length = 0;
  for (const line of lines) {
    if (length + line.length + 1 + note.length > limit) break;
    kept.push(line);
    length += line.length + 1;
  }
  return kept.join("\n") + "\n" + note;
}

/** An inline code span that survives backticks in the content (and pipes, inside a table). */
function code(text: string, inTable = false): string {
  const flat = text.replace(/\r?\n/g, " ");
  const content = inTable ? flat.replace(/\|/g, "\\|") : flat;
  const longest = Math.max(0, ...[...content.matchAll(/`+/g)].map((m) => m[0].length));
  const fence = "`".repeat(longest + 1);
  const pad = longest > 0 ? " " : "";
  return `${fence}${pad}${content}${pad}${fence}`;
}

function escapeMd(text: string): string {
  return text.replace(/\r?\n/g, " ").replace(/[\\`*_{}[\]<>|#~]/g, "\\$&");
}

// ---- values -------------------------------------------------------------------------------------------------------

/** Keys whose plain string values are credentials (the whole URL is the secret). */
const sensitiveKeys = new Set(["pingUrl", "pushUrl", "webhookUrl"]);
/** Records whose plain string values may be credentials. */
const sensitiveRecords = new Set(["env", "headers"]);

/** A value for humans: secret references by name, plain credentials hidden, undefined as "not set". */
export function showValue(value: unknown, sensitive = false): string {
  if (value === undefined) return "not set";
  if (isSecretRef(value)) return describeSecret(value);
  if (typeof value === "string") return sensitive ? "(sensitive)" : JSON.stringify(redact(value));
  if (Array.isArray(value)) return `[${value.map((item) => showValue(item, sensitive)).join(", ")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value).filter(([, item]) => item !== undefined);
    if (entries.length === 0) return "{}";
    return `{ ${
      entries.map(([key, item]) => `${key}: ${showValue(item, sensitive || sensitiveRecords.has(key))}`).join(", ")
    } }`;
  }
  return String(value);
}

/** A field of an object, hidden when its key says it carries a credential (`url` of a notifier included). */
function showField(key: string, value: unknown, notifier = false): string {
  return showValue(value, sensitiveKeys.has(key) || sensitiveRecords.has(key) || (notifier && key === "url"));
}

function same(a: unknown, b: unknown): boolean {
  return canonicalJson(a ?? null) === canonicalJson(b ?? null);
}

function kindOf(before: unknown, after: unknown): ConfigChange["kind"] {
  if (before === undefined) return "added";
  if (after === undefined) return "removed";
  return "changed";
}

/** `key A → B` for every key that differs between two objects (top level only; nested values shown whole). */
function fieldChanges(
  before: Record<string, unknown>,
  after: Record<string, unknown>,
  options: { skip?: string[]; notifier?: boolean } = {},
): string[] {
  const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])]
    .filter((key) => !(options.skip ?? []).includes(key));
  return keys
    .filter((key) => !same(before[key], after[key]))
    .map((key) =>
      `${key} ${showField(key, before[key], options.notifier)} → ${showField(key, after[key], options.notifier)}`
    );
}

/** `type key value, key value` for a newly declared object. */
function describeFields(value: Record<string, unknown>, options: { skip?: string[]; notifier?: boolean } = {}) {
  const skip = ["type", ...(options.skip ?? [])];
  const fields = Object.entries(value)
    .filter(([key, item]) => !skip.includes(key) && item !== undefined)
    .map(([key, item]) => `${key} ${showField(key, item, options.notifier)}`);
  return [String(value.type ?? ""), fields.join(", ")].filter(Boolean).join(" ");
}

function list(names: string[]): string {
  return names.length === 0 ? "none" : names.join(", ");
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

// ---- config-wide --------------------------------------------------------------------------------------------------

function projectsUsing(config: NormalizedConfig, key: "repositories" | "notify", name: string): string[] {
  return Object.values(config.projects).filter((p) => (p[key] ?? []).includes(name)).map((p) => p.name);
}

function diffRepositories(before: NormalizedConfig, after: NormalizedConfig): ConfigChange[] {
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

function diffNotifiers(before: NormalizedConfig, after: NormalizedConfig): ConfigChange[] {
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
function diffSettings(before: NormalizedConfig, after: NormalizedConfig): ConfigChange[] {
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

// ---- projects -----------------------------------------------------------------------------------------------------

function projectAdded(project: NormalizedProject): ConfigChange {
  const [primary, ...copies] = project.repositories;
  const sources = project.sources.map((s) => s.name);
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

function projectRemoved(project: NormalizedProject): ConfigChange {
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
  "repositories",
  "retention",
  "encrypt",
  "notify",
]);

function diffProject(before: NormalizedProject, after: NormalizedProject): ConfigChange[] {
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

function describeSource(source: NamedSource): string {
  return describeFields(source as unknown as Record<string, unknown>, { skip: ["name"] });
}

function diffSources(before: NormalizedProject, after: NormalizedProject): ConfigChange[] {
  const project = after.name;
  const changes: ConfigChange[] = [];
  const old = new Map(before.sources.map((s) => [s.name, s]));
  const current = new Set(after.sources.map((s) => s.name));
  for (const source of after.sources) {
    const subject = `source ${project}/${source.name}`;
    const previous = old.get(source.name);
    if (!previous) {
      changes.push({
        kind: "added",
        subject,
        detail: describeSource(source),
        consequence: after.enabled
          ? "the next apply backs it up (never backed up yet)"
          : `backed up once ${project} is enabled`,
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
  for (const source of before.sources) {
    if (current.has(source.name)) continue;
    changes.push({
      kind: "removed",
      subject: `source ${project}/${source.name}`,
      detail: `no longer declared (was ${describeSource(source)})`,
      consequence: "no longer backed up; its snapshots are kept, never deleted automatically",
      destructive: false,
    });
  }
  const kept = (sources: NamedSource[]) => sources.map((s) => s.name).filter((n) => old.has(n) && current.has(n));
  const order = [kept(before.sources), kept(after.sources)];
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

function diffRetention(project: string, before: Retention, after: Retention): ConfigChange[] {
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

function diffEncryption(project: string, before?: Encryption, after?: Encryption): ConfigChange[] {
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
