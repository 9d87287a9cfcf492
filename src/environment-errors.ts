/**
 * Failures of the machine rather than of backupctl or its configuration: a full disk, a read-only file system, a
 * permission, too many open files. Node reports them as plain errors with an errno code (ENOSPC, EROFS, …) whose
 * message ("ENOSPC: no space left on device, write") says neither which folder nor what to do; these turn them into
 * {@link EnvironmentError}s that do. The state folder has its own wording (state/writable.ts).
 */
import { dirname } from "node:path";
import { EnvironmentError } from "./errors.ts";

/** The errno code of a thrown value, when it has one. */
export function errnoCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

/** What each code means for `path` (when known), and what to do; undefined for codes that are not about the machine. */
function advice(code: string, path: string | undefined): string | undefined {
  switch (code) {
    case "ENOSPC":
      return `the disk is full: free space on it${path === undefined ? "" : ` (df -h ${dirname(path)})`}`;
    case "EDQUOT":
      return "the disk quota of the user running backupctl is used up: free space or raise the quota";
    case "EROFS":
      return "the file system is read-only: remount it read-write, or use a folder on a writable one";
    case "EACCES":
      return "permission denied: give the user running backupctl access to it (chown, chmod)";
    case "EPERM":
      return "operation not permitted: give the user running backupctl access to it, and remove an immutable " +
        "attribute (lsattr, chattr -i)";
    case "EMFILE":
    case "ENFILE":
      return "too many open files: raise the limit of open files (ulimit -n, LimitNOFILE= in a systemd unit)";
  }
  return undefined;
}

/**
 * An {@link EnvironmentError} for `error` when its errno code is a fault of the machine, else undefined. `doing` says
 * what failed ("cannot make a folder for the stream's FIFOs in"); `path` is the file or folder, by default the error's
 * own.
 */
export function environmentError(error: unknown, doing = "cannot write", path?: string): EnvironmentError | undefined {
  const code = errnoCode(error);
  const errorPath = (error as { path?: unknown } | null)?.path;
  const where = path ?? (typeof errorPath === "string" ? errorPath : undefined);
  const what = code === undefined ? undefined : advice(code, where);
  if (code === undefined || what === undefined) return undefined;
  // Node names the path of a failed open, not of a failed write (ENOSPC comes from the write).
  const subject = where === undefined ? `${doing.replace(/ (in|to|of)$/, "")} a file` : `${doing} ${where}`;
  return new EnvironmentError(where ?? "", code, `${subject}: ${what}`, { cause: error });
}

/** The errno code a program's own words name ("mkfifo: cannot create fifo 'x': No space left on device"). */
export function errnoInText(text: string): string | undefined {
  const words: [RegExp, string][] = [
    [/no space left on device/i, "ENOSPC"],
    [/disk quota exceeded/i, "EDQUOT"],
    [/read-only file system/i, "EROFS"],
    [/permission denied/i, "EACCES"],
    [/operation not permitted/i, "EPERM"],
    [/too many open files/i, "EMFILE"],
  ];
  return words.find(([pattern]) => pattern.test(text))?.[1];
}
