/**
 * Point-in-time restore and the PITR drill against a real archiving cluster and a real pgBackRest repository (one
 * cluster for the file): rows written at T1 and T2, a restore to a time between them has the first and not the second,
 * `latest` has both; the refusals before anything is written (the live data directory, a folder holding something, a
 * time before the oldest backup, naming the nearest restorable time); the printed commands; a drill that passes, one
 * whose check query fails, and their scratch folders and servers gone either way.
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import { psqlQuery } from "../../src/pitr/archive.ts";
import { pitrDrill } from "../../src/pitr/drill.ts";
import {
  checkIntoDirectory,
  parseTargetTime,
  restoreCommands,
  type RestoredCluster,
  restoreToTime,
} from "../../src/pitr/restore-to-time.ts";
import { pitrConfigDir } from "../../src/pitr/stanza.ts";
import { runDrill } from "../../src/apply/actions/verify.ts";
import { createClock } from "../../src/clock.ts";
import { normalizeConfig } from "../../src/config/normalize.ts";
import { StateStore } from "../../src/state/store.ts";
import { type PgBackRestCluster, startPgBackRestCluster } from "../support/pgbackrest.ts";
import { storeDb } from "../support/state-db.ts";
import { repoRoot } from "../support/cli.ts";

let pg: PgBackRestCluster;
let context: { configDir: string; privateDir: string };
/** A moment between the rows t1 and t2, by the server's clock. */
let between: Date;

async function serverNow(): Promise<Date> {
  return new Date(Number(await pg.server.psql("SELECT extract(epoch FROM clock_timestamp())")) * 1000);
}

before(async () => {
  pg = await startPgBackRestCluster({ stanza: "app" });
  context = { configDir: pg.server.dir, privateDir: join(pg.server.dir, "private") };
  await pg.pgbackrest.stanzaCreate();
  await pg.server.psql("CREATE TABLE marks (label text PRIMARY KEY);");
  await pg.pgbackrest.backup("full");
  // pgBackRest dates a backup to the second, and restores to a time only from a backup that stopped before it.
  await pg.server.psql("SELECT pg_sleep(1); INSERT INTO marks VALUES ('t1');");
  between = await serverNow();
  await pg.server.psql("SELECT pg_sleep(0.05); INSERT INTO marks VALUES ('t2');");
  await pg.switchWal();
});
after(async () => {
  await pg?.stop();
});

/** The command lines of running processes that name a path under `dir` (a drill's server: `postgres -D …`). */
function serversUnder(dir: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync("/proc").filter((name) => /^\d+$/.test(name))) {
    try {
      const command = readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
      if (command.includes(`${dir}/`)) found.push(command.trim());
    } catch {
      // The process ended meanwhile.
    }
  }
  return found;
}

async function labels(cluster: RestoredCluster): Promise<string> {
  return (await psqlQuery(cluster.connection, "SELECT string_agg(label, ',' ORDER BY label) FROM marks", context))
    .trim();
}

/** Restores to `target` into a new folder, hands the running copy to `check`, then stops and removes it. */
async function withRestore(
  target: Date | "latest",
  check: (cluster: RestoredCluster) => Promise<void>,
): Promise<void> {
  const into = join(pg.server.dir, `restored-${Math.random().toString(36).slice(2)}`);
  try {
    const restored = await restoreToTime({ source: pg.source, pgbackrest: pg.pgbackrest, target, into, context });
    try {
      await check(restored);
    } finally {
      await restored.stop();
    }
    assert.equal(existsSync(join(into, "postmaster.pid")), false);
  } finally {
    rmSync(into, { recursive: true, force: true });
  }
}

describe("restore to a point in time", () => {
  it("reads --to-time: latest, or a time with its zone", () => {
    assert.equal(parseTargetTime("latest"), "latest");
    assert.equal(
      (parseTargetTime("2026-12-01T10:00:00+01:00") as Date).toISOString(),
      "2026-12-01T09:00:00.000Z",
    );
    assert.throws(() => parseTargetTime("2026-12-01T10:00:00"), /a time with its zone/);
    assert.throws(() => parseTargetTime("yesterday"), /expected "latest"/);
  });

  it("restores to a time between two writes: the first is there, the second is not", async () => {
    await withRestore(between, async (restored) => {
      assert.equal(await labels(restored), "t1");
      assert.ok(restored.backup.endsWith("F"));
      assert.ok(restored.range.earliest < between && between <= restored.range.latest);
    });
  });

  it("restores to the end of the archive with latest: both writes are there", async () => {
    await withRestore("latest", async (restored) => {
      assert.equal(await labels(restored), "t1,t2");
      const settings = await psqlQuery(
        restored.connection,
        "SELECT current_setting('archive_mode') || ' ' || current_setting('listen_addresses')",
        context,
      );
      assert.equal(settings.trim(), "off 127.0.0.1");
    });
  });

  it("refuses the live data directory, a folder inside it, and a folder holding something", () => {
    const live = pg.source.cluster.dataDirectory;
    assert.throws(() => checkIntoDirectory(live, pg.source), /is the data directory of the live cluster of app/);
    assert.throws(() => checkIntoDirectory(join(live, "base"), pg.source), /is inside the data directory/);
    const full = join(pg.server.dir, "not-empty");
    mkdirSync(full);
    writeFileSync(join(full, "keep.txt"), "mine");
    assert.throws(() => checkIntoDirectory(full, pg.source), /not-empty is not empty/);
    assert.doesNotThrow(() => checkIntoDirectory(join(pg.server.dir, "new-folder"), pg.source));
  });

  it("refuses a time before the oldest backup, naming the nearest restorable time, and writes nothing", async () => {
    const into = join(pg.server.dir, "too-early");
    await assert.rejects(
      restoreToTime({
        source: pg.source,
        pgbackrest: pg.pgbackrest,
        target: new Date("2020-01-01T00:00:00Z"),
        into,
        context,
      }),
      /2020-01-01T00:00:00Z is before the oldest backup ended: the nearest restorable time is \d{4}-.*restorable times of stanza app run from/,
    );
    assert.equal(existsSync(into), false);
  });

  it("prints the commands of the same restore", () => {
    const commands = restoreCommands({
      source: pg.source,
      pgbackrest: pg.pgbackrest,
      target: new Date("2026-12-01T09:00:00Z"),
      into: "/srv/restored",
      port: 5499,
    }).join("\n");
    assert.match(commands, /^mkdir -m 0700 \/srv\/restored$/m);
    assert.match(
      commands,
      /pgbackrest --config=\S+app\.conf --stanza=app --pg1-path=\/srv\/restored --type=time '--target=2026-12-01 09:00:00\.000\+00' --target-action=promote restore/,
    );
    assert.match(commands, /port = 5499\nlisten_addresses = '127\.0\.0\.1'\n.*\narchive_mode = off\nEOF/);
    assert.match(commands, /pg_ctl -D \/srv\/restored -w -l \/srv\/restored\/backupctl-server\.log start/);
  });
});

describe("the PITR drill", () => {
  it("restores the end of the archive into a scratch folder, runs the check query, measures RTO, removes it", async () => {
    const result = await pitrDrill(pg.source, {
      pgbackrest: pg.pgbackrest,
      context,
      check: "SELECT count(*) FROM marks",
      minRows: 2,
    });
    assert.equal(result.kind, "pitr");
    assert.equal(result.rows, 2);
    assert.ok(result.rtoMs >= result.restoreMs && result.restoreMs > 0);
    assert.ok(result.bytes > 1_000_000);
    assert.ok(result.recoveredTo && result.recoveredTo >= between);
    assert.deepEqual(readdirSync(pitrConfigDir(pg.source)).filter((name) => name.startsWith("drill-")), []);
    assert.deepEqual(serversUnder(pitrConfigDir(pg.source)), []);
  });

  it("stops and removes its scratch cluster when the process running it gets SIGINT", async () => {
    const configDir = pitrConfigDir(pg.source);
    const argument = JSON.stringify({
      source: pg.source,
      configPath: pg.configPath,
      runAs: pg.pgbackrest.runAs,
      dir: pg.server.dir,
    });
    const script = fileURLToPath(new URL("../support/pitr-drill-child.ts", import.meta.url));
    const argv = "Bun" in globalThis
      ? [process.execPath, "--no-install", script, argument]
      : [process.execPath, "run", "--allow-all", "--quiet", "--config", `${repoRoot}/deno.json`, script, argument];
    const child = spawn(argv[0], argv.slice(1), { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (chunk) => stderr += String(chunk));
    const exited = new Promise<number | string | null>((resolve) =>
      child.once("exit", (code, signal) => resolve(code ?? signal))
    );
    // Stopped once its scratch server runs (its postmaster.pid is written).
    const running = () =>
      readdirSync(configDir).some((name) =>
        name.startsWith("drill-") && existsSync(join(configDir, name, "data", "postmaster.pid"))
      );
    for (let wait = 20; !running(); wait = Math.min(wait * 2, 200)) {
      assert.equal(child.exitCode, null, `the drill ended before its server started: ${stderr}`);
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
    child.kill("SIGINT");
    // Bun reports the child's exit code, 130; Deno reports the child's end as the signal itself.
    const ended = await exited;
    assert.ok(ended === 130 || ended === "SIGINT", `ended with ${ended}: ${stderr}`);
    assert.match(stderr, /SIGINT: stopping/);
    assert.deepEqual(readdirSync(configDir).filter((name) => name.startsWith("drill-")), []);
    assert.deepEqual(serversUnder(configDir), []);
  });

  it("fails when the check query finds too little, and still stops and removes the copy", async () => {
    await assert.rejects(
      pitrDrill(pg.source, { pgbackrest: pg.pgbackrest, context, check: "SELECT count(*) FROM marks", minRows: 3 }),
      /the check query returned 2 rows, expected at least 3: stanza app restored \(backup \d{8}-\d{6}F and its WAL\)/,
    );
    assert.deepEqual(readdirSync(pitrConfigDir(pg.source)).filter((name) => name.startsWith("drill-")), []);
    assert.deepEqual(serversUnder(pitrConfigDir(pg.source)), []);
  });
});

describe("the PITR drill as a project's verify", () => {
  it("runs for a project whose verify names its pgbackrest() source, audited as a verify stage", async () => {
    const config = normalizeConfig({
      repositories: {},
      projects: {
        app: {
          schedule: "@daily",
          sources: [],
          repositories: [],
          retention: { weekly: 4 },
          verify: { every: "7d", source: "app", check: "SELECT count(*) FROM marks", expect: { minRows: 2 } },
        },
      },
    });
    // The pgbackrest() sources as the config's normalisation gives them (pitr-plan's schema: project.pitr).
    const project = { ...config.projects.app, pitr: [pg.source] };
    const loaded = {
      file: join(pg.server.dir, "backup.config.ts"),
      dir: pg.server.dir,
      config: { ...config, projects: { app: project } },
      fingerprint: "test",
      displayTimeZone: "UTC",
    };
    const store = await StateStore.open(join(pg.server.dir, "state"), { warn: () => {} });
    const lines: string[] = [];
    try {
      const passed = await runDrill("app", {
        loaded,
        store,
        clock: createClock(),
        out: (line: string) => lines.push(line),
        host: "test-host",
        privateDir: store.privateDir,
      });
      assert.equal(passed, true, lines.join("\n"));
      const stages = await storeDb(store).selectFrom("stages").selectAll().where("type", "=", "verify").execute();
      assert.equal(stages.length, 1);
      assert.equal(stages[0].status, "succeeded");
      assert.equal(stages[0].repository, "pgbackrest:app");
      assert.match(stages[0].snapshot_id ?? "", /^\d{8}-\d{6}F/);
      assert.match(
        stages[0].note ?? "",
        /^restored stanza app to the end of its archive \(last transaction .*\) from backup .*RTO .*; check query found 2 \(at least 2 expected\)$/,
      );
      assert.match(lines.join("\n"), /~ verify app: restored stanza app/);
    } finally {
      await store.close();
    }
  });
});
