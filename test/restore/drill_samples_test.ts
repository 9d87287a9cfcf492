/** The sample a files drill restores (the largest and the newest always in it) and restic's mtimes read exactly. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { chooseSample, defaultSampleFiles, mtimeNs } from "../../src/restore/drill-samples.ts";
import type { TreeNode } from "../../src/repository/restic-browse.ts";

const node = (path: string, size: number, mtime: string, type = "file"): TreeNode => ({ path, type, size, mtime });

describe("files drill sample", () => {
  const tree = [
    node("/srv", 0, "2026-12-06T10:00:00Z", "dir"),
    node("/srv/link", 0, "2026-12-06T23:00:00Z", "symlink"),
    node("/srv/big.bin", 5_000_000, "2026-01-01T00:00:00Z"),
    node("/srv/newest.txt", 10, "2026-12-06T20:51:54.56260881Z"),
    node("/srv/almost-newest.txt", 10, "2026-12-06T20:51:54.562608809Z"),
    ...Array.from({ length: 40 }, (_, i) => node(`/srv/f${i}.txt`, 1000, "2026-06-01T00:00:00+02:00")),
  ];

  it("always holds the largest and the newest file, files only, as many as asked (20 by default)", () => {
    for (let round = 0; round < 20; round++) {
      const sample = chooseSample(tree, { files: 3 });
      assert.equal(sample.length, 3);
      assert.ok(sample.some((n) => n.path === "/srv/big.bin"));
      assert.ok(sample.some((n) => n.path === "/srv/newest.txt"));
      assert.ok(sample.every((n) => n.type === "file"));
    }
    assert.equal(chooseSample(tree, undefined).length, defaultSampleFiles);
    assert.equal(chooseSample(tree, { files: 1000 }).length, 43, "at most every file");
    assert.deepEqual(chooseSample([node("/srv", 0, "2026-12-06T10:00:00Z", "dir")], undefined), []);
  });

  it("with a share, restores files until that share of the bytes", () => {
    const total = tree.reduce((sum, n) => sum + n.size, 0);
    const sample = chooseSample(tree, { share: "100%" });
    assert.equal(sample.reduce((sum, n) => sum + n.size, 0), total);
    // The largest file alone is over 99% of the bytes: the newest joins it, nothing more is needed.
    assert.deepEqual(chooseSample(tree, { share: "50%" }).map((n) => n.path).sort(), [
      "/srv/big.bin",
      "/srv/newest.txt",
    ]);
  });

  it("reads restic's mtimes to the nanosecond, offsets included", () => {
    assert.equal(mtimeNs("2026-12-06T20:51:54.56260881Z"), 1_796_590_314_562_608_810n);
    assert.equal(mtimeNs("2026-12-06T21:51:54.56260881+01:00"), 1_796_590_314_562_608_810n);
    assert.equal(mtimeNs("2026-12-06T20:51:54Z"), 1_796_590_314_000_000_000n);
    assert.equal(mtimeNs("yesterday"), -1n);
  });
});
