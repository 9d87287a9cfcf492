/**
 * The renderings of a config diff: text for a terminal, markdown for a pull-request comment (kept under GitHub's
 * size limit), and the summary line with its stable grammar.
 */
import { markdownLimit } from "../format/markdown.ts";
import type { ConfigChange, DiffSummary } from "./types.ts";

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
