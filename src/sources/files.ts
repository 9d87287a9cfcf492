/** Files and folders: restic reads them itself (native deduplication, parent snapshots). A missing path is an error. */
import { existsSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import type { FilesSource } from "../config/types.ts";
import { SourceError } from "../errors.ts";
import type { PathsInput } from "./types.ts";

export function filesInput(source: FilesSource & { name: string }, configDir: string): PathsInput {
  const paths = source.paths.map((path) => (isAbsolute(path) ? path : resolve(configDir, path)));
  const missing = paths.filter((path) => !existsSync(path));
  if (missing.length > 0) {
    throw new SourceError(
      `source ${source.name}: ${missing.length === 1 ? "path" : "paths"} ${missing.join(", ")} ` +
        "not found; fix the path in the config or remove it (a missing path is never skipped silently)",
    );
  }
  return { kind: "paths", paths, exclude: source.exclude ?? [] };
}
