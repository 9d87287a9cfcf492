/**
 * Discord channel webhooks: one embed per message, its side bar in the severity's colour, the facts as inline fields,
 * the host in the footer and the time as the embed's timestamp (Discord shows it in the reader's time zone). Mentions
 * are switched off, so an error quoting "@everyone" pings nobody.
 */
import { resolveSecret } from "../../config/secrets.ts";
import type { DiscordNotifier } from "../../config/types.ts";
import type { Message } from "../message.ts";
import type { DeliveryOptions } from "./delivery.ts";
import { sendHttp } from "./http.ts";
import { clip, clipStart, facts, fitLines, severityColors, summaryLines } from "./text.ts";

export interface DiscordEmbed {
  title: string;
  description: string;
  /** The side bar's colour as an RGB integer. */
  color: number;
  fields: { name: string; value: string; inline: boolean }[];
  footer: { text: string };
  timestamp: string;
}

export interface DiscordPayload {
  embeds: [DiscordEmbed];
  allowed_mentions: { parse: never[] };
}

/** Discord's documented embed limits; all the texts of an embed together hold at most 6000 characters. */
export const discordLimits = {
  title: 256,
  description: 4096,
  fields: 25,
  fieldName: 256,
  fieldValue: 1024,
  footer: 2048,
  embed: 6000,
};

export function renderDiscord(message: Message): DiscordPayload {
  const title = clip(markdown(message.title), discordLimits.title);
  const footer = clip(message.host, discordLimits.footer);
  const fields = facts(message)
    .filter((fact) => fact.label !== "Host" && fact.label !== "At")
    .slice(0, discordLimits.fields)
    .map((fact) => ({ name: fact.label, value: clip(markdown(fact.value), discordLimits.fieldValue), inline: true }));
  const used = () => title.length + footer.length + fields.reduce((n, f) => n + f.name.length + f.value.length, 0);
  // The description needs room for at least the next step: long lists of facts give way first.
  while (fields.length > 0 && used() > discordLimits.embed - 600) fields.pop();
  const description = describe(message, Math.min(discordLimits.description, discordLimits.embed - used()));
  return {
    embeds: [{
      title,
      description,
      color: Number.parseInt(severityColors[message.severity].slice(1), 16),
      fields,
      footer: { text: footer },
      timestamp: message.at,
    }],
    allowed_mentions: { parse: [] },
  };
}

/** The summary's project lines, the error's last lines in a code block and the next step, within `max` characters. */
function describe(message: Message, max: number): string {
  const next = clip(`**Next:** ${markdown(message.next)}`, 1000);
  const lines = summaryLines(message).map((line) =>
    line.project ? `${line.symbol} **${markdown(line.project)}**: ${markdown(line.text)}` : `**${markdown(line.text)}**`
  );
  const summary = fitLines(lines, max - next.length - 2);
  const room = max - next.length - (summary ? summary.length + 2 : 0) - 2;
  // The code block keeps its closing fence however the error is cut; a fence inside the error would end it early.
  const error = message.error && room > 40
    ? `\`\`\`\n${clipStart(message.error.replaceAll("```", "'''"), room - 8)}\n\`\`\``
    : undefined;
  return clip([summary, error, next].filter(Boolean).join("\n\n"), max);
}

/** Discord markdown: a backslash before a markup character shows the character itself. */
function markdown(text: string): string {
  return text.replace(/[\\*_~`|<>[\]#]/g, "\\$&");
}

export async function sendDiscord(
  notifier: DiscordNotifier,
  message: Message,
  options: DeliveryOptions,
): Promise<void> {
  await sendHttp("discord", {
    method: "POST",
    url: resolveSecret(notifier.webhookUrl, options.configDir),
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(renderDiscord(message)),
  }, options.timeoutMs);
}
