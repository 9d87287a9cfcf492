/**
 * The state database: run audit, stages, snapshot inventory, repositories, outbox, lineage and serial.
 * Opened in WAL mode with a busy timeout; the folder is 0700 and the files 0600.
 */
import { randomUUID } from "node:crypto";
import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from "node:fs";
import { dirname, join } from "node:path";
import { Kysely, Migrator, sql } from "kysely";
import type { BackupRecord, MaintenanceRecord, ObservedState } from "../plan/types.ts";
import { sqliteDialect } from "../runtime/sqlite.ts";
import { currentProcessStart } from "../runtime/process.ts";
import { migrationProvider } from "./migrations.ts";
import type { Database, RunStatus, SnapshotTable, StageStatus, StageType } from "./schema.ts";

export const stateFileName = "state.db";

/** Creates the state folder (0700) if needed. */
export function ensureStateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
}

export interface NewStage {
  runId: string | null;
  type: StageType;
  project?: string;
  source?: string;
  repository?: string;
  attempt?: number;
  startedAt: string;
}

export interface StageResult {
  status: StageStatus;
  finishedAt: string;
  durationMs: number;
  bytes?: number;
  snapshotId?: string;
  error?: string;
}

export class StateStore {
  private constructor(readonly db: Kysely<Database>, readonly path: string) {}

  /** The state folder. */
  get dir(): string {
    return dirname(this.path);
  }

  /** The 0700 folder for files a child process needs briefly (pgpass, an SSH key): `<state dir>/tmp`. */
  get privateDir(): string {
    return join(this.dir, "tmp");
  }

  /** Opens (creating and migrating when needed) the state database in `dir`. */
  static async open(dir: string): Promise<StateStore> {
    ensureStateDir(dir);
    const path = join(dir, stateFileName);
    if (!existsSync(path)) closeSync(openSync(path, "a", 0o600));
    chmodSync(path, 0o600);
    const db = new Kysely<Database>({ dialect: await sqliteDialect(path) });
    await sql`PRAGMA busy_timeout = 5000`.execute(db);
    await sql`PRAGMA journal_mode = WAL`.execute(db);
    await sql`PRAGMA synchronous = NORMAL`.execute(db);
    await sql`PRAGMA foreign_keys = ON`.execute(db);
    const { error } = await new Migrator({ db, provider: migrationProvider }).migrateToLatest();
    if (error) {
      await db.destroy();
      throw new Error(`cannot migrate the state database ${path}: ${(error as Error).message ?? String(error)}`);
    }
    await db.insertInto("meta").values({ key: "lineage", value: randomUUID() })
      .onConflict((c) => c.column("key").doNothing()).execute();
    for (const suffix of ["-wal", "-shm"]) {
      if (existsSync(path + suffix)) chmodSync(path + suffix, 0o600);
    }
    return new StateStore(db, path);
  }

  async close(): Promise<void> {
    await this.db.destroy();
  }

  async meta(key: string): Promise<string | undefined> {
    const row = await this.db.selectFrom("meta").select("value").where("key", "=", key).executeTakeFirst();
    return row?.value;
  }

  async lineage(): Promise<string> {
    return (await this.meta("lineage"))!;
  }

  async serial(): Promise<number> {
    return Number(await this.meta("serial") ?? "0");
  }

  /** Called once by every apply that changed state: saved plans made before it become stale. */
  async bumpSerial(): Promise<number> {
    await this.db.updateTable("meta").set({ value: sql`CAST(CAST(value AS INTEGER) + 1 AS TEXT)` })
      .where("key", "=", "serial").execute();
    return await this.serial();
  }

  async startRun(run: {
    id: string;
    project: string;
    command: string;
    startedAt: string;
    fingerprint: string;
    host: string;
  }): Promise<void> {
    await this.db.insertInto("runs").values({
      id: run.id,
      project: run.project,
      status: "running",
      command: run.command,
      started_at: run.startedAt,
      finished_at: null,
      duration_ms: null,
      pid: process.pid,
      process_start: currentProcessStart(),
      host: run.host,
      config_fingerprint: run.fingerprint,
      stage: null,
      error: null,
    }).execute();
  }

  async setRunStage(runId: string, stage: string | null): Promise<void> {
    await this.db.updateTable("runs").set({ stage }).where("id", "=", runId).execute();
  }

  async finishRun(runId: string, result: {
    status: RunStatus;
    finishedAt: string;
    durationMs: number;
    error?: string;
  }): Promise<void> {
    await this.db.updateTable("runs").set({
      status: result.status,
      finished_at: result.finishedAt,
      duration_ms: result.durationMs,
      error: result.error ?? null,
      stage: result.status === "succeeded" ? null : sql`stage`,
    }).where("id", "=", runId).execute();
  }

  async startStage(stage: NewStage): Promise<number> {
    const row = await this.db.insertInto("stages").values({
      run_id: stage.runId,
      type: stage.type,
      project: stage.project ?? null,
      source: stage.source ?? null,
      repository: stage.repository ?? null,
      attempt: stage.attempt ?? 1,
      status: "running",
      started_at: stage.startedAt,
      finished_at: null,
      duration_ms: null,
      bytes: null,
      snapshot_id: null,
      error: null,
    }).returning("id").executeTakeFirstOrThrow();
    return Number(row.id);
  }

  async finishStage(id: number, result: StageResult): Promise<void> {
    await this.db.updateTable("stages").set({
      status: result.status,
      finished_at: result.finishedAt,
      duration_ms: result.durationMs,
      bytes: result.bytes ?? null,
      snapshot_id: result.snapshotId ?? null,
      error: result.error ?? null,
    }).where("id", "=", id).execute();
  }

  async markRepositoryInitialized(name: string, location: string, at: string): Promise<void> {
    await this.db.insertInto("repositories")
      .values({
        name,
        location,
        initialized_at: at,
        last_refresh_at: null,
        last_check_at: null,
        last_check_status: null,
      })
      .onConflict((c) => c.column("name").doUpdateSet({ location, initialized_at: at })).execute();
  }

  /** Replaces a repository's inventory with what restic listed, in one transaction. */
  async replaceSnapshots(
    repository: string,
    snapshots: Omit<SnapshotTable, "repository">[],
    at: string,
  ): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      await trx.deleteFrom("snapshots").where("repository", "=", repository).execute();
      for (const snapshot of snapshots) {
        await trx.insertInto("snapshots").values({ ...snapshot, repository }).execute();
      }
      // A dump snapshot's size is what its stage streamed (restic 0.14 does not report snapshot sizes).
      await sql`UPDATE snapshots SET size = COALESCE((SELECT s.bytes FROM stages s
        WHERE (s.snapshot_id = snapshots.id OR s.snapshot_id = snapshots.short_id) AND s.status = 'succeeded' LIMIT 1), size)
        WHERE repository = ${repository}`.execute(trx);
      await trx.updateTable("repositories").set({ last_refresh_at: at }).where("name", "=", repository).execute();
    });
  }

  /**
   * Everything the planner needs, in a few indexed queries. `deadRuns`: runs still marked running whose process is
   * gone (judged by the caller); their snapshots count as partial like those of failed and interrupted runs.
   */
  async observe(options: { deadRuns?: string[] } = {}): Promise<ObservedState> {
    const repositories: ObservedState["repositories"] = {};
    for (const row of await this.db.selectFrom("repositories").select(["name", "initialized_at"]).execute()) {
      repositories[row.name] = {
        initialized: row.initialized_at !== null,
        initializedAt: row.initialized_at ?? undefined,
      };
    }
    const latest = (status: StageStatus) =>
      this.db.selectFrom("stages")
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
    const snapshots = (await this.db.selectFrom("snapshots")
      .select(["repository", "id", "short_id", "time", "project", "source", "run_id", "hostname", "tags", "original"])
      .orderBy("time", "desc").execute())
      .map((row) => ({ ...row, tags: JSON.parse(row.tags) as string[] }));
    const retention = (await this.db.selectFrom("retention_policies").selectAll().execute())
      .map((row) => ({
        project: row.project,
        source: row.source,
        repository: row.repository,
        policy: row.policy,
        at: row.applied_at,
      }));
    const maintenance: MaintenanceRecord[] = [];
    for (const type of ["prune", "check"] as const) {
      const rows = await this.db.selectFrom("stages")
        .select(["repository", (eb) => eb.fn.max("started_at").as("at")])
        .where("type", "=", type).where("status", "=", "succeeded").groupBy("repository").execute();
      for (const row of rows) if (row.repository) maintenance.push({ type, repository: row.repository, at: row.at });
    }
    const drills = await this.db.selectFrom("stages")
      .select(["project", (eb) => eb.fn.max("started_at").as("at")])
      .where("type", "=", "verify").where("status", "=", "succeeded").groupBy("project").execute();
    for (const row of drills) if (row.project) maintenance.push({ type: "verify", project: row.project, at: row.at });
    const knownProjects = (await this.db.selectFrom("runs").select("project").distinct().execute()).map((r) =>
      r.project
    );
    const appliedPlans = (await this.db.selectFrom("applied_plans").select("plan_id").execute()).map((r) => r.plan_id);
    const partials = (await this.db.selectFrom("stages")
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
    for (const partial of await this.unfinishedRunSnapshots(options.deadRuns ?? [])) {
      const known = partials.some((p) =>
        p.repository === partial.repository &&
        (partial.snapshot.startsWith(p.snapshot) || p.snapshot === partial.snapshot)
      );
      if (!known) partials.push(partial);
    }
    return {
      lineage: await this.lineage(),
      serial: await this.serial(),
      repositories,
      backups,
      failures,
      snapshots,
      retention,
      maintenance,
      knownProjects,
      knownRepositories: Object.keys(repositories),
      appliedPlans,
      partials,
    };
  }

  /**
   * Snapshots tagged with the id of a run that did not succeed (failed, interrupted, or running in a process that is
   * gone) and not recorded as the result of one of its successful stages, directly or as the original of a copy: what
   * restic made of a stream cut by a crash. Snapshots of runs the audit does not know are never judged.
   */
  private async unfinishedRunSnapshots(deadRuns: string[]): Promise<ObservedState["partials"]> {
    const candidates = await this.db.selectFrom("snapshots")
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
    const complete = (await this.db.selectFrom("stages").select("snapshot_id")
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

  /** Runs the audit shows as running: the caller judges whether their process still lives. */
  async runningRuns(): Promise<
    {
      id: string;
      project: string;
      pid: number;
      processStart: string | null;
      host: string;
      stage: string | null;
      startedAt: string;
    }[]
  > {
    const rows = await this.db.selectFrom("runs")
      .select(["id", "project", "pid", "process_start", "host", "stage", "started_at"])
      .where("status", "=", "running").orderBy("started_at").execute();
    return rows.map((row) => ({
      id: row.id,
      project: row.project,
      pid: row.pid,
      processStart: row.process_start,
      host: row.host,
      stage: row.stage,
      startedAt: row.started_at,
    }));
  }

  /** Marks a run of a dead process interrupted (keeping the stage it was in), and its unfinished stages with it. */
  async markRunInterrupted(runId: string, at: string, reason: string): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      await trx.updateTable("runs").set({ status: "interrupted", finished_at: at, error: reason })
        .where("id", "=", runId).where("status", "=", "running").execute();
      await trx.updateTable("stages").set({ status: "interrupted", finished_at: at, error: reason })
        .where("run_id", "=", runId).where("status", "=", "running").execute();
    });
  }

  /** Records the policy now applied to a retention group (after its forget ran, or when nothing was due). */
  async recordRetention(group: { project: string; source: string; repository: string }, policy: string, at: string) {
    await this.db.insertInto("retention_policies").values({ ...group, policy, applied_at: at })
      .onConflict((c) => c.columns(["project", "source", "repository"]).doUpdateSet({ policy, applied_at: at }))
      .execute();
  }

  async markPlanApplied(planId: string, at: string): Promise<void> {
    await this.db.insertInto("applied_plans").values({ plan_id: planId, applied_at: at }).execute();
  }

  async recordCheck(repository: string, at: string, status: string): Promise<void> {
    await this.db.updateTable("repositories").set({ last_check_at: at, last_check_status: status })
      .where("name", "=", repository).execute();
  }

  /** Per project: the latest run and the latest successful run. */
  async projectRuns(): Promise<Map<string, { lastRun?: RunSummary; lastSuccess?: RunSummary }>> {
    const result = new Map<string, { lastRun?: RunSummary; lastSuccess?: RunSummary }>();
    const latest = (succeededOnly: boolean) => {
      let query = this.db.selectFrom("runs as r")
        .select(["r.id", "r.project", "r.status", "r.started_at", "r.finished_at", "r.duration_ms", "r.error"])
        .where("r.started_at", "=", (eb) => {
          let inner = eb.selectFrom("runs as i").select((e) => e.fn.max("i.started_at").as("m"))
            .whereRef("i.project", "=", "r.project");
          if (succeededOnly) inner = inner.where("i.status", "=", "succeeded");
          return inner;
        });
      if (succeededOnly) query = query.where("r.status", "=", "succeeded");
      return query.execute();
    };
    for (const row of await latest(false)) result.set(row.project, { lastRun: row });
    for (const row of await latest(true)) result.set(row.project, { ...result.get(row.project), lastSuccess: row });
    return result;
  }

  /** Snapshot counts and newest snapshot time per (repository, project). */
  async snapshotCounts(): Promise<{ repository: string; project: string | null; count: number; newest: string }[]> {
    const rows = await this.db.selectFrom("snapshots")
      .select([
        "repository",
        "project",
        (eb) => eb.fn.countAll<number>().as("count"),
        (eb) => eb.fn.max("time").as("newest"),
      ])
      .groupBy(["repository", "project"]).execute();
    return rows.map((row) => ({ ...row, count: Number(row.count) }));
  }

  async listSnapshots(filter: { projects?: string[]; repository?: string }): Promise<SnapshotTable[]> {
    let query = this.db.selectFrom("snapshots").selectAll().orderBy("time").orderBy("repository");
    if (filter.projects?.length) query = query.where("project", "in", filter.projects);
    if (filter.repository) query = query.where("repository", "=", filter.repository);
    return await query.execute();
  }
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
