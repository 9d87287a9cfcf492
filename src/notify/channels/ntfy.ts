/**
 * ntfy topics: the plain-text body with a Title header (so the body does not repeat it), a priority and tags (ntfy
 * turns tags that are emoji names into the notification's icon). Header values must be ASCII, so a title with other
 * characters is sent RFC 2047-encoded, which ntfy decodes.
 */
import { Buffer } from "node:buffer";
import { resolveMaybeSecret, resolveSecret } from "../../config/secrets.ts";
import type { NtfyNotifier } from "../../config/types.ts";
import type { Message, Severity } from "../message.ts";
import type { DeliveryOptions } from "./delivery.ts";
import { sendHttp } from "./http.ts";
import { renderPlainText } from "./text.ts";

export interface NtfyRequest {
  headers: { Title: string; Priority: string; Tags: string };
  body: string;
}

/** 4 (high) vibrates and pops up; 2 (low) arrives silently. */
const priorities: Record<Severity, string> = { bad: "4", warning: "3", good: "3", info: "2" };
const tags: Record<Severity, string> = {
  bad: "rotating_light",
  warning: "warning",
  good: "white_check_mark",
  info: "information_source",
};

/** ntfy publishes longer messages as attachments, which a server may not allow. */
const maxBodyBytes = 4000;

export function renderNtfy(message: Message): NtfyRequest {
  const tagList = [tags[message.severity], ...(message.project ? [message.project] : [])];
  return {
    headers: { Title: headerValue(message.title), Priority: priorities[message.severity], Tags: tagList.join(",") },
    body: clipBytes(renderPlainText(message, { title: false }), maxBodyBytes),
  };
}

function headerValue(text: string): string {
  return /^[\x20-\x7e]*$/.test(text) ? text : `=?UTF-8?B?${Buffer.from(text).toString("base64")}?=`;
}

function clipBytes(text: string, max: number): string {
  if (Buffer.byteLength(text) <= max) return text;
  let clipped = text.slice(0, max);
  while (Buffer.byteLength(clipped) > max - 4) clipped = clipped.slice(0, -1);
  return `${clipped}…\n`;
}

export async function sendNtfy(notifier: NtfyNotifier, message: Message, options: DeliveryOptions): Promise<void> {
  const request = renderNtfy(message);
  await sendHttp("ntfy", {
    method: "POST",
    url: resolveMaybeSecret(notifier.topicUrl, options.configDir),
    headers: {
      ...request.headers,
      "Content-Type": "text/plain; charset=utf-8",
      ...(notifier.token ? { Authorization: `Bearer ${resolveSecret(notifier.token, options.configDir)}` } : {}),
    },
    body: request.body,
  }, options.timeoutMs);
}
