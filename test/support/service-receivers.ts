/**
 * Loopback stand-ins for Discord, Telegram, PagerDuty, Pushover, Microsoft Teams and Matrix: each checks a request
 * against what the service documents (path, method, credentials, required fields, types, limits) and answers as the
 * service does: its success answer when the request is valid, else its error answer listing the problems (which the
 * channel's DeliveryError then quotes, so a failing test says what was wrong). Plug one into an HttpReceiver with
 * `respondWith({ answer: service.answer })`.
 */
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import type { Notifier } from "../../src/config/types.ts";
import type { HttpAnswer, ReceivedRequest } from "./receivers.ts";

export type ServiceName = "discord" | "telegram" | "pagerDuty" | "pushover" | "teams" | "matrix";

/** The credentials and ids the stand-in expects (what the notifier under test is configured with). */
export interface ServiceExpectations {
  /** Discord: the webhook's path; Teams: the workflow's path. */
  path?: string;
  /** Telegram: the bot token; Matrix: the access token; Pushover: the app token; PagerDuty: the routing key. */
  token?: string;
  /** Pushover: the user key. */
  user?: string;
  /** Telegram: the chat id; Matrix: the room id. */
  target?: string | number;
}

export interface ServiceReceiver {
  answer: (request: ReceivedRequest) => HttpAnswer;
  /** The problems found in each request, in order (empty: it had the documented shape). */
  checked: string[][];
  /** Matrix: the messages stored, once per transaction id. */
  stored: string[];
}

type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json =>
  typeof value === "object" && value !== null && !Array.isArray(value);
const json = (status: number, value: unknown, headers: Record<string, string> = {}): HttpAnswer => ({
  status,
  body: JSON.stringify(value),
  headers: { "Content-Type": "application/json", ...headers },
});

/** A stand-in for one service. */
export function serviceReceiver(service: ServiceName, expected: ServiceExpectations): ServiceReceiver {
  const checked: string[][] = [];
  const stored: string[] = [];
  const transactions = new Map<string, string>();
  const answer = (request: ReceivedRequest): HttpAnswer => {
    const problems: string[] = [];
    let body: unknown;
    if (service !== "pushover" || /json/.test(String(request.headers["content-type"]))) {
      try {
        body = JSON.parse(request.body);
      } catch {
        problems.push("the body is not JSON");
      }
    } else {
      body = Object.fromEntries(new URLSearchParams(request.body));
    }
    const denied = checks[service](request, isObject(body) ? body : {}, expected, problems);
    checked.push(problems);
    if (denied) return denied;
    const bad = problems.join("; ");
    switch (service) {
      case "discord":
        return problems.length
          ? json(400, { code: 50035, message: `Invalid Form Body: ${bad}` })
          : { status: 204, body: "" };
      case "telegram":
        return problems.length
          ? json(400, { ok: false, error_code: 400, description: `Bad Request: ${bad}` })
          : json(200, { ok: true, result: { message_id: checked.length, chat: { id: expected.target }, date: 0 } });
      case "pagerDuty":
        return problems.length
          ? json(400, { status: "invalid event", message: "Event object is invalid", errors: problems })
          : json(202, { status: "success", message: "Event processed", dedup_key: (body as Json).dedup_key });
      case "pushover":
        return problems.length
          ? json(400, { status: 0, errors: problems, request: "5042853c-402d-4a18-abcb-168734a801de" })
          : json(200, { status: 1, request: "5042853c-402d-4a18-abcb-168734a801de" });
      case "teams":
        return problems.length ? { status: 400, body: `Bad request: ${bad}` } : { status: 202, body: "" };
      case "matrix": {
        if (problems.length) return json(400, { errcode: "M_BAD_JSON", error: bad });
        const txn = request.path.split("/").pop() ?? "";
        if (!transactions.has(txn)) {
          transactions.set(txn, `$${createHash("sha256").update(txn).digest("base64url").slice(0, 43)}`);
          stored.push(request.body);
        }
        return json(200, { event_id: transactions.get(txn) });
      }
    }
  };
  return { answer, checked, stored };
}

type Check = (request: ReceivedRequest, body: Json, expected: ServiceExpectations, problems: string[]) =>
  | HttpAnswer
  | undefined;

function need(problems: string[], ok: boolean, problem: string): void {
  if (!ok) problems.push(problem);
}

function text(problems: string[], value: unknown, what: string, max: number, required = true): void {
  if (value === undefined && !required) return;
  if (typeof value !== "string" || (required && value === "")) problems.push(`${what} must be a non-empty string`);
  else if (value.length > max) problems.push(`${what} is ${value.length} characters, more than ${max}`);
}

const checks: Record<ServiceName, Check> = {
  // https://discord.com/developers/docs/resources/webhook#execute-webhook and the embed limits.
  discord(request, body, expected, problems) {
    if (request.path !== expected.path) return json(401, { message: "Invalid Webhook Token", code: 50027 });
    need(problems, request.method === "POST", "method must be POST");
    text(problems, body.content, "content", 2000, false);
    const embeds = body.embeds;
    need(problems, body.content !== undefined || Array.isArray(embeds), "content or embeds is required");
    if (!Array.isArray(embeds)) return;
    need(problems, embeds.length <= 10, "at most 10 embeds");
    for (const embed of embeds as Json[]) {
      let total = 0;
      const count = (value: unknown) => (total += typeof value === "string" ? value.length : 0);
      text(problems, embed.title, "embed.title", 256, false);
      text(problems, embed.description, "embed.description", 4096, false);
      count(embed.title);
      count(embed.description);
      need(
        problems,
        Number.isInteger(embed.color) && Number(embed.color) >= 0 && Number(embed.color) <= 0xffffff,
        "embed.color must be an integer 0–16777215",
      );
      need(problems, embed.timestamp === undefined || !Number.isNaN(Date.parse(String(embed.timestamp))), "timestamp");
      const fields = (embed.fields ?? []) as Json[];
      need(problems, Array.isArray(fields) && fields.length <= 25, "at most 25 fields");
      for (const field of fields) {
        text(problems, field.name, "field.name", 256);
        text(problems, field.value, "field.value", 1024);
        need(problems, field.inline === undefined || typeof field.inline === "boolean", "field.inline is a boolean");
        count(field.name);
        count(field.value);
      }
      if (isObject(embed.footer)) {
        text(problems, embed.footer.text, "footer.text", 2048);
        count(embed.footer.text);
      }
      need(problems, total <= 6000, `the embed's texts are ${total} characters, more than 6000`);
    }
  },

  // https://core.telegram.org/bots/api#sendmessage and #html-style.
  telegram(request, body, expected, problems) {
    const match = /^\/bot([^/]+)\/sendMessage$/.exec(request.path);
    if (!match || decodeURIComponent(match[1]) !== expected.token) {
      return json(401, { ok: false, error_code: 401, description: "Unauthorized" });
    }
    need(problems, request.method === "POST", "method must be POST");
    need(problems, body.chat_id === expected.target, `chat not found: ${JSON.stringify(body.chat_id)}`);
    need(problems, typeof body.text === "string" && body.text !== "", "message text is empty");
    need(problems, body.parse_mode === "HTML", "parse_mode must be HTML (the only mode this stand-in parses)");
    if (typeof body.text === "string") problems.push(...telegramHtmlProblems(body.text));
  },

  // https://developer.pagerduty.com/docs/events-api-v2/trigger-events/ and resolve-events.
  pagerDuty(request, body, expected, problems) {
    if (request.path !== "/v2/enqueue" || request.method !== "POST") return { status: 404, body: "Not found" };
    need(problems, body.routing_key === expected.token, "routing_key is not a valid integration key");
    need(problems, ["trigger", "acknowledge", "resolve"].includes(String(body.event_action)), "event_action");
    text(problems, body.dedup_key, "dedup_key", 255, body.event_action !== "trigger");
    if (body.event_action !== "trigger") return;
    const payload = isObject(body.payload) ? body.payload : {};
    need(problems, isObject(body.payload), "payload is required for a trigger");
    text(problems, payload.summary, "payload.summary", 1024);
    text(problems, payload.source, "payload.source", 255);
    need(problems, ["critical", "error", "warning", "info"].includes(String(payload.severity)), "payload.severity");
    need(
      problems,
      payload.timestamp === undefined || !Number.isNaN(Date.parse(String(payload.timestamp))),
      "timestamp",
    );
    for (const key of ["component", "group", "class"]) text(problems, payload[key], `payload.${key}`, 1024, false);
    need(problems, payload.custom_details === undefined || isObject(payload.custom_details), "custom_details");
  },

  // https://pushover.net/api#messages
  pushover(request, body, expected, problems) {
    if (request.path !== "/1/messages.json" || request.method !== "POST") return { status: 404, body: "Not found" };
    if (body.token !== expected.token) {
      return json(400, { token: "invalid", errors: ["application token is invalid"], status: 0 });
    }
    need(problems, body.user === expected.user, "user identifier is not a valid user, group, or subscribed user key");
    text(problems, body.message, "message", 1024);
    text(problems, body.title, "title", 250, false);
    const priority = body.priority === undefined ? 0 : Number(body.priority);
    need(problems, Number.isInteger(priority) && priority >= -2 && priority <= 2, "priority is -2 to 2");
    if (priority === 2) need(problems, body.retry !== undefined && body.expire !== undefined, "retry and expire");
    need(problems, body.timestamp === undefined || /^\d+$/.test(String(body.timestamp)), "timestamp is Unix seconds");
    need(problems, !(body.html === "1" && body.monospace === "1"), "html and monospace exclude each other");
  },

  // https://learn.microsoft.com/en-us/connectors/teams/?tabs=text1#microsoft-teams-webhook and adaptivecards.io.
  teams(request, body, expected, problems) {
    if (`${request.path}?${request.query}` !== expected.path) {
      return { status: 401, body: "The workflow's signature is invalid" };
    }
    need(problems, request.method === "POST", "method must be POST");
    need(problems, Buffer.byteLength(request.body) <= 28 * 1024, "the message is larger than 28 KB");
    need(problems, body.type === "message", 'type must be "message"');
    const attachments = Array.isArray(body.attachments) ? body.attachments as Json[] : [];
    need(problems, attachments.length > 0, "attachments is required");
    for (const attachment of attachments) {
      need(problems, attachment.contentType === "application/vnd.microsoft.card.adaptive", "contentType");
      const card = isObject(attachment.content) ? attachment.content : {};
      need(problems, card.type === "AdaptiveCard", "content.type must be AdaptiveCard");
      need(problems, ["1.0", "1.1", "1.2", "1.3", "1.4", "1.5"].includes(String(card.version)), "content.version");
      need(problems, Array.isArray(card.body), "content.body must be a list");
      for (const element of (Array.isArray(card.body) ? card.body : []) as Json[]) cardProblems(element, problems);
    }
  },

  // https://spec.matrix.org/v1.11/client-server-api/#put_matrixclientv3roomsroomidsendeventtypetxnid
  matrix(request, body, expected, problems) {
    const token = /^Bearer (.+)$/.exec(String(request.headers.authorization ?? ""))?.[1];
    if (token !== expected.token || request.query.has("access_token")) {
      return json(401, { errcode: "M_UNKNOWN_TOKEN", error: "Invalid access token passed." });
    }
    const match = /^\/_matrix\/client\/v3\/rooms\/([^/]+)\/send\/m\.room\.message\/([^/]+)$/.exec(request.path);
    if (!match || request.method !== "PUT") return json(404, { errcode: "M_UNRECOGNIZED", error: "Unrecognized" });
    if (decodeURIComponent(match[1]) !== expected.target) {
      return json(403, { errcode: "M_FORBIDDEN", error: "User not in room" });
    }
    need(problems, body.msgtype === "m.text", 'msgtype must be "m.text"');
    need(problems, typeof body.body === "string" && body.body !== "", "body is required");
    if (body.format !== undefined) {
      need(problems, body.format === "org.matrix.custom.html", "format");
      need(problems, typeof body.formatted_body === "string", "formatted_body is required with format");
    }
    need(problems, Buffer.byteLength(request.body) < 65536, "the event is larger than 64 KiB");
  },
};

const cardTypes = new Set(["TextBlock", "RichTextBlock", "FactSet", "Container", "ColumnSet", "Image"]);

function cardProblems(element: Json, problems: string[]): void {
  if (!cardTypes.has(String(element.type))) return void problems.push(`unknown element type ${element.type}`);
  if (element.type === "TextBlock") text(problems, element.text, "TextBlock.text", 100_000);
  if (element.type === "RichTextBlock") {
    const inlines = Array.isArray(element.inlines) ? element.inlines as Json[] : [];
    need(problems, inlines.length > 0, "RichTextBlock.inlines is required");
    for (const run of inlines) {
      need(problems, run.type === "TextRun" && typeof run.text === "string", "inlines are TextRuns with text");
    }
  }
  if (element.type === "FactSet") {
    for (const fact of (Array.isArray(element.facts) ? element.facts : []) as Json[]) {
      need(problems, typeof fact.title === "string" && typeof fact.value === "string", "a fact has title and value");
    }
  }
  if (element.type === "Container") {
    need(problems, Array.isArray(element.items), "Container.items is required");
    for (const item of (Array.isArray(element.items) ? element.items : []) as Json[]) cardProblems(item, problems);
  }
}

const telegramTags = new Set([
  "b",
  "strong",
  "i",
  "em",
  "u",
  "ins",
  "s",
  "strike",
  "del",
  "tg-spoiler",
  "a",
  "code",
  "pre",
  "blockquote",
]);

/**
 * Telegram's HTML mode: only its tags, nested properly; every `<`, `>` and `&` outside a tag part of an entity; and
 * at most 4096 characters once tags are dropped and entities decoded.
 */
export function telegramHtmlProblems(html: string): string[] {
  const problems: string[] = [];
  const open: string[] = [];
  let shown = 0;
  for (let i = 0; i < html.length;) {
    const rest = html.slice(i);
    if (html[i] === "<") {
      const tag = /^<(\/?)([a-z][a-z0-9-]*)(\s[^<>]*)?>/.exec(rest);
      if (!tag) return [`can't parse entities: unexpected "<" at offset ${i}`];
      if (!telegramTags.has(tag[2])) return [`can't parse entities: unsupported start tag "${tag[2]}"`];
      if (tag[1]) {
        if (open.pop() !== tag[2]) return [`can't parse entities: unmatched end tag "${tag[2]}"`];
      } else open.push(tag[2]);
      i += tag[0].length;
    } else if (html[i] === "&") {
      const entity = /^&(lt|gt|amp|quot|#\d+|#x[0-9a-f]+);/i.exec(rest);
      if (!entity) return [`can't parse entities: unsupported entity at offset ${i}`];
      shown++;
      i += entity[0].length;
    } else if (html[i] === ">") {
      return [`can't parse entities: unexpected ">" at offset ${i}`];
    } else {
      shown++;
      i++;
    }
  }
  if (open.length) problems.push(`can't parse entities: unclosed ${open.join(", ")}`);
  if (shown > 4096) problems.push(`message is too long: ${shown} characters`);
  return problems;
}

/** A service's answer when it throttles a client, with the wait in the form that service documents. */
export function throttled(service: ServiceName, seconds: number): HttpAnswer {
  switch (service) {
    case "discord":
      return json(429, { message: "You are being rate limited.", retry_after: seconds, global: false }, {
        "Retry-After": String(seconds),
      });
    case "telegram":
      return json(429, {
        ok: false,
        error_code: 429,
        description: `Too Many Requests: retry after ${seconds}`,
        parameters: { retry_after: seconds },
      });
    case "matrix":
      return json(429, { errcode: "M_LIMIT_EXCEEDED", error: "Too Many Requests", retry_after_ms: seconds * 1000 });
    default:
      return json(429, { status: 0, errors: ["rate limited"] }, { "Retry-After": String(seconds) });
  }
}

/** One configured channel of each service, its stand-in's expectations and the secrets it holds. */
export interface HostedChannel {
  name: string;
  service: ServiceName;
  notifier: Notifier;
  expected: ServiceExpectations;
  /** The secret values, which must never show in any output. */
  secrets: string[];
  /** The environment variables holding them. */
  env: Record<string, string>;
}

/** The six channels pointed at a receiver; their secret references read the variables in `env`. */
export function hostedChannels(url: string): HostedChannel[] {
  const ref = (name: string) => ({ secret: "env" as const, name });
  const discordToken = "dscrd-W3bh00k_T0ken-9f8e7d6c5b4a";
  const discordPath = `/api/webhooks/112233445566778899/${discordToken}`;
  const telegramToken = "7012345678:AAHtgB0tT0ken_s3cret-0123456789ab";
  const routingKey = "R0utingKey0123456789abcdefABCDEF";
  const pushoverToken = "aPushoverAppT0ken0123456789abc";
  const pushoverUser = "uPushoverUserKey0123456789abcd";
  const teamsSig = "TeamsS1gnature_s3cret-0a1b2c3d4e";
  const teamsPath = `/workflows/7c1f/triggers/manual/paths/invoke?api-version=2016-06-01&sig=${teamsSig}`;
  const matrixToken = "syt_YmFja3VwY3Rs_matrixS3cretT0k_1a2b3c";
  const roomId = "!backupRoom42:example.org";
  return [
    {
      name: "dc",
      service: "discord",
      notifier: { type: "discord", webhookUrl: ref("TEST_DISCORD_URL") },
      expected: { path: discordPath },
      secrets: [discordToken],
      env: { TEST_DISCORD_URL: `${url}${discordPath}` },
    },
    {
      name: "tg",
      service: "telegram",
      notifier: { type: "telegram", botToken: ref("TEST_TELEGRAM_TOKEN"), chatId: -1001234567890, apiUrl: url },
      expected: { token: telegramToken, target: -1001234567890 },
      secrets: [telegramToken],
      env: { TEST_TELEGRAM_TOKEN: telegramToken },
    },
    {
      name: "pd",
      service: "pagerDuty",
      notifier: { type: "pagerDuty", routingKey: ref("TEST_PD_ROUTING_KEY"), apiUrl: url },
      expected: { token: routingKey },
      secrets: [routingKey],
      env: { TEST_PD_ROUTING_KEY: routingKey },
    },
    {
      name: "po",
      service: "pushover",
      notifier: { type: "pushover", token: ref("TEST_PUSHOVER_TOKEN"), user: ref("TEST_PUSHOVER_USER"), apiUrl: url },
      expected: { token: pushoverToken, user: pushoverUser },
      secrets: [pushoverToken, pushoverUser],
      env: { TEST_PUSHOVER_TOKEN: pushoverToken, TEST_PUSHOVER_USER: pushoverUser },
    },
    {
      name: "ms",
      service: "teams",
      notifier: { type: "teams", webhookUrl: ref("TEST_TEAMS_URL") },
      expected: { path: teamsPath },
      secrets: [teamsSig],
      env: { TEST_TEAMS_URL: `${url}${teamsPath}` },
    },
    {
      name: "mx",
      service: "matrix",
      notifier: { type: "matrix", homeserver: url, accessToken: ref("TEST_MATRIX_TOKEN"), roomId },
      expected: { token: matrixToken, target: roomId },
      secrets: [matrixToken],
      env: { TEST_MATRIX_TOKEN: matrixToken },
    },
  ];
}

/** Every form a secret could be printed in: as is, URL-encoded, JSON-escaped, base64. */
export function printedForms(secret: string): string[] {
  return [
    secret,
    encodeURIComponent(secret),
    JSON.stringify(secret).slice(1, -1),
    Buffer.from(secret).toString("base64"),
    Buffer.from(secret).toString("base64url"),
  ];
}
