/**
 * The state database: run audit, stages, snapshot inventory, repositories, outbox, lineage and serial. StateStore is
 * the one door to it; the work is done by the modules beside it: open.ts (opening, permissions), writes.ts (every
 * write, in one registry), replay.ts and fallback.ts (the fallback file), observe.ts (the planner's read model),
 * outbox.ts, reports.ts (history, digests, counts; read through reader.ts, which the store extends), fleet.ts and
 * runners.ts (leases, fences, runners), dialect-sqlite.ts and dialect-postgres.ts (all that is each database's own;
 * open-postgres.ts opens a PostgreSQL state).
 *
 * The database is a SQLite file in the state folder, or a PostgreSQL state (OpenOptions.postgres). The folder is used
 * either way: fallback.jsonl, the project locks and the private folder stay local.
 *
 * Every write goes through one wrapper. When the database cannot take it (locked past the busy timeout, read-only,
 * full, an I/O error, corrupt), the write is appended to the fallback file instead (fallback.ts) and the store turns
 * *degraded*: every later write of this store goes straight there, in order, without waiting a busy timeout each.
 * Any other error (a constraint, a bug) is thrown as before. `open` replays the fallback file into the database.
 */
import { randomInt } from "node:crypto";
import { join } from "node:path";
import type { Kysely } from "kysely";
import { StateUnwritableError } from "../errors.ts";
import { logger } from "../log.ts";
import { currentProcessStart } from "../runtime/process.ts";
import { type Backend, openPostgresBackend, sqliteBackend } from "./backend.ts";
import type { PostgresState } from "./dialect-postgres.ts";
import { sqliteStateDialect } from "./dialect-sqlite.ts";
import { appendFallback, fallbackFileName } from "./fallback.ts";
import * as copy from "./copy.ts";
import type { RowCounts } from "./copy.ts";
import {
  busyTimeoutFor,
  ensureStateDir,
  openForReading,
  openForWrites,
  restrictDatabaseFiles,
  stateFileName,
  unwritableStateError,
} from "./open.ts";
import * as outbox from "./outbox.ts";
import type { NewNotification } from "./outbox.ts";
import { type FallbackReplay, replayFallback, runOf } from "./replay.ts";
import { type Fence, type FenceBreach, fenceBreached, fencedError, FleetTables } from "./fleet.ts";
import { StateReader } from "./reader.ts";
import type { Database, SnapshotRow } from "./schema.ts";
import { explainFileError, stateFolderProblem } from "./writable.ts";
import {
  applyWrite,
  type NewRun,
  type NewStage,
  type Origin,
  type Outcome,
  recordedArgs,
  type RetentionGroup,
  type RunResult,
  type StageResult,
  type WriteArgs,
  type WriteOp,
  type WriteTarget,
} from "./writes.ts";

export { defaultBusyTimeoutMs, ensureStateDir, stateFileName } from "./open.ts";
export type { PostgresState } from "./dialect-postgres.ts";
export type { RowCounts } from "./copy.ts";
export type { DeliveryOutcome, NewNotification, OutboxRow } from "./outbox.ts";
export type { FallbackReplay } from "./replay.ts";
export { runKind } from "./reports.ts";
export type { HistoryEntry, RepositoryCheck, RunDigest, RunSummary } from "./reports.ts";
export type { NewRun, NewStage, RunResult, StageResult } from "./writes.ts";

/** SQLite's message when `error` says the local state database cannot take writes now, else undefined. */
export function unwritableReason(error: unknown): string | undefined {
  return sqliteStateDialect.unwritableReason(error);
}

export interface OpenOptions {
  /**
   * How long a write waits for a lock another process holds before the store falls back to fallback.jsonl.
   * Default: `BACKUPCTL_DB_BUSY_TIMEOUT_MS`, else 5000.
   */
  busyTimeoutMs?: number;
  /** Where the store's warnings go (the database became unwritable, replayed lines were rejected). Default: the log. */
  warn?: (message: string) => void;
  /** The state is in this PostgreSQL database rather than in the folder's SQLite file (the folder is still used). */
  postgres?: PostgresState;
}

/** Whether the database takes writes: shared by a store and its fenced views, which write to the same database. */
interface WriteHealth {
  degraded: boolean;
  because: string;
  /** bumpSerial calls waiting in the fallback: the serial this process reports counts them. */
  deferredBumps: number;
}

export class StateStore extends StateReader {
  #health: WriteHealth = { degraded: false, because: "", deferredBumps: 0 };
  /** The leases this store's writes are fenced by (a view made by {@link fenced}); none on the store itself. */
  #fence: Fence | undefined;
  #unwritable: string | undefined;
  /** Set on a store opened only to read a database that can be written (a PostgreSQL state read by `status`). */
  #readOnly: string | undefined;
  #replayed: FallbackReplay | null = null;
  readonly #origin: Origin = { pid: process.pid, processStart: currentProcessStart() };
  readonly #target: WriteTarget;
  readonly #warn: (message: string) => void;
  readonly #backend: Backend;

  private constructor(
    db: Kysely<Database>,
    readonly dir: string,
    backend: Backend,
    warn: (message: string) => void,
  ) {
    super(db, backend.dialect);
    this.#backend = backend;
    this.#target = { db, atomically: (body) => backend.dialect.writeTransaction(db, body) };
    this.#warn = warn;
  }

  /** The SQLite state file in the state folder (also with a PostgreSQL state, where it is not used). */
  get path(): string {
    return join(this.dir, stateFileName);
  }

  /** Where the state database is, for messages: the SQLite file, or the PostgreSQL state without credentials. */
  get location(): string {
    return this.#backend.label;
  }

  /** Whether the state is in PostgreSQL. */
  get postgres(): boolean {
    return this.#backend.postgres;
  }

  /** The 0700 folder for files a child process needs briefly (pgpass, an SSH key): `<state dir>/tmp`. */
  get privateDir(): string {
    return join(this.dir, "tmp");
  }

  /** True once a write could not reach the database: from then on this store's writes go to fallback.jsonl. */
  get degraded(): boolean {
    return this.#health.degraded;
  }

  /**
   * A view of this store whose every write first checks, in its transaction, that each lease of `fence` still has
   * its token (the fence's list may grow as leases are taken); a write whose lease was taken over is recorded in
   * fenced_writes and throws a FencedError. Its fallback lines carry the fence, and their replay checks it the same
   * way. The view shares the database, the fallback file and the degraded state; only the store itself is closed.
   */
  fenced(fence: Fence): StateStore {
    const view = new StateStore(this.db, this.dir, this.#backend, this.#warn);
    view.#health = this.#health;
    view.#fence = fence;
    view.#unwritable = this.#unwritable;
    view.#readOnly = this.#readOnly;
    return view;
  }

  /** The fleet's runners and leases (fleet.ts). */
  get fleet(): FleetTables {
    return new FleetTables(this.db, this.#backend.dialect, () => this.#unwritable ?? this.#readOnly);
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
    if (options.postgres) return await StateStore.#openPostgres(dir, options.postgres, options);
    try {
      const db = await openForWrites(dir, options.busyTimeoutMs);
      const path = join(dir, stateFileName);
      try {
        const store = new StateStore(db, dir, sqliteBackend(path), options.warn ?? logWarning);
        await store.#replay();
        restrictDatabaseFiles(path);
        return store;
      } catch (error) {
        await db.destroy();
        throw error;
      }
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
    const { db, unwritable } = await openForReading(dir, problem);
    const store = new StateStore(db, dir, sqliteBackend(join(dir, stateFileName)), options.warn ?? logWarning);
    store.#unwritable = unwritable;
    return store;
  }

  /**
   * Opens a PostgreSQL state only to read it: nothing is created, migrated or replayed, every transaction is read-only
   * on the server, and every write throws. A state missing or behind this version is a StateUnwritableError.
   */
  static async openPostgresReadOnly(dir: string, state: PostgresState, options: OpenOptions = {}): Promise<StateStore> {
    const { db, backend } = await openPostgresBackend(dir, state, { readOnly: true });
    const store = new StateStore(db, dir, backend, options.warn ?? logWarning);
    store.#readOnly = `the state ${store.location} was opened only to read it`;
    return store;
  }

  static async #openPostgres(dir: string, state: PostgresState, options: OpenOptions): Promise<StateStore> {
    const lockTimeout = busyTimeoutFor(options.busyTimeoutMs);
    // The folder still holds fallback.jsonl, the project locks and the private folder.
    ensureStateDir(dir);
    const { db, backend } = await openPostgresBackend(dir, state, { lockTimeoutMs: lockTimeout });
    try {
      const store = new StateStore(db, dir, backend, options.warn ?? logWarning);
      await store.#replay();
      return store;
    } catch (error) {
      await db.destroy();
      throw error;
    }
  }

  /** Replays fallback.jsonl of the state folder into the database (degraded when the database still cannot write). */
  async #replay(): Promise<void> {
    const replay = await replayFallback(this.dir, this.db, this.#backend.dialect, this.#warn);
    if (replay && "replayed" in replay) this.#replayed = replay.replayed;
    if (replay && "unwritable" in replay) this.#degrade(replay.unwritable, replay.consequence);
  }

  /**
   * For a long-running process whose database came back (a fleet runner): once a write transaction succeeds again,
   * replays fallback.jsonl (fenced lines checked) and ends the degraded state. False while it still cannot write.
   */
  async reconnect(): Promise<boolean> {
    if (!this.#health.degraded) return true;
    try {
      await this.#backend.dialect.writeTransaction(this.db, () => Promise.resolve());
    } catch {
      return false;
    }
    const replay = await replayFallback(this.dir, this.db, this.#backend.dialect, this.#warn);
    if (replay && "unwritable" in replay) return false;
    if (replay && "replayed" in replay) this.#replayed = replay.replayed;
    this.#health.degraded = false;
    this.#health.because = "";
    this.#health.deferredBumps = 0;
    return true;
  }

  async close(): Promise<void> {
    await this.db.destroy();
  }

  // Writes: each an operation of writes.ts, through #write.

  /** Called once by every apply that changed state: saved plans made before it become stale. */
  async bumpSerial(): Promise<number> {
    const { deferred } = await this.#write("bumpSerial", []);
    if (!deferred) return await this.serial() + this.#health.deferredBumps;
    this.#health.deferredBumps++;
    // The database's serial is behind by the bumps waiting in the fallback (and may not be readable either).
    return await this.serial().catch(() => 0) + this.#health.deferredBumps;
  }

  async startRun(run: NewRun, notifications: NewNotification[] = []): Promise<void> {
    await this.#write("startRun", [run, notifications]);
  }

  async setRunStage(runId: string, stage: string | null): Promise<void> {
    await this.#write("setRunStage", [runId, stage]);
  }

  async finishRun(runId: string, result: RunResult, notifications: NewNotification[] = []): Promise<void> {
    await this.#write("finishRun", [runId, result, notifications]);
  }

  /** Records a stage as running and returns its id; negative while the stage waits in the fallback file. */
  async startStage(stage: NewStage): Promise<number> {
    const { stageId } = await this.#write("startStage", [stage]);
    if (stageId === undefined) throw new Error("startStage recorded no stage id");
    return stageId;
  }

  async finishStage(id: number, result: StageResult, notifications: NewNotification[] = []): Promise<void> {
    await this.#write("finishStage", [id, result, notifications]);
  }

  /** Enqueues notifications not tied to a run's result (overdue projects, the daily summary, check failures). */
  async enqueueNotifications(notifications: NewNotification[]): Promise<void> {
    if (notifications.length > 0) await this.#write("enqueueNotifications", [notifications]);
  }

  async markRepositoryInitialized(name: string, location: string, at: string): Promise<void> {
    await this.#write("markRepositoryInitialized", [name, location, at]);
  }

  /** Replaces a repository's inventory with what restic listed, in one transaction. */
  async replaceSnapshots(repository: string, snapshots: SnapshotRow[], at: string): Promise<void> {
    await this.#write("replaceSnapshots", [repository, snapshots, at]);
  }

  /** Records that a repository's inventory was found current (its listing matched) at `at`. */
  async markRefreshed(repository: string, at: string): Promise<void> {
    await this.#write("markRefreshed", [repository, at]);
  }

  /**
   * Adds snapshots this process just made (from restic's backup summaries) to a repository's inventory without
   * listing the repository again; its last refresh time stays what it was.
   */
  async addSnapshots(repository: string, snapshots: SnapshotRow[]): Promise<void> {
    if (snapshots.length > 0) await this.#write("addSnapshots", [repository, snapshots]);
  }

  /** Marks a run of a dead process interrupted (keeping the stage it was in), and its unfinished stages with it. */
  async markRunInterrupted(runId: string, at: string, reason: string): Promise<void> {
    await this.#write("markRunInterrupted", [runId, at, reason]);
  }

  /**
   * Marks interrupted the stages outside a run (init, forget, check…) of `project` still `running` that started at or
   * after `since`: those of a dead process whose project lock is taken over (it held the lock since then).
   */
  async markStagesInterrupted(project: string, since: string, at: string, reason: string): Promise<void> {
    await this.#write("markStagesInterrupted", [project, since, at, reason]);
  }

  /** Records the policy now applied to a retention group (after its forget ran, or when nothing was due). */
  async recordRetention(group: RetentionGroup, policy: string, at: string): Promise<void> {
    await this.#write("recordRetention", [group, policy, at]);
  }

  /**
   * Records a saved plan as applied (once: the same id again is refused); `held`: the ids of its forget actions held
   * for approval, which alone may run later, once, approved.
   */
  async markPlanApplied(planId: string, at: string, held: string[] = []): Promise<void> {
    await this.#write("markPlanApplied", [planId, at, held]);
  }

  /** What is still held of an applied plan after its held forgets were offered again (none: they ran, or failed). */
  async markHeldDeletions(planId: string, held: string[]): Promise<void> {
    await this.#write("markHeldDeletions", [planId, held]);
  }

  async recordCheck(repository: string, at: string, status: string): Promise<void> {
    await this.#write("recordCheck", [repository, at, status]);
  }

  // Moving a state (copy.ts).

  /** What this state holds beyond a fresh state's own rows, said briefly; undefined when it is empty. */
  async contents(): Promise<string | undefined> {
    return await copy.targetContents(this.db);
  }

  /** Copies this whole state into `target`, replacing what it held, verified (copy.ts); the rows per table. */
  async copyInto(target: StateStore): Promise<RowCounts> {
    const refusal = target.#unwritable ?? target.#readOnly;
    if (refusal !== undefined) throw new StateUnwritableError(target.dir, refusal);
    return await copy.copyState(
      { db: this.db, dialect: this.#backend.dialect },
      { db: target.db, dialect: target.#backend.dialect },
    );
  }

  /** The notification queue (outbox.ts): what is due, delivery records, the overview `status` shows. */
  get outbox(): outbox.OutboxQueue {
    return new outbox.OutboxQueue(this.db, this.#backend.dialect);
  }

  /**
   * Runs one write on the database; when the database cannot take it, or this store is degraded already, appends it
   * to fallback.jsonl instead (a startStage then gets a negative id, recorded in its line).
   */
  async #write<Op extends WriteOp>(op: Op, args: WriteArgs<Op>): Promise<Outcome> {
    const refusal = this.#unwritable ?? this.#readOnly;
    if (refusal !== undefined) {
      throw new StateUnwritableError(this.dir, `cannot record ${op}: ${refusal}`);
    }
    if (!this.#health.degraded) {
      let outcome: Outcome & { fenced?: FenceBreach };
      try {
        outcome = await this.#apply(op, args);
      } catch (error) {
        const reason = this.#backend.dialect.unwritableReason(error);
        if (reason === undefined) throw error;
        this.#degrade(
          reason,
          `this process's results go to ${join(this.dir, fallbackFileName)} until a start replays them`,
        );
        outcome = {};
      }
      if (outcome.fenced) throw fencedError(op, outcome.fenced);
      if (!this.#health.degraded) return outcome;
    }
    const stageId = op === "startStage" ? -randomInt(1, 2 ** 47) : undefined;
    try {
      appendFallback(this.dir, { op, args: recordedArgs(op, args), stageId, fence: this.#fence });
    } catch (error) {
      const message = `cannot record ${op}: the state database ${this.location} cannot be written ` +
        `(${this.#health.because}), and neither can ${join(this.dir, fallbackFileName)}`;
      // A full or read-only folder is said as such, with the fix; anything else as it is.
      const problem = explainFileError(error, this.dir) ?? stateFolderProblem(this.dir);
      if (problem) throw new StateUnwritableError(this.dir, `${message}: ${problem}`);
      throw new Error(`${message}: ${(error as Error).message}`);
    }
    return { deferred: true, stageId };
  }

  /**
   * Applies a write. On PostgreSQL every write, also a single statement, runs in a write transaction holding the
   * writers' lock: without it a statement would not wait for a writer holding the lock (as every write does on SQLite)
   * and a write could land between the lines another process is replaying.
   */
  async #apply<Op extends WriteOp>(op: Op, args: WriteArgs<Op>): Promise<Outcome & { fenced?: FenceBreach }> {
    const fence = this.#fence;
    if (!this.#backend.postgres && !fence) return await applyWrite(this.#target, op, args, this.#origin);
    return await this.#backend.dialect.writeTransaction(this.db, async (db) => {
      const breach = fence
        ? await fenceBreached(db, fence, { op, runId: runOf({ op, args }), via: "live" })
        : undefined;
      if (breach) return { fenced: breach };
      return await applyWrite({ db, atomically: (body) => body(db) }, op, args, this.#origin);
    });
  }

  #degrade(reason: string, consequence: string): void {
    if (this.#health.degraded) return;
    this.#health.degraded = true;
    this.#health.because = reason;
    const remedy = this.#backend.postgres
      ? "check that the PostgreSQL server runs, has disk space and accepts this user's connections"
      : `look for what holds the database (fuser ${this.path}), free disk space, or restore it from a copy`;
    this.#warn(
      `the state database ${this.location} cannot be written (${reason}): ${consequence}. If this lasts, ${remedy}`,
    );
  }
}

function logWarning(message: string): void {
  // LogTape reads {…} as placeholders.
  logger("state").warn(message.replaceAll("{", "{{").replaceAll("}", "}}"));
}
