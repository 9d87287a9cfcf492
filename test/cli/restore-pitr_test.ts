/**
 * cli/restore-pitr.ts before anything is loaded: the options a point-in-time restore needs and refuses (usage errors,
 * exit 64), and which pgbackrest() source of a project it restores. The restore itself, against a real archiving
 * cluster, is test/pitr/restore-to-time_test.ts.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { pitrSource, runPitrRestore } from "../../src/cli/restore-pitr.ts";
import { normalizeConfig } from "../../src/config/normalize.ts";
import { UsageError } from "../../src/errors.ts";
import type { PgBackRestSource } from "../../src/pitr/types.ts";

const output = { stdout: () => {}, stderr: () => {} };

function stanza(name: string): PgBackRestSource {
  return {
    type: "pgbackrest",
    name,
    stanza: name,
    cluster: { dataDirectory: `/var/lib/postgresql/15/${name}`, database: "postgres" },
    repository: { path: "/srv/pgbackrest" },
    schedule: { full: "@weekly" },
    bin: "pgbackrest",
  };
}

const config = normalizeConfig({
  repositories: { local: { type: "restic", url: "/srv/restic", password: { secret: "env", name: "PW" } } },
  projects: {
    app: {
      schedule: "@daily",
      sources: [{ type: "files", name: "uploads", paths: ["/srv/uploads"] }],
      repositories: ["local"],
      retention: { daily: 7 },
    },
  },
});

describe("restore --to-time: the options", () => {
  const refused = async (options: Record<string, unknown>, message: RegExp) => {
    await assert.rejects(runPitrRestore("app", options, output), (error: unknown) => {
      assert.ok(error instanceof UsageError, String(error));
      assert.match(error.message, message);
      return true;
    });
  };

  it("needs both --to-time and --into-cluster", async () => {
    await refused({ toTime: "latest" }, /needs both --to-time TIME\|latest and --into-cluster DIR/);
    await refused({ intoCluster: "/srv/restored" }, /needs both/);
    await refused({ port: "5499" }, /needs both/);
  });

  it("refuses the other restores' targets, --snapshot, a time without its zone and a bad port", async () => {
    const both = { toTime: "latest", intoCluster: "/srv/restored" };
    await refused({ ...both, to: "/srv/out" }, /drop --to and --into-database/);
    await refused({ ...both, intoDatabase: true }, /drop --to and --into-database/);
    await refused({ ...both, snapshot: "abcd1234" }, /chooses the backup itself: drop --snapshot/);
    await refused({ ...both, toTime: "2026-12-01 10:00" }, /a time with its zone, e\.g\. "2026-12-01T10:00:00\+01:00"/);
    await refused({ ...both, port: "99999" }, /--port: expected a TCP port from 1 to 65535, got "99999"/);
  });
});

describe("restore --to-time: the source", () => {
  it("is the one named, or the only one; a restic source or an unknown name is refused naming the choices", () => {
    const one = { ...config.projects.app, pitr: [stanza("main")] };
    assert.equal(pitrSource(one, undefined).stanza, "main");
    assert.equal(pitrSource(one, "main").stanza, "main");
    assert.throws(
      () => pitrSource(one, "uploads"),
      /uploads is a files source: restore it with --to or --into-database/,
    );
    assert.throws(() => pitrSource(one, "other"), /no pgbackrest\(\) source "other"; its pgbackrest\(\) sources: main/);
    const two = { ...config.projects.app, pitr: [stanza("main"), stanza("reports")] };
    assert.throws(
      () => pitrSource(two, undefined),
      /several pgbackrest\(\) sources: choose one with --source \(main, reports\)/,
    );
    assert.equal(pitrSource(two, "reports").stanza, "reports");
    assert.throws(() => pitrSource(config.projects.app, undefined), /project app has no pgbackrest\(\) source/);
  });
});
