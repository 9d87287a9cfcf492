/**
 * Restores: find the snapshot (latest, or by id, with the nearest ones named when it does not exist), then stream it
 * back. A dump is `restic dump ID /FILE | [decryption] | target`, where the target is a file (0600) or a database
 * client (pg_restore, psql, mariadb, sqlite3), connected by FIFOs so the dump never passes through backupctl; nothing
 * plaintext touches the disk on the way into a database (`--jobs` apart: postgres-selection.ts). A files source is
 * `restic restore` into DIR (files.ts). Every process of a stream is checked: a failed one fails the restore (and a
 * partial output file is removed), so a restore that "worked" restored everything.
 */
import { randomUUID } from "node:crypto";
import { lstatSync, mkdirSync, readdirSync, readlinkSync, renameSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import { closest, distance } from "fastest-levenshtein";
import { serverDatabaseSource } from "../config/discovered.ts";
import type { LoadedConfig } from "../config/load.ts";
import type { NamedSource, NormalizedProject } from "../config/normalize.ts";
import { IncompleteSnapshotError, SourceError, UsageError } from "../errors.ts";
import { isoSeconds } from "../format/time.ts";
import { isUsable } from "../plan/types.ts";
import type { Restic } from "../repository/restic.ts";
import type { SnapshotTable } from "../state/schema.ts";
import type { StateStore } from "../state/store.ts";
import { deadStagingFolders, restoreFiles } from "./files.ts";
import { streamDump } from "./stream.ts";
import { type DumpFormat, dumpFormat } from "./targets.ts";

export interface RestoreContext {
  loaded: LoadedConfig;
  store: StateStore;
  privateDir: string;
  repositoryFor: (name: string) => Restic;
  /** Restore a snapshot backupctl does not know to be complete when its id is given (`--allow-incomplete`). */
  allowIncomplete?: boolean;
}

/** A snapshot chosen for a restore, with what it belongs to. */
export interface Located {
  project: NormalizedProject;
  source: NamedSource;
  repository: string;
  snapshot: SnapshotTable;
  /** The dump's path in the snapshot (`/<name>.pgdump[.gpg]`); undefined for a files source. */
  dumpPath?: string;
  /** The encryption extension of the dump (".gpg", ".age"), if any. */
  encrypted?: string;
  format?: DumpFormat;
}

/**
 * The project's sources to restore: the one named, else all of them. A database of a `databases: "all"` server is
 * named by its source name (`<server>-<database>`), listed on the server or not (it may have been dropped).
 */
export function sourcesOf(project: NormalizedProject, name: string | undefined): NamedSource[] {
  if (name === undefined) return project.sources;
  const source = project.sources.find((s) => s.name === name) ?? serverDatabaseSource(project, name);
  if (!source) {
    throw new UsageError(
      `project ${project.name} has no source "${name}"; its sources: ${project.sources.map((s) => s.name).join(", ")}`,
    );
  }
  return [source];
}

/**
 * The snapshot to restore: `latest` (the newest complete snapshot of the source in the repository) or an id (full,
 * or a prefix of at least 4 characters). An id that matches nothing is a clear error naming the nearest snapshots.
 * A snapshot backupctl does not know to be complete (a stream cut by a crash, a run that failed or is still going:
 * see SnapshotState) is never picked as `latest`, and is refused by id unless the context allows it, naming the
 * complete one to use instead.
 */
export async function locate(
  ctx: RestoreContext,
  project: NormalizedProject,
  source: NamedSource,
  repository: string,
  spec: string,
): Promise<Located> {
  const rows = (await ctx.store.listSnapshots({ projects: [project.name], repository }))
    .filter((row) => row.source === source.name).sort((a, b) => (a.time < b.time ? 1 : -1));
  const states = await ctx.store.snapshotStates();
  const stateOf = (row: SnapshotTable) => states.get(`${row.repository}\u0000${row.id}`) ?? "adopted";
  const usable = rows.filter((row) => isUsable({ state: stateOf(row) }));
  const where = `${project.name}/${source.name} in ${repository}`;
  const instead = () =>
    usable[0]
      ? `the newest complete one is ${usable[0].short_id} (${isoSeconds(new Date(usable[0].time))}): ` +
        `\`--snapshot ${usable[0].short_id}\``
      : "there is no complete snapshot of it";
  let snapshot: SnapshotTable | undefined;
  if (spec === "latest") {
    snapshot = usable[0];
    if (!snapshot) {
      throw new UsageError(
        rows.length > 0
          ? `no complete snapshot of ${where}: its ${rows.length} snapshot${rows.length === 1 ? " is" : "s are"} ` +
            `incomplete (${rows.map((row) => `${row.short_id} ${stateOf(row)}`).join(", ")}); ` +
            "name one with --snapshot ID --allow-incomplete to restore it all the same"
          : `no snapshot of ${where} in the inventory: run \`backupctl snapshots --refresh\` if it was made elsewhere, ` +
            "or `backupctl apply` to make one",
      );
    }
  } else {
    const id = spec.toLowerCase();
    if (!/^[0-9a-f]{4,64}$/.test(id)) {
      throw new UsageError(`--snapshot: expected "latest" or a snapshot id (at least 4 hex characters), got "${spec}"`);
    }
    const matches = rows.filter((row) => row.id.startsWith(id));
    if (matches.length > 1) {
      throw new UsageError(
        `snapshot id ${spec} is ambiguous in ${where}: ${matches.map((m) => m.short_id).join(", ")}`,
      );
    }
    snapshot = matches[0];
    if (!snapshot) throw new UsageError(`no snapshot ${spec} of ${where}. ${nearest(rows, id)}`);
    const state = stateOf(snapshot);
    if (!isUsable({ state }) && !ctx.allowIncomplete) {
      throw new IncompleteSnapshotError(
        `snapshot ${snapshot.short_id} of ${where} is ${state}: ${
          state === "pending"
            ? "its run has not finished (still going, or its process died)"
            : "its run never recorded it as a complete backup " +
              "(a stream cut short by a crash, or a failed run)"
        }; ${instead()}. To restore it all the same, add --allow-incomplete`,
      );
    }
  }
  if (source.type === "files") return { project, source, repository, snapshot };
  const paths = JSON.parse(snapshot.paths) as string[];
  const dumpPath = paths[0];
  if (!dumpPath) throw new SourceError(`snapshot ${snapshot.short_id} of ${where} lists no file`);
  const file = basename(dumpPath);
  const encrypted = [".gpg", ".age"].find((extension) => file.endsWith(extension));
  const plain = encrypted ? file.slice(0, -encrypted.length) : file;
  return { project, source, repository, snapshot, dumpPath, encrypted, format: dumpFormat(source.type, plain) };
}

/** "The nearest: …": the snapshots whose ids look most like the one asked for, then the newest. */
function nearest(rows: SnapshotTable[], id: string): string {
  if (rows.length === 0) return "There are no snapshots of it in the inventory (`backupctl snapshots --refresh`).";
  const ids = rows.map((row) => row.short_id);
  const best = closest(id.slice(0, 8), ids);
  const ranked = [...rows].sort((a, b) => distance(id.slice(0, 8), a.short_id) - distance(id.slice(0, 8), b.short_id));
  const shown = [...new Set([best, ...ranked.slice(0, 2).map((r) => r.short_id), ...ids.slice(0, 3)])].slice(0, 5);
  const describe = (short: string) => {
    const row = rows.find((r) => r.short_id === short)!;
    return `${short} (${isoSeconds(new Date(row.time))})`;
  };
  return `The nearest: ${shown.map(describe).join(", ")} (\`backupctl snapshots -p PROJECT\` lists them all).`;
}

/** The file name a restored dump gets: the snapshot's, without the encryption extension. */
export function restoredName(located: Located): string {
  const file = basename(located.dumpPath!);
  return located.encrypted ? file.slice(0, -located.encrypted.length) : file;
}

/**
 * What a restore of `located` into the folder `dir` would write over, or through, in a few words each; empty when
 * nothing. Reads only, so it runs before anything is written: `dir` being a symbolic link (the restore would land
 * where it points), a dump's file that exists (as a file, a folder or a link), and for a files source a `dir` that is
 * not empty — restic restore overwrites every file of the snapshot it finds there, so only an empty folder is safe.
 * A `dir` that is a file, or two dumps with the same file name, cannot be restored at all: a UsageError.
 */
export function folderConflicts(located: Located[], dir: string): string[] {
  const conflicts: string[] = [];
  const entry = lstatSync(dir, { throwIfNoEntry: false });
  if (entry?.isSymbolicLink()) conflicts.push(`${dir} is a symbolic link to ${readlinkSync(dir)}`);
  const target = statSync(dir, { throwIfNoEntry: false });
  if (target && !target.isDirectory()) throw new UsageError(`--to ${dir} is a file, not a folder`);
  // What a killed restore's staging folder holds is not the operator's: the next restore removes it.
  const leftovers = new Set(target ? deadStagingFolders(dir) : []);
  const entries = target ? readdirSync(dir).filter((name) => !leftovers.has(name)) : [];
  const dumps = new Map<string, string>();
  const files: string[] = [];
  for (const one of located) {
    if (one.source.type === "files") {
      files.push(one.source.name);
      continue;
    }
    const name = restoredName(one);
    const other = dumps.get(name);
    if (other !== undefined) {
      throw new UsageError(
        `${other} and ${one.source.name} both restore to ${name}: restore them one at a time (--source) into ` +
          "different folders",
      );
    }
    dumps.set(name, one.source.name);
    if (lstatSync(join(dir, name), { throwIfNoEntry: false })) conflicts.push(`${join(dir, name)} exists`);
  }
  if (files.length > 0 && entries.length > 0) {
    conflicts.push(
      `${dir} is not empty (${entries.length === 1 ? "1 entry" : `${entries.length} entries`}): restic restore of ` +
        `${files.join(", ")} would overwrite the snapshot's files it holds`,
    );
  }
  return conflicts;
}

/**
 * Restores a snapshot to a folder: a dump as its file (decrypted), a files source with restic restore (only `paths`
 * of it when given: see files.ts). Returns where it went and, for a dump, its size. `force` is the operator's word
 * that an existing dump file may be replaced: the dump is then written beside it and renamed over it once whole, so
 * a failed restore leaves the old file as it was.
 * (The caller checked `folderConflicts` first; a file that appeared since is still refused without `force`.)
 */
export async function restoreToFolder(
  located: Located,
  dir: string,
  ctx: RestoreContext,
  force = false,
  paths: string[] = [],
): Promise<{ path: string; bytes?: number }> {
  if (located.source.type === "files") {
    await restoreFiles(located, dir, ctx, paths);
    return { path: dir };
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, restoredName(located));
  const existing = lstatSync(file, { throwIfNoEntry: false });
  if (!existing) {
    const { bytes } = await streamDump(located, { file }, ctx);
    return { path: file, bytes };
  }
  if (!force) throw new UsageError(`${file} exists: choose an empty folder for --to, or add --overwrite to replace it`);
  if (existing.isDirectory()) throw new UsageError(`${file} is a folder: move it away to restore the dump there`);
  const partial = join(dir, `.${basename(file)}.restoring-${randomUUID().slice(0, 8)}`);
  const { bytes } = await streamDump(located, { file: partial }, ctx);
  renameSync(partial, file);
  return { path: file, bytes };
}
