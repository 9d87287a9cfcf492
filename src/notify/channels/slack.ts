/**
 * Slack incoming webhooks, with Block Kit inside a coloured attachment: the attachment gives the severity bar, the
 * blocks the layout; `text` is what the phone notification and screen readers show.
 */
import { resolveSecret } from "../../config/secrets.ts";
import type { SlackNotifier } from "../../config/types.ts";
import type { Message, SummaryProject } from "../message.ts";
import type { DeliveryOptions } from "./delivery.ts";
import { sendHttp } from "./http.ts";
import { facts, nothingRan, severityColors, summaryDetails } from "./text.ts";

export interface SlackText {
  type: "plain_text" | "mrkdwn";
  text: string;
  emoji?: boolean;
}

export type SlackBlock =
  | { type: "header"; text: SlackText }
  | { type: "section"; text?: SlackText; fields?: SlackText[] }
  | { type: "context"; elements: SlackText[] };

export interface SlackPayload {
  text: string;
  attachments: { color: string; blocks: SlackBlock[] }[];
}

const healthEmoji: Record<SummaryProject["health"], string> = {
  ok: ":white_check_mark:",
  failing: ":x:",
  overdue: ":warning:",
  never: ":grey_question:",
};

/** Block Kit limits: a header holds 150 characters, a section text 3000, a field 2000, a section 10 fields. */
const limits = { header: 150, section: 3000, field: 2000, fields: 10 };

export function renderSlack(message: Message): SlackPayload {
  const blocks: SlackBlock[] = [{
    type: "header",
    text: { type: "plain_text", text: clip(message.title, limits.header) },
  }];
  const fields = facts(message)
    .filter((fact) => fact.label !== "Host" && fact.label !== "At")
    .slice(0, limits.fields)
    .map((fact): SlackText => ({ type: "mrkdwn", text: clip(`*${fact.label}*\n${escape(fact.value)}`, limits.field) }));
  if (fields.length > 0) blocks.push({ type: "section", fields });
  if (message.event === "summary.daily") blocks.push(...summarySections(message));
  if (message.error) {
    const code = escape(message.error).replaceAll("```", "'''");
    blocks.push({
      type: "section",
      text: { type: "mrkdwn", text: `\`\`\`\n${clip(code, limits.section - 8)}\n\`\`\`` },
    });
  }
  blocks.push({
    type: "context",
    elements: [
      { type: "mrkdwn", text: clip(`*Next:* ${escape(message.next)}`, limits.section) },
      { type: "mrkdwn", text: `${escape(message.host)} · ${slackDate(message.at)}` },
    ],
  });
  return { text: message.title, attachments: [{ color: severityColors[message.severity], blocks }] };
}

function summarySections(message: Message): SlackBlock[] {
  const lines: string[] = [];
  const quiet = nothingRan(message);
  if (quiet) lines.push(`*${escape(quiet)}*`);
  for (const project of message.projects ?? []) {
    lines.push(
      `${healthEmoji[project.health]} *${escape(project.project)}*: ${escape(summaryDetails(project, message.at))}`,
    );
  }
  // Many projects overflow one section: cut between lines.
  const sections: SlackBlock[] = [];
  let chunk = "";
  for (const line of lines) {
    if (chunk && chunk.length + line.length + 1 > limits.section) {
      sections.push({ type: "section", text: { type: "mrkdwn", text: chunk } });
      chunk = "";
    }
    chunk = chunk ? `${chunk}\n${line}` : clip(line, limits.section);
  }
  if (chunk) sections.push({ type: "section", text: { type: "mrkdwn", text: chunk } });
  return sections;
}

/** Slack shows `<!date^…>` in the reader's time zone; the fallback is the UTC time. */
function slackDate(at: string): string {
  const seconds = Math.floor(Date.parse(at) / 1000);
  return Number.isFinite(seconds) ? `<!date^${seconds}^{date_short_pretty} {time}|${at}>` : escape(at);
}

/** mrkdwn treats &, < and > as markup (links, mentions). */
function escape(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");
}

function clip(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

export async function sendSlack(notifier: SlackNotifier, message: Message, options: DeliveryOptions): Promise<void> {
  await sendHttp("slack", {
    method: "POST",
    url: resolveSecret(notifier.webhookUrl, options.configDir),
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(renderSlack(message)),
  }, options.timeoutMs);
}
