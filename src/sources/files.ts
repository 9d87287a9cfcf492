/**
 * Files and folders: restic reads them itself (native deduplication, parent snapshots). A missing path is an error,
 * and so is a missing exclude file. What the source leaves out becomes `restic backup` flags.
 */
import { existsSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import type { FilesSource } from "../config/types.ts";
import { SourceError } from "../errors.ts";
import type { PathsInput } from "./types.ts";

export function filesInput(source: FilesSource & { name: string }, configDir: string): PathsInput {
  const absolute = (path: string) => (isAbsolute(path) ? path : resolve(configDir, path));
  const paths = source.paths.map(absolute);
  const missing = paths.filter((path) => !existsSync(path));
  if (missing.length > 0) {
    throw new SourceError(
      `source ${source.name}: ${missing.length === 1 ? "path" : "paths"} ${missing.join(", ")} ` +
        "not found; fix the path in the config or remove it (a missing path is never skipped silently)",
    );
  }
  const excludeFiles = [source.excludeFile ?? []].flat().map(absolute);
  const missingFiles = excludeFiles.filter((path) => !existsSync(path));
  if (missingFiles.length > 0) {
    throw new SourceError(
      `source ${source.name}: excludeFile ${missingFiles.join(", ")} not found; create it or fix the path in the ` +
        "config (without it, files meant to be left out would be backed up)",
    );
  }
  return { kind: "paths", paths, flags: filesFlags(source, excludeFiles) };
}

/** The `restic backup` flags of a files source; `excludeFiles` are its exclude files, absolute. */
function filesFlags(source: FilesSource, excludeFiles: string[]): string[] {
  const flags = (source.exclude ?? []).flatMap((pattern) => ["--exclude", pattern]);
  if (source.excludeCaches) flags.push("--exclude-caches");
  if (source.oneFileSystem) flags.push("--one-file-system");
  for (const name of source.excludeIfPresent ?? []) flags.push("--exclude-if-present", name);
  if (source.excludeLargerThan !== undefined) flags.push("--exclude-larger-than", source.excludeLargerThan);
  for (const file of excludeFiles) flags.push("--exclude-file", file);
  flags.push(...(source.extraArgs ?? []));
  return flags;
}
