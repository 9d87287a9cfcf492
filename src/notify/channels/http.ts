/**
 * One HTTP request per delivery, shared by every channel but e-mail. The time limit covers connecting, the response
 * and its body. Errors are described by what failed, never by the runtime's message as it is: Deno's and Bun's fetch
 * errors quote the whole URL, and these URLs carry tokens (Telegram's bot token is in the path). A throttled
 * service's requested wait travels with the error, for the outbox's next attempt.
 */
import pkg from "../../../package.json" with { type: "json" };
import type { Notifier } from "../../config/types.ts";
import { humanDuration } from "../../format/time.ts";
import { DeliveryError } from "./delivery.ts";

export const userAgent = `backupctl/${pkg.version}`;

export interface HttpRequest {
  method: "GET" | "POST" | "PUT";
  url: string;
  headers?: Record<string, string>;
  body?: string;
}

/** How much of an error response's body is read, and how much of it the error quotes. */
const bodyReadLimit = 4096;
const bodyQuoted = 200;

/** Parses a channel's URL; an invalid one is reported without quoting it. */
export function channelUrl(channel: Notifier["type"], url: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new DeliveryError(channel, "the URL is not a valid absolute URL: check the notifier's settings");
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new DeliveryError(channel, `the URL must start with http:// or https://, not ${parsed.protocol}//`);
  }
  return parsed;
}

/** Sends one request; any answer but 2xx, a timeout or a network failure throws a DeliveryError. */
export async function sendHttp(channel: Notifier["type"], request: HttpRequest, timeoutMs: number): Promise<void> {
  const url = channelUrl(channel, request.url);
  const headers = new Headers({ "User-Agent": userAgent });
  for (const [name, value] of Object.entries(request.headers ?? {})) {
    try {
      headers.set(name, value);
    } catch {
      throw new DeliveryError(channel, `the header ${JSON.stringify(name)} has an invalid name or value`);
    }
  }
  const signal = AbortSignal.timeout(timeoutMs);
  let response: Response;
  try {
    response = await fetch(url, { method: request.method, headers, body: request.body, signal });
  } catch (error) {
    throw new DeliveryError(channel, describeFailure(error, signal, timeoutMs, url));
  }
  if (response.ok) {
    // An unread body keeps the connection (and, in Bun, the process) busy.
    await response.body?.cancel().catch(() => {});
    return;
  }
  const body = await readHead(response).catch(() => "");
  const quoted = hideUrl(body.replace(/\s+/g, " ").trim(), url).slice(0, bodyQuoted);
  throw new DeliveryError(
    channel,
    `HTTP ${response.status}${quoted ? `: ${quoted}` : ""}`,
    response.status,
    response.status === 429 || response.status === 503 ? retryAfterMs(response, body) : undefined,
  );
}

/**
 * How long a throttled (429) or unavailable (503) service asks to wait: the Retry-After header (seconds or an HTTP
 * date), else what the body says where services put it there: Matrix's `retry_after_ms`, Discord's `retry_after`
 * (seconds), Telegram's `parameters.retry_after` (seconds).
 */
export function retryAfterMs(response: Response, body: string, now = Date.now()): number | undefined {
  const header = response.headers.get("retry-after")?.trim();
  if (header) {
    if (/^\d+(\.\d+)?$/.test(header)) return Math.ceil(Number(header) * 1000);
    const date = Date.parse(header);
    if (Number.isFinite(date)) return Math.max(0, date - now);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return undefined;
  }
  if (typeof parsed !== "object" || parsed === null) return undefined;
  const hint = parsed as { retry_after_ms?: unknown; retry_after?: unknown; parameters?: { retry_after?: unknown } };
  const seconds = typeof hint.retry_after === "number" ? hint.retry_after : hint.parameters?.retry_after;
  if (typeof hint.retry_after_ms === "number" && hint.retry_after_ms >= 0) return Math.ceil(hint.retry_after_ms);
  return typeof seconds === "number" && seconds >= 0 ? Math.ceil(seconds * 1000) : undefined;
}

/** The first few KiB of a body: an error page can be large and the error quotes only its start. */
async function readHead(response: Response): Promise<string> {
  const reader = response.body?.getReader();
  if (!reader) return "";
  const decoder = new TextDecoder();
  let text = "";
  try {
    while (text.length < bodyReadLimit) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  return text;
}

function describeFailure(error: unknown, signal: AbortSignal, timeoutMs: number, url: URL): string {
  if (signal.aborted || (error instanceof Error && error.name === "TimeoutError")) {
    return `timed out after ${humanDuration(timeoutMs)}`;
  }
  const text = errorText(error);
  if (/ECONNREFUSED|connection refused/i.test(text)) return "connection refused";
  if (/ENOTFOUND|EAI_AGAIN|dns error|failed to lookup|getaddrinfo/i.test(text)) return `host ${url.hostname} not found`;
  if (/ECONNRESET|connection reset|socket hang up/i.test(text)) return "connection reset by the server";
  if (/certificate|CERT_|self[- ]signed|UNABLE_TO_VERIFY/i.test(text)) {
    return "the server's TLS certificate is not trusted";
  }
  return `request failed: ${hideUrl(text, url)}`;
}

/** The message and code of an error and of its causes (Deno puts the reason in `cause`). */
function errorText(error: unknown): string {
  const parts: string[] = [];
  for (let current = error, depth = 0; current !== undefined && current !== null && depth < 4; depth++) {
    if (current instanceof Error) {
      const code = (current as Error & { code?: unknown }).code;
      parts.push(typeof code === "string" ? `${code} ${current.message}` : current.message);
      current = current.cause;
    } else {
      parts.push(String(current));
      break;
    }
  }
  return parts.join(": ");
}

/** Removes the URL, its path and its query from a text, and any other URL it quotes. */
function hideUrl(text: string, url: URL): string {
  let out = text.replace(/\b[a-z][a-z0-9+.-]*:\/\/\S+/gi, "(url)");
  for (const part of [url.href, url.pathname + url.search, url.pathname, url.search]) {
    if (part.length > 1) out = out.split(part).join("(url)");
  }
  return out;
}
