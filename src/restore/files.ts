/**
 * Restoring a files source to a folder, whole or only some of its paths (`restore --path SUB`), without ever writing
 * outside that folder. restic 0.14's `restore` follows a symbolic link it finds in its target: a link `DIR/srv ->
 * /etc` already there makes it create folders and write files under /etc (tried: `restore --include` of a folder
 * below such a link wrote its files where the link points). So restic only ever restores into a new private folder
 * (0700) made inside DIR, where nothing but the snapshot's own entries exists, and the result is then moved into DIR
 * entry by entry, looking at every entry of DIR with lstat and never through a link: a link in DIR where the
 * snapshot has a file or a folder is replaced (the link, not what it points to). A link in the snapshot is restored
 * as a link, never followed. The private folder is removed on every path out (success, failure, SIGINT); only a
 * `kill -9` leaves it, as `DIR/.backupctl-restoring-<pid>-XXXXXX`, with nothing outside DIR; the next files restore
 * into DIR removes it (and does not count it as content of DIR).
 */
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync, unlinkSync } from "node:fs";
import { isAbsolute, join, normalize, posix } from "node:path";
import { SourceError, UsageError } from "../errors.ts";
import { processAlive } from "../runtime/process.ts";
import type { Located, RestoreContext } from "./restore.ts";

/** The prefix of the private folder a files restore stages in, inside the target folder. */
const stagingPrefix = ".backupctl-restoring-";

/**
 * The staging folders in `dir` that restores killed with `kill -9` left (their process is gone): not counted as
 * content of the folder, and removed by the next files restore into it.
 */
export function deadStagingFolders(dir: string): string[] {
  const names = statSync(dir, { throwIfNoEntry: false })?.isDirectory() ? readdirSync(dir) : [];
  return names.filter((name) => {
    const match = /^\.backupctl-restoring-(\d+)-/.exec(name);
    return match !== null && !processAlive(Number(match[1]));
  });
}

/**
 * The snapshot paths that `--path` values name: an absolute path as it is in the snapshot (`restic ls` shows
 * them), or a path relative to the snapshot's one folder (`nested/photo.bin` of a source backing up
 * /srv/uploads is /srv/uploads/nested/photo.bin). Each must lie in the snapshot: at or below one of its paths.
 */
export function snapshotPaths(located: Located, wanted: string[]): string[] {
  const roots = (JSON.parse(located.snapshot.paths) as string[]).map((root) => posix.normalize(root));
  const where = `snapshot ${located.snapshot.short_id} of ${located.project.name}/${located.source.name}`;
  return wanted.map((given) => {
    if (given.trim() === "") throw new UsageError("--path: expected a path in the snapshot, got an empty one");
    let path: string;
    if (isAbsolute(given)) path = normalize(given);
    else if (roots.length === 1) path = join(roots[0], given);
    else {
      throw new UsageError(
        `--path ${given} is relative, and ${where} holds several folders (${roots.join(", ")}): give the ` +
          "absolute path in the snapshot",
      );
    }
    path = path.length > 1 ? path.replace(/\/+$/, "") : path;
    const inside = roots.some((root) => path === root || path.startsWith(root === "/" ? "/" : `${root}/`));
    if (!inside) {
      throw new UsageError(
        `--path ${given}: ${path} is not in ${where}, which holds ${roots.join(", ")}; name a path below one of them ` +
          "(`backupctl snapshots ls` shows what a snapshot holds)",
      );
    }
    return path;
  });
}

/** A literal path as a restic include pattern: its glob characters escaped, so `a[1].txt` means that file. */
function includePattern(path: string): string {
  return path.replace(/[\\*?[\]]/g, (character) => `\\${character}`);
}

/**
 * Restores a files snapshot (every path, or only `paths`: absolute paths in the snapshot, see snapshotPaths) under
 * `dir`, keeping their absolute paths below it. restic writes into a private folder in `dir`; its entries are then
 * moved into `dir` (see moveInto). A path that turned out not to be in the snapshot fails the restore and nothing
 * is moved.
 */
export async function restoreFiles(
  located: Located,
  dir: string,
  ctx: RestoreContext,
  paths: string[] = [],
): Promise<void> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  for (const name of deadStagingFolders(dir)) rmSync(join(dir, name), { recursive: true, force: true });
  const staging = mkdtempSync(join(dir, `${stagingPrefix}${process.pid}-`));
  try {
    await ctx.repositoryFor(located.repository).restore(located.snapshot.id, staging, paths.map(includePattern));
    const missing = paths.filter((path) => !lstatSync(join(staging, path), { throwIfNoEntry: false }));
    if (missing.length > 0) {
      throw new UsageError(
        `nothing restored: snapshot ${located.snapshot.short_id} of ${located.project.name}/${located.source.name} ` +
          `holds no ${missing.join(", ")} (\`backupctl snapshots ls\` shows what it holds)`,
      );
    }
    moveInto(staging, dir);
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

/**
 * Moves what `from` holds into `to`, merging folders. Every entry of `to` is looked at with lstat, never followed:
 * a file or a link there is replaced by the snapshot's entry (rename replaces a link itself), so nothing is
 * written where a link of `to` points. A real folder where the snapshot has a file is left alone and reported.
 */
function moveInto(from: string, to: string): void {
  for (const name of readdirSync(from)) {
    const source = join(from, name);
    const target = join(to, name);
    const there = lstatSync(target, { throwIfNoEntry: false });
    const moving = lstatSync(source);
    if (!there) renameSync(source, target);
    else if (there.isDirectory() && moving.isDirectory()) moveInto(source, target);
    else if (there.isDirectory()) {
      throw new SourceError(
        `cannot restore ${target}: it is a folder there and a ${moving.isSymbolicLink() ? "link" : "file"} in the ` +
          "snapshot; move the folder away, or restore into an empty folder",
      );
    } else {
      // A folder cannot be renamed over a file or a link: the link goes first (itself, not what it points to).
      if (moving.isDirectory()) unlinkSync(target);
      renameSync(source, target);
    }
  }
}
