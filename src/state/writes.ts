/**
 * Every write of the state store, in one registry: an operation's arguments as a zod tuple and the code that applies
 * them. From it come the store's write methods (their argument types), the fallback file's records (the arguments
 * as the method got them) and the check a replay makes of each line (the same zod tuple). A write made now and one
 * replayed from the fallback run the same code; adding a write means adding an entry here and its one-line method
 * in store.ts.
 */
import type { Kysely, UpdateResult } from "kysely";
import { z } from "zod";
import { insertNotifications, newNotification } from "./outbox.ts";
import { type Database, type RunStatus, snapshotRow, type StageStatus, type StageType } from "./schema.ts";

/** Where a write goes: the database, or a replay's open transaction. */
export interface WriteTarget {
  db: Kysely<Database>;
  /** Statements that belong together: a transaction of their own, or a part of the replay's (a line's savepoint). */
  atomically<T>(body: (db: Kysely<Database>) => Promise<T>): Promise<T>;
}

/** Who made a write: this process, or the one that wrote a replayed line (a replayed run keeps its pid). */
export interface Origin {
  pid: number;
  processStart: string | null;
  /** A replayed startStage: the negative id the writer handed out for the stage. */
  stageId?: number;
}

export interface Outcome {
  /** startStage: the stage's row id (negative when it waits in the fallback). */
  stageId?: number;
  /** The run or stage an update did not find: a replay rejects that line instead of dropping it silently. */
  missing?: string;
  /** Appended to the fallback, not written to the database. */
  deferred?: true;
}

// The arguments' parts.

/** Every value of a union of string literals, so that a value added to schema.ts fails to compile here until added. */
function oneOf<T extends string>(values: Record<T, true>) {
  return z.enum(Object.keys(values) as [T, ...T[]]);
}

const runStatus = oneOf<RunStatus>({ running: true, succeeded: true, failed: true, interrupted: true });
const stageStatus = oneOf<StageStatus>({
  running: true,
  succeeded: true,
  failed: true,
  interrupted: true,
  skipped: true,
});
const stageType = oneOf<StageType>({
  init: true,
  backup: true,
  refresh: true,
  forget: true,
  copy: true,
  prune: true,
  check: true,
  verify: true,
  hook: true,
  recover: true,
  unlock: true,
  notify: true,
  restore: true,
});

/** Notifications written with a result, in its transaction; left out of the record when there are none. */
const notifications = z.array(newNotification).optional();

const newRun = z.object({
  id: z.string().min(1),
  project: z.string(),
  command: z.string(),
  startedAt: z.string(),
  fingerprint: z.string(),
  host: z.string(),
  /** The fleet runner that makes the run, and the token of the project lease it holds (a PostgreSQL state). */
  runner: z.string().optional(),
  leaseToken: z.number().int().optional(),
});

const runResult = z.object({
  status: runStatus,
  finishedAt: z.string(),
  durationMs: z.number(),
  error: z.string().optional(),
});

const newStage = z.object({
  runId: z.string().nullable(),
  type: stageType,
  project: z.string().optional(),
  source: z.string().optional(),
  repository: z.string().optional(),
  attempt: z.number().int().optional(),
  startedAt: z.string(),
});

const stageResult = z.object({
  status: stageStatus,
  finishedAt: z.string(),
  durationMs: z.number(),
  bytes: z.number().optional(),
  /** What restic says a backup added to the repository (its summary's data_added). */
  bytesAdded: z.number().optional(),
  /** For a forget: how many snapshots it removed. */
  forgotten: z.number().int().optional(),
  snapshotId: z.string().optional(),
  error: z.string().optional(),
  /** What a stage that succeeded has to say (the lock it removed, restic's answer); errors go in `error`. */
  note: z.string().nullable().optional(),
});

const retentionGroup = z.object({ project: z.string(), source: z.string(), repository: z.string() });

export type NewRun = z.infer<typeof newRun>;
export type RunResult = z.infer<typeof runResult>;
export type NewStage = z.infer<typeof newStage>;
export type StageResult = z.infer<typeof stageResult>;
export type RetentionGroup = z.infer<typeof retentionGroup>;

// The registry.

type Apply<Args> = (target: WriteTarget, args: Args, origin: Origin) => Promise<Outcome>;

interface WriteOperation<Args extends unknown[]> {
  /** The arguments as the store's method passes them and the fallback file records them. */
  args: z.ZodType<Args>;
  apply: Apply<Args>;
}

/** Pairs an operation's arguments with the code that applies them, typed by the tuple. */
function operation<Items extends z.core.SomeType[]>(
  args: z.ZodTuple<[...Items], null>,
  apply: Apply<z.infer<z.ZodTuple<[...Items], null>>>,
) {
  return { args, apply };
}

const operations = {
  bumpSerial: operation(z.tuple([]), async ({ db }) => {
    await db.updateTable("meta")
      .set((eb) => ({ value: eb.cast<string>(eb(eb.cast<number>("value", "integer"), "+", eb.lit(1)), "text") }))
      .where("key", "=", "serial").execute();
    return {};
  }),

  startRun: operation(
    z.tuple([newRun, notifications]),
    ({ atomically }, [run, notifications], origin) =>
      atomically(async (db) => {
        await insertRun(db, run, origin);
        await insertNotifications(db, notifications);
        return {};
      }),
  ),

  enqueueNotifications: operation(z.tuple([z.array(newNotification)]), async ({ db }, [notifications]) => {
    await insertNotifications(db, notifications);
    return {};
  }),

  setRunStage: operation(
    z.tuple([z.string(), z.string().nullable()]),
    async ({ db }, [runId, stage]) =>
      updated(await db.updateTable("runs").set({ stage }).where("id", "=", runId).executeTakeFirst(), `run ${runId}`),
  ),

  finishRun: operation(
    z.tuple([z.string(), runResult, notifications]),
    ({ atomically }, [runId, result, notifications]) =>
      atomically(async (db) => {
        const update = await db.updateTable("runs").set((eb) => ({
          status: result.status,
          finished_at: result.finishedAt,
          duration_ms: result.durationMs,
          error: result.error ?? null,
          // A run that did not succeed keeps the stage it ended in.
          stage: result.status === "succeeded" ? null : eb.ref("stage"),
        })).where("id", "=", runId).executeTakeFirst();
        const outcome = updated(update, `run ${runId}`);
        if (!outcome.missing) await insertNotifications(db, notifications);
        return outcome;
      }),
  ),

  startStage: operation(z.tuple([newStage]), ({ atomically }, [stage], origin) =>
    atomically(async (db) => {
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
    })),

  finishStage: operation(
    z.tuple([z.number().int(), stageResult, notifications]),
    ({ atomically }, [id, result, notifications]) =>
      atomically(async (db) => {
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
      }),
  ),

  markRepositoryInitialized: operation(
    z.tuple([z.string(), z.string(), z.string()]),
    async ({ db }, [name, location, at]) => {
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
  ),

  replaceSnapshots: operation(
    z.tuple([z.string(), z.array(snapshotRow), z.string()]),
    ({ atomically }, [repository, snapshots, at]) =>
      atomically(async (db) => {
        await db.deleteFrom("snapshots").where("repository", "=", repository).execute();
        for (const snapshot of snapshots) {
          await db.insertInto("snapshots").values({ ...snapshot, repository }).execute();
        }
        // A dump snapshot's size is what its stage streamed (restic 0.14 does not report snapshot sizes).
        await db.updateTable("snapshots")
          .set((eb) => ({
            size: eb.fn.coalesce(
              eb.selectFrom("stages as s").select("s.bytes")
                .where((s) =>
                  s.or([
                    s("s.snapshot_id", "=", s.ref("snapshots.id")),
                    s("s.snapshot_id", "=", s.ref("snapshots.short_id")),
                  ])
                )
                .where("s.status", "=", "succeeded").limit(1),
              eb.ref("size"),
            ),
          }))
          .where("repository", "=", repository).execute();
        await db.updateTable("repositories").set({ last_refresh_at: at }).where("name", "=", repository).execute();
        return {};
      }),
  ),

  markRefreshed: operation(z.tuple([z.string(), z.string()]), async ({ db }, [repository, at]) => {
    await db.updateTable("repositories").set({ last_refresh_at: at }).where("name", "=", repository).execute();
    return {};
  }),

  addSnapshots: operation(
    z.tuple([z.string(), z.array(snapshotRow)]),
    ({ atomically }, [repository, snapshots]) =>
      atomically(async (db) => {
        for (const snapshot of snapshots) {
          await db.insertInto("snapshots").values({ ...snapshot, repository })
            .onConflict((c) => c.columns(["repository", "id"]).doUpdateSet({ ...snapshot })).execute();
          await db.updateTable("snapshots")
            .set((eb) => ({
              size: eb.fn.coalesce(
                eb.selectFrom("stages as s").select("s.bytes")
                  .where("s.snapshot_id", "in", [snapshot.id, snapshot.short_id])
                  .where("s.status", "=", "succeeded").limit(1),
                eb.ref("size"),
              ),
            }))
            .where("repository", "=", repository).where("id", "=", snapshot.id).execute();
        }
        return {};
      }),
  ),

  markRunInterrupted: operation(
    z.tuple([z.string(), z.string(), z.string()]),
    ({ atomically }, [runId, at, reason]) =>
      atomically(async (db) => {
        await db.updateTable("runs").set({ status: "interrupted", finished_at: at, error: reason })
          .where("id", "=", runId).where("status", "=", "running").execute();
        await db.updateTable("stages").set({ status: "interrupted", finished_at: at, error: reason })
          .where("run_id", "=", runId).where("status", "=", "running").execute();
        return {};
      }),
  ),

  markStagesInterrupted: operation(
    z.tuple([z.string(), z.string(), z.string(), z.string()]),
    async ({ db }, [project, since, at, reason]) => {
      await db.updateTable("stages").set({ status: "interrupted", finished_at: at, error: reason })
        .where("run_id", "is", null).where("project", "=", project).where("status", "=", "running")
        .where("started_at", ">=", since).execute();
      return {};
    },
  ),

  recordRetention: operation(
    z.tuple([retentionGroup, z.string(), z.string()]),
    async ({ db }, [group, policy, at]) => {
      await db.insertInto("retention_policies").values({ ...group, policy, applied_at: at })
        .onConflict((c) => c.columns(["project", "source", "repository"]).doUpdateSet({ policy, applied_at: at }))
        .execute();
      return {};
    },
  ),

  markPlanApplied: operation(
    z.tuple([z.string(), z.string(), z.array(z.string()).optional()]),
    async ({ db }, [planId, at, held]) => {
      const still = held && held.length > 0 ? JSON.stringify(held) : null;
      await db.insertInto("applied_plans").values({ plan_id: planId, applied_at: at, held: still }).execute();
      return {};
    },
  ),

  markHeldDeletions: operation(z.tuple([z.string(), z.array(z.string())]), async ({ db }, [planId, held]) => {
    await db.updateTable("applied_plans").set({ held: held.length > 0 ? JSON.stringify(held) : null })
      .where("plan_id", "=", planId).execute();
    return {};
  }),

  recordCheck: operation(z.tuple([z.string(), z.string(), z.string()]), async ({ db }, [repository, at, status]) => {
    await db.updateTable("repositories").set({ last_check_at: at, last_check_status: status })
      .where("name", "=", repository).execute();
    return {};
  }),
};

export type WriteOp = keyof typeof operations;
export type WriteArgs<Op extends WriteOp> = z.infer<(typeof operations)[Op]["args"]>;

/** The registry seen through one mapped type, so that an operation picked by a type parameter keeps its arguments. */
export const writeOperations: { [Op in WriteOp]: WriteOperation<WriteArgs<Op>> } = operations;

/** Runs one write (made now, or replayed with the origin of the process that made it). */
export function applyWrite<Op extends WriteOp>(
  target: WriteTarget,
  op: Op,
  args: WriteArgs<Op>,
  origin: Origin,
): Promise<Outcome> {
  return writeOperations[op].apply(target, args, origin);
}

/**
 * The arguments as the fallback file records them: trailing optional arguments left out when empty (no
 * notifications, no held forgets), as the store's methods always wrote them.
 */
export function recordedArgs(op: WriteOp, args: unknown[]): unknown[] {
  const items = operations[op].args.def.items;
  let length = args.length;
  while (length > 0 && isEmpty(args[length - 1]) && items[length - 1] instanceof z.ZodOptional) length--;
  return args.slice(0, length);
}

function isEmpty(value: unknown): boolean {
  return value === undefined || (Array.isArray(value) && value.length === 0);
}

// Helpers of the operations above.

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
async function insertRun(db: Kysely<Database>, run: NewRun, origin: Origin): Promise<void> {
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
    runner: run.runner ?? null,
    lease_token: run.leaseToken ?? null,
  }).execute();
}
