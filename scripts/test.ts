/**
 * Runs the suite under Deno and under Bun, and the container tests (test/container/podman*.ts, once, under Deno), side
 * by side, and ends with one line `N passed, N failed` over all of them.
 * Usage: test.ts [deno|bun|container] [test paths…]. Exit 1 when anything failed.
 *
 * The parts run at the same time because much of the suite waits (for servers, timeouts, the container's schedule
 * slot) rather than computes; each part's lines are printed as they come, prefixed with the part's name.
 * BACKUPCTL_TEST_SERIAL=1 runs them one after the other instead.
 *
 * Deno's part type-checks the test paths once (`deno check`), then runs `deno test --no-check`: a type error fails the
 * run without each test worker checking the files again.
 *
 * Within each runtime the slowest files start first (scripts/test-order.ts, from test/timings-deno.json and -bun.json); with
 * BACKUPCTL_TEST_TIMINGS=update the run's per-file figures are written back there.
 */
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join, relative } from "node:path";
import { createInterface } from "node:readline";
import { bunBinary, denoBinary, root } from "./runtimes.ts";
import {
  denoTimingsFromJunit,
  readTimings,
  slowestFirst,
  testFiles,
  timingsFile,
  updateTimings,
} from "./test-order.ts";

/** The container tests (not `*_test.ts`: the runtimes' suites leave them out), run once, under Deno. */
const containerTests = ["test/container/podman.ts", "test/container/podman-databases.ts"];
const args = process.argv.slice(2);
const chosen = ["deno", "bun", "container"].includes(args[0]) ? [args.shift()!] : ["deno", "bun", "container"];
const paths = args.length > 0 ? args : ["test/"];
const reports = mkdtempSync(join(tmpdir(), "backupctl-test-"));
/**
 * Test files of one runtime run side by side, one more than there are cores (each file starts its own servers on
 * random ports in its own temp folders, so files never share anything). The extra one fills the minutes in which the
 * others only wait (restic 0.14 retrying a lock for 45 s, leases expiring, a container's schedule slot): with one per
 * core, a 2-core machine sat 50–80% idle for a minute of the run (vmstat). BACKUPCTL_TEST_JOBS overrides it.
 */
const jobs = process.env.BACKUPCTL_TEST_JOBS ?? String(Math.max(2, availableParallelism()) + 1);
const updatingTimings = process.env.BACKUPCTL_TEST_TIMINGS === "update";

/**
 * The suite's PATH: a `restic` first on it that runs the real one (exec: same process, same arguments and
 * environment), except for `init`, which goes to test/support/restic-init.ts: a new local repository is made there
 * in restic's format with a cheap scrypt key, other inits run the real restic and are re-keyed the same way after.
 * Every later restic run of a test then opens its repository in a millisecond instead of about half a second of CPU,
 * and an init costs no second of key calibration. The repositories made there take the chunker polynomial of one
 * real `restic init` made here first. Without restic on PATH, PATH is left as it is.
 */
function suitePath(): string | undefined {
  const real = spawnSync("sh", ["-c", "command -v restic"]).stdout?.toString().trim();
  if (!real) return process.env.PATH;
  // A folder of its own, readable by all: tests run restic as other users too (a repository it may not read).
  const bin = join(reports, "bin");
  mkdirSync(bin, { mode: 0o755 });
  chmodSync(reports, 0o711);
  const quote = (word: string) => `'${word.replaceAll("'", `'\\''`)}'`;
  const init = [denoBinary(), "run", "--quiet", "--no-config", "--no-lock", "--allow-all"]
    .concat([join(root, "test/support/restic-init.ts"), real]).map(quote).join(" ");
  const polynomial = chunkerPolynomial(real);
  writeFileSync(
    join(bin, "restic"),
    `#!/bin/sh
case " $* " in
  *" init "*) BACKUPCTL_TEST_CHUNKER_POLYNOMIAL=${quote(polynomial)} exec ${init} "$@" ;;
  *) exec ${quote(real)} "$@" ;;
esac
`,
    { mode: 0o755 },
  );
  return `${bin}:${process.env.PATH ?? ""}`;
}

/** The chunker polynomial of a repository the real restic inits (in the reports folder), or "" when that fails. */
function chunkerPolynomial(restic: string): string {
  const env = { ...process.env, RESTIC_PASSWORD: "suite", RESTIC_REPOSITORY: join(reports, "polynomial") };
  if (spawnSync(restic, ["init", "--no-cache"], { env }).status !== 0) return "";
  const config = spawnSync(restic, ["cat", "config", "--no-cache"], { env, encoding: "utf8" });
  try {
    return String(JSON.parse(config.stdout).chunker_polynomial ?? "");
  } catch {
    return "";
  }
}
/** Where test/support/rclone.ts registers each REST server's folder by port, for the suite's restic init. */
const restFolders = join(reports, "rest-folders");
mkdirSync(restFolders, { mode: 0o755 });
const testEnv = { ...process.env, PATH: suitePath(), BACKUPCTL_TEST_REST_FOLDERS: restFolders };

interface Count {
  passed: number;
  failed: number;
  skipped: number;
  /** The names of the failed cases, printed again at the end so that a run's last lines say what failed. */
  failures: string[];
}

/** Counts leaf test cases in a JUnit report: Deno also lists each describe() as a case holding its steps. */
function countJunit(path: string): Count {
  let xml: string;
  try {
    xml = readFileSync(path, "utf8");
  } catch {
    return { passed: 0, failed: 1, skipped: 0, failures: ["(no report: the runner itself failed)"] };
  }
  const cases = [...xml.matchAll(/<testcase\b[^>]*\bname="([^"]*)"[^>]*?(\/>|>([\s\S]*?)<\/testcase>)/g)]
    .map((match) => ({
      name: match[1],
      failed: /<(failure|error)\b/.test(match[3] ?? ""),
      skipped: /<skipped\b/.test(match[3] ?? ""),
    }));
  const names = cases.map((c) => c.name);
  const leaves = cases.filter((c) => !names.some((other) => other.startsWith(`${c.name} &gt; `)));
  const failed = leaves.filter((c) => c.failed).length;
  const skipped = leaves.filter((c) => c.skipped && !c.failed).length;
  const failures = leaves.filter((c) => c.failed).map((c) => c.name.replaceAll("&gt;", ">").replaceAll("&amp;", "&"));
  return { passed: leaves.length - failed - skipped, failed, skipped, failures };
}

interface Part {
  name: string;
  /** A command run first, whose failure fails the part (its tests still run, so one run reports everything). */
  first?: { command: string; args: string[]; failure: string };
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  report: string;
  /** Run after the tests (with BACKUPCTL_TEST_TIMINGS=update: record the per-file figures). */
  after?: () => void;
}

function part(name: string): Part {
  const report = join(reports, `${name}.xml`);
  if (name === "deno") {
    // One type-check of everything up front, then test files that are not checked again one by one. Deno starts
    // files in the order given: each file by name, the slowest first.
    const timings = timingsFile(root, "deno");
    const found = slowestFirst(testFiles(root, paths), readTimings(timings));
    // No test file under the paths: pass them as they are, for deno test to say so (with none at all it would run
    // every test file under the current folder).
    const files = found.length > 0 ? found : paths;
    return {
      name,
      first: {
        command: denoBinary(),
        args: ["check", ...paths],
        failure: `(type-check failed: deno check ${paths.join(" ")})`,
      },
      command: denoBinary(),
      args: ["test", "-A", "--parallel", "--no-check", `--junit-path=${report}`, ...files],
      env: { ...testEnv, DENO_JOBS: jobs },
      report,
      after: updatingTimings
        ? () => existsSync(report) && updateTimings(timings, denoTimingsFromJunit(readFileSync(report, "utf8")))
        : undefined,
    };
  }
  if (name === "bun") {
    return {
      name,
      command: bunBinary(),
      args: [
        "--no-install",
        "test",
        "--timeout",
        "300000",
        `--parallel=${jobs}`,
        // Bun cuts its workers' shares by these figures and starts each worker's slowest file first.
        `--timings=${relative(root, timingsFile(root, "bun"))}`,
        ...(updatingTimings ? ["--update-timings"] : []),
        "--reporter=junit",
        `--reporter-outfile=${report}`,
        ...paths.map((p) => `./${p}`),
      ],
      env: testEnv,
      report,
    };
  }
  return { name, command: denoBinary(), args: ["test", "-A", `--junit-path=${report}`, ...containerTests], report };
}

/** Runs one command, its output line by line with the part's name in front; resolves with its exit code or signal. */
function runCommand(p: Part, command: string, args: string[], prefix: boolean): Promise<number | string> {
  console.log(`\n=== ${p.name}: ${[command, ...args].join(" ")} ===`);
  const child = spawn(command, args, { cwd: root, env: p.env ?? process.env, stdio: ["ignore", "pipe", "pipe"] });
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on("line", (line) => console.log(prefix ? `[${p.name}] ${line}` : line));
  }
  return new Promise((resolve) => child.on("close", (code, signal) => resolve(code ?? signal ?? "no exit code")));
}

/** Runs one part (its first command, then its tests); resolves with its counts. */
async function runPart(p: Part, prefix: boolean): Promise<Count & { seconds: number }> {
  const started = Date.now();
  const firstFailed = p.first !== undefined && await runCommand(p, p.first.command, p.first.args, prefix) !== 0;
  const code = await runCommand(p, p.command, p.args, prefix);
  p.after?.();
  const count = countJunit(p.report);
  if (code !== 0 && count.failed === 0) { // a crash outside any test still fails the run
    count.failed = 1;
    count.failures.push(`(${p.name} exited with ${code} outside any test)`);
  }
  if (firstFailed && p.first) {
    count.failed += 1;
    count.failures.push(p.first.failure);
  }
  return { ...count, seconds: (Date.now() - started) / 1000 };
}

// The container test runs once, and only with the whole suite or when asked for by name.
const parts = chosen.filter((name) => name !== "container" || args.length === 0).map(part);
const serial = process.env.BACKUPCTL_TEST_SERIAL === "1" || parts.length === 1;
const counts: (Count & { seconds: number })[] = [];
if (serial) {
  for (const p of parts) counts.push(await runPart(p, false));
} else {
  counts.push(...await Promise.all(parts.map((p) => runPart(p, true))));
}
rmSync(reports, { recursive: true, force: true });

const lines: string[] = [];
const totals = { passed: 0, failed: 0, skipped: 0 };
parts.forEach((p, i) => {
  const count = counts[i];
  totals.passed += count.passed;
  totals.failed += count.failed;
  totals.skipped += count.skipped;
  lines.push(
    `${p.name}: ${count.passed} passed, ${count.failed} failed, ${count.skipped} skipped in ${
      count.seconds.toFixed(0)
    } s`,
  );
  for (const name of count.failures) lines.push(`  failed (${p.name}): ${name}`);
});
console.log(`\n${lines.join("\n")}`);
console.log(`${totals.passed} passed, ${totals.failed} failed${totals.skipped ? `, ${totals.skipped} skipped` : ""}`);
process.exit(totals.failed > 0 ? 1 : 0);
