/**
 * The planner's read model: everything `plan` needs from the state database (ObservedState), how far backupctl
 * vouches for each snapshot of the inventory, and the runs startup recovery must judge. Reads only.
 */
import type { Kysely } from "kysely";
import type {
  BackupRecord,
  InventorySnapshot,
  MaintenanceRecord,
  ObservedState,
  SnapshotState,
} from "../plan/types.ts";
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

/**
 * Everything the planner needs, in a few indexed queries. `deadRuns`: runs still marked running whose process is
 * gone (judged by the caller); their snapshots count as partial like those of failed and interrupted runs.
 */
export async function observe(db: Kysely<Database>, options: { deadRuns?: string[] } = {}): Promise<ObservedState> {
  const repositories: ObservedState["repositories"] = {};
  for (const row of await db.selectFrom("repositories").select(["name", "initialized_at"]).execute()) {
    repositories[row.name] = {
      initialized: row.initialized_at !== null,
      initializedAt: row.initialized_at ?? undefined,
    };
  }
  const latest = (status: StageStatus) =>
    db.selectFrom("stages")
      .select(["project", "source", "repository", (eb) => eb.fn.max("started_at").as("at")])
      .where("type", "=", "backup").where("status", "=", status)
      .groupBy(["project", "source", "repository"]).execute();
  const toRecords = (
    rows: { project: string | null; source: string | null; repository: string | null; at: string }[],
  ) =>
    rows.filter((r) => r.project && r.source && r.repository)
      .map((r) => ({ project: r.project!, source: r.source!, repository: r.repository!, at: r.at }));
  const backups: BackupRecord[] = toRecords(await latest("succeeded"));
  const successAt = new Map(backups.map((b) => [`${b.project}\0${b.source}\0${b.repository}`, b.at]));
  const failures = toRecords(await latest("failed"))
    .filter((f) => (successAt.get(`${f.project}\0${f.source}\0${f.repository}`) ?? "") < f.at);
  const snapshots = (await db.selectFrom("snapshots")
    .select(["repository", "id", "short_id", "time", "project", "source", "run_id", "hostname", "tags", "original"])
    .orderBy("time", "desc").execute())
    .map((row) => ({ ...row, tags: JSON.parse(row.tags) as string[] }));
  const states = await snapshotStates(db, options);
  for (const snapshot of snapshots as InventorySnapshot[]) {
    snapshot.state = states.get(`${snapshot.repository}\u0000${snapshot.id}`) ?? "adopted";
  }
  const retention = (await db.selectFrom("retention_policies").selectAll().execute())
    .map((row) => ({
      project: row.project,
      source: row.source,
      repository: row.repository,
      policy: row.policy,
      at: row.applied_at,
    }));
  const maintenance: MaintenanceRecord[] = [];
  for (const type of ["prune", "check", "forget"] as const) {
    const rows = await db.selectFrom("stages")
      .select(["repository", (eb) => eb.fn.max("started_at").as("at")])
      .where("type", "=", type).where("status", "=", "succeeded").groupBy("repository").execute();
    for (const row of rows) if (row.repository) maintenance.push({ type, repository: row.repository, at: row.at });
  }
  // The latest prune attempt, whatever became of it: a later one than the last success failed or was cut short.
  for (
    const row of await db.selectFrom("stages")
      .select(["repository", (eb) => eb.fn.max("started_at").as("at")])
      .where("type", "=", "prune").groupBy("repository").execute()
  ) if (row.repository) maintenance.push({ type: "prune_attempt", repository: row.repository, at: row.at });
  const drills = await db.selectFrom("stages")
    .select(["project", (eb) => eb.fn.max("started_at").as("at")])
    .where("type", "=", "verify").where("status", "=", "succeeded").groupBy("project").execute();
  for (const row of drills) if (row.project) maintenance.push({ type: "verify", project: row.project, at: row.at });
  const knownProjects = (await db.selectFrom("runs").select("project").distinct().execute()).map((r) => r.project);
  const plans = await db.selectFrom("applied_plans").select(["plan_id", "held"]).execute();
  const appliedPlans = plans.map((r) => r.plan_id);
  const heldPlans: Record<string, string[]> = {};
  for (const row of plans) if (row.held) heldPlans[row.plan_id] = JSON.parse(row.held) as string[];
  // Snapshots forgotten in each repository since its last successful prune (forgets before the count was kept: 0).
  const forgottenSincePrune = new Map(
    (await db.selectFrom("stages as f")
      .select(["f.repository", (eb) => eb.fn.sum<number>(eb.fn.coalesce("f.forgotten", eb.lit(0))).as("n")])
      .where("f.type", "=", "forget").where("f.status", "=", "succeeded")
      .where((eb) =>
        eb(
          "f.started_at",
          ">",
          (sub) =>
            sub.selectFrom("stages as p").select((p) => p.fn.coalesce(p.fn.max("p.started_at"), p.val("")).as("at"))
              .where("p.type", "=", "prune").where("p.status", "=", "succeeded")
              .whereRef("p.repository", "=", "f.repository"),
        )
      )
      .groupBy("f.repository").execute())
      .map((row) => [row.repository, Number(row.n)]),
  );
  for (const record of maintenance) {
    if (record.type === "forget") record.forgotten = forgottenSincePrune.get(record.repository ?? null) ?? 0;
  }
  const partials = (await db.selectFrom("stages")
    .select(["project", "source", "repository", "snapshot_id", "run_id"])
    .where("type", "=", "backup").where("status", "=", "failed").where("snapshot_id", "is not", null).execute())
    .filter((r) => r.project && r.source && r.repository)
    .map((r) => ({
      project: r.project!,
      source: r.source!,
      repository: r.repository!,
      snapshot: r.snapshot_id!,
      runId: r.run_id,
    }));
  for (const partial of await unfinishedRunSnapshots(db, options.deadRuns ?? [])) {
    const known = partials.some((p) =>
      p.repository === partial.repository &&
      (partial.snapshot.startsWith(p.snapshot) || p.snapshot === partial.snapshot)
    );
    if (!known) partials.push(partial);
  }
  return {
    lineage: await lineage(db),
    serial: await serial(db),
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

/**
 * Snapshots tagged with the id of a run that did not succeed (failed, interrupted, or running in a process that is
 * gone) and not recorded as the result of one of its successful stages, directly or as the original of a copy: what
 * restic made of a stream cut by a crash. Snapshots of runs the audit does not know are never judged.
 */
async function unfinishedRunSnapshots(db: Kysely<Database>, deadRuns: string[]): Promise<ObservedState["partials"]> {
  const candidates = await db.selectFrom("snapshots")
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
    )
    .execute();
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
  const rows = await db.selectFrom("snapshots").select(["repository", "id", "original", "project", "run_id"])
    .execute();
  const recorded = (await db.selectFrom("stages").select("snapshot_id")
    .where("type", "=", "backup").where("status", "=", "succeeded").where("snapshot_id", "is not", null).execute())
    .map((row) => row.snapshot_id!);
  // Recorded ids may be short (restic 0.14 reports 8 characters): index them by their first 8.
  const byPrefix = new Map<string, string[]>();
  for (const id of recorded) byPrefix.set(id.slice(0, 8), [...byPrefix.get(id.slice(0, 8)) ?? [], id]);
  const isRecorded = (id: string | null) =>
    id !== null && (byPrefix.get(id.slice(0, 8)) ?? []).some((done) => id.startsWith(done) || done.startsWith(id));
  const runIds = [...new Set(rows.map((row) => row.run_id).filter((id): id is string => id !== null))];
  const runs = new Map<string, string>();
  for (let i = 0; i < runIds.length; i += 500) {
    for (
      const run of await db.selectFrom("runs").select(["id", "status"]).where(
        "id",
        "in",
        runIds.slice(i, i + 500),
      )
        .execute()
    ) runs.set(run.id, run.status);
  }
  const dead = new Set(options.deadRuns ?? []);
  const states = new Map<string, SnapshotState>();
  for (const row of rows) {
    let state: SnapshotState;
    if (isRecorded(row.id) || isRecorded(row.original)) state = "complete";
    else if (row.project === null || row.run_id === null || !runs.has(row.run_id)) state = "adopted";
    else if (runs.get(row.run_id) === "running" && !dead.has(row.run_id)) state = "pending";
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
