/** Looks at what a run leaves visible: other processes' command lines and the bytes of files under a folder. */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";

/** Every process's command line, sampled every `intervalMs` from /proc until stopped. */
export function sampleCommandLines(intervalMs = 20) {
  const seen = new Set<string>();
  let samples = 0;
  const sample = () => {
    samples++;
    let pids: string[];
    try {
      pids = readdirSync("/proc").filter((name) => /^\d+$/.test(name));
    } catch {
      return;
    }
    for (const pid of pids) {
      try {
        const text = readFileSync(`/proc/${pid}/cmdline`).toString("latin1").replaceAll("\0", " ").trim();
        if (text) seen.add(text);
      } catch {
        // the process is gone
      }
    }
  };
  sample();
  const timer = setInterval(sample, intervalMs);
  return {
    stop(): { commandLines: string[]; samples: number } {
      clearInterval(timer);
      sample();
      return { commandLines: [...seen], samples };
    },
  };
}

/** Every file under a folder, as raw bytes read as latin1 (for "the secret is not in there" checks). */
export function filesUnder(dir: string): { path: string; bytes: string }[] {
  const out: { path: string; bytes: string }[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const stat = statSync(path);
    if (stat.isDirectory()) out.push(...filesUnder(path));
    else if (stat.isFile()) out.push({ path, bytes: readFileSync(path).toString("latin1") });
  }
  return out;
}

/**
 * Pids of processes whose command line contains `marker` (the dump command carries a unique one). With `environ`,
 * only those whose environment holds that text too (e.g. a test's temp folder, which its restic has in
 * RESTIC_REPOSITORY): the Deno and Bun suites run side by side, each with a restic of the same command line.
 */
export function processesWith(marker: string, environ?: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${name}/cmdline`).toString("latin1").replaceAll("\0", " ");
      if (!cmdline.includes(marker)) continue;
      if (environ !== undefined && !readFileSync(`/proc/${name}/environ`).toString("latin1").includes(environ)) {
        continue;
      }
      pids.push(Number(name));
    } catch {
      // gone
    }
  }
  return pids;
}

/**
 * `pid` and every process descending from it (by parent pid, whatever their process group or session): what a
 * cgroup kill or a container's end takes down at once.
 */
export function processTree(pid: number): number[] {
  const parents = new Map<number, number>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      // The field after the parenthesized name (which may hold spaces) is the state, then the parent pid.
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      parents.set(Number(name), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]));
    } catch {
      // gone
    }
  }
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) {
    for (const [child, parent] of parents) if (parent === tree[i]) tree.push(child);
  }
  return tree;
}
