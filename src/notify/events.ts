/**
 * Events → outbox rows. Each builder makes the message an event says (pure, from plain data), and `enqueueFor`
 * turns it into one outbox row per channel that wants it. The rows are written by the store together with the
 * result they report (a run's start or end, a held deletion's stage), so a result is never recorded without its
 * notification, nor a notification queued for a result that was not recorded.
 */
import { parseDuration } from "../config/duration.ts";
import { shortFingerprint } from "../config/fingerprint.ts";
import type { LoadedConfig } from "../config/load.ts";
import { previousSlot } from "../config/schedule.ts";
import { redact } from "../config/secrets.ts";
import type { NotificationEvent } from "../config/types.ts";
import { formatBytes } from "../format/bytes.ts";
import { humanDuration } from "../format/time.ts";
import type { Overdue } from "../plan/types.ts";
import type { NewNotification, RunDigest } from "../state/store.ts";
import { errorTail, eventsFor, type Message, messageVersion, type SummaryProject } from "./message.ts";

/** Default time limit of one delivery attempt. */
export const defaultDeliveryTimeout = "10s";
/** Default time an undelivered notification is retried before it is given up. */
export const defaultExpireAfter = "24h";

export function deliveryTimeoutMs(loaded: LoadedConfig): number {
  return parseDuration(loaded.config.notifications?.timeout ?? defaultDeliveryTimeout)!;
}

function expireAfterMs(loaded: LoadedConfig): number {
  return parseDuration(loaded.config.notifications?.expireAfter ?? defaultExpireAfter)!;
}

/** Whether a channel subscribed to `events` takes `event`: a recovery is also a success. */
export function wants(events: NotificationEvent[], event: NotificationEvent): boolean {
  return events.includes(event) || (event === "run.recovered" && events.includes("run.succeeded"));
}

/**
 * One outbox row per channel of `projects` that wants the message's event. `key`: an event sent once per episode
 * (the channel's name is appended, so each channel gets it once).
 */
export function enqueueFor(
  loaded: LoadedConfig,
  projects: string[],
  message: Message,
  options: { now: Date; key?: string; channels?: string[] },
): NewNotification[] {
  const channels = new Set(
    projects.flatMap((name) => loaded.config.projects[name]?.notify ?? [])
      .filter((channel) => !options.channels || options.channels.includes(channel)),
  );
  const rows: NewNotification[] = [];
  for (const channel of [...channels].sort()) {
    const notifier = loaded.config.notifiers[channel];
    if (!notifier || !wants(eventsFor(notifier), message.event)) continue;
    rows.push({
      channel,
      event: message.event,
      project: message.project ?? null,
      runId: message.runId ?? null,
      key: options.key === undefined ? null : `${options.key}:${channel}`,
      // A message is built from redacted text, but an error tail may carry a value remembered after it was built.
      payload: redact(JSON.stringify(message)),
      createdAt: options.now.toISOString(),
      expiresAt: new Date(options.now.getTime() + expireAfterMs(loaded)).toISOString(),
    });
  }
  return rows;
}

interface Common {
  host: string;
  at: Date;
  project: string;
  repositories: string[];
}

export function runStarted(run: Common & { runId: string; sources: string[] }): Message {
  return {
    version: messageVersion,
    event: "run.started",
    severity: "info",
    title: `${run.project}: backup started (${run.sources.join(", ")})`,
    at: run.at.toISOString(),
    host: run.host,
    project: run.project,
    repositories: run.repositories,
    runId: run.runId,
    next: "Nothing to do: a run.succeeded or run.failed follows.",
  };
}

/** Where and how a run failed: its first failing stage. */
export interface RunFailure {
  stage: string;
  attempt?: { n: number; of: number };
  error: string;
}

export function runFinished(
  run: Common & {
    runId: string;
    status: "succeeded" | "failed" | "interrupted";
    durationMs: number;
    bytes?: number;
    bytesAdded?: number;
    /** The first failure (failed runs), or the signal (interrupted runs). */
    failure?: RunFailure;
    /** Failed or interrupted runs since the last success: a success after them is a recovery. */
    failuresBefore: number;
  },
): Message {
  const base = {
    version: messageVersion,
    at: run.at.toISOString(),
    host: run.host,
    project: run.project,
    repositories: run.repositories,
    runId: run.runId,
    durationMs: run.durationMs,
    bytes: run.bytes,
    bytesAdded: run.bytesAdded,
  } as const;
  const size = run.bytes === undefined ? "" : `, ${formatBytes(run.bytes)} read`;
  if (run.status === "succeeded") {
    const recovered = run.failuresBefore > 0;
    return {
      ...base,
      event: recovered ? "run.recovered" : "run.succeeded",
      severity: "good",
      title: recovered
        ? `${run.project}: backup succeeded again after ${run.failuresBefore} failed run${
          run.failuresBefore === 1 ? "" : "s"
        }`
        : `${run.project}: backup succeeded in ${humanDuration(run.durationMs)}${size}`,
      ...(recovered ? { failuresBefore: run.failuresBefore } : {}),
      next: recovered ? `Nothing to do: backups of ${run.project} succeed again.` : "Nothing to do.",
    };
  }
  const failure = run.failure;
  const attempt = failure?.attempt && failure.attempt.of > 1
    ? ` (attempt ${failure.attempt.n}/${failure.attempt.of})`
    : "";
  if (run.status === "interrupted") {
    return {
      ...base,
      event: "run.failed",
      severity: "warning",
      title: `${run.project}: backup interrupted${failure ? ` during ${failure.stage}` : ""}`,
      stage: failure?.stage,
      error: failure ? errorTail(redact(failure.error)) : undefined,
      next: `The run was stopped before it finished; the backup stays due and runs at the next apply or watch tick.`,
    };
  }
  return {
    ...base,
    event: "run.failed",
    severity: "bad",
    title: `${run.project}: backup failed${failure ? ` at ${failure.stage}${attempt}` : ""}`,
    stage: failure?.stage,
    attempt: failure?.attempt,
    error: failure ? errorTail(redact(failure.error)) : undefined,
    next: `Fix the cause in the error above, then run \`backupctl apply --project ${run.project}\`; ` +
      "the backup stays due until it succeeds.",
  };
}

export function deletionsHeld(
  held: Common & { source: string; repository: string; snapshots: string[]; reason: string },
): Message {
  const n = held.snapshots.length;
  return {
    version: messageVersion,
    event: "deletions.held",
    severity: "warning",
    title: `${held.project}: ${n} snapshot${
      n === 1 ? "" : "s"
    } of ${held.source} in ${held.repository} not forgotten: ${held.reason}`,
    at: held.at.toISOString(),
    host: held.host,
    project: held.project,
    repositories: [held.repository],
    stage: `forget ${held.source}`,
    snapshots: held.snapshots,
    next: `Review with \`backupctl plan --project ${held.project}\`, then run ` +
      `\`backupctl apply --project ${held.project} --auto-approve\` to forget them, or change the retention back.`,
  };
}

/**
 * A project's last success is older than its maxAge. With `stanza`: the newest pgBackRest backup of that
 * pgbackrest() source is (its stanza is the repository concerned).
 */
export function backupOverdue(
  overdue: Omit<Common, "at"> & { at: Date; lastSuccessAt: string; maxAge: string; source?: string; stanza?: string },
): Message {
  const age = humanDuration(overdue.at.getTime() - Date.parse(overdue.lastSuccessAt));
  const stanza = overdue.stanza === undefined ? {} : {
    repositories: [`pgbackrest:${overdue.stanza}`],
    stage: `backup ${overdue.source}`,
    source: overdue.source,
    stanza: overdue.stanza,
  };
  return {
    version: messageVersion,
    event: "backup.overdue",
    severity: "bad",
    title: `${overdue.project}: no ${
      overdue.stanza === undefined ? "successful backup" : `pgBackRest backup of ${overdue.source}`
    } for ${age} (allowed: ${overdue.maxAge})`,
    at: overdue.at.toISOString(),
    host: overdue.host,
    project: overdue.project,
    repositories: overdue.repositories,
    lastSuccessAt: overdue.lastSuccessAt,
    maxAge: overdue.maxAge,
    ...stanza,
    next: `See why with \`backupctl status\`, then run \`backupctl apply --project ${overdue.project}\`.`,
  };
}

export function checkFailed(
  check: { host: string; at: Date; repository: string; error: string; durationMs: number },
): Message {
  return {
    version: messageVersion,
    event: "check.failed",
    severity: "bad",
    title: `repository ${check.repository}: restic check failed`,
    at: check.at.toISOString(),
    host: check.host,
    repositories: [check.repository],
    stage: `check ${check.repository}`,
    durationMs: check.durationMs,
    error: errorTail(redact(check.error)),
    next: `Do not prune ${check.repository} until a check passes: read the errors, run \`restic check --read-data\` ` +
      "on it, and copy the affected snapshots from another repository if it holds them.",
  };
}

/** A pgbackrest() source whose WAL archive is older than its RPO, or whose archiving fails. */
export function archiveStale(stale: {
  host: string;
  at: Date;
  project: string;
  source: string;
  stanza: string;
  reason: string;
  lastArchivedAt: string | null;
  rpo?: string;
}): Message {
  return {
    version: messageVersion,
    event: "archive.stale",
    severity: "bad",
    title: `${stale.project}: the WAL archive of ${stale.source} (stanza ${stale.stanza}) is stale`,
    at: stale.at.toISOString(),
    host: stale.host,
    project: stale.project,
    repositories: [`pgbackrest:${stale.stanza}`],
    stage: `archive ${stale.source}`,
    source: stale.source,
    stanza: stale.stanza,
    lastArchivedAt: stale.lastArchivedAt,
    ...(stale.rpo ? { rpo: stale.rpo } : {}),
    error: errorTail(redact(stale.reason)),
    next: "Writes since the last archived segment cannot be restored to a point in time: look at archive_command's " +
      "error in the server log, then run `backupctl plan` (it prints the postgresql.conf lines the stanza needs) and " +
      "`backupctl status`.",
  };
}

/**
 * The key of an archive.stale episode: one notification when it starts, then one a day while it lasts. A newly
 * archived segment starts a new episode.
 */
export function archiveStaleKey(stale: { project: string; source: string; lastArchivedWal: string | null }, now: Date) {
  const day = Math.floor(now.getTime() / 86_400_000);
  return `archive.stale:${stale.project}/${stale.source}:${stale.lastArchivedWal ?? "none"}:${day}`;
}

/** The day before `now`'s day in `timezone`, as [from, to) and its date label (YYYY-MM-DD). */
export function previousDay(timezone: string, now: Date): { from: Date; to: Date; label: string } {
  const to = previousSlot("0 0 * * *", timezone, now)!;
  const from = previousSlot("0 0 * * *", timezone, new Date(to.getTime() - 1))!;
  const label = new Intl.DateTimeFormat("en-CA", {
    timeZone: timezone,
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
  })
    .format(from);
  return { from, to, label };
}

export function dailySummary(summary: {
  host: string;
  at: Date;
  period: { from: Date; to: Date };
  projects: string[];
  digest: Map<string, RunDigest>;
  overdue: Set<string>;
  failing: Set<string>;
}): Message {
  const projects: SummaryProject[] = summary.projects.map((project) => {
    const d = summary.digest.get(project);
    const health = summary.overdue.has(project)
      ? "overdue"
      : summary.failing.has(project)
      ? "failing"
      : d?.lastSuccessAt
      ? "ok"
      : "never";
    return {
      project,
      health,
      lastSuccessAt: d?.lastSuccessAt,
      lastSuccessBytes: d?.lastSuccessBytes,
      lastSuccessDurationMs: d?.lastSuccessDurationMs,
      runs: { succeeded: d?.succeeded ?? 0, failed: d?.failed ?? 0, interrupted: d?.interrupted ?? 0 },
    };
  });
  const runs = projects.reduce((n, p) => n + p.runs.succeeded + p.runs.failed + p.runs.interrupted, 0);
  const attention = projects.filter((p) => p.health !== "ok");
  return {
    version: messageVersion,
    event: "summary.daily",
    severity: attention.length > 0 ? "warning" : runs === 0 ? "warning" : "good",
    title: runs === 0
      ? `Daily summary: no backup ran in the last day (${projects.length} project${projects.length === 1 ? "" : "s"})`
      : `Daily summary: ${runs} run${runs === 1 ? "" : "s"}, ${attention.length} of ${projects.length} project${
        projects.length === 1 ? "" : "s"
      } need${attention.length === 1 ? "s" : ""} attention`,
    at: summary.at.toISOString(),
    host: summary.host,
    period: { from: summary.period.from.toISOString(), to: summary.period.to.toISOString() },
    projects,
    next: attention.length > 0
      ? `Look at ${attention.map((p) => p.project).join(", ")} with \`backupctl status\`.`
      : runs === 0
      ? "Nothing ran: check that `backupctl watch` (or the cron job running apply) is alive."
      : "Nothing to do.",
  };
}

/**
 * The reminder key of an overdue episode: one notification when it starts (the last success plus maxAge), then one
 * every 24 hours while it lasts. A new success starts a new episode.
 */
export function overdueKey(overdue: Overdue, now: Date): string {
  const start = Date.parse(overdue.last_success) + (parseDuration(overdue.max_age) ?? 0);
  const days = Math.max(0, Math.floor((now.getTime() - start) / 86_400_000));
  return `backup.overdue:${overdue.project}:${overdue.last_success}:${days}`;
}

/** watch refused an edited config; the previous one keeps running. */
export function configInvalid(rejected: { host: string; at: Date; file: string; problems: string[] }): Message {
  const n = rejected.problems.length;
  return {
    version: messageVersion,
    event: "config.invalid",
    severity: "bad",
    title: `backupctl watch refused the edited config: ${n} problem${
      n === 1 ? "" : "s"
    }; the previous config keeps running`,
    at: rejected.at.toISOString(),
    host: rejected.host,
    file: rejected.file,
    problems: rejected.problems.slice(0, 20).map((p) => redact(p)),
    error: errorTail(redact(rejected.problems.join("\n")), 20),
    next:
      `Fix the file (\`backupctl validate --config ${rejected.file}\` lists the problems); watch loads it when it is valid.`,
  };
}

export function verifyFailed(
  failed: Common & { source: string; repository: string; error: string; durationMs: number },
): Message {
  return {
    version: messageVersion,
    event: "verify.failed",
    severity: "bad",
    title: `${failed.project}: restore drill of ${failed.source} from ${failed.repository} failed`,
    at: failed.at.toISOString(),
    host: failed.host,
    project: failed.project,
    repositories: failed.repositories,
    stage: `verify ${failed.source} in ${failed.repository}`,
    durationMs: failed.durationMs,
    error: errorTail(redact(failed.error)),
    next: `The latest backup of ${failed.source} could not be proven restorable: read the error, run ` +
      `\`backupctl verify ${failed.project}\` after fixing it; if it points at the repository, run \`restic check\` on it.`,
  };
}

/** A drill that passed but took longer than the project's recovery time objective (`verify.rto`). */
export function drillSlow(
  slow: Common & { source: string; repository: string; durationMs: number; rtoMs: number; rto: string },
): Message {
  return {
    version: messageVersion,
    event: "drill.slow",
    severity: "warning",
    title: `${slow.project}: the restore drill of ${slow.source} took ${humanDuration(slow.durationMs)}, longer ` +
      `than its recovery time objective ${slow.rto}`,
    at: slow.at.toISOString(),
    host: slow.host,
    project: slow.project,
    repositories: slow.repositories,
    stage: `verify ${slow.source} in ${slow.repository}`,
    durationMs: slow.durationMs,
    next:
      `A restore of ${slow.project} today would take about ${humanDuration(slow.durationMs)}: the data grew, or the ` +
      `repository or the target got slower. Compare with the trend in \`backupctl status\`; speed the restore up ` +
      `(restore --jobs, a closer repository) or agree on a new objective (verify.rto).`,
  };
}

// The fleet's events (several runners sharing a PostgreSQL state; docs/fleet.md). Each names the runner concerned and
// its labels; none carries more than names, labels and config fingerprints (no URL, no secret).

/** A runner as the fleet's messages name it. */
export interface RunnerRef {
  name: string;
  labels: string[];
}

/** A runner stopped heart-beating without stopping cleanly (killed, paused, cut off from the database). */
export function runnerLost(
  lost: { host: string; at: Date; runner: RunnerRef; lastHeartbeat: Date; work: string | null },
): Message {
  const silent = humanDuration(Math.max(0, lost.at.getTime() - lost.lastHeartbeat.getTime()));
  const pinned = lost.runner.labels.length
    ? `; projects whose runsOn only it has (${lost.runner.labels.join(", ")}) wait for it`
    : "";
  return {
    version: messageVersion,
    event: "runner.lost",
    severity: "bad",
    title: `runner ${lost.runner.name} lost: no heartbeat for ${silent}${
      lost.work ? ` (it was running ${lost.work})` : ""
    }`,
    at: lost.at.toISOString(),
    host: lost.host,
    runner: lost.runner.name,
    labels: lost.runner.labels,
    lastHeartbeat: lost.lastHeartbeat.toISOString(),
    ...(lost.work ? { work: lost.work } : {}),
    next: `Its leases expire and the other runners take its work over${pinned}. Restart \`backupctl watch\` on ` +
      "its host, or stop it cleanly; `backupctl status` shows the runners.",
  };
}

/** A runner runs another config than the newest one of the fleet: it takes no new work until they match. */
export function runnerDrift(
  drift: { host: string; at: Date; runner: RunnerRef; fingerprint: string; newest: string; newestRunner: string },
): Message {
  return {
    version: messageVersion,
    event: "runner.drift",
    severity: "warning",
    title: `runner ${drift.runner.name} runs an older config (${shortFingerprint(drift.fingerprint)}, newest ` +
      `${shortFingerprint(drift.newest)} from ${drift.newestRunner}): it takes no new work`,
    at: drift.at.toISOString(),
    host: drift.host,
    runner: drift.runner.name,
    labels: drift.runner.labels,
    fingerprint: drift.fingerprint,
    newestFingerprint: drift.newest,
    newestRunner: drift.newestRunner,
    next: `Deploy the same config to every runner (\`backupctl status\` shows which runs which), so that ` +
      `${drift.runner.name} takes work again; two policies never run at once meanwhile.`,
  };
}

/** A project needs runner labels that no live runner has: it is not run until one with them comes. */
export function projectUnplaced(
  unplaced: { host: string; at: Date; project: string; runsOn: string[]; runners: RunnerRef[] },
): Message {
  return {
    version: messageVersion,
    event: "project.unplaced",
    severity: "bad",
    title: `${unplaced.project}: no live runner has the labels it needs (${unplaced.runsOn.join(", ")}); ` +
      "it is not backed up",
    at: unplaced.at.toISOString(),
    host: unplaced.host,
    project: unplaced.project,
    runsOn: unplaced.runsOn,
    runners: unplaced.runners.map((runner) => ({ name: runner.name, labels: runner.labels })),
    next: `Start \`backupctl watch --runner-labels ${unplaced.runsOn.join(",")}\` where ${unplaced.project}'s ` +
      "data is reachable, or change its runsOn.",
  };
}
