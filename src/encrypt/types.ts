/**
 * The types an encryption filter is built from and becomes, shared by encrypt/filter.ts, gpg.ts, age.ts and the
 * pipelines, so that none of them imports another to name them.
 */

/** A stream filter between a dump and restic: a program reading plaintext on stdin and writing ciphertext. */
export interface StreamFilter {
  argv: string[];
  env?: Record<string, string>;
  /** The Debian package that provides the program. */
  package: string;
  /** Appended to the dump's file name in the snapshot (".gpg", ".age"). */
  extension: string;
  /** Removes private files the filter needed (and stops a gpg-agent it started); awaited when the stage ends. */
  cleanup?: () => void | Promise<void>;
}

/** Where relative key paths start (the config's folder) and where private files may be created (0700 folders). */
export interface FilterContext {
  configDir: string;
  privateDir: string;
}
