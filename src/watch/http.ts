/**
 * watch's HTTP endpoints (off unless `--listen`): `GET /healthz` (200 ok or degraded, 503 unhealthy, with a JSON
 * body saying why) and `GET /metrics` (Prometheus text, made with prom-client). Both are computed from the state
 * database and the loop's status at request time; neither says anything secret (names, times and counts only), and
 * neither asks for the dashboard's token (probes and scrapers stay as they were). Every other path is the dashboard.
 */
import { accessSync, constants } from "node:fs";
import { createServer, type Server } from "node:http";
import { Counter, Gauge, Registry } from "prom-client";
import { parseDuration } from "../config/duration.ts";
import { redact } from "../config/secrets.ts";
import { preparePlan } from "../apply/prepare.ts";
import { isoSeconds } from "../format/time.ts";
import type { StateStore } from "../state/store.ts";
import type { Watcher } from "./loop.ts";
import { type DashboardSource, handleDashboard } from "../web/server.ts";
import { minTokenLength, tokenVariable } from "../web/security.ts";

/** Why the dashboard is off on a non-loopback address without a token, and the fix. */
export const dashboardOff = `set ${tokenVariable} (or --token-file PATH, at least ${minTokenLength} characters)`;

export interface Health {
  /** ok: all well; degraded: something needs a look but backups are current; unhealthy: backups are at risk. */
  status: "ok" | "degraded" | "unhealthy";
  reasons: string[];
  last_tick: string | null;
  /** The loop's last sign of life: a tick, a sleep step or a line of a run's output. */
  heartbeat: string;
  running: string[];
  overdue: { project: string; last_success: string; max_age: string }[];
  state_db_writable: boolean;
  failed_runs_since_success: Record<string, number>;
  notifications: { pending: number; undeliverable: number };
  config: { file: string; loaded_at: string; rejected: { at: string; problems: string[] } | null };
  lock_waits: string[];
  /** Per project with a restore drill: the latest one. */
  drills: Record<string, { at: string; status: string }>;
  /** This runner: whether it reaches the state, why it takes no new work, the projects no live runner can take. */
  runner: { name: string; labels: string[]; connected: boolean; held_back: string | null; unplaced: string[] };
}

/** A loop silent for longer than this (and at least 3 sleeps) is stuck. */
const minStaleMs = 5 * 60_000;

/**
 * Whether results reach the database: not degraded, and the state files writable. A PostgreSQL state has no file: its
 * failures show as degraded; the folder must still take fallback.jsonl.
 */
function databaseWritable(store: StateStore): boolean {
  if (store.degraded) return false;
  try {
    if (!store.postgres) accessSync(store.path, constants.W_OK);
    accessSync(store.dir, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The projects overdue at `now`, from the plan as `status` makes it (apply/prepare.ts, offline: the state as
 * recorded, no restic started, nothing written).
 */
async function overdueNow(watcher: Watcher, now: Date) {
  const { plan } = await preparePlan(watcher.loaded, watcher.store, { now, host: watcher.options.host, offline: true });
  return plan.overdue;
}

export async function health(watcher: Watcher): Promise<Health> {
  const { store, status, options } = watcher;
  const loaded = watcher.loaded;
  const now = options.clock.now();
  const overdue = await overdueNow(watcher, now);
  const failed: Record<string, number> = {};
  for (const project of Object.keys(loaded.config.projects)) {
    const n = await store.failuresSinceLastSuccess(project);
    if (n > 0) failed[project] = n;
  }
  const outbox = await store.outbox.outboxOverview(new Date(now.getTime() - 7 * 86_400_000).toISOString());
  const writable = databaseWritable(store);
  const drills = await store.latestDrills();
  const staleMs = Math.max(3 * options.maxSleepMs, minStaleMs);
  const silentMs = now.getTime() - status.heartbeatAt.getTime();

  const { runner } = status;
  const unhealthy: string[] = [];
  // Without the database a runner finishes what it runs and takes no new work: its backups stop until it reconnects.
  if (!runner.connected) {
    unhealthy.push(`runner ${runner.name} cannot reach the state database; it takes no new work until it reconnects`);
  }
  if (silentMs > staleMs) unhealthy.push(`the loop has shown no activity for ${Math.round(silentMs / 1000)}s`);
  if (!writable) unhealthy.push("the state database cannot be written (results go to fallback.jsonl)");
  for (const o of overdue) {
    unhealthy.push(`${o.project} is overdue: last success ${o.last_success}, max age ${o.max_age}`);
  }
  const degraded: string[] = [];
  for (const [project, n] of Object.entries(failed)) {
    degraded.push(`${project}: ${n} failed run${n === 1 ? "" : "s"} since its last success`);
  }
  for (const [project, latest] of drills) {
    if (latest.status === "failed" && project in loaded.config.projects) {
      degraded.push(`${project}: the last restore drill failed (${latest.at})`);
    }
  }
  if (status.config.rejected) degraded.push("the edited config was rejected; the previous one is running");
  if (outbox.undeliverable.length) degraded.push(`${outbox.undeliverable.length} undeliverable notifications`);
  if (status.failedActions.count > 0) {
    degraded.push(
      `${status.failedActions.count} action${status.failedActions.count === 1 ? "" : "s"} failed or were skipped at ` +
        `the last tick that ran any (${status.failedActions.at ? isoSeconds(status.failedActions.at) : "?"})`,
    );
  }
  if (status.lastTickError) degraded.push(`the last tick failed: ${status.lastTickError}`);
  for (const project of status.lockWaits) degraded.push(`${project} was skipped: another process held its lock`);
  // Held back while connected (a config older than the fleet's newest): the others run the work meanwhile.
  if (runner.heldBack && runner.connected) {
    degraded.push(`runner ${runner.name} takes no new work: ${redact(runner.heldBack)}`);
  }

  return {
    status: unhealthy.length ? "unhealthy" : degraded.length ? "degraded" : "ok",
    reasons: [...unhealthy, ...degraded],
    last_tick: status.lastTickAt ? isoSeconds(status.lastTickAt) : null,
    heartbeat: isoSeconds(status.heartbeatAt),
    running: [...status.running].sort(),
    overdue,
    state_db_writable: writable,
    failed_runs_since_success: failed,
    notifications: { pending: outbox.pending.length, undeliverable: outbox.undeliverable.length },
    config: {
      file: status.config.file,
      loaded_at: isoSeconds(status.config.loadedAt),
      rejected: status.config.rejected
        ? { at: isoSeconds(status.config.rejected.at), problems: status.config.rejected.problems }
        : null,
    },
    lock_waits: status.lockWaits,
    drills: Object.fromEntries([...drills].map(([project, d]) => [project, { at: d.at, status: d.status }])),
    runner: {
      name: runner.name,
      labels: runner.labels,
      connected: runner.connected,
      held_back: runner.heldBack === null ? null : redact(runner.heldBack),
      unplaced: runner.unplaced,
    },
  };
}

/**
 * The `reason` label of backupctl_runner_held_back: the reason's first clause ("config drift" of "config drift: runs
 * sha256:…"), at most 60 characters, so the label's values stay few and never carry a secret or a fingerprint.
 */
export function heldBackReason(heldBack: string): string {
  return redact(heldBack).split(/[:;,(\n]/)[0].trim().slice(0, 60);
}

/** The metrics registry; each collect reads the state database at scrape time. */
export function metricsRegistry(watcher: Watcher): Registry {
  const registry = new Registry();
  const seconds = (iso: string | null | undefined) => (iso ? Date.parse(iso) / 1000 : undefined);
  const projects = () => Object.keys(watcher.loaded.config.projects);
  const digest = () => watcher.store.runDigest("0000", "9999");
  /** Every per-project series says which runner exports it: in a fleet each runner is scraped on its own. */
  const runner = () => watcher.status.runner.name;

  /** A gauge with one value per declared project, read at scrape time (a project without a value is left out). */
  const perProject = (name: string, help: string, read: () => Promise<(project: string) => number | undefined>) =>
    new Gauge({
      name,
      help,
      labelNames: ["project", "runner"],
      registers: [registry],
      async collect() {
        this.reset();
        const value = await read();
        for (const project of projects()) {
          const v = value(project);
          if (v !== undefined) this.set({ project, runner: runner() }, v);
        }
      },
    });
  perProject(
    "backupctl_last_success_timestamp_seconds",
    "Start of the project's last successful run (Unix time).",
    async () => {
      const runs = await digest();
      return (project) => seconds(runs.get(project)?.lastSuccessAt);
    },
  );
  perProject("backupctl_last_run_duration_seconds", "Duration of the project's last finished run.", async () => {
    const runs = await watcher.store.projectRuns();
    return (project) => {
      const ms = runs.get(project)?.lastRun?.duration_ms;
      return ms === null || ms === undefined ? undefined : ms / 1000;
    };
  });
  perProject(
    "backupctl_last_run_bytes",
    "Bytes the project's last successful run read from its sources and sent to restic.",
    async () => {
      const runs = await digest();
      return (project) => runs.get(project)?.lastSuccessBytes;
    },
  );
  perProject(
    "backupctl_drill_duration_seconds",
    "How long the project's last restore drill took (restore and check): the recovery time it proved.",
    async () => {
      const drills = await watcher.store.latestDrills();
      return (project) => {
        const ms = drills.get(project)?.durationMs;
        return ms === null || ms === undefined ? undefined : ms / 1000;
      };
    },
  );
  perProject(
    "backupctl_drill_rto_seconds",
    "The project's recovery time objective (verify.rto): a drill taking longer raises drill.slow.",
    () => {
      const config = watcher.loaded.config;
      return Promise.resolve((project) => {
        const rto = config.projects[project]?.verify?.rto;
        const ms = rto ? parseDuration(rto) : undefined;
        return ms === undefined ? undefined : ms / 1000;
      });
    },
  );
  new Counter({
    name: "backupctl_runs_total",
    help: "Runs recorded in the audit, by project and final status.",
    labelNames: ["project", "status", "runner"],
    registers: [registry],
    async collect() {
      this.reset();
      const runs = await digest();
      for (const project of projects()) {
        const counts = runs.get(project) ?? { succeeded: 0, failed: 0, interrupted: 0 };
        for (const status of ["succeeded", "failed", "interrupted"] as const) {
          this.inc({ project, status, runner: runner() }, counts[status]);
        }
      }
    },
  });
  new Gauge({
    name: "backupctl_snapshots",
    help: "Snapshots per project and repository in the inventory.",
    labelNames: ["project", "repository", "runner"],
    registers: [registry],
    async collect() {
      this.reset();
      const counts = await watcher.store.snapshotCounts();
      for (const [name, project] of Object.entries(watcher.loaded.config.projects)) {
        for (const repository of project.repositories) {
          const row = counts.find((c) => c.project === name && c.repository === repository);
          this.set({ project: name, repository, runner: runner() }, row?.count ?? 0);
        }
      }
    },
  });
  perProject("backupctl_overdue", "1 when the project has no successful backup within its maxAge.", async () => {
    const now = watcher.options.clock.now();
    const overdue = new Set((await overdueNow(watcher, now)).map((o) => o.project));
    return (project) => (overdue.has(project) ? 1 : 0);
  });
  new Gauge({
    name: "backupctl_outbox_pending",
    help: "Notifications waiting to be sent.",
    registers: [registry],
    async collect() {
      this.set((await watcher.store.outbox.outboxOverview("9999")).pending.length);
    },
  });
  new Gauge({
    name: "backupctl_outbox_undeliverable",
    help: "Notifications given up as undeliverable in the last 7 days.",
    registers: [registry],
    async collect() {
      const since = new Date(watcher.options.clock.now().getTime() - 7 * 86_400_000).toISOString();
      this.set((await watcher.store.outbox.outboxOverview(since)).undeliverable.length);
    },
  });
  new Gauge({
    name: "backupctl_watch_last_tick_timestamp_seconds",
    help: "When the watch loop last finished a tick (Unix time).",
    registers: [registry],
    collect() {
      const at = watcher.status.lastTickAt;
      if (at) this.set(at.getTime() / 1000);
    },
  });
  new Gauge({
    name: "backupctl_state_db_writable",
    help: "1 when the state database takes writes, 0 when results go to the fallback file.",
    registers: [registry],
    collect() {
      this.set(databaseWritable(watcher.store) ? 1 : 0);
    },
  });
  new Gauge({
    name: "backupctl_config_rejected",
    help: "1 while an edited config is refused and the previous one runs.",
    registers: [registry],
    collect() {
      this.set(watcher.status.config.rejected ? 1 : 0);
    },
  });
  new Gauge({
    name: "backupctl_runner_connected",
    help: "1 while this runner's heartbeat reaches the state database, 0 while it cannot (it takes no new work).",
    labelNames: ["runner"],
    registers: [registry],
    collect() {
      this.reset();
      this.set({ runner: runner() }, watcher.status.runner.connected ? 1 : 0);
    },
  });
  new Gauge({
    name: "backupctl_runner_held_back",
    help: "1 while this runner takes no new work (reason: config drift, the database out of reach…), else 0.",
    labelNames: ["runner", "reason"],
    registers: [registry],
    collect() {
      this.reset();
      const heldBack = watcher.status.runner.heldBack;
      this.set({ runner: runner(), reason: heldBack ? heldBackReason(heldBack) : "" }, heldBack ? 1 : 0);
    },
  });
  new Gauge({
    name: "backupctl_project_unplaced",
    help: "1 for an enabled project whose runsOn labels no live runner has (nobody backs it up), at the last tick.",
    labelNames: ["project", "runner"],
    registers: [registry],
    collect() {
      this.reset();
      for (const project of watcher.status.runner.unplaced) this.set({ project, runner: runner() }, 1);
    },
  });
  return registry;
}

/** Parses `HOST:PORT` (`[::1]:PORT` for IPv6); a bare port listens on 127.0.0.1. */
export function parseListen(text: string): { host: string; port: number } {
  // A host is always followed by ":" (else "9464" read as host "946", port 4, and "127.0.0.1" as "127.0.0.", 1).
  const match = /^(?:(?:\[([^\]]+)\]|([^:[\]]*)):)?(\d{1,5})$/.exec(text.trim());
  const port = match ? Number(match[3]) : NaN;
  if (!match || !Number.isInteger(port) || port > 65_535) {
    throw new RangeError(`--listen: expected HOST:PORT such as 127.0.0.1:9464, got "${text}"`);
  }
  return { host: match[1] || match[2] || "127.0.0.1", port };
}

/**
 * Starts the server; resolves once it listens (with the port actually bound, for port 0). Every path but /healthz and
 * /metrics is the dashboard's (web/server.ts) when `dashboard` is given; without it those paths say how to turn it on.
 */
export async function startHttp(
  watcher: Watcher,
  listen: { host: string; port: number },
  dashboard?: { token: string | undefined },
): Promise<{ server: Server; port: number; close(): Promise<void> }> {
  const registry = metricsRegistry(watcher);
  const source: DashboardSource = {
    loaded: () => watcher.loaded,
    store: watcher.store,
    host: watcher.options.host,
    now: () => watcher.options.clock.now(),
  };
  const server = createServer((request, response) => {
    const path = new URL(request.url ?? "/", "http://localhost").pathname;
    if (path !== "/healthz" && path !== "/metrics") {
      if (dashboard) return void handleDashboard(source, dashboard.token, request, response);
      response.writeHead(404, { "Content-Type": "text/plain", "Cache-Control": "no-store" }).end(
        `not found: GET /healthz or /metrics (the dashboard beyond loopback needs a token: ${dashboardOff})\n`,
      );
      return;
    }
    const send = (status: number, type: string, body: string) => {
      response.writeHead(status, { "Content-Type": type, "Cache-Control": "no-store" }).end(body);
    };
    if (request.method !== "GET" && request.method !== "HEAD") return send(405, "text/plain", "GET only\n");
    const answer = async () => {
      if (path === "/healthz") {
        // A state that cannot be read (the database out of reach) is itself the answer: unhealthy, and why.
        const result = await health(watcher).catch((error): Pick<Health, "status" | "reasons" | "runner"> => ({
          status: "unhealthy",
          reasons: [
            ...(watcher.status.runner.connected ? [] : [
              `runner ${watcher.status.runner.name} cannot reach the state database; it takes no new work until it ` +
              "reconnects",
            ]),
            `the state database cannot be read: ${redact((error as Error).message.split("\n")[0])}`,
          ],
          runner: {
            name: watcher.status.runner.name,
            labels: watcher.status.runner.labels,
            connected: watcher.status.runner.connected,
            held_back: watcher.status.runner.heldBack === null ? null : redact(watcher.status.runner.heldBack),
            unplaced: watcher.status.runner.unplaced,
          },
        }));
        send(result.status === "unhealthy" ? 503 : 200, "application/json", `${JSON.stringify(result, null, 2)}\n`);
      } else if (path === "/metrics") {
        send(200, registry.contentType, await registry.metrics());
      }
    };
    answer().catch((error) => {
      const message = error instanceof Error ? error.message.split("\n")[0] : String(error);
      send(500, "text/plain", `error: ${redact(message)}\n`);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(listen.port, listen.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : listen.port;
  return {
    server,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}
