/**
 * Point-in-time restore and the PITR drill against a real archiving cluster and a real pgBackRest repository (one
 * cluster for the file): rows written at T1 and T2, a restore to a time between them has the first and not the second,
 * `latest` has both; the refusals before anything is written (the live data directory, a folder holding something, a
 * time before the oldest backup, naming the nearest restorable time); the printed commands; a drill that passes, one
 * whose check query fails, and their scratch folders and servers gone either way.
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
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
import { type PgBackRestCluster, startPgBackRestCluster } from "../support/pgbackrest.ts";

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
  await pg.server.psql("INSERT INTO marks VALUES ('t1');");
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

  it("fails when the check query finds too little, and still stops and removes the copy", async () => {
    await assert.rejects(
      pitrDrill(pg.source, { pgbackrest: pg.pgbackrest, context, check: "SELECT count(*) FROM marks", minRows: 3 }),
      /the check query returned 2 rows, expected at least 3: stanza app restored \(backup \d{8}-\d{6}F and its WAL\)/,
    );
    assert.deepEqual(readdirSync(pitrConfigDir(pg.source)).filter((name) => name.startsWith("drill-")), []);
    assert.deepEqual(serversUnder(pitrConfigDir(pg.source)), []);
  });
});
