/**
 * The remainder of a stanza-create cut short (backupctl or pgBackRest killed, the machine stopped): pgBackRest writes
 * the archive's info file before the backups' one, and a stanza with the first and not the second is refused by every
 * later stanza-create ("archive.info exists but backup.info is missing"). Such a stanza never held a backup, so
 * nothing in it can be restored: what it has is removed and stanza-create starts again. A stanza with any backup, or
 * a copy of the backups' info file, is never touched (that is damage for an operator to look at).
 */
import { existsSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";

/**
 * The archive folder of `stanza` in the local repository at `path` when it is the remainder of a stanza-create cut
 * short (see the top of this file), else undefined.
 */
export function cutStanzaCreate(path: string, stanza: string): string | undefined {
  const archive = join(path, "archive", stanza);
  const backup = join(path, "backup", stanza);
  if (!["archive.info", "archive.info.copy"].some((name) => existsSync(join(archive, name)))) return undefined;
  if (!existsSync(backup)) return archive;
  // A backup set's folder (20261207-014033F…) or either backup.info file: the stanza held, or holds, backups. A
  // temporary file is what the cut stanza-create was writing.
  const kept = readdirSync(backup).filter((name) => !name.endsWith(".pgbackrest.tmp"));
  return kept.length === 0 ? archive : undefined;
}

/**
 * Removes the remainder of a stanza-create cut short (`cutStanzaCreate`): the archive's info files and any WAL
 * pushed since, which no backup can use. Returns what it removed, for the audit note.
 */
export function removeCutStanza(archive: string): string[] {
  const removed = readdirSync(archive);
  for (const name of removed) rmSync(join(archive, name), { recursive: true, force: true });
  return removed;
}
