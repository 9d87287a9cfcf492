/**
 * Telegram chats through a bot: Bot API `sendMessage` with `parse_mode: "HTML"`, the only mode where escaping is
 * three characters (&, <, >) instead of MarkdownV2's eighteen. The bot's token is part of the request's path, so the
 * URL is never shown: errors name the channel and the status only (http.ts), and the token is redacted everywhere.
 */
import { resolveSecret } from "../../config/secrets.ts";
import type { TelegramNotifier } from "../../config/types.ts";
import type { Message } from "../message.ts";
import type { DeliveryOptions } from "./delivery.ts";
import { sendHttp } from "./http.ts";
import { clip, clipStart, escapeHtml, facts, summaryLines } from "./text.ts";

export const defaultTelegramApi = "https://api.telegram.org";

export interface TelegramPayload {
  chat_id: string | number;
  text: string;
  parse_mode: "HTML";
  link_preview_options: { is_disabled: true };
}

/** A message's text holds at most 4096 characters once its tags are parsed. */
export const telegramTextLimit = 4096;

/** A piece of the message: its HTML and the length of the text Telegram shows for it. */
interface Piece {
  html: string;
  shown: number;
}

const piece = (html: string, shown: string): Piece => ({ html, shown: shown.length });

export function renderTelegram(message: Message, chatId: string | number): TelegramPayload {
  const title = clip(message.title, 1000);
  const head: Piece[] = [piece(`<b>${escapeHtml(title)}</b>\n`, `${title}\n`)];
  for (const fact of facts(message)) {
    head.push(piece(`<b>${escapeHtml(fact.label)}:</b> ${escapeHtml(fact.value)}`, `${fact.label}: ${fact.value}`));
  }
  const next = piece(`\n<b>Next:</b> ${escapeHtml(message.next)}`, `\nNext: ${message.next}`);
  const lines = summaryLines(message).map((line) => {
    const text = line.project ? `${line.symbol} ${line.project}: ${line.text}` : line.text;
    return line.project
      ? piece(`${line.symbol} <b>${escapeHtml(line.project)}</b>: ${escapeHtml(line.text)}`, text)
      : piece(`<i>${escapeHtml(text)}</i>`, text);
  });
  // Newlines between pieces count too; too many facts lose the last ones, a long summary its last projects, a long
  // error its first lines.
  const length = (pieces: Piece[]) => pieces.reduce((n, p) => n + p.shown + 1, 0);
  while (head.length > 1 && length([...head, next]) > telegramTextLimit - 200) head.pop();
  const summary: Piece[] = [];
  for (const [i, line] of lines.entries()) {
    const more = piece(`<i>… and ${lines.length - i} more</i>`, `… and ${lines.length - i} more`);
    if (length([...head, ...summary, line, more, next]) > telegramTextLimit) {
      summary.push(more);
      break;
    }
    summary.push(line);
  }
  if (summary.length > 0) summary.unshift(piece("", ""));
  const pieces = [...head, ...summary];
  const room = telegramTextLimit - length([...pieces, next]) - 2;
  if (message.error && room > 20) {
    const error = clipStart(message.error, room);
    pieces.push(piece("", ""), piece(`<pre>${escapeHtml(error)}</pre>`, error));
  }
  pieces.push(next);
  return {
    chat_id: chatId,
    text: pieces.map((p) => p.html).join("\n"),
    parse_mode: "HTML",
    link_preview_options: { is_disabled: true },
  };
}

export async function sendTelegram(
  notifier: TelegramNotifier,
  message: Message,
  options: DeliveryOptions,
): Promise<void> {
  const token = resolveSecret(notifier.botToken, options.configDir);
  const base = (notifier.apiUrl ?? defaultTelegramApi).replace(/\/+$/, "");
  await sendHttp("telegram", {
    method: "POST",
    url: `${base}/bot${token}/sendMessage`,
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(renderTelegram(message, notifier.chatId)),
  }, options.timeoutMs);
}
