/**
 * apply/discovery.ts when a server cannot be asked: a real psql against a closed port on 127.0.0.1 fails, and the
 * plan neither goes quiet nor says the databases are gone. With databases known from the state they are planned;
 * with none, the server itself is planned as a source whose backup fails, saying why. Offline, no server is asked.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { discoverDatabases } from "../../src/apply/discovery.ts";
import { postgres } from "../../src/config/helpers.ts";
import { SourceError } from "../../src/errors.ts";
import { backupInput } from "../../src/sources/input.ts";
import { loadedConfig, observedState, planAt, record } from "../support/plan-fixtures.ts";
import { freePort } from "../support/postgres.ts";

const privateDir = mkdtempSync(join(tmpdir(), "backupctl-discovery-test-"));
after(() => rmSync(privateDir, { recursive: true, force: true }));

async function unreachableConfig() {
  // A port nothing listens on: the listing's connection is refused at once.
  const port = await freePort();
  const loaded = loadedConfig({
    app: {
      schedule: "0 3 * * *",
      sources: [postgres({ name: "pg", host: "127.0.0.1", port, databases: "all" })],
      repositories: ["local"],
      retention: { daily: 7 },
    },
  });
  return { ...loaded, file: join(privateDir, "backup.config.ts"), dir: privateDir };
}

describe("a server whose databases cannot be listed", () => {
  it("with nothing known, the server itself is planned, and its backup fails saying why", async () => {
    const loaded = await unreachableConfig();
    const found = await discoverDatabases(loaded, observedState(), { privateDir });
    assert.equal(found.warnings.length, 1);
    assert.match(found.warnings[0], /^project app, source pg \(databases: "all"\): the server's databases could not/);
    assert.match(found.warnings[0], /psql failed \(exit 2\).*Connection refused/s);
    assert.match(found.warnings[0], /No database of it is known yet: its backup is planned, and fails/);
    const plan = planAt(found.loaded, observedState());
    const backups = plan.actions.filter((a) => a.type === "backup");
    assert.deepEqual(backups.map((a) => a.source), ["pg"]);
    assert.match(
      backups[0].reason,
      /^the server's databases could not be listed \(psql failed.*fails until it answers$/s,
    );
    const source = found.loaded.config.projects.app.sources[0];
    assert.throws(() => backupInput(source, { configDir: privateDir, privateDir }), (error: unknown) => {
      assert.ok(error instanceof SourceError);
      assert.match(error.message, /^source pg: the server's databases could not be listed when planning/);
      return true;
    });
  });

  it("with databases known from the state, those are planned instead", async () => {
    const loaded = await unreachableConfig();
    const observed = observedState({ backups: [record("app", "pg-shop", "2026-11-19T03:00:00Z")] });
    const found = await discoverDatabases(loaded, observed, { privateDir });
    assert.match(found.warnings[0], /The database backed up from it before is planned/);
    assert.deepEqual(found.loaded.config.projects.app.sources.map((s) => s.name), ["pg-shop"]);
  });

  it("offline asks no server and says nothing", async () => {
    const loaded = await unreachableConfig();
    const observed = observedState({ backups: [record("app", "pg-shop", "2026-11-19T03:00:00Z")] });
    const found = await discoverDatabases(loaded, observed, { privateDir, offline: true });
    assert.deepEqual(found.warnings, []);
    assert.deepEqual(found.loaded.config.projects.app.sources.map((s) => s.name), ["pg-shop"]);
    assert.equal(found.loaded.config.projects.app.listings?.pg, undefined);
  });
});
