/**
 * The schema migrations of a PostgreSQL state: the same names and the same logical schema as migrations.ts (SQLite),
 * written for PostgreSQL — bigint where SQLite's integer holds byte counts, durations or ids (an int4 overflows at
 * 2 GiB), identity columns where SQLite autoincrements. Applied by Kysely's Migrator, its tables in the state's
 * schema. Never edit a released one; a change to the state adds a migration of the same name to both sets.
 */
import type { Kysely, Migration, MigrationProvider } from "kysely";
import { sql } from "kysely";
import {
  addVouched,
  createFleetSchema,
  createLatestStages,
  latestStageUpsert,
  rejudgeSnapshots,
  unvouchingStage,
  vouchedOf,
  vouchingStage,
  vouchSnapshots,
} from "./migrations.ts";

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
        .addColumn("duration_ms", "bigint")
        .addColumn("pid", "bigint", (c) => c.notNull())
        .addColumn("host", "text", (c) => c.notNull())
        .addColumn("config_fingerprint", "text", (c) => c.notNull())
        .addColumn("stage", "text")
        .addColumn("error", "text")
        .execute();
      await db.schema.createIndex("runs_project_started").on("runs").columns(["project", "started_at"]).execute();
      await db.schema.createIndex("runs_status_project").on("runs").columns(["status", "project", "started_at"])
        .execute();

      await db.schema.createTable("stages")
        .addColumn("id", "bigint", (c) => c.primaryKey().generatedByDefaultAsIdentity())
        .addColumn("run_id", "text", (c) => c.references("runs.id"))
        .addColumn("type", "text", (c) => c.notNull())
        .addColumn("project", "text")
        .addColumn("source", "text")
        .addColumn("repository", "text")
        .addColumn("attempt", "integer", (c) => c.notNull().defaultTo(1))
        .addColumn("status", "text", (c) => c.notNull())
        .addColumn("started_at", "text", (c) => c.notNull())
        .addColumn("finished_at", "text")
        .addColumn("duration_ms", "bigint")
        .addColumn("bytes", "bigint")
        .addColumn("snapshot_id", "text")
        .addColumn("error", "text")
        .execute();
      await db.schema.createIndex("stages_run").on("stages").column("run_id").execute();
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
        .addColumn("size", "bigint")
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
        .addColumn("id", "bigint", (c) => c.primaryKey().generatedByDefaultAsIdentity())
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
      await db.schema.createTable("retention_policies")
        .addColumn("project", "text", (c) => c.notNull())
        .addColumn("source", "text", (c) => c.notNull())
        .addColumn("repository", "text", (c) => c.notNull())
        .addColumn("policy", "text", (c) => c.notNull())
        .addColumn("applied_at", "text", (c) => c.notNull())
        .addPrimaryKeyConstraint("retention_policies_pk", ["project", "source", "repository"])
        .execute();
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
      await db.schema.alterTable("snapshots").addColumn("original", "text").execute();
    },
  },
  "0004_run_process_start": {
    async up(db: Kysely<unknown>) {
      await db.schema.alterTable("runs").addColumn("process_start", "text").execute();
      await db.schema.createIndex("runs_status").on("runs").columns(["status", "started_at"]).execute();
      await db.schema.createIndex("snapshots_run").on("snapshots").column("run_id").execute();
    },
  },
  "0005_outbox_delivery": {
    async up(db: Kysely<unknown>) {
      await db.schema.alterTable("outbox").addColumn("project", "text").execute();
      await db.schema.alterTable("outbox").addColumn("key", "text").execute();
      await db.schema.alterTable("outbox").addColumn("given_up_at", "text").execute();
      await db.schema.createIndex("outbox_key").on("outbox").column("key").unique().execute();
      await db.schema.createIndex("outbox_given_up").on("outbox").column("given_up_at").execute();
    },
  },
  "0006_runs_started": {
    async up(db: Kysely<unknown>) {
      await db.schema.createIndex("runs_started").on("runs").column("started_at").execute();
    },
  },
  "0007_history_operations": {
    async up(db: Kysely<unknown>) {
      // Partial, as on SQLite: the operations audited without a run, by time.
      await db.schema.createIndex("stages_operations").on("stages").column("started_at")
        .where(sql.ref("run_id"), "is", null).execute();
      await db.schema.alterTable("stages").addColumn("bytes_added", "bigint").execute();
    },
  },
  "0008_prune_cadence_held_plans": {
    async up(db: Kysely<unknown>) {
      await db.schema.alterTable("stages").addColumn("forgotten", "bigint").execute();
      await db.schema.alterTable("applied_plans").addColumn("held", "text").execute();
    },
  },
  "0009_stage_notes": {
    async up(db: Kysely<unknown>) {
      // No rows to move on PostgreSQL: every state here was written by a version that keeps notes in `note`.
      await db.schema.alterTable("stages").addColumn("note", "text").execute();
    },
  },
  "0010_fleet": {
    async up(db: Kysely<unknown>) {
      // The schema of SQLite's 0010, written once (createFleetSchema): bigint numbers, identity ids.
      await createFleetSchema(db, "bigint", (c) => c.primaryKey().generatedByDefaultAsIdentity());
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
      // One function for both triggers; search_path fixed at creation, so it finds the state's schema whoever writes.
      await sql`CREATE FUNCTION stages_latest() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
        BEGIN ${sql.raw(latestStageUpsert)}; RETURN NULL; END $$`.execute(db);
      await sql`CREATE TRIGGER stages_latest_insert AFTER INSERT ON stages
        FOR EACH ROW EXECUTE FUNCTION stages_latest()`.execute(db);
      await sql`CREATE TRIGGER stages_latest_update AFTER UPDATE OF status ON stages
        FOR EACH ROW WHEN (NEW.status IS DISTINCT FROM OLD.status) EXECUTE FUNCTION stages_latest()`.execute(db);
    },
  },
  "0014_vouched_snapshots": {
    async up(db: Kysely<unknown>) {
      await addVouched(db);
      // A snapshot's flag is set on the row being written (a BEFORE trigger), a stage's vouching after it is written.
      await sql`CREATE FUNCTION snapshots_vouched() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
        BEGIN NEW.vouched := ${sql.raw(vouchedOf("NEW"))}; RETURN NEW; END $$`.execute(db);
      await sql`CREATE TRIGGER snapshots_vouched BEFORE INSERT OR UPDATE OF id, original ON snapshots
        FOR EACH ROW EXECUTE FUNCTION snapshots_vouched()`.execute(db);
      await sql`CREATE FUNCTION stages_vouch() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
        BEGIN ${sql.raw(vouchSnapshots)}; RETURN NULL; END $$`.execute(db);
      await sql`CREATE TRIGGER stages_vouch AFTER INSERT OR UPDATE OF type, status, snapshot_id ON stages
        FOR EACH ROW WHEN (${sql.raw(vouchingStage)}) EXECUTE FUNCTION stages_vouch()`.execute(db);
      await sql`CREATE FUNCTION stages_unvouch() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
        BEGIN ${sql.raw(rejudgeSnapshots)}; RETURN NULL; END $$`.execute(db);
      await sql`CREATE TRIGGER stages_unvouch AFTER UPDATE OF type, status, snapshot_id ON stages
        FOR EACH ROW WHEN (${sql.raw(unvouchingStage.replaceAll(" IS NOT ", " IS DISTINCT FROM "))})
        EXECUTE FUNCTION stages_unvouch()`.execute(db);
    },
  },
};

/** The PostgreSQL migrations, from code like the SQLite ones. */
export const postgresMigrationProvider: MigrationProvider = {
  getMigrations: () => Promise.resolve(migrations),
};

export const latestPostgresMigration = Object.keys(migrations).sort().at(-1) ?? "";
