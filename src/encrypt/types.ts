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
