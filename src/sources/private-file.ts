/**
 * Private files for secrets a program can only read from a file (pgpass, MySQL defaults, mongodump config): created
 * 0600 in a 0700 folder under the state folder (`tmp/secret-<pid>-*`), removed when the stage ends. A crash can
 * leave one behind there: startup recovery deletes the folders whose process is gone (apply/recovery.ts).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface PrivateFile {
  path: string;
  remove(): void;
}

export function writePrivateFile(privateDir: string, name: string, content: string): PrivateFile {
  mkdirSync(privateDir, { recursive: true, mode: 0o700 });
  const dir = mkdtempSync(join(privateDir, `secret-${process.pid}-`));
  const path = join(dir, name);
  writeFileSync(path, content, { mode: 0o600 });
  return { path, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
