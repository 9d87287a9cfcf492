/**
 * The fleet's runners (see fleet.ts and docs/fleet.md): registration under a unique live name, heartbeats in the
 * database's clock, a clean stop, the list status shows, and the config the fleet runs (the one first seen last
 * among the live runners' configs). Run inside the store's write transactions, like the leases.
 */
import type { Kysely, RawBuilder } from "kysely";
import { clockNow } from "./fleet.ts";
import type { Database, RunnerTable } from "./schema.ts";

export interface RunnerRegistration {
  name: string;
  instance: string;
  host: string;
  pid: number;
  labels: string[];
  version: string;
  fingerprint: string;
  startedAt: string;
  ttlMs: number;
}

/** A runner row as status shows it, with whether it is alive by the database's clock. */
export interface RunnerView extends RunnerRegistration {
  heartbeatMs: number;
  stoppedAt: string | null;
  work: string | null;
  heldBack: string | null;
  /** Stopped cleanly, heart-beating, or silent past its TTL. */
  state: "stopped" | "live" | "lost";
  /** How long since its last heartbeat, by the database's clock. */
  silentMs: number;
}

/**
 * Registers a runner under its name; refused (the live holder returned) while another instance of that name still
 * heart-beats. The config it brings is recorded as seen, with its first time.
 */
export async function registerRunner(
  db: Kysely<Database>,
  clockMs: RawBuilder<number>,
  runner: RunnerRegistration,
): Promise<RunnerView | undefined> {
  const now = await clockNow(db, clockMs);
  const existing = await db.selectFrom("runners").selectAll().where("name", "=", runner.name).executeTakeFirst();
  if (existing && existing.instance !== runner.instance) {
    const view = runnerView(existing, now);
    if (view.state === "live") return view;
  }
  const values: RunnerTable = {
    name: runner.name,
    instance: runner.instance,
    host: runner.host,
    pid: runner.pid,
    labels: JSON.stringify(runner.labels),
    version: runner.version,
    fingerprint: runner.fingerprint,
    started_at: runner.startedAt,
    heartbeat_ms: now,
    ttl_ms: runner.ttlMs,
    stopped_at: null,
    work: null,
    held_back: null,
  };
  await db.insertInto("runners").values(values)
    .onConflict((c) => c.column("name").doUpdateSet({ ...values, name: undefined })).execute();
  await recordConfigSeen(db, now, runner.fingerprint, runner.name);
  return undefined;
}

async function recordConfigSeen(db: Kysely<Database>, now: number, fingerprint: string, runner: string) {
  await db.insertInto("config_seen").values({ fingerprint, first_seen_ms: now, runner })
    .onConflict((c) => c.column("fingerprint").doNothing()).execute();
}

/**
 * A runner's heartbeat: its time, config, work and why it holds back, in one update. False when its name now belongs
 * to another instance (this one was taken for lost and its name reused).
 */
export async function heartbeatRunner(
  db: Kysely<Database>,
  clockMs: RawBuilder<number>,
  beat: { name: string; instance: string; fingerprint: string; work: string | null; heldBack: string | null },
): Promise<boolean> {
  const now = await clockNow(db, clockMs);
  const result = await db.updateTable("runners").set({
    heartbeat_ms: now,
    fingerprint: beat.fingerprint,
    work: beat.work,
    held_back: beat.heldBack,
    stopped_at: null,
  }).where("name", "=", beat.name).where("instance", "=", beat.instance).executeTakeFirst();
  if (result.numUpdatedRows === 0n) return false;
  await recordConfigSeen(db, now, beat.fingerprint, beat.name);
  return true;
}

/** A runner stopping cleanly: it is no longer expected, and never reported lost. */
export async function stopRunner(db: Kysely<Database>, name: string, instance: string, at: string): Promise<void> {
  await db.updateTable("runners").set({ stopped_at: at, work: null })
    .where("name", "=", name).where("instance", "=", instance).execute();
}

/** Every runner the state knows, by name, judged by the database's clock. */
export async function listRunners(db: Kysely<Database>, clockMs: RawBuilder<number>): Promise<RunnerView[]> {
  const now = await clockNow(db, clockMs);
  const rows = await db.selectFrom("runners").selectAll().orderBy("name").execute();
  return rows.map((row) => runnerView(row, now));
}

/**
 * The config the fleet runs: among live runners' fingerprints, the one first seen last. A runner started again with
 * an older config does not make it the newest: its fingerprint was seen long before.
 */
export async function newestConfig(
  db: Kysely<Database>,
  clockMs: RawBuilder<number>,
): Promise<{ fingerprint: string; firstSeenMs: number; runner: string } | undefined> {
  const live = (await listRunners(db, clockMs)).filter((runner) => runner.state === "live");
  if (live.length === 0) return undefined;
  const rows = await db.selectFrom("config_seen").selectAll()
    .where("fingerprint", "in", [...new Set(live.map((runner) => runner.fingerprint))]).execute();
  const newest = rows.sort((a, b) => Number(b.first_seen_ms) - Number(a.first_seen_ms))[0];
  return newest
    ? { fingerprint: newest.fingerprint, firstSeenMs: Number(newest.first_seen_ms), runner: newest.runner }
    : undefined;
}

function runnerView(row: RunnerTable, now: number): RunnerView {
  const heartbeatMs = Number(row.heartbeat_ms);
  const ttlMs = Number(row.ttl_ms);
  let labels: string[] = [];
  try {
    const parsed: unknown = JSON.parse(row.labels);
    if (Array.isArray(parsed)) labels = parsed.filter((label): label is string => typeof label === "string");
  } catch {
    // a row written by hand: no labels
  }
  return {
    name: row.name,
    instance: row.instance,
    host: row.host,
    pid: Number(row.pid),
    labels,
    version: row.version,
    fingerprint: row.fingerprint,
    startedAt: row.started_at,
    heartbeatMs,
    ttlMs,
    stoppedAt: row.stopped_at,
    work: row.work,
    heldBack: row.held_back,
    state: row.stopped_at !== null ? "stopped" : now - heartbeatMs > ttlMs ? "lost" : "live",
    silentMs: Math.max(0, now - heartbeatMs),
  };
}
