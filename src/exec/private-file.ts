/**
 * Private files for secrets a program can only read from a file (pgpass, MySQL option file, mongodump config, an age
 * identity), and the private folders of SSH access and GnuPG homes: each folder is made 0700 by `mkdtemp` under the
 * state folder's private `tmp/` (itself 0700), as `tmp/secret-<pid>-[<kind>-]XXXXXX`, its files 0600. A folder lives
 * as long as its stage: its owner removes it when the stage ends, whether it succeeded, failed, ran out of time or
 * was stopped by SIGTERM/SIGINT; a folder still there when the process exits (a second signal, the exit deadline) is
 * removed by an exit handler. Only `kill -9`, a crash or a power cut leave one: startup recovery deletes the folders
 * whose process is gone (apply/recovery.ts).
 */
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { environmentError } from "../environment-errors.ts";
import { onProcessEnd } from "../runtime/process-end.ts";

export interface PrivateFile {
  path: string;
  remove(): void;
}

/** Folders this process made, still to be removed at exit if their owner did not (pruned as they go). */
const made = new Set<string>();
let exitHandler = false;

/** A new private folder (0700) `secret-<pid>-[<kind>-]XXXXXX` under `privateDir`, removed at exit at the latest. */
export function createPrivateFolder(privateDir: string, kind?: string): string {
  let dir: string;
  try {
    mkdirSync(privateDir, { recursive: true, mode: 0o700 });
    dir = mkdtempSync(join(privateDir, `secret-${process.pid}-${kind ? `${kind}-` : ""}`));
  } catch (error) {
    throw environmentError(error, "cannot make a private folder in", privateDir) ?? error;
  }
  for (const folder of made) if (!existsSync(folder)) made.delete(folder);
  made.add(dir);
  if (!exitHandler) {
    exitHandler = true;
    onProcessEnd(() => {
      for (const folder of made) rmSync(folder, { recursive: true, force: true });
    });
  }
  return dir;
}

/** Writes `content` to a 0600 file `name` in a new private folder; `remove()` deletes the folder. */
export function writePrivateFile(privateDir: string, name: string, content: string): PrivateFile {
  const dir = createPrivateFolder(privateDir);
  const path = join(dir, name);
  try {
    writeFileSync(path, content, { mode: 0o600 });
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw environmentError(error, "cannot write the private file", path) ?? error;
  }
  return {
    path,
    remove: () => {
      rmSync(dir, { recursive: true, force: true });
      made.delete(dir);
    },
  };
}

/**
 * Writes `content` to the 0600 file at `path` that outlives the process (a configuration holding a secret, which a
 * program started by someone else reads later): written whole under a temporary name beside it, then renamed, so a
 * reader never sees half a file and the content is never readable by others, not even for a moment.
 */
export function writeLastingPrivateFile(path: string, content: string): void {
  const temporary = `${path}.tmp-${process.pid}`;
  try {
    rmSync(temporary, { force: true });
    writeFileSync(temporary, content, { mode: 0o600, flag: "wx" });
    renameSync(temporary, path);
  } catch (error) {
    rmSync(temporary, { force: true });
    throw environmentError(error, "cannot write the private file", path) ?? error;
  }
}
