/**
 * PagerDuty Events API v2: `trigger` when a project's backups fail or fall behind, `resolve` when it succeeds again.
 * A failure and an overdue alert of one project share one dedup key, `backupctl/project/<name>/backup`: both say the
 * project has no recent good backup, one success ends both, and PagerDuty appends a repeated trigger to the open alert
 * instead of paging again. Every success sends the resolve (PagerDuty discards one that matches no open alert): the
 * success after an overdue episode is a plain `run.succeeded`, and no state has to remember what was triggered.
 * Events of other kinds, when listed in `events`, trigger alerts under their own keys, resolved by hand; a start and a
 * daily summary send nothing.
 */
import { resolveSecret } from "../../config/secrets.ts";
import type { NotificationEvent, PagerDutyNotifier } from "../../config/types.ts";
import type { Message, Severity } from "../message.ts";
import type { DeliveryOptions } from "./delivery.ts";
import { sendHttp } from "./http.ts";
import { clip, facts } from "./text.ts";

export const defaultPagerDutyApi = "https://events.pagerduty.com";

export type PagerDutySeverity = "critical" | "error" | "warning" | "info";

export interface PagerDutyEvent {
  routing_key: string;
  event_action: "trigger" | "resolve";
  dedup_key: string;
  /** Only on a trigger. */
  payload?: {
    summary: string;
    source: string;
    severity: PagerDutySeverity;
    timestamp: string;
    component?: string;
    group?: string;
    class: NotificationEvent;
    custom_details: Record<string, string>;
  };
  client?: string;
}

const severities: Record<Severity, PagerDutySeverity> = {
  bad: "error",
  warning: "warning",
  good: "info",
  info: "info",
};

/** What each event does; absent: nothing is sent. */
const actions: Partial<Record<NotificationEvent, PagerDutyEvent["event_action"]>> = {
  "run.failed": "trigger",
  "backup.overdue": "trigger",
  "run.succeeded": "resolve",
  "run.recovered": "resolve",
  "deletions.held": "trigger",
  "check.failed": "trigger",
  "verify.failed": "trigger",
  "drill.slow": "trigger",
  "archive.stale": "trigger",
  "config.invalid": "trigger",
  "runner.lost": "trigger",
  "runner.drift": "trigger",
  "project.unplaced": "trigger",
};

/** PagerDuty's limits: a summary of 1024 characters, a dedup key of 255. */
const summaryLimit = 1024;
const dedupKeyLimit = 255;

/**
 * The alert a message belongs to. A run's failure, its success and an overdue backup: the project's backup alert;
 * the others: one alert per event kind and subject (project, repository, runner, the config).
 */
export function pagerDutyDedupKey(message: Message): string {
  const subject = message.project
    ? `project/${message.project}`
    : message.runner
    ? `runner/${message.runner}`
    : message.repositories?.length
    ? `repository/${message.repositories.join(",")}`
    : "config";
  const family = ["run.failed", "backup.overdue", "run.succeeded", "run.recovered"].includes(message.event)
    ? "backup"
    : message.event;
  return clip(`backupctl/${subject}/${family}`, dedupKeyLimit);
}

/** The event for a message (the routing key left out, for the docs), or undefined when none is sent. */
export function renderPagerDuty(message: Message, routingKey = "<routingKey>"): PagerDutyEvent | undefined {
  const action = actions[message.event];
  if (!action) return undefined;
  const dedup_key = pagerDutyDedupKey(message);
  if (action === "resolve") return { routing_key: routingKey, event_action: "resolve", dedup_key };
  const details: Record<string, string> = {};
  for (const fact of facts(message)) if (fact.label !== "Host" && fact.label !== "At") details[fact.label] = fact.value;
  if (message.error) details["Error (last lines)"] = message.error;
  details["Next"] = message.next;
  return {
    routing_key: routingKey,
    event_action: "trigger",
    dedup_key,
    payload: {
      summary: clip(message.title, summaryLimit),
      source: message.host,
      severity: severities[message.severity],
      timestamp: message.at,
      ...(message.project ? { component: message.project } : {}),
      ...(message.repositories?.length ? { group: message.repositories.join(", ") } : {}),
      class: message.event,
      custom_details: details,
    },
    client: "backupctl",
  };
}

export async function sendPagerDuty(
  notifier: PagerDutyNotifier,
  message: Message,
  options: DeliveryOptions,
): Promise<void> {
  const event = renderPagerDuty(message, resolveSecret(notifier.routingKey, options.configDir));
  if (!event) return;
  await sendHttp("pagerDuty", {
    method: "POST",
    url: `${(notifier.apiUrl ?? defaultPagerDutyApi).replace(/\/+$/, "")}/v2/enqueue`,
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(event),
  }, options.timeoutMs);
}
