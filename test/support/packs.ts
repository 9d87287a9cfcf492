/** Damage for tests: bytes of a restic repository's pack files inverted in place, as a failing disk would. */
import { chmodSync, closeSync, openSync, readdirSync, readSync, statSync, writeSync } from "node:fs";
import { join } from "node:path";

/** Every pack file of a local restic repository. */
export function packFiles(repository: string): string[] {
  return readdirSync(join(repository, "data")).flatMap((prefix) =>
    readdirSync(join(repository, "data", prefix)).map((name) => join(repository, "data", prefix, name))
  );
}

/** Inverts 32 bytes in the middle of a pack (restic leaves them read-only). */
export function corruptPack(path: string): void {
  chmodSync(path, 0o600);
  const fd = openSync(path, "r+");
  try {
    const at = Math.floor(statSync(path).size / 2);
    const bytes = Buffer.alloc(32);
    const read = readSync(fd, bytes, 0, bytes.length, at);
    for (let i = 0; i < read; i++) bytes[i] ^= 0xff;
    writeSync(fd, bytes, 0, read, at);
  } finally {
    closeSync(fd);
  }
}
