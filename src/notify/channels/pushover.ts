/**
 * Pushover: a form-encoded `POST /1/messages.json` with the title, the plain-text body (without the title, which
 * Pushover shows apart) and a priority. Failures go out with priority 1 (high: sound and vibration even in quiet
 * hours); everything else with 0. Priority 2 (emergency, repeated until acknowledged) is never used: it needs `retry`
 * and `expire`, and an acknowledgement loop belongs to a pager (pagerDuty()).
 */
import { resolveSecret } from "../../config/secrets.ts";
import type { PushoverNotifier } from "../../config/types.ts";
import type { Message } from "../message.ts";
import type { DeliveryOptions } from "./delivery.ts";
import { sendHttp } from "./http.ts";
import { clip, renderPlainText } from "./text.ts";

export const defaultPushoverApi = "https://api.pushover.net";

export interface PushoverMessage {
  title: string;
  message: string;
  priority: "1" | "0";
  /** The event's time (Unix seconds), shown instead of the time of arrival. */
  timestamp: string;
}

/** Pushover's limits: a title of 250 characters, a message of 1024. */
export const pushoverLimits = { title: 250, message: 1024 };

export function renderPushover(message: Message): PushoverMessage {
  const seconds = Math.floor(Date.parse(message.at) / 1000);
  return {
    title: clip(message.title, pushoverLimits.title),
    message: keepNext(renderPlainText(message, { title: false }).trimEnd(), pushoverLimits.message),
    priority: message.severity === "bad" ? "1" : "0",
    timestamp: String(Number.isFinite(seconds) ? seconds : Math.floor(Date.now() / 1000)),
  };
}

/** Cuts a body that is too long before its last paragraph, the next step, so that one always arrives. */
function keepNext(text: string, max: number): string {
  if (text.length <= max) return text;
  const at = text.lastIndexOf("\n\nNext: ");
  if (at < 0) return clip(text, max);
  const next = clip(text.slice(at + 2), max / 2);
  return `${clip(text.slice(0, at), max - next.length - 2)}\n\n${next}`;
}

export async function sendPushover(
  notifier: PushoverNotifier,
  message: Message,
  options: DeliveryOptions,
): Promise<void> {
  const form = new URLSearchParams({
    token: resolveSecret(notifier.token, options.configDir),
    user: resolveSecret(notifier.user, options.configDir),
    ...renderPushover(message),
    ...(notifier.device ? { device: notifier.device } : {}),
  });
  await sendHttp("pushover", {
    method: "POST",
    url: `${(notifier.apiUrl ?? defaultPushoverApi).replace(/\/+$/, "")}/1/messages.json`,
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: form.toString(),
  }, options.timeoutMs);
}
