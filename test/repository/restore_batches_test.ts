/**
 * A restore of many chosen paths (a files drill of a whole big tree) is split into several restic runs whose
 * `--include` arguments each fit a command line, and restores every path: real restic, a real repository.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Restic } from "../../src/repository/restic.ts";
import { includeBatchBytes, includeBatches } from "../../src/repository/restic-browse.ts";
import { runTool } from "../support/cli.ts";

const password = "restore-batches-4711";

describe("restoring chosen paths in batches", () => {
  let dir: string;
  let data: string;
  let repository: Restic;
  let snapshot: string;
  const env = () => ({ RESTIC_REPOSITORY: join(dir, "repo"), RESTIC_PASSWORD: password });
  /** Names long enough that a few make a batch, with a glob character that must be escaped. */
  const names = Array.from({ length: 120 }, (_, i) => `file-${String(i).padStart(3, "0")}-[${"x".repeat(60)}].txt`);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "backupctl-restore-batches-"));
    writeFileSync(join(dir, "password"), password, { mode: 0o600 });
    data = join(dir, "data");
    mkdirSync(data);
    for (const name of names) writeFileSync(join(data, name), `content of ${name}\n`);
    // A file the include patterns must not catch: "[x…]" unescaped would be a character class matching it.
    writeFileSync(join(data, "file-000-x.txt"), "not chosen\n");
    assert.equal((await runTool("restic", ["--no-cache", "init"], { env: env() })).code, 0);
    const backup = await runTool("restic", ["--no-cache", "backup", "--json", data], { env: env() });
    assert.equal(backup.code, 0, backup.stderr);
    snapshot = JSON.parse(backup.stdout.trim().split("\n").at(-1)!).snapshot_id;
    repository = new Restic(
      "main",
      { type: "restic", url: join(dir, "repo"), password: { secret: "file", path: "password" } },
      dir,
    );
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("splits the includes into batches under the limit, each path once, in order", () => {
    const paths = names.map((name) => join(data, name));
    const batches = includeBatches(paths, 2048);
    assert.ok(batches.length > 5, `${batches.length} batches`);
    for (const batch of batches) {
      const bytes = batch.reduce((sum, pattern) => sum + pattern.length + "--include".length + 2, 0);
      assert.ok(bytes <= 2048, `a batch of ${bytes} bytes`);
    }
    assert.deepEqual(batches.flat(), paths.map((path) => path.replaceAll("[", "\\[")));
    // A path longer than the limit is a batch of its own, never dropped; the default limit keeps these in one.
    assert.deepEqual(includeBatches(["/" + "a".repeat(3000)], 2048), [["/" + "a".repeat(3000)]]);
    assert.equal(includeBatches(paths, includeBatchBytes).length, 1);
  });

  it("restores every chosen path and nothing else, over several restic runs", async () => {
    const chosen = names.filter((_, i) => i % 2 === 0).map((name) => join(data, name));
    const target = join(dir, "target");
    await repository.restoreIncluding(snapshot, target, chosen, 2048);
    const restored = readdirSync(join(target, data)).sort();
    assert.deepEqual(restored, names.filter((_, i) => i % 2 === 0).sort());
    for (const name of restored) assert.equal(readFileSync(join(target, data, name), "utf8"), `content of ${name}\n`);
  });
});
