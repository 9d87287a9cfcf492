/**
 * `databases: "all"` without a server: the schema's two forms of postgres()/mysql(), the stable source names of
 * config/discovered.ts, and the plan made from a config expanded with a listing (new database, one gone, a server that
 * could not be listed). The real servers are in test/e2e/all_databases_test.ts.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { mysql, postgres } from "../../src/config/helpers.ts";
import {
  databaseSourceName,
  excluded,
  knownDatabases,
  serverDatabaseSource,
  withServerDatabases,
} from "../../src/config/discovered.ts";
import type { Listing, ServerSource } from "../../src/config/normalize.ts";
import { ConfigError } from "../../src/errors.ts";
import { loadedConfig, observedState, planAt, record, snap } from "../support/plan-fixtures.ts";

const server = { type: "postgres", name: "pg", databases: "all" } as const satisfies ServerSource;

function project(sources: unknown[]) {
  return { schedule: "0 3 * * *", sources, repositories: ["local"], retention: { daily: 7 } };
}

function problems(sources: unknown[]): string[] {
  try {
    loadedConfig({ app: project(sources) });
    return [];
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return error.problems.map((p) => `${p.path}: ${p.message}`);
  }
}

/** The config with each listed server's databases as sources (as apply/discovery.ts makes it). */
function expanded(sources: unknown[], found: Record<string, { databases: string[]; listing?: Listing }>) {
  const loaded = loadedConfig({ app: project(sources) });
  const config = withServerDatabases(loaded.config, new Map([["app", new Map(Object.entries(found))]]));
  return { ...loaded, config };
}

describe("databases: all, in the schema", () => {
  it("is accepted without a database, named after the helper, with its globals once", () => {
    const { config } = loadedConfig({ app: project([postgres({ databases: "all", globals: true })]) });
    const app = config.projects.app;
    assert.deepEqual(app.servers?.map((s) => s.name), ["postgres"]);
    // The server's databases are not known before planning; its globals source is, with the maintenance database.
    assert.deepEqual(app.sources.map((s) => [s.name, s.type === "postgres" && s.database, s.part]), [
      ["postgres-globals", "postgres", "globals"],
    ]);
  });

  it("keeps the one-database form's own messages, and says what databases takes", () => {
    assert.deepEqual(problems([{ type: "postgres" }]), [
      "projects.app.sources[0].database: required: expected a string",
    ]);
    const wrong = problems([{ type: "postgres", databases: "some" }]);
    assert.equal(wrong.length, 1);
    assert.match(wrong[0], /databases: expected "all".*got "some"/);
    assert.match(problems([mysql({ databases: "all", database: "wiki" } as never)])[0], /remove database/);
  });

  it("a drill of a server's database names it: which one is not known before planning", () => {
    const server = postgres({ name: "pg", databases: "all" });
    const into = postgres({ database: "drill" });
    const missing = (verify: unknown) => {
      try {
        loadedConfig({ app: { ...project([server]), verify } });
        return [];
      } catch (error) {
        if (!(error instanceof ConfigError)) throw error;
        return error.problems.map((p) => `${p.path}: ${p.message}`);
      }
    };
    assert.deepEqual(missing({ every: "7d", into }), [
      "projects.app.verify.source: required: the project's postgres source pg backs up every database of its " +
      'server; name the one to drill, e.g. source: "pg-DATABASE"',
    ]);
    assert.deepEqual(missing({ every: "7d", into, source: "pg-shop" }), []);
    const { config } = loadedConfig({
      app: { ...project([server]), verify: { every: "7d", into, source: "pg-shop" } },
    });
    assert.deepEqual(serverDatabaseSource(config.projects.app, "pg-shop")?.discovered, {
      server: "pg",
      database: "shop",
    });
  });

  it("reports two servers of the same default name as duplicates", () => {
    const found = problems([postgres({ databases: "all" }), postgres({ databases: "all", port: 5433 })]);
    assert.match(found.join("\n"), /duplicate source name "postgres"/);
  });

  it("a config without servers normalizes exactly as before (no servers key: the fingerprint stays)", () => {
    const { config } = loadedConfig({ app: project([postgres({ database: "shop" })]) });
    assert.equal("servers" in config.projects.app, false);
  });
});

describe("the source names of a server's databases", () => {
  it("are <server>-<database> when that is a valid, free name", () => {
    assert.equal(databaseSourceName(server, "shop", new Set()), "pg-shop");
    assert.equal(databaseSourceName(server, "shop.v2_a-b", new Set()), "pg-shop.v2_a-b");
  });

  it("get a hash of the database's name when it has other characters, is too long or is taken", () => {
    const spaced = databaseSourceName(server, "my shop", new Set());
    // The first 8 hex digits of sha256("my shop"), as docs/configuration.md shows it.
    assert.equal(spaced, "pg-my_shop-21e02318");
    // Stable, and distinct from the database whose name it would otherwise share.
    assert.equal(databaseSourceName(server, "my shop", new Set()), spaced);
    assert.notEqual(databaseSourceName(server, "my_shop", new Set()), spaced);
    const long = databaseSourceName(server, "x".repeat(80), new Set());
    assert.ok(long.length <= 64, long);
    assert.match(long, /^pg-x+-[0-9a-f]{8}$/);
    assert.match(databaseSourceName(server, "globals", new Set(["pg-globals"])), /^pg-globals-[0-9a-f]{8}$/);
    assert.match(databaseSourceName(server, "Ünïcode", new Set()), /^pg-_n_code-[0-9a-f]{8}$/);
  });

  it("exclude takes globs of database names", () => {
    assert.equal(excluded("scratch_1", ["template*", "scratch_*"]), true);
    assert.equal(excluded("scratch", ["scratch_*"]), false);
    assert.equal(excluded("a.b", ["a?b"]), true);
    assert.equal(excluded("a.b", ["a.c"]), false);
    assert.equal(excluded("shop", undefined), false);
  });

  it("are read back from the state, the longest server prefix winning", () => {
    const { config } = loadedConfig({
      app: project([postgres({ name: "pg", databases: "all" }), postgres({ name: "pg-b", databases: "all" })]),
    });
    const app = config.projects.app;
    const [pg, pgB] = app.servers!;
    const known = ["pg-shop", "pg-b-wiki", "other"];
    assert.deepEqual(knownDatabases(app, pg, known), ["shop"]);
    assert.deepEqual(knownDatabases(app, pgB, known), ["wiki"]);
    assert.deepEqual(serverDatabaseSource(app, "pg-b-wiki")?.discovered, { server: "pg-b", database: "wiki" });
    assert.equal(serverDatabaseSource(app, "other"), undefined);
  });
});

describe("planning with a server's databases", () => {
  const sources = [postgres({ name: "pg", databases: "all", exclude: ["scratch_*"], globals: true })];

  it("backs up each listed database as its own source, a new one said to be new, globals once", () => {
    const loaded = expanded(sources, {
      pg: { databases: ["shop", "wiki", "scratch_1"], listing: { databases: ["shop", "wiki", "scratch_1"] } },
    });
    const observed = observedState({
      backups: [record("app", "pg-shop", "2026-11-20T03:00:00Z"), record("app", "pg-globals", "2026-11-20T03:00:00Z")],
    });
    const plan = planAt(loaded, observed);
    assert.deepEqual(plan.actions.map((a) => [a.type, "source" in a ? a.source : "", a.reason]), [
      ["backup", "pg-globals", "due since 2026-11-21T03:00:00Z (0 3 * * *)"],
      ["backup", "pg-shop", "due since 2026-11-21T03:00:00Z (0 3 * * *)"],
      ["backup", "pg-wiki", "new database, never backed up"],
    ]);
  });

  it("reports a database backed up before and gone from the server as no longer present, snapshots kept", () => {
    const loaded = expanded(sources, { pg: { databases: ["shop"], listing: { databases: ["shop"] } } });
    const observed = observedState({
      snapshots: [
        snap("local", "aa000001", "2026-11-20T03:00:05Z", "app", "pg-shop"),
        snap("local", "aa000002", "2026-11-20T03:00:05Z", "app", "pg-old"),
      ],
    });
    const plan = planAt(loaded, observed);
    assert.deepEqual(plan.not_managed, [{
      kind: "source",
      subject: "app/pg-old in local",
      detail:
        "1 snapshot: database no longer present on the server of pg (dropped, renamed or excluded); its snapshots " +
        "are kept",
    }]);
    assert.ok(!plan.actions.some((a) => a.type === "forget"));
  });

  it("a server that could not be listed is never taken as empty", () => {
    const loaded = expanded(sources, { pg: { databases: ["shop"], listing: { unreachable: "connection refused" } } });
    const observed = observedState({
      snapshots: [snap("local", "aa000001", "2026-11-20T03:00:05Z", "app", "pg-shop")],
    });
    const plan = planAt(loaded, observed);
    // The database known from the state is still planned (and nothing is reported gone).
    assert.ok(plan.actions.some((a) => a.type === "backup" && a.source === "pg-shop"));
    assert.deepEqual(plan.not_managed, []);
  });
});
