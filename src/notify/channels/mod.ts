/**
 * Delivery of one message through one notifier. Each channel renders the message its own way (the `render…`
 * functions are pure, for docs and tests) and sends it once: retries and expiry belong to the outbox.
 */
import type { Notifier } from "../../config/types.ts";
import type { Message } from "../message.ts";
import type { DeliveryOptions } from "./delivery.ts";
import { sendEmail } from "./email.ts";
import { sendHealthchecks } from "./healthchecks.ts";
import { sendNtfy } from "./ntfy.ts";
import { sendSlack } from "./slack.ts";
import { sendUptimeKuma } from "./uptime-kuma.ts";
import { sendWebhook } from "./webhook.ts";

export { DeliveryError, type DeliveryOptions } from "./delivery.ts";
export { type EmailContent, renderEmail } from "./email.ts";
export { type HealthchecksPing, healthchecksUrl, renderHealthchecks, runUuid } from "./healthchecks.ts";
export { type NtfyRequest, renderNtfy } from "./ntfy.ts";
export { renderSlack, type SlackPayload } from "./slack.ts";
export { renderUptimeKuma, type UptimeKumaPush, uptimeKumaUrl } from "./uptime-kuma.ts";
export { renderWebhook, type WebhookRequest } from "./webhook.ts";

/**
 * Sends a message through a notifier once. Throws DeliveryError when the channel refuses or cannot be reached, and
 * SecretError when a credential it needs is not set. An Uptime Kuma notifier sends nothing for events that are
 * neither a success nor a failure.
 */
export async function deliver(notifier: Notifier, message: Message, options: DeliveryOptions): Promise<void> {
  switch (notifier.type) {
    case "slack":
      return await sendSlack(notifier, message, options);
    case "email":
      return await sendEmail(notifier, message, options);
    case "webhook":
      return await sendWebhook(notifier, message, options);
    case "healthchecks":
      return await sendHealthchecks(notifier, message, options);
    case "uptimeKuma":
      return await sendUptimeKuma(notifier, message, options);
    case "ntfy":
      return await sendNtfy(notifier, message, options);
  }
}
