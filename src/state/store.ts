/**
 * The state database: run audit, stages, snapshot inventory, repositories, outbox, lineage and serial.
 * Opened in WAL mode with a busy timeout; the folder is 0700 and the files 0600.
 *
 * Every write goes through one wrapper. When the database cannot take it (locked past the busy timeout, read-only,
 * full, an I/O error, corrupt), the write is appended to the fallback file instead (fallback.ts) and the store turns
 * *degraded*: every later write of this store goes straight there, in order, without waiting a busy timeout each.
 * Any other error (a constraint, a bug) is thrown as before. `open` replays the fallback file into the database.
 */
import { randomInt, randomUUID } from "node:crypto";
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { Kysely, Migrator, type Selectable, sql, type UpdateResult } from "kysely";
import { StateUnwritableError, UsageError } from "../errors.ts";
import { logger } from "../log.ts";
import type {
  BackupRecord,
  InventorySnapshot,
  MaintenanceRecord,
  ObservedState,
  SnapshotState,
} from "../plan/types.ts";
import { sqliteDialect, type SqliteMode } from "../runtime/sqlite.ts";
import { currentProcessStart } from "../runtime/process.ts";
import {
  appendFallback,
  claimFallback,
  type FallbackArgs,
  fallbackFileName,
  type FallbackLine,
  type FallbackOp,
  type FallbackRecord,
  parseFallback,
  rejectedFileName,
  type RejectedLine,
  setAside,
} from "./fallback.ts";
import { latestMigration, migrationProvider } from "./migrations.ts";
import { explainFileError, stateFolderProblem } from "./writable.ts";
import type { Database, OutboxTable, RunStatus, SnapshotTable, StageStatus, StageType } from "./schema.ts";

export const stateFileName = "state.db";

/** How long a write waits for another process's lock when neither the option nor the environment says. */
export const defaultBusyTimeoutMs = 5000;

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
  /** What restic says a backup added to the repository (its summary's data_added). */
  bytesAdded?: number;
  /** For a forget: how many snapshots it removed. */
  forgotten?: number;
  snapshotId?: string;
  error?: string;
  /** What a stage that succeeded has to say (the lock it removed, restic's answer); errors go in `error`. */
  note?: string | null;
}

/** The kind `history` gives a run (its stages: backups, copies, hooks, refreshes); operations take their stage's type. */
export const runKind = "backup";

/** One line of `history`: a run with its stages, or an operation audited without a run (its one stage). */
export interface HistoryEntry {
  kind: string;
  run: Selectable<Database["runs"]> | null;
  stages: Selectable<Database["stages"]>[];
}

/** A notification to write to the outbox, in the same transaction as the result it reports. */
export interface NewNotification {
  /** The notifier's name in the config. */
  channel: string;
  event: string;
  project: string | null;
  runId: string | null;
  /** Set for events sent once per episode: a second notification with the same key is not enqueued. */
  key: string | null;
  /** The message as JSON (redacted; credentials stay in the config). */
  payload: string;
  createdAt: string;
  expiresAt: string;
}

/** What one delivery attempt did to an outbox row. */
export type DeliveryOutcome =
  | { delivered: string }
  | { failed: string; error: string; retryAt: string }
  | { givenUp: string; error: string };

export interface OpenOptions {
  /**
   * How long a write waits for a lock another process holds before the store falls back to fallback.jsonl.
   * Default: `BACKUPCTL_DB_BUSY_TIMEOUT_MS`, else 5000.
   */
  busyTimeoutMs?: number;
  /** Where the store's warnings go (the database became unwritable, replayed lines were rejected). Default: the log. */
  warn?: (message: string) => void;
}

/** What `open` replayed from fallback.jsonl. */
export interface FallbackReplay {
  /** Lines now in the database. */
  applied: number;
  /** Lines set aside in fallback.rejected.jsonl, each with its reason. */
  rejected: number;
}

export class StateStore {
  #degraded = false;
  #degradedBecause = "";
  #unwritable: string | undefined;
  #replayed: FallbackReplay | null = null;
  /** bumpSerial calls waiting in the fallback: the serial this process reports counts them. */
  #deferredBumps = 0;
  readonly #origin: Origin = { pid: process.pid, processStart: currentProcessStart() };
  readonly #target: WriteTarget;
  readonly #warn: (message: string) => void;

  private constructor(readonly db: Kysely<Database>, readonly path: string, warn: (message: string) => void) {
    this.#target = { db, atomically: (body) => immediateTransaction(db, body) };
    this.#warn = warn;
  }

  /** The state folder. */
  get dir(): string {
    return dirname(this.path);
  }

  /** The 0700 folder for files a child process needs briefly (pgpass, an SSH key): `<state dir>/tmp`. */
  get privateDir(): string {
    return join(this.dir, "tmp");
  }

  /** True once a write could not reach the database: from then on this store's writes go to fallback.jsonl. */
  get degraded(): boolean {
    return this.#degraded;
  }

  /**
   * What `open` replayed from fallback.jsonl into the database, for a command to report ("replayed 3 results from
   * fallback.jsonl"); null when there was nothing to replay or the database still could not be written.
   */
  get replayed(): FallbackReplay | null {
    return this.#replayed;
  }

  /** Set on a store opened by {@link openReadOnly}: why the state folder cannot be written (and what to do). */
  get unwritable(): string | undefined {
    return this.#unwritable;
  }

  /**
   * Opens (creating and migrating when needed) the state database in `dir`, then replays fallback.jsonl into it.
   * Opens also while another process holds the database's write lock (reads work; writes then go to the fallback).
   * A folder that cannot be written (read-only, full, not ours) is a StateUnwritableError naming the cause and the fix.
   */
  static async open(dir: string, options: OpenOptions = {}): Promise<StateStore> {
    try {
      return await StateStore.#open(dir, options);
    } catch (error) {
      throw unwritableStateError(dir, error) ?? error;
    }
  }

  /**
   * Opens the state database of a folder that cannot be written, only to read it (status, history, snapshots, plan):
   * no migration, no replay of fallback.jsonl, and every write throws a StateUnwritableError. `problem` says why the
   * folder cannot be written (the message of open's StateUnwritableError).
   */
  static async openReadOnly(dir: string, problem: string, options: OpenOptions = {}): Promise<StateStore> {
    const path = join(dir, stateFileName);
    if (!existsSync(path)) throw new StateUnwritableError(dir, `${problem} (and it holds no state database yet)`);
    const wal = `${path}-wal`;
    const pendingWal = existsSync(wal) && statSync(wal).size > 0;
    // Immutable needs nothing written, but misses what is still in the -wal file: tried first only without one.
    const modes: SqliteMode[] = pendingWal ? ["read-only", "immutable"] : ["immutable"];
    let failure: unknown;
    for (const mode of modes) {
      const db = new Kysely<Database>({ dialect: await sqliteDialect(path, mode) });
      try {
        const newest = sql<{ name: string }>`SELECT name FROM kysely_migration ORDER BY name DESC LIMIT 1`;
        const { rows: [applied] } = await newest.execute(db);
        if (applied?.name !== latestMigration) {
          await db.destroy();
          throw new StateUnwritableError(
            dir,
            `${problem} (and the state database must first be upgraded to this version of backupctl, which writes)`,
          );
        }
        const store = new StateStore(db, path, options.warn ?? logWarning);
        const waiting = waitingInFallback(dir);
        const unseen = [
          mode === "immutable" && pendingWal ? `the last results, still in ${wal}` : "",
          waiting > 0 ? `${waiting} results waiting in ${fallbackFileName}` : "",
        ].filter(Boolean);
        store.#unwritable = unseen.length > 0 ? `${problem} (not shown: ${unseen.join(", ")})` : problem;
        return store;
      } catch (error) {
        if (error instanceof StateUnwritableError) throw error;
        await db.destroy();
        failure = error;
      }
    }
    throw new StateUnwritableError(
      dir,
      `${problem} (and ${path} cannot be read either: ${(failure as Error)?.message ?? failure})`,
    );
  }

  static async #open(dir: string, options: OpenOptions): Promise<StateStore> {
    const busyTimeoutMs = options.busyTimeoutMs ?? busyTimeoutFromEnvironment();
    if (!Number.isSafeInteger(busyTimeoutMs) || busyTimeoutMs < 0) {
      throw new RangeError(`busyTimeoutMs must be a whole number of milliseconds, got ${busyTimeoutMs}`);
    }
    ensureStateDir(dir);
    const path = join(dir, stateFileName);
    if (!existsSync(path)) closeSync(openSync(path, "a", 0o600));
    restrictToOwner(path);
    const db = new Kysely<Database>({ dialect: await sqliteDialect(path) });
    try {
      await sql`PRAGMA busy_timeout = ${sql.raw(String(busyTimeoutMs))}`.execute(db);
      await sql`PRAGMA journal_mode = WAL`.execute(db);
      await sql`PRAGMA synchronous = NORMAL`.execute(db);
      await sql`PRAGMA foreign_keys = ON`.execute(db);
      const { error } = await new Migrator({ db, provider: migrationProvider }).migrateToLatest();
      if (error) {
        throw new Error(`cannot migrate the state database ${path}: ${(error as Error).message ?? String(error)}`);
      }
      // Read first: an up-to-date database opens without writing, also while another process holds its lock.
      const lineage = await db.selectFrom("meta").select("value").where("key", "=", "lineage").executeTakeFirst();
      if (!lineage) {
        await db.insertInto("meta").values({ key: "lineage", value: randomUUID() })
          .onConflict((c) => c.column("key").doNothing()).execute();
      }
      const store = new StateStore(db, path, options.warn ?? logWarning);
      await store.#replayFallback();
      for (const suffix of ["-wal", "-shm"]) {
        if (existsSync(path + suffix)) restrictToOwner(path + suffix);
      }
      return store;
    } catch (error) {
      await db.destroy();
      throw error;
    }
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
    const { deferred } = await this.#write("bumpSerial", []);
    if (deferred) this.#deferredBumps++;
    // The database's serial is behind by the bumps waiting in the fallback.
    return await this.serial() + this.#deferredBumps;
  }

  async startRun(run: {
    id: string;
    project: string;
    command: string;
    startedAt: string;
    fingerprint: string;
    host: string;
  }, notifications: NewNotification[] = []): Promise<void> {
    await this.#write("startRun", notifications.length ? [run, notifications] : [run]);
  }

  async setRunStage(runId: string, stage: string | null): Promise<void> {
    await this.#write("setRunStage", [runId, stage]);
  }

  async finishRun(runId: string, result: {
    status: RunStatus;
    finishedAt: string;
    durationMs: number;
    error?: string;
  }, notifications: NewNotification[] = []): Promise<void> {
    await this.#write("finishRun", notifications.length ? [runId, result, notifications] : [runId, result]);
  }

  /** Records a stage as running and returns its id; negative while the stage waits in the fallback file. */
  async startStage(stage: NewStage): Promise<number> {
    return (await this.#write("startStage", [stage])).stageId!;
  }

  async finishStage(id: number, result: StageResult, notifications: NewNotification[] = []): Promise<void> {
    await this.#write("finishStage", notifications.length ? [id, result, notifications] : [id, result]);
  }

  /** Enqueues notifications not tied to a run's result (overdue projects, the daily summary, check failures). */
  async enqueueNotifications(notifications: NewNotification[]): Promise<void> {
    if (notifications.length > 0) await this.#write("enqueueNotifications", [notifications]);
  }

  /** Whether a keyed notification was enqueued already (for any channel: the key's prefix). */
  async notificationKeyExists(prefix: string): Promise<boolean> {
    const row = await this.db.selectFrom("outbox").select("id").where("key", "like", `${prefix.replace(/[%_]/g, "")}%`)
      .limit(1).executeTakeFirst();
    return row !== undefined;
  }

  /**
   * Outbox rows to attempt now: not delivered, not given up, due, and not behind an older row of the same channel
   * that waits for its retry (a channel's messages arrive in order: a run's end never before its start); oldest first.
   */
  async dueNotifications(now: string, limit = 200): Promise<OutboxRow[]> {
    return await this.db.selectFrom("outbox").selectAll()
      .where("delivered_at", "is", null).where("given_up_at", "is", null).where("next_attempt_at", "<=", now)
      .where(({ not, exists, selectFrom }) =>
        not(exists(
          selectFrom("outbox as earlier").select("earlier.id")
            .whereRef("earlier.channel", "=", "outbox.channel").whereRef("earlier.id", "<", "outbox.id")
            .where("earlier.delivered_at", "is", null).where("earlier.given_up_at", "is", null)
            .where("earlier.next_attempt_at", ">", now),
        ))
      )
      .orderBy("id").limit(limit).execute();
  }

  /**
   * Records a delivery attempt. A row given up is audited as a failed `notify` stage in the same transaction, so
   * `history` and `status` show undeliverable notifications. Not written to the fallback: when the database cannot
   * take it, the row stays pending and is sent again (delivery is at least once).
   */
  async recordDelivery(row: Pick<OutboxRow, "id" | "channel" | "event" | "project">, outcome: DeliveryOutcome) {
    await immediateTransaction(this.db, async (db) => {
      if ("delivered" in outcome) {
        await db.updateTable("outbox").set((eb) => ({
          delivered_at: outcome.delivered,
          attempts: eb("attempts", "+", 1),
          last_error: null,
        })).where("id", "=", row.id).execute();
      } else if ("failed" in outcome) {
        await db.updateTable("outbox").set((eb) => ({
          attempts: eb("attempts", "+", 1),
          last_error: outcome.error,
          next_attempt_at: outcome.retryAt,
        })).where("id", "=", row.id).execute();
      } else {
        await db.updateTable("outbox").set({ given_up_at: outcome.givenUp, last_error: outcome.error })
          .where("id", "=", row.id).execute();
        await db.insertInto("stages").values({
          run_id: null,
          type: "notify",
          project: row.project,
          source: row.event,
          repository: row.channel,
          attempt: 1,
          status: "failed",
          started_at: outcome.givenUp,
          finished_at: outcome.givenUp,
          duration_ms: 0,
          bytes: null,
          snapshot_id: null,
          error: `undeliverable: ${outcome.error}`,
        }).execute();
      }
    });
  }

  /** Moves a channel's waiting rows to `retryAt`: they are sent after the one that failed, in order. */
  async postponeChannel(channel: string, afterId: number, retryAt: string): Promise<void> {
    await this.db.updateTable("outbox").set({ next_attempt_at: retryAt })
      .where("channel", "=", channel).where("id", ">", afterId).where("delivered_at", "is", null)
      .where("given_up_at", "is", null).where("next_attempt_at", "<", retryAt).execute();
  }

  /** Deletes delivered and given-up rows finished before `before` (the outbox is a queue, not an archive). */
  async purgeOutbox(before: string): Promise<void> {
    await this.db.deleteFrom("outbox")
      .where((eb) =>
        eb.or([
          eb.and([eb("delivered_at", "is not", null), eb("delivered_at", "<", before)]),
          eb.and([eb("given_up_at", "is not", null), eb("given_up_at", "<", before)]),
        ])
      ).execute();
  }

  /** The outbox for `status`: rows still being tried, and rows given up since `since`. */
  async outboxOverview(since: string): Promise<{ pending: OutboxRow[]; undeliverable: OutboxRow[] }> {
    const pending = await this.db.selectFrom("outbox").selectAll()
      .where("delivered_at", "is", null).where("given_up_at", "is", null).orderBy("id").execute();
    const undeliverable = await this.db.selectFrom("outbox").selectAll()
      .where("given_up_at", ">=", since).orderBy("id").execute();
    return { pending, undeliverable };
  }

  /**
   * The audit, newest first, for `history`: runs with their stages (kind "backup") and the operations audited without
   * a run (a stage of its own: forget, prune, check, verify, restore, init, unlock, recover, refresh, notify), merged by
   * start time. `kinds` picks among them. Each filter keeps its query on an index (runs_project_started,
   * runs_status_project, runs_status, runs_started; stages_operations or stages_latest for the operations; stages_run
   * for a run's stages), so it stays fast on a large audit.
   */
  async history(
    filter: { projects?: string[]; failed?: boolean; since?: string; kinds?: string[]; limit: number },
  ): Promise<HistoryEntry[]> {
    const wantRuns = !filter.kinds || filter.kinds.includes(runKind);
    const operationKinds = filter.kinds?.filter((kind) => kind !== runKind);
    const entries: HistoryEntry[] = [];
    if (wantRuns) {
      let query = this.db.selectFrom("runs").selectAll().orderBy("started_at", "desc").limit(filter.limit);
      if (filter.projects?.length) query = query.where("project", "in", filter.projects);
      if (filter.failed) query = query.where("status", "in", ["failed", "interrupted"]);
      if (filter.since) query = query.where("started_at", ">=", filter.since);
      const runs = await query.execute();
      if (runs.length > 0) {
        const stages = await this.db.selectFrom("stages").selectAll()
          .where("run_id", "in", runs.map((r) => r.id)).orderBy("id").execute();
        const byRun = new Map<string, Selectable<Database["stages"]>[]>();
        for (const stage of stages) byRun.set(stage.run_id!, [...(byRun.get(stage.run_id!) ?? []), stage]);
        entries.push(...runs.map((run) => ({ kind: runKind, run, stages: byRun.get(run.id) ?? [] })));
      }
    }
    if (operationKinds === undefined || operationKinds.length > 0) {
      let query = this.db.selectFrom("stages").selectAll().where("run_id", "is", null)
        .orderBy("started_at", "desc").orderBy("id", "desc").limit(filter.limit);
      if (operationKinds) query = query.where("type", "in", operationKinds as StageType[]);
      if (filter.projects?.length) query = query.where("project", "in", filter.projects);
      if (filter.failed) query = query.where("status", "in", ["failed", "interrupted"]);
      if (filter.since) query = query.where("started_at", ">=", filter.since);
      for (const stage of await query.execute()) entries.push({ kind: stage.type, run: null, stages: [stage] });
    }
    const startedAt = (entry: HistoryEntry) => entry.run?.started_at ?? entry.stages[0].started_at;
    return entries.sort((a, b) => startedAt(b).localeCompare(startedAt(a))).slice(0, filter.limit);
  }

  /** Per project, its latest restore drill (a `verify` stage that finished): when, and whether it passed. */
  async latestDrills(): Promise<Map<string, { at: string; status: string; error: string | null }>> {
    const rows = await this.db.selectFrom("stages as s").select(["s.project", "s.started_at", "s.status", "s.error"])
      .where("s.type", "=", "verify").where("s.status", "in", ["succeeded", "failed"])
      .where("s.started_at", "=", (eb) =>
        eb.selectFrom("stages as t").select((e) => e.fn.max("t.started_at").as("m"))
          .whereRef("t.project", "=", "s.project").where("t.type", "=", "verify")
          .where("t.status", "in", ["succeeded", "failed"]))
      .execute();
    return new Map(
      rows.filter((r) => r.project).map((r) => [r.project!, { at: r.started_at, status: r.status, error: r.error }]),
    );
  }

  /** Finished runs of a project that failed or were interrupted after its last successful run. */
  async failuresSinceLastSuccess(project: string): Promise<number> {
    const last = await this.db.selectFrom("runs").select((eb) => eb.fn.max("started_at").as("at"))
      .where("project", "=", project).where("status", "=", "succeeded").executeTakeFirst();
    let query = this.db.selectFrom("runs").select((eb) => eb.fn.countAll<number>().as("n"))
      .where("project", "=", project).where("status", "in", ["failed", "interrupted"]);
    if (last?.at) query = query.where("started_at", ">", last.at);
    return Number((await query.executeTakeFirst())?.n ?? 0);
  }

  /**
   * Per project: runs started in [from, to) by status, and the last successful run up to `to` with the bytes its
   * backup stages sent. For the daily summary.
   */
  async runDigest(from: string, to: string): Promise<Map<string, RunDigest>> {
    const digest = new Map<string, RunDigest>();
    const entry = (project: string) => {
      if (!digest.has(project)) digest.set(project, { succeeded: 0, failed: 0, interrupted: 0 });
      return digest.get(project)!;
    };
    const counts = await this.db.selectFrom("runs").select(["project", "status"])
      .select((eb) => eb.fn.countAll<number>().as("n"))
      .where("started_at", ">=", from).where("started_at", "<", to).groupBy(["project", "status"]).execute();
    for (const row of counts) {
      if (row.status === "succeeded" || row.status === "failed" || row.status === "interrupted") {
        entry(row.project)[row.status] = Number(row.n);
      }
    }
    const last = await this.db.selectFrom("runs as r")
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

  async markRepositoryInitialized(name: string, location: string, at: string): Promise<void> {
    await this.#write("markRepositoryInitialized", [name, location, at]);
  }

  /** Replaces a repository's inventory with what restic listed, in one transaction. */
  async replaceSnapshots(
    repository: string,
    snapshots: Omit<SnapshotTable, "repository">[],
    at: string,
  ): Promise<void> {
    await this.#write("replaceSnapshots", [repository, snapshots, at]);
  }

  /** The ids of a repository's snapshots in the inventory. */
  async snapshotIds(repository: string): Promise<string[]> {
    const rows = await this.db.selectFrom("snapshots").select("id").where("repository", "=", repository).execute();
    return rows.map((row) => row.id);
  }

  /** Records that a repository's inventory was found current (its listing matched) at `at`. */
  async markRefreshed(repository: string, at: string): Promise<void> {
    await this.#write("markRefreshed", [repository, at]);
  }

  /**
   * Adds snapshots this process just made (from restic's backup summaries) to a repository's inventory without
   * listing the repository again; its last refresh time stays what it was.
   */
  async addSnapshots(repository: string, snapshots: Omit<SnapshotTable, "repository">[]): Promise<void> {
    if (snapshots.length > 0) await this.#write("addSnapshots", [repository, snapshots]);
  }

  /** Marks a run of a dead process interrupted (keeping the stage it was in), and its unfinished stages with it. */
  async markRunInterrupted(runId: string, at: string, reason: string): Promise<void> {
    await this.#write("markRunInterrupted", [runId, at, reason]);
  }

  /** Records the policy now applied to a retention group (after its forget ran, or when nothing was due). */
  async recordRetention(
    group: { project: string; source: string; repository: string },
    policy: string,
    at: string,
  ): Promise<void> {
    await this.#write("recordRetention", [group, policy, at]);
  }

  /**
   * Records a saved plan as applied (once: the same id again is refused); `held`: the ids of its forget actions held
   * for approval, which alone may run later, once, approved.
   */
  async markPlanApplied(planId: string, at: string, held: string[] = []): Promise<void> {
    await this.#write("markPlanApplied", held.length > 0 ? [planId, at, held] : [planId, at]);
  }

  /** What is still held of an applied plan after its held forgets were offered again (none: they ran, or failed). */
  async markHeldDeletions(planId: string, held: string[]): Promise<void> {
    await this.#write("markHeldDeletions", [planId, held]);
  }

  async recordCheck(repository: string, at: string, status: string): Promise<void> {
    await this.#write("recordCheck", [repository, at, status]);
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
    const states = await this.snapshotStates(options);
    for (const snapshot of snapshots as InventorySnapshot[]) {
      snapshot.state = states.get(`${snapshot.repository}\u0000${snapshot.id}`) ?? "adopted";
    }
    const retention = (await this.db.selectFrom("retention_policies").selectAll().execute())
      .map((row) => ({
        project: row.project,
        source: row.source,
        repository: row.repository,
        policy: row.policy,
        at: row.applied_at,
      }));
    const maintenance: MaintenanceRecord[] = [];
    for (const type of ["prune", "check", "forget"] as const) {
      const rows = await this.db.selectFrom("stages")
        .select(["repository", (eb) => eb.fn.max("started_at").as("at")])
        .where("type", "=", type).where("status", "=", "succeeded").groupBy("repository").execute();
      for (const row of rows) if (row.repository) maintenance.push({ type, repository: row.repository, at: row.at });
    }
    // The latest prune attempt, whatever became of it: a later one than the last success failed or was cut short.
    for (
      const row of await this.db.selectFrom("stages")
        .select(["repository", (eb) => eb.fn.max("started_at").as("at")])
        .where("type", "=", "prune").groupBy("repository").execute()
    ) if (row.repository) maintenance.push({ type: "prune_attempt", repository: row.repository, at: row.at });
    const drills = await this.db.selectFrom("stages")
      .select(["project", (eb) => eb.fn.max("started_at").as("at")])
      .where("type", "=", "verify").where("status", "=", "succeeded").groupBy("project").execute();
    for (const row of drills) if (row.project) maintenance.push({ type: "verify", project: row.project, at: row.at });
    const knownProjects = (await this.db.selectFrom("runs").select("project").distinct().execute()).map((r) =>
      r.project
    );
    const plans = await this.db.selectFrom("applied_plans").select(["plan_id", "held"]).execute();
    const appliedPlans = plans.map((r) => r.plan_id);
    const heldPlans: Record<string, string[]> = {};
    for (const row of plans) if (row.held) heldPlans[row.plan_id] = JSON.parse(row.held) as string[];
    // Snapshots forgotten in each repository since its last successful prune (forgets before the count was kept: 0).
    const forgottenSincePrune = new Map(
      (await this.db.selectFrom("stages as f")
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
      heldPlans,
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

  /**
   * How far backupctl vouches for each snapshot of the inventory, keyed `repository NUL id` (see {@link SnapshotState}).
   * `deadRuns`: runs still marked running whose process is gone (judged by the caller).
   */
  async snapshotStates(options: { deadRuns?: string[] } = {}): Promise<Map<string, SnapshotState>> {
    const rows = await this.db.selectFrom("snapshots").select(["repository", "id", "original", "project", "run_id"])
      .execute();
    const recorded = (await this.db.selectFrom("stages").select("snapshot_id")
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
        const run of await this.db.selectFrom("runs").select(["id", "status"]).where(
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

  /**
   * Runs one write on the database; when the database cannot take it, or this store is degraded already, appends it
   * to fallback.jsonl instead (a startStage then gets a negative id, recorded in its line).
   */
  async #write<Op extends FallbackOp>(op: Op, args: FallbackArgs<Op>): Promise<Outcome> {
    if (this.#unwritable !== undefined) {
      throw new StateUnwritableError(this.dir, `cannot record ${op}: ${this.#unwritable}`);
    }
    if (!this.#degraded) {
      try {
        return await operations[op](this.#target, args, this.#origin);
      } catch (error) {
        const reason = unwritableReason(error);
        if (reason === undefined) throw error;
        this.#degrade(
          reason,
          `this process's results go to ${join(this.dir, fallbackFileName)} until a start replays them`,
        );
      }
    }
    const stageId = op === "startStage" ? -randomInt(1, 2 ** 47) : undefined;
    try {
      appendFallback(this.dir, { op, args, stageId });
    } catch (error) {
      const message = `cannot record ${op}: the state database ${this.path} cannot be written ` +
        `(${this.#degradedBecause}), and neither can ${join(this.dir, fallbackFileName)}`;
      // A full or read-only folder is said as such, with the fix; anything else as it is.
      const problem = explainFileError(error, this.dir) ?? stateFolderProblem(this.dir);
      if (problem) throw new StateUnwritableError(this.dir, `${message}: ${problem}`);
      throw new Error(`${message}: ${(error as Error).message}`);
    }
    return { deferred: true, stageId };
  }

  #degrade(reason: string, consequence: string): void {
    if (this.#degraded) return;
    this.#degraded = true;
    this.#degradedBecause = reason;
    this.#warn(
      `the state database ${this.path} cannot be written (${reason}): ${consequence}. If this lasts, look for ` +
        `what holds the database (fuser ${this.path}), free disk space, or restore it from a copy`,
    );
  }

  /**
   * Claims fallback.jsonl (fallback.ts) and applies its valid lines in order, in one transaction; lines that are
   * malformed, or that the database refuses (a run already recorded, a stage whose start is missing), go to
   * fallback.rejected.jsonl and never block the others. The claimed file is removed only after the commit. When
   * the database still cannot be written, the lines go back to fallback.jsonl and the store opens degraded.
   */
  async #replayFallback(): Promise<void> {
    const claim = claimFallback(this.dir);
    if (!claim) return;
    const { lines, rejected } = parseFallback(claim.text);
    let replay: { applied: number; refused: RejectedLine[] };
    try {
      replay = await this.#applyFallback(lines);
    } catch (error) {
      const reason = unwritableReason(error);
      try {
        claim.giveBack();
      } catch (giveBackError) {
        this.#warn(
          `cannot put ${claim.path} back as ${fallbackFileName} (${(giveBackError as Error).message}): ` +
            "it stays as it is and is replayed by the first start after this process ended",
        );
      }
      if (reason === undefined) throw error;
      this.#degrade(
        reason,
        `the ${lines.length + rejected.length} lines of ${fallbackFileName} wait for the next start, ` +
          "and this process adds its results to them",
      );
      return;
    }
    const setAsideLines = [...rejected, ...replay.refused].sort((a, b) => a.line - b.line);
    setAside(this.dir, setAsideLines);
    claim.done();
    this.#replayed = { applied: replay.applied, rejected: setAsideLines.length };
    if (setAsideLines.length > 0) {
      const count = setAsideLines.length === 1 ? "1 line" : `${setAsideLines.length} lines`;
      this.#warn(
        `${count} of ${fallbackFileName} could not be replayed into the state database: kept with the reason in ` +
          join(this.dir, rejectedFileName),
      );
    }
  }

  /**
   * One transaction, a savepoint per line: a line the database refuses is undone alone and the transaction goes on
   * (SQLite keeps it usable after a failed statement). An error saying the database cannot be written aborts the
   * whole replay.
   */
  async #applyFallback(lines: FallbackLine[]): Promise<{ applied: number; refused: RejectedLine[] }> {
    if (lines.length === 0) return { applied: 0, refused: [] };
    return await immediateTransaction(this.db, async (connection) => {
      const target: WriteTarget = { db: connection, atomically: (body) => body(connection) };
      let applied = 0;
      const refused: RejectedLine[] = [];
      for (const { line, raw, record } of lines) {
        await sql`SAVEPOINT fallback_line`.execute(connection);
        let reason: string | undefined;
        try {
          const { missing } = await replayRecord(target, record);
          if (missing) reason = `no ${missing} in the database`;
        } catch (error) {
          if (unwritableReason(error) !== undefined) throw error;
          reason = (error as Error).message;
        }
        if (reason !== undefined) {
          await sql`ROLLBACK TO fallback_line`.execute(connection);
          refused.push({ line, raw, reason });
        } else {
          applied++;
        }
        await sql`RELEASE fallback_line`.execute(connection);
      }
      return { applied, refused };
    });
  }
}

export type OutboxRow = Selectable<OutboxTable>;

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

// Writes: the same code for a write made now and one replayed from the fallback.

/** Where a write goes: the database, or a replay's open transaction. */
interface WriteTarget {
  db: Kysely<Database>;
  /** Statements that belong together: a transaction of their own, or a part of the replay's (a line's savepoint). */
  atomically<T>(body: (db: Kysely<Database>) => Promise<T>): Promise<T>;
}

/** Who made a write: this process, or the one that wrote a replayed line (a replayed run keeps its pid). */
interface Origin {
  pid: number;
  processStart: string | null;
  /** A replayed startStage: the negative id the writer handed out for the stage. */
  stageId?: number;
}

interface Outcome {
  /** startStage: the stage's row id (negative when it waits in the fallback). */
  stageId?: number;
  /** The run or stage an update did not find: a replay rejects that line instead of dropping it silently. */
  missing?: string;
  /** Appended to the fallback, not written to the database. */
  deferred?: true;
}

type Operation<Op extends FallbackOp> = (
  target: WriteTarget,
  args: FallbackArgs<Op>,
  origin: Origin,
) => Promise<Outcome>;

/**
 * Runs `body` in a transaction that takes the write lock at BEGIN (waiting the busy timeout there, not failing
 * midway after reads). Unlike Kysely's transaction(), a failed ROLLBACK does not hide the error that caused it:
 * SQLite has rolled back by itself after a full disk or an I/O error, and that error is what tells the store to fall
 * back.
 */
async function immediateTransaction<T>(db: Kysely<Database>, body: (db: Kysely<Database>) => Promise<T>): Promise<T> {
  return await db.connection().execute(async (connection) => {
    await sql`BEGIN IMMEDIATE`.execute(connection);
    try {
      const result = await body(connection);
      await sql`COMMIT`.execute(connection);
      return result;
    } catch (error) {
      await sql`ROLLBACK`.execute(connection).catch(() => {
        // No transaction is active any more.
      });
      throw error;
    }
  });
}

/** The meta key mapping a fallback stage id to the row its replay inserted (finishStage lines may come later). */
function syntheticStageKey(syntheticId: number): string {
  return `fallback_stage:${syntheticId}`;
}

async function stageIdOf(db: Kysely<Database>, syntheticId: number): Promise<number | undefined> {
  const row = await db.selectFrom("meta").select("value").where("key", "=", syntheticStageKey(syntheticId))
    .executeTakeFirst();
  return row ? Number(row.value) : undefined;
}

function updated(result: UpdateResult, what: string): Outcome {
  return result.numUpdatedRows > 0n ? {} : { missing: what };
}

/** Inserts a run row as its writer made it (a replayed run keeps the pid of the process that ran it). */
async function insertRun(db: Kysely<Database>, run: FallbackArgs<"startRun">[0], origin: Origin): Promise<void> {
  await db.insertInto("runs").values({
    id: run.id,
    project: run.project,
    status: "running",
    command: run.command,
    started_at: run.startedAt,
    finished_at: null,
    duration_ms: null,
    pid: origin.pid,
    process_start: origin.processStart,
    host: run.host,
    config_fingerprint: run.fingerprint,
    stage: null,
    error: null,
  }).execute();
}

/** Writes notifications to the outbox; one whose key is already there was enqueued before and is skipped. */
async function insertNotifications(db: Kysely<Database>, notifications: NewNotification[] | undefined): Promise<void> {
  for (const n of notifications ?? []) {
    await db.insertInto("outbox").values({
      channel: n.channel,
      event: n.event,
      project: n.project,
      run_id: n.runId,
      key: n.key,
      payload: n.payload,
      created_at: n.createdAt,
      next_attempt_at: n.createdAt,
      attempts: 0,
      delivered_at: null,
      expires_at: n.expiresAt,
      last_error: null,
      given_up_at: null,
    }).onConflict((c) => c.column("key").doNothing()).execute();
  }
}

const operations: { [Op in FallbackOp]: Operation<Op> } = {
  async bumpSerial({ db }) {
    await db.updateTable("meta").set({ value: sql`CAST(CAST(value AS INTEGER) + 1 AS TEXT)` })
      .where("key", "=", "serial").execute();
    return {};
  },

  startRun({ atomically }, [run, notifications], origin) {
    return atomically(async (db) => {
      await insertRun(db, run, origin);
      await insertNotifications(db, notifications);
      return {};
    });
  },

  async enqueueNotifications({ db }, [notifications]) {
    await insertNotifications(db, notifications);
    return {};
  },

  async setRunStage({ db }, [runId, stage]) {
    return updated(
      await db.updateTable("runs").set({ stage }).where("id", "=", runId).executeTakeFirst(),
      `run ${runId}`,
    );
  },

  finishRun({ atomically }, [runId, result, notifications]) {
    return atomically(async (db) => {
      const update = await db.updateTable("runs").set({
        status: result.status,
        finished_at: result.finishedAt,
        duration_ms: result.durationMs,
        error: result.error ?? null,
        stage: result.status === "succeeded" ? null : sql`stage`,
      }).where("id", "=", runId).executeTakeFirst();
      const outcome = updated(update, `run ${runId}`);
      if (!outcome.missing) await insertNotifications(db, notifications);
      return outcome;
    });
  },

  startStage({ atomically }, [stage], origin) {
    return atomically(async (db) => {
      const synthetic = origin.stageId;
      if (synthetic !== undefined) {
        // Replayed twice (a crash between a replay's commit and the removal of its file): recorded already.
        const known = await stageIdOf(db, synthetic);
        if (known !== undefined) return { stageId: known };
      }
      const row = await db.insertInto("stages").values({
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
        bytes_added: null,
        snapshot_id: null,
        error: null,
      }).returning("id").executeTakeFirstOrThrow();
      const id = Number(row.id);
      if (synthetic !== undefined) {
        await db.insertInto("meta").values({ key: syntheticStageKey(synthetic), value: String(id) }).execute();
      }
      return { stageId: id };
    });
  },

  finishStage({ atomically }, [id, result, notifications]) {
    return atomically(async (db) => {
      const stageId = id < 0 ? await stageIdOf(db, id) : id;
      if (stageId === undefined) return { missing: `stage ${id} (its startStage line was not replayed)` };
      const update = await db.updateTable("stages").set({
        status: result.status,
        finished_at: result.finishedAt,
        duration_ms: result.durationMs,
        bytes: result.bytes ?? null,
        bytes_added: result.bytesAdded ?? null,
        forgotten: result.forgotten ?? null,
        snapshot_id: result.snapshotId ?? null,
        error: result.error ?? null,
        note: result.note ?? null,
      }).where("id", "=", stageId).executeTakeFirst();
      const outcome = updated(update, `stage ${id}`);
      if (!outcome.missing) await insertNotifications(db, notifications);
      return outcome;
    });
  },

  async markRepositoryInitialized({ db }, [name, location, at]) {
    await db.insertInto("repositories")
      .values({
        name,
        location,
        initialized_at: at,
        last_refresh_at: null,
        last_check_at: null,
        last_check_status: null,
      })
      .onConflict((c) => c.column("name").doUpdateSet({ location, initialized_at: at })).execute();
    return {};
  },

  replaceSnapshots({ atomically }, [repository, snapshots, at]) {
    return atomically(async (db) => {
      await db.deleteFrom("snapshots").where("repository", "=", repository).execute();
      for (const snapshot of snapshots) {
        await db.insertInto("snapshots").values({ ...snapshot, repository }).execute();
      }
      // A dump snapshot's size is what its stage streamed (restic 0.14 does not report snapshot sizes).
      await sql`UPDATE snapshots SET size = COALESCE((SELECT s.bytes FROM stages s
        WHERE (s.snapshot_id = snapshots.id OR s.snapshot_id = snapshots.short_id) AND s.status = 'succeeded' LIMIT 1), size)
        WHERE repository = ${repository}`.execute(db);
      await db.updateTable("repositories").set({ last_refresh_at: at }).where("name", "=", repository).execute();
      return {};
    });
  },

  async markRefreshed({ db }, [repository, at]) {
    await db.updateTable("repositories").set({ last_refresh_at: at }).where("name", "=", repository).execute();
    return {};
  },

  addSnapshots({ atomically }, [repository, snapshots]) {
    return atomically(async (db) => {
      for (const snapshot of snapshots) {
        await db.insertInto("snapshots").values({ ...snapshot, repository })
          .onConflict((c) => c.columns(["repository", "id"]).doUpdateSet({ ...snapshot })).execute();
        await sql`UPDATE snapshots SET size = COALESCE((SELECT s.bytes FROM stages s
          WHERE s.snapshot_id IN (${snapshot.id}, ${snapshot.short_id}) AND s.status = 'succeeded' LIMIT 1), size)
          WHERE repository = ${repository} AND id = ${snapshot.id}`.execute(db);
      }
      return {};
    });
  },

  markRunInterrupted({ atomically }, [runId, at, reason]) {
    return atomically(async (db) => {
      await db.updateTable("runs").set({ status: "interrupted", finished_at: at, error: reason })
        .where("id", "=", runId).where("status", "=", "running").execute();
      await db.updateTable("stages").set({ status: "interrupted", finished_at: at, error: reason })
        .where("run_id", "=", runId).where("status", "=", "running").execute();
      return {};
    });
  },

  async recordRetention({ db }, [group, policy, at]) {
    await db.insertInto("retention_policies").values({ ...group, policy, applied_at: at })
      .onConflict((c) => c.columns(["project", "source", "repository"]).doUpdateSet({ policy, applied_at: at }))
      .execute();
    return {};
  },

  async markPlanApplied({ db }, [planId, at, held]) {
    const still = held && held.length > 0 ? JSON.stringify(held) : null;
    await db.insertInto("applied_plans").values({ plan_id: planId, applied_at: at, held: still }).execute();
    return {};
  },

  async markHeldDeletions({ db }, [planId, held]) {
    await db.updateTable("applied_plans").set({ held: held.length > 0 ? JSON.stringify(held) : null })
      .where("plan_id", "=", planId).execute();
    return {};
  },

  async recordCheck({ db }, [repository, at, status]) {
    await db.updateTable("repositories").set({ last_check_at: at, last_check_status: status })
      .where("name", "=", repository).execute();
    return {};
  },
};

/** Applies a replayed line as its writer made it. */
function replayRecord(target: WriteTarget, record: FallbackRecord): Promise<Outcome> {
  // fallback.ts validated op and args together, which TypeScript cannot follow through the union.
  const operation = operations[record.op] as (target: WriteTarget, args: unknown, origin: Origin) => Promise<Outcome>;
  return operation(target, record.args, {
    pid: record.pid,
    processStart: record.processStart,
    stageId: record.stageId,
  });
}

// Telling "the database cannot be written now" from "this write is wrong".

/** SQLite primary result codes meaning the database cannot take writes (busy, read-only, full, I/O, corrupt). */
const unwritableCodes: Record<number, string> = {
  3: "SQLITE_PERM",
  5: "SQLITE_BUSY",
  6: "SQLITE_LOCKED",
  8: "SQLITE_READONLY",
  10: "SQLITE_IOERR",
  11: "SQLITE_CORRUPT",
  13: "SQLITE_FULL",
  14: "SQLITE_CANTOPEN",
  15: "SQLITE_PROTOCOL",
  26: "SQLITE_NOTADB",
};

/** SQLite's messages for those codes, for an error that carries no code. */
const unwritableMessages = [
  "database is locked",
  "database table is locked",
  "attempt to write a readonly database",
  "disk I/O error",
  "database disk image is malformed",
  "database or disk is full",
  "unable to open database file",
  "file is not a database",
];

/**
 * SQLite's message when `error` says the database cannot be written, else undefined (a constraint, a bug: thrown).
 * node:sqlite (Deno) throws an Error with `code: "ERR_SQLITE_ERROR"` and the extended result code in `errcode`;
 * bun:sqlite a SQLiteError with `code: "SQLITE_BUSY"` (or an extended name such as `SQLITE_IOERR_WRITE`) and the
 * extended result code in `errno`. The primary code is the extended code's low byte.
 */
export function unwritableReason(error: unknown): string | undefined {
  if (typeof error !== "object" || error === null) return undefined;
  const { code, errcode, errno, message } = error as {
    code?: unknown;
    errcode?: unknown;
    errno?: unknown;
    message?: unknown;
  };
  const text = typeof message === "string" ? message : String(error);
  let result: number | undefined;
  if (typeof errcode === "number") result = errcode;
  else if (typeof code === "string" && code.startsWith("SQLITE_")) {
    if (typeof errno === "number") result = errno;
    else {
      const named = Object.entries(unwritableCodes).find(([, name]) => code === name || code.startsWith(`${name}_`));
      return named ? text : undefined;
    }
  }
  if (result !== undefined) return (result & 0xff) in unwritableCodes ? text : undefined;
  return unwritableMessages.some((known) => text.includes(known)) ? text : undefined;
}

// Opening.

function busyTimeoutFromEnvironment(): number {
  const text = process.env.BACKUPCTL_DB_BUSY_TIMEOUT_MS?.trim();
  if (!text) return defaultBusyTimeoutMs;
  if (!/^\d+$/.test(text)) {
    throw new UsageError(
      `BACKUPCTL_DB_BUSY_TIMEOUT_MS: expected a whole number of milliseconds such as 5000, got "${text}"`,
    );
  }
  return Number(text);
}

/** How many lines fallback.jsonl holds (results a replay has yet to write into the database). */
function waitingInFallback(dir: string): number {
  try {
    return readFileSync(join(dir, fallbackFileName), "utf8").split("\n").filter((line) => line.trim()).length;
  } catch {
    return 0;
  }
}

/**
 * The StateUnwritableError for an error that opening the state threw because the folder cannot be written, found by
 * trying to write there (see writable.ts); undefined for any other error (a lock held past the busy timeout, a corrupt
 * file, a bug), which is thrown as it is.
 */
function unwritableStateError(dir: string, error: unknown): StateUnwritableError | undefined {
  if (error instanceof StateUnwritableError) return error;
  const path = join(dir, stateFileName);
  const sqliteCannotWrite = /readonly database|disk I\/O error|database or disk is full|unable to open database file/i
    .test(unwritableReason(error) ?? "");
  const problem = explainFileError(error, dir) ??
    (sqliteCannotWrite || (error as { code?: unknown })?.code !== undefined
      ? stateFolderProblem(dir, [path, `${path}-wal`, `${path}-shm`].filter((file) => existsSync(file)))
      : undefined);
  if (problem) return new StateUnwritableError(dir, problem);
  if (sqliteCannotWrite) {
    return new StateUnwritableError(
      dir,
      `the state database ${path} cannot be written (${(error as Error).message}): free space in ${dir} and check ` +
        "the permissions of the folder and its files",
    );
  }
  return undefined;
}

/** chmod 0600 when the mode differs: a database file made immutable, which chmod refuses, still opens to be read. */
function restrictToOwner(path: string): void {
  if ((statSync(path).mode & 0o777) !== 0o600) chmodSync(path, 0o600);
}

function logWarning(message: string): void {
  // LogTape reads {…} as placeholders.
  logger("state").warn(message.replaceAll("{", "{{").replaceAll("}", "}}"));
}
