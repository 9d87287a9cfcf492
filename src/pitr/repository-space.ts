/**
 * Why a pgBackRest command may have failed for want of space: the free space of a local repository's file system.
 * pgBackRest 2.45 reports a full repository as "unable to write '…'" without the cause, or, when the WAL cannot be
 * archived for it, as a timeout waiting for a segment; backupctl looks at the disk and says so.
 */
import { existsSync, statfsSync } from "node:fs";
import { formatBytes } from "../format/bytes.ts";

/** Below this much free space (or 1% of the file system, the larger) a repository is taken as full. */
const nearlyFull = 64 * 1024 * 1024;

/**
 * A sentence naming a full repository and what to do, when `path` is a local folder on a file system that is (nearly)
 * full; undefined otherwise (a repository elsewhere, or room left).
 */
export function repositoryFull(path: string): string | undefined {
  if (!path.startsWith("/") || !existsSync(path)) return undefined;
  let free: number;
  let size: number;
  try {
    const stats = statfsSync(path);
    free = Number(stats.bavail) * Number(stats.bsize);
    size = Number(stats.blocks) * Number(stats.bsize);
  } catch {
    return undefined;
  }
  if (free >= Math.max(nearlyFull, size / 100)) return undefined;
  return `the pgBackRest repository's disk is full: ${path} has ${formatBytes(free)} free of ${formatBytes(size)} ` +
    `(df -h ${path}); free space there (or move the repository), then run \`backupctl apply\` again`;
}
