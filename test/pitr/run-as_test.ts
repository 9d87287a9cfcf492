/**
 * pitr/run-as.ts: the folder on the way to a restore's target that the cluster's OS user cannot enter, named before
 * pgBackRest fails on it with "permission denied".
 */
import assert from "node:assert/strict";
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { asUser, folderBlocking } from "../../src/pitr/run-as.ts";

const root = mkdtempSync(join(tmpdir(), "backupctl-run-as-test-"));
after(() => rmSync(root, { recursive: true, force: true }));

describe("folderBlocking", () => {
  // Another user than the one running the tests: neither the owner nor in the group of what they make.
  const stranger = { uid: 54321, gid: 54321 };

  it("names the first folder another user cannot enter, and none when every one lets it pass", () => {
    const closed = join(root, "closed");
    mkdirSync(join(closed, "inside"), { recursive: true });
    chmodSync(root, 0o700);
    assert.equal(folderBlocking(join(closed, "inside", "new"), stranger), root);
    chmodSync(root, 0o711);
    chmodSync(closed, 0o700);
    assert.equal(folderBlocking(join(closed, "inside", "new"), stranger), closed);
    chmodSync(closed, 0o711);
    assert.equal(folderBlocking(join(closed, "inside", "new"), stranger), undefined);
    const me = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
    chmodSync(closed, 0o700);
    assert.equal(folderBlocking(join(closed, "inside"), me), undefined);
  });

  it("runs a program as another user through setpriv, and unchanged without one", () => {
    assert.deepEqual(asUser(["pg_ctl", "start"], undefined), ["pg_ctl", "start"]);
    assert.deepEqual(asUser(["pg_ctl", "start"], stranger), [
      "setpriv",
      "--reuid=54321",
      "--regid=54321",
      "--init-groups",
      "pg_ctl",
      "start",
    ]);
  });
});
