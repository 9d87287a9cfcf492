/**
 * Measuring helpers for the benchmarks: medians of repeated runs, ratios against a baseline from the same run, whole
 * process trees (wall, CPU, peak RSS of chosen processes), and cleanups that run even when the benchmark is
 * interrupted.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";

/** A benchmark target: what was promised, whether this run met it, and (when missed) why and what would fix it. */
export interface Target {
  goal: string;
  met: boolean;
  /** Why it was missed and what would fix it; shown only when `met` is false. */
  missed?: string;
}

export interface Row {
  benchmark: string;
  case: string;
  value: string;
  baseline: string;
  ratio: number;
  note: string;
  target?: Target;
}

/** Runs `work` `runs` times and returns each duration in milliseconds. */
export async function time(runs: number, work: () => unknown): Promise<number[]> {
  const durations: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    await work();
    durations.push(performance.now() - start);
  }
  return durations;
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

export function seconds(ms: number): string {
  return ms >= 10_000
    ? `${(ms / 1000).toFixed(1)} s`
    : ms >= 1000
    ? `${(ms / 1000).toFixed(2)} s`
    : `${ms.toFixed(0)} ms`;
}

export function mib(bytes: number): string {
  return bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(2)} GiB` : `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

// ---------------------------------------------------------------------------------------------------------------
// Cleanups: every temp folder and server registers one; main runs what is left on SIGINT/SIGTERM.

const cleanups = new Set<() => unknown>();

/** Registers `work` to run on interruption; call the returned function to run it now (once) and unregister it. */
export function deferCleanup(work: () => unknown): () => Promise<void> {
  let done = false;
  const run = async () => {
    if (done) return;
    done = true;
    cleanups.delete(run);
    await work();
  };
  cleanups.add(run);
  return run;
}

/** Runs every registered cleanup (newest first), ignoring their errors. */
export async function runCleanups(): Promise<void> {
  for (const run of [...cleanups].reverse()) await Promise.resolve().then(run).catch(() => {});
}

/** A temp folder removed by the returned cleanup (and on interruption). */
export function tempDir(prefix: string): { dir: string; remove: () => Promise<void> } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, remove: deferCleanup(() => rmSync(dir, { recursive: true, force: true })) };
}

// ---------------------------------------------------------------------------------------------------------------
// Process trees.

/**
 * How CPU time (user + system) of a whole process tree is read: GNU time's `-f "%U %S"` when /usr/bin/time exists,
 * else the shell's `times` builtin after the command. Both report getrusage(RUSAGE_CHILDREN) of the tree's root: the
 * CPU of every descendant that was waited for (pg_dump and restic are, by the shell and by backupctl).
 */
export const cpuSource: "/usr/bin/time" | "sh times" = existsSync("/usr/bin/time") ? "/usr/bin/time" : "sh times";

export interface Measured {
  wallMs: number;
  cpuMs: number;
  /**
   * Peak memory of the tree's processes selected by `rssExcept`: the larger of the sampled sum (every 50 ms) of the
   * proportional set size (PSS: a page shared by n processes counts 1/n in each, so the perl programs' shared
   * libraries are not counted twice) of the selected processes alive at once, and any single one's VmHWM (the
   * kernel's exact peak of its resident set, shared pages counted in full, which also catches spikes between
   * samples). A child still running its parent's executable (between fork and exec) is its parent's memory, not
   * more: while the runtime starts a program it briefly shares the runtime's pages, and counting them again
   * doubled the figure whenever a sample fell in that window (it did on a loaded machine). 0 when not sampled.
   */
  peakRss: number;
  stdout: string;
  stderr: string;
}

export interface MeasureOptions {
  env?: Record<string, string | undefined>;
  cwd?: string;
  /**
   * Sample memory of every process of the tree (the timing wrapper at its root aside) except those whose executable
   * has one of these names (e.g. pg_dump, restic).
   */
  rssExcept?: string[];
}

function parseClock(text: string): number {
  // `times` prints 0m1.234s (bash) or 0m1.234000s (dash).
  const match = /^(\d+)m([\d.]+)s$/.exec(text.trim());
  return match ? (Number(match[1]) * 60 + Number(match[2])) * 1000 : NaN;
}

function childrenOf(pid: number): number[] {
  const found: number[] = [];
  try {
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      const text = readFileSync(`/proc/${pid}/task/${task}/children`, "utf8").trim();
      if (text) found.push(...text.split(" ").map(Number));
    }
  } catch {
    // the process exited meanwhile
  }
  return found;
}

function statusOf(pid: number): { pss: number; hwm: number } | undefined {
  const kib = (text: string, key: string) =>
    Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? 0) * 1024;
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    let pss: number;
    try {
      pss = kib(readFileSync(`/proc/${pid}/smaps_rollup`, "utf8"), "Pss");
    } catch {
      pss = kib(status, "VmRSS"); // a kernel without smaps_rollup: the resident set
    }
    return { pss, hwm: kib(status, "VmHWM") };
  } catch {
    return undefined;
  }
}

function executableOf(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/exe`);
  } catch {
    return undefined;
  }
}

/**
 * Runs `argv` as a whole process tree: wall time (from spawn to exit), CPU of the tree, and optionally peak RSS of
 * some of its processes. Rejects, with the end of stderr, when the command fails.
 */
export async function measure(argv: string[], options: MeasureOptions = {}): Promise<Measured> {
  const scratch = tempDir("backupctl-bench-time-");
  const timesFile = join(scratch.dir, "times");
  const wrapped = cpuSource === "/usr/bin/time"
    ? ["/usr/bin/time", "-f", "%U %S", "-o", timesFile, "--", ...argv]
    : ["sh", "-c", '"$@"; code=$?; times > "$BENCH_TIMES_FILE"; exit $code', "sh", ...argv];
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries({ ...process.env, ...options.env, BENCH_TIMES_FILE: timesFile })) {
    if (value !== undefined) env[key] = value;
  }
  const excluded = options.rssExcept ? new Set(options.rssExcept) : undefined;
  let peakSum = 0;
  let peakHwm = 0;
  try {
    const started = performance.now();
    // Its own process group: an interruption stops the whole tree (see the cleanup below), not just its root.
    const child = spawn(wrapped[0], wrapped.slice(1), {
      env,
      cwd: options.cwd,
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    const stop = deferCleanup(() => {
      try {
        process.kill(-child.pid!, "SIGTERM");
      } catch {
        // already gone
      }
    });
    let stdout = "";
    let stderr = "";
    child.stdout!.setEncoding("utf8").on("data", (chunk: string) => (stdout = (stdout + chunk).slice(-200_000)));
    child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (stderr = (stderr + chunk).slice(-20_000)));
    const sample = () => {
      if (!child.pid) return;
      let sum = 0;
      const queue = childrenOf(child.pid).map((pid) => ({ pid, parentExe: executableOf(child.pid!) }));
      while (queue.length > 0) {
        const { pid, parentExe } = queue.shift()!;
        const exe = executableOf(pid);
        queue.push(...childrenOf(pid).map((grandchild) => ({ pid: grandchild, parentExe: exe })));
        if (!exe || excluded!.has(basename(exe)) || exe === parentExe) continue;
        const status = statusOf(pid);
        if (!status) continue;
        sum += status.pss;
        peakHwm = Math.max(peakHwm, status.hwm);
      }
      peakSum = Math.max(peakSum, sum);
    };
    const sampler = excluded ? setInterval(sample, 50) : undefined;
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once("error", reject);
      child.once("close", (exitCode) => resolve(exitCode));
    });
    const wallMs = performance.now() - started;
    if (sampler) clearInterval(sampler);
    stop(); // the tree has exited; a straggler in its group (there should be none) goes too
    if (code !== 0) {
      throw new Error(`${argv.join(" ")} exited with ${code}:\n${stderr.slice(-4000)}\n${stdout.slice(-2000)}`);
    }
    const text = readFileSync(timesFile, "utf8").trim().split("\n");
    let cpuMs: number;
    if (cpuSource === "/usr/bin/time") {
      const [user, system] = text[text.length - 1].split(" ").map(Number);
      cpuMs = (user + system) * 1000;
    } else {
      const [user, system] = text[text.length - 1].split(/\s+/).map(parseClock);
      cpuMs = user + system;
    }
    return { wallMs, cpuMs, peakRss: Math.max(peakSum, peakHwm), stdout, stderr };
  } finally {
    await scratch.remove();
  }
}
