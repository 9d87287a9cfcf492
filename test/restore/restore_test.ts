/**
 * The parts of restore/restore.ts that run without a repository: which sources a restore takes, the name a dump is
 * restored as, and the checks a restore to a folder makes before it writes anything. Restores from real snapshots
 * are test/e2e/restore_test.ts and restore_safety_test.ts.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { files, postgres, restic, sqlite } from "../../src/config/helpers.ts";
import type { NamedSource } from "../../src/config/normalize.ts";
import { validateConfig } from "../../src/config/validate.ts";
import { folderConflicts, type Located, restoredName, sourcesOf } from "../../src/restore/restore.ts";
import type { SnapshotTable } from "../../src/state/schema.ts";

const root = mkdtempSync(join(tmpdir(), "backupctl-restore-test-"));
after(() => rmSync(root, { recursive: true, force: true }));

describe("restore pieces", () => {
  const config = validateConfig({
    repositories: { local: restic({ url: "/srv/restic", password: { secret: "env", name: "UNIT_RESTORE_RESTIC" } }) },
    projects: {
      app: {
        schedule: "@daily",
        sources: [
          sqlite({ path: "app.db" }),
          postgres({ database: "orders" }),
          files({ name: "uploads", paths: ["u"] }),
        ],
        repositories: ["local"],
        retention: { daily: 7 },
      },
    },
  }, "backup.config.ts");
  const project = config.projects.app;
  const snapshot: SnapshotTable = {
    repository: "local",
    id: "0123456789abcdef",
    short_id: "01234567",
    time: "2026-12-06T03:00:00Z",
    project: "app",
    source: null,
    run_id: null,
    hostname: "backup-host",
    tags: "[]",
    paths: "[]",
    size: null,
    recorded_at: "2026-12-06T03:00:05Z",
    original: null,
  };
  const located = (source: NamedSource, dumpPath?: string, encrypted?: string): Located => ({
    project,
    source,
    repository: "local",
    snapshot,
    dumpPath,
    encrypted,
  });
  const [app, orders, uploads] = project.sources;

  it("sourcesOf: all of the project's sources, the one named, or an error listing them", () => {
    assert.deepEqual(sourcesOf(project, undefined).map((s) => s.name), ["app", "orders", "uploads"]);
    assert.deepEqual(sourcesOf(project, "orders"), [orders]);
    assert.throws(() => sourcesOf(project, "order"), {
      name: "UsageError",
      message: 'project app has no source "order"; its sources: app, orders, uploads',
    });
  });

  it("restoredName: the dump's file name without its encryption extension", () => {
    assert.equal(restoredName(located(orders, "/orders.pgdump")), "orders.pgdump");
    assert.equal(restoredName(located(orders, "/orders.pgdump.gpg", ".gpg")), "orders.pgdump");
  });

  it("folderConflicts: nothing for a new or fitting folder; an existing dump file, a link, a non-empty folder for files", () => {
    const dir = join(root, "restored");
    assert.deepEqual(folderConflicts([located(app, "/app.sql"), located(uploads)], dir), []);
    mkdirSync(dir);
    assert.deepEqual(folderConflicts([located(app, "/app.sql.age", ".age"), located(uploads)], dir), []);
    writeFileSync(join(dir, "app.sql"), "old");
    assert.deepEqual(folderConflicts([located(app, "/app.sql.age", ".age"), located(uploads)], dir), [
      `${join(dir, "app.sql")} exists`,
      `${dir} is not empty (1 entry): restic restore of uploads would overwrite the snapshot's files it holds`,
    ]);
    const link = join(root, "link");
    symlinkSync(dir, link);
    assert.deepEqual(folderConflicts([located(orders, "/orders.pgdump")], link), [
      `${link} is a symbolic link to ${dir}`,
    ]);
  });

  it("folderConflicts refuses a file as the folder, and two dumps with one file name", () => {
    const file = join(root, "a-file");
    writeFileSync(file, "");
    assert.throws(() => folderConflicts([located(app, "/app.sql")], file), {
      name: "UsageError",
      message: `--to ${file} is a file, not a folder`,
    });
    assert.throws(() => folderConflicts([located(app, "/x.sql"), located(orders, "/x.sql")], join(root, "new")), {
      name: "UsageError",
      message: /app and orders both restore to x\.sql: restore them one at a time \(--source\)/,
    });
  });
});
