/**
 * Faults of a pgbackrest() source, with the real CLI, one real PostgreSQL cluster archiving into one real pgBackRest
 * repository (test/support/pgbackrest.ts), the repository on a tmpfs of its own so that it can be filled:
 *
 * - every process of an apply killed (SIGKILL, frozen first, as a cgroup kill) during stanza-create, during a full
 *   backup and during an expire; backupctl alone killed during a full backup (pgBackRest's own run then ends); a
 *   stanza-create cut between its two info files: the next apply takes the dead apply's lock over and marks its run
 *   and stages interrupted, pgBackRest's lock of the dead process holds nothing, the cut backup is never listed as
 *   one, the next apply completes what was cut short (a new or resumed full, the stanza, the expirations), nothing
 *   good is lost, and a restore to a time still works;
 * - the repository's disk full: the backup fails naming the cause, the earlier backups stay restorable, and once
 *   space is freed the next apply backs up.
 *
 * The kills wait for pgBackRest itself to be at work (its process, its lock, the backup's folder in the repository),
 * never for a delay. Needs root (the tmpfs; pgBackRest then runs as the cluster's owner): skipped otherwise.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import {
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { stopServer } from "../../src/pitr/cluster.ts";
import { runningAsRoot } from "../../src/pitr/run-as.ts";
import { type BackgroundCli, type CliResult, runCli, spawnCli, waitFor } from "../support/cli.ts";
import { processTree } from "../support/inspect.ts";
import { clusterConfigText, type PgBackRestCluster, startPgBackRestCluster } from "../support/pgbackrest.ts";

const skip = runningAsRoot() ? false : "needs root: the repository is a tmpfs mounted for the test";

let pg: PgBackRestCluster;
let dir: string;
let repository: string;
let mounted = false;
/** A moment after the first full backup, before a later write (the row t2), by the server's clock. */
let between: Date;
let firstFull: string;

const show = (result: CliResult) => `exit ${result.code}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`;

/**
 * The config: the cluster's stanza, its full backups on `full`, under `retention`; one attempt per backup; `bin`: the
 * pgbackrest program (a gate, see {@link gate}).
 */
function writeConfig(full: string, retention: string, bin?: string): void {
  writeFileSync(
    join(dir, "backup.config.ts"),
    `import { defineConfig, pgbackrest } from "backupctl";

export default defineConfig({
  repositories: {},
  projects: {
    ledger: {
      schedule: "@daily",
      retry: { attempts: 1 },
      sources: [pgbackrest({
        stanza: "main",
        ${clusterConfigText(pg)}
        repository: { path: ${JSON.stringify(repository)} },
        schedule: { full: ${JSON.stringify(full)} },${bin ? `\n        bin: ${JSON.stringify(bin)},` : ""}
      })],
      repositories: [],
      retention: ${retention},
    },
  },
});
`,
  );
}

const args = () => ["--config", join(dir, "backup.config.ts"), "--state-dir", join(dir, "state")];

function cli(command: string[]): Promise<CliResult> {
  return runCli([...args(), ...command], { timeoutMs: 240_000 });
}

/**
 * Two minutes from now, for `--now`: with fulls due every minute, a full is due then. pgBackRest dates its backups by
 * the real clock, which is always earlier.
 */
const soon = () => new Date(Date.now() + 120_000).toISOString();

/**
 * A pgbackrest program that stops itself (SIGSTOP) when backupctl runs `command` with it, after saying so in a file:
 * the test then kills the apply with pgBackRest started, at a moment it chose. Other commands run pgbackrest.
 */
function gate(command: string): { bin: string; reached: () => boolean } {
  // In the server's folder: pgBackRest runs as the cluster's user, who must run the gate and write its file.
  const bin = join(pg.server.dir, `pgbackrest-gate-${command}`);
  const reached = join(pg.server.dir, `gate-${command}-reached`);
  writeFileSync(
    bin,
    `#!/bin/sh\nfor last in "$@"; do :; done\nif [ "$last" = ${command} ]; then touch ${reached}; kill -STOP $$; fi\n` +
      'exec pgbackrest "$@"\n',
    { mode: 0o755 },
  );
  return { bin, reached: () => existsSync(reached) };
}

/**
 * Kills the apply and everything it started at once, as a cgroup kill does: frozen first (SIGSTOP), so that none sees
 * another die and cleans up, then SIGKILL until none is left.
 */
async function killEverything(victim: BackgroundCli): Promise<void> {
  const tree = processTree(victim.pid);
  for (const pid of tree) signal(pid, "SIGSTOP");
  await waitFor("the apply's processes to be gone", () => {
    const left = processTree(victim.pid).concat(tree).filter((pid) => existsSync(`/proc/${pid}/stat`));
    for (const pid of left) signal(pid, "SIGKILL");
    return left.length === 0 || left.every((pid) => /\) Z /.test(readFileSync(`/proc/${pid}/stat`, "utf8")));
  });
  assert.equal((await victim.done).signal, "SIGKILL");
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // gone
  }
}

/** The statuses of the audited stages of `type` on the stanza, oldest first (`history --json`). */
async function stanzaStages(type: string): Promise<string[]> {
  const history = await cli(["history", "--json"]);
  assert.equal(history.code, 0, show(history));
  const entries = JSON.parse(history.stdout) as { stages: { type: string; repository: string; status: string }[] }[];
  return entries.flatMap((entry) => entry.stages)
    .filter((stage) => stage.type === type && stage.repository === "pgbackrest:main").map((stage) => stage.status)
    .reverse();
}

/** The labels of the backup folders in the repository (pgBackRest's info lists only the complete ones). */
function backupFolders(): string[] {
  const folder = join(repository, "backup", "main");
  return existsSync(folder) ? readdirSync(folder).filter((name) => /^\d{8}-\d{6}F/.test(name)).sort() : [];
}

/** The rows of `marks` in a restored copy listening in `into` on `port`. */
function marks(into: string, port: string | undefined): string {
  const argv = ["-h", into, "-p", String(port), "-U", "postgres", "-At", "-d", "postgres", "-c"];
  return execFileSync("psql", [...argv, "SELECT string_agg(label, ',' ORDER BY label) FROM marks"]).toString().trim();
}

/** Restores to `target` with the CLI into a new folder, returns the rows of `marks` there, and stops the copy. */
async function restoredMarks(target: string, name: string): Promise<{ result: CliResult; marks: string }> {
  const into = join(pg.server.dir, name);
  const result = await cli(["restore", "ledger", "--to-time", target, "--into-cluster", into]);
  assert.equal(result.code, 0, show(result));
  try {
    return { result, marks: marks(into, /it runs on 127\.0\.0\.1:(\d+)/.exec(result.stdout)?.[1]) };
  } finally {
    await stopServer(into);
  }
}

before(async () => {
  if (skip) return;
  pg = await startPgBackRestCluster({ stanza: "main" });
  try {
    dir = mkdtempSync(join(tmpdir(), "backupctl-pitr-faults-"));
    // The repository on a tmpfs of its own, the cluster's user its owner, mounted before pgBackRest writes to it.
    repository = pg.source.repository.path;
    mkdirSync(repository, { recursive: true });
    const owner = statSync(pg.source.cluster.dataDirectory);
    execFileSync("mount", [
      "-t",
      "tmpfs",
      "-o",
      `size=256m,mode=0750,uid=${owner.uid},gid=${owner.gid}`,
      "tmpfs",
      repository,
    ], { stdio: "pipe" });
    mounted = true;
    writeConfig("0 0 1 1 *", "{ daily: 7 }");
  } catch (error) {
    await pg.stop();
    throw error;
  }
});

after(async () => {
  if (skip) return;
  if (mounted) execFileSync("umount", ["-l", repository]);
  await pg?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("pgbackrest() source: faults", { skip }, () => {
  it("stanza-create killed, or cut between its two info files: the next apply completes the stanza", async () => {
    const gated = gate("stanza-create");
    writeConfig("0 0 1 1 *", "{ daily: 7 }", gated.bin);
    const victim = spawnCli([...args(), "apply"]);
    await waitFor("backupctl to run pgbackrest stanza-create", gated.reached, 120_000);
    await killEverything(victim);
    writeConfig("0 0 1 1 *", "{ daily: 7 }");

    // What a kill between pgBackRest's two writes leaves, made for certain: the archive's info file written, the
    // backups' not (their folder was not writable for that one stanza-create). pgBackRest itself refuses it since.
    const backups = join(repository, "backup", "main");
    const owner = statSync(repository);
    mkdirSync(join(repository, "backup"));
    chownSync(join(repository, "backup"), owner.uid, owner.gid);
    mkdirSync(backups, { mode: 0o755 });
    await assert.rejects(pg.pgbackrest.stanzaCreate(), /backup\.info' for write: \[13\] Permission denied/);
    rmSync(backups, { recursive: true });
    assert.ok(existsSync(join(repository, "archive", "main", "archive.info")));
    await assert.rejects(pg.pgbackrest.stanzaCreate(), /archive\.info exists but backup\.info is missing/);
    const plan = await cli(["plan"]);
    assert.match(plan.stdout, /\+ stanza-create main \(pgBackRest\)/, show(plan));

    const next = await cli(["apply"]);
    assert.equal(next.code, 0, show(next));
    assert.match(next.stdout, /~ recover: took over the stale lock of ledger: .*process gone/, show(next));
    assert.match(next.stdout, /a stanza-create was cut short \(no backup yet\): removed archive\.info/, show(next));
    assert.match(next.stdout, /stanza-create main \(ledger\/main\): done/, show(next));
    assert.match(next.stdout, /\+ backup ledger\/main → stanza main \(full\): \d{8}-\d{6}F, /, show(next));
    const info = await pg.pgbackrest.info();
    assert.equal(info.status.code, 0, info.status.message);
    assert.deepEqual(info.backups.map((b) => b.type), ["full"]);
    firstFull = info.backups[0].label;
    assert.deepEqual(await stanzaStages("init"), ["interrupted", "succeeded"], "the killed one recovered");

    // t1 after the full, then a moment, then t2: a restore to that moment has t1 and not t2.
    await pg.server.psql("CREATE TABLE marks (label text); SELECT pg_sleep(1); INSERT INTO marks VALUES ('t1');");
    between = new Date(Number(await pg.server.psql("SELECT extract(epoch FROM clock_timestamp())")) * 1000);
    await pg.server.psql("SELECT pg_sleep(0.05); INSERT INTO marks VALUES ('t2');");
    await pg.switchWal();
  });

  it("killed during a full backup: the cut backup is not listed, the next apply backs up, a restore still works", async () => {
    // Enough data for the backup to take seconds: the kill lands while pgBackRest copies files.
    await pg.server.psql(
      "CREATE TABLE filler AS SELECT md5(random()::text) || md5(random()::text) AS t FROM generate_series(1, 400000);",
    );
    writeConfig("* * * * *", "{ daily: 7 }");
    const now = soon();
    const victim = spawnCli([...args(), "apply", "--now", now]);
    const copying = await waitFor("pgBackRest to copy the cluster into a new backup folder", () => {
      const cut = backupFolders().find((label) => label !== firstFull);
      return cut !== undefined && existsSync(join(repository, "backup", "main", cut, "pg_data")) ? cut : undefined;
    }, 120_000);
    assert.ok(existsSync(join(pg.configDir, "lock", "main-backup.lock")), "pgBackRest holds its backup lock");
    await killEverything(victim);

    const cut = await pg.pgbackrest.info();
    assert.deepEqual(cut.backups.map((b) => b.label), [firstFull], "the cut backup is not listed as a backup");
    assert.equal(cut.backupRunning, false, "the lock of the dead pgBackRest holds nothing");
    assert.ok(backupFolders().includes(copying), "what was copied stays for pgBackRest to resume or remove");

    const status = await cli(["status", "--now", now]);
    assert.match(status.stdout, /interrupted/, show(status));

    const next = await cli(["apply", "--now", now]);
    assert.equal(next.code, 0, show(next));
    assert.match(next.stdout, /recover: mark run \S+ of ledger interrupted/, show(next));
    assert.match(next.stdout, /\+ backup ledger\/main → stanza main \(full\): \d{8}-\d{6}F, /, show(next));
    const after = await pg.pgbackrest.info();
    assert.deepEqual(after.backups.map((b) => [b.type, b.error]), [["full", false], ["full", false]]);
    assert.equal(after.backups[0].label, firstFull);
    assert.deepEqual(backupFolders(), after.backups.map((b) => b.label), "no folder of the cut backup is left");

    const restored = await restoredMarks(between.toISOString(), "restored-after-kill");
    assert.match(restored.result.stdout, new RegExp(`\\(stanza main, backup ${firstFull}\\)`), show(restored.result));
    assert.equal(restored.marks, "t1");
  });

  it("backupctl alone killed during a full backup (the OOM killer): pgBackRest's own run ends, the next apply repairs", async () => {
    const known = backupFolders();
    const now = soon();
    const victim = spawnCli([...args(), "apply", "--now", now]);
    const copying = await waitFor("pgBackRest to copy the cluster into a new backup folder", () => {
      const cut = backupFolders().find((label) => !known.includes(label));
      return cut !== undefined && existsSync(join(repository, "backup", "main", cut, "pg_data")) ? cut : undefined;
    }, 120_000);
    const pgbackrest = processTree(victim.pid).slice(1);
    assert.ok(pgbackrest.length > 0, "backupctl runs pgBackRest");
    signal(victim.pid, "SIGKILL");
    assert.equal((await victim.done).signal, "SIGKILL");
    // pgBackRest runs in a process group of its own: it goes on, or ends as its output is cut; either way it ends.
    await waitFor("pgBackRest's backup to end", () => pgbackrest.every((pid) => !existsSync(`/proc/${pid}`)), 120_000);

    const next = await cli(["apply", "--now", now]);
    assert.equal(next.code, 0, show(next));
    assert.match(next.stdout, /recover: mark run \S+ of ledger interrupted/, show(next));
    const after = await pg.pgbackrest.info();
    assert.equal(after.backupRunning, false);
    assert.ok(after.backups.every((b) => !b.error));
    assert.deepEqual(backupFolders(), after.backups.map((b) => b.label), "every folder is a listed backup");
    assert.ok(after.backups.some((b) => b.label === copying), `the cut backup ${copying} finished or was resumed`);
    await pg.server.psql("DROP TABLE filler;");
  });

  it("killed during an expire: the next apply expires what the plan showed, and only that", async () => {
    const fulls = (await pg.pgbackrest.info()).backups.map((b) => b.label);
    assert.ok(fulls.length >= 3, fulls.join(" "));
    // { daily: 1 } with yearly fulls keeps 2: the older fulls go.
    const n = fulls.length - 2;
    writeConfig("0 0 1 1 *", "{ daily: 1 }");
    const plan = await cli(["plan"]);
    assert.match(plan.stdout, new RegExp(`- expire ${n} pgBackRest backups of main in stanza main`), show(plan));

    const gated = gate("expire");
    writeConfig("0 0 1 1 *", "{ daily: 1 }", gated.bin);
    const victim = spawnCli([...args(), "apply", "--auto-approve"]);
    await waitFor("backupctl to run pgbackrest expire", gated.reached, 120_000);
    await killEverything(victim);
    writeConfig("0 0 1 1 *", "{ daily: 1 }");
    assert.deepEqual((await pg.pgbackrest.info()).backups.map((b) => b.label), fulls, "nothing expired yet");

    const next = await cli(["apply", "--auto-approve"]);
    assert.equal(next.code, 0, show(next));
    assert.match(next.stdout, /~ recover: took over the stale lock of ledger: .*process gone/, show(next));
    assert.deepEqual((await stanzaStages("forget")).slice(-2), ["interrupted", "succeeded"]);
    assert.match(
      next.stdout,
      new RegExp(`- expire ${n} pgBackRest backups of ledger/main \\(stanza main\\): done`),
      show(next),
    );
    const after = await pg.pgbackrest.info();
    assert.deepEqual(after.backups.map((b) => b.label), fulls.slice(n), show(next));
    assert.deepEqual(backupFolders(), fulls.slice(n), "the expired backups' folders are gone");
    const again = await cli(["plan", "--format", "json"]);
    assert.deepEqual(JSON.parse(again.stdout).actions, [], show(again));
  });

  it("the repository's disk full: the backup fails naming it, earlier backups restore, with space it backs up", async () => {
    const before = (await pg.pgbackrest.info()).backups.map((b) => b.label);
    writeConfig("* * * * *", "{ daily: 1 }");
    const free = Number(execFileSync("df", ["-B1", "--output=avail", repository]).toString().trim().split("\n")[1]);
    const filler = join(repository, "filler");
    execFileSync("fallocate", ["-l", String(free - 256 * 1024), filler]);
    try {
      const full = await cli(["apply", "--now", soon()]);
      assert.equal(full.code, 1, show(full));
      assert.match(full.stdout, /✗ backup ledger\/main → stanza main \(full\) failed: pgbackrest backup exited with/);
      assert.match(
        full.stdout,
        /the pgBackRest repository's disk is full: \S+ has \d+(\.\d+)? \S+ free of /,
        show(full),
      );
      assert.deepEqual((await pg.pgbackrest.info()).backups.map((b) => b.label), before, "no backup was added");

      const restored = await restoredMarks("latest", "restored-disk-full");
      assert.match(restored.result.stdout, new RegExp(`backup ${before.at(-1)}`), show(restored.result));
      assert.equal(restored.marks, "t1,t2");
    } finally {
      rmSync(filler, { force: true });
    }

    const roomy = await cli(["apply", "--now", soon()]);
    assert.equal(roomy.code, 0, show(roomy));
    assert.match(roomy.stdout, /\+ backup ledger\/main → stanza main \(full\): \d{8}-\d{6}F, /, show(roomy));
    const after = await pg.pgbackrest.info();
    assert.deepEqual(after.backups.map((b) => b.label).slice(0, before.length), before);
    assert.equal(after.backups.length, before.length + 1);
  });
});
