/**
 * Why the state folder cannot be written, found by trying. SQLite's own words say little ("disk I/O error" on a full
 * disk, "unable to open database file" on a read-only one); the file system's answer (EROFS, ENOSPC, EACCES …) names the
 * cause, and the message says what to free or fix.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, unlinkSync, writeSync } from "node:fs";
import { join } from "node:path";

/** What a write that fails with each code means for the state folder, and what to do. */
function explain(code: string, dir: string, path: string): string | undefined {
  switch (code) {
    case "EROFS":
      return `the state folder ${dir} is on a read-only file system: remount it read-write, or point --state-dir ` +
        "(BACKUPCTL_STATE_DIR) at a writable folder";
    case "ENOSPC":
      return `the disk of the state folder ${dir} is full: free space on it (df -h ${dir})`;
    case "EDQUOT":
      return `the disk quota of the user running backupctl is used up on the state folder ${dir}: free space or ` +
        "raise the quota";
    case "EACCES":
      return `${path} cannot be written (permission denied): give the user running backupctl write access to the ` +
        `state folder ${dir} and its files (chown, chmod)`;
    case "EPERM":
      return `${path} cannot be written (operation not permitted): give the user running backupctl write access to ` +
        `the state folder ${dir} and its files, and remove an immutable attribute (lsattr, chattr -i)`;
  }
  return undefined;
}

function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

/** How much the probe writes: a database write needs room for a page and its log, not one byte. */
const probeBytes = 64 * 1024;

/**
 * Why `dir` cannot take the state's writes, or undefined when it can: creates the folder, writes and syncs a small
 * file in it (removed again), and opens each of `files` that exists for writing.
 */
export function stateFolderProblem(dir: string, files: string[] = []): string | undefined {
  const attempt = (path: string, body: () => void): string | undefined => {
    try {
      body();
      return undefined;
    } catch (error) {
      const code = errorCode(error);
      return code === undefined ? undefined : explain(code, dir, path);
    }
  };
  const created = attempt(dir, () => mkdirSync(dir, { recursive: true, mode: 0o700 }));
  if (created) return created;
  const probe = join(dir, `.write-test-${process.pid}`);
  const written = attempt(dir, () => {
    const fd = openSync(probe, "w", 0o600);
    try {
      writeSync(fd, new Uint8Array(probeBytes));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  });
  try {
    unlinkSync(probe);
  } catch {
    // never created
  }
  if (written) return written;
  for (const file of files) {
    const problem = attempt(file, () => closeSync(openSync(file, "r+")));
    if (problem) return problem;
  }
  return undefined;
}

/** The message for an error a file operation in the state folder threw, when its code says the folder is unwritable. */
export function explainFileError(error: unknown, dir: string): string | undefined {
  const code = errorCode(error);
  const path = (error as { path?: unknown } | null)?.path;
  return code === undefined ? undefined : explain(code, dir, typeof path === "string" ? path : dir);
}
