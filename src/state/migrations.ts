/** Schema migrations, applied in name order by Kysely's Migrator at every open. Never edit a released one. */
import type { ColumnDefinitionBuilder, Kysely, Migration, MigrationProvider } from "kysely";
import { sql } from "kysely";

const migrations: Record<string, Migration> = {
  "0001_initial": {
    async up(db: Kysely<unknown>) {
      await db.schema.createTable("meta")
        .addColumn("key", "text", (c) => c.primaryKey())
        .addColumn("value", "text", (c) => c.notNull())
        .execute();

      await db.schema.createTable("runs")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("project", "text", (c) => c.notNull())
        .addColumn("status", "text", (c) => c.notNull())
        .addColumn("command", "text", (c) => c.notNull())
        .addColumn("started_at", "text", (c) => c.notNull())
        .addColumn("finished_at", "text")
        .addColumn("duration_ms", "integer")
        .addColumn("pid", "integer", (c) => c.notNull())
        .addColumn("host", "text", (c) => c.notNull())
        .addColumn("config_fingerprint", "text", (c) => c.notNull())
        .addColumn("stage", "text")
        .addColumn("error", "text")
        .execute();
      await db.schema.createIndex("runs_project_started").on("runs").columns(["project", "started_at"]).execute();
      await db.schema.createIndex("runs_status_project").on("runs").columns(["status", "project", "started_at"])
        .execute();

      await db.schema.createTable("stages")
        .addColumn("id", "integer", (c) => c.primaryKey().autoIncrement())
        .addColumn("run_id", "text", (c) => c.references("runs.id"))
        .addColumn("type", "text", (c) => c.notNull())
        .addColumn("project", "text")
        .addColumn("source", "text")
        .addColumn("repository", "text")
        .addColumn("attempt", "integer", (c) => c.notNull().defaultTo(1))
        .addColumn("status", "text", (c) => c.notNull())
        .addColumn("started_at", "text", (c) => c.notNull())
        .addColumn("finished_at", "text")
        .addColumn("duration_ms", "integer")
        .addColumn("bytes", "integer")
        .addColumn("snapshot_id", "text")
        .addColumn("error", "text")
        .execute();
      await db.schema.createIndex("stages_run").on("stages").column("run_id").execute();
      // The planner's question: the latest successful backup of each (project, source, repository).
      await db.schema.createIndex("stages_latest").on("stages")
        .columns(["type", "status", "project", "source", "repository", "started_at"]).execute();

      await db.schema.createTable("snapshots")
        .addColumn("repository", "text", (c) => c.notNull())
        .addColumn("id", "text", (c) => c.notNull())
        .addColumn("short_id", "text", (c) => c.notNull())
        .addColumn("time", "text", (c) => c.notNull())
        .addColumn("project", "text")
        .addColumn("source", "text")
        .addColumn("run_id", "text")
        .addColumn("hostname", "text", (c) => c.notNull())
        .addColumn("tags", "text", (c) => c.notNull())
        .addColumn("paths", "text", (c) => c.notNull())
        .addColumn("size", "integer")
        .addColumn("recorded_at", "text", (c) => c.notNull())
        .addPrimaryKeyConstraint("snapshots_pk", ["repository", "id"])
        .execute();
      await db.schema.createIndex("snapshots_group").on("snapshots")
        .columns(["repository", "project", "source", "time"]).execute();

      await db.schema.createTable("repositories")
        .addColumn("name", "text", (c) => c.primaryKey())
        .addColumn("location", "text", (c) => c.notNull())
        .addColumn("initialized_at", "text")
        .addColumn("last_refresh_at", "text")
        .addColumn("last_check_at", "text")
        .addColumn("last_check_status", "text")
        .execute();

      await db.schema.createTable("outbox")
        .addColumn("id", "integer", (c) => c.primaryKey().autoIncrement())
        .addColumn("channel", "text", (c) => c.notNull())
        .addColumn("event", "text", (c) => c.notNull())
        .addColumn("run_id", "text")
        .addColumn("payload", "text", (c) => c.notNull())
        .addColumn("created_at", "text", (c) => c.notNull())
        .addColumn("next_attempt_at", "text", (c) => c.notNull())
        .addColumn("attempts", "integer", (c) => c.notNull().defaultTo(0))
        .addColumn("delivered_at", "text")
        .addColumn("expires_at", "text", (c) => c.notNull())
        .addColumn("last_error", "text")
        .execute();
      await db.schema.createIndex("outbox_pending").on("outbox").columns(["delivered_at", "next_attempt_at"])
        .execute();

      await sql`INSERT INTO meta (key, value) VALUES ('serial', '0')`.execute(db);
    },
  },
  "0002_retention_and_plans": {
    async up(db: Kysely<unknown>) {
      // The retention policy last applied to each group: a forget under a different policy needs approval.
      await db.schema.createTable("retention_policies")
        .addColumn("project", "text", (c) => c.notNull())
        .addColumn("source", "text", (c) => c.notNull())
        .addColumn("repository", "text", (c) => c.notNull())
        .addColumn("policy", "text", (c) => c.notNull())
        .addColumn("applied_at", "text", (c) => c.notNull())
        .addPrimaryKeyConstraint("retention_policies_pk", ["project", "source", "repository"])
        .execute();
      // Saved plans already applied: a plan file is executed at most once.
      await db.schema.createTable("applied_plans")
        .addColumn("plan_id", "text", (c) => c.primaryKey())
        .addColumn("applied_at", "text", (c) => c.notNull())
        .execute();
      await db.schema.createIndex("stages_maintenance").on("stages")
        .columns(["type", "status", "repository", "started_at"]).execute();
    },
  },
  "0003_snapshot_original": {
    async up(db: Kysely<unknown>) {
      // A copied snapshot names the snapshot it was copied from: what is already in a secondary repository.
      await db.schema.alterTable("snapshots").addColumn("original", "text").execute();
    },
  },
  "0004_run_process_start": {
    async up(db: Kysely<unknown>) {
      // With the pid, the process's start time tells a crashed run from a live one even after the pid is reused.
      await db.schema.alterTable("runs").addColumn("process_start", "text").execute();
      await db.schema.createIndex("runs_status").on("runs").columns(["status", "started_at"]).execute();
      await db.schema.createIndex("snapshots_run").on("snapshots").column("run_id").execute();
    },
  },
  "0005_outbox_delivery": {
    async up(db: Kysely<unknown>) {
      // The project a notification is about, a key that makes an event enqueued once per episode (overdue, summary),
      // and when delivery was given up (undeliverable after expiry, or its channel was removed).
      await db.schema.alterTable("outbox").addColumn("project", "text").execute();
      await db.schema.alterTable("outbox").addColumn("key", "text").execute();
      await db.schema.alterTable("outbox").addColumn("given_up_at", "text").execute();
      await db.schema.createIndex("outbox_key").on("outbox").column("key").unique().execute();
      await db.schema.createIndex("outbox_given_up").on("outbox").column("given_up_at").execute();
    },
  },
  "0006_runs_started": {
    async up(db: Kysely<unknown>) {
      // `history` without a project or status filter reads the newest runs: without this, a scan and a sort.
      await db.schema.createIndex("runs_started").on("runs").column("started_at").execute();
    },
  },
  "0007_history_operations": {
    async up(db: Kysely<unknown>) {
      // `history` lists the operations audited without a run (forget, prune, check, restore, drills, init, unlock)
      // next to the runs, newest first: an index of just those stages by time.
      await db.schema.createIndex("stages_operations").on("stages").column("started_at")
        .where(sql.ref("run_id"), "is", null).execute();
      // What restic says a backup added to the repository (its summary's data_added), next to the bytes it read.
      await db.schema.alterTable("stages").addColumn("bytes_added", "integer").execute();
    },
  },
  "0008_prune_cadence_held_plans": {
    async up(db: Kysely<unknown>) {
      // How many snapshots a forget stage removed: a prune is due when enough were forgotten since the last one.
      await db.schema.alterTable("stages").addColumn("forgotten", "integer").execute();
      // The forget actions of a saved plan held for approval (JSON array of action ids; null when none): only they
      // may run later, once, with `apply PLANFILE --auto-approve`.
      await db.schema.alterTable("applied_plans").addColumn("held", "text").execute();
    },
  },
  "0009_stage_notes": {
    async up(db: Kysely<unknown>) {
      // What a stage that succeeded has to say (the lock it removed, restic's answer to unlock): its own column, so
      // `error` holds errors only. Rows written before kept such notes in `error`: they move.
      await db.schema.alterTable("stages").addColumn("note", "text").execute();
      await sql`UPDATE stages SET note = error, error = NULL WHERE status = 'succeeded' AND error IS NOT NULL`
        .execute(db);
    },
  },
  "0010_fleet": {
    async up(db: Kysely<unknown>) {
      // Several runners sharing one state (a PostgreSQL state; the tables exist on SQLite too, as the schema is one):
      // who runs, the leases that make each project and each repository's exclusive work run in one place, and the
      // writes refused because their lease had been taken over. Runs record their runner and lease token.
      await createFleetSchema(db, "integer", (c) => c.primaryKey().autoIncrement());
    },
  },
  "0011_recorded_snapshots": {
    async up(db: Kysely<unknown>) {
      // The snapshot ids successful backups recorded, by their first 8 characters (restic 0.14 recorded short ids):
      // which inventory snapshots backupctl vouches for is then a lookup per snapshot, not a read of every stage.
      await sql`CREATE INDEX stages_recorded ON stages ((substr(snapshot_id, 1, 8)), snapshot_id)
        WHERE type = 'backup' AND status = 'succeeded' AND snapshot_id IS NOT NULL`.execute(db);
    },
  },
  "0012_snapshots_by_project": {
    async up(db: Kysely<unknown>) {
      // One project's snapshots without reading the inventory: a fleet's project unit plans one project at a time.
      await db.schema.createIndex("snapshots_project").on("snapshots").columns(["project", "time"]).execute();
    },
  },
  "0013_latest_stages": {
    async up(db: Kysely<unknown>) {
      await createLatestStages(db);
      // SQLite's triggers: an upsert of the row's (type, status, group) keeping the newest start.
      for (
        const [name, when] of [["stages_latest_insert", "AFTER INSERT ON stages"], [
          "stages_latest_update",
          "AFTER UPDATE OF status ON stages WHEN NEW.status IS NOT OLD.status",
        ]]
      ) {
        await sql`CREATE TRIGGER ${sql.id(name)} ${sql.raw(when)} BEGIN ${sql.raw(latestStageUpsert)}; END`.execute(db);
      }
    },
  },
  "0014_vouched_snapshots": {
    async up(db: Kysely<unknown>) {
      await addVouched(db);
      // SQLite's triggers cannot change the row being written: the snapshot's flag is set by an update after it.
      for (const [name, when] of [["insert", "AFTER INSERT"], ["update", "AFTER UPDATE OF id, original"]]) {
        await sql`CREATE TRIGGER ${sql.id(`snapshots_vouched_${name}`)} ${sql.raw(when)} ON snapshots BEGIN
          UPDATE snapshots SET vouched = ${sql.raw(vouchedOf("NEW"))}
          WHERE repository = NEW.repository AND id = NEW.id; END`.execute(db);
      }
      for (
        const [name, when] of [["insert", "AFTER INSERT"], ["update", "AFTER UPDATE OF type, status, snapshot_id"]]
      ) {
        await sql`CREATE TRIGGER ${sql.id(`stages_vouch_${name}`)} ${sql.raw(when)} ON stages
          WHEN ${sql.raw(vouchingStage)} BEGIN ${sql.raw(vouchSnapshots)}; END`.execute(db);
      }
      await sql`CREATE TRIGGER stages_unvouch_update AFTER UPDATE OF type, status, snapshot_id ON stages
        WHEN ${sql.raw(unvouchingStage)} BEGIN ${sql.raw(rejudgeSnapshots)}; END`.execute(db);
    },
  },
};

/**
 * Migration 0010's schema (the fleet), written once for both dialects: `int` is SQLite's integer or PostgreSQL's
 * bigint, `id` makes a generated id column as each database does.
 */
export async function createFleetSchema(
  db: Kysely<unknown>,
  int: "integer" | "bigint",
  id: (column: ColumnDefinitionBuilder) => ColumnDefinitionBuilder,
): Promise<void> {
  await db.schema.alterTable("runs").addColumn("runner", "text").execute();
  await db.schema.alterTable("runs").addColumn("lease_token", int).execute();
  await db.schema.createTable("runners")
    .addColumn("name", "text", (c) => c.primaryKey())
    .addColumn("instance", "text", (c) => c.notNull())
    .addColumn("host", "text", (c) => c.notNull())
    .addColumn("pid", int, (c) => c.notNull())
    .addColumn("labels", "text", (c) => c.notNull())
    .addColumn("version", "text", (c) => c.notNull())
    .addColumn("fingerprint", "text", (c) => c.notNull())
    .addColumn("started_at", "text", (c) => c.notNull())
    .addColumn("heartbeat_ms", int, (c) => c.notNull())
    .addColumn("ttl_ms", int, (c) => c.notNull())
    .addColumn("stopped_at", "text")
    .addColumn("work", "text")
    .addColumn("held_back", "text")
    .execute();
  await db.schema.createTable("config_seen")
    .addColumn("fingerprint", "text", (c) => c.primaryKey())
    .addColumn("first_seen_ms", int, (c) => c.notNull())
    .addColumn("runner", "text", (c) => c.notNull())
    .execute();
  await db.schema.createTable("leases")
    .addColumn("key", "text", (c) => c.primaryKey())
    .addColumn("holder", "text", (c) => c.notNull())
    .addColumn("instance", "text", (c) => c.notNull())
    .addColumn("token", int, (c) => c.notNull())
    .addColumn("acquired_ms", int, (c) => c.notNull())
    .addColumn("expires_ms", int, (c) => c.notNull())
    .addColumn("run_id", "text")
    .execute();
  await db.schema.createIndex("leases_instance").on("leases").column("instance").execute();
  await db.schema.createTable("fenced_writes")
    .addColumn("id", int, id)
    .addColumn("at", "text", (c) => c.notNull())
    .addColumn("op", "text", (c) => c.notNull())
    .addColumn("run_id", "text")
    .addColumn("lease_key", "text", (c) => c.notNull())
    .addColumn("token", int, (c) => c.notNull())
    .addColumn("current_token", int)
    .addColumn("current_holder", "text")
    .addColumn("instance", "text", (c) => c.notNull())
    .addColumn("via", "text", (c) => c.notNull())
    .execute();
  await sql`INSERT INTO meta (key, value) VALUES ('fence_token', '0')`.execute(db);
}

/** Migrations from code, not from a folder: the same list under Deno, Bun and in the container. */
export const migrationProvider: MigrationProvider = {
  getMigrations: () => Promise.resolve(migrations),
};

export const latestMigration = Object.keys(migrations).sort().at(-1)!;

/**
 * Migration 0013's table, for both dialects: per (type, status, project, source, repository) the newest start of a
 * stage, kept by triggers on `stages` (every write path, the fallback's replay and `state push/pull` included), so
 * the planner reads one row per group instead of grouping a million audit rows. A column without a value is ''
 * (a key cannot hold NULL). Rows only grow newer: stages are never deleted and their start never changes, and a
 * stage's status goes from running to its end once.
 */
export async function createLatestStages(db: Kysely<unknown>): Promise<void> {
  await db.schema.createTable("latest_stages")
    .addColumn("type", "text", (c) => c.notNull())
    .addColumn("status", "text", (c) => c.notNull())
    .addColumn("project", "text", (c) => c.notNull())
    .addColumn("source", "text", (c) => c.notNull())
    .addColumn("repository", "text", (c) => c.notNull())
    .addColumn("started_at", "text", (c) => c.notNull())
    .addPrimaryKeyConstraint("latest_stages_pk", ["type", "status", "project", "source", "repository"])
    .execute();
  await sql`INSERT INTO latest_stages (type, status, project, source, repository, started_at)
    SELECT type, status, coalesce(project, ''), coalesce(source, ''), coalesce(repository, ''), max(started_at)
    FROM stages GROUP BY type, status, coalesce(project, ''), coalesce(source, ''), coalesce(repository, '')`
    .execute(db);
}

/** The statement both dialects' triggers run for the stage row NEW. */
export const latestStageUpsert = `INSERT INTO latest_stages (type, status, project, source, repository, started_at)
  VALUES (NEW.type, NEW.status, coalesce(NEW.project, ''), coalesce(NEW.source, ''), coalesce(NEW.repository, ''),
    NEW.started_at)
  ON CONFLICT (type, status, project, source, repository) DO UPDATE SET started_at = excluded.started_at
    WHERE excluded.started_at > latest_stages.started_at`;

/**
 * Whether a successful backup recorded `id` (an SQL expression): the recorded id may be short (restic 0.14 reports 8
 * characters) or the inventory's, and they match when one starts with the other. The stages_recorded index (migration
 * 0011) answers it with a seek; its terms are written out as literals, as SQLite uses a partial index only for them.
 */
function recorded(id: string): string {
  return `EXISTS (SELECT 1 FROM stages t
    WHERE substr(t.snapshot_id, 1, 8) = substr(${id}, 1, 8)
      AND t.type = 'backup' AND t.status = 'succeeded' AND t.snapshot_id IS NOT NULL
      AND (substr(${id}, 1, length(t.snapshot_id)) = t.snapshot_id OR substr(t.snapshot_id, 1, length(${id})) = ${id}))`;
}

/** The `vouched` value of the snapshot row `row` (NEW in a trigger, the table in the migration's update): 1 or 0. */
export function vouchedOf(row: string): string {
  return `CASE WHEN ${recorded(`${row}.id`)} OR (${row}.original IS NOT NULL AND ${recorded(`${row}.original`)})
    THEN 1 ELSE 0 END`;
}

/** The condition on a stage row NEW under which it vouches for the snapshots it names. */
export const vouchingStage = "NEW.type = 'backup' AND NEW.status = 'succeeded' AND NEW.snapshot_id IS NOT NULL";

/**
 * The statement both dialects' stage triggers run for a stage NEW that vouches: the snapshots not vouched for yet whose
 * id, or whose original's, the stage recorded (the match of {@link recorded}). Only the unvouched are looked at,
 * through their partial index: usually none.
 */
export const vouchSnapshots = `UPDATE snapshots SET vouched = 1 WHERE vouched = 0 AND ${namedBy("NEW")}`;

/** The snapshots (by id, or a copy by its original's) the stage row `stage` (NEW or OLD in a trigger) names. */
function namedBy(stage: "NEW" | "OLD"): string {
  return `(
    (substr(id, 1, 8) = substr(${stage}.snapshot_id, 1, 8) AND (substr(id, 1, length(${stage}.snapshot_id)) = ${stage}.snapshot_id
      OR substr(${stage}.snapshot_id, 1, length(id)) = id))
    OR (original IS NOT NULL AND substr(original, 1, 8) = substr(${stage}.snapshot_id, 1, 8)
      AND (substr(original, 1, length(${stage}.snapshot_id)) = ${stage}.snapshot_id
        OR substr(${stage}.snapshot_id, 1, length(original)) = original)))`;
}

/**
 * The condition on a stage row changed from OLD to NEW under which the snapshots OLD named may have lost their
 * voucher: OLD vouched, and NEW no longer does, or names another snapshot. backupctl never does this (a backup stage
 * that succeeded stays so), but an edited or repaired state must not keep a snapshot vouched for by a stage that failed.
 */
export const unvouchingStage = "OLD.type = 'backup' AND OLD.status = 'succeeded' AND OLD.snapshot_id IS NOT NULL " +
  "AND (NEW.type IS NOT 'backup' OR NEW.status IS NOT 'succeeded' OR NEW.snapshot_id IS NULL " +
  "OR NEW.snapshot_id IS NOT OLD.snapshot_id)";

/** What both dialects' triggers run for {@link unvouchingStage}: those snapshots judged again against the stages. */
export const rejudgeSnapshots = `UPDATE snapshots SET vouched = ${vouchedOf("snapshots")} WHERE vouched = 1 AND ${
  namedBy("OLD")
}`;

/**
 * Migration 0014's column, for both dialects: `snapshots.vouched` is 1 when a successful backup stage recorded the
 * snapshot (by its id or, for a copy, its original's), so that the planner reads which snapshots backupctl vouches for
 * from the inventory's few unvouched rows (their partial index) instead of looking each snapshot up in the audit.
 * Kept by triggers on both tables (every write path, the fallback's replay and `state push/pull` included): a snapshot
 * written is judged against the stages, a stage that succeeds vouches for the snapshots it names, and a stage that
 * stops vouching (only an edited state does that: stages are never deleted and a backup stage that succeeded stays so)
 * has the snapshots it named judged again.
 */
export async function addVouched(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable("snapshots").addColumn("vouched", "integer", (c) => c.notNull().defaultTo(0)).execute();
  await sql`UPDATE snapshots SET vouched = ${sql.raw(vouchedOf("snapshots"))}`.execute(db);
  await sql`CREATE INDEX snapshots_unvouched ON snapshots (repository, id) WHERE vouched = 0`.execute(db);
}
