/**
 * The fleet's part of `backupctl status` (several runners sharing a PostgreSQL state; docs/fleet.md): the runners with
 * their labels, version, config, last heartbeat, work and why they hold back; the leases held now; the projects no
 * live runner can take; the writes a fence refused lately. Read-only, like status: what the runners recorded, judged
 * by the database's clock (the one every runner shares). Nothing of it appears for a state no runner registered in,
 * so a single host's status stays as it was.
 */
import { shortFingerprint } from "../config/fingerprint.ts";
import type { NormalizedConfig } from "../config/normalize.ts";
import { humanDuration, localTime } from "../format/time.ts";
import type { colours } from "../plan/render.ts";
import type { StateStore } from "../state/store.ts";

export interface RunnerStatus {
  name: string;
  host: string;
  labels: string[];
  version: string;
  /** The config fingerprint it runs (sha256:…). */
  fingerprint: string;
  /** live: heart-beating; lost: silent past its TTL without stopping (killed, paused, cut off); stopped: cleanly. */
  state: "live" | "lost" | "stopped";
  last_heartbeat: string;
  /** Time since its last heartbeat, by the database's clock. */
  silent_ms: number;
  /** What it runs now ("backup shop"), null when idle. */
  work: string | null;
  /** Why it takes no new work, null when it takes work. */
  held_back: string | null;
  /** A live runner whose config is not the newest one of the fleet: it takes no new work. */
  config_drift: boolean;
}

export interface FleetStatus {
  /** The config the fleet runs: the newest among live runners' (null when none is live). */
  newest_config: { fingerprint: string; runner: string } | null;
  runners: RunnerStatus[];
  /** Leases held now (not released, not expired). */
  leases: { key: string; holder: string; run_id: string | null; expires_at: string; expires_in_ms: number }[];
  /** Enabled projects whose runsOn labels no live runner has all of: nobody runs them. */
  unplaced: { project: string; runs_on: string[] }[];
  /** Writes refused because their lease had been taken over, in the last 7 days: how many, and the newest few. */
  fenced_writes: {
    count: number;
    newest: {
      at: string;
      op: string;
      run_id: string | null;
      lease_key: string;
      taken_over_by: string | null;
      via: string;
    }[];
  };
}

/** How far back status counts fenced writes, and how many it lists. */
const fencedShownMs = 7 * 86_400_000;
const fencedListed = 5;
/** Fenced writes read to count those of the last 7 days (a count beyond it is shown as "at least"). */
const fencedRead = 1000;

/**
 * The fleet as the state records it, or undefined when no runner ever registered (no fleet). `lastRunners`: per
 * project, who made its latest run (the runner, else the host).
 */
export async function fleetStatus(
  store: StateStore,
  config: NormalizedConfig,
  now: Date,
): Promise<{ fleet: FleetStatus; lastRunners: Map<string, string> } | undefined> {
  const fleet = store.fleet;
  const runners = await fleet.runners();
  if (runners.length === 0) return undefined;
  const newest = await fleet.newestConfig();
  const leases = await fleet.leases();
  const since = new Date(now.getTime() - fencedShownMs).toISOString();
  const fenced = (await fleet.fencedWrites(fencedRead)).filter((row) => row.at >= since);
  const live = runners.filter((runner) => runner.state === "live");
  const unplaced = Object.values(config.projects).flatMap((project) => {
    const needs = project.runsOn ?? [];
    if (!project.enabled || needs.length === 0) return [];
    const placed = live.some((runner) => needs.every((label) => runner.labels.includes(label)));
    return placed ? [] : [{ project: project.name, runs_on: needs }];
  });
  return {
    fleet: {
      newest_config: newest ? { fingerprint: newest.fingerprint, runner: newest.runner } : null,
      runners: runners.map((runner) => ({
        name: runner.name,
        host: runner.host,
        labels: runner.labels,
        version: runner.version,
        fingerprint: runner.fingerprint,
        state: runner.state,
        last_heartbeat: new Date(runner.heartbeatMs).toISOString(),
        silent_ms: runner.silentMs,
        work: runner.work,
        held_back: runner.heldBack,
        config_drift: runner.state === "live" && newest !== undefined && runner.fingerprint !== newest.fingerprint,
      })),
      leases: leases.map((lease) => ({
        key: lease.key,
        holder: lease.holder,
        run_id: lease.runId,
        expires_at: new Date(lease.expiresMs).toISOString(),
        expires_in_ms: Math.max(0, lease.expiresMs - lease.nowMs),
      })),
      unplaced,
      fenced_writes: {
        count: fenced.length,
        newest: fenced.slice(0, fencedListed).map((row) => ({
          at: row.at,
          op: row.op,
          run_id: row.run_id,
          lease_key: row.lease_key,
          taken_over_by: row.current_holder,
          via: row.via,
        })),
      },
    },
    lastRunners: await fleet.lastRunners(),
  };
}

/** A lost runner or an unplaced project makes status exit 1, as a failing or overdue project does. */
export function fleetUnhealthy(fleet: FleetStatus | undefined): boolean {
  return fleet !== undefined &&
    (fleet.runners.some((runner) => runner.state === "lost") || fleet.unplaced.length > 0);
}

type Colours = ReturnType<typeof colours>;

function ago(ms: number): string {
  return ms < 1000 ? "just now" : `${humanDuration(ms)} ago`;
}

/** Cells padded to their column's widest (measured before colouring), two spaces apart. */
function table(rows: string[][], paints: ((text: string) => string)[][], indent: string): string[] {
  const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => [...row[column]].length)));
  return rows.map((row, r) =>
    indent + row.map((cell, i) => {
      const padded = cell + " ".repeat(i === row.length - 1 ? 0 : widths[i] - [...cell].length);
      return (paints[r]?.[i] ?? ((text: string) => text))(padded);
    }).join("  ").trimEnd()
  );
}

/** The fleet's section of status, after the projects' table. */
export function renderFleet(fleet: FleetStatus, zone: string, c: Colours): string {
  const plain = (text: string) => text;
  const newest = fleet.newest_config
    ? ` (newest config ${shortFingerprint(fleet.newest_config.fingerprint)}, from ${fleet.newest_config.runner})`
    : " (none live)";
  const lines = ["", c.bold(`Runners${newest}:`)];
  const rows = [["NAME", "STATE", "LABELS", "VERSION", "CONFIG", "HEARTBEAT", "RUNS NOW", "HELD BACK"]];
  const paints: ((text: string) => string)[][] = [rows[0].map(() => c.bold)];
  for (const runner of fleet.runners) {
    const state = runner.state === "lost" ? "LOST" : runner.state;
    paints[rows.length] = [
      c.bold,
      runner.state === "lost" ? c.red : runner.state === "live" ? c.green : c.dim,
      plain,
      plain,
      runner.config_drift ? c.yellow : plain,
      runner.state === "lost" ? c.red : plain,
      runner.work ? c.cyan : plain,
      runner.held_back ? c.yellow : plain,
    ];
    rows.push([
      runner.name,
      state,
      runner.labels.join(",") || "-",
      runner.version,
      `${shortFingerprint(runner.fingerprint)}${runner.config_drift ? " (config drift)" : ""}`,
      ago(runner.silent_ms),
      runner.work ?? "-",
      runner.held_back ?? "-",
    ]);
  }
  lines.push(...table(rows, paints, "  "));
  for (const runner of fleet.runners.filter((r) => r.state === "lost")) {
    lines.push(c.red(
      `  ${runner.name} is LOST: no heartbeat since ${localTime(new Date(runner.last_heartbeat), zone)} ` +
        `(${ago(runner.silent_ms)}) on ${runner.host}; its leases expire and other runners take its work over`,
    ));
  }
  if (fleet.leases.length > 0) {
    lines.push("leases held now:");
    for (const lease of fleet.leases) {
      lines.push(
        `  ${lease.key} by ${lease.holder}${lease.run_id ? ` (run ${lease.run_id})` : ""}, expires in ` +
          humanDuration(lease.expires_in_ms),
      );
    }
  }
  if (fleet.unplaced.length > 0) {
    lines.push(c.red(`UNPLACED projects (no live runner has the labels they need): ${fleet.unplaced.length}`));
    for (const project of fleet.unplaced) {
      lines.push(c.red(`  ${project.project}: needs ${project.runs_on.join(", ")}`));
    }
  }
  const fenced = fleet.fenced_writes;
  if (fenced.count > 0) {
    const count = fenced.count >= fencedRead ? `at least ${fencedRead}` : String(fenced.count);
    lines.push(c.yellow(`writes refused by a fence in the last 7 days: ${count}`));
    for (const write of fenced.newest) {
      lines.push(
        `  ${localTime(new Date(write.at), zone)} ${write.op}${write.run_id ? ` of run ${write.run_id}` : ""} ` +
          `under ${write.lease_key}, taken over by ${write.taken_over_by ?? "another process"}` +
          (write.via === "replay" ? " (replayed from the fallback file)" : ""),
      );
    }
  }
  return `${lines.join("\n")}\n`;
}
