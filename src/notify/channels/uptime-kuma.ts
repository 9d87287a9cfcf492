/**
 * Uptime Kuma push monitors: "up" after a successful run, "down" after a failure or when a backup is overdue. Kuma
 * has no start signal, so run.started (and any event that is neither) sends nothing: the monitor's heartbeat
 * interval, set a little longer than the schedule, catches runs that never finish.
 */
import { resolveMaybeSecret } from "../../config/secrets.ts";
import type { NotificationEvent, UptimeKumaNotifier } from "../../config/types.ts";
import type { Message } from "../message.ts";
import type { DeliveryOptions } from "./delivery.ts";
import { channelUrl, sendHttp } from "./http.ts";

export interface UptimeKumaPush {
  status: "up" | "down";
  msg: string;
  /** The run's duration in milliseconds, shown as the monitor's response time. */
  ping?: number;
}

const statuses: Partial<Record<NotificationEvent, UptimeKumaPush["status"]>> = {
  "run.succeeded": "up",
  "run.recovered": "up",
  "run.failed": "down",
  "check.failed": "down",
  "verify.failed": "down",
  "backup.overdue": "down",
};

/** Kuma shows `msg` in one line of the monitor's history. */
const msgLength = 120;

/** The push for an event, or undefined when the event has no meaning for a push monitor. */
export function renderUptimeKuma(message: Message): UptimeKumaPush | undefined {
  const status = statuses[message.event];
  if (!status) return undefined;
  const msg = message.title.length > msgLength ? `${message.title.slice(0, msgLength - 1)}…` : message.title;
  return { status, msg, ...(message.durationMs === undefined ? {} : { ping: Math.round(message.durationMs) }) };
}

/** The push URL with status, msg and ping set, replacing those of the URL Kuma shows (`?status=up&msg=OK&ping=`). */
export function uptimeKumaUrl(pushUrl: string, push: UptimeKumaPush): string {
  const url = channelUrl("uptimeKuma", pushUrl);
  url.searchParams.set("status", push.status);
  url.searchParams.set("msg", push.msg);
  if (push.ping === undefined) url.searchParams.delete("ping");
  else url.searchParams.set("ping", String(push.ping));
  return url.href;
}

export async function sendUptimeKuma(
  notifier: UptimeKumaNotifier,
  message: Message,
  options: DeliveryOptions,
): Promise<void> {
  const push = renderUptimeKuma(message);
  if (!push) return;
  const url = uptimeKumaUrl(resolveMaybeSecret(notifier.pushUrl, options.configDir), push);
  await sendHttp("uptimeKuma", { method: "GET", url }, options.timeoutMs);
}
