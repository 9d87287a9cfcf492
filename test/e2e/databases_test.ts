/**
 * End to end with real database servers: a throwaway PostgreSQL cluster and MariaDB server on 127.0.0.1, the real
 * CLI, real pg_dump/mariadb-dump and restic. Each backup is restored into a new database and compared row by row.
 * Failures (missing database, wrong password, a dump killed halfway) must fail the stage and leave no snapshot, and
 * no password or plaintext dump may appear in any process's argv or in a temp file while a backup runs.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  type Stats,
  writeFileSync,
} from "node:fs";
import { homedir, tmpdir } from "node:os";
import { basename, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type CliResult, runCli, runTool } from "../support/cli.ts";
import { mariadbIdent, mariadbLiteral, type MariadbServer, startMariadb } from "../support/mariadb.ts";
import { ident, type PostgresServer, startPostgres } from "../support/postgres.ts";

/** Programs these tests drive, with the Debian package that provides each (CI installs them; never skip). */
function requireTools(tools: [program: string, debianPackage: string][]): void {
  const missing = tools.filter(([program]) =>
    spawnSync("sh", ["-c", 'command -v "$1" >/dev/null 2>&1', "sh", program]).status !== 0
  );
  if (missing.length > 0) {
    throw new Error(
      "missing programs for the database end-to-end tests: " +
        missing.map(([program, pkg]) => `${program} (apt-get install -y ${pkg})`).join(", "),
    );
  }
}

/** A temp folder with a backup.config.ts whose projects each hold one database source, and a local repository. */
interface Workspace {
  dir: string;
  config: string;
  stateDir: string;
  repository: string;
  env: Record<string, string>;
  cli(args: string[], extraEnv?: Record<string, string>): Promise<CliResult>;
  restic(args: string[]): Promise<CliResult>;
  /** Snapshots in the repository carrying every given tag. */
  snapshots(...tags: string[]): Promise<{ id: string; tags: string[]; paths: string[] }[]>;
  /** The backup stages the state database recorded for a run. */
  stages(
    runId: string,
  ): Promise<{ status: string; source: string; snapshot_id: string | null; error: string | null }[]>;
  cleanup(): void;
}

function makeWorkspace(prefix: string, sources: Record<string, string>, env: Record<string, string>): Workspace {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const config = join(dir, "backup.config.ts");
  const projects = Object.entries(sources).map(([project, source]) =>
    `    ${project}: {
      schedule: "0 3 * * *",
      sources: [${source}],
      repositories: ["local"],
      retention: { last: 5 },
    },`
  );
  writeFileSync(
    config,
    `import { defineConfig, env, mysql, postgres, restic } from "backupctl";

export default defineConfig({
  timezone: "UTC",
  repositories: {
    local: restic({ url: "repository", password: env("DB_E2E_RESTIC_PASSWORD") }),
  },
  projects: {
${projects.join("\n")}
  },
});
`,
  );
  const repository = join(dir, "repository");
  const stateDir = join(dir, ".backupctl");
  const resticEnv = { RESTIC_REPOSITORY: repository, RESTIC_PASSWORD: env.DB_E2E_RESTIC_PASSWORD };
  const workspace: Workspace = {
    dir,
    config,
    stateDir,
    repository,
    env,
    cli: (args, extraEnv = {}) =>
      runCli(["--config", config, ...args], {
        env: { ...env, BACKUPCTL_CONFIG: undefined, BACKUPCTL_STATE_DIR: undefined, ...extraEnv },
      }),
    restic: (args) => runTool("restic", ["--no-cache", ...args], { env: resticEnv }),
    snapshots: async (...tags) => {
      const listed = await workspace.restic(["snapshots", "--json", ...(tags.length ? ["--tag", tags.join(",")] : [])]);
      assert.equal(listed.code, 0, listed.stderr);
      return JSON.parse(listed.stdout) ?? [];
    },
    stages: async (runId) => {
      const query = "SELECT status, source, snapshot_id, error FROM stages WHERE type = 'backup' AND run_id = " +
        `'${runId.replaceAll("'", "''")}' ORDER BY id;`;
      const result = await runTool("sqlite3", ["-json", join(stateDir, "state.db"), query]);
      assert.equal(result.code, 0, result.stderr);
      return result.stdout.trim() ? JSON.parse(result.stdout) : [];
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
  return workspace;
}

/** The id of the run an apply started, from its "Run <id> (project P)" line. */
function runIdOf(output: string, project: string): string {
  const match = output.match(new RegExp(`^Run (\\S+) \\(project ${project}\\)$`, "m"));
  assert.ok(match, `no run of project ${project} in:\n${output}`);
  return match[1];
}

/** Private secret files left in the state folder (they must be removed when their stage ends). */
function leftoverSecrets(stateDir: string): string[] {
  try {
    return readdirSync(join(stateDir, "tmp")).filter((name) => name.startsWith("secret-"));
  } catch {
    return [];
  }
}

/** `restic dump … | consumer`, with real pipes (dumps are binary), returning both exit codes and stderr. */
function pipeRestore(
  workspace: Workspace,
  dumpArgs: string[],
  consumer: string[],
): Promise<{ restic: number | null; consumer: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const env = {
      ...process.env,
      RESTIC_REPOSITORY: workspace.repository,
      RESTIC_PASSWORD: workspace.env.DB_E2E_RESTIC_PASSWORD,
    } as Record<string, string>;
    const producer = spawn("restic", ["--no-cache", "dump", ...dumpArgs], { env, stdio: ["ignore", "pipe", "pipe"] });
    const loader = spawn(consumer[0], consumer.slice(1), { stdio: ["pipe", "ignore", "pipe"] });
    let stderr = "";
    producer.stderr!.on("data", (chunk) => (stderr += chunk));
    loader.stderr!.on("data", (chunk) => (stderr += chunk));
    loader.stdin!.on("error", () => {});
    producer.stdout!.pipe(loader.stdin!);
    const codes: [Promise<number | null>, Promise<number | null>] = [
      new Promise((done) => producer.on("close", (code) => done(code))),
      new Promise((done) => loader.on("close", (code) => done(code))),
    ];
    Promise.all(codes).then(([restic, loaded]) => resolve({ restic, consumer: loaded, stderr }));
  });
}

/** What a watch over one apply saw. */
interface Observed {
  /** Processes whose argv held a secret: "pid argv0: secret name". */
  argvLeaks: string[];
  /** Program names seen running during the apply (proves the sampling covered the dump). */
  programs: Set<string>;
  /** Files holding a plaintext dump or table data, outside the allowed places. */
  plaintextFiles: string[];
  /** Private secret files seen, with their permission bits. */
  privateFiles: { path: string; mode: number }[];
  samples: number;
}

interface WatchOptions {
  /** Values that must never appear in any process's argv. */
  secrets: Record<string, string>;
  /** When given, files are scanned too (see `watchApply`). */
  files?: {
    /** Walked completely (the workspace, holding the state folder). */
    workspace: Workspace;
    /** Folders never scanned: the database servers' own storage legitimately holds the data. */
    exclude: string[];
    /** Text that only the table data contains. */
    marker: string;
  };
  /**
   * When the sampler first sees a process running a script of this name, it creates `path`: the script (a wrapper
   * around the real program) waits for that file, so the sampler sees its argv however loaded the machine is.
   */
  seen?: { script: string; path: string };
}

/**
 * Samples every process's argv (/proc/<pid>/cmdline, every 10 ms) and, with `files`, every 20 ms looks at new or
 * changed files in the workspace and in os.tmpdir(): a file other than the state database and the private secret
 * file must never start with "PGDMP" or contain the marker. In os.tmpdir() only entries that appeared after the watch
 * started are examined: anything the apply creates there is new, and older folders belong to other programs.
 */
function watchApply(options: WatchOptions): { stop(): Observed } {
  const observed: Observed = { argvLeaks: [], programs: new Set(), plaintextFiles: [], privateFiles: [], samples: 0 };
  const secrets = Object.entries(options.secrets);
  const seen = new Map<string, string>();
  const tmp = tmpdir();
  const tmpBaseline = new Set(readdirSync(tmp));
  const scanFiles = options.files;
  if (scanFiles) {
    walk(scanFiles.workspace.dir, 8, (path, stat) => seen.set(path, key(stat)), () => true);
    for (const name of tmpBaseline) {
      const path = join(tmp, name);
      try {
        const stat = lstatSync(path);
        if (stat.isFile()) seen.set(path, key(stat));
      } catch {
        // gone already
      }
    }
  }
  const stateDir = scanFiles?.workspace.stateDir ?? "";
  const isAllowed = (path: string) =>
    /^state\.db(-wal|-shm|-journal)?$/.test(basename(path)) && path === join(stateDir, basename(path));
  const isPrivate = (path: string) =>
    path.startsWith(join(stateDir, "tmp", "secret-")) && /\/(pgpass|my\.cnf)$/.test(path);

  const inspect = (path: string, stat: Stats) => {
    const current = key(stat);
    if (seen.get(path) === current) return;
    seen.set(path, current);
    if (isPrivate(path)) {
      observed.privateFiles.push({ path, mode: stat.mode & 0o777 });
      return;
    }
    if (isAllowed(path) || !scanFiles) return;
    let bytes: Buffer;
    try {
      bytes = readFileSync(path);
    } catch {
      return; // removed between the listing and the read
    }
    if (bytes.subarray(0, 5).toString("latin1") === "PGDMP" || bytes.includes(scanFiles.marker)) {
      observed.plaintextFiles.push(path);
    }
  };

  const sampleArgv = () => {
    observed.samples++;
    for (const pid of readdirSync("/proc")) {
      if (!/^\d+$/.test(pid)) continue;
      let argv: string;
      try {
        argv = readFileSync(`/proc/${pid}/cmdline`).toString("utf8");
      } catch {
        continue;
      }
      if (!argv) continue;
      const program = basename(argv.split("\0")[0]);
      observed.programs.add(program);
      // A script's name (argv[1] of its interpreter) counts as a program too: the pg_dump wrapper below.
      const script = argv.split("\0")[1];
      if (script?.startsWith("/")) {
        observed.programs.add(basename(script));
        if (options.seen && basename(script) === options.seen.script) writeFileSync(options.seen.path, "");
      }
      for (const [name, value] of secrets) {
        if (argv.includes(value)) observed.argvLeaks.push(`${pid} ${program}: ${name}`);
      }
    }
  };

  const sampleFiles = () => {
    if (!scanFiles) return;
    const excluded = (path: string) => scanFiles.exclude.some((dir) => path === dir || path.startsWith(`${dir}/`));
    walk(scanFiles.workspace.dir, 8, inspect, (path) => !excluded(path));
    for (const name of readdirSync(tmp)) {
      const path = join(tmp, name);
      if (path === scanFiles.workspace.dir || excluded(path)) continue;
      let stat: Stats;
      try {
        stat = lstatSync(path);
      } catch {
        continue;
      }
      if (stat.isFile()) inspect(path, stat);
      else if (stat.isDirectory() && !tmpBaseline.has(name)) walk(path, 6, inspect, (sub) => !excluded(sub));
    }
  };

  let tick = 0;
  const timer = setInterval(() => {
    sampleArgv();
    if (tick++ % 2 === 0) sampleFiles();
  }, 10);
  return {
    stop: () => {
      clearInterval(timer);
      sampleFiles();
      return observed;
    },
  };
}

function key(stat: Stats): string {
  return `${stat.size}:${stat.mtimeMs}:${stat.ino}`;
}

function walk(
  dir: string,
  depth: number,
  visit: (path: string, stat: Stats) => void,
  descend: (path: string) => boolean,
): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const path = join(dir, name);
    let stat: Stats;
    try {
      stat = lstatSync(path);
    } catch {
      continue;
    }
    if (stat.isDirectory()) {
      if (depth > 0 && descend(path)) walk(path, depth - 1, visit, descend);
    } else if (stat.isFile()) visit(path, stat);
  }
}

/** Every output of a command, for "never printed" checks. */
function outputOf(result: CliResult): string {
  return result.stdout + result.stderr;
}

describe("PostgreSQL sources end to end (real server, pg_dump, restic)", () => {
  let pg: PostgresServer;
  let ws: Workspace;
  const marker = `PGMARK${randomBytes(6).toString("hex")}`;
  const env = {
    DB_E2E_RESTIC_PASSWORD: `restic-e2e-${randomBytes(5).toString("hex")}`,
    // ':' and '\' must survive the pgpass file's escaping.
    PG_BACKUP_PASSWORD: `pg-backup:pw\\${randomBytes(5).toString("hex")}'q`,
    PG_WRONG_PASSWORD: `pg-wrong-${randomBytes(5).toString("hex")}`,
  };
  const tables = ["customers", "orders", "empty_table"];

  before(async () => {
    requireTools([
      ["pg_dump", "postgresql-client"],
      ["pg_restore", "postgresql-client"],
      ["psql", "postgresql-client"],
      ["restic", "restic"],
      ["sqlite3", "sqlite3"],
    ]);
    pg = await startPostgres();
    await pg.createUser("backup", env.PG_BACKUP_PASSWORD);
    await pg.createDatabase("shop", "backup");
    await pg.createDatabase("bigdb", "backup");
    await pg.psql(
      `SET ROLE backup;
      CREATE TABLE customers (
        id integer PRIMARY KEY, name text NOT NULL, note text, balance numeric(12, 2), created_at timestamptz,
        avatar bytea, tags text[], active boolean
      );
      INSERT INTO customers
        SELECT i, 'customer ' || i || ' ${marker}',
          CASE WHEN i % 7 = 0 THEN E'line one\\nline "two" with ''quotes'' \\\\ and\\ttab ' || i END,
          i * 12.34 - 5000, timestamptz '2020-01-01 00:00:00+00' + i * interval '1 hour 17 minutes 3.123456 seconds',
          decode(md5(i::text), 'hex') || '\\x00ff00'::bytea, ARRAY['a', 'b,' || i, NULL], i % 3 = 0
        FROM generate_series(1, 3000) AS i;
      CREATE TABLE orders (
        id bigserial PRIMARY KEY, customer_id integer REFERENCES customers (id), amount numeric(10, 3),
        placed_at timestamp, payload jsonb
      );
      INSERT INTO orders (customer_id, amount, placed_at, payload)
        SELECT 1 + i % 3000, i / 7.0, timestamp '2024-02-29 12:00' - i * interval '1 minute 1.5 seconds',
          jsonb_build_object('n', i, 's', E'\\u00fc\\u00e9 "q" \\u2603')
        FROM generate_series(1, 2000) AS i;
      CREATE TABLE empty_table (id integer PRIMARY KEY);`,
      "shop",
    );
    ws = makeWorkspace("backupctl-e2e-pg-", {
      pg:
        `postgres({ host: "127.0.0.1", port: ${pg.port}, database: "shop", user: "backup", password: env("PG_BACKUP_PASSWORD") })`,
      pg_missing:
        `postgres({ host: "127.0.0.1", port: ${pg.port}, database: "no_such_db", user: "backup", password: env("PG_BACKUP_PASSWORD") })`,
      pg_wrongpw:
        `postgres({ name: "shop_wrongpw", host: "127.0.0.1", port: ${pg.port}, database: "shop", user: "backup", password: env("PG_WRONG_PASSWORD") })`,
      pg_big:
        `postgres({ host: "127.0.0.1", port: ${pg.port}, database: "bigdb", user: "backup", password: env("PG_BACKUP_PASSWORD") })`,
    }, env);
  });

  after(async () => {
    ws?.cleanup();
    await pg?.stop();
  });

  /** A folder holding `pg_dump`: a script that sleeps 0.5 s, then execs the real one with the same arguments. */
  /** A pg_dump that waits (at most 30 s) until the sampler has seen its argv: the file seenPath() exists. */
  const seenPath = () => join(ws.dir, "pg_dump-seen");
  const slowPgDump = () => {
    const dir = join(ws.dir, "slow-bin");
    mkdirSync(dir, { recursive: true });
    const real = spawnSync("sh", ["-c", "command -v pg_dump"], { encoding: "utf8" }).stdout.trim();
    writeFileSync(
      join(dir, "pg_dump"),
      `#!/bin/sh\ni=0\nwhile [ ! -e '${seenPath()}' ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done\n` +
        `exec ${real} "$@"\n`,
      { mode: 0o755 },
    );
    return dir;
  };
  const rows = async (database: string, table: string) =>
    (await pg.psql(`SELECT to_json(t)::text FROM ${ident(table)} AS t ORDER BY id;`, database)).split("\n")
      .filter(Boolean);

  it("apply dumps the database into a tagged snapshot, with no secret in argv and no plaintext temp file", async () => {
    const watch = watchApply({
      secrets: env,
      files: { workspace: ws, exclude: [pg.dir], marker },
      seen: { script: "pg_dump", path: seenPath() },
    });
    let result: CliResult;
    let observed: Observed;
    try {
      // A stale PGPASSWORD in backupctl's environment must not override the configured password. pg_dump is
      // wrapped so that the sampler sees its argv even on a loaded machine: the wrapper waits until the sampler
      // has seen it, then execs the real pg_dump with the very same arguments.
      result = await ws.cli(["apply", "--project", "pg"], {
        PGPASSWORD: "stale-password-from-the-environment",
        PATH: `${slowPgDump()}:${process.env.PATH}`,
      });
    } finally {
      observed = watch.stop();
    }
    assert.equal(result.code, 0, outputOf(result));
    assert.match(result.stdout, /\+ backup pg\/shop → local: snapshot [0-9a-f]{8}/);
    for (const value of Object.values(env)) assert.ok(!outputOf(result).includes(value), "a secret was printed");

    assert.ok(observed.samples > 5, `argv sampled ${observed.samples} times`);
    assert.ok(observed.programs.has("pg_dump"), "the sampler saw pg_dump run (it must, to prove the check)");
    assert.ok(observed.programs.has("restic"), "the sampler saw restic run");
    assert.deepEqual(observed.argvLeaks, [], "a password appeared in a process's argv");
    assert.deepEqual(observed.plaintextFiles, [], "a plaintext dump or table data was written to a file");
    assert.ok(observed.privateFiles.length > 0, "the private pgpass file was seen while the dump ran");
    for (const file of observed.privateFiles) assert.equal(file.mode, 0o600, `${file.path} is private`);
    assert.deepEqual(leftoverSecrets(ws.stateDir), [], "the pgpass file is removed when the stage ends");

    const runId = runIdOf(result.stdout, "pg");
    const snapshots = await ws.snapshots("source=shop");
    assert.equal(snapshots.length, 1);
    for (const tag of ["backupctl", "project=pg", "source=shop", `run=${runId}`]) {
      assert.ok(snapshots[0].tags.includes(tag), `tag ${tag} in ${snapshots[0].tags.join(",")}`);
    }
    assert.deepEqual(snapshots[0].paths, ["/shop.pgdump"]);
    const [stage] = await ws.stages(runId);
    assert.equal(stage.status, "succeeded");
    assert.ok(stage.snapshot_id && snapshots[0].id.startsWith(stage.snapshot_id.slice(0, 8)));
  });

  it("the dump restores with pg_restore into a new database with identical rows", async () => {
    await pg.createDatabase("shop_restored");
    const restored = await pipeRestore(ws, ["latest", "/shop.pgdump", "--tag", "source=shop"], [
      "pg_restore",
      "--no-password",
      "--exit-on-error",
      "--host",
      pg.socketDir,
      "--port",
      String(pg.port),
      "--username",
      "postgres",
      "--dbname",
      "shop_restored",
    ]);
    assert.deepEqual([restored.restic, restored.consumer], [0, 0], restored.stderr);
    for (const table of tables) {
      const original = await rows("shop", table);
      const copy = await rows("shop_restored", table);
      assert.equal(copy.length, original.length, `${table}: row count`);
      for (let i = 0; i < original.length; i++) assert.equal(copy[i], original[i], `${table}: row ${i + 1}`);
    }
    assert.equal((await rows("shop", "customers")).length, 3000);
    assert.equal((await rows("shop", "orders")).length, 2000);
    assert.equal(
      (await pg.psql("SELECT tableowner FROM pg_tables WHERE tablename = 'customers';", "shop_restored")).trim(),
      "backup",
    );
  });

  it("a database that does not exist fails the stage with pg_dump's error and leaves no snapshot", async () => {
    const result = await ws.cli(["apply", "--project", "pg_missing"]);
    assert.equal(result.code, 1, outputOf(result));
    assert.match(result.stdout, /✗ backup pg_missing\/no_such_db → local failed: pg_dump \(the dump\) failed/);
    assert.match(result.stdout, /database "no_such_db" does not exist/);
    assert.doesNotMatch(outputOf(result), /^\s+at /m, "no stack trace");
    for (const value of Object.values(env)) assert.ok(!outputOf(result).includes(value), "a secret was printed");
    assert.deepEqual(await ws.snapshots("source=no_such_db"), []);
    const [stage] = await ws.stages(runIdOf(result.stdout, "pg_missing"));
    assert.equal(stage.status, "failed");
    assert.equal(stage.snapshot_id, null);
    assert.deepEqual(leftoverSecrets(ws.stateDir), []);
  });

  it("a wrong password fails with PostgreSQL's message, leaves no snapshot and is never shown", async () => {
    const watch = watchApply({ secrets: env });
    let result: CliResult;
    let observed: Observed;
    try {
      result = await ws.cli(["apply", "--project", "pg_wrongpw"]);
    } finally {
      observed = watch.stop();
    }
    assert.equal(result.code, 1, outputOf(result));
    assert.match(result.stdout, /✗ backup pg_wrongpw\/shop_wrongpw → local failed: pg_dump \(the dump\) failed/);
    assert.match(result.stdout, /password authentication failed for user "backup"/);
    for (const value of Object.values(env)) assert.ok(!outputOf(result).includes(value), "a secret was printed");
    assert.deepEqual(observed.argvLeaks, []);
    assert.deepEqual(await ws.snapshots("source=shop_wrongpw"), []);
    const [stage] = await ws.stages(runIdOf(result.stdout, "pg_wrongpw"));
    assert.equal(stage.status, "failed");
    assert.ok(stage.error && !stage.error.includes(env.PG_WRONG_PASSWORD));
    assert.deepEqual(leftoverSecrets(ws.stateDir), []);
  });

  it("a pg_dump killed halfway fails the stage and leaves no truncated snapshot", async () => {
    // About 70 MB of dump: far more than pg_dump can write before it is killed.
    await pg.psql(
      `SET ROLE backup;
      CREATE TABLE big (id integer PRIMARY KEY, payload text NOT NULL);
      INSERT INTO big SELECT i, repeat(md5(i::text), 10) FROM generate_series(1, 200000) AS i;`,
      "bigdb",
    );
    const killer = killWhenHalfway(`--port=${pg.port}`, "--dbname=bigdb");
    let result: CliResult;
    let kill: KillReport;
    try {
      result = await ws.cli(["apply", "--project", "pg_big"]);
    } finally {
      kill = killer.stop();
    }
    assert.ok(kill.killed, `pg_dump was not killed while running: ${kill.note}`);
    assert.equal(result.code, 1, outputOf(result));
    const failure = result.stdout.match(
      /✗ backup pg_big\/bigdb → local failed: pg_dump \(the dump\) failed \(exit [^)]+\) after (\d+) bytes/,
    );
    assert.ok(failure, outputOf(result));
    // pg_dump had written more than 64 KiB when it was killed (the kill report); how much of it backupctl's tap read
    // before the stream was stopped depends on the scheduler (none, on a loaded machine).
    const bytes = Number(failure[1]);
    assert.ok(bytes < 60_000_000, `the dump was cut short (${bytes} bytes of about 70 MB; ${kill.note})`);
    const runId = runIdOf(result.stdout, "pg_big");
    assert.deepEqual(await ws.snapshots(`run=${runId}`), [], "no snapshot of the killed run");
    assert.deepEqual(await ws.snapshots("source=bigdb"), []);
    const [stage] = await ws.stages(runId);
    assert.equal(stage.status, "failed");
    assert.equal(stage.snapshot_id, null);
    assert.deepEqual(leftoverSecrets(ws.stateDir), []);
  });
});

interface KillReport {
  killed: boolean;
  note: string;
}

/**
 * Watches /proc for the pg_dump whose argv holds every given argument and SIGKILLs it once it has run 0.3 s or
 * written 8 MiB (whichever comes first), but only after it wrote some output: the kill must land mid-stream.
 */
function killWhenHalfway(...args: string[]): { stop(): KillReport } {
  const report: KillReport = { killed: false, note: "pg_dump never seen" };
  let target: { pid: number; since: number } | undefined;
  const written = (pid: number): number => {
    try {
      const io = readFileSync(`/proc/${pid}/io`, "utf8");
      return Number(io.match(/^wchar: (\d+)$/m)?.[1] ?? 0);
    } catch {
      return -1; // gone, or not readable
    }
  };
  const timer = setInterval(() => {
    if (report.killed) return;
    if (!target) {
      for (const pid of readdirSync("/proc")) {
        if (!/^\d+$/.test(pid)) continue;
        let argv: string[];
        try {
          argv = readFileSync(`/proc/${pid}/cmdline`).toString("utf8").split("\0");
        } catch {
          continue;
        }
        if (basename(argv[0]) === "pg_dump" && args.every((arg) => argv.includes(arg))) {
          target = { pid: Number(pid), since: Date.now() };
          report.note = "pg_dump seen";
          break;
        }
      }
      return;
    }
    const bytes = written(target.pid);
    if (bytes < 0) {
      report.note = "pg_dump finished before it was killed: make the table bigger";
      clearInterval(timer);
      return;
    }
    if (bytes > 64 * 1024 && (Date.now() - target.since >= 300 || bytes >= 8 * 1024 * 1024)) {
      try {
        process.kill(target.pid, "SIGKILL");
        report.killed = true;
        report.note = `killed after ${Date.now() - target.since} ms and ${bytes} bytes written`;
      } catch (error) {
        report.note = `kill failed: ${(error as Error).message}`;
      }
      clearInterval(timer);
    }
  }, 5);
  return {
    stop: () => {
      clearInterval(timer);
      return report;
    },
  };
}

describe("MySQL/MariaDB sources end to end (real server, mariadb-dump, restic)", () => {
  let db: MariadbServer;
  let ws: Workspace;
  const marker = `MDBMARK${randomBytes(6).toString("hex")}`;
  const env = {
    DB_E2E_RESTIC_PASSWORD: `restic-e2e-${randomBytes(5).toString("hex")}`,
    // Quotes, '#' and '\' must survive the option file's quoting.
    MARIADB_BACKUP_PASSWORD: `mdb "backup" #pw\\${randomBytes(5).toString("hex")}'`,
    MARIADB_WRONG_PASSWORD: `mdb-wrong-${randomBytes(5).toString("hex")}`,
  };
  const tables: Record<string, string> = {
    customers: "id, name, note, balance, created_at, HEX(avatar), active",
    orders: "id, customer_id, amount, placed_at, label",
    empty_table: "id",
  };

  before(async () => {
    requireTools([
      ["mariadb-dump", "mariadb-client"],
      ["mariadb", "mariadb-client"],
      ["mariadb-admin", "mariadb-client"],
      ["restic", "restic"],
      ["sqlite3", "sqlite3"],
    ]);
    db = await startMariadb();
    await db.createDatabase("wiki");
    await db.createUser("backup", env.MARIADB_BACKUP_PASSWORD, "wiki");
    // Granted, but never created: the dump must then fail on the missing database, not on access.
    await db.sql("GRANT ALL PRIVILEGES ON `no_such_wiki`.* TO 'backup'@'127.0.0.1';");
    // Dumping a routine someone else defined needs this (documented in docs/configuration.md).
    await db.sql("GRANT SELECT ON mysql.proc TO 'backup'@'127.0.0.1';");
    await db.sql(
      `CREATE TABLE customers (
        id INT PRIMARY KEY, name VARCHAR(200) NOT NULL, note TEXT NULL, balance DECIMAL(12, 2),
        created_at DATETIME(6), avatar BLOB, active BOOLEAN
      ) ENGINE = InnoDB;
      INSERT INTO customers
        SELECT seq, CONCAT('customer ', seq, ' ${marker}'),
          IF(seq % 7 = 0, CONCAT('line one\\nline "two" with ''quotes'' \\\\ and\\ttab ', seq), NULL),
          seq * 12.34 - 5000, TIMESTAMP('2020-01-01') + INTERVAL seq * 4623123456 MICROSECOND,
          UNHEX(CONCAT(MD5(seq), '00FF00')), seq % 3 = 0
        FROM seq_1_to_3000;
      CREATE TABLE orders (
        id BIGINT AUTO_INCREMENT PRIMARY KEY, customer_id INT, amount DECIMAL(10, 3), placed_at DATETIME,
        label VARCHAR(100) CHARACTER SET utf8mb4, FOREIGN KEY (customer_id) REFERENCES customers (id)
      ) ENGINE = InnoDB;
      INSERT INTO orders (customer_id, amount, placed_at, label)
        SELECT 1 + seq % 3000, seq / 7, TIMESTAMP('2024-02-29 12:00:00') - INTERVAL seq MINUTE,
          CONCAT(_utf8mb4 X'C3BCC3A9', ' "q" ', seq, _utf8mb4 X'E29883')
        FROM seq_1_to_2000;
      CREATE TABLE empty_table (id INT PRIMARY KEY) ENGINE = InnoDB;
      CREATE TRIGGER orders_amount BEFORE INSERT ON orders FOR EACH ROW SET NEW.amount = ABS(NEW.amount);
      CREATE PROCEDURE customer_count(OUT n INT) SELECT COUNT(*) INTO n FROM customers;`,
      "wiki",
    );
    ws = makeWorkspace("backupctl-e2e-mariadb-", {
      maria:
        `mysql({ host: "127.0.0.1", port: ${db.port}, database: "wiki", user: "backup", password: env("MARIADB_BACKUP_PASSWORD") })`,
      maria_missing:
        `mysql({ host: "127.0.0.1", port: ${db.port}, database: "no_such_wiki", user: "backup", password: env("MARIADB_BACKUP_PASSWORD") })`,
      maria_wrongpw:
        `mysql({ name: "wiki_wrongpw", host: "127.0.0.1", port: ${db.port}, database: "wiki", user: "backup", password: env("MARIADB_WRONG_PASSWORD") })`,
    }, env);
  });

  after(async () => {
    ws?.cleanup();
    await db?.stop();
  });

  const rows = async (database: string, table: string) =>
    (await db.sql(`SELECT ${tables[table]} FROM ${mariadbIdent(table)} ORDER BY id;`, database)).split("\n")
      .filter(Boolean);

  it("apply dumps the database into a tagged snapshot, with no secret in argv", async () => {
    // Wrong credentials in the operator's ~/.my.cnf must not override the config's.
    const home = join(ws.dir, "home");
    mkdirSync(home);
    writeFileSync(join(home, ".my.cnf"), "[client]\nuser=nobody\npassword=not-the-password\n");
    const runtimeCache = process.env.XDG_CACHE_HOME ?? join(process.env.HOME ?? homedir(), ".cache");
    const watch = watchApply({ secrets: env });
    let result: CliResult;
    let observed: Observed;
    try {
      result = await ws.cli(["apply", "--project", "maria"], { HOME: home, XDG_CACHE_HOME: runtimeCache });
    } finally {
      observed = watch.stop();
    }
    assert.equal(result.code, 0, outputOf(result));
    assert.match(result.stdout, /\+ backup maria\/wiki → local: snapshot [0-9a-f]{8}/);
    for (const value of Object.values(env)) assert.ok(!outputOf(result).includes(value), "a secret was printed");
    assert.ok(observed.programs.has("restic"), "the sampler saw restic run");
    assert.deepEqual(observed.argvLeaks, [], "a password appeared in a process's argv");
    assert.deepEqual(leftoverSecrets(ws.stateDir), [], "the option file is removed when the stage ends");

    const runId = runIdOf(result.stdout, "maria");
    const snapshots = await ws.snapshots("source=wiki");
    assert.equal(snapshots.length, 1);
    for (const tag of ["backupctl", "project=maria", "source=wiki", `run=${runId}`]) {
      assert.ok(snapshots[0].tags.includes(tag), `tag ${tag} in ${snapshots[0].tags.join(",")}`);
    }
    assert.deepEqual(snapshots[0].paths, ["/wiki.sql"]);
    const [stage] = await ws.stages(runId);
    assert.equal(stage.status, "succeeded");
  });

  it("the dump restores with mariadb into a new database with identical rows, routines and triggers", async () => {
    await db.createDatabase("wiki_restored");
    const restored = await pipeRestore(ws, ["latest", "/wiki.sql", "--tag", "source=wiki"], [
      "mariadb",
      "--no-defaults",
      `--socket=${db.socket}`,
      "--user=root",
      "wiki_restored",
    ]);
    assert.deepEqual([restored.restic, restored.consumer], [0, 0], restored.stderr);
    for (const table of Object.keys(tables)) {
      const original = await rows("wiki", table);
      const copy = await rows("wiki_restored", table);
      assert.equal(copy.length, original.length, `${table}: row count`);
      for (let i = 0; i < original.length; i++) assert.equal(copy[i], original[i], `${table}: row ${i + 1}`);
    }
    assert.equal((await rows("wiki", "customers")).length, 3000);
    assert.equal((await rows("wiki", "orders")).length, 2000);
    const objects = await db.sql(
      `SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ${mariadbLiteral("wiki_restored")};
      SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ${mariadbLiteral("wiki_restored")};`,
    );
    assert.deepEqual(objects.trim().split("\n"), ["1", "1"], "the procedure and the trigger were restored");
  });

  it("a database that does not exist fails the stage with mariadb-dump's error and leaves no snapshot", async () => {
    const result = await ws.cli(["apply", "--project", "maria_missing"]);
    assert.equal(result.code, 1, outputOf(result));
    assert.match(
      result.stdout,
      /✗ backup maria_missing\/no_such_wiki → local failed: mariadb-dump \(the dump\) failed/,
    );
    assert.match(result.stdout, /Unknown database 'no_such_wiki'/);
    assert.doesNotMatch(outputOf(result), /^\s+at /m, "no stack trace");
    for (const value of Object.values(env)) assert.ok(!outputOf(result).includes(value), "a secret was printed");
    assert.deepEqual(await ws.snapshots("source=no_such_wiki"), []);
    const [stage] = await ws.stages(runIdOf(result.stdout, "maria_missing"));
    assert.equal(stage.status, "failed");
    assert.equal(stage.snapshot_id, null);
    assert.deepEqual(leftoverSecrets(ws.stateDir), []);
  });

  it("a wrong password fails with MariaDB's message, leaves no snapshot and is never shown", async () => {
    const watch = watchApply({ secrets: env });
    let result: CliResult;
    let observed: Observed;
    try {
      result = await ws.cli(["apply", "--project", "maria_wrongpw"]);
    } finally {
      observed = watch.stop();
    }
    assert.equal(result.code, 1, outputOf(result));
    assert.match(
      result.stdout,
      /✗ backup maria_wrongpw\/wiki_wrongpw → local failed: mariadb-dump \(the dump\) failed/,
    );
    assert.match(result.stdout, /Access denied for user 'backup'@'127\.0\.0\.1' \(using password: YES\)/);
    for (const value of Object.values(env)) assert.ok(!outputOf(result).includes(value), "a secret was printed");
    assert.deepEqual(observed.argvLeaks, []);
    assert.deepEqual(await ws.snapshots("source=wiki_wrongpw"), []);
    const [stage] = await ws.stages(runIdOf(result.stdout, "maria_wrongpw"));
    assert.equal(stage.status, "failed");
    assert.ok(stage.error && !stage.error.includes(env.MARIADB_WRONG_PASSWORD));
    assert.deepEqual(leftoverSecrets(ws.stateDir), []);
  });
});
