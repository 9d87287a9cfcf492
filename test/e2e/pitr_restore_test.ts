/**
 * `backupctl restore --to-time` end to end, with the real CLI and a real cluster archiving into a real pgBackRest
 * repository (test/support/pgbackrest.ts): after `apply` made the first full backup, rows are written at T1 and T2; a
 * restore to a time between them has the first and not the second, `latest` has both. Refused before anything is
 * written: a folder the cluster's OS user cannot reach, a folder holding something, a time before the oldest backup
 * (naming the nearest restorable time). `--print-commands` runs nothing. Every restore is audited.
 *
 * The config's `pgbackrest()` source comes with the pitr-plan branch: until it is merged, these tests are skipped.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import * as helpers from "../../src/config/helpers.ts";
import { stopServer } from "../../src/pitr/cluster.ts";
import { runningAsRoot } from "../../src/pitr/run-as.ts";
import { type CliResult, runCli } from "../support/cli.ts";
import { clusterConfigText, type PgBackRestCluster, startPgBackRestCluster } from "../support/pgbackrest.ts";

/** Whether this tree's config knows `pgbackrest()` (the pitr-plan branch). */
const ready = "pgbackrest" in helpers;
const notReady = "needs the pgbackrest() source of the config (branch pitr-plan)";

let pg: PgBackRestCluster;
let dir: string;
/** A moment between the rows t1 and t2, by the server's clock. */
let between: Date;

const show = (result: CliResult) => `exit ${result.code}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`;

function cli(args: string[]): Promise<CliResult> {
  return runCli(["--config", join(dir, "backup.config.ts"), "--state-dir", join(dir, "state"), ...args], {
    timeoutMs: 240_000,
  });
}

/** The labels in the restored copy listening in `into` on `port`. */
function labels(into: string, port: string | undefined): string {
  const argv = ["-h", into, "-p", String(port), "-U", "postgres", "-At", "-d", "postgres", "-c"];
  return execFileSync("psql", [...argv, "SELECT string_agg(label, ',' ORDER BY label) FROM marks"]).toString().trim();
}

/** The config, a first apply (stanza-create and a full backup), then the rows t1 and t2 with their WAL archived. */
async function setUp(): Promise<void> {
  dir = mkdtempSync(join(tmpdir(), "backupctl-pitr-restore-"));
  const { repository } = pg.source;
  writeFileSync(
    join(dir, "backup.config.ts"),
    `import { defineConfig, pgbackrest } from "backupctl";

export default defineConfig({
  repositories: {},
  projects: {
    ledger: {
      schedule: "@daily",
      sources: [pgbackrest({
        stanza: "main",
        ${clusterConfigText(pg)}
        repository: { path: ${JSON.stringify(repository.path)} },
        schedule: { full: "0 0 1 1 *" },
      })],
      repositories: [],
      retention: { weekly: 4 },
    },
  },
});
`,
  );
  const applied = await cli(["apply"]);
  assert.equal(applied.code, 0, show(applied));
  // pgBackRest dates a backup to the second and restores to a time only from a backup that stopped before it.
  await pg.server.psql("CREATE TABLE marks (label text); SELECT pg_sleep(1); INSERT INTO marks VALUES ('t1');");
  between = new Date(Number(await pg.server.psql("SELECT extract(epoch FROM clock_timestamp())")) * 1000);
  await pg.server.psql("SELECT pg_sleep(0.05); INSERT INTO marks VALUES ('t2');");
  await pg.switchWal();
}

before(async () => {
  if (!ready) return;
  pg = await startPgBackRestCluster({ stanza: "main" });
  // A set-up that fails stops its server here: the runtimes do not all run `after` when `before` failed.
  try {
    await setUp();
  } catch (error) {
    await pg.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
    throw error;
  }
});
after(async () => {
  await pg?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("restore --to-time", () => {
  it("restores to a time between two writes into a new cluster: the first is there, the second is not", async (t) => {
    if (!ready) return t.skip(notReady);
    // Beside the live data directory: a folder the cluster's OS user can reach.
    const into = join(pg.server.dir, "restored-between");
    const result = await cli(["restore", "ledger", "--to-time", between.toISOString(), "--into-cluster", into]);
    assert.equal(result.code, 0, show(result));
    assert.match(result.stdout, /^restored ledger\/main \(stanza main, backup \d{8}-\d{6}F\) to \S+ into /m);
    const port = /it runs on 127\.0\.0\.1:(\d+)/.exec(result.stdout)?.[1];
    try {
      assert.equal(labels(into, port), "t1");
    } finally {
      await stopServer(into);
    }
  });

  it("restores latest, on the port asked for: both writes are there", async (t) => {
    if (!ready) return t.skip(notReady);
    const into = join(pg.server.dir, "restored-latest");
    const bad = await cli(["restore", "ledger", "--to-time", "latest", "--into-cluster", into, "--port", "0"]);
    assert.equal(bad.code, 64, show(bad));
    const result = await cli(["restore", "ledger", "--source", "main", "--to-time", "latest", "--into-cluster", into]);
    assert.equal(result.code, 0, show(result));
    try {
      assert.equal(labels(into, /it runs on 127\.0\.0\.1:(\d+)/.exec(result.stdout)?.[1]), "t1,t2");
    } finally {
      await stopServer(into);
    }
  });

  it("refuses before writing: an unreachable or non-empty folder, a time before the oldest backup", async (t) => {
    if (!ready) return t.skip(notReady);
    if (runningAsRoot()) {
      // `dir` is root's 0700 temp folder: the cluster's OS user, who restores, cannot enter it.
      const blocked = await cli(["restore", "ledger", "--to-time", "latest", "--into-cluster", join(dir, "x")]);
      assert.equal(blocked.code, 64, show(blocked));
      assert.match(blocked.stderr, /cannot enter .* on the way to .*chmod o\+x/);
      assert.equal(existsSync(join(dir, "x")), false);
    }
    const full = join(pg.server.dir, "full");
    mkdirSync(full);
    writeFileSync(join(full, "mine.txt"), "mine");
    const refused = await cli(["restore", "ledger", "--to-time", "latest", "--into-cluster", full]);
    assert.equal(refused.code, 64, show(refused));
    assert.match(refused.stderr, /full is not empty/);
    const early = join(pg.server.dir, "early");
    const tooEarly = await cli(["restore", "ledger", "--to-time", "2020-01-01T00:00:00Z", "--into-cluster", early]);
    assert.notEqual(tooEarly.code, 0, show(tooEarly));
    assert.match(tooEarly.stderr, /before the oldest backup ended: the nearest restorable time is \d{4}-/);
    assert.equal(existsSync(early), false);
  });

  it("prints the commands and runs nothing; audits every restore", async (t) => {
    if (!ready) return t.skip(notReady);
    const into = join(pg.server.dir, "printed");
    const printed = await cli([
      "restore",
      "ledger",
      "--to-time",
      between.toISOString(),
      "--into-cluster",
      into,
      "--print-commands",
    ]);
    assert.equal(printed.code, 0, show(printed));
    assert.match(printed.stdout, /--type=time '--target=\S+ \S+' --target-action=promote restore/);
    assert.equal(existsSync(into), false);
    const history = await cli(["history", "--json"]);
    assert.equal(history.code, 0, show(history));
    const restores =
      (JSON.parse(history.stdout) as { kind: string; stages: { repository: string; status: string }[] }[])
        .filter((entry) => entry.kind === "restore").flatMap((entry) => entry.stages);
    assert.ok(restores.some((s) => s.repository === "pgbackrest:main" && s.status === "succeeded"));
    assert.ok(restores.some((s) => s.repository === "pgbackrest:main" && s.status === "failed"));
  });
});
