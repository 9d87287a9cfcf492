/**
 * Restore drills end to end, with a real PostgreSQL cluster and MariaDB server on 127.0.0.1, SQLite, restic and a
 * webhook receiver: `apply` runs the due drills (each restores the latest snapshot into its scratch database, which
 * then equals the source row for row, and prints the measured restore time), `verify` runs them on demand, and a
 * drill that fails (a check against a missing table, `expect.minRows` above what is there, a damaged repository, a
 * scratch target that is the project's own database) exits 1 with a clear message, is audited as a failed `verify`
 * stage, is sent as `verify.failed` and stays due. A damaged pack also fails the repository's due `check`.
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { formatBytes } from "../../src/format/bytes.ts";
import { type CliResult, runCli, runTool } from "../support/cli.ts";
import { mariadbIdent, type MariadbServer, startMariadb } from "../support/mariadb.ts";
import { ident, type PostgresServer, startPostgres } from "../support/postgres.ts";
import { type HttpReceiver, startHttpReceiver } from "../support/receivers.ts";
import { corruptPack, packFiles } from "../support/packs.ts";

/** Damages every pack of a repository; returns how many. */
function corruptPacks(repository: string): number {
  const packs = packFiles(repository);
  packs.forEach(corruptPack);
  return packs.length;
}

/** The first applies' clock; two minutes later (the fragile repository's check is due); eight days later (drills due). */
const firstDay = "2027-01-04T10:00:00Z";
const twoMinutesLater = "2027-01-04T10:02:00Z";
const eightDaysLater = "2027-01-12T10:00:00Z";

const show = (result: CliResult) => `exit ${result.code}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`;

/** Fails unless `actual` holds exactly the rows of `expected`, in order, naming the first row that differs. */
function assertSameRows(what: string, actual: string[], expected: string[]): void {
  assert.ok(expected.length > 0, `${what}: the source has rows to compare`);
  for (let i = 0; i < Math.min(actual.length, expected.length); i++) {
    assert.equal(actual[i], expected[i], `${what}: row ${i + 1} differs`);
  }
  assert.equal(actual.length, expected.length, `${what}: row count`);
}

/** "839ms", "1s", "2m 5s" (humanDuration) → at least this many milliseconds. */
function parseDuration(text: string): number {
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  return text.split(" ").reduce((sum, part) => {
    const [, n, unit] = /^(\d+)(ms|s|m|h)$/.exec(part) ?? assert.fail(`not a duration: ${text}`);
    return sum + Number(n) * units[unit];
  }, 0);
}

/** Like the product's formatBytes, to check the size a drill line shows against the audited bytes. */

interface VerifyStage {
  id: number;
  project: string;
  source: string;
  repository: string;
  status: string;
  started_at: string;
  duration_ms: number;
  bytes: number | null;
  snapshot_id: string | null;
  error: string | null;
}

describe("restore drills: PostgreSQL, MariaDB and SQLite scratch databases, failures, a damaged repository", () => {
  let pg: PostgresServer;
  let db: MariadbServer;
  let http: HttpReceiver;
  let dir = "";
  let config = "";
  const secrets = {
    DRILL_RESTIC_PASSWORD: `restic-drill-${randomBytes(5).toString("hex")}`,
    PG_BACKUP_PASSWORD: `pg-backup-${randomBytes(5).toString("hex")}`,
    PG_DRILLER_PASSWORD: `pg-driller:${randomBytes(5).toString("hex")}`,
    MDB_BACKUP_PASSWORD: `mdb-backup-${randomBytes(5).toString("hex")}`,
    MDB_DRILLER_PASSWORD: `mdb-driller#${randomBytes(5).toString("hex")}`,
  };
  /** Short snapshot ids of the latest backups, by "project/source". */
  const snapshot: Record<string, string> = {};
  /** Measured restores, for the report: what, dump bytes, restore time, source size. */
  const measured: string[] = [];

  const cli = (args: string[]) =>
    runCli(["--config", config, ...args], {
      env: { ...secrets, BACKUPCTL_CONFIG: undefined, BACKUPCTL_STATE_DIR: undefined },
      timeoutMs: 120_000,
    });
  const sqlite = (database: string, sql: string) => execFileSync("sqlite3", [database, sql]).toString();
  const verifyStages = async (): Promise<VerifyStage[]> => {
    const result = await runTool("sqlite3", [
      "-json",
      join(dir, ".backupctl", "state.db"),
      "SELECT id, project, source, repository, status, started_at, duration_ms, bytes, snapshot_id, error " +
      "FROM stages WHERE type = 'verify' ORDER BY id;",
    ]);
    assert.equal(result.code, 0, result.stderr);
    return result.stdout.trim() ? JSON.parse(result.stdout) : [];
  };
  /** The webhook messages received since `mark`. */
  const messages = (mark: number) =>
    http.requests.slice(mark).map((request) => {
      assert.equal(request.path, "/hook");
      return JSON.parse(request.body) as Record<string, unknown>;
    });
  const pgRows = async (database: string, table: string) =>
    (await pg.psql(`SELECT to_json(t)::text FROM ${ident(table)} AS t ORDER BY id;`, database)).split("\n")
      .filter(Boolean);
  const mdbRows = async (database: string, table: string) =>
    (await db.sql(`SELECT * FROM ${mariadbIdent(table)} ORDER BY id;`, database)).split("\n").filter(Boolean);
  const liteRows = (database: string) =>
    sqlite(database, "SELECT quote(id), quote(item), quote(amount), quote(note) FROM orders ORDER BY id;").split("\n")
      .filter(Boolean);

  /** The config; `pgMinRows` is what the PostgreSQL drill expects its check to count. */
  function writeConfig(pgMinRows: number): void {
    const pgShop = (host: string, user: string, password: string, database = "shop") =>
      `postgres({ host: "${host}", port: ${pg.port}, database: "${database}", user: "${user}", ` +
      `password: env("${password}") })`;
    const mdb = (user: string, password: string, database: string) =>
      `mysql({ host: "127.0.0.1", port: ${db.port}, database: "${database}", user: "${user}", ` +
      `password: env("${password}") })`;
    const project = (source: string, verify: string, repository = "local", extra = "") =>
      `{ schedule: "0 3 * * *", sources: [${source}], repositories: ["${repository}"], retention: { last: 5 }, ` +
      `notify: ["hook"], verify: ${verify}${extra} }`;
    writeFileSync(
      config,
      `import { defineConfig, env, mysql, postgres, restic, sqlite, webhook } from "backupctl";

export default defineConfig({
  timezone: "UTC",
  repositories: {
    local: restic({ url: "repository", password: env("DRILL_RESTIC_PASSWORD") }),
    fragile: restic({ url: "fragile-repository", password: env("DRILL_RESTIC_PASSWORD") }),
  },
  notifiers: { hook: webhook({ url: "${http.url}/hook" }) },
  projects: {
    pgshop: ${
        project(
          pgShop("127.0.0.1", "backup", "PG_BACKUP_PASSWORD"),
          `{ every: "7d", into: ${pgShop("127.0.0.1", "driller", "PG_DRILLER_PASSWORD", "shop_drill")}, ` +
            `check: "SELECT count(*) FROM orders", expect: { minRows: ${pgMinRows} } }`,
        )
      },
    mdb: ${
        project(
          mdb("backup", "MDB_BACKUP_PASSWORD", "wiki"),
          `{ every: "7d", into: ${mdb("driller", "MDB_DRILLER_PASSWORD", "wiki_drill")}, ` +
            `check: "SELECT id, label FROM orders WHERE id <= 25", expect: { minRows: 25 } }`,
        )
      },
    lite: ${
        project(
          `sqlite({ path: "data/app.db" })`,
          `{ every: "7d", into: sqlite({ path: "scratch/lite-drill.db" }), check: "SELECT count(*) FROM orders" }`,
        )
      },
    lite_missing: ${
        project(
          `sqlite({ path: "data/app.db" })`,
          `{ every: "7d", into: sqlite({ path: "scratch/missing-drill.db" }), ` +
            `check: "SELECT count(*) FROM no_such_table" }`,
        )
      },
    pg_own: ${
        project(
          pgShop("127.0.0.1", "backup", "PG_BACKUP_PASSWORD"),
          // The same database, spelled with another host name for the same loopback server.
          `{ every: "7d", into: ${pgShop("localhost", "backup", "PG_BACKUP_PASSWORD")}, check: "SELECT 1" }`,
        )
      },
    fragile: ${
        project(
          `sqlite({ path: "data/app.db" })`,
          `{ every: "7d", into: sqlite({ path: "scratch/fragile-drill.db" }), check: "SELECT count(*) FROM orders" }`,
          "fragile",
          `, check: { every: "1m" }`,
        )
      },
  },
});
`,
    );
  }

  before(async () => {
    for (const program of ["pg_dump", "pg_restore", "psql", "mariadb-dump", "mariadb", "sqlite3", "restic"]) {
      assert.equal(spawnSync("sh", ["-c", 'command -v "$1"', "sh", program]).status, 0, `${program} is installed`);
    }
    dir = mkdtempSync(join(tmpdir(), "backupctl-e2e-drill-"));
    config = join(dir, "backup.config.ts");
    [pg, db, http] = await Promise.all([startPostgres(), startMariadb(), startHttpReceiver()]);

    await pg.createUser("backup", secrets.PG_BACKUP_PASSWORD);
    // The drill's user may create databases, nothing more (the scratch database is dropped and created).
    await pg.createUser("driller", secrets.PG_DRILLER_PASSWORD);
    await pg.psql("ALTER ROLE driller CREATEDB;");
    await pg.createDatabase("shop", "backup");
    await pg.psql(
      `SET ROLE backup;
      CREATE TABLE customers (id integer PRIMARY KEY, name text NOT NULL, balance numeric(12, 2), avatar bytea);
      INSERT INTO customers SELECT i, 'customer ' || i, i * 12.34, decode(md5(i::text), 'hex')
        FROM generate_series(1, 2000) AS i;
      CREATE TABLE orders (
        id bigserial PRIMARY KEY, customer_id integer REFERENCES customers (id), amount numeric(10, 3),
        placed_at timestamptz, payload jsonb
      );
      CREATE INDEX orders_placed_at ON orders (placed_at);
      INSERT INTO orders (customer_id, amount, placed_at, payload)
        SELECT 1 + i % 2000, i / 7.0, timestamptz '2024-02-29 12:00+00' - i * interval '1 minute 1.5 seconds',
          jsonb_build_object('n', i, 'note', repeat(md5(i::text), 2))
        FROM generate_series(1, 20000) AS i;`,
      "shop",
    );

    await db.createDatabase("wiki");
    await db.createUser("backup", secrets.MDB_BACKUP_PASSWORD, "wiki");
    // Everything on the scratch database (so it may drop and create it), nothing on any other.
    await db.createUser("driller", secrets.MDB_DRILLER_PASSWORD, "wiki_drill");
    await db.sql(
      `CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(200) NOT NULL, avatar BLOB) ENGINE = InnoDB;
      INSERT INTO customers SELECT seq, CONCAT('customer ', seq), UNHEX(MD5(seq)) FROM seq_1_to_1000;
      CREATE TABLE orders (
        id BIGINT AUTO_INCREMENT PRIMARY KEY, customer_id INT, amount DECIMAL(10, 3), placed_at DATETIME(3),
        label VARCHAR(100) CHARACTER SET utf8mb4, FOREIGN KEY (customer_id) REFERENCES customers (id)
      ) ENGINE = InnoDB;
      INSERT INTO orders (customer_id, amount, placed_at, label)
        SELECT 1 + seq % 1000, seq / 7, TIMESTAMP('2024-02-29 12:00:00') - INTERVAL seq SECOND,
          CONCAT('order ', seq, _utf8mb4 X'E29883')
        FROM seq_1_to_5000;`,
      "wiki",
    );

    mkdirSync(join(dir, "data"));
    mkdirSync(join(dir, "scratch"));
    sqlite(
      join(dir, "data", "app.db"),
      `CREATE TABLE orders (id INTEGER PRIMARY KEY, item TEXT NOT NULL, amount REAL, note TEXT);
      WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
      INSERT INTO orders SELECT i, 'item ' || i, i * 0.5, CASE WHEN i % 3 = 0 THEN 'it''s ' || char(10) || i END
        FROM n;`,
    );
    writeConfig(20_000);
  });

  after(async () => {
    await Promise.all([pg?.stop(), db?.stop(), http?.stop()]);
    if (dir) rmSync(dir, { recursive: true, force: true });
    if (measured.length > 0) console.log(`measured restore drills:\n  ${measured.join("\n  ")}`);
  });

  it("apply backs every project up; the next plan shows each drill due", async () => {
    const applied = await cli(["apply", "--now", firstDay]);
    assert.equal(applied.code, 0, show(applied));
    for (const match of applied.stdout.matchAll(/\+ backup (\S+) → \S+: snapshot ([0-9a-f]{8})/g)) {
      snapshot[match[1]] = match[2];
    }
    assert.deepEqual(Object.keys(snapshot).sort(), [
      "fragile/app",
      "lite/app",
      "lite_missing/app",
      "mdb/wiki",
      "pg_own/shop",
      "pgshop/shop",
    ]);
    const plan = await cli(["plan", "--now", firstDay]);
    assert.equal(plan.code, 0, show(plan));
    for (
      const [project, repository] of Object.entries({
        pgshop: "local",
        mdb: "local",
        lite: "local",
        lite_missing: "local",
        pg_own: "local",
        fragile: "fragile",
      })
    ) {
      assert.match(
        plan.stdout,
        new RegExp(`^  ~ verify ${project} \\(restore drill from ${repository}\\)  never restored in a drill$`, "m"),
      );
    }
    assert.match(plan.stdout, /^Plan: 0 to back up, 0 to copy, 0 to initialize, 0 snapshots to forget, 6 checks\.$/m);
  });

  it("apply runs the due drills: each scratch database equals its source, the restore time is measured", async () => {
    const result = await cli(["apply", "--now", firstDay]);
    assert.equal(result.code, 1, show(result));
    const lines: Record<string, { size: string; duration: string }> = {};
    for (
      const [project, source, repository, rows] of [
        ["pgshop", "shop", "local", "20000 rows"],
        ["mdb", "wiki", "local", "25 rows"],
        ["lite", "app", "local", "2000 rows"],
        ["fragile", "app", "fragile", "2000 rows"],
      ]
    ) {
      const match = new RegExp(
        `^~ verify ${project}: restored ${source} \\(snapshot ${
          snapshot[`${project}/${source}`]
        }, ([\\d.]+ (?:B|KiB|MiB))\\) ` +
          `from ${repository} into the scratch database in ((?:\\d+(?:ms|s|m) ?)+); check: ${rows}$`,
        "m",
      ).exec(result.stdout);
      assert.ok(match, `the drill line of ${project} in:\n${show(result)}`);
      lines[project] = { size: match[1], duration: match[2] };
    }
    assert.match(
      result.stdout,
      /^✗ verify lite_missing failed: the check query failed \(exit 1\): .*no such table: no_such_table$/m,
    );
    assert.match(
      result.stdout,
      /^✗ verify pg_own failed: verify\.into names the project's own postgres database: a drill drops and recreates its target, so point it at a scratch database$/m,
    );
    assert.match(result.stdout, /^Apply finished with failures: 4 succeeded, 2 failed\.$/m);
    assert.match(result.stderr, /^Error: 2 of 6 actions failed$/m);

    // What the drills restored is the source, row for row.
    for (const table of ["customers", "orders"]) {
      assertSameRows(`shop_drill.${table}`, await pgRows("shop_drill", table), await pgRows("shop", table));
      assertSameRows(`wiki_drill.${table}`, await mdbRows("wiki_drill", table), await mdbRows("wiki", table));
    }
    assert.equal(
      (await pg.psql("SELECT pg_catalog.pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'shop_drill';"))
        .trim(),
      "driller",
      "the drill's own user made the scratch database",
    );
    assertSameRows(
      "lite-drill.db orders",
      liteRows(join(dir, "scratch", "lite-drill.db")),
      liteRows(join(dir, "data", "app.db")),
    );
    assertSameRows(
      "fragile-drill.db orders",
      liteRows(join(dir, "scratch", "fragile-drill.db")),
      liteRows(join(dir, "data", "app.db")),
    );
    // Refused before anything was dropped: the production database is whole.
    assert.equal((await pg.psql("SELECT count(*) FROM orders;", "shop")).trim(), "20000");

    // The audit holds the same bytes and a stage at least as long as the measured restore.
    const stages = await verifyStages();
    for (const [project, line] of Object.entries(lines)) {
      const stage = stages.find((s) => s.project === project)!;
      assert.equal(stage.status, "succeeded", project);
      assert.ok(
        stage.snapshot_id?.startsWith(snapshot[`${project}/${stage.source}`]),
        `${project}: the latest snapshot`,
      );
      assert.equal(formatBytes(stage.bytes!), line.size, `${project}: audited bytes`);
      const restoreMs = parseDuration(line.duration);
      assert.ok(stage.duration_ms >= restoreMs, `${project}: the stage (${stage.duration_ms} ms) holds the restore`);
      assert.ok(restoreMs > 0, `${project}: a measured restore`);
    }
    const pgSize = (await pg.psql(
      "SELECT pg_size_pretty(pg_total_relation_size('customers') + pg_total_relation_size('orders'));",
      "shop",
    )).trim();
    const mdbSize = (await db.sql(
      "SELECT ROUND(SUM(data_length + index_length) / 1024) FROM information_schema.TABLES WHERE table_schema = 'wiki';",
    )).trim();
    const stageMs = (project: string) => stages.find((s) => s.project === project)!.duration_ms;
    measured.push(
      `apply: PostgreSQL shop (tables ${pgSize}, 2,000 customers + 20,000 orders): ${lines.pgshop.size} dump ` +
        `restored in ${lines.pgshop.duration} (whole verify stage ${stageMs("pgshop")} ms)`,
      `apply: MariaDB wiki (tables ${mdbSize} KiB, 1,000 + 5,000 rows): ${lines.mdb.size} dump restored in ` +
        `${lines.mdb.duration} (whole verify stage ${stageMs("mdb")} ms)`,
      `apply: SQLite app.db (2,000 rows): ${lines.lite.size} dump restored in ${lines.lite.duration} ` +
        `(whole verify stage ${stageMs("lite")} ms)`,
    );
  });

  it("a failed drill is audited, sent as verify.failed to the webhook, and stays due", async () => {
    const stages = await verifyStages();
    assert.deepEqual(stages.map((s) => [s.project, s.status]).sort(), [
      ["fragile", "succeeded"],
      ["lite", "succeeded"],
      ["lite_missing", "failed"],
      ["mdb", "succeeded"],
      ["pg_own", "failed"],
      ["pgshop", "succeeded"],
    ]);
    const missing = stages.find((s) => s.project === "lite_missing")!;
    assert.match(missing.error ?? "", /no such table: no_such_table/);
    assert.equal(missing.source, "app");
    const own = stages.find((s) => s.project === "pg_own")!;
    assert.match(own.error ?? "", /verify\.into names the project's own postgres database/);
    assert.equal(own.bytes, null, "nothing was restored");

    await http.waitFor(2);
    const sent = messages(0);
    assert.deepEqual(sent.map((m) => [m.event, m.project]).sort(), [
      ["verify.failed", "lite_missing"],
      ["verify.failed", "pg_own"],
    ]);
    const missingMessage = sent.find((m) => m.project === "lite_missing")!;
    assert.equal(missingMessage.stage, "verify app in local");
    assert.equal(missingMessage.severity, "bad");
    assert.match(String(missingMessage.error), /no such table: no_such_table/);
    const ownMessage = sent.find((m) => m.project === "pg_own")!;
    assert.equal(ownMessage.stage, "verify shop in local");
    assert.match(String(ownMessage.error), /own postgres database/);
    for (const message of sent) {
      for (const value of Object.values(secrets)) assert.ok(!JSON.stringify(message).includes(value), "no secret sent");
    }

    const plan = await cli(["plan", "--now", firstDay]);
    assert.equal(plan.code, 0, show(plan));
    const due = [...plan.stdout.matchAll(/^ {2}~ verify (\S+) \(restore drill from \S+\) {2}(.*)$/gm)].map((
      m,
    ) => [m[1], m[2]]);
    assert.deepEqual(due, [["lite_missing", "never restored in a drill"], ["pg_own", "never restored in a drill"]]);
  });

  it("verify runs drills on demand, whatever their cadence; a failing one exits 1", async () => {
    const before = (await verifyStages()).length;
    const result = await cli(["verify", "pgshop", "mdb", "lite"]);
    assert.equal(result.code, 0, show(result));
    for (const [project, rows] of [["pgshop", "20000 rows"], ["mdb", "25 rows"], ["lite", "2000 rows"]]) {
      const match = new RegExp(
        `^~ verify ${project}: restored \\S+ \\(snapshot [0-9a-f]{8}, ([\\d.]+ \\S+)\\) from local into the scratch ` +
          `database in ((?:\\d+(?:ms|s|m) ?)+); check: ${rows}$`,
        "m",
      ).exec(result.stdout);
      assert.ok(match, `${project} in:\n${show(result)}`);
      measured.push(`verify: ${project}: ${match[1]} dump restored in ${match[2]}`);
    }
    const stages = await verifyStages();
    assert.deepEqual(stages.slice(before).map((s) => [s.project, s.status]), [
      ["pgshop", "succeeded"],
      ["mdb", "succeeded"],
      ["lite", "succeeded"],
    ]);

    const mark = http.requests.length;
    const failing = await cli(["verify", "lite_missing"]);
    assert.equal(failing.code, 1, show(failing));
    assert.match(failing.stdout, /^✗ verify lite_missing failed: the check query failed \(exit 1\): .*no such table/m);
    assert.match(failing.stderr, /^Error: 1 of 1 actions failed$/m);
    await http.waitFor(mark + 1);
    assert.deepEqual(messages(mark).map((m) => [m.event, m.project]), [["verify.failed", "lite_missing"]]);
  });

  it("a damaged pack: the due check fails with restic's error, and the drill fails naming it", async () => {
    assert.ok(corruptPacks(join(dir, "fragile-repository")) > 0, "the repository has packs to damage");
    const mark = http.requests.length;
    const applied = await cli(["apply", "--now", twoMinutesLater, "--project", "fragile"]);
    assert.equal(applied.code, 1, show(applied));
    assert.match(applied.stdout, /^ {2}~ check fragile {2}never checked since initialization .*, every 1m$/m);
    assert.match(
      applied.stdout,
      /^✗ check fragile failed: repository fragile: restic check failed \(exit 1\): repository contains errors$/m,
    );
    assert.match(applied.stdout, /ciphertext verification failed/);
    assert.match(applied.stdout, /repository contains errors/);
    assert.doesNotMatch(applied.stdout, /verify fragile/, "the drill is not due two minutes after it passed");
    await http.waitFor(mark + 1);
    assert.deepEqual(messages(mark).map((m) => [m.event, m.repositories]), [["check.failed", ["fragile"]]]);

    const verified = await cli(["verify", "fragile"]);
    assert.equal(verified.code, 1, show(verified));
    assert.match(verified.stdout, /^✗ verify fragile failed: repository fragile: restic dump failed \(exit \d+\)/m);
    assert.match(verified.stdout, /ciphertext verification failed/);
    const stage = (await verifyStages()).at(-1)!;
    assert.deepEqual([stage.project, stage.status], ["fragile", "failed"]);
    assert.match(stage.error ?? "", /ciphertext verification failed/);
    await http.waitFor(mark + 2);
    const [message] = messages(mark + 1);
    assert.deepEqual([message.event, message.project, message.stage], [
      "verify.failed",
      "fragile",
      "verify app in fragile",
    ]);
    assert.match(String(message.error), /ciphertext verification failed/);
  });

  it("a check counting fewer rows than expect.minRows fails the drill, which stays due", async () => {
    writeConfig(20_001);
    const mark = http.requests.length;
    const applied = await cli(["apply", "--now", eightDaysLater, "--project", "pgshop"]);
    assert.equal(applied.code, 1, show(applied));
    const backup = /\+ backup pgshop\/shop → local: snapshot ([0-9a-f]{8})/.exec(applied.stdout);
    assert.ok(backup, show(applied));
    assert.match(
      applied.stdout,
      new RegExp(
        `^✗ verify pgshop failed: the check query returned 20000 rows, expected at least 20001: the snapshot ${
          backup[1]
        } restored, but its data is not what the drill expects$`,
        "m",
      ),
    );
    const stage = (await verifyStages()).at(-1)!;
    assert.deepEqual([stage.project, stage.status, stage.started_at.slice(0, 10)], ["pgshop", "failed", "2027-01-12"]);
    assert.ok(stage.snapshot_id === null || stage.snapshot_id.startsWith(backup[1]));
    await http.waitFor(mark + 1);
    const sent = messages(mark).filter((m) => m.event === "verify.failed");
    assert.deepEqual(sent.map((m) => [m.project, m.stage]), [["pgshop", "verify shop in local"]]);
    assert.match(String(sent[0].error), /returned 20000 rows, expected at least 20001/);

    const plan = await cli(["plan", "--now", eightDaysLater, "--project", "pgshop"]);
    assert.equal(plan.code, 0, show(plan));
    assert.match(
      plan.stdout,
      /^ {2}~ verify pgshop \(restore drill from local\) {2}last restore drill 2027-01-04 10:\d\d:\d\d\+00:00 \(.+ ago\), every 7d$/m,
    );
  });
});
