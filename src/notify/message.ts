/**
 * The notification model: what an event says, independent of the channel that carries it. A message is built when
 * the event happens, stored in the outbox as JSON (never holding a secret: errors are redacted before they get
 * here, credentials stay in the config) and rendered per channel only when it is sent.
 */
import type { NotificationEvent, Notifier } from "../config/types.ts";

/** The webhook payload's `version`: bumped on any incompatible change of this shape. */
export const messageVersion = 1;

/** How a message is coloured and worded: started (info), succeeded/recovered (good), warning, failed (bad). */
export type Severity = "info" | "good" | "warning" | "bad";

/** One project's line in the daily summary. */
export interface SummaryProject {
  project: string;
  /** ok: last run succeeded and not overdue; failing: the last run failed; overdue: no success within maxAge. */
  health: "ok" | "failing" | "overdue" | "never";
  lastSuccessAt?: string;
  /** Bytes stored by the last successful run (what its stages sent to restic). */
  lastSuccessBytes?: number;
  lastSuccessDurationMs?: number;
  /** Runs that started within the summary's period, by status. */
  runs: { succeeded: number; failed: number; interrupted: number };
}

export interface Message {
  version: typeof messageVersion;
  event: NotificationEvent;
  severity: Severity;
  /** One line saying what happened ("shop: backup failed at dump db (attempt 3/3)"). */
  title: string;
  /** When the event happened (ISO 8601, UTC). */
  at: string;
  /** The host backupctl ran on. */
  host: string;
  project?: string;
  /** Repositories concerned (the project's, or the one checked). */
  repositories?: string[];
  runId?: string;
  /** The stage the event is about ("backup db", "copy db to offsite", "check offsite"). */
  stage?: string;
  /** The attempt that failed and how many were allowed. */
  attempt?: { n: number; of: number };
  durationMs?: number;
  /** Bytes read from the sources and sent to restic in this run. */
  bytes?: number;
  /** Bytes this run's backups added to the repositories: new data after restic's deduplication. */
  bytesAdded?: number;
  /** The last lines of the error (redacted). */
  error?: string;
  /** One line telling the operator what to do next. */
  next: string;
  /** held deletions: the snapshot ids that were not forgotten. */
  snapshots?: string[];
  /** run.recovered: how many runs failed before this success. */
  failuresBefore?: number;
  /** backup.overdue: the last success (absent when there never was one) and the allowed age. */
  lastSuccessAt?: string;
  maxAge?: string;
  /**
   * archive.stale: the pgbackrest() source, its stanza, when its last WAL segment was archived, the RPO; the source
   * and stanza also in a backup.overdue about the newest pgBackRest backup.
   */
  source?: string;
  stanza?: string;
  lastArchivedAt?: string | null;
  rpo?: string;
  /** summary.daily: the period covered and one line per project. */
  period?: { from: string; to: string };
  projects?: SummaryProject[];
  /** config.invalid: the config file and what is wrong in it (paths and messages, no values). */
  file?: string;
  problems?: string[];
  /** runner.lost, runner.drift: the runner concerned, with its labels. */
  runner?: string;
  labels?: string[];
  /** runner.lost: its last heartbeat, and what it was running then (absent when idle). */
  lastHeartbeat?: string;
  work?: string;
  /** runner.drift: the config fingerprint it runs, the newest one of the fleet and the runner that brought it. */
  fingerprint?: string;
  newestFingerprint?: string;
  newestRunner?: string;
  /** project.unplaced: the labels the project needs, and the live runners with theirs. */
  runsOn?: string[];
  runners?: { name: string; labels: string[] }[];
}

/**
 * Monitors (dead man's switches) want every run's start and end (Uptime Kuma has no start signal, so only the end);
 * chat, mail and webhooks want what needs a human.
 */
const monitorEvents: NotificationEvent[] = ["run.started", "run.succeeded", "run.failed", "run.recovered"];
const pushEvents: NotificationEvent[] = ["run.succeeded", "run.failed", "run.recovered"];
const humanEvents: NotificationEvent[] = [
  "run.failed",
  "run.recovered",
  "backup.overdue",
  "deletions.held",
  "check.failed",
  "verify.failed",
  "drill.slow",
  "archive.stale",
  "config.invalid",
  "runner.lost",
  "runner.drift",
  "project.unplaced",
];

/** A pager opens an alert when a project's backups fail or fall behind, and closes it at the next success. */
const pagerEvents: NotificationEvent[] = [
  "run.failed",
  "backup.overdue",
  "archive.stale",
  "run.succeeded",
  "run.recovered",
];

/** The events a channel receives: its `events`, else the defaults for its kind. */
export function eventsFor(notifier: Notifier): NotificationEvent[] {
  if (notifier.events) return notifier.events;
  if (notifier.type === "healthchecks") return monitorEvents;
  if (notifier.type === "pagerDuty") return pagerEvents;
  return notifier.type === "uptimeKuma" ? pushEvents : humanEvents;
}

/** Keeps the last `lines` lines (and at most `chars` characters) of an error text. */
export function errorTail(text: string, lines = 8, chars = 1500): string {
  const tail = text.trimEnd().split("\n").slice(-lines).join("\n");
  return tail.length > chars ? `…${tail.slice(-chars)}` : tail;
}
