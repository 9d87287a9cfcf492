/**
 * Renderings of a plan: text for terminals, JSON for machines and saved plans, markdown for pull requests.
 * The summary line's grammar is API: keep it stable. JSON keeps times in UTC; text and markdown show them in a time
 * zone with their offset (`2026-11-21 04:00:00+01:00`), the config's or the machine's (`displayTimeZone`).
 */
import pc from "picocolors";
import { compareTimes, humanDuration, localTime, localTimesIn } from "../format/time.ts";
import { markdownLimit } from "../format/markdown.ts";
import { ofType, type Plan, type PlanAction, planDocument, type PlanToApply } from "./document.ts";

const symbols: Record<PlanAction["type"], string> = {
  init: "+",
  backup: "+",
  copy: "+",
  forget: "-",
  prune: "~",
  check: "~",
  verify: "~",
  recover: "~",
  stanza_create: "+",
  pitr_backup: "+",
  pitr_expire: "-",
  pitr_check: "~",
};

/** Colours only on a terminal, never when NO_COLOR is set (plans are pasted and saved). */
export function colours(enabled: boolean) {
  return pc.createColors(enabled);
}

export function terminalColours(): boolean {
  return Boolean(process.stdout.isTTY) && !process.env.NO_COLOR && process.env.TERM !== "dumb";
}

type Colours = ReturnType<typeof colours>;

/** `Plan: N to back up, N to copy, N to initialize, N snapshots to forget, N checks.` */
export function summaryLine(plan: Plan): string {
  const s = plan.summary;
  return `Plan: ${s.backup} to back up, ${s.copy} to copy, ${s.init} to initialize, ` +
    `${s.forget} snapshots to forget, ${s.check + s.verify} checks.`;
}

/** The loud lines for deletions that need approval: `! 23 snapshots of shop/db would be forgotten because …`. */
export function deletionBanners(plan: Plan): string[] {
  const banners = plan.actions.filter(ofType("forget")).filter((a) => a.approval === "required").map((a) =>
    `${a.snapshots.length} snapshot${a.snapshots.length === 1 ? "" : "s"} of ${a.project}/${a.source} in ` +
    `${a.repository} would be forgotten because ${a.approval_reason}`
  );
  const expirations = plan.actions.filter(ofType("pitr_expire")).filter((a) => a.approval === "required").map((a) =>
    `${a.labels.length} pgBackRest backup${a.labels.length === 1 ? "" : "s"} of ${a.project}/${a.source} ` +
    `(stanza ${a.stanza}) would be expired because ${a.approval_reason}`
  );
  return [...banners, ...expirations];
}

export function describeAction(action: PlanAction): string {
  switch (action.type) {
    case "init":
      return `init ${action.repository}`;
    case "backup":
      return `backup ${action.source} → ${action.repository}`;
    case "recover":
      return describeRecovery(action);
    case "copy":
      return `copy ${action.source} → ${action.repository}`;
    case "forget": {
      const n = action.snapshots.length;
      return `forget ${n} snapshot${n === 1 ? "" : "s"} of ${action.source} in ${action.repository}` +
        (action.approval === "required" ? " (needs approval)" : "");
    }
    case "prune":
      return `prune ${action.repository}`;
    case "check":
      return `check ${action.repository}`;
    case "verify":
      return `verify ${action.project} (restore drill from ${action.repository})`;
    case "stanza_create":
      return `stanza-create ${action.stanza} (pgBackRest)`;
    case "pitr_backup":
      return `backup ${action.source} → stanza ${action.stanza} (pgBackRest ${action.backup_type})`;
    case "pitr_expire": {
      const n = action.labels.length;
      return `expire ${n} pgBackRest backup${n === 1 ? "" : "s"} of ${action.source} in stanza ${action.stanza}` +
        (action.approval === "required" ? " (needs approval)" : "");
    }
    case "pitr_check":
      return `check stanza ${action.stanza} (pgBackRest)`;
  }
}

function describeRecovery(action: Extract<PlanAction, { type: "recover" }>): string {
  switch (action.recover) {
    case "interrupted_run":
      return `recover: mark run ${action.run_id} of ${action.project} interrupted`;
    case "stale_lock":
      return `recover: remove the stale lock of ${action.project}`;
    case "leftover_files":
      return `recover: delete ${action.paths.length} leftover private folder${action.paths.length === 1 ? "" : "s"}`;
    case "restic_unlock":
      return `recover: remove stale restic locks in ${action.repository}`;
    case "partial_snapshot":
      return `recover: forget partial snapshot ${
        action.snapshots.map((id) => id.slice(0, 8)).join(", ")
      } of ${action.source} in ${action.repository}`;
  }
}

/** How many short snapshot ids a forget line lists per line below it. */
const idsPerLine = 8;

/** The short ids a forget will delete, a few per line: the text plan shows exactly what goes, as JSON does. */
function snapshotIdLines(action: PlanAction): string[] {
  // pgBackRest's labels are long (`20261206-223228F_20261207-010000I`): one per line, whole.
  if (action.type === "pitr_expire") return action.labels;
  if (action.type !== "forget" || action.snapshots.length === 0) return [];
  const short = action.snapshots.map((id) => id.slice(0, 8));
  const lines: string[] = [];
  for (let i = 0; i < short.length; i += idsPerLine) lines.push(short.slice(i, i + idsPerLine).join(" "));
  return lines;
}

function groupOf(action: PlanAction): string {
  // Leftovers of dead processes and restic's locks belong to no project.
  if (action.type === "recover" && (action.recover === "leftover_files" || action.recover === "restic_unlock")) {
    return "Recovery";
  }
  if ("project" in action) return `Project ${action.project}`;
  return "Repositories";
}

/** What an overdue project's time is of: its dumps' last success, or the newest backup of a pgBackRest stanza. */
export function lastSuccessOf(overdue: Plan["overdue"][number]): string {
  return overdue.stanza === undefined
    ? "last success"
    : `newest pgBackRest backup of ${overdue.source} (stanza ${overdue.stanza}) started`;
}

/**
 * The text plan. Times (in reasons too) are shown in `timeZone` with their offset; the plan document keeps UTC.
 */
export function renderText(plan: Plan, c: Colours = colours(false), timeZone = "UTC"): string {
  const lines: string[] = [];
  const local = (text: string) => localTimesIn(text, timeZone);
  for (const warning of plan.warnings) lines.push(c.yellow(`! ${local(warning)}`));
  for (const overdue of plan.overdue) {
    lines.push(c.red(
      `! project ${overdue.project} is overdue: ${lastSuccessOf(overdue)} ${local(overdue.last_success)}, ` +
        `longer ago than its maxAge ${overdue.max_age}`,
    ));
  }
  for (const banner of deletionBanners(plan)) lines.push(c.bold(c.red(`! ${banner}`)));
  if (lines.length > 0) lines.push("");

  if (plan.actions.length === 0) {
    lines.push(c.green("No changes. Backups are up to date."));
    const next = [...plan.next_due].sort((a, b) => compareTimes(a.at, b.at))[0];
    if (next) {
      const wait = humanDuration(Date.parse(next.at) - Date.parse(plan.now));
      lines.push(`Next due: ${next.project} at ${localTime(new Date(next.at), timeZone)} (in ${wait}).`);
    }
  } else {
    const groups = new Map<string, PlanAction[]>();
    for (const action of plan.actions) {
      const group = groupOf(action);
      groups.set(group, [...(groups.get(group) ?? []), action]);
    }
    for (const [group, actions] of groups) {
      lines.push(c.bold(`${group}:`));
      for (const action of actions) {
        const symbol = symbols[action.type];
        const paint = symbol === "+" ? c.green : symbol === "-" ? c.red : c.yellow;
        lines.push(`  ${paint(`${symbol} ${describeAction(action)}`)}  ${c.dim(local(action.reason))}`);
        for (const ids of snapshotIdLines(action)) lines.push(`      ${paint(ids)}`);
      }
      lines.push("");
    }
  }
  if (plan.not_managed.length > 0) {
    if (plan.actions.length === 0) lines.push("");
    lines.push(c.bold("Not managed (reported, never deleted):"));
    for (const item of plan.not_managed) lines.push(`  ? ${item.subject}: ${item.detail}`);
    lines.push("");
  }
  if (plan.actions.length > 0) lines.push(c.bold(summaryLine(plan)));
  return lines.join("\n").replace(/\n+$/, "") + "\n";
}

/** The plan document as JSON (a plan to apply loses its prune triggers: see document.ts). */
export function renderJson(plan: Plan | PlanToApply): string {
  return JSON.stringify(planDocument(plan), null, 2) + "\n";
}

/** The plan's state in a few words, as pull requests and the dashboard head it. */
export function planHeadline(plan: Plan): string {
  return plan.actions.length === 0
    ? "✅ No changes"
    : deletionBanners(plan).length > 0
    ? "⛔ Deletions need approval"
    : plan.summary.forget > 0
    ? "⚠️ Changes with routine deletions"
    : "📋 Changes";
}

/** The order the markdown and the dashboard list action types in. */
export const actionTypeOrder: PlanAction["type"][] = [
  "init",
  "backup",
  "copy",
  "forget",
  "prune",
  "check",
  "verify",
  "recover",
  "stanza_create",
  "pitr_backup",
  "pitr_expire",
  "pitr_check",
];

/**
 * A reviewer-first summary: status, summary line, every warning, actions by type, the full plan folded. Times are
 * shown in `timeZone` with their offset.
 */
export function renderMarkdown(plan: Plan, timeZone = "UTC"): string {
  const local = (text: string) => localTimesIn(text, timeZone);
  const banners = deletionBanners(plan);
  const destroys = plan.summary.forget > 0;
  const out: string[] = [`### backupctl plan: ${planHeadline(plan)}`, ""];
  out.push(plan.actions.length === 0 ? "No changes. Backups are up to date." : `**${summaryLine(plan)}**`, "");
  if (banners.length > 0 || plan.overdue.length > 0 || plan.warnings.length > 0) {
    // At the top, not only inside the folded full plan: a reviewer must not have to unfold it to see them.
    out.push("> [!WARNING]");
    const warnings = [
      ...banners,
      ...plan.overdue.map((o) => `project ${o.project} is overdue: ${lastSuccessOf(o)} ${local(o.last_success)}`),
      ...plan.warnings.map((warning) => cell(local(warning))),
    ];
    out.push(...capped(warnings, (line) => `> - ${line}`, markdownLimit / 6, (n) => `> - … and ${n} more`));
    out.push("");
  }
  if (destroys && banners.length === 0) {
    const n = plan.summary.forget;
    out.push(`> [!NOTE]`, `> ${n} snapshot${n === 1 ? "" : "s"} will be forgotten by routine retention.`, "");
  }
  for (const type of actionTypeOrder) {
    const actions = plan.actions.filter((a) => a.type === type);
    if (actions.length === 0) continue;
    out.push(`#### ${type} (${actions.length})`, "", "| project | action | reason |", "| --- | --- | --- |");
    let shown = 0;
    let length = out.reduce((n, line) => n + line.length + 1, 0);
    for (const a of actions) {
      // The tables get at most half of the comment; the folded full plan below lists everything.
      const row = `| ${"project" in a ? a.project : "—"} | ${cell(describeAction(a))} | ${cell(local(a.reason))} |`;
      if (length + row.length > markdownLimit / 2) break;
      out.push(row);
      length += row.length + 1;
      shown++;
    }
    if (shown < actions.length) out.push(`| … | ${actions.length - shown} more ${type} actions | see the full plan |`);
    out.push("");
  }
  if (plan.not_managed.length > 0) {
    out.push("#### Not managed (reported, never deleted)", "");
    const items = plan.not_managed.map((item) => `${cell(item.subject)}: ${cell(item.detail)}`);
    out.push(
      ...capped(items, (line) => `- ${line}`, markdownLimit / 6, (n) => `- … and ${n} more (see the full plan)`),
    );
    out.push("");
  }
  const head = out.join("\n");
  const footer = `\n<sub>now ${localTime(new Date(plan.now), timeZone)} · config ${
    plan.config_fingerprint.slice(0, 19)
  }… · state serial ${plan.state.serial}</sub>\n`;
  const text = renderText(plan, colours(false), timeZone);
  const room = markdownLimit - head.length - footer.length - 200;
  const body = text.length <= room ? text : `${text.slice(0, Math.max(0, room))}\n… (cut: the full plan is longer)\n`;
  const result = `${head}\n<details><summary>Full plan</summary>\n\n\`\`\`\n${body}\`\`\`\n\n</details>\n${footer}`;
  return result.length <= markdownLimit ? result : result.slice(0, markdownLimit - 40) + "\n… (cut)\n";
}

/** Formats lines until `budget` characters are used, then one line saying how many were left out. */
function capped(items: string[], format: (item: string) => string, budget: number, more: (n: number) => string) {
  const lines: string[] = [];
  let used = 0;
  for (const item of items) {
    const line = format(item);
    if (used + line.length > budget) {
      lines.push(more(items.length - lines.length));
      break;
    }
    lines.push(line);
    used += line.length + 1;
  }
  return lines;
}

function cell(text: string): string {
  return text.replaceAll("|", "\\|").replaceAll("\n", " ");
}
