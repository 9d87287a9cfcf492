/**
 * Scale (issue 20): `plan` for a fleet — 1,000 projects, 1,000,000 audit rows (runs and stages), 100,000 snapshots
 * (`--quick`: 100 projects, a tenth of each) — with the state in SQLite and in PostgreSQL on loopback (a throwaway
 * server, as the tests start). Two figures per database: observe + plan in this process (the state read and the
 * planner, after a warm-up), and the whole `backupctl plan` process (runtime start, config load, state open, observe,
 * plan, render), median of a few runs. Baselines, in the same run: reading every inventory row (SELECT *), and the bare
 * runtime starting (`deno eval 1`).
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { loadConfig } from "../src/config/load.ts";
import { plan } from "../src/plan/planner.ts";
import { StateStore } from "../src/state/store.ts";
import { denoV8Flags, repoRoot } from "../test/support/cli.ts";
import { startPostgres } from "../test/support/postgres.ts";
import { storeDb } from "../test/support/state-db.ts";
import { denoBinary } from "../scripts/runtimes.ts";
import { deferCleanup, measure, median, type Row, seconds, tempDir, time } from "./measure.ts";
import { auditRowsPerProject, fillScaleState, planNow, snapshotsPerProject, writeScaleConfig } from "./scale-state.ts";

const main = join(repoRoot, "src", "main.ts");
const targetMs = 1000;

interface StateKind {
  name: "SQLite" | "PostgreSQL";
  /** The state of `dir` (created, migrated, empty), and what the process needs in its environment to find it. */
  open(dir: string): Promise<{ store: StateStore; env: Record<string, string> }>;
}

const sqliteDatabase: StateKind = {
  name: "SQLite",
  open: async (dir) => ({ store: await StateStore.open(join(dir, ".backupctl")), env: {} }),
};

/** The schema the config names (bench/scale-state.ts). */
const schema = "backupctl";

function postgresDatabase(url: string): StateKind {
  return {
    name: "PostgreSQL",
    open: async (dir) => ({
      store: await StateStore.open(join(dir, ".backupctl"), { postgres: { url, schema } }),
      env: { BACKUPCTL_STATE_URL: url },
    }),
  };
}

export async function scaleBench(options: { quick: boolean; log: (line: string) => void }): Promise<Row[]> {
  const projects = options.quick ? 100 : 1000;
  const runs = options.quick ? 3 : 5;
  const rows: Row[] = [];
  const server = await startPostgres();
  const stopServer = deferCleanup(() => server.stop());
  try {
    await server.createUser("bench", "bench-password");
    await server.createDatabase("state", "bench");
    const url = `postgresql://bench:bench-password@127.0.0.1:${server.port}/state`;
    for (const database of [sqliteDatabase, postgresDatabase(url)]) {
      const scratch = tempDir("backupctl-bench-scale-");
      try {
        options.log(`scale: ${database.name}, filling ${projects * auditRowsPerProject} audit rows`);
        mkdirSync(join(scratch.dir, ".backupctl"));
        const { store, env } = await database.open(scratch.dir);
        try {
          await fillScaleState(storeDb(store), projects, database.name === "SQLite" ? "sqlite" : "postgres");
        } finally {
          await store.close();
        }
        const config = writeScaleConfig(scratch.dir, projects, { postgres: database.name === "PostgreSQL" });
        rows.push(await inProcess(database, scratch.dir, config, env, projects));
        options.log(`scale: ${database.name}, plan processes`);
        rows.push(await wholeProcess(database, scratch.dir, config, env, projects, runs));
      } finally {
        await scratch.remove();
      }
    }
  } finally {
    await stopServer();
  }
  return rows;
}

const size = (projects: number) =>
  `${projects} projects, ${projects * auditRowsPerProject} audit rows, ${projects * snapshotsPerProject} snapshots`;

/** observe() + plan() in this process, as `plan` runs them, against reading every inventory row. */
async function inProcess(
  database: StateKind,
  dir: string,
  config: string,
  env: Record<string, string>,
  projects: number,
): Promise<Row> {
  const state = env.BACKUPCTL_STATE_URL
    ? await StateStore.openPostgresReadOnly(join(dir, ".backupctl"), { url: env.BACKUPCTL_STATE_URL, schema })
    : await StateStore.open(join(dir, ".backupctl"));
  try {
    const loaded = await loadConfig(config);
    const now = new Date(planNow);
    const once = async () => plan(loaded, await state.observe(), now, { generatedAt: now });
    await once(); // warm-up: JIT, the database's caches
    const observeMs = median(await time(3, () => state.observe()));
    const observed = await state.observe();
    const planMs = median(await time(3, () => plan(loaded, observed, now, { generatedAt: now })));
    const baseMs = median(await time(3, () => storeDb(state).selectFrom("snapshots").selectAll().execute()));
    return {
      benchmark: "scale: observe + plan",
      case: `${database.name}: ${size(projects)}`,
      value: `observe ${observeMs.toFixed(0)} ms + plan ${planMs.toFixed(0)} ms`,
      baseline: `reading every inventory row (SELECT *): ${baseMs.toFixed(0)} ms`,
      ratio: (observeMs + planMs) / baseMs,
      note: `${(await once()).actions.length} actions; in one process, after a warm-up; median of 3`,
    };
  } finally {
    await state.close();
  }
}

/** The whole `backupctl plan` process, spawned, against the bare runtime starting. */
async function wholeProcess(
  database: StateKind,
  dir: string,
  config: string,
  env: Record<string, string>,
  projects: number,
  runs: number,
): Promise<Row> {
  const deno = denoBinary();
  const cli = [deno, "run", "--allow-all", "--quiet", denoV8Flags, "--config", join(repoRoot, "deno.json"), main];
  const argv = [...cli, "--config", config, "plan", "--now", planNow];
  const processEnv = { ...env, NO_COLOR: "1", BACKUPCTL_CONFIG: undefined, BACKUPCTL_STATE_DIR: undefined };
  const planMs: number[] = [];
  const baseMs: number[] = [];
  // A warm-up of each (module caches, the database's pages), then `runs` rounds of both.
  for (let round = -1; round < runs; round++) {
    const base = await measure([deno, "eval", "1"], { cwd: dir });
    const result = await measure(argv, { env: processEnv, cwd: dir });
    if (round < 0) continue;
    baseMs.push(base.wallMs);
    planMs.push(result.wallMs);
  }
  const ms = median(planMs);
  const bare = median(baseMs);
  return {
    benchmark: "scale: plan process",
    case: `Deno, ${database.name}: ${size(projects)}`,
    value: seconds(ms),
    baseline: `deno eval 1: ${seconds(bare)}`,
    ratio: ms / bare,
    note: `whole process, median of ${runs} after a warm-up run`,
    target: projects >= 1000
      ? {
        goal: `plan for 1,000 projects with 1,000,000 audit rows and 100,000 snapshots under 1 s (${database.name})`,
        met: ms < targetMs,
        missed: `plan took ${seconds(ms)}; the observe + plan row above shows the share of reading the state ` +
          "(mostly the 100,000 inventory rows, a few microseconds each through the driver and the garbage " +
          "collector) and of planning (retention over every group, the schedules).",
      }
      : undefined,
  };
}
