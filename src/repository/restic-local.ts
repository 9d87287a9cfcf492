/**
 * What a local repository's folders say without starting restic: the ids of its snapshots (one file per snapshot in
 * snapshots/, named by its id, never changed once written) and of its locks (locks/). Nothing is decrypted; every
 * function returns undefined for another backend, or a folder it cannot read.
 */
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";

/** A full restic id: 64 hex digits. */
export const fullId = /^[0-9a-f]{64}$/;
/** The URL schemes of restic's backends; a URL without one (or with `local:`) is a local folder. */
export const schemePattern = /^(local|sftp|rest|s3|b2|azure|gs|swift|rclone):/;

/** The folder of a local repository at `url`, undefined for another backend. */
function localFolder(url: string): string | undefined {
  if (schemePattern.test(url) && !url.startsWith("local:")) return undefined;
  return url.replace(/^local:/, "");
}

/** The ids of a local repository's snapshots. */
export function localSnapshotIds(url: string): string[] | undefined {
  const folder = localFolder(url);
  if (folder === undefined) return undefined;
  try {
    return readdirSync(join(folder, "snapshots")).filter((name) => fullId.test(name));
  } catch {
    return undefined;
  }
}

/**
 * The full id of a snapshot given the id restic's backup summary reports (restic 0.14 reports the short id, later
 * versions the full one); undefined when the folder does not settle it (another backend, or no single match).
 */
export function fullLocalSnapshotId(url: string, id: string): string | undefined {
  if (fullId.test(id)) return id;
  const matches = localSnapshotIds(url)?.filter((name) => name.startsWith(id)) ?? [];
  return matches.length === 1 ? matches[0] : undefined;
}

/**
 * The ids in a local repository's locks/ folder. With `olderThanMs`, only lock files not written for that long
 * (restic rewrites a live lock every 5 minutes).
 */
export function localLockIds(url: string, olderThanMs?: number): string[] | undefined {
  const folder = localFolder(url);
  if (folder === undefined) return undefined;
  const locks = join(folder, "locks");
  try {
    const ids = readdirSync(locks).filter((name) => fullId.test(name));
    if (olderThanMs === undefined) return ids;
    const before = Date.now() - olderThanMs;
    return ids.filter((id) => {
      try {
        return statSync(join(locks, id)).mtimeMs < before;
      } catch {
        return false; // removed meanwhile
      }
    });
  } catch {
    return undefined;
  }
}
