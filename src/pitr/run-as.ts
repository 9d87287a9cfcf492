/**
 * Which OS user runs pgBackRest and pg_ctl. PostgreSQL refuses to run as root, and pgBackRest's repository must be
 * written by the same user as the server's `archive_command` (the files it makes are 0640 in 0750 folders): when
 * backupctl itself runs as root, both run as the owner of the cluster's data directory (`setpriv`, through
 * src/exec); otherwise as backupctl's own user, which must then be that owner.
 */
import { chownSync, statSync } from "node:fs";
import { resolve, sep } from "node:path";

/** An OS user other than backupctl's own to run a program as. */
export interface OsUser {
  uid: number;
  gid: number;
}

export function runningAsRoot(): boolean {
  return typeof process.getuid === "function" && process.getuid() === 0;
}

/**
 * The user to run as for a cluster whose data directory (or any folder of it) is `path`: its owner when backupctl is
 * root and the owner is not, else undefined (run as backupctl's own user).
 */
export function ownerToRunAs(path: string): OsUser | undefined {
  if (!runningAsRoot()) return undefined;
  const stat = statSync(path);
  return stat.uid === 0 ? undefined : { uid: stat.uid, gid: stat.gid };
}

/** `argv` run as `user` (unchanged without one). */
export function asUser(argv: string[], user: OsUser | undefined): string[] {
  if (!user) return argv;
  return ["setpriv", `--reuid=${user.uid}`, `--regid=${user.gid}`, "--init-groups", ...argv];
}

/** Gives a file or folder backupctl made to `user`, so that the program running as it can use it. */
export function handOver(path: string, user: OsUser | undefined): void {
  if (user) chownSync(path, user.uid, user.gid);
}

/**
 * The first folder on the way to `path` that `user` cannot enter (no search permission for it as owner, group or
 * other), or undefined. Supplementary groups are not looked at: a folder reachable only through one is named too,
 * which errs on the side of a clear message before pgBackRest's "permission denied".
 */
export function folderBlocking(path: string, user: OsUser): string | undefined {
  const parts = resolve(path).split(sep).filter(Boolean);
  for (let i = 0; i < parts.length; i++) {
    const folder = `${sep}${parts.slice(0, i).join(sep)}`;
    let stat;
    try {
      stat = statSync(folder);
    } catch {
      return undefined; // not there yet: made by backupctl, as root, and handed over
    }
    const mode = stat.mode;
    const enters = stat.uid === user.uid
      ? (mode & 0o100) !== 0
      : stat.gid === user.gid
      ? (mode & 0o010) !== 0
      : (mode & 0o001) !== 0;
    if (!enters) return folder;
  }
  return undefined;
}
