/**
 * The PITR engine against real pgBackRest and a real PostgreSQL cluster archiving into it (one cluster for the whole
 * file, test/support/pgbackrest.ts): stanza-create, check, full and incr backups read back through `info`, the
 * archive state seen from the cluster, the expire prediction compared with what the real `expire` deletes, and a
 * restore to a time between two writes started on a loopback port.
 */
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { archiveStatus, psqlQuery, settingsProblems, staleArchive } from "../../src/pitr/archive.ts";
import { startCluster } from "../../src/pitr/cluster.ts";
import { expirationsFor, restorableRange } from "../../src/pitr/pgbackrest.ts";
import { handOver } from "../../src/pitr/run-as.ts";
import { type PgBackRestCluster, startPgBackRestCluster } from "../support/pgbackrest.ts";

let pg: PgBackRestCluster;
let context: { configDir: string; privateDir: string };

before(async () => {
  pg = await startPgBackRestCluster({ stanza: "demo" });
  context = { configDir: pg.server.dir, privateDir: join(pg.server.dir, "private") };
});
after(async () => {
  await pg?.stop();
});

describe("pgBackRest through the engine", () => {
  it("writes its config 0600 with lock, log and spool beside it", () => {
    assert.equal(statSync(pg.configPath).mode & 0o777, 0o600);
    const text = readFileSync(pg.configPath, "utf8");
    assert.match(text, new RegExp(`lock-path=${pg.configDir}/lock`));
    assert.match(text, /\[demo\]\npg1-path=/);
  });

  it("creates the stanza, passes check, and reads back a full and an incr backup", async () => {
    await pg.pgbackrest.stanzaCreate();
    await pg.pgbackrest.check();
    await pg.pgbackrest.backup("full");
    await pg.server.psql("CREATE TABLE t (n int); INSERT INTO t SELECT generate_series(1, 1000);");
    await pg.pgbackrest.backup("incr");
    const info = await pg.pgbackrest.info();
    assert.equal(info.status.code, 0, info.status.message);
    assert.deepEqual(info.backups.map((b) => b.type), ["full", "incr"]);
    const [full, incr] = info.backups;
    assert.match(full.label, /^\d{8}-\d{6}F$/);
    assert.equal(incr.prior, full.label);
    assert.ok(incr.label.startsWith(`${full.label}_`));
    assert.ok(full.databaseBytes > 1_000_000 && full.repositoryBytes > 0);
    assert.ok(incr.repositoryDeltaBytes < full.repositoryDeltaBytes);
    assert.ok(full.stop.getTime() >= full.start.getTime() && incr.start.getTime() >= full.stop.getTime());
    assert.ok(info.archive && info.archive.min <= full.archiveStart && info.archive.max >= incr.archiveStop);
  });

  it("sees archiving set up as required, and a quiet cluster's archive is not stale", async () => {
    // The server itself may log a record right after the switch (a checkpoint, a running-transactions snapshot):
    // that WAL is pending indeed. Switched again then, until a moment with nothing written since.
    let status = await archiveStatus(pg.source.cluster, context);
    for (let attempt = 1; attempt <= 5 && (attempt === 1 || status.pendingWal); attempt++) {
      await pg.switchWal();
      status = await archiveStatus(pg.source.cluster, context);
    }
    assert.equal(status.archiveMode, "on");
    assert.deepEqual(settingsProblems(status, { archiveCommand: pg.pgbackrest.archivePushCommand() }), []);
    assert.ok(status.lastArchivedWal && status.lastArchivedAt);
    assert.equal(status.pendingWal, false);
    assert.equal(staleArchive(status, 60_000, new Date(Date.now() + 3_600_000)), undefined);
    await pg.server.psql("INSERT INTO t VALUES (0);");
    const pending = await archiveStatus(pg.source.cluster, context);
    assert.equal(pending.pendingWal, true);
    assert.match(staleArchive(pending, 60_000, new Date(Date.now() + 3_600_000)) ?? "", /waiting to be archived/);
    const problems = settingsProblems(pending, { archiveCommand: "pgbackrest --stanza=other archive-push %p" });
    assert.equal(problems.length, 1);
    assert.match(problems[0], /archive_command is '.*--stanza=demo archive-push %p', not/);
  });

  it("predicts the labels expire deletes, and the real expire deletes exactly those", async () => {
    await pg.pgbackrest.backup("full");
    await pg.pgbackrest.backup("incr");
    const before = await pg.pgbackrest.info();
    assert.equal(before.backups.length, 4);
    const predicted = expirationsFor(before, { full: 1 });
    assert.deepEqual(predicted, before.backups.slice(0, 2).map((b) => b.label));
    assert.deepEqual(expirationsFor(before, { full: 2 }), []);
    await pg.setRetention({ full: 1 });
    await pg.pgbackrest.expire();
    const after = await pg.pgbackrest.info();
    assert.deepEqual(after.backups.map((b) => b.label), before.backups.slice(2).map((b) => b.label));
    assert.ok(after.archive && after.archive.min >= after.backups[0].archiveStart);
    await pg.setRetention(undefined);
  });

  it("restores to a time between two writes into a new data directory and starts it on a loopback port", async () => {
    await pg.server.psql("CREATE TABLE marks (label text, at timestamptz DEFAULT clock_timestamp());");
    await pg.server.psql("INSERT INTO marks (label) VALUES ('t1');");
    const between = new Date(Number(await pg.server.psql("SELECT extract(epoch FROM clock_timestamp())")) * 1000);
    await pg.server.psql("SELECT pg_sleep(0.05); INSERT INTO marks (label) VALUES ('t2');");
    await pg.switchWal();
    const status = await archiveStatus(pg.source.cluster, context);
    const range = restorableRange(await pg.pgbackrest.info(), status.lastArchivedAt);
    assert.ok(range && range.earliest < between && between < range.latest);
    const into = join(pg.server.dir, "restored");
    mkdirSync(into, { mode: 0o700 });
    handOver(into, pg.pgbackrest.runAs);
    try {
      await pg.pgbackrest.restore({ target: between, into });
      const restored = await startCluster({ dataDirectory: into, runAs: pg.pgbackrest.runAs, trustSocket: true });
      try {
        assert.notEqual(restored.port, pg.server.port);
        const labels = await psqlQuery(
          restored.connection,
          "SELECT string_agg(label, ',' ORDER BY label) FROM marks",
          context,
        );
        assert.equal(labels.trim(), "t1");
        const archiving = await psqlQuery(restored.connection, "SHOW archive_mode", context);
        assert.equal(archiving.trim(), "off");
      } finally {
        await restored.stop();
      }
    } finally {
      rmSync(into, { recursive: true, force: true });
    }
  });
});
