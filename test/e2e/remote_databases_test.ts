/**
 * The whole chain with real servers on loopback: a PostgreSQL cluster and a MariaDB server as sources, OpenSSH sshd
 * as the primary (SFTP) repository and `rclone serve restic` as the second (REST) one. One project backs up both
 * databases into SFTP and `apply` copies the snapshots into REST; each database is then restored from the COPY
 * (`restic dump` piped into pg_restore / mariadb) into a fresh database and compared row for row with the source.
 * A missing server or client program fails these tests, naming the Debian package; nothing is skipped.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { runCli, runTool } from "../support/cli.ts";
import { mariadbIdent, type MariadbServer, startMariadb } from "../support/mariadb.ts";
import { ident, type PostgresServer, startPostgres } from "../support/postgres.ts";
import { type RestServer, startRestServer } from "../support/rclone.ts";
import { type SftpServer, startSftp } from "../support/sshd.ts";

const day1 = "2026-11-21T10:00:00Z";
const day2 = "2026-11-22T10:00:00Z";

/** Programs these tests drive, with the Debian package of each (CI installs them; never skip). */
function requireTools(tools: [program: string, debianPackage: string][]): void {
  const missing = tools.filter(([program]) =>
    spawnSync("sh", ["-c", 'command -v "$1" >/dev/null 2>&1', "sh", program]).status !== 0
  );
  if (missing.length > 0) {
    throw new Error(
      "missing programs for the remote database end-to-end tests: " +
        missing.map(([program, pkg]) => `${program} (apt-get install -y ${pkg})`).join(", "),
    );
  }
}

/** The real CLI with a hard time limit: a hung apply fails instead of hanging. */
const runCliWithin = (args: string[], env: Record<string, string | undefined>, timeoutMs = 180_000) =>
  runCli(args, { env, timeoutMs });

interface PlanJson {
  actions: {
    type: string;
    repository: string;
    source?: string;
    from?: string;
    chunker_from?: string;
    snapshots?: string[];
    reason: string;
  }[];
  summary: Record<string, number>;
}

interface Snapshot {
  id: string;
  time: string;
  tags: string[];
  paths: string[];
  original?: string;
}

/** `restic dump … | consumer` with real pipes (a pg_dump archive is binary): both exit codes and all stderr. */
function pipeRestore(
  resticArgs: string[],
  resticEnv: Record<string, string>,
  consumer: string[],
): Promise<{ restic: number | null; consumer: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const producer = spawn("restic", resticArgs, {
      env: { ...process.env, ...resticEnv } as Record<string, string>,
      stdio: ["ignore", "pipe", "pipe"],
    });
    const loader = spawn(consumer[0], consumer.slice(1), { stdio: ["pipe", "ignore", "pipe"] });
    let stderr = "";
    producer.stderr!.on("data", (chunk) => (stderr += chunk));
    loader.stderr!.on("data", (chunk) => (stderr += chunk));
    loader.stdin!.on("error", () => {});
    producer.stdout!.pipe(loader.stdin!);
    Promise.all([
      new Promise<number | null>((done) => producer.on("close", (code) => done(code))),
      new Promise<number | null>((done) => loader.on("close", (code) => done(code))),
    ]).then(([restic, loaded]) => resolve({ restic, consumer: loaded, stderr }));
  });
}

/** The snapshots of one source, oldest first. */
function ofSource(snapshots: Snapshot[], source: string): Snapshot[] {
  return snapshots.filter((s) => s.tags.includes(`source=${source}`)).sort((a, b) => a.time.localeCompare(b.time));
}

/** Compares two row lists element by element, naming the first row that differs. */
function assertSameRows(actual: string[], expected: string[], what: string): void {
  assert.equal(actual.length, expected.length, `${what}: row count`);
  for (let i = 0; i < expected.length; i++) assert.equal(actual[i], expected[i], `${what}: row ${i + 1}`);
}

describe("PostgreSQL and MariaDB backed up over SFTP, copied to REST, restored from the copy", () => {
  let pg: PostgresServer | undefined;
  let maria: MariadbServer | undefined;
  let sftp: SftpServer | undefined;
  let rest: RestServer | undefined;
  let dir: string | undefined;
  let config = "";
  let sftpUrl = "";
  const outputs: { what: string; text: string }[] = [];
  /** The first restore of each database (from the day-1 copy), kept to prove the day-2 restore differs. */
  const firstRestore: Record<string, string[]> = {};

  const env = {
    SFTP_RESTIC_PASSWORD: `sftp-restic-${randomBytes(6).toString("hex")}`,
    REST_RESTIC_PASSWORD: `rest-restic-${randomBytes(6).toString("hex")}`,
    // ':' and '\' must survive the pgpass file; quotes, '#' and '\' MariaDB's option file.
    PG_BACKUP_PASSWORD: `pg-remote:pw\\${randomBytes(6).toString("hex")}'q`,
    MARIADB_BACKUP_PASSWORD: `mdb "remote" #pw\\${randomBytes(6).toString("hex")}'`,
  };

  const need = <T>(value: T | undefined, what: string): T => {
    assert.ok(value, `${what} is not running (see the failure of the before hook)`);
    return value;
  };
  const cliEnv = () => ({
    ...env,
    REST_URL: need(rest, "rclone serve restic").url,
    BACKUPCTL_CONFIG: undefined,
    BACKUPCTL_STATE_DIR: undefined,
  });
  const cli = async (args: string[]) => {
    const result = await runCliWithin(["--config", config, ...args], cliEnv());
    outputs.push({ what: `backupctl ${args.join(" ")}`, text: result.stdout + result.stderr });
    return result;
  };
  const sftpEnv = () => ({ RESTIC_REPOSITORY: sftpUrl, RESTIC_PASSWORD: env.SFTP_RESTIC_PASSWORD });
  const restEnv = () => ({
    RESTIC_REPOSITORY: need(rest, "rclone serve restic").url,
    RESTIC_PASSWORD: env.REST_RESTIC_PASSWORD,
  });
  const sftpArgs = () => ["--no-cache", "-o", `sftp.command=${need(sftp, "sshd").sftpCommand}`];
  const snapshots = async (repository: "sftp" | "rest"): Promise<Snapshot[]> => {
    const args = repository === "sftp" ? sftpArgs() : ["--no-cache"];
    const listed = await runTool("restic", [...args, "snapshots", "--json"], {
      env: repository === "sftp" ? sftpEnv() : restEnv(),
    });
    assert.equal(listed.code, 0, `restic snapshots (${repository}): ${listed.stderr}`);
    return (JSON.parse(listed.stdout) as Snapshot[] | null) ?? [];
  };

  const pgRows = async (database: string, table: string) =>
    (await need(pg, "PostgreSQL").psql(`SELECT to_json(t)::text FROM ${ident(table)} AS t ORDER BY id;`, database))
      .split("\n").filter(Boolean);
  /**
   * JSON_OBJECT keeps NULL apart from the string 'NULL' and a newline apart from "\n" (batch output does not); SET
   * NAMES utf8mb4, because the client's default (utf8mb3) shows every 4-byte character as "?" and would hide their loss.
   */
  const mariaColumns: Record<string, string> = {
    customers: "'id', id, 'name', name, 'note', note, 'balance', balance, 'ratio', ratio, 'created_at', created_at, " +
      "'birthday', birthday, 'avatar', HEX(avatar), 'active', active",
    orders: "'id', id, 'customer_id', customer_id, 'amount', amount, 'placed_at', placed_at, 'label', label",
  };
  const mariaRows = async (database: string, table: string) =>
    (await need(maria, "MariaDB").sql(
      `SET NAMES utf8mb4; SELECT JSON_OBJECT(${mariaColumns[table]}) FROM ${mariadbIdent(table)} ORDER BY id;`,
      database,
    )).split("\n").filter(Boolean);

  /** Restores the newest REST copy of each database into a fresh database; returns the databases' names. */
  const restoreFromRest = async (suffix: string): Promise<{ shop: string; wiki: string }> => {
    const copies = await snapshots("rest");
    const shop = ofSource(copies, "shop").at(-1);
    const wiki = ofSource(copies, "wiki").at(-1);
    assert.ok(shop && wiki, `copies of both sources in REST: ${JSON.stringify(copies)}`);
    assert.deepEqual(shop.paths, ["/shop.pgdump"]);
    assert.deepEqual(wiki.paths, ["/wiki.sql"]);
    const names = { shop: `shop_${suffix}`, wiki: `wiki_${suffix}` };

    await need(pg, "PostgreSQL").createDatabase(names.shop);
    const pgRestored = await pipeRestore(["--no-cache", "dump", shop.id, "/shop.pgdump"], restEnv(), [
      "pg_restore",
      "--no-owner",
      "--no-password",
      "--exit-on-error",
      "--host",
      pg!.socketDir,
      "--port",
      String(pg!.port),
      "--username",
      "postgres",
      "--dbname",
      names.shop,
    ]);
    assert.deepEqual([pgRestored.restic, pgRestored.consumer], [0, 0], pgRestored.stderr);

    await need(maria, "MariaDB").createDatabase(names.wiki);
    const mariaRestored = await pipeRestore(["--no-cache", "dump", wiki.id, "/wiki.sql"], restEnv(), [
      "mariadb",
      "--no-defaults",
      `--socket=${maria!.socket}`,
      "--user=root",
      names.wiki,
    ]);
    assert.deepEqual([mariaRestored.restic, mariaRestored.consumer], [0, 0], mariaRestored.stderr);
    return names;
  };

  const assertRestoredEqualsSource = async (restored: { shop: string; wiki: string }) => {
    for (const table of ["customers", "orders"]) {
      const source = await pgRows("shop", table);
      assert.ok(source.length >= 700, `shop.${table} has rows (${source.length})`);
      assertSameRows(await pgRows(restored.shop, table), source, `PostgreSQL ${table} restored from REST`);
    }
    for (const table of ["customers", "orders"]) {
      const source = await mariaRows("wiki", table);
      assert.ok(source.length >= 700, `wiki.${table} has rows (${source.length})`);
      assertSameRows(await mariaRows(restored.wiki, table), source, `MariaDB ${table} restored from REST`);
    }
  };

  before(async () => {
    requireTools([
      ["restic", "restic"],
      ["pg_dump", "postgresql-client"],
      ["pg_restore", "postgresql-client"],
      ["psql", "postgresql-client"],
      ["mariadb", "mariadb-client"],
      ["mariadb-dump", "mariadb-client"],
      ["mariadb-admin", "mariadb-client"],
      ["ssh", "openssh-client"],
      ["rclone", "rclone"],
    ]);
    // Started one after the other: a failure leaves the started ones in the variables for after() to stop.
    pg = await startPostgres();
    maria = await startMariadb();
    sftp = await startSftp();
    rest = await startRestServer();
    dir = mkdtempSync(join(tmpdir(), "backupctl-e2e-remote-db-"));
    config = join(dir, "backup.config.ts");
    sftpUrl = `sftp:root@127.0.0.1:${sftp.root}/repo`;

    await pg.createUser("backup", env.PG_BACKUP_PASSWORD);
    await pg.createDatabase("shop", "backup");
    // 1,200 customers and 800 orders: quotes, backslashes, newlines, tabs, unicode (4-byte too), NULLs, numerics
    // at the edges, timestamps with microseconds (and infinity), bytea with NUL and quote bytes, arrays, jsonb.
    await pg.psql(
      `SET ROLE backup;
      CREATE TABLE customers (
        id integer PRIMARY KEY, name text NOT NULL, note text, balance numeric(20, 6), ratio double precision,
        created_at timestamptz, birthday date, avatar bytea, tags text[], active boolean
      );
      INSERT INTO customers
        SELECT i,
          'customer ' || i || CASE i % 4 WHEN 0 THEN E' O''Brien "the \\\\ one"' WHEN 1 THEN ' Zoë Ærøskøbing 東京 😀'
            WHEN 2 THEN E' \\u05e9\\u05dc\\u05d5\\u05dd e\\u0301' ELSE '' END,
          CASE WHEN i % 5 = 0 THEN NULL
            WHEN i % 5 = 1 THEN E'line one\\nline "two" with ''quotes'' \\\\ and\\ttab\\r\\n' || i
            WHEN i % 5 = 2 THEN 'NULL'
            WHEN i % 5 = 3 THEN ''
            ELSE repeat('∑', i % 50) END,
          CASE WHEN i % 11 = 0 THEN NULL ELSE (i * 12.345678 - 7000)::numeric(20, 6) END,
          CASE WHEN i % 13 = 0 THEN NULL ELSE i / 7.0::double precision END,
          CASE WHEN i = 1 THEN 'infinity'::timestamptz WHEN i % 17 = 0 THEN NULL
            ELSE timestamptz '2020-01-01 00:00:00+00' + i * interval '1 hour 17 minutes 3.123456 seconds' END,
          date '1950-02-28' + i * 13,
          CASE WHEN i % 9 = 0 THEN NULL ELSE decode(md5(i::text), 'hex') || '\\x00ff275c220a00'::bytea END,
          CASE WHEN i % 6 = 0 THEN NULL ELSE ARRAY['a', 'b,' || i, NULL, E'q"\\\\'] END,
          CASE WHEN i % 8 = 0 THEN NULL ELSE i % 3 = 0 END
        FROM generate_series(1, 1200) AS i;
      CREATE TABLE orders (
        id bigserial PRIMARY KEY, customer_id integer REFERENCES customers (id), amount numeric(10, 3),
        placed_at timestamp, payload jsonb
      );
      INSERT INTO orders (customer_id, amount, placed_at, payload)
        SELECT 1 + i % 1200, CASE WHEN i % 10 = 0 THEN NULL ELSE i / 7.0 - 50 END,
          timestamp '2024-02-29 12:00' - i * interval '1 minute 1.5 seconds',
          jsonb_build_object('n', i, 's', E'\\u00fc\\u00e9 "q" \\u2603 \\\\ \\n', 'null', NULL, 'list', jsonb_build_array(i, 'x'))
        FROM generate_series(1, 800) AS i;`,
      "shop",
    );

    await maria.createDatabase("wiki");
    await maria.createUser("backup", env.MARIADB_BACKUP_PASSWORD, "wiki");
    await maria.sql(
      `CREATE TABLE customers (
        id INT PRIMARY KEY, name VARCHAR(200) CHARACTER SET utf8mb4 NOT NULL, note TEXT CHARACTER SET utf8mb4 NULL,
        balance DECIMAL(20, 6), ratio DOUBLE, created_at DATETIME(6), birthday DATE, avatar BLOB, active BOOLEAN
      ) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
      INSERT INTO customers
        SELECT seq,
          CONCAT('customer ', seq, CASE seq % 4 WHEN 0 THEN ' O''Brien "the \\\\ one"'
            WHEN 1 THEN CONCAT(' ', _utf8mb4 X'5A6FC3AB20C386C3A7', ' ', _utf8mb4 X'E69DB1E4BAAC', ' ', _utf8mb4 X'F09F9880')
            WHEN 2 THEN CONCAT(' ', _utf8mb4 X'D7A9D79CD795D79D', ' e', _utf8mb4 X'CC81') ELSE '' END),
          CASE WHEN seq % 5 = 0 THEN NULL
            WHEN seq % 5 = 1 THEN CONCAT('line one\\nline "two" with ''quotes'' \\\\ and\\ttab\\r\\n', seq)
            WHEN seq % 5 = 2 THEN 'NULL'
            WHEN seq % 5 = 3 THEN ''
            ELSE REPEAT(_utf8mb4 X'E28891', seq % 50) END,
          IF(seq % 11 = 0, NULL, seq * 12.345678 - 7000),
          IF(seq % 13 = 0, NULL, seq / 7e0),
          IF(seq % 17 = 0, NULL, TIMESTAMP('2020-01-01') + INTERVAL seq * 4623123456 MICROSECOND),
          DATE('1950-02-28') + INTERVAL seq * 13 DAY,
          IF(seq % 9 = 0, NULL, UNHEX(CONCAT(MD5(seq), '00FF275C220A00'))),
          IF(seq % 8 = 0, NULL, seq % 3 = 0)
        FROM seq_1_to_1200;
      CREATE TABLE orders (
        id BIGINT AUTO_INCREMENT PRIMARY KEY, customer_id INT, amount DECIMAL(10, 3), placed_at DATETIME,
        label VARCHAR(100) CHARACTER SET utf8mb4, FOREIGN KEY (customer_id) REFERENCES customers (id)
      ) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
      INSERT INTO orders (customer_id, amount, placed_at, label)
        SELECT 1 + seq % 1200, IF(seq % 10 = 0, NULL, seq / 7 - 50), TIMESTAMP('2024-02-29 12:00:00') - INTERVAL seq MINUTE,
          IF(seq % 12 = 0, NULL, CONCAT(_utf8mb4 X'C3BCC3A9', ' "q" ', seq, ' \\\\ ', _utf8mb4 X'E29883'))
        FROM seq_1_to_800;`,
      "wiki",
    );

    writeFileSync(
      config,
      `import { defineConfig, env, mysql, postgres, restic } from "backupctl";

export default defineConfig({
  timezone: "UTC",
  repositories: {
    sftp: restic({
      url: ${JSON.stringify(sftpUrl)},
      password: env("SFTP_RESTIC_PASSWORD"),
      options: { "sftp.command": ${JSON.stringify(sftp.sftpCommand)} },
    }),
    rest: restic({ url: env("REST_URL"), password: env("REST_RESTIC_PASSWORD") }),
  },
  projects: {
    shop: {
      schedule: "0 3 * * *",
      sources: [
        postgres({ host: "127.0.0.1", port: ${pg.port}, database: "shop", user: "backup", password: env("PG_BACKUP_PASSWORD") }),
        mysql({ host: "127.0.0.1", port: ${maria.port}, database: "wiki", user: "backup", password: env("MARIADB_BACKUP_PASSWORD") }),
      ],
      repositories: ["sftp", "rest"],
      retention: { last: 10 },
    },
  },
});
`,
    );
  });

  after(async () => {
    // Every server is stopped even when another one's stop fails.
    const stops = [rest?.stop(), sftp?.stop(), maria?.stop(), pg?.stop()];
    const results = await Promise.allSettled(stops);
    if (dir) rmSync(dir, { recursive: true, force: true });
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed.length > 0) throw failed[0].reason;
  });

  it("plan --json: init sftp, init rest with sftp's chunker parameters, two backups and their two copies", async () => {
    const result = await cli(["plan", "--now", day1, "--json"]);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    const plan = JSON.parse(result.stdout) as PlanJson;
    assert.deepEqual(
      plan.actions.map((a) => [a.type, a.repository, a.source ?? a.chunker_from ?? null, a.from ?? null]),
      [
        ["init", "sftp", null, null],
        ["init", "rest", "sftp", null],
        ["backup", "sftp", "shop", null],
        ["backup", "sftp", "wiki", null],
        ["copy", "rest", "shop", "sftp"],
        ["copy", "rest", "wiki", "sftp"],
      ],
    );
    assert.equal(plan.actions[1].reason, "repository not initialized (chunker parameters of sftp)");
    assert.deepEqual([plan.summary.init, plan.summary.backup, plan.summary.copy], [2, 2, 2]);
  });

  it("apply initializes both repositories, backs up both databases over SFTP and copies them to REST", async () => {
    const result = await cli(["apply", "--now", day1]);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.match(result.stdout, /\+ init sftp: created \(sftp:root@127\.0\.0\.1:\/.*\/repo\)/);
    assert.match(result.stdout, /\+ init rest: created \(+url from env\("REST_URL"\)\)+/);
    assert.match(result.stdout, /\+ backup shop\/shop → sftp: snapshot [0-9a-f]{8}/);
    assert.match(result.stdout, /\+ backup shop\/wiki → sftp: snapshot [0-9a-f]{8}/);
    assert.match(result.stdout, /\+ copy shop\/shop sftp → rest: 1 snapshot/);
    assert.match(result.stdout, /\+ copy shop\/wiki sftp → rest: 1 snapshot/);
    assert.match(result.stdout, /Apply complete: 6 succeeded, 0 failed\./);
  });

  it("restic sees 2 snapshots in each repository; the REST ones are copies of the SFTP ones", async () => {
    const primary = await snapshots("sftp");
    const copies = await snapshots("rest");
    assert.equal(primary.length, 2, JSON.stringify(primary));
    assert.equal(copies.length, 2, JSON.stringify(copies));
    assert.deepEqual(copies.map((c) => c.original).sort(), primary.map((p) => p.id).sort());
    for (const source of ["shop", "wiki"]) {
      const [original] = ofSource(primary, source);
      const [copy] = ofSource(copies, source);
      assert.equal(copy.original, original.id, `the ${source} copy remembers its original`);
      assert.deepEqual(copy.paths, original.paths);
      assert.deepEqual([...copy.tags].sort(), [...original.tags].sort(), "tags travel with the copy");
      assert.ok(copy.tags.includes("project=shop") && copy.tags.includes("backupctl"));
    }
    const chunker = async (repository: "sftp" | "rest") => {
      const args = repository === "sftp" ? sftpArgs() : ["--no-cache"];
      const result = await runTool("restic", [...args, "cat", "config"], {
        env: repository === "sftp" ? sftpEnv() : restEnv(),
      });
      assert.equal(result.code, 0, result.stderr);
      return (JSON.parse(result.stdout) as { chunker_polynomial: string }).chunker_polynomial;
    };
    assert.equal(await chunker("rest"), await chunker("sftp"), "REST was initialized with SFTP's chunker parameters");
  });

  it("both databases restore from the REST copy into fresh databases, identical row for row", async () => {
    const restored = await restoreFromRest("day1");
    await assertRestoredEqualsSource(restored);
    assert.equal((await pgRows("shop", "customers")).length, 1200);
    assert.equal((await pgRows("shop", "orders")).length, 800);
    assert.equal((await mariaRows("wiki", "customers")).length, 1200);
    assert.equal((await mariaRows("wiki", "orders")).length, 800);
    // The compared rows really hold the awkward values (so equal rows prove they survived the round trip).
    const pgText = (await pgRows("shop", "customers")).join("\n");
    for (
      const needle of ["😀", "東京", "O'Brien", '\\"two\\"', "\\n", "\\t", '"note":null', '"note":"NULL"', "infinity"]
    ) {
      assert.ok(pgText.includes(needle), `PostgreSQL rows contain ${needle}`);
    }
    assert.ok(pgText.includes("00ff275c220a00"), "PostgreSQL rows contain bytea with NUL, quote and backslash bytes");
    const mariaText = (await mariaRows("wiki", "customers")).join("\n");
    // mariadb --batch escapes backslashes once more (reversibly): JSON's \" is printed as \\".
    for (const needle of ["😀", "東京", "O'Brien", 'line \\\\"two', "\\n", "\\t", '"note": null', '"note": "NULL"']) {
      assert.ok(mariaText.includes(needle), `MariaDB rows contain ${needle}`);
    }
    assert.ok(mariaText.includes("00FF275C220A00"), "MariaDB rows contain a blob with NUL, quote and backslash bytes");
    firstRestore.shop = await pgRows(restored.shop, "customers");
    firstRestore.wiki = await mariaRows(restored.wiki, "customers");
  });

  it("a second plan at the same time says no changes", async () => {
    const result = await cli(["plan", "--now", day1, "--detailed-exitcode"]);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.match(result.stdout, /^No changes\. Backups are up to date\./);
  });

  it("after changing rows, a later apply adds one snapshot per source to each; the newest restore has the change", async () => {
    await pg!.psql(
      `SET ROLE backup;
      UPDATE customers SET name = E'changed ''day 2'' \\u00e9\\n', balance = -0.000001, avatar = '\\x00'::bytea
        WHERE id IN (3, 600, 1200);
      DELETE FROM orders WHERE id IN (5, 6, 7);
      INSERT INTO orders (customer_id, amount, placed_at, payload) VALUES (1, 99999.999, '2026-11-22 09:59:59', NULL);`,
      "shop",
    );
    await maria!.sql(
      `UPDATE customers SET name = CONCAT('changed ''day 2'' ', _utf8mb4 X'C3A9', '\\n'), balance = -0.000001,
        avatar = X'00' WHERE id IN (3, 600, 1200);
      DELETE FROM orders WHERE id IN (5, 6, 7);
      INSERT INTO orders (customer_id, amount, placed_at, label) VALUES (1, 9999999.999, '2026-11-22 09:59:59', NULL);`,
      "wiki",
    );

    const plan = JSON.parse((await cli(["plan", "--now", day2, "--json"])).stdout) as PlanJson;
    assert.deepEqual(plan.actions.map((a) => [a.type, a.repository, a.source]), [
      ["backup", "sftp", "shop"],
      ["backup", "sftp", "wiki"],
      ["copy", "rest", "shop"],
      ["copy", "rest", "wiki"],
    ]);
    const result = await cli(["apply", "--now", day2]);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.match(result.stdout, /\+ copy shop\/shop sftp → rest: 1 snapshot/);
    assert.match(result.stdout, /\+ copy shop\/wiki sftp → rest: 1 snapshot/);
    assert.match(result.stdout, /Apply complete: 4 succeeded, 0 failed\./);

    const primary = await snapshots("sftp");
    const copies = await snapshots("rest");
    for (const source of ["shop", "wiki"]) {
      assert.equal(ofSource(primary, source).length, 2, `sftp: 2 snapshots of ${source}`);
      assert.equal(ofSource(copies, source).length, 2, `rest: 2 snapshots of ${source}`);
      assert.deepEqual(
        ofSource(copies, source).map((c) => c.original),
        ofSource(primary, source).map((p) => p.id),
        `every ${source} copy in rest has its original in sftp, in the same order`,
      );
    }
    assert.equal(primary.length, 4);
    assert.equal(copies.length, 4);

    const restored = await restoreFromRest("day2");
    await assertRestoredEqualsSource(restored);
    const shopNow = await pgRows(restored.shop, "customers");
    const wikiNow = await mariaRows(restored.wiki, "customers");
    assert.notDeepEqual(shopNow, firstRestore.shop, "the day-2 PostgreSQL restore differs from day 1's");
    assert.notDeepEqual(wikiNow, firstRestore.wiki, "the day-2 MariaDB restore differs from day 1's");
    assert.match(shopNow[2], /changed 'day 2'/);
    assert.match(wikiNow[2], /changed 'day 2'/);
    assert.equal((await pgRows(restored.shop, "orders")).length, 798);
    assert.equal((await mariaRows(restored.wiki, "orders")).length, 798);

    const again = await cli(["plan", "--now", day2, "--detailed-exitcode"]);
    assert.equal(again.code, 0, again.stdout + again.stderr);
    assert.match(again.stdout, /^No changes\./);
  });

  it("no database, restic or REST password appears in any CLI output", () => {
    assert.ok(outputs.length >= 6, `captured ${outputs.length} CLI outputs`);
    const secrets: Record<string, string> = { ...env, REST_PASSWORD: need(rest, "rclone serve restic").password };
    for (const { what, text } of outputs) {
      for (const [name, value] of Object.entries(secrets)) {
        assert.ok(!text.includes(value), `the output of ${what} contains ${name}`);
      }
      assert.ok(!text.includes(rest!.url), `the output of ${what} contains the REST URL with credentials`);
    }
  });
});
