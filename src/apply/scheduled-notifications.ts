/** Notifications that depend on time, not on a result: overdue alerts and the daily summary. */
import type { Overdue } from "../plan/types.ts";
import type { StaleArchive } from "../plan/document.ts";
import { plan } from "../plan/planner.ts";
import type { NewNotification } from "../state/store.ts";
import {
  archiveStale,
  archiveStaleKey,
  backupOverdue,
  dailySummary,
  enqueueFor,
  overdueKey,
  previousDay,
} from "../notify/events.ts";
import { eventsFor } from "../notify/message.ts";
import type { ApplyContext } from "./context.ts";

/**
 * Notifications that depend on time, not on a result: overdue projects (once when the episode starts, then daily),
 * stale WAL archives of pgbackrest() sources (the same), and each channel's daily summary of the day before (once a
 * day, sent also when nothing ran).
 */
export async function enqueueScheduledNotifications(
  ctx: Pick<ApplyContext, "loaded" | "store" | "clock" | "host" | "notifications">,
  overdue: Overdue[],
  stale: StaleArchive[] = [],
): Promise<void> {
  const now = ctx.clock.now();
  const { config } = ctx.loaded;
  const rows: NewNotification[] = [];
  for (const item of overdue) {
    const message = backupOverdue({
      host: ctx.host,
      at: now,
      project: item.project,
      repositories: config.projects[item.project]?.repositories ?? [],
      lastSuccessAt: item.last_success,
      maxAge: item.max_age,
      ...(item.stanza !== undefined ? { source: item.source, stanza: item.stanza } : {}),
    });
    rows.push(...enqueueFor(ctx.loaded, [item.project], message, { now, key: overdueKey(item, now) }));
  }
  for (const archive of stale) {
    const message = archiveStale({
      host: ctx.host,
      at: now,
      project: archive.project,
      source: archive.source,
      stanza: archive.stanza,
      reason: archive.reason,
      lastArchivedAt: archive.last_archived_at,
      rpo: archive.rpo,
    });
    const key = archiveStaleKey({ ...archive, lastArchivedWal: archive.last_archived_wal }, now);
    rows.push(...enqueueFor(ctx.loaded, [archive.project], message, { now, key }));
  }
  const summaryChannels = Object.entries(config.notifiers)
    .filter(([, notifier]) => eventsFor(notifier).includes("summary.daily")).map(([name]) => name);
  if (summaryChannels.length > 0) {
    const day = previousDay(config.timezone, now);
    const key = `summary.daily:${day.label}`;
    if (!await ctx.store.outbox.notificationKeyExists(key)) {
      const digest = await ctx.store.runDigest(day.from.toISOString(), day.to.toISOString());
      const observed = await ctx.store.observe();
      const overdueNow = new Set(plan(ctx.loaded, observed, now, { generatedAt: now }).overdue.map((o) => o.project));
      const runs = await ctx.store.projectRuns();
      const failing = new Set(
        [...runs].filter(([, r]) => r.lastRun?.status === "failed").map(([project]) => project),
      );
      for (const channel of summaryChannels) {
        const projects = Object.values(config.projects)
          .filter((p) => p.enabled && (p.notify ?? []).includes(channel)).map((p) => p.name);
        if (projects.length === 0) continue;
        const message = dailySummary({
          host: ctx.host,
          at: now,
          period: day,
          projects,
          digest,
          overdue: overdueNow,
          failing,
        });
        rows.push(...enqueueFor(ctx.loaded, projects, message, { now, key, channels: [channel] }));
      }
    }
  }
  if (rows.length === 0) return;
  await ctx.store.enqueueNotifications(rows);
  ctx.notifications?.kick();
}
