/**
 * What a source gives restic: either a stream from a producer program (dumps) or paths restic reads itself (files).
 * Pre-checks happen here, so a missing file fails with a clear message before any process starts.
 */
import type { NamedSource } from "../config/normalize.ts";
import { SourceError } from "../errors.ts";
import { filesInput } from "./files.ts";
import { sqliteInput } from "./sqlite.ts";

export interface StreamInput {
  kind: "stream";
  /** The producer program; its stdout is the dump. */
  argv: string[];
  env?: Record<string, string>;
  /** The file name the dump gets inside the snapshot. */
  filename: string;
  allowEmpty: boolean;
  /** The Debian package that provides the producer, for a clear message when it is missing. */
  package: string;
}

export interface PathsInput {
  kind: "paths";
  paths: string[];
  exclude: string[];
}

export type BackupInput = StreamInput | PathsInput;

export function backupInput(source: NamedSource, configDir: string): BackupInput {
  switch (source.type) {
    case "sqlite":
      return sqliteInput(source, configDir);
    case "files":
      return filesInput(source, configDir);
    default:
      throw new SourceError(
        `source ${source.name}: ${source.type}() sources are declared but cannot be backed up by this version yet`,
      );
  }
}
