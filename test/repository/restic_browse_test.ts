/**
 * The readers of `restic ls/find/diff --json` on lines restic 0.14 printed (copied from a real run), with what can
 * come between them: a warning on stdout, a folder's trailing slash in a diff, `null` from a find that matched nothing.
 * The e2e tests (test/e2e/browse_test.ts) run them against real restic.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseDiff, parseFind, parseLs } from "../../src/repository/restic-browse.ts";

const ls = [
  `{"time":"2026-12-06T20:13:51.662351773Z","tree":"f994","paths":["/tmp/rt/data"],"hostname":"vm","username":"root","id":"e7476ba323869d22d9e5cdbda6d837917f085d0a1d6dffb1f96af93c2e815c4c","short_id":"e7476ba3","struct_type":"snapshot"}`,
  `{"name":"data","type":"dir","path":"/data","uid":0,"gid":0,"mode":2147484141,"permissions":"drwxr-xr-x","mtime":"2026-12-06T20:13:51.638619968Z","atime":"2026-12-06T20:13:51.638619968Z","ctime":"2026-12-06T20:13:51.638619968Z","struct_type":"node"}`,
  "unable to open cache: a warning restic printed on stdout",
  `{"name":"a.txt","type":"file","path":"/data/a.txt","uid":0,"gid":0,"size":8,"mode":420,"permissions":"-rw-r--r--","mtime":"2026-12-06T20:13:51.642619968Z","atime":"2026-12-06T20:13:51.642619968Z","ctime":"2026-12-06T20:13:51.642619968Z","struct_type":"node"}`,
  `{"name":"link","type":"symlink","path":"/data/link","uid":0,"gid":0,"mode":134218239,"permissions":"Lrwxrwxrwx","mtime":"2026-12-06T20:13:51.162619951Z","atime":"2026-12-06T20:13:51.162619951Z","ctime":"2026-12-06T20:13:51.162619951Z","struct_type":"node"}`,
  "",
].join("\n");

describe("restic ls/find/diff --json readers", () => {
  it("ls: the nodes in restic's order, without the snapshot line or a stray warning", () => {
    assert.deepEqual(parseLs(ls), [
      { path: "/data", type: "dir", size: 0, mtime: "2026-12-06T20:13:51.638619968Z" },
      { path: "/data/a.txt", type: "file", size: 8, mtime: "2026-12-06T20:13:51.642619968Z" },
      { path: "/data/link", type: "symlink", size: 0, mtime: "2026-12-06T20:13:51.162619951Z" },
    ]);
    assert.deepEqual(parseLs(ls.split("\n")[0]), [], "a path the snapshot does not hold: the snapshot line only");
  });

  it("find: each snapshot's matches; null or nothing is no match", () => {
    const stdout =
      `[{"matches":[{"path":"/data/a.txt","permissions":"-rw-r--r--","type":"file","mode":420,"mtime":"2026-12-06T20:13:51.642619968Z","atime":"2026-12-06T20:13:51.642619968Z","ctime":"2026-12-06T20:13:51.642619968Z","uid":0,"gid":0,"user":"root","group":"root","device_id":65024,"size":8,"links":1}],"hits":1,"snapshot":"e7476ba323869d22d9e5cdbda6d837917f085d0a1d6dffb1f96af93c2e815c4c"}]\n`;
    assert.deepEqual(parseFind(stdout), [{
      snapshot: "e7476ba323869d22d9e5cdbda6d837917f085d0a1d6dffb1f96af93c2e815c4c",
      matches: [{ path: "/data/a.txt", type: "file", size: 8, mtime: "2026-12-06T20:13:51.642619968Z" }],
    }]);
    assert.deepEqual(parseFind("null\n"), []);
    assert.deepEqual(parseFind("[]\n"), []);
    assert.deepEqual(parseFind(""), []);
  });

  it("diff: the changes with their modifier, a folder without its trailing slash, no statistics", () => {
    const stdout = [
      `{"message_type":"change","path":"/data/a.txt","modifier":"M"}`,
      `{"message_type":"change","path":"/data/c.txt","modifier":"-"}`,
      `{"message_type":"change","path":"/data/new/","modifier":"+"}`,
      `{"message_type":"change","path":"/data/new/n.txt","modifier":"+"}`,
      `{"message_type":"statistics","source_snapshot":"6bff","target_snapshot":"e747","changed_files":1,"added":{"files":1,"dirs":1,"others":0,"data_blobs":2,"tree_blobs":3,"bytes":2055},"removed":{"files":1,"dirs":0,"others":0,"data_blobs":2,"tree_blobs":3,"bytes":2045}}`,
    ].join("\n");
    assert.deepEqual(parseDiff(stdout), [
      { path: "/data/a.txt", modifier: "M" },
      { path: "/data/c.txt", modifier: "-" },
      { path: "/data/new", modifier: "+" },
      { path: "/data/new/n.txt", modifier: "+" },
    ]);
  });
});
