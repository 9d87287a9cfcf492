/**
 * The remainder of a stanza-create cut short (src/pitr/stanza-repair.ts), with real folders: found only while no
 * backup (nor either backups' info file) is there, and removed whole; a stanza that held backups is never touched.
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, it } from "node:test";
import { cutStanzaCreate, removeCutStanza } from "../../src/pitr/stanza-repair.ts";

let repo: string;
const archive = () => join(repo, "archive", "main");
const backup = () => join(repo, "backup", "main");

beforeEach(() => {
  repo = mkdtempSync(join(tmpdir(), "backupctl-stanza-repair-"));
  mkdirSync(join(archive(), "15-1", "0000000100000000"), { recursive: true });
  writeFileSync(join(archive(), "archive.info"), "[db]");
  writeFileSync(join(archive(), "archive.info.copy"), "[db]");
  writeFileSync(join(archive(), "15-1", "0000000100000000", "000000010000000000000001-abc.gz"), "wal");
});
afterEach(() => rmSync(repo, { recursive: true, force: true }));

describe("a stanza-create cut short", () => {
  it("is the archive's info without the backups' (no folder, an empty one, a temporary file): removed whole", () => {
    assert.equal(cutStanzaCreate(repo, "main"), archive());
    mkdirSync(backup(), { recursive: true });
    assert.equal(cutStanzaCreate(repo, "main"), archive());
    writeFileSync(join(backup(), "backup.info.pgbackrest.tmp"), "half");
    assert.equal(cutStanzaCreate(repo, "main"), archive());
    assert.deepEqual(removeCutStanza(archive()).sort(), ["15-1", "archive.info", "archive.info.copy"]);
    assert.deepEqual(readdirSync(archive()), []);
  });

  it("is not a stanza with a backup or either backups' info file, nor one without the archive's info", () => {
    mkdirSync(join(backup(), "20261207-014033F"), { recursive: true });
    assert.equal(cutStanzaCreate(repo, "main"), undefined);
    rmSync(join(backup(), "20261207-014033F"), { recursive: true });
    writeFileSync(join(backup(), "backup.info.copy"), "[backup]");
    assert.equal(cutStanzaCreate(repo, "main"), undefined);
    assert.equal(cutStanzaCreate(repo, "other"), undefined);
    assert.equal(cutStanzaCreate(join(repo, "missing"), "main"), undefined);
    assert.ok(existsSync(join(archive(), "archive.info")), "nothing was removed");
  });
});
