/**
 * What a message says, as labelled facts and as plain text: the Slack and Discord fields, the e-mail table, the Teams
 * fact set and the plain-text bodies (e-mail, ntfy, healthchecks, Pushover, Matrix) show the same facts in the same
 * order and words. Also the small text tools the renderers share (clipping, HTML escaping).
 */
import { shortFingerprint } from "../../config/fingerprint.ts";
import { formatBytes } from "../../format/bytes.ts";
import { humanDuration } from "../../format/time.ts";
import type { Message, Severity, SummaryProject } from "../message.ts";

/** The colour of a severity: Slack's attachment bar and the e-mail's side bar. */
export const severityColors: Record<Severity, string> = {
  good: "#2eb886",
  warning: "#daa038",
  bad: "#a30200",
  info: "#439fe0",
};

export interface Fact {
  label: string;
  value: string;
}

/** The message's facts, most useful first; host and time come last. */
export function facts(message: Message): Fact[] {
  const list: Fact[] = [];
  const add = (label: string, value: string | undefined) => {
    if (value !== undefined && value !== "") list.push({ label, value });
  };
  add("Project", message.project);
  add("Runner", message.runner);
  add("Labels", message.labels && (message.labels.join(", ") || "none"));
  add("Runs on", message.runsOn?.join(", "));
  add(
    "Live runners",
    message.runners &&
      (message.runners.map((r) => `${r.name} (${r.labels.join(", ") || "no labels"})`).join("; ") || "none"),
  );
  add("Last heartbeat", message.lastHeartbeat && sinceText(message.lastHeartbeat, message.at));
  add("Was running", message.work);
  add("Config", message.fingerprint && shortFingerprint(message.fingerprint));
  add(
    "Newest config",
    message.newestFingerprint &&
      `${shortFingerprint(message.newestFingerprint)}${message.newestRunner ? ` (${message.newestRunner})` : ""}`,
  );
  add("Repositories", message.repositories?.join(", "));
  add("Run", message.runId);
  add("Stage", message.stage);
  add("Attempt", message.attempt && `${message.attempt.n} of ${message.attempt.of}`);
  add("Duration", message.durationMs === undefined ? undefined : humanDuration(message.durationMs));
  add("Read", message.bytes === undefined ? undefined : formatBytes(message.bytes));
  add(
    "Added",
    message.bytesAdded === undefined ? undefined : `${formatBytes(message.bytesAdded)} new in the repositories`,
  );
  add("Failed runs before", message.failuresBefore?.toString());
  if (message.event === "backup.overdue") {
    add("Last success", message.lastSuccessAt ? sinceText(message.lastSuccessAt, message.at) : "never");
  }
  add("Allowed age", message.maxAge);
  add("Snapshots held", message.snapshots?.join(", "));
  add("Period", message.period && `${message.period.from} to ${message.period.to}`);
  add("Host", message.host);
  add("At", message.at);
  return list;
}

/** "2025-03-01T03:04:12Z (3h 2m ago)", the age counted from the message's time so a rendering never changes. */
export function sinceText(then: string, now: string): string {
  const age = Date.parse(now) - Date.parse(then);
  return Number.isFinite(age) ? `${then} (${humanDuration(age)} ago)` : then;
}

const healthWords: Record<SummaryProject["health"], string> = {
  ok: "ok",
  failing: "failing",
  overdue: "overdue",
  never: "never backed up",
};
const healthSymbols: Record<SummaryProject["health"], string> = { ok: "✔", failing: "✘", overdue: "⚠", never: "–" };

/** One project of a daily summary: its health and what its last success and the period's runs were. */
export function summaryDetails(project: SummaryProject, at: string): string {
  const parts: string[] = [healthWords[project.health]];
  if (project.lastSuccessAt) {
    const age = Date.parse(at) - Date.parse(project.lastSuccessAt);
    let success = `last success ${Number.isFinite(age) ? `${humanDuration(age)} ago` : project.lastSuccessAt}`;
    const size = project.lastSuccessBytes === undefined ? undefined : formatBytes(project.lastSuccessBytes);
    const took = project.lastSuccessDurationMs === undefined ? undefined : humanDuration(project.lastSuccessDurationMs);
    if (size && took) success += ` (${size} in ${took})`;
    else if (size || took) success += ` (${size ?? took})`;
    parts.push(success);
  }
  parts.push(runCounts(project.runs));
  return parts.join(", ");
}

function runCounts(runs: SummaryProject["runs"]): string {
  const counts = [
    runs.succeeded && `${runs.succeeded} succeeded`,
    runs.failed && `${runs.failed} failed`,
    runs.interrupted && `${runs.interrupted} interrupted`,
  ].filter(Boolean);
  return counts.length === 0 ? "no run in the period" : `runs: ${counts.join(", ")}`;
}

/** A summary where no project started a run says so in one sentence instead of a list of zeros. */
export function nothingRan(message: Message): string | undefined {
  const projects = message.projects ?? [];
  const ran = projects.some((p) => p.runs.succeeded + p.runs.failed + p.runs.interrupted > 0);
  if (ran) return undefined;
  const period = message.period ? ` between ${message.period.from} and ${message.period.to}` : "";
  return projects.length === 0 ? `No project is configured, so nothing ran${period}.` : `No backup ran${period}.`;
}

export function healthSymbol(health: SummaryProject["health"]): string {
  return healthSymbols[health];
}

/**
 * The plain-text body: title, facts, project lines of a summary, the error tail and the next step. Without the title
 * for channels that show it apart (ntfy's Title header).
 */
export function renderPlainText(message: Message, options: { title?: boolean } = {}): string {
  const list = facts(message);
  const width = Math.max(...list.map((fact) => fact.label.length)) + 2;
  const lines = [
    ...(options.title === false ? [] : [message.title, ""]),
    ...list.map((fact) => `${`${fact.label}:`.padEnd(width)}${fact.value}`),
  ];
  if (message.event === "summary.daily") {
    const quiet = nothingRan(message);
    lines.push("");
    if (quiet) lines.push(quiet);
    const nameWidth = Math.max(0, ...(message.projects ?? []).map((p) => p.project.length)) + 2;
    for (const project of message.projects ?? []) {
      lines.push(
        `${healthSymbol(project.health)} ${project.project.padEnd(nameWidth)}${summaryDetails(project, message.at)}`,
      );
    }
  }
  if (message.error) lines.push("", "Error (last lines):", ...message.error.split("\n").map((line) => `    ${line}`));
  lines.push("", `Next: ${message.next}`);
  return `${lines.join("\n")}\n`;
}

/** Cuts a text to `max` characters (UTF-16 code units, as the services count), marking the cut with "…". */
export function clip(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** Keeps the end of a text (an error's last lines matter most) within `max` characters, marking the cut with "…". */
export function clipStart(text: string, max: number): string {
  return text.length > max ? `…${text.slice(text.length - max + 1)}` : text;
}

/** As many whole lines as fit in `max` characters (joined by newlines), then "… and N more" for the rest. */
export function fitLines(lines: string[], max: number): string {
  const kept: string[] = [];
  let used = 0;
  for (const [i, line] of lines.entries()) {
    const more = `… and ${lines.length - i} more`;
    const last = i === lines.length - 1;
    if (used + line.length + (last ? 0 : more.length + 1) > max) return [...kept, more].join("\n");
    kept.push(line);
    used += line.length + 1;
  }
  return kept.join("\n");
}

/** HTML-escapes a text for an element's content or a quoted attribute (e-mail, Telegram, Matrix). */
export function escapeHtml(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;").replaceAll('"', "&quot;")
    .replaceAll("'", "&#39;");
}

/** The lines of a daily summary: "nothing ran" when so, then one line per project (symbol, name, details). */
export function summaryLines(message: Message): { symbol: string; project?: string; text: string }[] {
  if (message.event !== "summary.daily") return [];
  const quiet = nothingRan(message);
  return [
    ...(quiet ? [{ symbol: "", text: quiet }] : []),
    ...(message.projects ?? []).map((project) => ({
      symbol: healthSymbol(project.health),
      project: project.project,
      text: summaryDetails(project, message.at),
    })),
  ];
}
