/**
 * The order test files start in, for scripts/test.ts: the slowest first (longest processing time first), so that
 * the parallel workers of a runtime end at about the same time instead of one running a slow file alone at the end.
 *
 * How long each file takes comes from test/timings-<runtime>.json (not `deno.json`: Deno would take a file of that
 * name for a config file), in Bun's `--timings` format
 * (`{ "version": 1, "files": { "test/…_test.ts": ms } }`): Bun reads its file itself (`bun test --timings`, which
 * makes each worker start its slowest file first); Deno runs files in the order given, so Deno's part passes the test
 * files one by one, sorted here. BACKUPCTL_TEST_TIMINGS=update writes a run's figures back (Bun with
 * `--update-timings`, Deno's from its JUnit report), merged into what was there.
 */
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";

export interface Timings {
  version: 1;
  /** Test file (relative to the project folder) → milliseconds. */
  files: Record<string, number>;
}

export function timingsFile(root: string, runtime: "deno" | "bun"): string {
  return join(root, "test", `timings-${runtime}.json`);
}

export function readTimings(file: string): Timings {
  if (!existsSync(file)) return { version: 1, files: {} };
  const parsed = JSON.parse(readFileSync(file, "utf8")) as Partial<Timings>;
  return { version: 1, files: parsed.files ?? {} };
}

/** Writes the measured figures over the recorded ones (files that did not run keep theirs), slowest first. */
export function updateTimings(file: string, measured: Record<string, number>): void {
  const files = { ...readTimings(file).files, ...measured };
  const sorted = Object.fromEntries(Object.entries(files).sort(([, a], [, b]) => b - a));
  writeFileSync(file, JSON.stringify({ version: 1, files: sorted }, null, 2) + "\n");
}

/** The file names `deno test` takes for tests in a folder: `*_test.ts`, `*.test.ts`, `test.ts` and the JS forms. */
const testName = /(^|[._])test\.(ts|tsx|mts|js|mjs|jsx)$/;

/** The test files under each path (a file stays as it is; a folder is searched), relative to `root`, sorted. */
export function testFiles(root: string, paths: string[]): string[] {
  const found: string[] = [];
  const walk = (path: string) => {
    if (!statSync(path).isDirectory()) return void found.push(relative(root, path));
    for (const entry of readdirSync(path).sort()) {
      if (entry === "node_modules" || entry.startsWith(".")) continue;
      const child = join(path, entry);
      if (statSync(child).isDirectory()) walk(child);
      else if (testName.test(entry)) found.push(relative(root, child));
    }
  };
  for (const path of paths) walk(join(root, path));
  return [...new Set(found)];
}

/**
 * The files, slowest first by the recorded figures. A file with no figure (a new one) counts as the mean of the
 * others: neither last (a slow new file would run alone at the end) nor first.
 */
export function slowestFirst(files: string[], timings: Timings): string[] {
  const known = files.map((file) => timings.files[file]).filter((ms): ms is number => typeof ms === "number");
  const mean = known.length > 0 ? known.reduce((sum, ms) => sum + ms, 0) / known.length : 0;
  const cost = (file: string) => timings.files[file] ?? mean;
  return [...files].sort((a, b) => cost(b) - cost(a) || a.localeCompare(b));
}

/**
 * Per-file durations from Deno's JUnit report: the sum of each file's top-level cases (a describe() is one case
 * holding its steps, which are listed again as `describe > step` and must not count twice).
 */
export function denoTimingsFromJunit(xml: string): Record<string, number> {
  const measured: Record<string, number> = {};
  for (const match of xml.matchAll(/<testcase\b[^>]*>/g)) {
    const name = /\bname="([^"]*)"/.exec(match[0])?.[1] ?? "";
    const file = /\bclassname="([^"]*)"/.exec(match[0])?.[1];
    const seconds = Number(/\btime="([^"]*)"/.exec(match[0])?.[1]);
    if (file === undefined || name.includes(" &gt; ") || !Number.isFinite(seconds)) continue;
    const key = file.replace(/^\.\//, "");
    measured[key] = Math.round((measured[key] ?? 0) + seconds * 1000);
  }
  return measured;
}
