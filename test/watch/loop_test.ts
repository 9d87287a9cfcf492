/**
 * The watch loop in process, against a real state database and a real restic repository, with a clock the test
 * moves: a first tick backs up what was never backed up, a jump forward past three daily slots runs one backup (the
 * slots coalesce), a jump backward runs nothing. Also the pure parts: the grouping of projects by shared
 * repositories, `--listen` parsing, and which files make up a config (and when their digest changes).
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Clock } from "../../src/clock.ts";
import { loadConfig, type LoadedConfig } from "../../src/config/load.ts";
import { StateStore } from "../../src/state/store.ts";
import { configDigest, configFiles } from "../../src/watch/config-files.ts";
import { parseListen } from "../../src/watch/http.ts";
import { independentGroups, Watcher } from "../../src/watch/loop.ts";
import { loadedConfig } from "../support/plan-fixtures.ts";

const T0 = new Date("2026-11-01T10:00:00Z");
const days = (n: number) => new Date(T0.getTime() + n * 86_400_000);

/** A clock that stays where the test puts it. */
class ManualClock implements Clock {
  constructor(public at: Date) {}
  now(): Date {
    return new Date(this.at);
  }
}

describe("Watcher.tick against a moving clock", () => {
  const password = "loop-test-password-0815";
  let dir: string;
  let store: StateStore;
  let loaded: LoadedConfig;
  const lines: string[] = [];
  const clock = new ManualClock(T0);
  let watcher: Watcher;

  const succeededRuns = async () => (await store.runDigest("0000", "9999")).get("app")?.succeeded ?? 0;
  const snapshotsInRepository = () => {
    const out = execFileSync("restic", ["--no-cache", "snapshots", "--json"], {
      env: { ...process.env, RESTIC_REPOSITORY: join(dir, "repo"), RESTIC_PASSWORD: password },
    });
    return (JSON.parse(String(out)) as { time: string }[]).map((s) => s.time);
  };
  /** Ticks at `at` and returns the "Run … (project …)" lines the tick logged. */
  const tickAt = async (at: Date) => {
    clock.at = at;
    const from = lines.length;
    const wakeAt = await watcher.tick();
    assert.equal(watcher.status.lastTickError, null, lines.join("\n"));
    assert.ok(wakeAt.getTime() <= at.getTime() + watcher.options.maxSleepMs, `wakes at ${wakeAt.toISOString()}`);
    return lines.slice(from).filter((line) => /^Run \S+ \(project app\)$/.test(line));
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "backupctl-loop-"));
    process.env.LOOP_RESTIC_PASSWORD = password;
    mkdirSync(join(dir, "data"));
    writeFileSync(join(dir, "data", "a.txt"), "some data\n");
    writeFileSync(
      join(dir, "backup.config.ts"),
      `import { defineConfig, env, files, restic } from "backupctl";
export default defineConfig({
  timezone: "UTC",
  repositories: { local: restic({ url: "repo", password: env("LOOP_RESTIC_PASSWORD") }) },
  projects: {
    app: { schedule: "0 3 * * *", sources: [files({ name: "data", paths: ["data"] })], repositories: ["local"], retention: { last: 10 } },
  },
});
`,
    );
    loaded = await loadConfig(join(dir, "backup.config.ts"));
    store = await StateStore.open(join(dir, "state"), { warn: () => {} });
    watcher = new Watcher(loaded, store, {
      concurrency: 1,
      maxSleepMs: 60_000,
      lockWaitMs: 1_000,
      host: "loop-test",
      clock,
      log: (line) => lines.push(line),
    });
  });
  after(async () => {
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
    delete process.env.LOOP_RESTIC_PASSWORD;
  });

  it("backs up at the first tick (never backed up)", async () => {
    assert.equal(await succeededRuns(), 0);
    const runs = await tickAt(T0);
    assert.equal(runs.length, 1, lines.join("\n"));
    assert.equal(await succeededRuns(), 1);
    const last = (await store.projectRuns()).get("app")?.lastSuccess;
    assert.equal(Date.parse(last!.started_at), T0.getTime(), "the run is recorded at the clock's time");
    assert.deepEqual(snapshotsInRepository().map((t) => t.slice(0, 10)), ["2026-11-01"]);
    assert.equal(watcher.status.ticks, 1);
    assert.equal(watcher.status.lastTickAt?.getTime(), T0.getTime());
  });

  it("a second tick at the same time runs nothing", async () => {
    assert.deepEqual(await tickAt(new Date(T0.getTime() + 1000)), []);
    assert.equal(await succeededRuns(), 1);
  });

  it("a jump forward past three daily slots runs exactly one backup", async () => {
    const runs = await tickAt(days(3));
    assert.equal(runs.length, 1, lines.join("\n"));
    assert.equal(await succeededRuns(), 2);
    assert.equal(Date.parse((await store.projectRuns()).get("app")!.lastSuccess!.started_at), days(3).getTime());
    assert.deepEqual(snapshotsInRepository().map((t) => t.slice(0, 10)).sort(), ["2026-11-01", "2026-11-04"]);
  });

  it("a jump backward runs nothing; the next slot runs", async () => {
    assert.deepEqual(await tickAt(days(1)), []);
    assert.equal(await succeededRuns(), 2);
    assert.equal(snapshotsInRepository().length, 2);
    // Back to the present: still nothing due until the next slot.
    assert.deepEqual(await tickAt(new Date(days(3).getTime() + 60_000)), []);
    assert.equal(await succeededRuns(), 2);
    // The schedule goes on: the next slot backs up again.
    assert.equal((await tickAt(new Date("2026-11-05T03:00:00Z"))).length, 1, lines.join("\n"));
    assert.equal(await succeededRuns(), 3);
  });
});

describe("independentGroups", () => {
  const source = [{ type: "sqlite", path: "/srv/app.db" }];
  const project = (...repositories: string[]) => ({
    schedule: "0 3 * * *",
    sources: source,
    repositories,
    retention: { daily: 7 },
  });
  const config = {
    ...loadedConfig({
      shop: project("local"),
      blog: project("local", "offsite"),
      wiki: project("offsite"),
      crm: project("archive"),
      lone: project("archive"),
    }),
    file: "/tmp/t.ts",
    dir: "/tmp",
  } as LoadedConfig;

  it("puts projects sharing a repository, also through a third, into one group", () => {
    const groups = independentGroups(config, ["blog", "crm", "lone", "shop", "wiki"]);
    assert.deepEqual(groups.map((g) => [...g].sort()).sort(), [["blog", "shop", "wiki"], ["crm", "lone"]]);
  });

  it("keeps unrelated projects apart and only groups the projects asked for", () => {
    assert.deepEqual(independentGroups(config, ["shop", "crm"]), [["shop"], ["crm"]]);
    // Without blog, shop (local) and wiki (offsite) share nothing.
    assert.deepEqual(independentGroups(config, ["shop", "wiki"]), [["shop"], ["wiki"]]);
    assert.deepEqual(independentGroups(config, []), []);
    assert.deepEqual(independentGroups(config, ["unknown"]), [["unknown"]]);
  });
});

describe("parseListen", () => {
  it("reads HOST:PORT, [IPv6]:PORT and a bare port (on 127.0.0.1)", () => {
    assert.deepEqual(parseListen("127.0.0.1:9464"), { host: "127.0.0.1", port: 9464 });
    assert.deepEqual(parseListen(" localhost:80 "), { host: "localhost", port: 80 });
    assert.deepEqual(parseListen("[::1]:9464"), { host: "::1", port: 9464 });
    assert.deepEqual(parseListen("0.0.0.0:0"), { host: "0.0.0.0", port: 0 });
    assert.deepEqual(parseListen("9464"), { host: "127.0.0.1", port: 9464 });
    assert.deepEqual(parseListen(":9464"), { host: "127.0.0.1", port: 9464 });
  });

  it("refuses what is not HOST:PORT", () => {
    for (const text of ["", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:99999", "::1:9464", "[::1]9464"]) {
      assert.throws(() => parseListen(text), /--listen: expected HOST:PORT/, `"${text}"`);
    }
    for (const text of ["localhost9464", "host:12:34", "127.0.0.1:80x", "[]:80"]) {
      assert.throws(() => parseListen(text), /--listen: expected HOST:PORT/, `"${text}"`);
    }
  });
});

describe("configFiles and configDigest", () => {
  let dir: string;
  const path = (name: string) => join(dir, name);
  const write = (name: string, text: string) => writeFileSync(path(name), text);

  before(() => {
    dir = realpathSync(mkdtempSync(join(tmpdir(), "backupctl-config-files-")));
    mkdirSync(path("projects"));
    mkdirSync(path("shared"));
    write(
      "backup.config.ts",
      `import { defineConfig } from "backupctl";
import { readFileSync } from "node:fs";
import { shop } from "./projects/shop.ts";
import "./side-effect";
export * from "./shared/reexported.ts";
import settings from "./settings.json" with { type: "json" };
const lazy = await import("./projects/lazy.ts");
export default defineConfig({ projects: { shop, ...lazy.more } });
`,
    );
    write("projects/shop.ts", `import { common } from "../shared/common.ts";\nexport const shop = { ...common };\n`);
    write("projects/lazy.ts", `export const more = {};\n`);
    // A cycle back to a file already seen, and an import of a file that does not exist.
    write("shared/common.ts", `import "../projects/shop.ts";\nimport "./missing.ts";\nexport const common = {};\n`);
    write("shared/reexported.ts", `export const x = 1;\n`);
    write("side-effect.ts", `globalThis.x = 1;\n`);
    write("settings.json", `{ "note": "import './not-followed.ts'" }\n`);
    write("not-followed.ts", `export {};\n`);
    write("unrelated.ts", `export {};\n`);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("follows relative imports transitively (static, side-effect, re-export, JSON, dynamic), not bare ones", () => {
    assert.deepEqual(
      configFiles(path("backup.config.ts")),
      [
        "backup.config.ts",
        "projects/lazy.ts",
        "projects/shop.ts",
        "settings.json",
        "shared/common.ts",
        "shared/reexported.ts",
        "side-effect.ts",
      ].map(path).sort(),
    );
  });

  it("changes when an imported file changes, not when an unrelated one does", () => {
    const before = configDigest(path("backup.config.ts"));
    assert.match(before, /^[0-9a-f]{64}$/);
    assert.equal(configDigest(path("backup.config.ts")), before, "stable");
    write("unrelated.ts", `export const changed = true;\n`);
    write("not-followed.ts", `export const changed = true;\n`);
    assert.equal(configDigest(path("backup.config.ts")), before);

    write("shared/common.ts", `import "../projects/shop.ts";\nexport const common = { edited: true };\n`);
    const edited = configDigest(path("backup.config.ts"));
    assert.notEqual(edited, before, "an edit two imports deep is seen");

    write("shared/missing.ts", `export {};\n`);
    assert.equal(configDigest(path("backup.config.ts")), edited, "no longer imported by common.ts");
    write("shared/common.ts", `import "./missing.ts";\nexport const common = { edited: true };\n`);
    assert.ok(configFiles(path("backup.config.ts")).includes(path("shared/missing.ts")));
    const withMissing = configDigest(path("backup.config.ts"));
    write("shared/missing.ts", `export const now = "there";\n`);
    assert.notEqual(configDigest(path("backup.config.ts")), withMissing, "a newly imported file is followed");
  });
});
