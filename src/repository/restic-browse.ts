/**
 * What restic (0.14 and later) prints when asked to look into snapshots, read into plain records:
 * - `ls --json ID [DIR]`: a line describing the snapshot (`struct_type: "snapshot"`), then one line per node
 *   (`struct_type: "node"`: name, type, path, size for files, mtime), in the order restic walks the tree.
 * - `find --json PATTERN`: one JSON array, an element per snapshot with hits: `{ snapshot, matches: [{ path, type,
 *   size, mtime, … }], hits }`.
 * - `diff --json ID1 ID2`: one line per changed path (`message_type: "change"`, `path`, `modifier`: `+` added,
 *   `-` removed, `M` content changed, `T` type changed, `U` metadata only), then a `statistics` line. It carries no
 *   sizes: the caller takes them from the two snapshots' listings.
 * Lines that are not JSON (a warning restic printed to stdout) are skipped, never fatal.
 * And the other way: the paths to restore from a snapshot as restic include patterns, in batches that fit a command
 * line (`restore --include`).
 */

/** A file, folder, link or other node of a snapshot's tree. */
export interface TreeNode {
  path: string;
  /** file, dir, symlink, dev, chardev, fifo, socket (restic's words). */
  type: string;
  /** Bytes of a file; 0 for the rest. */
  size: number;
  /** ISO time as restic recorded it (UTC). */
  mtime: string;
}

/** The snapshots where `find` matched, each with its matches. */
export interface FindHit {
  snapshot: string;
  matches: TreeNode[];
}

export interface DiffChange {
  path: string;
  /** `+`, `-`, `M`, `T` or `U`, as restic wrote it. */
  modifier: string;
}

function jsonLines(stdout: string): Record<string, unknown>[] {
  const lines: Record<string, unknown>[] = [];
  for (const line of stdout.split("\n")) {
    const text = line.trim();
    if (!text.startsWith("{")) continue;
    try {
      lines.push(JSON.parse(text) as Record<string, unknown>);
    } catch {
      // not one of restic's JSON lines
    }
  }
  return lines;
}

function node(raw: Record<string, unknown>): TreeNode {
  return {
    path: String(raw.path ?? ""),
    type: String(raw.type ?? "file"),
    size: typeof raw.size === "number" ? raw.size : 0,
    mtime: String(raw.mtime ?? ""),
  };
}

/** The nodes of `restic ls --json`, in restic's order (a depth-first walk: each folder, then what it holds). */
export function parseLs(stdout: string): TreeNode[] {
  return jsonLines(stdout).filter((line) => line.struct_type === "node").map(node);
}

/** The hits of `restic find --json`. */
export function parseFind(stdout: string): FindHit[] {
  const text = stdout.trim();
  if (!text.startsWith("[")) return [];
  const parsed = JSON.parse(text) as { snapshot?: string; matches?: Record<string, unknown>[] }[] | null;
  return (parsed ?? []).map((hit) => ({
    snapshot: String(hit.snapshot ?? ""),
    matches: (hit.matches ?? []).map(node),
  }));
}

/** The changes of `restic diff --json`; a folder's path loses restic's trailing slash. */
export function parseDiff(stdout: string): DiffChange[] {
  return jsonLines(stdout).filter((line) => line.message_type === "change").map((line) => {
    const path = String(line.path ?? "");
    return { path: path.length > 1 ? path.replace(/\/$/, "") : path, modifier: String(line.modifier ?? "") };
  });
}

/** The bytes of `--include` arguments one restore is given: far below Linux's ~2 MiB for a whole command line. */
export const includeBatchBytes = 256 * 1024;

/**
 * `paths` as restic include patterns (glob characters escaped), in batches of at most `limit` bytes of arguments
 * each (a path longer than the limit alone makes a batch of its own).
 */
export function includeBatches(paths: string[], limit: number): string[][] {
  const batches: string[][] = [];
  let batch: string[] = [];
  let bytes = 0;
  for (const path of paths) {
    const pattern = path.replace(/[\\*?[]/g, (c) => `\\${c}`);
    // The pattern, its "--include" and the two terminating NULs of argv.
    const size = new TextEncoder().encode(pattern).length + "--include".length + 2;
    if (batch.length > 0 && bytes + size > limit) {
      batches.push(batch);
      batch = [];
      bytes = 0;
    }
    batch.push(pattern);
    bytes += size;
  }
  if (batch.length > 0) batches.push(batch);
  return batches;
}
