/**
 * Planner scaling: the pure planner over N projects with 100 snapshots each in the inventory, and the state
 * database read (observe) with 1,000 audit rows per project. Baseline, in the same run: structuredClone of the
 * same observed state (what merely copying the planner's input costs).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "kysely";
import { env, restic, sqlite } from "../src/config/helpers.ts";
import { fingerprint } from "../src/config/fingerprint.ts";
import { validateConfig } from "../src/config/validate.ts";
import { plan } from "../src/plan/planner.ts";
import type { InventorySnapshot, ObservedState } from "../src/plan/types.ts";
import { StateStore } from "../src/state/store.ts";
import { storeDb } from "../test/support/state-db.ts";
import { median, type Row, time } from "./measure.ts";

const snapshotsPerProject = 100;
const auditRowsPerProject = 1000;
const now = new Date("2026-11-21T10:00:00Z");

export function configOf(projects: number) {
  const raw = {
    repositories: { local: restic({ url: "/srv/restic", password: env("RESTIC_PASSWORD") }) },
    projects: Object.fromEntries(Array.from({ length: projects }, (_, i) => [`p${i}`, {
      schedule: `${i % 60} ${i % 24} * * *`,
      timezone: i % 2 === 0 ? "UTC" : "Europe/Berlin",
      sources: [sqlite({ path: `/srv/p${i}/app.db`, name: "db" })],
      repositories: ["local"],
      retention: { last: 3, daily: 7, weekly: 4, monthly: 6 },
    }])),
  };
  const config = validateConfig(raw, "bench.config.ts");
  return { config, fingerprint: fingerprint(config) };
}

/** An observed state as the store would return it: hourly-ish snapshots over the past weeks, all backed up. */
export function observedOf(projects: number): ObservedState {
  const snapshots: InventorySnapshot[] = [];
  const backups: ObservedState["backups"] = [];
  const retention: ObservedState["retention"] = [];
  for (let p = 0; p < projects; p++) {
    for (let s = 0; s < snapshotsPerProject; s++) {
      const time = new Date(now.getTime() - s * 7 * 3_600_000 - p * 1000).toISOString();
      const id = (p * snapshotsPerProject + s).toString(16).padStart(64, "0");
      snapshots.push({
        repository: "local",
        id,
        short_id: id.slice(0, 8),
        time,
        project: `p${p}`,
        source: "db",
        run_id: `r${p}-${s}`,
        hostname: "bench",
        tags: ["backupctl", `project=p${p}`, "source=db", `run=r${p}-${s}`],
      });
    }
    backups.push({
      project: `p${p}`,
      source: "db",
      repository: "local",
      at: new Date(now.getTime() - p * 1000).toISOString(),
    });
    retention.push({
      project: `p${p}`,
      source: "db",
      repository: "local",
      policy: '{"daily":7,"last":3,"monthly":6,"weekly":4}',
      at: now.toISOString(),
    });
  }
  return {
    lineage: "bench",
    serial: 1,
    repositories: { local: { initialized: true, initializedAt: "2026-01-01T00:00:00.000Z" } },
    backups,
    failures: [],
    snapshots,
    retention,
    maintenance: [{ type: "check", repository: "local", at: now.toISOString() }],
    knownProjects: Array.from({ length: projects }, (_, i) => `p${i}`),
    knownRepositories: ["local"],
    appliedPlans: [],
    partials: [],
  };
}

/** Fills a state database with `projects` × 1,000 stage rows and × 100 snapshot rows, in SQL. */
async function filledStore(dir: string, projects: number): Promise<StateStore> {
  const store = await StateStore.open(dir);
  const stages = projects * auditRowsPerProject;
  await sql`WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ${stages - 1})
    INSERT INTO stages (run_id, type, project, source, repository, attempt, status, started_at, finished_at, duration_ms, bytes)
    SELECT NULL, CASE WHEN i % 10 = 0 THEN 'refresh' ELSE 'backup' END, 'p' || (i % ${projects}), 'db', 'local', 1,
      CASE WHEN i % 17 = 0 THEN 'failed' ELSE 'succeeded' END,
      strftime('%Y-%m-%dT%H:%M:%fZ', '2026-11-21T10:00:00Z', '-' || (i / ${projects}) || ' hours'),
      NULL, 1000, 4096 FROM n`.execute(storeDb(store));
  const snapshots = projects * snapshotsPerProject;
  await sql`WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ${snapshots - 1})
    INSERT INTO snapshots (repository, id, short_id, time, project, source, run_id, hostname, tags, paths, size, recorded_at)
    SELECT 'local', printf('%064x', i), printf('%08x', i),
      strftime('%Y-%m-%dT%H:%M:%fZ', '2026-11-21T10:00:00Z', '-' || ((i / ${projects}) * 7) || ' hours'),
      'p' || (i % ${projects}), 'db', 'r' || i, 'bench',
      '["backupctl","project=p' || (i % ${projects}) || '","source=db"]', '["/db.sql"]', 4096, '2026-11-21T10:00:00Z' FROM n`
    .execute(storeDb(store));
  await sql`INSERT INTO repositories (name, location, initialized_at) VALUES ('local', '/srv/restic', '2026-01-01T00:00:00Z')`
    .execute(storeDb(store));
  await sql`ANALYZE`.execute(storeDb(store));
  return store;
}

export async function plannerBench(options: { quick: boolean }): Promise<Row[]> {
  const rows: Row[] = [];
  const sizes = options.quick ? [100, 1000] : [100, 1000, 10_000];
  for (const projects of sizes) {
    const loaded = configOf(projects);
    const observed = observedOf(projects);
    const runs = projects >= 10_000 ? 3 : 5;
    plan(loaded, observed, now, { generatedAt: now }); // warm-up: JIT and Intl caches, as in a running process
    structuredClone(observed);
    const planMs = median(await time(runs, () => plan(loaded, observed, now, { generatedAt: now })));
    const baseMs = median(await time(runs, () => structuredClone(observed)));
    const result = plan(loaded, observed, now, { generatedAt: now });
    rows.push({
      benchmark: "planner",
      case: `${projects} projects, ${projects * snapshotsPerProject} snapshots`,
      value: `${planMs.toFixed(0)} ms`,
      baseline: `structuredClone of the input: ${baseMs.toFixed(0)} ms`,
      ratio: planMs / baseMs,
      note: `${result.actions.length} actions, ${result.summary.forget} snapshots to forget`,
    });
  }
  for (const projects of options.quick ? [100] : [100, 1000]) {
    const dir = mkdtempSync(join(tmpdir(), "backupctl-bench-"));
    try {
      const store = await filledStore(dir, projects);
      const observeMs = median(await time(3, () => store.observe()));
      const baseMs = median(await time(3, () => storeDb(store).selectFrom("snapshots").selectAll().execute()));
      const observed = await store.observe();
      const planMs = median(await time(3, () => plan(configOf(projects), observed, now, { generatedAt: now })));
      await store.close();
      rows.push({
        benchmark: "planner + state read",
        case: `${projects} projects, ${projects * auditRowsPerProject} audit rows, ${
          projects * snapshotsPerProject
        } snapshots`,
        value: `observe ${observeMs.toFixed(0)} ms + plan ${planMs.toFixed(0)} ms`,
        baseline: `reading every inventory row (SELECT *): ${baseMs.toFixed(0)} ms`,
        ratio: (observeMs + planMs) / baseMs,
        note: "state database on local disk, WAL",
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return rows;
}
