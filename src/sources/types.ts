/**
 * What a source gives restic — a stream from a producer program (dumps) or paths restic reads itself (files) — and
 * what a source is given. Types only, shared by sources/input.ts, each source kind and the pipeline, so none of
 * them imports another to name these.
 */
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
  /**
   * Whether the tap computes the dump's SHA-256 for the drills to compare with (a command source's: its drill has no
   * database to check; the others are not hashed, as that costs a core about 4 s of CPU per GiB).
   */
  checksum?: boolean;
  /** Removes private files the producer needed (a pgpass or defaults file); called when the stage ends. */
  cleanup?: () => void;
}

export interface PathsInput {
  kind: "paths";
  paths: string[];
  /** The source's own `restic backup` flags: excludes, caches, file systems, extraArgs (see sources/files.ts). */
  flags: string[];
}

export type BackupInput = StreamInput | PathsInput;

/** Where a source reads relative paths from, and where it may put private files (see exec/private-file.ts). */
export interface SourceContext {
  configDir: string;
  privateDir: string;
}
