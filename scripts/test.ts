/**
 * Runs the whole suite under Deno, then under Bun, and ends with one line `N passed, N failed` (both runtimes).
 * Usage: test.ts [deno|bun] [test paths…]. Exit 1 when anything failed.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { bunBinary, denoBinary, root } from "./runtimes.ts";

const args = process.argv.slice(2);
const runtimes = args[0] === "deno" || args[0] === "bun" ? [args.shift()!] : ["deno", "bun"];
const paths = args.length > 0 ? args : ["test/"];
const reports = mkdtempSync(join(tmpdir(), "backupctl-test-"));
/**
 * Test files run side by side, one per core (each file starts its own servers on random ports in its own temp
 * folders, so files never share anything); BACKUPCTL_TEST_JOBS overrides it.
 */
const jobs = process.env.BACKUPCTL_TEST_JOBS ?? String(Math.max(2, availableParallelism()));

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

const totals = { passed: 0, failed: 0, skipped: 0 };
const lines: string[] = [];
for (const runtime of runtimes) {
  const report = join(reports, `${runtime}.xml`);
  console.log(`\n=== ${runtime} test ${paths.join(" ")} ===`);
  const result = runtime === "deno"
    ? spawnSync(denoBinary(), ["test", "-A", "--parallel", `--junit-path=${report}`, ...paths], {
      cwd: root,
      stdio: "inherit",
      env: { ...process.env, DENO_JOBS: jobs },
    })
    : spawnSync(
      bunBinary(),
      [
        "--no-install",
        "test",
        "--timeout",
        "300000",
        `--parallel=${jobs}`,
        "--reporter=junit",
        `--reporter-outfile=${report}`,
        ...paths.map((p) => `./${p}`),
      ],
      { cwd: root, stdio: "inherit" },
    );
  const count = countJunit(report);
  if (result.status !== 0 && count.failed === 0) { // a crash outside any test still fails the run
    count.failed = 1;
    count.failures.push(`(${runtime} exited with ${result.status ?? result.signal} outside any test)`);
  }
  totals.passed += count.passed;
  totals.failed += count.failed;
  totals.skipped += count.skipped;
  lines.push(`${runtime}: ${count.passed} passed, ${count.failed} failed, ${count.skipped} skipped`);
  for (const name of count.failures) lines.push(`  failed (${runtime}): ${name}`);
}
rmSync(reports, { recursive: true, force: true });
console.log(`\n${lines.join("\n")}`);
console.log(`${totals.passed} passed, ${totals.failed} failed${totals.skipped ? `, ${totals.skipped} skipped` : ""}`);
process.exit(totals.failed > 0 ? 1 : 0);
