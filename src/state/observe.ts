/**
 * The planner's read model: everything `plan` needs from the state database (ObservedState), how far backupctl
 * vouches for each snapshot of the inventory, and the runs startup recovery must judge. Reads only.
 */
import { type Kysely, sql } from "kysely";
import type {
  BackupRecord,
  InventorySnapshot,
  MaintenanceRecord,
  ObservedState,
  SnapshotState,
} from "../plan/types.ts";
import type { StateDialect } from "./dialect.ts";
import type { Database, StageStatus } from "./schema.ts";

/** A value of the meta table (lineage, serial), undefined when not set. */
export async function meta(db: Kysely<Database>, key: string): Promise<string | undefined> {
  const row = await db.selectFrom("meta").select("value").where("key", "=", key).executeTakeFirst();
  return row?.value;
}

/** The state's lineage: set once when the database is created, it tells a saved plan made for another state. */
export async function lineage(db: Kysely<Database>): Promise<string> {
  const value = await meta(db, "lineage");
  if (value === undefined) throw new Error("the state database has no lineage: it was not opened by StateStore.open");
  return value;
}

/** The state's serial: bumped by every apply that changed state, it tells a saved plan made before. */
export async function serial(db: Kysely<Database>): Promise<number> {
  return Number(await meta(db, "serial") ?? "0");
}

export interface ObserveOptions {
  /** Runs still marked running whose process is gone (judged by the caller). */
  deadRuns?: string[];
  /**
   * Only what these projects' own actions need: their snapshots, backups and partial snapshots (an index seek each,
   * not a read of the inventory). Repository-wide figures (a repository's snapshot count for the prune share, the
   * projects no longer configured) then cover only these projects: for a caller that keeps only the projects'
   * actions (a fleet's project unit), never for a plan shown or applied whole.
   */
  projects?: string[];
  /**
   * False: leave the snapshot inventory out (no snapshots, no partial snapshots): what is due and overdue comes from
   * the audit alone, so `status` and the dashboard's overview plan without reading 100,000 snapshots. Such a plan has
   * no forgets, copies or recoveries and must not be applied.
   */
  inventory?: boolean;
}

/**
 * Everything the planner needs, in a few indexed queries. `deadRuns`: runs still marked running whose process is
 * gone (judged by the caller); their snapshots count as partial like those of failed and interrupted runs.
 *
 * The queries are sent at once: on PostgreSQL each goes to a connection of the pool and the server runs them side by
 * side while this process reads the rows of another (the inventory); SQLite's driver runs them one after the other.
 */
export async function observe(
  db: Kysely<Database>,
  options: ObserveOptions = {},
  dialect: Pick<StateDialect, "inventoryAsText"> = { inventoryAsText: false },
): Promise<ObservedState> {
  // An empty list is no scope (and `IN ()` no SQL).
  const projects = options.projects?.length ? options.projects : undefined;
  const withInventory = options.inventory !== false;
  // The newest stage per group, from latest_stages (one row per group; see migrations.ts).
  const latest = async (status: StageStatus) => {
    let query = db.selectFrom("latest_stages").select(["project", "source", "repository", "started_at as at"])
      .where("type", "=", "backup").where("status", "=", status);
    if (projects) query = query.where("project", "in", projects);
    return (await query.execute()).map((row) => ({
      project: row.project || null,
      source: row.source || null,
      repository: row.repository || null,
      at: row.at,
    }));
  };
  let failedBackups = db.selectFrom("stages").select(["project", "source", "repository", "snapshot_id", "run_id"])
    .where("type", "=", "backup").where("status", "=", "failed").where("snapshot_id", "is not", null);
  if (projects) failedBackups = failedBackups.where("project", "in", projects);
  const latestPerRepository = async (type: "prune" | "check" | "forget", status?: "succeeded") => {
    let query = db.selectFrom("latest_stages").select(["repository", (eb) => eb.fn.max("started_at").as("at")])
      .where("type", "=", type);
    if (status) query = query.where("status", "=", status);
    const rows = await query.groupBy("repository").execute();
    return rows.map((row) => ({ repository: row.repository || null, at: row.at }));
  };
  // Asked first: the longest read takes the connection the pool already holds, while the others wait for theirs.
  const snapshotsRead = withInventory
    ? (dialect.inventoryAsText ? inventoryAsText(db, projects) : inventory(db, projects))
    : [];
  const [
    repositoryRows,
    succeeded,
    failed,
    snapshots,
    states,
    retentionRows,
    [pruned, checked, forgotten, pruneAttempts, drills],
    knownProjects,
    plans,
    forgottenSincePrune,
    failedWithSnapshot,
    unfinished,
    lineageValue,
    serialValue,
  ] = await Promise.all([
    db.selectFrom("repositories").select(["name", "initialized_at"]).execute(),
    latest("succeeded"),
    latest("failed"),
    snapshotsRead,
    withInventory ? unvouchedSnapshots(db, { ...options, projects }) : new Map<string, SnapshotState>(),
    db.selectFrom("retention_policies").selectAll().execute(),
    Promise.all([
      latestPerRepository("prune", "succeeded"),
      latestPerRepository("check", "succeeded"),
      latestPerRepository("forget", "succeeded"),
      // The latest prune attempt, whatever became of it: a later one than the last success failed or was cut short.
      latestPerRepository("prune"),
      db.selectFrom("latest_stages").select(["project", (eb) => eb.fn.max("started_at").as("at")])
        .where("type", "=", "verify").where("status", "=", "succeeded").groupBy("project").execute()
        .then((rows) => rows.map((row) => ({ project: row.project || null, at: row.at }))),
    ]),
    distinctProjects(db),
    db.selectFrom("applied_plans").select(["plan_id", "held"]).execute(),
    forgottenPerRepository(db),
    withInventory ? failedBackups.execute() : [],
    withInventory ? unfinishedRunSnapshots(db, options.deadRuns ?? [], projects) : [],
    lineage(db),
    serial(db),
  ]);
  const repositories: ObservedState["repositories"] = {};
  for (const row of repositoryRows) {
    repositories[row.name] = {
      initialized: row.initialized_at !== null,
      initializedAt: row.initialized_at ?? undefined,
    };
  }
  const toRecords = (
    rows: { project: string | null; source: string | null; repository: string | null; at: string }[],
  ) =>
    rows.filter((r) => r.project && r.source && r.repository)
      .map((r) => ({ project: r.project!, source: r.source!, repository: r.repository!, at: r.at }));
  const backups: BackupRecord[] = toRecords(succeeded);
  const successAt = new Map(backups.map((b) => [`${b.project}\0${b.source}\0${b.repository}`, b.at]));
  const failures = toRecords(failed)
    .filter((f) => (successAt.get(`${f.project}\0${f.source}\0${f.repository}`) ?? "") < f.at);
  // Every snapshot was read as complete; usually none is not.
  if (states.size > 0) {
    for (const snapshot of snapshots) {
      const state = states.get(`${snapshot.repository}\u0000${snapshot.id}`);
      if (state) snapshot.state = state;
    }
  }
  const retention = retentionRows.map((row) => ({
    project: row.project,
    source: row.source,
    repository: row.repository,
    policy: row.policy,
    at: row.applied_at,
  }));
  const maintenance: MaintenanceRecord[] = [];
  for (const [type, rows] of [["prune", pruned], ["check", checked], ["forget", forgotten]] as const) {
    for (const row of rows) if (row.repository) maintenance.push({ type, repository: row.repository, at: row.at });
  }
  for (const row of pruneAttempts) {
    if (row.repository) maintenance.push({ type: "prune_attempt", repository: row.repository, at: row.at });
  }
  for (const row of drills) if (row.project) maintenance.push({ type: "verify", project: row.project, at: row.at });
  const appliedPlans = plans.map((r) => r.plan_id);
  const heldPlans: Record<string, string[]> = {};
  for (const row of plans) if (row.held) heldPlans[row.plan_id] = JSON.parse(row.held) as string[];
  for (const record of maintenance) {
    if (record.type === "forget") record.forgotten = forgottenSincePrune.get(record.repository ?? null) ?? 0;
  }
  const partials = failedWithSnapshot
    .filter((r) => r.project && r.source && r.repository)
    .map((r) => ({
      project: r.project!,
      source: r.source!,
      repository: r.repository!,
      snapshot: r.snapshot_id!,
      runId: r.run_id,
    }));
  for (const partial of unfinished) {
    const known = partials.some((p) =>
      p.repository === partial.repository &&
      (partial.snapshot.startsWith(p.snapshot) || p.snapshot === partial.snapshot)
    );
    if (!known) partials.push(partial);
  }
  return {
    lineage: lineageValue,
    serial: serialValue,
    repositories,
    backups,
    failures,
    snapshots,
    retention,
    maintenance,
    knownProjects,
    knownRepositories: Object.keys(repositories),
    appliedPlans,
    heldPlans,
    partials,
  };
}

/** Snapshots forgotten in each repository since its last successful prune (forgets before the count was kept: 0). */
async function forgottenPerRepository(db: Kysely<Database>): Promise<Map<string | null, number>> {
  const rows = await db.selectFrom("stages as f")
    // Each repository's last successful prune, joined once (not looked up again for every forget).
    .leftJoin(
      (eb) =>
        eb.selectFrom("stages").select(["repository", (e) => e.fn.max("started_at").as("at")])
          .where("type", "=", "prune").where("status", "=", "succeeded").groupBy("repository").as("p"),
      (join) => join.onRef("p.repository", "=", "f.repository"),
    )
    .select(["f.repository", (eb) => eb.fn.sum<number>(eb.fn.coalesce("f.forgotten", eb.lit(0))).as("n")])
    .where("f.type", "=", "forget").where("f.status", "=", "succeeded")
    .where((eb) => eb("f.started_at", ">", eb.fn.coalesce("p.at", eb.val(""))))
    .groupBy("f.repository").execute();
  return new Map(rows.map((row) => [row.repository, Number(row.n)]));
}

/**
 * The projects the audit has runs of, in order. One index seek per project (a skip scan of runs_project_started, as a
 * recursive query), not a read of every run: a fleet's audit holds hundreds of runs per project.
 */
async function distinctProjects(db: Kysely<Database>): Promise<string[]> {
  const { rows } = await sql<{ project: string | null }>`WITH RECURSIVE known(project) AS (
      SELECT min(project) FROM runs
      UNION ALL
      SELECT (SELECT min(project) FROM runs WHERE project > known.project) FROM known WHERE known.project IS NOT NULL
    )
    SELECT project FROM known WHERE project IS NOT NULL`.execute(db);
  return rows.map((row) => row.project).filter((project): project is string => project !== null);
}

/**
 * The snapshot inventory, newest first: the columns the planner uses, not the tags (nothing that plans uses them). The
 * rows are sorted here: the database sorted the wide rows in a temporary tree, slower than sorting the objects. (With
 * node:sqlite's rows read as arrays, runtime/sqlite-node.ts, nine plain columns read faster than fewer joined in SQL
 * and split here; a PostgreSQL state reads them joined, see {@link inventoryAsText}.)
 */
async function inventory(db: Kysely<Database>, projects?: string[]): Promise<InventorySnapshot[]> {
  let query = db.selectFrom("snapshots")
    .select(["repository", "id", "short_id", "time", "original", "project", "source", "run_id", "hostname"]);
  if (projects) query = query.where("project", "in", projects);
  const rows = await query.execute();
  const [repositories, sources, hostnames] = [new Repeated(), new Repeated(), new Repeated()];
  return newestFirst(rows.map((row) =>
    snapshotOf(
      repositories.same(row.repository),
      row.id,
      row.short_id,
      row.time,
      row.original,
      row.project,
      sources.same(row.source),
      row.run_id,
      hostnames.same(row.hostname),
    )
  ));
}

/**
 * A field's value as the previous snapshot had it, when this one's is equal: an inventory repeats its repository, its
 * sources and its host names from row to row, and one string kept for a run of rows instead of one per row is less
 * for the garbage collector to copy, and a map's hash of it is worked out once.
 */
class Repeated {
  #last: string | null = null;
  same(value: string): string;
  same(value: string | null): string | null;
  same(value: string | null): string | null {
    if (value !== this.#last) this.#last = value;
    return this.#last;
  }
}

/**
 * The inventory as {@link inventory} reads it, each snapshot one text value (see StateDialect.inventoryAsText): the
 * fields from tags and restic's host name follow restic's, after one that says which of project, source and run id are
 * set ("1") or null ("0"). Those fields are free text: when one holds a line break (a snapshot splits into more than
 * its ten fields), the inventory is read again as {@link inventory} reads it.
 */
async function inventoryAsText(db: Kysely<Database>, projects?: string[]): Promise<InventorySnapshot[]> {
  const set = (column: "project" | "source" | "run_id") =>
    sql<string>`CASE WHEN ${sql.ref(column)} IS NULL THEN '0' ELSE '1' END`;
  let query = db.selectFrom("snapshots")
    .select(
      sql<string>`${sql.ref("repository")} || ${"\n"} || ${sql.ref("id")} || ${"\n"} || ${sql.ref("short_id")}
        || ${"\n"} || ${sql.ref("time")} || ${"\n"} || coalesce(${sql.ref("original")}, '') || ${"\n"}
        || ${set("project")} || ${set("source")} || ${set("run_id")} || ${"\n"} || coalesce(${sql.ref("project")}, '')
        || ${"\n"} || coalesce(${sql.ref("source")}, '') || ${"\n"} || coalesce(${sql.ref("run_id")}, '') || ${"\n"}
        || ${sql.ref("hostname")}`.as("joined"),
    );
  if (projects) query = query.where("project", "in", projects);
  const rows = await query.execute();
  const one = "1".charCodeAt(0);
  const snapshots: InventorySnapshot[] = [];
  const [repositories, sources, hostnames] = [new Repeated(), new Repeated(), new Repeated()];
  for (const row of rows) {
    const fields = row.joined.split("\n");
    if (fields.length !== 10) return await inventory(db, projects);
    const [repository, id, shortId, time, original, nulls, project, source, runId, hostname] = fields;
    snapshots.push(
      snapshotOf(
        repositories.same(repository),
        id,
        shortId,
        time,
        original,
        nulls.charCodeAt(0) === one ? project : null,
        sources.same(nulls.charCodeAt(1) === one ? source : null),
        nulls.charCodeAt(2) === one ? runId : null,
        hostnames.same(hostname),
      ),
    );
  }
  return newestFirst(snapshots);
}

/**
 * A snapshot of the inventory, every field set at once, `state` too (observe() changes the few that are not
 * complete): objects of one shape, never grown one property at a time.
 */
function snapshotOf(
  repository: string,
  id: string,
  shortId: string,
  time: string,
  original: string | null,
  project: string | null,
  source: string | null,
  runId: string | null,
  hostname: string,
): InventorySnapshot {
  return {
    repository,
    id,
    short_id: shortId,
    time,
    project,
    source,
    run_id: runId,
    hostname,
    // An empty one is none (the text form writes a null as nothing).
    original: original || null,
    state: "complete",
  };
}

/** Snapshots of the same second in one order whatever order the database read them in: by repository, then id. */
function newestFirst(snapshots: InventorySnapshot[]): InventorySnapshot[] {
  const descending = (a: string, b: string) => (a < b ? 1 : a > b ? -1 : 0);
  return snapshots.sort((a, b) =>
    descending(a.time, b.time) || descending(a.repository, b.repository) || descending(a.id, b.id)
  );
}

/**
 * Snapshots tagged with the id of a run that did not succeed (failed, interrupted, or running in a process that is
 * gone) and not recorded as the result of one of its successful stages, directly or as the original of a copy: what
 * restic made of a stream cut by a crash. Snapshots of runs the audit does not know are never judged.
 */
async function unfinishedRunSnapshots(
  db: Kysely<Database>,
  deadRuns: string[],
  projects?: string[],
): Promise<ObservedState["partials"]> {
  let query = db.selectFrom("snapshots")
    .innerJoin("runs", "runs.id", "snapshots.run_id")
    .select([
      "snapshots.repository",
      "snapshots.id",
      "snapshots.original",
      "snapshots.project",
      "snapshots.source",
      "snapshots.run_id",
    ])
    .where((eb) =>
      deadRuns.length > 0
        ? eb.or([eb("runs.status", "in", ["failed", "interrupted"]), eb("runs.id", "in", deadRuns)])
        : eb("runs.status", "in", ["failed", "interrupted"])
    );
  if (projects) query = query.where("snapshots.project", "in", projects);
  const candidates = await query.execute();
  if (candidates.length === 0) return [];
  const runIds = [...new Set(candidates.map((c) => c.run_id!))];
  const complete = (await db.selectFrom("stages").select("snapshot_id")
    .where("run_id", "in", runIds).where("status", "=", "succeeded").where("snapshot_id", "is not", null).execute())
    .map((row) => row.snapshot_id!);
  const isComplete = (id: string | null) => id !== null && complete.some((done) => id.startsWith(done));
  return candidates
    .filter((c) => c.project && c.source && !isComplete(c.id) && !isComplete(c.original))
    .map((c) => ({
      project: c.project!,
      source: c.source!,
      repository: c.repository,
      snapshot: c.id,
      runId: c.run_id,
    }));
}

/**
 * How far backupctl vouches for each snapshot of the inventory, keyed `repository NUL id` (see {@link SnapshotState}).
 * `deadRuns`: runs still marked running whose process is gone (judged by the caller).
 */
export async function snapshotStates(
  db: Kysely<Database>,
  options: { deadRuns?: string[] } = {},
): Promise<Map<string, SnapshotState>> {
  const unvouched = await unvouchedSnapshots(db, options);
  const states = new Map<string, SnapshotState>();
  for (const row of await db.selectFrom("snapshots").select(["repository", "id"]).execute()) {
    const key = `${row.repository}\u0000${row.id}`;
    states.set(key, unvouched.get(key) ?? "complete");
  }
  return states;
}

/**
 * The states of the inventory's snapshots that no successful backup stage recorded, by their id or, for a copy, the
 * id of its original (see {@link snapshotStates}); every snapshot not in the map is complete.
 *
 * Triggers keep that on each snapshot row (`vouched`, migration 0014), so the database reads only the unvouched rows,
 * usually none, through their partial index, and the inventory is never matched against a long audit here. They come
 * back with their run's status.
 */
async function unvouchedSnapshots(
  db: Kysely<Database>,
  options: ObserveOptions,
): Promise<Map<string, SnapshotState>> {
  // A literal, not a parameter: SQLite uses a partial index only for the very terms of its WHERE clause.
  let query = db.selectFrom("snapshots as s")
    .leftJoin("runs as r", "r.id", "s.run_id")
    .select(["s.repository", "s.id", "s.project", "s.run_id", "r.status"])
    .where(sql<boolean>`s.vouched = 0`);
  if (options.projects) query = query.where("s.project", "in", options.projects);
  const rows = await query.execute();
  const dead = new Set(options.deadRuns ?? []);
  const states = new Map<string, SnapshotState>();
  for (const row of rows) {
    let state: SnapshotState;
    if (row.project === null || row.run_id === null || row.status === null) state = "adopted";
    else if (row.status === "running" && !dead.has(row.run_id)) state = "pending";
    else state = "incomplete";
    states.set(`${row.repository}\u0000${row.id}`, state);
  }
  return states;
}

/** Runs the audit shows as running: the caller judges whether their process still lives. */
export async function runningRuns(db: Kysely<Database>): Promise<
  {
    id: string;
    project: string;
    pid: number;
    processStart: string | null;
    host: string;
    stage: string | null;
    startedAt: string;
    runner: string | null;
    leaseToken: number | null;
  }[]
> {
  const rows = await db.selectFrom("runs")
    .select(["id", "project", "pid", "process_start", "host", "stage", "started_at", "runner", "lease_token"])
    .where("status", "=", "running").orderBy("started_at").execute();
  return rows.map((row) => ({
    id: row.id,
    project: row.project,
    pid: row.pid,
    processStart: row.process_start,
    host: row.host,
    stage: row.stage,
    startedAt: row.started_at,
    runner: row.runner,
    leaseToken: row.lease_token === null ? null : Number(row.lease_token),
  }));
}
