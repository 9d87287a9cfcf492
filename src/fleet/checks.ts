/**
 * What a `watch` runner checks before it takes work (docs/fleet.md): whether it reaches the state (a runner cut off
 * takes nothing new, and its fallback lines are replayed once it is back), whether it runs the fleet's config (a
 * runner with another config than the one first seen last among live runners holds back: a half-rolled deploy never
 * runs two policies), which runners are lost, and which projects no runner can take (`runsOn`). What it finds goes to
 * the runner's status (/healthz, /metrics) and, once per episode, to the notifiers.
 */
import type { Clock } from "../clock.ts";
import type { LoadedConfig } from "../config/load.ts";
import { enqueueFor, projectUnplaced, runnerDrift, runnerLost, type RunnerRef } from "../notify/events.ts";
import type { NewNotification, StateStore } from "../state/store.ts";
import type { FleetMember } from "./member.ts";

export interface CheckContext {
  loaded: LoadedConfig;
  store: StateStore;
  clock: Clock;
  host: string;
  member: FleetMember;
  /** The runner's part of the watch status, updated here. */
  runner: { name: string; labels: string[]; connected: boolean; heldBack: string | null };
  log: (line: string) => void;
}

/** Whether a runner with `labels` may run `project`: it has every label the project's `runsOn` lists. */
export function placedOn(loaded: LoadedConfig, project: string, labels: string[]): boolean {
  return (loaded.config.projects[project]?.runsOn ?? []).every((label) => labels.includes(label));
}

/** Enabled projects with `runsOn` that none of `runners` can take, by name. */
export function unplacedProjects(loaded: LoadedConfig, runners: RunnerRef[]): string[] {
  return Object.values(loaded.config.projects)
    .filter((p) => p.enabled && p.runsOn?.length && !runners.some((r) => placedOn(loaded, p.name, r.labels)))
    .map((p) => p.name).sort();
}

/**
 * Checks the fleet before a tick: whether this runner may take new work, and the live runners that take work (this
 * one included unless it holds back). Enqueues `runner.drift` for this runner and `runner.lost` for lost ones.
 */
export async function checkFleet(ctx: CheckContext): Promise<{ mayWork: boolean; runners: RunnerRef[] }> {
  const { member, runner, loaded, store } = ctx;
  await member.beat();
  if (!member.connected || !(await store.reconnect().catch(() => false))) {
    runner.connected = false;
    runner.heldBack = `the state database is out of reach (${member.disconnectedBecause || "writes fail"})`;
    member.heldBack = runner.heldBack;
    return { mayWork: false, runners: [] };
  }
  runner.connected = true;
  const newest = await store.fleet.newestConfig();
  const drift = newest !== undefined && newest.fingerprint !== loaded.fingerprint;
  runner.heldBack = drift
    ? `config drift: this runner runs config ${loaded.fingerprint.slice(0, 19)}, the newest in the fleet is ` +
      `${newest.fingerprint.slice(0, 19)} (brought by runner ${newest.runner}); deploy it here`
    : null;
  if (member.heldBack !== runner.heldBack) {
    if (runner.heldBack) ctx.log(`warning: no new work: ${runner.heldBack}`);
    else if (member.heldBack) ctx.log("fleet: this runner takes work again");
  }
  member.heldBack = runner.heldBack;
  const all = await store.fleet.runners();
  const others = all.filter((r) => r.state === "live" && r.heldBack === null && r.name !== runner.name);
  const runners = [...others, ...(drift ? [] : [{ name: runner.name, labels: runner.labels }])];

  const now = ctx.clock.now();
  const everyone = Object.keys(loaded.config.projects);
  const notifications: NewNotification[] = [];
  if (drift) {
    const message = runnerDrift({
      host: ctx.host,
      at: now,
      runner: { name: runner.name, labels: runner.labels },
      fingerprint: loaded.fingerprint,
      newest: newest.fingerprint,
      newestRunner: newest.runner,
    });
    notifications.push(
      ...enqueueFor(loaded, everyone, message, { now, key: `runner.drift:${runner.name}:${loaded.fingerprint}` }),
    );
  }
  for (const lost of all.filter((r) => r.state === "lost")) {
    // Said once per lost process (its instance), by whichever live runner notices first (the key is unique).
    const message = runnerLost({
      host: ctx.host,
      at: now,
      runner: { name: lost.name, labels: lost.labels },
      lastHeartbeat: new Date(now.getTime() - lost.silentMs),
      work: lost.work,
    });
    notifications.push(
      ...enqueueFor(loaded, everyone, message, { now, key: `runner.lost:${lost.name}:${lost.instance}` }),
    );
  }
  if (notifications.length > 0) await store.enqueueNotifications(notifications);
  return { mayWork: !drift, runners };
}

/** A `project.unplaced` notification per unplaced project, once per config (its key). */
export async function notifyUnplaced(
  ctx: Pick<CheckContext, "loaded" | "store" | "clock" | "host">,
  unplaced: string[],
  runners: RunnerRef[],
): Promise<void> {
  const now = ctx.clock.now();
  const notifications = unplaced.flatMap((project) =>
    enqueueFor(
      ctx.loaded,
      [project],
      projectUnplaced({
        host: ctx.host,
        at: now,
        project,
        runsOn: ctx.loaded.config.projects[project]?.runsOn ?? [],
        runners: runners.map(({ name, labels }) => ({ name, labels })),
      }),
      { now, key: `project.unplaced:${project}:${ctx.loaded.fingerprint}` },
    )
  );
  if (notifications.length > 0) await ctx.store.enqueueNotifications(notifications);
}
