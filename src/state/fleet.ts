/**
 * The fleet's tables (a PostgreSQL state shared by several runners; see docs/fleet.md): runners and their heartbeats,
 * leases with fencing tokens, the configs seen, and the writes refused by a fence. Every function here runs inside a
 * write transaction of the store (the writers' lock held), so an acquisition reads and changes a lease atomically:
 * two runners asking for one lease at once are served one after the other. Times are the database's clock
 * (StateDialect.clockMs), the one clock every runner shares.
 */
import type { Kysely, RawBuilder, Selectable } from "kysely";
import { sql } from "kysely";
import { FencedError } from "../errors.ts";
import type { StateDialect } from "./dialect.ts";
import type { Database, FencedWriteTable, LeaseTable } from "./schema.ts";
import {
  heartbeatRunner,
  listRunners,
  newestConfig,
  registerRunner,
  type RunnerRegistration,
  type RunnerView,
  stopRunner,
} from "./runners.ts";

export type { RunnerRegistration, RunnerView } from "./runners.ts";

/** A lease granted: its token goes with every write made under it. */
export interface LeaseGrant {
  key: string;
  token: number;
  expiresMs: number;
  /** The holder whose expired lease this acquisition took over (it was not released). */
  tookOver?: { holder: string; instance: string; token: number; runId: string | null; expiredMs: number };
}

/** Who holds a lease another process asked for. */
export interface LeaseHolder {
  holder: string;
  instance: string;
  runId: string | null;
  expiresMs: number;
  /** The database's clock when asked. */
  nowMs: number;
}

export type Acquisition = { granted: LeaseGrant } | { held: LeaseHolder };

/** The leases a process's writes are fenced by: each must still carry its token when the write comes. */
export interface Fence {
  instance: string;
  leases: { key: string; token: number }[];
}

/** A fenced write: the lease that was taken over, and by whom. */
export interface FenceBreach {
  key: string;
  token: number;
  currentToken: number | null;
  currentHolder: string | null;
}

export interface LeaseRequest {
  key: string;
  holder: string;
  instance: string;
  ttlMs: number;
}

/** The database's clock, read now. */
export async function clockNow(db: Kysely<Database>, clockMs: RawBuilder<number>): Promise<number> {
  const row = await sql<{ now: number | string }>`SELECT ${clockMs} AS now`.execute(db);
  return Number(row.rows[0].now);
}

/** The next fencing token: one counter for the whole state, so a later acquisition always has a larger token. */
async function nextToken(db: Kysely<Database>): Promise<number> {
  const row = await db.updateTable("meta")
    .set((eb) => ({ value: eb.cast<string>(eb(eb.cast<number>("value", "bigint"), "+", eb.lit(1)), "text") }))
    .where("key", "=", "fence_token").returning("value").executeTakeFirstOrThrow();
  return Number(row.value);
}

/**
 * Grants the lease when it is free, released or expired (a new token each time), or renews it when this instance
 * holds it already; otherwise says who holds it.
 */
export async function acquireLease(
  db: Kysely<Database>,
  clockMs: RawBuilder<number>,
  request: LeaseRequest,
): Promise<Acquisition> {
  const now = await clockNow(db, clockMs);
  const row = await db.selectFrom("leases").selectAll().where("key", "=", request.key).executeTakeFirst();
  const expiresMs = now + request.ttlMs;
  if (row && Number(row.expires_ms) > now) {
    if (row.instance !== request.instance) {
      return {
        held: {
          holder: row.holder,
          instance: row.instance,
          runId: row.run_id,
          expiresMs: Number(row.expires_ms),
          nowMs: now,
        },
      };
    }
    await db.updateTable("leases").set({ expires_ms: expiresMs }).where("key", "=", request.key).execute();
    return { granted: { key: request.key, token: Number(row.token), expiresMs } };
  }
  const token = await nextToken(db);
  const values: LeaseTable = {
    key: request.key,
    holder: request.holder,
    instance: request.instance,
    token,
    acquired_ms: now,
    expires_ms: expiresMs,
    run_id: null,
  };
  await db.insertInto("leases").values(values)
    .onConflict((c) => c.column("key").doUpdateSet({ ...values, key: undefined })).execute();
  // A lease that expired without a release: its holder died, was paused or lost the database.
  const tookOver = row && Number(row.expires_ms) > 0
    ? {
      holder: row.holder,
      instance: row.instance,
      token: Number(row.token),
      runId: row.run_id,
      expiredMs: Number(row.expires_ms),
    }
    : undefined;
  return { granted: { key: request.key, token, expiresMs, ...(tookOver ? { tookOver } : {}) } };
}

/** Extends the leases this instance still holds; returns the keys it no longer holds (taken over meanwhile). */
export async function renewLeases(
  db: Kysely<Database>,
  clockMs: RawBuilder<number>,
  leases: { key: string; token: number }[],
  ttlMs: number,
): Promise<string[]> {
  const lost: string[] = [];
  for (const { key, token } of leases) {
    const result = await db.updateTable("leases")
      .set({ expires_ms: sql<number>`${clockMs} + ${ttlMs}` })
      .where("key", "=", key).where("token", "=", token).executeTakeFirst();
    if (result.numUpdatedRows === 0n) lost.push(key);
  }
  return lost;
}

/** Ends a lease (only with its own token); the row stays, with its token, to fence the writes of those before. */
export async function releaseLease(db: Kysely<Database>, key: string, token: number): Promise<void> {
  await db.updateTable("leases").set({ expires_ms: 0 }).where("key", "=", key).where("token", "=", token).execute();
}

/** Records the run made under a lease (status shows it; a takeover names it). */
export async function setLeaseRun(db: Kysely<Database>, key: string, token: number, runId: string): Promise<void> {
  await db.updateTable("leases").set({ run_id: runId }).where("key", "=", key).where("token", "=", token).execute();
}

/** The first lease of `fence` that another process has acquired since, or undefined when every token is current. */
export async function breachOf(db: Kysely<Database>, fence: Fence): Promise<FenceBreach | undefined> {
  if (fence.leases.length === 0) return undefined;
  const rows = await db.selectFrom("leases").select(["key", "token", "holder"])
    .where("key", "in", fence.leases.map((lease) => lease.key)).execute();
  const current = new Map(rows.map((row) => [row.key, row]));
  for (const { key, token } of fence.leases) {
    const row = current.get(key);
    if (row && Number(row.token) === token) continue;
    return { key, token, currentToken: row ? Number(row.token) : null, currentHolder: row?.holder ?? null };
  }
  return undefined;
}

/** Records a refused write (in its own statement, after the write's transaction was undone). */
export async function recordFencedWrite(
  db: Kysely<Database>,
  write: { op: string; runId: string | null; instance: string; via: "live" | "replay"; at: string },
  breach: FenceBreach,
): Promise<void> {
  await db.insertInto("fenced_writes").values({
    at: write.at,
    op: write.op,
    run_id: write.runId,
    lease_key: breach.key,
    token: breach.token,
    current_token: breach.currentToken,
    current_holder: breach.currentHolder,
    instance: write.instance,
    via: write.via,
  }).execute();
}

/**
 * In a write's transaction: the breach of `fence` that refuses the write, recorded in fenced_writes, or undefined when
 * every token is current and the write may go on.
 */
export async function fenceBreached(
  db: Kysely<Database>,
  fence: Fence,
  write: { op: string; runId: string | null; via: "live" | "replay" },
): Promise<FenceBreach | undefined> {
  const breach = await breachOf(db, fence);
  if (breach) {
    await recordFencedWrite(db, { ...write, instance: fence.instance, at: new Date().toISOString() }, breach);
  }
  return breach;
}

/** The error a refused write throws: which lease, taken over by whom. */
export function fencedError(op: string, breach: FenceBreach): FencedError {
  return new FencedError(
    breach.key,
    `refused to record ${op}: the lease ${breach.key} (token ${breach.token}) was taken over by ` +
      `${breach.currentHolder ?? "another runner"} (token ${breach.currentToken ?? "none"}); this process stops ` +
      "the work it did under it (the refusal is recorded in the state's fenced writes)",
  );
}

/** The leases held now (not released, not expired), with their holders. */
export async function liveLeases(
  db: Kysely<Database>,
  clockMs: RawBuilder<number>,
): Promise<(LeaseHolder & { key: string; token: number })[]> {
  const now = await clockNow(db, clockMs);
  const rows = await db.selectFrom("leases").selectAll().where("expires_ms", ">", now).orderBy("key").execute();
  return rows.map((row) => ({
    key: row.key,
    token: Number(row.token),
    holder: row.holder,
    instance: row.instance,
    runId: row.run_id,
    expiresMs: Number(row.expires_ms),
    nowMs: now,
  }));
}

/**
 * How the project leases of runs made under one stand now: `held` (its token current and not expired: the run may be
 * alive), `expired` (its holder stopped heart-beating; whoever takes the lease next takes the run for dead) or
 * `taken-over` (another process holds the lease now: the run is dead, whatever its process does).
 */
export async function runLeaseStates(
  db: Kysely<Database>,
  clockMs: RawBuilder<number>,
  runs: { id: string; project: string; leaseToken: number }[],
): Promise<Map<string, "held" | "expired" | "taken-over">> {
  const states = new Map<string, "held" | "expired" | "taken-over">();
  if (runs.length === 0) return states;
  const now = await clockNow(db, clockMs);
  const keys = [...new Set(runs.map((run) => projectLeaseKey(run.project)))];
  const rows = await db.selectFrom("leases").select(["key", "token", "expires_ms"]).where("key", "in", keys).execute();
  const byKey = new Map(rows.map((row) => [row.key, row]));
  for (const run of runs) {
    const lease = byKey.get(projectLeaseKey(run.project));
    if (!lease || Number(lease.token) !== run.leaseToken) states.set(run.id, "taken-over");
    else states.set(run.id, Number(lease.expires_ms) > now ? "held" : "expired");
  }
  return states;
}

/** The lease of a project's runs (backups, copies, its forgets' records). */
export function projectLeaseKey(project: string): string {
  return `project:${project}`;
}

/** The lease of a repository's exclusive work (forget, prune, check): one of them at a time, fleet-wide. */
export function repositoryLeaseKey(repository: string): string {
  return `repository:${repository}`;
}

/**
 * The fleet's operations on one state, each in its own write transaction (holding the writers' lock): they must
 * reach the database, so unlike the audit's writes they never go to the fallback file. `refusal`: why this store
 * cannot write (opened read-only), thrown by every write.
 */
export class FleetTables {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: StateDialect,
    private readonly refusal: () => string | undefined,
  ) {}

  #write<T>(body: (db: Kysely<Database>) => Promise<T>): Promise<T> {
    const refusal = this.refusal();
    if (refusal !== undefined) throw new Error(`cannot change the fleet's leases: ${refusal}`);
    return this.dialect.writeTransaction(this.db, body);
  }

  acquire(request: LeaseRequest): Promise<Acquisition> {
    return this.#write((db) => acquireLease(db, this.dialect.clockMs, request));
  }

  renew(leases: { key: string; token: number }[], ttlMs: number): Promise<string[]> {
    return this.#write((db) => renewLeases(db, this.dialect.clockMs, leases, ttlMs));
  }

  release(key: string, token: number): Promise<void> {
    return this.#write((db) => releaseLease(db, key, token));
  }

  setRun(key: string, token: number, runId: string): Promise<void> {
    return this.#write((db) => setLeaseRun(db, key, token, runId));
  }

  register(runner: RunnerRegistration): Promise<RunnerView | undefined> {
    return this.#write((db) => registerRunner(db, this.dialect.clockMs, runner));
  }

  heartbeat(beat: Parameters<typeof heartbeatRunner>[2]): Promise<boolean> {
    return this.#write((db) => heartbeatRunner(db, this.dialect.clockMs, beat));
  }

  stop(name: string, instance: string, at: string): Promise<void> {
    return this.#write((db) => stopRunner(db, name, instance, at));
  }

  // Reads.

  /** The first lease of `fence` taken over since (read now, outside any write). */
  breach(fence: Fence): Promise<FenceBreach | undefined> {
    return breachOf(this.db, fence);
  }

  runners(): Promise<RunnerView[]> {
    return listRunners(this.db, this.dialect.clockMs);
  }

  leases(): Promise<(LeaseHolder & { key: string; token: number })[]> {
    return liveLeases(this.db, this.dialect.clockMs);
  }

  newestConfig(): ReturnType<typeof newestConfig> {
    return newestConfig(this.db, this.dialect.clockMs);
  }

  runLeaseStates(runs: { id: string; project: string; leaseToken: number }[]): ReturnType<typeof runLeaseStates> {
    return runLeaseStates(this.db, this.dialect.clockMs, runs);
  }

  now(): Promise<number> {
    return clockNow(this.db, this.dialect.clockMs);
  }

  /** When each repository's inventory was last listed from restic, by any runner (the apply clock's ISO time). */
  async lastRefreshes(): Promise<Map<string, string | null>> {
    const rows = await this.db.selectFrom("repositories").select(["name", "last_refresh_at"]).execute();
    return new Map(rows.map((row) => [row.name, row.last_refresh_at]));
  }

  /**
   * Per project, who made its latest run: the runner, or the host for a run made outside a fleet (status shows it).
   * One query on runs_project_started, as status's own for the last run.
   */
  async lastRunners(): Promise<Map<string, string>> {
    const rows = await this.db.selectFrom("runs as r").select(["r.project", "r.runner", "r.host"])
      .where("r.started_at", "=", (eb) =>
        eb.selectFrom("runs as i").select((e) => e.fn.max("i.started_at").as("m"))
          .whereRef("i.project", "=", "r.project"))
      .execute();
    return new Map(rows.map((row) => [row.project, row.runner ?? row.host]));
  }

  /** Writes refused by a fence, newest first. */
  async fencedWrites(limit = 50): Promise<Selectable<FencedWriteTable>[]> {
    return await this.db.selectFrom("fenced_writes").selectAll().orderBy("id", "desc").limit(limit).execute();
  }
}
