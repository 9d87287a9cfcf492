/**
 * The fleet end to end (issue 20, points 3–6): real `watch` processes sharing a PostgreSQL state started by the test,
 * each with its own state folder as if on its own host, and one restic repository. What must hold: 30 projects due
 * in one slot are each backed up exactly once by three runners (counted in restic and in the audit), a project pinned
 * by `runsOn` runs only on the runner with that label; a runner killed with SIGKILL mid-backup (its whole process
 * tree, as a container kill does) is taken over within the lease TTL with no partial snapshot left; a runner paused
 * with SIGSTOP past its lease and resumed has its late write refused by the fence and stores no snapshot; a runner
 * whose config is older than the newest one in the fleet takes no new work.
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type BackgroundCli, runCli, runTool, spawnCli, waitFor } from "../support/cli.ts";
import { processTree } from "../support/inspect.ts";
import { freePort, startPostgres } from "../support/postgres.ts";
import { type FleetProject, writeFleetConfig } from "../support/fleet-config.ts";
import { type StateServer, stateServer, stopStateBackends } from "../support/state-backends.ts";

const password = "fleet-restic-password-1234";
const ttl = "4s";

interface Fleet {
  dir: string;
  /** The state URL of this scenario's own database. */
  url: string;
  database: string;
  config: string;
  repository: string;
}

/** The scenario's config (test/support/fleet-config.ts). */
function writeConfig(path: string, projects: Record<string, FleetProject>, keep = 20, schedule = "0 3 * * *") {
  writeFleetConfig(path, projects, { keep, schedule });
}

/** SIGKILL to a process and everything under it at once, as a container kill does (a child gone already is fine). */
function killTree(pid: number): void {
  for (const member of processTree(pid).reverse()) {
    try {
      process.kill(member, "SIGKILL");
    } catch {
      // ended on its own between the listing and the kill
    }
  }
}

describe("a fleet of watch runners on one PostgreSQL state", () => {
  let pg: StateServer;
  const started: BackgroundCli[] = [];
  const dirs: string[] = [];
  let databases = 0;

  before(async () => {
    pg = await stateServer();
  });
  after(async () => {
    for (const runner of started) killTree(runner.pid);
    await Promise.all(started.map((runner) => runner.done));
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    await stopStateBackends();
  });

  /** A scenario's folder, config file and database of its own. */
  async function newFleet(projects: Record<string, FleetProject>): Promise<Fleet> {
    const dir = mkdtempSync(join(tmpdir(), "backupctl-fleet-"));
    dirs.push(dir);
    const database = `fleet${++databases}`;
    await pg.server.createDatabase(database, pg.user);
    const config = join(dir, "backup.config.ts");
    writeConfig(config, projects);
    return {
      dir,
      database,
      url: `postgresql://${pg.user}:${pg.password}@${pg.server.host}:${pg.server.port}/${database}`,
      config,
      repository: join(dir, "restic-main"),
    };
  }

  /** A runner as on its own host: its own state folder, the shared state URL. */
  function startRunner(
    fleet: Fleet,
    name: string,
    options: { labels?: string; config?: string; now?: string; listen?: number } = {},
  ) {
    const stateDir = join(fleet.dir, `host-${name}`);
    mkdirSync(stateDir, { recursive: true });
    const runner = spawnCli([
      "--config",
      options.config ?? fleet.config,
      "watch",
      "--runner-name",
      name,
      ...(options.labels ? ["--runner-labels", options.labels] : []),
      "--lease-ttl",
      ttl,
      "--max-sleep",
      "1s",
      "--lock-wait",
      "20s",
      "--now",
      options.now ?? "2026-11-02T10:00:00Z",
      ...(options.listen ? ["--listen", `127.0.0.1:${options.listen}`] : []),
    ], {
      env: {
        BACKUPCTL_STATE_URL: fleet.url,
        BACKUPCTL_STATE_DIR: stateDir,
        FLEET_RESTIC_PASSWORD: password,
        BACKUPCTL_LOG_FORMAT: "text",
      },
    });
    started.push(runner);
    return runner;
  }

  /** A query's output; empty while the runners have not made the state's tables yet. */
  const sql = (fleet: Fleet, query: string) =>
    pg.server.psql(query, fleet.database).then((out) => out.trim(), (error: Error) => {
      if (/relation "backupctl\.\w+" does not exist|schema "backupctl" does not exist/.test(error.message)) return "";
      throw error;
    });
  const rows = async (fleet: Fleet, query: string) => (await sql(fleet, query)).split("\n").filter(Boolean);

  /** Waits until `runner` runs a backup stage (and `also` holds); returns the run's id. */
  async function backingUp(fleet: Fleet, runner: string, also: () => boolean = () => true): Promise<string> {
    const running = `SELECT id || ' ' || stage FROM backupctl.runs WHERE runner = '${runner}' AND status = 'running'`;
    const found = await waitFor(`runner ${runner}'s run in its backup stage`, async () => {
      const [id, stage] = (await sql(fleet, running)).split(" ");
      return stage === "backup" && also() ? id : undefined;
    }, 60_000);
    return found;
  }

  /** restic's snapshots per project tag. */
  async function snapshotsPerProject(fleet: Fleet): Promise<Map<string, number>> {
    const listed = await runTool("restic", ["-r", fleet.repository, "snapshots", "--json", "--no-lock"], {
      env: { RESTIC_PASSWORD: password },
    });
    assert.equal(listed.code, 0, listed.stderr);
    const counts = new Map<string, number>();
    for (const snapshot of JSON.parse(listed.stdout) as { tags?: string[] }[]) {
      const project = snapshot.tags?.find((tag) => tag.startsWith("project="))?.slice("project=".length);
      if (project) counts.set(project, (counts.get(project) ?? 0) + 1);
    }
    return counts;
  }

  /** Stops runners with SIGTERM and waits for them. */
  async function stop(...runners: BackgroundCli[]) {
    for (const runner of runners) process.kill(runner.pid, "SIGTERM");
    return await Promise.all(runners.map((runner) => runner.done));
  }

  it("three runners back up 30 projects due in one slot exactly once; a pinned project runs on its runner", async () => {
    const projects: Record<string, FleetProject> = {};
    for (let i = 1; i <= 30; i++) {
      projects[`p${String(i).padStart(2, "0")}`] = { run: `echo project ${i}; sleep 0.2; echo done` };
    }
    projects.pinned = { run: "echo pinned data", runsOn: ["db"] };
    const fleet = await newFleet(projects);
    const runners = [
      startRunner(fleet, "r1"),
      startRunner(fleet, "r2", { labels: "r2,db" }),
      startRunner(fleet, "r3"),
    ];
    await waitFor(
      "31 successful runs",
      async () => Number(await sql(fleet, "SELECT count(*) FROM backupctl.runs WHERE status = 'succeeded'")) === 31,
      240_000,
    );
    // Every runner ticks again (their clocks run on past the slot): nothing is run twice afterwards.
    const beats = await rows(fleet, "SELECT name || ' ' || heartbeat_ms FROM backupctl.runners ORDER BY name");
    await waitFor("two more heartbeats of each runner", async () => {
      const now = await rows(fleet, "SELECT name || ' ' || heartbeat_ms FROM backupctl.runners ORDER BY name");
      return now.every((line, i) => Number(line.split(" ")[1]) > Number(beats[i].split(" ")[1]) + 1500);
    }, 30_000);
    const results = await stop(...runners);
    for (const result of results) assert.equal(result.code, 0, result.stdout + result.stderr);

    const perProject = await rows(
      fleet,
      "SELECT project || ' ' || count(*) FROM backupctl.runs GROUP BY project ORDER BY project",
    );
    assert.equal(perProject.length, 31);
    for (const line of perProject) assert.match(line, / 1$/, `one run per project: ${perProject.join(", ")}`);
    assert.equal(await sql(fleet, "SELECT count(*) FROM backupctl.runs WHERE status <> 'succeeded'"), "0");
    const snapshots = await snapshotsPerProject(fleet);
    assert.equal(snapshots.size, 31);
    for (const [project, count] of snapshots) assert.equal(count, 1, `snapshots of ${project}`);
    const byRunner = await rows(fleet, "SELECT runner FROM backupctl.runs GROUP BY runner ORDER BY runner");
    assert.ok(byRunner.length >= 2, `the work was shared: ${byRunner.join(", ")}`);
    assert.equal(await sql(fleet, "SELECT runner FROM backupctl.runs WHERE project = 'pinned'"), "r2");
    assert.equal(await sql(fleet, "SELECT count(*) FROM backupctl.runs WHERE lease_token IS NULL"), "0");
    assert.equal(await sql(fleet, "SELECT count(*) FROM backupctl.fenced_writes"), "0");
    assert.deepEqual(
      await rows(fleet, "SELECT name || ' ' || (stopped_at IS NOT NULL) FROM backupctl.runners ORDER BY name"),
      ["r1 true", "r2 true", "r3 true"],
    );
  });

  it("a runner killed mid-backup is taken over within the lease TTL, with no partial snapshot left", async () => {
    const fleet = await newFleet({});
    const marker = join(fleet.dir, "first-attempt");
    // The first attempt hangs in its dump; the one after the takeover runs through.
    writeConfig(fleet.config, {
      slow: { run: `if [ ! -e ${marker} ]; then touch ${marker}; sleep 120; fi; echo slow data` },
    });
    const a = startRunner(fleet, "a");
    const runA = await backingUp(fleet, "a", () => existsSync(marker));
    // An apply on another host leaves the project to the runner that holds it.
    const elsewhere = join(fleet.dir, "host-laptop");
    const env = { BACKUPCTL_STATE_URL: fleet.url, BACKUPCTL_STATE_DIR: elsewhere, FLEET_RESTIC_PASSWORD: password };
    const apply = await runCli(["--config", fleet.config, "apply", "--now", "2026-11-02T10:00:00Z"], { env });
    assert.equal(apply.code, 4, apply.stdout + apply.stderr);
    assert.match(apply.stderr, /project slow is leased by runner a, run \S+ \(expires in/);
    killTree(a.pid);
    const killedAt = Date.now();
    await a.done;
    const b = startRunner(fleet, "b", { now: "2026-11-02T10:01:00Z" }); // its clock after a's run began
    await waitFor(
      "runner b's successful run",
      async () =>
        (await sql(fleet, "SELECT count(*) FROM backupctl.runs WHERE runner = 'b' AND status = 'succeeded'")) ===
          "1",
      60_000,
    );
    const tookOver = b.output().match(/took over project:slow from runner a/);
    assert.ok(tookOver, b.output());
    assert.ok(Date.now() - killedAt < 40_000, "taken over within the TTL and a tick, plus the run");
    // From any host, read-only: the lost runner, the live one, who ran the project last.
    const status = await runCli(["--config", fleet.config, "status", "--json", "--now", "2026-11-02T10:05:00Z"], {
      env,
    });
    assert.equal(status.code, 1, `a lost runner makes status exit 1: ${status.stdout}${status.stderr}`);
    const view = JSON.parse(status.stdout) as {
      fleet: { runners: { name: string; state: string }[] };
      projects: { project: string; ran_by?: string }[];
    };
    assert.deepEqual(view.fleet.runners.map((r) => `${r.name} ${r.state}`), ["a lost", "b live"]);
    assert.equal(view.projects.find((p) => p.project === "slow")?.ran_by, "b");
    assert.equal(existsSync(join(elsewhere, "fallback.jsonl")), false);
    const [b1] = await stop(b);
    assert.equal(b1.code, 0, b1.stdout + b1.stderr);
    assert.equal(await sql(fleet, `SELECT status FROM backupctl.runs WHERE id = '${runA}'`), "interrupted");
    const snapshots = await snapshotsPerProject(fleet);
    assert.equal(snapshots.get("slow"), 1, "one snapshot: none from the killed run");
  });

  it("a runner paused past its lease has its late write fenced and stores no snapshot", async () => {
    const fleet = await newFleet({});
    const go = join(fleet.dir, "go");
    writeConfig(fleet.config, { held: { run: `while [ ! -e ${go} ]; do sleep 0.05; done; echo held data` } });
    const a = startRunner(fleet, "a");
    const runA = await backingUp(fleet, "a");
    process.kill(a.pid, "SIGSTOP");
    try {
      const b = startRunner(fleet, "b");
      await waitFor(
        "runner b taking the project over",
        () => /took over project:held from runner a/.test(b.output()),
        60_000,
      ).catch((error: Error) => {
        throw new Error(`${error.message}\n--- runner b\n${b.output()}\n--- runner a\n${a.output()}`);
      });
      writeFileSync(go, "");
      await waitFor(
        "runner b's successful run",
        async () =>
          (await sql(fleet, "SELECT count(*) FROM backupctl.runs WHERE runner = 'b' AND status = 'succeeded'")) === "1",
        60_000,
      );
      process.kill(a.pid, "SIGCONT");
      await waitFor(
        "runner a's late write refused",
        async () => Number(await sql(fleet, "SELECT count(*) FROM backupctl.fenced_writes")) > 0,
        60_000,
      );
      const fenced = await rows(
        fleet,
        "SELECT lease_key || ' ' || via || ' ' || current_holder FROM backupctl.fenced_writes ORDER BY id",
      );
      assert.equal(fenced[0], "project:held live b", fenced.join("\n"));
      const results = await stop(a, b);
      for (const result of results) assert.equal(result.code, 0, result.stdout + result.stderr);
      assert.equal(await sql(fleet, `SELECT status FROM backupctl.runs WHERE id = '${runA}'`), "interrupted");
      assert.equal((await snapshotsPerProject(fleet)).get("held"), 1, "only runner b's snapshot");
      assert.match(a.output(), /taken over/);
    } finally {
      try {
        process.kill(a.pid, "SIGCONT");
      } catch { /* gone */ }
    }
  });

  it("a runner whose config is older than the fleet's newest takes no new work", async () => {
    const fleet = await newFleet({});
    const project = { ticking: { run: "echo ticking data" } };
    writeConfig(fleet.config, project, 20, "* * * * *");
    const newer = join(fleet.dir, "backup.next.config.ts");
    writeConfig(newer, project, 30, "* * * * *"); // a changed policy: another fingerprint
    // Ten seconds before a minute: the first slot is due at once, the next one fires ten seconds later.
    const start = Date.parse("2026-11-02T10:00:50Z");
    const startedAt = Date.now();
    const a = startRunner(fleet, "a", { now: new Date(start).toISOString() });
    await waitFor(
      "runner a's first run",
      async () => (await sql(fleet, "SELECT count(*) FROM backupctl.runs WHERE status = 'succeeded'")) === "1",
      30_000,
    );
    // Runner b, deployed with the newer config, on a clock that agrees with a's.
    const b = startRunner(fleet, "b", { config: newer, now: new Date(start + Date.now() - startedAt).toISOString() });
    await waitFor("runner a holding back", () => /no new work: config drift/.test(a.output()), 30_000);
    await waitFor(
      "the next slot's run",
      async () => (await sql(fleet, "SELECT count(*) FROM backupctl.runs WHERE status = 'succeeded'")) === "2",
      60_000,
    );
    const results = await stop(a, b);
    for (const result of results) assert.equal(result.code, 0, result.stdout + result.stderr);
    const runs = await rows(fleet, "SELECT runner FROM backupctl.runs ORDER BY started_at");
    assert.deepEqual(runs, ["a", "b"], "after b came, only b ran");
    const fingerprints = await rows(fleet, "SELECT DISTINCT config_fingerprint FROM backupctl.runs");
    assert.equal(fingerprints.length, 2);
    assert.match(a.output(), /the newest in the fleet is sha256:/);
  });

  it("a runner that loses the database finishes its stage into the fallback, takes no work, and replays it", async () => {
    const server = await startPostgres();
    try {
      await server.createUser("fleet", password);
      await server.createDatabase("outage", "fleet");
      const dir = mkdtempSync(join(tmpdir(), "backupctl-fleet-"));
      dirs.push(dir);
      const fleet: Fleet = {
        dir,
        database: "outage",
        url: `postgresql://fleet:${password}@${server.host}:${server.port}/outage`,
        config: join(dir, "backup.config.ts"),
        repository: join(dir, "restic-main"),
      };
      const go = join(dir, "go");
      writeConfig(fleet.config, { steady: { run: `while [ ! -e ${go} ]; do sleep 0.05; done; echo steady data` } });
      const query = (text: string) => server.psql(text, "outage").then((out) => out.trim(), () => "");
      const port = await freePort();
      const healthz = async () => {
        const response = await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined);
        return response ? { status: response.status, body: await response.text() } : undefined;
      };
      const a = startRunner(fleet, "a", { listen: port });
      await waitFor(
        "runner a's run in its backup stage",
        async () => (await query("SELECT stage FROM backupctl.runs WHERE status = 'running'")).startsWith("backup"),
        60_000,
      );
      await server.pause();
      writeFileSync(go, "");
      const fallback = join(dir, "host-a", "fallback.jsonl");
      await waitFor("the run's result in the fallback file", () => {
        const text = existsSync(fallback) ? readFileSync(fallback, "utf8") : "";
        return /"op":"finishRun"/.test(text) && /"fence":\{/.test(text);
      }, 60_000).catch((error) => {
        throw new Error(`${error.message}\n${a.output()}`);
      });
      await waitFor(
        "runner a holding back",
        () => /no new work|cannot reach the state database/.test(a.output()),
        30_000,
      );
      const cutOff = await waitFor("/healthz unhealthy", async () => {
        const health = await healthz();
        return health?.status === 503 ? health : undefined;
      }, 30_000);
      assert.match(cutOff.body, /state database/);
      await server.resume();
      await waitFor(
        "the replayed run",
        async () => (await query("SELECT status FROM backupctl.runs")) === "succeeded",
        60_000,
      );
      await waitFor("the fallback file replayed and removed", () => !existsSync(fallback), 30_000);
      await waitFor("/healthz healthy again", async () => (await healthz())?.status === 200, 30_000);
      const [result] = await stop(a);
      assert.equal(result.code, 0, result.stdout + result.stderr);
      assert.match(a.output(), /reachable again/);
      assert.equal(await query("SELECT count(*) FROM backupctl.fenced_writes"), "0");
      assert.equal((await snapshotsPerProject(fleet)).get("steady"), 1);
    } finally {
      await server.stop();
    }
  });
});
