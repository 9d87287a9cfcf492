/**
 * healthchecks.io (or a self-hosted instance): start, success and failure signals of each run, so the check measures
 * run durations and alerts when a run fails or none arrives in time. Other events go to `/log`, which shows in the
 * check's history without changing its state.
 */
import { createHash } from "node:crypto";
import { resolveMaybeSecret } from "../../config/secrets.ts";
import type { HealthchecksNotifier, NotificationEvent } from "../../config/types.ts";
import { humanDuration } from "../../format/time.ts";
import type { Message } from "../message.ts";
import type { DeliveryOptions } from "./delivery.ts";
import { channelUrl, sendHttp } from "./http.ts";

export interface HealthchecksPing {
  /** Appended to the ping URL's path: "/start", "" (success), "/fail" or "/log". */
  path: "/start" | "" | "/fail" | "/log";
  /** The run's id as a UUID, so the start and end signals of one run pair up even when runs overlap. */
  rid?: string;
  body: string;
}

const paths: Partial<Record<NotificationEvent, HealthchecksPing["path"]>> = {
  "run.started": "/start",
  "run.succeeded": "",
  "run.recovered": "",
  "run.failed": "/fail",
  "check.failed": "/fail",
  "verify.failed": "/fail",
  "backup.overdue": "/fail",
};

export function renderHealthchecks(message: Message): HealthchecksPing {
  const lines = [message.title];
  if (message.durationMs !== undefined) lines.push(`Duration: ${humanDuration(message.durationMs)}`);
  if (message.error) lines.push("", message.error, "");
  lines.push(`Next: ${message.next}`);
  return {
    path: paths[message.event] ?? "/log",
    ...(message.runId ? { rid: runUuid(message.runId) } : {}),
    body: `${lines.join("\n")}\n`,
  };
}

/** The ping URL with the signal's path and `rid` added; its own query string (`?create=1`) is kept. */
export function healthchecksUrl(pingUrl: string, ping: HealthchecksPing): string {
  const url = channelUrl("healthchecks", pingUrl);
  url.pathname = url.pathname.replace(/\/+$/, "") + ping.path;
  if (ping.rid) url.searchParams.set("rid", ping.rid);
  return url.href;
}

/** A UUID derived from a run id (SHA-256, shaped as an RFC 9562 version 8 UUID): the same run, the same UUID. */
export function runUuid(runId: string): string {
  const bytes = createHash("sha256").update(runId).digest().subarray(0, 16);
  bytes[6] = (bytes[6] & 0x0f) | 0x80;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = bytes.toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export async function sendHealthchecks(
  notifier: HealthchecksNotifier,
  message: Message,
  options: DeliveryOptions,
): Promise<void> {
  const ping = renderHealthchecks(message);
  await sendHttp("healthchecks", {
    method: "POST",
    url: healthchecksUrl(resolveMaybeSecret(notifier.pingUrl, options.configDir), ping),
    headers: { "Content-Type": "text/plain; charset=utf-8" },
    body: ping.body,
  }, options.timeoutMs);
}
