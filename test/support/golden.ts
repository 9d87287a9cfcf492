/**
 * The golden plans: the demo config against an empty state at a fixed time, with fixed ids; and a project of a
 * pgbackrest() source against a stanza with backups, a changed retention and a stale archive (pitr.plan.*).
 */
import { join } from "node:path";
import { env, pgbackrest } from "../../src/config/helpers.ts";
import { fingerprint } from "../../src/config/fingerprint.ts";
import { loadConfig } from "../../src/config/load.ts";
import { validateConfig } from "../../src/config/validate.ts";
import { pitrPolicyKey } from "../../src/plan/pitr-actions.ts";
import type { PitrBackup } from "../../src/pitr/types.ts";
import { plan } from "../../src/plan/planner.ts";
import { renderJson, renderMarkdown } from "../../src/plan/render.ts";
import type { ObservedState } from "../../src/plan/types.ts";
import { repoRoot } from "./cli.ts";

export const emptyState: ObservedState = {
  lineage: "00000000-0000-4000-8000-000000000000",
  serial: 0,
  repositories: {},
  backups: [],
  failures: [],
  snapshots: [],
  retention: [],
  maintenance: [],
  knownProjects: [],
  knownRepositories: [],
  appliedPlans: [],
  partials: [],
};

export async function goldenPlans(): Promise<Record<string, string>> {
  const loaded = await loadConfig(join(repoRoot, "backup.config.ts"));
  const demo = plan(loaded, emptyState, new Date("2026-11-21T10:00:00Z"), {
    generatedAt: new Date("2026-11-21T10:00:00Z"),
    planId: "00000000-0000-4000-8000-000000000001",
  });
  const pitr = pitrPlan();
  return {
    "demo.plan.json": renderJson(demo),
    "demo.plan.md": renderMarkdown(demo, loaded.displayTimeZone),
    "pitr.plan.json": renderJson(pitr),
    "pitr.plan.md": renderMarkdown(pitr, "Europe/Berlin"),
  };
}

/** A pgBackRest backup of the golden stanza, started at `start` (ISO) and lasting ten minutes. */
export function pitrBackup(label: string, type: PitrBackup["type"], start: string, prior: string | null): PitrBackup {
  const at = new Date(start);
  return {
    label,
    type,
    start: at,
    stop: new Date(at.getTime() + 600_000),
    prior,
    databaseBytes: 2_000_000_000,
    repositoryBytes: type === "full" ? 400_000_000 : 20_000_000,
    repositoryDeltaBytes: type === "full" ? 400_000_000 : 20_000_000,
    archiveStart: "000000010000000000000010",
    archiveStop: "000000010000000000000011",
    error: false,
  };
}

/** The config of the pgbackrest golden plan: weekly fulls, daily incrs, a 15-minute RPO. */
export function pitrConfig(retention: Record<string, unknown> = { weekly: 1 }, project: Record<string, unknown> = {}) {
  const config = validateConfig({
    timezone: "Europe/Berlin",
    repositories: {},
    projects: {
      ledger: {
        schedule: "@daily",
        sources: [pgbackrest({
          stanza: "ledger",
          cluster: { dataDirectory: "/var/lib/postgresql/15/main", host: "/var/run/postgresql" },
          repository: { path: "/srv/pgbackrest" },
          cipherPassphrase: env("PGBACKREST_CIPHER_PASS"),
          schedule: { full: "0 1 * * 0", incr: "0 1 * * 1-6" },
          rpo: "15m",
        })],
        repositories: [],
        retention,
        ...project,
      },
    },
  }, "pitr.config.ts");
  return { config, fingerprint: fingerprint(config) };
}

/**
 * The pgbackrest golden plan, on Sunday 2026-11-22 10:00 UTC: three weekly fulls with their incrs, retention cut
 * from 3 fulls to 2 (weekly 2 → 1: expirations held for approval), this week's full due, the archive 40 minutes old
 * with WAL waiting.
 */
function pitrPlan() {
  const now = new Date("2026-11-22T10:00:00Z");
  const full1 = "20261108-000000F";
  const full2 = "20261115-000000F";
  const full3 = "20261121-000000F";
  const info = {
    stanza: "ledger",
    status: { code: 0, message: "ok" },
    backupRunning: false,
    cipher: "aes-256-cbc",
    backups: [
      pitrBackup(full1, "full", "2026-11-08T00:00:00Z", null),
      pitrBackup(`${full1}_20261109-000000I`, "incr", "2026-11-09T00:00:00Z", full1),
      pitrBackup(full2, "full", "2026-11-15T00:00:00Z", null),
      pitrBackup(`${full2}_20261116-000000I`, "incr", "2026-11-16T00:00:00Z", full2),
      pitrBackup(full3, "full", "2026-11-21T00:00:00Z", null),
    ],
    archive: { min: "000000010000000000000001", max: "000000010000000000000040" },
  };
  const archiveCommand = "pgbackrest --config=/var/lib/backupctl/pgbackrest/ledger/ledger.conf --stanza=ledger " +
    "archive-push %p";
  const observed: ObservedState = {
    ...emptyState,
    retention: [{
      project: "ledger",
      source: "ledger",
      repository: "pgbackrest:ledger",
      policy: pitrPolicyKey({ full: 3 }),
      at: "2026-11-15T00:30:00Z",
    }],
    maintenance: [{ type: "check", repository: "pgbackrest:ledger", at: "2026-11-20T00:00:00Z" }],
    pitr: [{
      project: "ledger",
      source: "ledger",
      info,
      archive: {
        archiveMode: "on",
        archiveCommand,
        walLevel: "replica",
        lastArchivedWal: "000000010000000000000040",
        lastArchivedAt: new Date("2026-11-22T09:20:00Z"),
        failedCount: 0,
        lastFailedWal: null,
        lastFailedAt: null,
        currentWal: "000000010000000000000041",
        pendingWal: true,
      },
      archiveCommand,
    }],
  };
  return plan(pitrConfig(), observed, now, { generatedAt: now, planId: "00000000-0000-4000-8000-000000000002" });
}
