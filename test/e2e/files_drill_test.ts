/**
 * Drills of files and command sources (issue 22, point 3), with real restic and real applies: a files drill restores
 * a sample (the largest and the newest file always in it) to a private scratch folder and compares it with the live
 * files — a live file changed since the backup is counted, not failed; a live file with the snapshot's size and
 * mtime but other content is a mismatch that fails the drill; a damaged pack under a sampled file fails it. A command
 * drill restores the dump and compares its size and SHA-256 with what the backup's tap recorded: a record that does
 * not match, or a damaged pack, fails it. No scratch folder is left behind.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { createHash, randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { repoRoot, runCli, spawnCli, waitFor } from "../support/cli.ts";
import { corruptPack, packFiles } from "../support/packs.ts";

/** Damages the largest pack of a repository: the one holding the big file's data. */
function corruptLargestPack(repository: string): void {
  corruptPack(packFiles(repository).sort((a, b) => statSync(b).size - statSync(a).size)[0]);
}

describe("drills of files and command sources", () => {
  let dir = "";
  let config = "";
  const env = { FILESDRILL_RESTIC_PASSWORD: "files-drill-restic-password-0815" };
  const cli = (args: string[]) => runCli(["--config", config, ...args], { env, timeoutMs: 120_000 });
  const show = (r: { stdout: string; stderr: string }) => r.stdout + r.stderr;
  const sqlite = (sql: string) => execFileSync("sqlite3", [join(dir, ".backupctl", "state.db"), sql]).toString();
  /** What is left in the state folder's private tmp/ (the drills' scratch folders are made there). */
  const scratchLeft = () => {
    try {
      return readdirSync(join(dir, ".backupctl", "tmp"));
    } catch {
      return [];
    }
  };
  /** Whole seconds: the mismatch case sets a file back to its mtime exactly. */
  const mtime = 1_780_000_000;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "backupctl-files-drill-"));
    const uploads = join(dir, "uploads");
    mkdirSync(join(uploads, "sub"), { recursive: true });
    writeFileSync(join(uploads, "big.bin"), randomBytes(3 * 1024 * 1024));
    for (let i = 0; i < 6; i++) writeFileSync(join(uploads, "sub", `note-${i}.txt`), `note ${i}\n`.repeat(50));
    writeFileSync(join(uploads, "same-size.txt"), "original content\n");
    for (const name of ["big.bin", "same-size.txt", ...[0, 1, 2, 3, 4, 5].map((i) => join("sub", `note-${i}.txt`))]) {
      utimesSync(join(uploads, name), mtime, mtime);
    }
    writeFileSync(join(uploads, "newest.txt"), "the newest file\n");
    config = join(dir, "backup.config.ts");
    writeFileSync(
      config,
      `import { command, defineConfig, env, files, restic } from ${JSON.stringify(join(repoRoot, "src", "mod.ts"))};
export default defineConfig({
  repositories: {
    local: restic({ url: "repo-files", password: env("FILESDRILL_RESTIC_PASSWORD") }),
    other: restic({ url: "repo-command", password: env("FILESDRILL_RESTIC_PASSWORD") }),
  },
  projects: {
    uploads: {
      schedule: "0 3 * * *",
      sources: [files({ name: "uploads", paths: ["uploads"] })],
      repositories: ["local"],
      retention: { last: 5 },
      verify: { every: "1d", sample: { files: 4 } },
    },
    exports: {
      schedule: "0 3 * * *",
      sources: [command({ name: "export", filename: "export.txt", run: "seq 1 20000" })],
      repositories: ["other"],
      retention: { last: 5 },
      verify: { every: "1d" },
    },
  },
});
`,
    );
    const applied = await cli(["apply", "--now", "2026-11-01T03:00:00Z"]);
    assert.equal(applied.code, 0, show(applied));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("plans a drill for a files-only and a command-only project, and passes both", async () => {
    const planned = await cli(["plan", "--now", "2026-11-01T03:10:00Z"]);
    assert.match(planned.stdout, /verify uploads \(restore drill from local\)/, show(planned));
    assert.match(planned.stdout, /verify exports \(restore drill from other\)/, show(planned));
    const applied = await cli(["apply", "--now", "2026-11-01T03:10:00Z"]);
    assert.equal(applied.code, 0, show(applied));
    // 4 of 9 files: the largest and the newest among them, all unchanged since the backup.
    assert.match(
      applied.stdout,
      /~ verify uploads: restored 4 of 9 files \(.+\) of uploads from snapshot [0-9a-f]{8} in local in .+; 4 matched, 0 changed since, 0 mismatched, 0 missing live/,
    );
    const seq = execFileSync("seq", ["1", "20000"]);
    assert.match(
      applied.stdout,
      new RegExp(
        `~ verify exports: restored the dump of export .*; ${seq.length} bytes, as its backup recorded; sha256 ` +
          `${createHash("sha256").update(seq).digest("hex").slice(0, 16)}…, as its backup recorded`,
      ),
    );
    // The backup's tap hashed the stream: the backup stage's note holds its checksum.
    assert.equal(
      sqlite("SELECT note FROM stages WHERE type = 'backup' AND project = 'exports'").trim(),
      `sha256 ${createHash("sha256").update(seq).digest("hex")}`,
    );
    const notes = sqlite("SELECT project || ': ' || note FROM stages WHERE type = 'verify' AND status = 'succeeded'");
    assert.match(notes, /uploads: restored 4 of 9 files .*4 matched/);
    assert.match(notes, /exports: restored the dump of export/);
    assert.deepEqual(scratchLeft(), [], "no scratch folder left");
  });

  it("counts a live file changed since the backup without failing, and restores the whole share asked", async () => {
    writeFileSync(join(dir, "uploads", "big.bin"), randomBytes(1024));
    writeFileSync(config, readFileSync(config, "utf8").replace("sample: { files: 4 }", 'sample: { share: "100%" }'));
    const verified = await cli(["verify", "uploads"]);
    assert.equal(verified.code, 0, show(verified));
    assert.match(verified.stdout, /restored 9 of 9 files .*; 8 matched, 1 changed since, 0 mismatched, 0 missing live/);
  });

  it("says so when none of the sampled files exists on this host: nothing compared, the restore still proven", async () => {
    renameSync(join(dir, "uploads"), join(dir, "uploads-elsewhere"));
    try {
      const verified = await cli(["verify", "uploads"]);
      assert.equal(verified.code, 0, show(verified));
      assert.match(
        verified.stdout,
        /! verify uploads: none of the 9 sampled files of uploads exists on this host, so none was compared/,
      );
      assert.match(verified.stdout, /0 matched, 0 changed since, 0 mismatched, 9 missing live/);
    } finally {
      renameSync(join(dir, "uploads-elsewhere"), join(dir, "uploads"));
    }
    const again = await cli(["verify", "uploads"]);
    assert.doesNotMatch(again.stdout, /none of the .* sampled files/);
  });

  it("fails on a live file with the snapshot's size and mtime but other content, naming it", async () => {
    const path = join(dir, "uploads", "same-size.txt");
    writeFileSync(path, "ORIGINAL CONTENT\n");
    utimesSync(path, mtime, mtime);
    const verified = await cli(["verify", "uploads"]);
    assert.equal(verified.code, 1, show(verified));
    assert.match(
      verified.stdout,
      /✗ verify uploads failed: 1 restored file of snapshot [0-9a-f]{8} differs from the live file, unchanged since the backup \(same size and mtime\): .*uploads\/same-size\.txt/,
    );
    writeFileSync(path, "original content\n");
    utimesSync(path, mtime, mtime);
  });

  it("fails a command drill whose restored size is not what the backup recorded", async () => {
    sqlite("UPDATE stages SET bytes = bytes + 1 WHERE type = 'backup' AND project = 'exports'");
    const verified = await cli(["verify", "exports"]);
    assert.equal(verified.code, 1, show(verified));
    assert.match(
      verified.stdout,
      /✗ verify exports failed: the restored dump of export \(snapshot [0-9a-f]{8}\) is \d+ bytes, but its backup recorded \d+/,
    );
    sqlite("UPDATE stages SET bytes = bytes - 1 WHERE type = 'backup' AND project = 'exports'");
    const again = await cli(["verify", "exports"]);
    assert.equal(again.code, 0, show(again));
  });

  it("fails a command drill whose restored dump does not have the checksum the backup recorded", async () => {
    const note = sqlite("SELECT note FROM stages WHERE type = 'backup' AND project = 'exports'").trim();
    sqlite(`UPDATE stages SET note = 'sha256 ${"0".repeat(64)}' WHERE type = 'backup' AND project = 'exports'`);
    const verified = await cli(["verify", "exports"]);
    assert.equal(verified.code, 1, show(verified));
    assert.match(
      verified.stdout,
      /✗ verify exports failed: the restored dump of export \(snapshot [0-9a-f]{8}\) has SHA-256 [0-9a-f]{16}…, but its backup recorded 0000000000000000…/,
    );
    sqlite(`UPDATE stages SET note = '${note}' WHERE type = 'backup' AND project = 'exports'`);
  });

  it("kill -9 during a files drill leaves its scratch folder; the next command removes it", async () => {
    const drills = () => scratchLeft().filter((name) => /^secret-\d+-drill-/.test(name));
    const killed = spawnCli(["--config", config, "verify", "uploads"], { env });
    const [folder] = await waitFor("the drill's scratch folder", () => drills().length > 0 && drills(), 60_000);
    process.kill(killed.pid, "SIGKILL");
    // Resolves once every process holding the CLI's output has ended (a restic it started finishes on its own).
    const ended = await killed.done;
    assert.equal(ended.signal, "SIGKILL", `killed before it finished: ${show(ended)}`);
    assert.ok(existsSync(join(dir, ".backupctl", "tmp", folder)), "kill -9 leaves the folder");
    const next = await cli(["verify", "uploads"]);
    assert.equal(next.code, 0, show(next));
    assert.deepEqual(scratchLeft(), [], "the next drill removed the leftover, and its own folder");
  });

  it("a full disk under the scratch folder fails the drill naming the cause, leaves nothing, and passes after", async (t) => {
    if (process.getuid?.() !== 0) {
      t.skip("mounting a small tmpfs needs root (CI runs as root)");
      return;
    }
    const tmp = join(dir, ".backupctl", "tmp");
    mkdirSync(tmp, { recursive: true, mode: 0o700 });
    // Smaller than big.bin (3 MiB), which every sample holds.
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", tmp]);
    try {
      const verified = await cli(["verify", "uploads"]);
      assert.equal(verified.code, 1, show(verified));
      assert.match(
        verified.stdout,
        /✗ verify uploads failed: .*restic restore failed .* a disk is full where the restore writes .*tmp\/\): free space there/,
      );
      assert.match(verified.stdout, /no space left on device/);
      assert.deepEqual(scratchLeft(), [], "the scratch folder is removed on the full disk too");
    } finally {
      execFileSync("umount", [tmp]);
    }
    const again = await cli(["verify", "uploads"]);
    assert.equal(again.code, 0, show(again));
  });

  it("fails both drills after a byte of the packs they restore from is damaged", async () => {
    corruptLargestPack(join(dir, "repo-files"));
    const files = await cli(["verify", "uploads"]);
    assert.equal(files.code, 1, show(files));
    // The largest file is always in the sample: the damaged pack holds its data.
    assert.match(files.stdout, /✗ verify uploads failed: repository local: restic restore failed/);
    assert.match(files.stdout, /uploads\/big\.bin: ciphertext verification failed/);
    corruptLargestPack(join(dir, "repo-command"));
    const dump = await cli(["verify", "exports"]);
    assert.equal(dump.code, 1, show(dump));
    assert.match(dump.stdout, /✗ verify exports failed: repository other: restic dump failed/);
    const failed = sqlite("SELECT project FROM stages WHERE type = 'verify' AND status = 'failed' ORDER BY id");
    assert.match(failed, /uploads\nexports\n$/);
    assert.deepEqual(scratchLeft(), [], "no scratch folder left after failed drills");
  });
});
