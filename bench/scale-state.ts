/**
 * A fleet-sized state for the scale benchmark (bench/scale.ts): a config of N projects and a state holding, per
 * project, 400 runs with their backup stages, 200 operations audited without a run (refresh, forget, check, verify:
 * 1,000 audit rows per project in all) and 100 snapshots in the inventory. Filled in SQL, on SQLite or on PostgreSQL,
 * so that a million rows take seconds, not minutes.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Kysely, sql } from "kysely";
import type { Database } from "../src/state/schema.ts";
import { repoRoot } from "../test/support/cli.ts";

export const runsPerProject = 400;
export const operationsPerProject = 200;
export const snapshotsPerProject = 100;
/** Runs, their backup stages and the operations: the audit rows of one project. */
export const auditRowsPerProject = 2 * runsPerProject + operationsPerProject;
/** The newest run of project p started p seconds before this; the plan is made an hour later. */
export const stateNow = "2026-11-21T10:00:00.000Z";
export const planNow = "2026-11-21T11:00:00Z";

/**
 * Writes a config of `projects` projects (each one SQLite source, a daily schedule at its own minute, half in
 * Europe/Berlin, the retention the state last applied) into `dir`; returns its path. The projects are made by a loop,
 * as a fleet's config would make them from a list.
 */
export function writeScaleConfig(dir: string, projects: number, options: { postgres?: boolean } = {}): string {
  const file = join(dir, "backup.config.ts");
  const mod = join(repoRoot, "src", "mod.ts");
  writeFileSync(
    file,
    `import { defineConfig, env, restic, sqlite } from ${JSON.stringify(mod)};

const projects = Object.fromEntries(Array.from({ length: ${projects} }, (_, i) => [\`p\${i}\`, {
  schedule: \`\${i % 60} \${i % 24} * * *\`,
  timezone: i % 2 === 0 ? "UTC" : "Europe/Berlin",
  sources: [sqlite({ path: \`/srv/p\${i}/app.db\`, name: "db" })],
  repositories: ["local"],
  retention: { daily: 100, monthly: 12 },
}]));

export default defineConfig({
  timezone: "UTC",
  ${options.postgres ? 'state: { url: env("BACKUPCTL_STATE_URL"), schema: "backupctl" },' : ""}
  repositories: { local: restic({ url: "/srv/restic", password: env("RESTIC_PASSWORD") }) },
  projects,
});
`,
  );
  return file;
}

/** The retention policy the config declares, as the state records it (canonical JSON): nothing needs approval. */
const recordedPolicy = '{"daily":100,"monthly":12}';

/** What differs between the two databases in the fill: the row generator, timestamps, hex ids. */
interface FillDialect {
  /** A FROM item yielding i = 0 … count - 1 (a CTE on SQLite, generate_series on PostgreSQL). */
  series(count: number): { with: string; from: string };
  /** The ISO timestamp `seconds` (an integer expression) before the state's now. */
  before(seconds: string): string;
  /** A `width`-digit hex number of an integer expression. */
  hex(value: string, width: number): string;
}

const sqliteFill: FillDialect = {
  series: (count) => ({
    with: `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ${count - 1})`,
    from: "n",
  }),
  before: (seconds) => `strftime('%Y-%m-%dT%H:%M:%fZ', '${stateNow}', printf('%d seconds', -(${seconds})))`,
  hex: (value, width) => `printf('%0${width}x', ${value})`,
};

const postgresFill: FillDialect = {
  series: (count) => ({ with: "", from: `generate_series(0, ${count - 1}) AS n(i)` }),
  before: (seconds) =>
    `to_char((timestamptz '${stateNow}' - make_interval(secs => ${seconds})) AT TIME ZONE 'UTC', ` +
    `'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`,
  hex: (value, width) => `lpad(to_hex(${value}), ${width}, '0')`,
};

/**
 * Fills an empty, migrated state with the history of `projects` projects (see the top of this file). Run k of project
 * p started k × 6 h + p s before now; every 20th failed; the backups of every fourth run are the inventory's
 * snapshots (one a day), the older ones long forgotten.
 */
export async function fillScaleState(db: Kysely<Database>, projects: number, dialect: "sqlite" | "postgres") {
  const d = dialect === "sqlite" ? sqliteFill : postgresFill;
  const run = (text: string) => sql.raw(text).execute(db);
  const p = `(i % ${projects})`;
  const k = `(i / ${projects})`;
  const started = `${d.before(`${k} * 21600 + ${p}`)}`;
  const failed = `${k} % 20 = 7`;
  const runs = d.series(projects * runsPerProject);
  await run(`${runs.with} INSERT INTO runs (id, project, status, command, started_at, finished_at, duration_ms, pid,
      host, config_fingerprint, stage, error)
    SELECT 'r' || ${p} || '-' || ${k}, 'p' || ${p}, CASE WHEN ${failed} THEN 'failed' ELSE 'succeeded' END, 'apply',
      ${started}, ${d.before(`${k} * 21600 + ${p} - 60`)}, 60000, 4242, 'bench', 'fingerprint', NULL,
      CASE WHEN ${failed} THEN 'pg_dump exited with 1' ELSE NULL END
    FROM ${runs.from}`);
  // A snapshot id as restic makes them, spread over the whole range from the first digit on (a multiplicative hash
  // in front of the number itself, which keeps it unique).
  const idOf = (n: string) => `${d.hex(`((${n}) * 2654435761) % 4294967296`, 8)} || ${d.hex(n, 56)}`;
  // The snapshot of run k: the inventory's for every fourth run (snapshot k / 4), another one (forgotten) else.
  const snapshotOf = (project: string, s: string) => idOf(`${project} * ${snapshotsPerProject} + ${s}`);
  await run(`${runs.with} INSERT INTO stages (run_id, type, project, source, repository, attempt, status, started_at,
      finished_at, duration_ms, bytes, bytes_added, snapshot_id, error)
    SELECT 'r' || ${p} || '-' || ${k}, 'backup', 'p' || ${p}, 'db', 'local', 1,
      CASE WHEN ${failed} THEN 'failed' ELSE 'succeeded' END, ${started}, ${d.before(`${k} * 21600 + ${p} - 55`)},
      55000, 1048576, 4096,
      CASE WHEN ${failed} THEN NULL WHEN ${k} % 4 = 0 AND ${k} / 4 < ${snapshotsPerProject}
        THEN ${snapshotOf(p, `${k} / 4`)} ELSE ${idOf(`1000000000 + i`)} END,
      CASE WHEN ${failed} THEN 'pg_dump exited with 1' ELSE NULL END
    FROM ${runs.from}`);
  const operations = d.series(projects * operationsPerProject);
  const j = `(i / ${projects})`;
  await run(`${operations.with} INSERT INTO stages (run_id, type, project, source, repository, attempt, status,
      started_at, finished_at, duration_ms, forgotten)
    SELECT NULL, CASE ${j} % 4 WHEN 0 THEN 'refresh' WHEN 1 THEN 'forget' WHEN 2 THEN 'check' ELSE 'verify' END,
      'p' || ${p}, NULL, 'local', 1, 'succeeded', ${d.before(`${j} * 43200 + ${p} + 3000`)},
      ${d.before(`${j} * 43200 + ${p} + 2990`)}, 10000, CASE WHEN ${j} % 4 = 1 THEN 1 ELSE NULL END
    FROM ${operations.from}`);
  const inventory = d.series(projects * snapshotsPerProject);
  const s = `(i / ${projects})`;
  await run(`${inventory.with} INSERT INTO snapshots (repository, id, short_id, time, project, source, run_id, hostname,
      tags, paths, size, recorded_at)
    SELECT 'local', ${snapshotOf(p, s)}, substr(${snapshotOf(p, s)}, 1, 8), ${d.before(`${s} * 86400 + ${p} - 30`)},
      'p' || ${p}, 'db', 'r' || ${p} || '-' || (${s} * 4), 'bench',
      '["backupctl","project=p' || ${p} || '","source=db","run=r' || ${p} || '-' || (${s} * 4) || '"]',
      '["/db.sql"]', 1048576, '${stateNow}'
    FROM ${inventory.from}`);
  const policies = d.series(projects);
  await run(`${policies.with} INSERT INTO retention_policies (project, source, repository, policy, applied_at)
    SELECT 'p' || i, 'db', 'local', '${recordedPolicy}', '${stateNow}' FROM ${policies.from}`);
  await run(`INSERT INTO repositories (name, location, initialized_at, last_refresh_at, last_check_at,
      last_check_status) VALUES ('local', '/srv/restic', '2026-01-01T00:00:00.000Z', '${stateNow}', '${stateNow}', 'ok')`);
  await run("ANALYZE");
}
