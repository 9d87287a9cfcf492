/**
 * The configuration schema of notifiers: slack(), email(), webhook(), healthchecks(), uptimeKuma(), ntfy(), discord(),
 * telegram(), pagerDuty(), pushover(), teams(), matrix(). Every token and every URL that carries one is a secret
 * reference; base URLs of APIs (for a self-hosted or regional service, or a test receiver) are plain.
 */
import { z } from "zod";
import { notificationEvents } from "./types.ts";
import { describeValue } from "./issues.ts";
import { describeTyped, host, maybeSecret, nonEmpty, port, secretRef, strict } from "./schema-values.ts";

/** An http(s) base URL without credentials, query or fragment (an API's, a homeserver's). */
const baseUrl = nonEmpty.superRefine((text, ctx) => {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    ctx.addIssue({
      code: "custom",
      message: `expected an absolute URL such as "https://example.org", got ${describeValue(text)}`,
    });
    return;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    ctx.addIssue({ code: "custom", message: `expected an http:// or https:// URL, not ${url.protocol}//` });
  } else if (url.username || url.password || url.search || url.hash) {
    ctx.addIssue({
      code: "custom",
      message: "give only the scheme, host and path: no credentials (they go in a secret option), query or fragment",
    });
  }
});

const events = z.array(z.enum(notificationEvents, {
  error: (issue) => `unknown event ${describeValue(issue.input)}; events are ${notificationEvents.join(", ")}`,
})).optional().describe(
  "Events this channel receives. Default for slack, email, webhook, ntfy, discord, telegram, pushover, teams and " +
    "matrix: `run.failed`, `run.recovered`, `backup.overdue`, `deletions.held`, `check.failed`, `verify.failed`, " +
    "`drill.slow`, `archive.stale`, `config.invalid`, `runner.lost`, `runner.drift`, `project.unplaced`; for " +
    "healthchecks: `run.started`, `run.succeeded`, `run.failed`, `run.recovered`; for uptimeKuma the same without " +
    "`run.started`; for pagerDuty: `run.failed`, `backup.overdue`, `archive.stale` (trigger), `run.succeeded`, " +
    "`run.recovered` (resolve)",
);

export const notifierSchema = z.discriminatedUnion("type", [
  strict({
    type: z.literal("slack"),
    webhookUrl: secretRef.describe("The incoming-webhook URL: it is a credential, so only a secret reference"),
    events,
  }).describe("Posts to a Slack channel through an incoming webhook"),
  strict({
    type: z.literal("email"),
    smtp: strict({
      host: host.describe("The SMTP server's host"),
      port: port.optional().describe("The SMTP server's port (default 465 when `secure`, else 587)"),
      secure: z.boolean().optional().describe(
        "TLS from the first byte (port 465); otherwise STARTTLS is used when the server offers it",
      ),
      requireTls: z.boolean().optional().describe(
        "Refuse to send unless the connection is upgraded with STARTTLS (default `false`)",
      ),
      ca: nonEmpty.optional().describe(
        "A PEM file of the certificate authority that signed the server's certificate (a private CA); relative " +
          "paths start at the config's folder",
      ),
      user: nonEmpty.optional().describe("User name to log in with"),
      password: secretRef.optional().describe("Password to log in with"),
    }).describe("The SMTP server mail is sent through"),
    from: nonEmpty.describe("The sender address"),
    to: z.union([nonEmpty, z.array(nonEmpty).min(1)], {
      error: (issue) =>
        issue.input === undefined
          ? 'required: the recipients, e.g. to: ["ops@example.com"]'
          : `expected an address or a list of addresses, got ${describeValue(issue.input)}`,
    }).describe("The recipient address, or a list of them"),
    events,
  }).describe("Sends e-mail through an SMTP server"),
  strict({
    type: z.literal("webhook"),
    url: maybeSecret.describe(
      "The URL the message is sent to as JSON; it may embed credentials, so it may be a secret reference",
    ),
    method: z.enum(["POST", "PUT"]).optional().describe('The HTTP method (default `"POST"`)'),
    headers: z.record(nonEmpty, maybeSecret).optional().describe(
      "Extra request headers; values may be secret references",
    ),
    events,
  }).describe("Sends every message as JSON to a URL"),
  strict({
    type: z.literal("healthchecks"),
    pingUrl: maybeSecret.describe(
      "The check's ping URL (`https://hc-ping.com/<uuid>` or your own instance); it contains the check's secret",
    ),
    events,
  }).describe("Pings a healthchecks.io check: start, success and failure signals"),
  strict({
    type: z.literal("uptimeKuma"),
    pushUrl: maybeSecret.describe("The push monitor's URL, including its token"),
    events,
  }).describe("Pushes to an Uptime Kuma push monitor"),
  strict({
    type: z.literal("ntfy"),
    topicUrl: maybeSecret.describe(
      "The topic's URL (`https://ntfy.sh/<topic>` or your own server); a topic name is guessable, so treat it as a " +
        "secret",
    ),
    token: secretRef.optional().describe("An access token for a protected topic"),
    events,
  }).describe("Publishes to an ntfy topic"),
  strict({
    type: z.literal("discord"),
    webhookUrl: secretRef.describe(
      "The channel webhook's URL: it holds the webhook's token, so only a secret reference",
    ),
    events,
  }).describe("Posts an embed to a Discord channel through a webhook"),
  strict({
    type: z.literal("telegram"),
    botToken: secretRef.describe("The bot's token from @BotFather"),
    chatId: z.union([nonEmpty, z.number().int()], {
      error: (issue) => `expected a chat id (a number, or "@channelusername"), got ${describeValue(issue.input)}`,
    }).describe('The chat to post to: a numeric id (groups and channels are negative) or `"@channelusername"`'),
    apiUrl: baseUrl.optional().describe(
      "The Bot API's base URL (default `https://api.telegram.org`; a local Bot API server elsewhere)",
    ),
    events,
  }).describe("Sends a message to a Telegram chat through a bot (Bot API sendMessage)"),
  strict({
    type: z.literal("pagerDuty"),
    routingKey: secretRef.describe("The Events API v2 integration's routing key (integration key)"),
    apiUrl: baseUrl.optional().describe(
      "The Events API's base URL (default `https://events.pagerduty.com`; EU accounts: " +
        "`https://events.eu.pagerduty.com`)",
    ),
    events,
  }).describe("Triggers PagerDuty alerts on failures and resolves them on recovery (Events API v2)"),
  strict({
    type: z.literal("pushover"),
    token: secretRef.describe("The Pushover application's API token"),
    user: secretRef.describe("The user or group key to notify"),
    device: nonEmpty.optional().describe("Send to this device of the user only (default: all of them)"),
    apiUrl: baseUrl.optional().describe("The API's base URL (default `https://api.pushover.net`)"),
    events,
  }).describe("Pushes to phones and desktops through Pushover"),
  strict({
    type: z.literal("teams"),
    webhookUrl: secretRef.describe(
      "The URL of a Teams workflow that posts webhook requests to a channel: it holds a signature, so only a secret " +
        "reference",
    ),
    events,
  }).describe("Posts an adaptive card to Microsoft Teams through a workflow webhook"),
  strict({
    type: z.literal("matrix"),
    homeserver: baseUrl.describe("The homeserver's base URL (`https://matrix.example.org`)"),
    accessToken: secretRef.describe("The posting account's access token, sent in the Authorization header"),
    roomId: z.string().regex(/^![^\s]+$/, {
      error: (issue) =>
        `expected a room id starting with "!" (room settings, Advanced), got ${describeValue(issue.input)}: ` +
        "an alias (#room:server) is not accepted",
    }).describe('The room\'s id (`"!abc123:example.org"`), not an alias'),
    events,
  }).describe("Sends a message to a Matrix room (client-server API)"),
], {
  error: (issue) =>
    "expected a notifier made by slack(), email(), webhook(), healthchecks(), uptimeKuma(), ntfy(), discord(), " +
    `telegram(), pagerDuty(), pushover(), teams() or matrix(), got ${describeTyped(issue.input)}`,
});
