/** The configuration schema of notifiers: slack(), email(), webhook(), healthchecks(), uptimeKuma(), ntfy(). */
import { z } from "zod";
import { notificationEvents } from "./types.ts";
import { describeValue } from "./issues.ts";
import { describeTyped, host, maybeSecret, nonEmpty, port, secretRef, strict } from "./schema-values.ts";

const events = z.array(z.enum(notificationEvents, {
  error: (issue) => `unknown event ${describeValue(issue.input)}; events are ${notificationEvents.join(", ")}`,
})).optional().describe(
  "Events this channel receives. Default for slack, email, webhook and ntfy: `run.failed`, `run.recovered`, " +
    "`backup.overdue`, `deletions.held`, `check.failed`, `verify.failed`, `drill.slow`, `config.invalid`, " +
    "`runner.lost`, " +
    "`runner.drift`, `project.unplaced`; for healthchecks: " +
    "`run.started`, `run.succeeded`, `run.failed`, `run.recovered`; for uptimeKuma the same without `run.started`",
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
], {
  error: (issue) =>
    `expected a notifier made by slack(), email(), webhook(), healthchecks(), uptimeKuma() or ntfy(), got ${
      describeTyped(issue.input)
    }`,
});
