/**
 * A JSON webhook: the message exactly as stored, so receivers parse one documented shape (its `version` field says
 * which). Headers may be secret references, for an Authorization header.
 */
import { resolveMaybeSecret } from "../../config/secrets.ts";
import type { WebhookNotifier } from "../../config/types.ts";
import type { Message } from "../message.ts";
import type { DeliveryOptions } from "./delivery.ts";
import { sendHttp } from "./http.ts";

export interface WebhookRequest {
  method: "POST" | "PUT";
  contentType: "application/json";
  body: string;
}

export function renderWebhook(message: Message, notifier: Pick<WebhookNotifier, "method"> = {}): WebhookRequest {
  return { method: notifier.method ?? "POST", contentType: "application/json", body: JSON.stringify(message) };
}

export async function sendWebhook(
  notifier: WebhookNotifier,
  message: Message,
  options: DeliveryOptions,
): Promise<void> {
  const request = renderWebhook(message, notifier);
  const headers: Record<string, string> = { "Content-Type": request.contentType };
  for (const [name, value] of Object.entries(notifier.headers ?? {})) {
    headers[name] = resolveMaybeSecret(value, options.configDir);
  }
  await sendHttp("webhook", {
    method: request.method,
    url: resolveMaybeSecret(notifier.url, options.configDir),
    headers,
    body: request.body,
  }, options.timeoutMs);
}
