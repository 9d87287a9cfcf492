/**
 * The backup pipeline against a real PostgreSQL (pgbench data) and local restic repositories:
 *
 * - overhead: `backupctl apply` vs the raw `pg_dump -Fc -Z0 | restic backup --stdin` it runs, and vs the old tool's
 *   temp-file pipeline (pg_dump -Fc to a file, `age -r` to a second file, restic backup of that file, both deleted);
 *   wall and CPU of each whole process tree, every run into a fresh, already initialized repository;
 * - memory: peak RSS of backupctl's own processes (not pg_dump's or restic's) while it streams a dump;
 * - storage: seven simulated days, 1% of the accounts updated each day, backed up by backupctl (uncompressed dump,
 *   restic deduplicates and compresses) and as `pg_dump -Fc` (compressed) files into a second repository;
 * - restore: `backupctl restore --into-database` vs the raw `restic dump | pg_restore`, into fresh databases.
 */
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cliArgv } from "../test/support/cli.ts";
import { ident, type PostgresServer, startPostgres } from "../test/support/postgres.ts";
import { deferCleanup, measure, type Measured, median, mib, type Row, seconds, tempDir } from "./measure.ts";

export interface PipelineRows {
  overhead: Row[];
  memory: Row[];
  storage: Row[];
  restore: Row[];
}

/** pgbench's scale per size: about 13.4 MB of table data per unit (measured: scale 80 holds 1.0 GiB). */
const scales = {
  full: { big: 80, small: 8, storage: 8 },
  quick: { big: 8, small: 1, storage: 1 },
};

const pgPassword = `bench-${randomBytes(6).toString("hex")}`;
const resticPassword = `bench-${randomBytes(6).toString("hex")}`;
const sqlUser = "bench";

export async function pipelineBench(options: { quick: boolean; log: (line: string) => void }): Promise<PipelineRows> {
  const { quick, log } = options;
  const size = quick ? scales.quick : scales.full;
  const runs = quick ? 1 : 3;
  const work = tempDir("backupctl-bench-pipeline-");
  let pg: PostgresServer | undefined;
  const stopPg = deferCleanup(() => pg?.stop());
  try {
    pg = await startPostgres();
    const server = pg;
    await server.createUser(sqlUser, pgPassword);
    const connection = ["--no-password", "--host=127.0.0.1", `--port=${server.port}`, `--username=${sqlUser}`];
    const toolEnv = { PGPASSWORD: pgPassword, RESTIC_PASSWORD: resticPassword, PGAPPNAME: "bench" };

    const tableBytes = async (database: string) =>
      Number(
        await server.psql(
          "SELECT sum(pg_table_size(oid)) FROM pg_class WHERE relname LIKE 'pgbench\\_%' AND relkind = 'r';",
          database,
        ),
      );
    /** Fills `database` with pgbench data of `scale`; returns its table data size in bytes and its accounts. */
    const pgbench = async (database: string, scale: number) => {
      const started = performance.now();
      execFileSync("pgbench", ["-i", "-q", "-I", "dtGvp", "-s", String(scale), ...connection.slice(1), database], {
        env: { ...process.env, ...toolEnv },
        stdio: ["ignore", "ignore", "pipe"],
      });
      const bytes = await tableBytes(database);
      log(
        `  pgbench -s ${scale} (${database}): ${mib(bytes)} of table data in ${seconds(performance.now() - started)}`,
      );
      return { bytes, accounts: scale * 100_000 };
    };

    // Every run starts from a copy of one freshly initialized, empty repository: `restic init` spends a second
    // or more calibrating its key derivation, some twenty times per benchmark run otherwise.
    const template = join(work.dir, "empty-repository");
    execFileSync("restic", ["init", "--repo", template], {
      env: { ...process.env, ...toolEnv },
      stdio: ["ignore", "ignore", "pipe"],
    });
    const resticInit = (repository: string) => cpSync(template, repository, { recursive: true });

    /** A config folder for `database`, its repository already initialized unless `init` is false. */
    const project = (name: string, database: string, init = true) => {
      const dir = join(work.dir, name);
      mkdirSync(dir, { recursive: true });
      writeFileSync(
        join(dir, "backup.config.ts"),
        `import { defineConfig, env, postgres, restic } from "backupctl";

export default defineConfig({
  timezone: "UTC",
  repositories: { local: restic({ url: "repo", password: env("BENCH_RESTIC_PASSWORD") }) },
  projects: {
    bench: {
      schedule: "0 3 * * *",
      sources: [postgres({ host: "127.0.0.1", port: ${server.port}, database: "${database}", user: "${sqlUser}", password: env("BENCH_PG_PASSWORD") })],
      repositories: ["local"],
      retention: { last: 30 },
      check: { every: "365d" },
    },
  },
});
`,
      );
      if (init) resticInit(join(dir, "repo"));
      return { dir, config: join(dir, "backup.config.ts"), repository: join(dir, "repo") };
    };

    /** The programs backupctl starts that are not its own: the database's and restic (its tap and shells count). */
    const external = ["pg_dump", "pg_restore", "psql", "restic"];
    /**
     * Runs backupctl; `sampled` (the default) also samples its memory, which costs the measured processes a little
     * time (the kernel walks their page tables for PSS): timing comparisons run unsampled, like their baselines.
     */
    const backupctl = (config: string, args: string[], sampled = true) =>
      measure([...cliArgv(), "--config", config, ...args], {
        env: {
          BENCH_RESTIC_PASSWORD: resticPassword,
          BENCH_PG_PASSWORD: pgPassword,
          NO_COLOR: "1",
          BACKUPCTL_CONFIG: undefined,
          BACKUPCTL_STATE_DIR: undefined,
        },
        rssExcept: sampled ? external : undefined,
      });
    const shell = (script: string, env: Record<string, string> = {}) =>
      measure(["sh", "-c", script], { env: { ...toolEnv, ...env } });
    const rawBackup = (database: string, repository: string) =>
      shell(
        `pg_dump -Fc -Z0 ${connection.join(" ")} --dbname=${database} | ` +
          `restic backup --no-cache --json --stdin --stdin-filename ${database}.pgdump | tail -n 1`,
        { RESTIC_REPOSITORY: repository },
      );
    const repositorySize = (path: string) => Number(execFileSync("du", ["-sb", path]).toString().split("\t")[0]);
    /** The dump's size, from the raw run's restic summary (the bytes restic read on stdin). */
    const dumpBytes = (list: Measured[]) =>
      (JSON.parse(list[0].stdout.trim()) as { total_bytes_processed: number }).total_bytes_processed;

    /** The clock of each apply: one simulated day after the other, so every apply finds its backup due. */
    let clockDay = 1;
    const nextDay = () => new Date(Date.UTC(2027, 0, clockDay++, 10)).toISOString();
    const applied = (result: Measured, what: string) => {
      if (!/\+ backup bench\/\S+ → local: snapshot/.test(result.stdout)) {
        throw new Error(`${what}: backupctl apply made no backup:\n${result.stdout}\n${result.stderr}`);
      }
      return result;
    };
    /**
     * A pgbench database behind a config whose state has already seen one apply (of the database while still
     * empty), so each measured apply is an ordinary daily run: refresh the inventory, plan, back up, record.
     */
    const steady = async (name: string, database: string, scale: number) => {
      await server.createDatabase(database, sqlUser);
      const created = project(name, database);
      applied(await backupctl(created.config, ["apply", "--now", nextDay()]), `${database}, first apply`);
      return { ...created, database, ...await pgbench(database, scale) };
    };
    /**
     * A daily apply into a fresh, empty repository at the same path: every byte of the dump is new to it. The state's
     * inventory of that repository is emptied to match, as it is in steady use (backupctl the only writer, its
     * inventory current): the refresh before planning then finds the listing unchanged, as on any ordinary day.
     */
    const dailyApply = async (target: { dir: string; config: string; repository: string }, sampled = true) => {
      rmSync(target.repository, { recursive: true, force: true });
      resticInit(target.repository);
      execFileSync("sqlite3", [join(target.dir, ".backupctl", "state.db"), "DELETE FROM snapshots;"]);
      return applied(await backupctl(target.config, ["apply", "--now", nextDay()], sampled), target.config);
    };
    const rawInto = async (database: string, name: string) => {
      const repository = join(work.dir, name);
      resticInit(repository);
      try {
        return await rawBackup(database, repository);
      } finally {
        rmSync(repository, { recursive: true, force: true });
      }
    };

    const accounts = async (database: string) =>
      Number(await server.psql("SELECT count(*) FROM pgbench_accounts;", database));
    /**
     * One round each of `backupctl restore --into-database` and the raw `restic dump | pg_restore` from the latest
     * snapshot of `target`'s repository, each into a fresh database checked for every account, then dropped.
     */
    const restoreRounds = (
      target: { config: string; repository: string },
      expected: number,
      into: { ours: Measured[]; raw: Measured[] },
      sampled = true,
    ) => {
      const snapshots = JSON.parse(
        execFileSync("restic", ["snapshots", "--no-cache", "--json", "--repo", target.repository], {
          env: { ...process.env, ...toolEnv },
        }).toString(),
      ) as { id: string; paths: string[] }[];
      const latest = snapshots.at(-1)!;
      const round = async (who: "ours" | "raw", i: number) => {
        const database = `restore_${who}_${i}`;
        await server.createDatabase(database, sqlUser);
        execFileSync("sync"); // the same start for both: no writeback of earlier rounds left to wait for
        const url = `postgresql://${sqlUser}@127.0.0.1:${server.port}/${database}?passwordEnv=BENCH_PG_PASSWORD`;
        const measured = who === "ours"
          ? await backupctl(target.config, ["restore", "bench", "--into-database", "--target-db", url], sampled)
          : await shell(
            `restic dump --no-cache ${latest.id} ${latest.paths[0]} | ` +
              `pg_restore --exit-on-error --no-owner --no-privileges ${connection.join(" ")} --dbname=${database}`,
            { RESTIC_REPOSITORY: target.repository },
          );
        into[who].push(measured);
        if ((await accounts(database)) !== expected) throw new Error(`${database}: not every account was restored`);
        await server.psql(`DROP DATABASE ${ident(database)};`);
        log(`  ${who === "ours" ? "backupctl restore" : "raw restic dump | pg_restore"}: ${seconds(measured.wallMs)}`);
      };
      return { ours: (i: number) => round("ours", i), raw: (i: number) => round("raw", i) };
    };

    // ---- databases
    log("pipeline: creating the databases");
    const big = await steady("apply-big", "big", size.big);
    const small = await steady("apply-small", "small", size.small);
    const ageKey = join(work.dir, "age.key");
    execFileSync("age-keygen", ["-o", ageKey], { stdio: "ignore" });
    const recipient = /public key: (age1\w+)/.exec(readFileSync(ageKey, "utf8"))![1];

    // ---- 1. overhead, 2. memory (1 GiB case), interleaved so that load from elsewhere hits all three alike
    const raw: Measured[] = [];
    const ours: Measured[] = [];
    const old: Measured[] = [];
    for (let i = 0; i < runs; i++) {
      log(`pipeline: run ${i + 1} of ${runs}`);
      raw.push(await rawInto("big", `raw-${i}`));
      log(`  raw pg_dump | restic: ${seconds(raw[i].wallMs)}`);

      ours.push(await dailyApply(big));
      log(`  backupctl apply: ${seconds(ours[i].wallMs)}, peak RSS ${mib(ours[i].peakRss)}`);

      const oldDir = join(work.dir, `old-${i}`);
      mkdirSync(oldDir);
      resticInit(join(oldDir, "repo"));
      old.push(
        await shell(
          `set -e; cd "$OLD_DIR"
          pg_dump -Fc ${connection.join(" ")} --dbname=big --file=big.pgdump
          age -r "$AGE_RECIPIENT" -o big.pgdump.age big.pgdump
          restic backup --no-cache --json big.pgdump.age > /dev/null
          rm -f big.pgdump big.pgdump.age`,
          { OLD_DIR: oldDir, AGE_RECIPIENT: recipient, RESTIC_REPOSITORY: join(oldDir, "repo") },
        ),
      );
      rmSync(oldDir, { recursive: true, force: true });
      log(`  old temp-file pipeline: ${seconds(old[i].wallMs)}`);
    }

    // The fixed part of apply's overhead, from the small database: start-up, config, state database, planning, audit.
    log("pipeline: the small database (fixed costs, memory)");
    const smallRaw: Measured[] = [];
    const smallApply: Measured[] = [];
    for (let i = 0; i < runs; i++) {
      smallRaw.push(await rawInto("small", `raw-small-${i}`));
      smallApply.push(await dailyApply(small));
    }
    const baselineRss = await measure(
      "Bun" in globalThis
        ? [process.execPath, "-e", "setTimeout(() => {}, 300)"]
        : [process.execPath, "eval", "setTimeout(() => {}, 300)"],
      { rssExcept: [] },
    );

    const [bigDump, smallDump] = [dumpBytes(raw), dumpBytes(smallRaw)];
    const bigCase = `${mib(big.bytes)} of table data (pgbench -s ${size.big}), ${mib(bigDump)} dump`;
    const fmt = (m: { wallMs: number; cpuMs: number }) => `wall ${seconds(m.wallMs)}, CPU ${seconds(m.cpuMs)}`;
    const medianOf = (list: Measured[]) => ({
      wallMs: median(list.map((m) => m.wallMs)),
      cpuMs: median(list.map((m) => m.cpuMs)),
    });
    const [a, b, c] = [medianOf(raw), medianOf(ours), medianOf(old)];
    const fixedMs = medianOf(smallApply).wallMs - medianOf(smallRaw).wallMs;
    const fixedCpuMs = medianOf(smallApply).cpuMs - medianOf(smallRaw).cpuMs;
    // Per GiB of dump beyond the small database's: what scales with the data rather than with the run.
    const perGiBCpu = ((b.cpuMs - a.cpuMs) - fixedCpuMs) / ((bigDump - smallDump) / 2 ** 30);
    const perGiBWall = ((b.wallMs - a.wallMs) - fixedMs) / ((bigDump - smallDump) / 2 ** 30);
    const perGiB = (ms: number) => (ms > 0 ? seconds(ms) : "no measurable");
    const overhead: Row[] = [
      {
        benchmark: "pipeline overhead",
        case: `backupctl apply vs raw pg_dump -Fc -Z0 | restic backup --stdin; ${bigCase}`,
        value: fmt(b),
        baseline: `raw: ${fmt(a)}`,
        ratio: b.wallMs / a.wallMs,
        note: `CPU ratio ${(b.cpuMs / a.cpuMs).toFixed(2)}×; fixed cost per run (small database) ` +
          `${seconds(fixedMs)} wall, ${seconds(fixedCpuMs)} CPU; per GiB of dump ${perGiB(perGiBWall)} wall, ` +
          `${perGiB(perGiBCpu)} CPU; ${runs === 1 ? "1 run" : `median of ${runs}`}`,
        target: {
          goal: "apply within 5% of the raw pipeline's wall time (b/a ≤ 1.05)",
          met: b.wallMs / a.wallMs <= 1.05,
          missed: `apply took ${seconds(b.wallMs - a.wallMs)} longer than the raw pipeline` +
            ` (${((b.wallMs / a.wallMs - 1) * 100).toFixed(1)}%). About ${seconds(fixedMs)} of it is paid once per ` +
            "run whatever the size (the same comparison on the small database): the runtime's start-up, loading the " +
            "TypeScript config, the state database (recovery check, plan, audit rows) and the lock. The rest, " +
            `${perGiB(perGiBWall)} wall and ${perGiB(perGiBCpu)} CPU per GiB of dump, is the tap: one more pipe hop ` +
            "(pg_dump → tap → restic instead of pg_dump → restic), which copies every byte once more through the " +
            "kernel on a machine whose two cores pg_dump and restic already keep busy. The dump itself never passes " +
            "through backupctl. What would fix it: count and check the dump without copying it (a tee(2)/splice(2) " +
            "helper in a compiled language moves pages instead of copying them; perl cannot call them). The fixed " +
            "part is broken down under the 100 MiB rows.",
        },
      },
      {
        benchmark: "pipeline overhead",
        case: `backupctl apply vs the old temp-file pipeline (pg_dump -Fc → file → age -r → file → restic); ${bigCase}`,
        value: fmt(b),
        baseline: `temp files: ${fmt(c)}`,
        ratio: b.wallMs / c.wallMs,
        note: `CPU ratio ${(b.cpuMs / c.cpuMs).toFixed(2)}×; the old pipeline writes the dump to disk twice, but ` +
          "pg_dump's zlib shrinks pgbench's blank-padded rows so far (see storage) that restic gets a small fraction " +
          "of the bytes to chunk, hash and encrypt",
      },
    ];

    // ---- 1b. the 100 MiB database (pgbench -s 8): apply and restore against their raw pipelines, and the memory of
    // apply with and without a CPU hog beside it. Five rounds even with --quick (one run is all noise at this size),
    // taking turns at going first.
    log("pipeline: the 100 MiB database (apply, restore, memory under a CPU hog)");
    const hundred = size.big === 8 ? big : small;
    const hundredRounds = 5;
    const hundredApply = { raw: [] as Measured[], ours: [] as Measured[] };
    for (let i = 0; i < hundredRounds; i++) {
      // Each round starts with nothing left to write back: the 1 GiB runs before leave gigabytes of dirty pages, and
      // whichever pipeline met their writeback in an fsync paid for the other's.
      const rawRound = async () => {
        execFileSync("sync");
        hundredApply.raw.push(await rawInto(hundred.database, `raw-hundred-${i}`));
      };
      const oursRound = async () => {
        execFileSync("sync");
        hundredApply.ours.push(await dailyApply(hundred, false));
      };
      for (const step of i % 2 === 0 ? [oursRound, rawRound] : [rawRound, oursRound]) await step();
    }
    const hundredRestore = { raw: [] as Measured[], ours: [] as Measured[] };
    const hundredRestores = restoreRounds(hundred, hundred.accounts, hundredRestore, false);
    for (let i = 0; i < hundredRounds; i++) {
      for (
        const step of i % 2 === 0 ? [hundredRestores.ours, hundredRestores.raw] : [
          hundredRestores.raw,
          hundredRestores.ours,
        ]
      ) await step(100 + i);
    }
    // Two busy loops, one per core of this machine: every process of the apply competes for the CPU.
    const hogs = [0, 1].map(() => spawn("sh", ["-c", "while :; do :; done"], { stdio: "ignore" }));
    const stopHogs = deferCleanup(() => hogs.forEach((hog) => hog.kill("SIGKILL")));
    const quiet: Measured[] = [];
    for (let i = 0; i < 3; i++) quiet.push(await dailyApply(hundred));
    const underLoad: Measured[] = [];
    try {
      for (let i = 0; i < 3; i++) underLoad.push(await dailyApply(hundred));
    } finally {
      await stopHogs();
    }
    const hundredCase = `${mib(hundred.bytes)} of table data (pgbench -s 8), ${mib(dumpBytes(hundredApply.raw))} dump`;
    const tenPercent = (what: string, ours: Measured[], raw: Measured[], baseline: string): Row => {
      const [x, y] = [medianOf(raw), medianOf(ours)];
      return {
        benchmark: "fixed cost",
        case: `${what}; ${hundredCase}`,
        value: fmt(y),
        baseline: `${baseline}: ${fmt(x)}`,
        ratio: y.wallMs / x.wallMs,
        note: `CPU ratio ${(y.cpuMs / x.cpuMs).toFixed(2)}×; ${seconds(y.wallMs - x.wallMs)} more per run; median of ` +
          `${ours.length} rounds, taking turns at going first`,
        target: {
          goal: `${what.split(" vs ")[0]} at 100 MiB within 1.1× of the raw pipeline`,
          met: y.wallMs / x.wallMs <= 1.1,
          missed: `${(y.wallMs / x.wallMs).toFixed(2)}×: ${seconds(y.wallMs - x.wallMs)} more than the raw ` +
            "pipeline, nearly all of it before restic starts: the raw pipeline starts restic at once, and restic's " +
            "own start (its scrypt key derivation, about 0.85 s on this machine) is in both. Measured with timestamps " +
            "in one apply (2026-12-07): Deno and its Node compatibility layer reach backupctl's entry point at 35 ms " +
            "(a bare script that imports node:fs takes 55 ms whole); the command's modules load in about 115 ms " +
            "(some 640 modules with V8's code cache: Kysely alone is 288 files, zod 99, backupctl's own 189); " +
            "validating the config 27 ms (zod's first parse; ICU's start for the schedule's time zone was 17 ms of " +
            "it); the state database 9 ms, the lock and the plan 25 ms; the FIFOs and restic's gate 25 ms; after " +
            "restic ends, recording and exiting 27 ms. Cut in this round: restore checks that the target database is " +
            "empty while restic starts, and starts the database client only once the check passed (70 ms); FIFOs " +
            "made by mkfifo(3) in-process instead of the mkfifo program (15 ms); the gate without perl's POSIX " +
            "module (9 ms); a config in UTC no longer starts ICU (17 ms, and 6 MiB of memory); an up-to-date state " +
            "database no longer goes through Kysely's Migrator (6 ms); Deno no " +
            "longer reads every command's modules ahead (10 ms); restore no longer loads the planner. Tried and " +
            "left: one esbuild bundle of the whole CLI starts about 45 ms sooner, but breaks every path a module " +
            "finds beside itself and gives the config a second copy of backupctl's helpers; Kysely, zod and " +
            "cron-parser bundled alone save about 20 ms. What is left is the runtime's floor: 1.1× of this size " +
            "leaves 100–150 ms for everything backupctl adds, and the least an apply does before it can start restic " +
            "(bench/floor.ts: Deno with the Node layer, the TypeScript config, zod, Kysely, cron-parser, one child; " +
            "the last start-up row) takes about that on its own. In watch mode, " +
            "which the container runs, the process and its modules are loaded once, not per backup.",
        },
      };
    };
    const fixedCost: Row[] = [
      tenPercent(
        "backupctl apply vs pg_dump -Fc -Z0 | restic backup --stdin",
        hundredApply.ours,
        hundredApply.raw,
        "raw",
      ),
      tenPercent(
        "backupctl restore --into-database vs restic dump | pg_restore",
        hundredRestore.ours,
        hundredRestore.raw,
        "raw",
      ),
    ];
    const quietPeak = Math.max(...quiet.map((m) => m.peakRss));
    const loadedPeak = Math.max(...underLoad.map((m) => m.peakRss));
    const memoryTarget = (peak: number, when: string) => ({
      goal: `apply's peak memory at 100 MiB ≤ 100 MiB ${when}`,
      met: peak <= 100 * 2 ** 20,
      missed: `${mib(peak)} ${when}: the runtime with the modules an apply loads (kysely and SQLite, zod, zx, ` +
        "commander, cron-parser), the gate and the tap (two small perl programs); the dump itself never passes " +
        "through backupctl.",
    });
    fixedCost.push(
      {
        benchmark: "memory",
        case: `peak memory of backupctl apply (PSS of its processes, pg_dump and restic excluded); ${hundredCase}`,
        value: mib(quietPeak),
        baseline: "the same apply with two CPU hogs beside it: " + mib(loadedPeak),
        ratio: quietPeak / (100 * 2 ** 20),
        note: `ratio against the 100 MiB target; largest of ${quiet.length} quiet runs, sampled every 50 ms`,
        target: memoryTarget(quietPeak, "on a quiet machine"),
      },
      {
        benchmark: "memory",
        case: `the same under load: two busy loops (one per core) running beside the apply; ${hundredCase}`,
        value: mib(loadedPeak),
        baseline: `quiet: ${mib(quietPeak)}`,
        ratio: loadedPeak / quietPeak,
        note: `largest of ${underLoad.length} runs; wall ${seconds(median(underLoad.map((m) => m.wallMs)))} (median)`,
        target: memoryTarget(loadedPeak, "with a CPU hog on every core"),
      },
    );

    // ---- 2. memory
    const smallCase = `${mib(small.bytes)} of table data (pgbench -s ${size.small}), ${mib(smallDump)} dump`;
    const bigPeak = Math.max(...ours.map((m) => m.peakRss));
    const smallPeak = Math.max(...smallApply.map((m) => m.peakRss));
    const flat = bigPeak / smallPeak;
    const memory: Row[] = [smallPeak, bigPeak].map((peak, i) => {
      const isBig = i === 1;
      return {
        benchmark: "memory",
        case: `peak RSS of backupctl apply, pg_dump and restic excluded; ${isBig ? bigCase : smallCase}`,
        value: mib(peak),
        baseline: `the bare runtime (${"Bun" in globalThis ? "bun -e" : "deno eval"} with a 300 ms timer): ${
          mib(baselineRss.peakRss)
        }`,
        ratio: peak / baselineRss.peakRss,
        note: isBig
          ? `${flat.toFixed(2)}× the small database's peak${runs > 1 ? `, largest of ${runs} runs` : ""}`
          : "sampled every 50 ms, and each process's VmHWM",
        target: isBig
          ? {
            goal: "under 150 MiB and flat (the larger dump does not raise the peak by more than 20%)",
            met: bigPeak < 150 * 2 ** 20 && flat <= 1.2,
            missed:
              `peak ${mib(bigPeak)}; the small database's was ${mib(smallPeak)}: a dump ${
                (bigDump / smallDump).toFixed(0)
              }× as large raised it ${flat.toFixed(2)}×. The dump does not pass through backupctl (FIFOs between the ` +
              "programs; the tap copies it in 1 MiB blocks), so the figure is the runtime with backupctl's modules " +
              "loaded (kysely and the SQLite driver, zod, zx, the notification channels) plus the tap. What would " +
              "lower it: loading fewer modules in apply (lazy imports of what a run does not use).",
          }
          : undefined,
      };
    });
    rmSync(small.dir, { recursive: true, force: true });

    // ---- 6. restore, from the last apply's repository
    log("restore: backupctl restore --into-database vs restic dump | pg_restore");
    const restored = { ours: [] as Measured[], raw: [] as Measured[] };
    const kept = big;
    const restores = restoreRounds(kept, big.accounts, restored);
    // Interleaved, taking turns at going first: the server's work after a DROP DATABASE (checkpoints, freed pages)
    // then weighs on both alike.
    for (let i = 0; i < runs; i++) {
      for (const step of i % 2 === 0 ? [restores.ours, restores.raw] : [restores.raw, restores.ours]) await step(i);
    }
    const [ra, rb] = [medianOf(restored.raw), medianOf(restored.ours)];
    const restoreMet = rb.wallMs / ra.wallMs <= 1.05;
    const restore: Row[] = [{
      benchmark: "restore",
      case: `backupctl restore --into-database vs restic dump | pg_restore, into a fresh database; ${bigCase}`,
      value: fmt(rb),
      baseline: `raw: ${fmt(ra)}`,
      ratio: rb.wallMs / ra.wallMs,
      note: `CPU ratio ${(rb.cpuMs / ra.cpuMs).toFixed(2)}×; peak RSS of backupctl ${
        mib(Math.max(...restored.ours.map((m) => m.peakRss)))
      }; ${runs === 1 ? "1 run" : `median of ${runs}`}`,
      target: {
        goal: "within 5% of the raw restore's wall time (≤ 1.05)",
        met: restoreMet,
        missed: `backupctl took ${seconds(rb.wallMs - ra.wallMs)} longer. About half a second of it is fixed: the ` +
          "runtime's start-up, the config, the snapshot lookup in the state database, the audited restore stage " +
          "(a small SQLite dump: 1.4 s against 0.95 s raw, measured apart). The dump never passes through " +
          "backupctl, and the tap on its own costs no time (800 MiB through restic dump → tap → reader took 5.5 s " +
          "against 5.4 s through a plain pipe, measured apart): the rest is not explained yet. The fixed part is " +
          "broken down under the 100 MiB rows. Next to look at: pg_restore reading a FIFO whose buffer the tap " +
          "enlarged, and the order of the interleaved runs on a loaded two-core machine.",
      },
    }];
    rmSync(kept.dir, { recursive: true, force: true });
    await server.psql("DROP DATABASE big;");

    // ---- 3. storage
    const storage: Row[] = [];
    const patterns = [
      {
        name: "aid % 100 = day (spread over the whole table)",
        where: (day: number) => `aid % 100 = ${day}`,
      },
      {
        name: "one contiguous aid range per day (changes clustered)",
        where: (day: number, rows: number) => `aid > ${(day - 1) * rows / 100} AND aid <= ${day * rows / 100}`,
      },
    ];
    /** What the last day's apply reported: the dump's size and how much of it restic found new. */
    const lastDay: string[] = [];
    const compressedFile: number[] = [];
    const dumpRepository: number[] = [];
    // --quick: the spread pattern only (the clustered one runs the same code).
    for (const [p, pattern] of patterns.slice(0, quick ? 1 : 2).entries()) {
      log(`storage: 7 days, 1% of the accounts updated per day: ${pattern.name}`);
      const database = `storage_${p}`;
      await server.createDatabase(database, sqlUser);
      const data = await pgbench(database, size.storage);
      // pgbench leaves its filler column blank, which zlib shrinks some 35×: no production table compresses like
      // that, and the baseline would be flattered. Hex digests compress about 2× (text, numbers and ids do 2–4×).
      await server.psql(
        "UPDATE pgbench_accounts SET filler = md5(aid::text) || md5((aid + 1)::text) || left(md5((aid + 2)::text), 20);" +
          " VACUUM FULL pgbench_accounts;",
        database,
      );
      data.bytes = await tableBytes(database);
      const oursProject = project(`storage-ours-${p}`, database, false);
      const dumpDir = join(work.dir, `storage-dump-${p}`);
      mkdirSync(dumpDir);
      resticInit(join(dumpDir, "repo"));
      const times = { ours: [] as number[], dump: [] as number[] };
      for (let day = 1; day <= 7; day++) {
        await server.psql(
          `UPDATE pgbench_accounts SET abalance = abalance + ${day} WHERE ${pattern.where(day, data.accounts)};`,
          database,
        );
        const daily = applied(
          await backupctl(oursProject.config, ["apply", "--now", `2027-01-0${day}T10:00:00Z`]),
          `${database}, day ${day}`,
        );
        times.ours.push(daily.wallMs);
        if (day === 7) lastDay[p] = /snapshot \w+, ([^,]+ read, [^,]+ added)/.exec(daily.stdout)?.[1] ?? "?";
        const dumped = await shell(
          `set -e; cd "$DUMP_DIR"
          pg_dump -Fc ${connection.join(" ")} --dbname=${database} --file=${database}.pgdump
          restic backup --no-cache --json ${database}.pgdump > /dev/null
          wc -c < ${database}.pgdump
          rm -f ${database}.pgdump`,
          { DUMP_DIR: dumpDir, RESTIC_REPOSITORY: join(dumpDir, "repo") },
        );
        times.dump.push(dumped.wallMs);
        compressedFile[p] = Number(dumped.stdout.trim());
      }
      const oursBytes = repositorySize(oursProject.repository);
      const dumpBytes = repositorySize(join(dumpDir, "repo"));
      dumpRepository[p] = dumpBytes;
      storage.push({
        benchmark: "storage, 7 days",
        case: `backupctl's repository vs pg_dump -Fc files' repository; 1% of accounts/day, ${pattern.name}; ` +
          `${mib(data.bytes)} of table data (pgbench -s ${size.storage}, filler filled with hex digests)`,
        value: mib(oursBytes),
        baseline: `pg_dump -Fc (compressed) repository: ${mib(dumpBytes)}`,
        ratio: oursBytes / dumpBytes,
        note: `du -sb after day 7; day 7's apply: ${lastDay[p]}; a compressed dump: ${mib(compressedFile[p])}; ` +
          `per day: backupctl ${seconds(median(times.ours))}, pg_dump -Fc + restic ${seconds(median(times.dump))}`,
      });
      rmSync(oursProject.dir, { recursive: true, force: true });
      rmSync(dumpDir, { recursive: true, force: true });
      await server.psql(`DROP DATABASE ${ident(database)};`);
    }
    const [spread, clustered] = storage;
    const goal = "our repository ≤ 25% of the compressed-dump repository after 7 days";
    spread.target = {
      goal: `${goal} (changes spread evenly)`,
      met: spread.ratio <= 0.25,
      missed: `${(spread.ratio * 100).toFixed(0)}% instead of ≤ 25%. Deduplication finds almost nothing to share ` +
        `(day 7: ${lastDay[0]}): an UPDATE writes the new row version elsewhere in the table (at its end: pgbench ` +
        "fills its pages to 100%), so every 100th row leaves its place in the dump, and with the 1% spread evenly " +
        "every one of restic's content-defined chunks (512 KiB to 8 MiB, about 1 MiB, some 7,000 rows here) holds " +
        "a changed row: each day stores a whole dump again, compressed by restic (zstd) about as well as zlib " +
        `compresses the baseline's dump (${mib(compressedFile[0])}). No chunk-level deduplication gets near the ` +
        "target for evenly spread changes: a chunk stays unchanged with probability 0.99^rows, so staying under 25% " +
        "would need chunks of about a dozen rows, far below restic's 512 KiB minimum (not configurable). What would " +
        "fix it: backing up changes instead of whole dumps (WAL archiving, point-in-time recovery), which is outside " +
        "what a pg_dump pipeline can do. Where changes cluster (appends, recently written rows; the next row), the " +
        "pipeline stays far below the target.",
    };
    if (clustered) {
      clustered.target = {
        goal: `${goal} (changes clustered)`,
        met: clustered.ratio <= 0.25,
        missed: `${(clustered.ratio * 100).toFixed(0)}% instead of ≤ 25% (day 7: ${lastDay[1]}): the day's changed ` +
          "range and the table's end change a few chunks, but restic stored more than those.",
      };
    }

    return { overhead: [...overhead, ...fixedCost], memory, storage, restore };
  } finally {
    await stopPg();
    await work.remove();
  }
}
