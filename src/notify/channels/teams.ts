/**
 * Microsoft Teams through a workflow webhook ("Post to a channel when a webhook request is received"): a message with
 * one Adaptive Card 1.4. The title sits in a container styled by severity (attention, warning, good, accent), the
 * facts in a FactSet. Text that comes from outside (the title, the summary lines, the error, the next step) goes into
 * RichTextBlock text runs, which Teams shows as they are, where a TextBlock would read markdown in an error message.
 */
import { resolveSecret } from "../../config/secrets.ts";
import type { TeamsNotifier } from "../../config/types.ts";
import type { Message, Severity } from "../message.ts";
import type { DeliveryOptions } from "./delivery.ts";
import { sendHttp } from "./http.ts";
import { clipStart, facts, summaryLines } from "./text.ts";

export interface TextRun {
  type: "TextRun";
  text: string;
  weight?: "Bolder";
  size?: "Medium";
  fontType?: "Monospace";
}

export type CardElement =
  | { type: "Container"; style: string; bleed: true; items: CardElement[] }
  | { type: "FactSet"; facts: { title: string; value: string }[] }
  | { type: "RichTextBlock"; inlines: TextRun[]; spacing?: "Medium" };

export interface TeamsPayload {
  type: "message";
  attachments: [{
    contentType: "application/vnd.microsoft.card.adaptive";
    contentUrl: null;
    content: {
      $schema: "http://adaptivecards.io/schemas/adaptive-card.json";
      type: "AdaptiveCard";
      version: "1.4";
      body: CardElement[];
      msteams: { width: "Full" };
    };
  }];
}

const styles: Record<Severity, string> = { bad: "attention", warning: "warning", good: "good", info: "accent" };

/**
 * A workflow accepts 28 KB: the summary's lines may take 16 KB of the card's JSON and the error 4,000 characters (an
 * error tail is at most 1,500), which leaves ample room for the rest.
 */
const summaryBytes = 16_000;
const errorChars = 4_000;

export function renderTeams(message: Message): TeamsPayload {
  const text = (run: string, extra: Partial<TextRun> = {}): TextRun => ({ type: "TextRun", text: run, ...extra });
  const block = (...inlines: TextRun[]): CardElement => ({ type: "RichTextBlock", inlines });
  const body: CardElement[] = [{
    type: "Container",
    style: styles[message.severity],
    bleed: true,
    items: [block(text(message.title, { weight: "Bolder", size: "Medium" }))],
  }];
  const list = facts(message).map((fact) => ({ title: fact.label, value: fact.value }));
  if (list.length > 0) body.push({ type: "FactSet", facts: list });
  let room = summaryBytes;
  const lines = summaryLines(message);
  for (const [i, line] of lines.entries()) {
    const element = line.project
      ? block(text(`${line.symbol} `), text(line.project, { weight: "Bolder" }), text(`: ${line.text}`))
      : block(text(line.text, { weight: "Bolder" }));
    room -= new TextEncoder().encode(JSON.stringify(element)).length;
    if (room < 0) {
      body.push(block(text(`… and ${lines.length - i} more`)));
      break;
    }
    body.push(element);
  }
  if (message.error) {
    const error = clipStart(message.error, errorChars);
    body.push(
      { type: "RichTextBlock", spacing: "Medium", inlines: [text("Error (last lines)", { weight: "Bolder" })] },
      block(text(error, { fontType: "Monospace" })),
    );
  }
  body.push({
    type: "RichTextBlock",
    spacing: "Medium",
    inlines: [text("Next: ", { weight: "Bolder" }), text(message.next)],
  });
  return {
    type: "message",
    attachments: [{
      contentType: "application/vnd.microsoft.card.adaptive",
      contentUrl: null,
      content: {
        $schema: "http://adaptivecards.io/schemas/adaptive-card.json",
        type: "AdaptiveCard",
        version: "1.4",
        body,
        msteams: { width: "Full" },
      },
    }],
  };
}

export async function sendTeams(notifier: TeamsNotifier, message: Message, options: DeliveryOptions): Promise<void> {
  await sendHttp("teams", {
    method: "POST",
    url: resolveSecret(notifier.webhookUrl, options.configDir),
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(renderTeams(message)),
  }, options.timeoutMs);
}
