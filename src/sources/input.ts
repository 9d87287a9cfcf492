/**
 * What a source gives restic: either a stream from a producer program (dumps) or paths restic reads itself (files).
 * Pre-checks happen here, so a missing file fails with a clear message before any process starts.
 */
import type { NamedSource } from "../config/normalize.ts";
import { SourceError } from "../errors.ts";
import { commandInput } from "./command.ts";
import { filesInput } from "./files.ts";
import { mongodbInput } from "./mongodb.ts";
import { mysqlInput } from "./mysql.ts";
import { postgresGlobalsInput, postgresInput } from "./postgres.ts";
import { sqliteInput } from "./sqlite.ts";

export interface StreamInput {
  kind: "stream";
  /** The producer program; its stdout is the dump. Secrets only in `env` or private files, never in argv. */
  argv: string[];
  env?: Record<string, string>;
  /** The file name the dump gets inside the snapshot. */
  filename: string;
  allowEmpty: boolean;
  /** The Debian package that provides the producer, for a clear message when it is missing. */
  package: string;
  /**
   * A cheap check of the dump's format, given its first and last bytes (at most 64 KiB each): returns what is
   * wrong, or undefined. A failed check fails the stage and discards the snapshot.
   */
  check?: (head: Uint8Array, tail: Uint8Array) => string | undefined;
  /** Removes private files the producer needed (a pgpass or defaults file); called when the stage ends. */
  cleanup?: () => void;
}

export interface PathsInput {
  kind: "paths";
  paths: string[];
  exclude: string[];
}

export type BackupInput = StreamInput | PathsInput;

/** Where a source reads relative paths from, and where it may put private files (see private-file.ts). */
export interface SourceContext {
  configDir: string;
  privateDir: string;
}

export function backupInput(source: NamedSource, context: SourceContext): BackupInput {
  switch (source.type) {
    case "postgres":
      return source.part === "globals" ? postgresGlobalsInput(source, context) : postgresInput(source, context);
    case "mysql":
      return mysqlInput(source, context);
    case "sqlite":
      return sqliteInput(source, context.configDir);
    case "files":
      return filesInput(source, context.configDir);
    case "command":
      return commandInput(source, context);
    case "mongodb":
      return mongodbInput(source, context);
    default: {
      // Every declared type is handled above; this guards configs that bypassed validation.
      const unknown = source as { name: string; type: string };
      throw new SourceError(
        `source ${unknown.name}: ${unknown.type}() sources are declared but cannot be backed up by this version yet`,
      );
    }
  }
}
