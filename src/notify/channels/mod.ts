/**
 * Delivery of one message through one notifier. Each channel renders the message its own way (the `render…`
 * functions are pure, for docs and tests) and sends it once: retries and expiry belong to the outbox.
 */
import type { Notifier } from "../../config/types.ts";
import type { Message } from "../message.ts";
import type { DeliveryOptions } from "./delivery.ts";
import { sendDiscord } from "./discord.ts";
import { sendEmail } from "./email.ts";
import { sendHealthchecks } from "./healthchecks.ts";
import { sendMatrix } from "./matrix.ts";
import { sendNtfy } from "./ntfy.ts";
import { renderPagerDuty, sendPagerDuty } from "./pagerduty.ts";
import { sendPushover } from "./pushover.ts";
import { sendSlack } from "./slack.ts";
import { sendTeams } from "./teams.ts";
import { sendTelegram } from "./telegram.ts";
import { renderUptimeKuma, sendUptimeKuma } from "./uptime-kuma.ts";
import { sendWebhook } from "./webhook.ts";

export { DeliveryError, type DeliveryOptions } from "./delivery.ts";
export { discordLimits, type DiscordPayload, renderDiscord } from "./discord.ts";
export { type EmailContent, renderEmail } from "./email.ts";
export { type HealthchecksPing, healthchecksUrl, renderHealthchecks, runUuid } from "./healthchecks.ts";
export { type MatrixMessage, matrixTxnId, renderMatrix } from "./matrix.ts";
export { type NtfyRequest, renderNtfy } from "./ntfy.ts";
export { pagerDutyDedupKey, type PagerDutyEvent, renderPagerDuty } from "./pagerduty.ts";
export { pushoverLimits, type PushoverMessage, renderPushover } from "./pushover.ts";
export { renderSlack, type SlackPayload } from "./slack.ts";
export { renderTeams, type TeamsPayload } from "./teams.ts";
export { renderTelegram, type TelegramPayload, telegramTextLimit } from "./telegram.ts";
export { renderUptimeKuma, type UptimeKumaPush, uptimeKumaUrl } from "./uptime-kuma.ts";
export { renderWebhook, type WebhookRequest } from "./webhook.ts";

/** Whether a notifier has nothing to send for this message (a push monitor or a pager, for an event they ignore). */
export function sendsNothing(notifier: Notifier, message: Message): boolean {
  if (notifier.type === "uptimeKuma") return renderUptimeKuma(message) === undefined;
  return notifier.type === "pagerDuty" && renderPagerDuty(message) === undefined;
}

/**
 * Sends a message through a notifier once. Throws DeliveryError when the channel refuses or cannot be reached, and
 * SecretError when a credential it needs is not set. An Uptime Kuma notifier sends nothing for events that are
 * neither a success nor a failure, a PagerDuty one nothing for a start or a summary.
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
    case "discord":
      return await sendDiscord(notifier, message, options);
    case "telegram":
      return await sendTelegram(notifier, message, options);
    case "pagerDuty":
      return await sendPagerDuty(notifier, message, options);
    case "pushover":
      return await sendPushover(notifier, message, options);
    case "teams":
      return await sendTeams(notifier, message, options);
    case "matrix":
      return await sendMatrix(notifier, message, options);
  }
}
