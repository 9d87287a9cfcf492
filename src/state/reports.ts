/**
 * What the state database tells an operator: the audit for `history`, per-project summaries for `status` and the
 * daily digest, the snapshot inventory for `snapshots`. Reads only.
 */
import { type Kysely, type Selectable, sql } from "kysely";
import type { Database, RunStatus, SnapshotTable, StageType } from "./schema.ts";
import { compareTimes } from "../format/time.ts";

/** The kind `history` gives a run (its stages: backups, copies, hooks, refreshes); operations take their stage's type. */
export const runKind = "backup";

/** One line of `history`: a run with its stages, or an operation audited without a run (its one stage). */
export interface HistoryEntry {
  kind: string;
  run: Selectable<Database["runs"]> | null;
  stages: Selectable<Database["stages"]>[];
}

export interface HistoryFilter {
  projects?: string[];
  failed?: boolean;
  since?: string;
  kinds?: string[];
  /** Only runs made by this fleet runner (operations audited without a run have none, so they are left out). */
  runner?: string;
  limit: number;
}

/** One project's runs in a summary period and its last success. */
export interface RunDigest {
  succeeded: number;
  failed: number;
  interrupted: number;
  lastSuccessAt?: string;
  lastSuccessDurationMs?: number;
  lastSuccessBytes?: number;
}

export interface RunSummary {
  id: string;
  project: string;
  status: RunStatus;
  started_at: string;
  finished_at: string | null;
  duration_ms: number | null;
  error: string | null;
}

/** A repository's last check: when, and what it found; null for a repository never checked. */
export type RepositoryCheck = { at: string; status: string } | null;

/**
 * The audit, newest first, for `history`: runs with their stages (kind "backup") and the operations audited without
 * a run (a stage of its own: forget, prune, check, verify, restore, init, unlock, recover, refresh, notify), merged by
 * start time. `kinds` picks among them. Each filter keeps its query on an index (runs_project_started,
 * runs_status_project, runs_status, runs_started; stages_operations or stages_latest for the operations; stages_run
 * for a run's stages), so it stays fast on a large audit.
 */
export async function history(db: Kysely<Database>, filter: HistoryFilter): Promise<HistoryEntry[]> {
  const wantRuns = !filter.kinds || filter.kinds.includes(runKind);
  const operationKinds = filter.kinds?.filter((kind) => kind !== runKind);
  const entries: HistoryEntry[] = [];
  if (wantRuns) {
    let query = db.selectFrom("runs").selectAll().orderBy("started_at", "desc").limit(filter.limit);
    if (filter.projects?.length) query = query.where("project", "in", filter.projects);
    if (filter.failed) query = query.where("status", "in", ["failed", "interrupted"]);
    if (filter.since) query = query.where("started_at", ">=", filter.since);
    if (filter.runner !== undefined) query = query.where("runner", "=", filter.runner);
    const runs = await query.execute();
    if (runs.length > 0) {
      const stages = await db.selectFrom("stages").selectAll()
        .where("run_id", "in", runs.map((r) => r.id)).orderBy("id").execute();
      const byRun = new Map<string | null, Selectable<Database["stages"]>[]>();
      for (const stage of stages) byRun.set(stage.run_id, [...(byRun.get(stage.run_id) ?? []), stage]);
      entries.push(...runs.map((run) => ({ kind: runKind, run, stages: byRun.get(run.id) ?? [] })));
    }
  }
  if ((operationKinds === undefined || operationKinds.length > 0) && filter.runner === undefined) {
    let query = db.selectFrom("stages").selectAll().where("run_id", "is", null)
      .orderBy("started_at", "desc").orderBy("id", "desc").limit(filter.limit);
    if (operationKinds) query = query.where("type", "in", operationKinds as StageType[]);
    if (filter.projects?.length) query = query.where("project", "in", filter.projects);
    if (filter.failed) query = query.where("status", "in", ["failed", "interrupted"]);
    if (filter.since) query = query.where("started_at", ">=", filter.since);
    for (const stage of await query.execute()) entries.push({ kind: stage.type, run: null, stages: [stage] });
  }
  const startedAt = (entry: HistoryEntry) => entry.run?.started_at ?? entry.stages[0].started_at;
  return entries.sort((a, b) => compareTimes(startedAt(b), startedAt(a))).slice(0, filter.limit);
}

/** A run with its stages, in the order they were recorded. */
export interface RunWithStages {
  run: Selectable<Database["runs"]>;
  stages: Selectable<Database["stages"]>[];
}

/** One run and its stages (the dashboard's run page), by the runs' primary key and stages_run; undefined if unknown. */
export async function runWithStages(db: Kysely<Database>, id: string): Promise<RunWithStages | undefined> {
  const run = await db.selectFrom("runs").selectAll().where("id", "=", id).executeTakeFirst();
  if (!run) return undefined;
  const stages = await db.selectFrom("stages").selectAll().where("run_id", "=", id).orderBy("id").execute();
  return { run, stages };
}

/** A project's latest restore drill; its duration is the restore time it proved (RTO). */
export interface LatestDrill {
  at: string;
  status: string;
  error: string | null;
  durationMs: number | null;
}

/**
 * Per project, its latest restore drill (a `verify` stage that finished): when, and whether it passed. `projects`:
 * of those only (one project's page need not read every project's drills).
 */
export async function latestDrills(db: Kysely<Database>, projects?: string[]): Promise<Map<string, LatestDrill>> {
  // Each project's newest finished drill: the newest of each status (latest_stages), then that stage's row.
  const newest = await db.selectFrom("latest_stages").select(["project", "started_at as at"])
    .where("type", "=", "verify").where("status", "in", ["succeeded", "failed"]).execute();
  const at = new Map<string, string>();
  for (const row of newest) {
    if (!row.project || (projects?.length && !projects.includes(row.project))) continue;
    if ((at.get(row.project) ?? "") < row.at) at.set(row.project, row.at);
  }
  const drills = new Map<string, LatestDrill>();
  if (at.size === 0) return drills;
  const times = [...new Set(at.values())];
  const rows = [];
  // In slices: a statement takes a bounded number of parameters (SQLite 32,766, PostgreSQL 65,535).
  for (let i = 0; i < times.length; i += 5000) {
    rows.push(
      ...await db.selectFrom("stages")
        .select(["project", "started_at", "status", "error", "duration_ms"])
        .where("type", "=", "verify").where("status", "in", ["succeeded", "failed"])
        .where("started_at", "in", times.slice(i, i + 5000))
        .orderBy("id").execute(),
    );
  }
  for (const row of rows) {
    if (!row.project || at.get(row.project) !== row.started_at) continue;
    const durationMs = row.duration_ms === null ? null : Number(row.duration_ms);
    drills.set(row.project, { at: row.started_at, status: row.status, error: row.error, durationMs });
  }
  return drills;
}

/**
 * Per project, its last `limit` finished drills, oldest first: when, whether each passed, and how long it took (the
 * trend `status` shows). A window over the drills only (a verify stage is one per drill, far fewer than backups).
 */
export async function drillTrends(
  db: Kysely<Database>,
  limit = 10,
): Promise<Map<string, { at: string; status: string; durationMs: number | null }[]>> {
  const { rows } = await sql<{ project: string; started_at: string; status: string; duration_ms: number | null }>`
    SELECT project, started_at, status, duration_ms FROM (
      SELECT project, started_at, status, duration_ms,
        row_number() OVER (PARTITION BY project ORDER BY started_at DESC, id DESC) AS n
      FROM stages WHERE type = 'verify' AND status IN ('succeeded', 'failed') AND project IS NOT NULL
    ) recent WHERE n <= ${limit} ORDER BY project, started_at`.execute(db);
  const trends = new Map<string, { at: string; status: string; durationMs: number | null }[]>();
  for (const row of rows) {
    const list = trends.get(row.project) ?? [];
    list.push({
      at: row.started_at,
      status: row.status,
      durationMs: row.duration_ms === null ? null : Number(row.duration_ms),
    });
    trends.set(row.project, list);
  }
  return trends;
}

/**
 * Per (project, source, repository) group, the bytes its successful backups added to the repository since `since`:
 * the largest (a first, full backup) and the median (a typical later one). For the retention simulation's estimate.
 */
export async function backupBytes(
  db: Kysely<Database>,
  since: string,
): Promise<Map<string, { full: number; typical: number }>> {
  const rows = await db.selectFrom("stages").select(["project", "source", "repository", "bytes_added"])
    .where("type", "=", "backup").where("status", "=", "succeeded").where("bytes_added", "is not", null)
    .where("started_at", ">=", since).execute();
  const added = new Map<string, number[]>();
  for (const row of rows) {
    const key = `${row.project}\u0000${row.source}\u0000${row.repository}`;
    added.set(key, [...(added.get(key) ?? []), Number(row.bytes_added)]);
  }
  const result = new Map<string, { full: number; typical: number }>();
  for (const [key, values] of added) {
    const sorted = values.sort((a, b) => a - b);
    result.set(key, { full: sorted.at(-1) ?? 0, typical: sorted[Math.floor(sorted.length / 2)] ?? 0 });
  }
  return result;
}

/** Finished runs of a project that failed or were interrupted after its last successful run. */
export async function failuresSinceLastSuccess(db: Kysely<Database>, project: string): Promise<number> {
  const last = await db.selectFrom("runs").select((eb) => eb.fn.max("started_at").as("at"))
    .where("project", "=", project).where("status", "=", "succeeded").executeTakeFirst();
  let query = db.selectFrom("runs").select((eb) => eb.fn.countAll<number>().as("n"))
    .where("project", "=", project).where("status", "in", ["failed", "interrupted"]);
  if (last?.at) query = query.where("started_at", ">", last.at);
  return Number((await query.executeTakeFirst())?.n ?? 0);
}

/**
 * Per project: runs started in [from, to) by status, and the last successful run up to `to` with the bytes its
 * backup stages sent. For the daily summary.
 */
export async function runDigest(db: Kysely<Database>, from: string, to: string): Promise<Map<string, RunDigest>> {
  const digest = new Map<string, RunDigest>();
  const entry = (project: string): RunDigest => {
    const known = digest.get(project);
    if (known) return known;
    const fresh = { succeeded: 0, failed: 0, interrupted: 0 };
    digest.set(project, fresh);
    return fresh;
  };
  const counts = await db.selectFrom("runs").select(["project", "status"])
    .select((eb) => eb.fn.countAll<number>().as("n"))
    .where("started_at", ">=", from).where("started_at", "<", to).groupBy(["project", "status"]).execute();
  for (const row of counts) {
    if (row.status === "succeeded" || row.status === "failed" || row.status === "interrupted") {
      entry(row.project)[row.status] = Number(row.n);
    }
  }
  const last = await db.selectFrom("runs as r")
    .select(["r.id", "r.project", "r.started_at", "r.duration_ms"])
    .select((eb) =>
      eb.selectFrom("stages as s").select((e) => e.fn.sum<number>("s.bytes").as("b"))
        .whereRef("s.run_id", "=", "r.id").where("s.type", "=", "backup").where("s.status", "=", "succeeded")
        .as("bytes")
    )
    .where("r.status", "=", "succeeded").where("r.started_at", "<", to)
    .where("r.started_at", "=", (eb) =>
      eb.selectFrom("runs as q").select((e) => e.fn.max("q.started_at").as("m"))
        .whereRef("q.project", "=", "r.project").where("q.status", "=", "succeeded").where("q.started_at", "<", to))
    .execute();
  for (const row of last) {
    Object.assign(entry(row.project), {
      lastSuccessAt: row.started_at,
      lastSuccessDurationMs: row.duration_ms ?? undefined,
      lastSuccessBytes: row.bytes === null ? undefined : Number(row.bytes),
    });
  }
  return digest;
}

/**
 * Per project: the latest run and the latest successful run. One index seek per project and kind (the projects found
 * by a skip scan of runs_project_started, each one's newest run on that index, its newest success on
 * runs_status_project), not a read of every run: a fleet's audit holds hundreds of runs per project. `projects`:
 * of those only.
 */
export async function projectRuns(
  db: Kysely<Database>,
  projects?: string[],
): Promise<Map<string, { lastRun?: RunSummary; lastSuccess?: RunSummary }>> {
  const result = new Map<string, { lastRun?: RunSummary; lastSuccess?: RunSummary }>();
  // The projects: the skip scan, or those asked for (the page of one project).
  const known = projects?.length
    ? sql`known(project) AS (SELECT DISTINCT project FROM runs WHERE project IN (${sql.join(projects)}))`
    : sql`known(project) AS (
      SELECT min(project) FROM runs
      UNION ALL
      SELECT (SELECT min(project) FROM runs WHERE project > known.project) FROM known WHERE known.project IS NOT NULL
    )`;
  const { rows } = await sql<RunSummary & { kind: "last" | "success" }>`WITH RECURSIVE ${known},
    picked(kind, id) AS (
      SELECT 'last', (SELECT id FROM runs WHERE project = known.project ORDER BY started_at DESC LIMIT 1)
        FROM known WHERE known.project IS NOT NULL
      UNION ALL
      SELECT 'success', (SELECT id FROM runs WHERE status = 'succeeded' AND project = known.project
          ORDER BY started_at DESC LIMIT 1)
        FROM known WHERE known.project IS NOT NULL
    )
    SELECT picked.kind, r.id, r.project, r.status, r.started_at, r.finished_at, r.duration_ms, r.error
    FROM picked JOIN runs r ON r.id = picked.id`.execute(db);
  for (const row of rows) {
    const { kind, ...run } = row;
    const summary: RunSummary = { ...run, duration_ms: run.duration_ms === null ? null : Number(run.duration_ms) };
    const entry = result.get(run.project) ?? {};
    if (kind === "last") entry.lastRun = summary;
    else entry.lastSuccess = summary;
    result.set(run.project, entry);
  }
  return result;
}

/** Per repository, its last check (for `status`). */
export async function repositoryChecks(db: Kysely<Database>): Promise<Map<string, RepositoryCheck>> {
  const rows = await db.selectFrom("repositories").select(["name", "last_check_at", "last_check_status"]).execute();
  return new Map(
    rows.map((r) => [r.name, r.last_check_at ? { at: r.last_check_at, status: r.last_check_status ?? "ok" } : null]),
  );
}

/** Snapshot counts and newest snapshot time per (repository, project). */
export async function snapshotCounts(
  db: Kysely<Database>,
): Promise<{ repository: string; project: string | null; count: number; newest: string }[]> {
  const rows = await db.selectFrom("snapshots")
    .select([
      "repository",
      "project",
      (eb) => eb.fn.countAll<number>().as("count"),
      (eb) => eb.fn.max("time").as("newest"),
    ])
    .groupBy(["repository", "project"]).execute();
  return rows.map((row) => ({ ...row, count: Number(row.count) }));
}

/** A snapshot's columns in the table's order: the inventory as restic lists it, without what triggers keep. */
const snapshotColumns: readonly (keyof SnapshotTable)[] = [
  "repository",
  "id",
  "short_id",
  "time",
  "project",
  "source",
  "run_id",
  "hostname",
  "tags",
  "paths",
  "size",
  "recorded_at",
  "original",
];

/** The inventory, oldest first, of some projects or one repository. */
export async function listSnapshots(
  db: Kysely<Database>,
  filter: { projects?: string[]; repository?: string },
): Promise<SnapshotTable[]> {
  let query = db.selectFrom("snapshots").select(snapshotColumns).orderBy("time").orderBy("repository");
  if (filter.projects?.length) query = query.where("project", "in", filter.projects);
  if (filter.repository) query = query.where("repository", "=", filter.repository);
  return await query.execute();
}

/** The ids of a repository's snapshots in the inventory. */
export async function snapshotIds(db: Kysely<Database>, repository: string): Promise<string[]> {
  const rows = await db.selectFrom("snapshots").select("id").where("repository", "=", repository).execute();
  return rows.map((row) => row.id);
}
