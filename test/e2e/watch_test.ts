/**
 * `backupctl watch` as a real process: a `* * * * *` schedule with the clock started a few seconds before a minute
 * boundary (`--now`; it then runs at normal speed), so a slot fires within seconds; `--max-sleep 2s`; /healthz and
 * /metrics on a free loopback port. What must hold: due backups run at start and at each slot, /healthz and /metrics
 * agree with the state database and restic and say nothing secret; an edit of a file the config imports is
 * reloaded (a child process with an empty module cache); an invalid edit is reported once (log, /healthz, a
 * config.invalid notification) while the previous config keeps backing up; SIGTERM lets the running stage finish
 * within --grace (exit 0) or stops it after (exit 143), the run recorded interrupted, no lock and no child left.
 */
import assert from "node:assert/strict";
import { randomBytes, randomInt } from "node:crypto";
import { existsSync, readdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { processesWith } from "../support/inspect.ts";
import { type BackgroundCli, runCli, runTool, spawnCli, waitFor } from "../support/cli.ts";
import { type DemoDir, makeDemo } from "../support/demo.ts";
import { type HttpReceiver, startHttpReceiver } from "../support/receivers.ts";

const header = `import { command, defineConfig, env, files, restic, sqlite, webhook } from "backupctl";\n`;
const repositories = `{ local: restic({ url: ".backupctl/restic-demo", password: env("DEMO_RESTIC_PASSWORD") }) }`;
const uploads = `files({ name: "uploads", paths: ["demo/uploads"], exclude: ["*.tmp"] })`;
const project = (sources: string, retention = "{ last: 20 }") =>
  `{ schedule: "* * * * *", sources: [${sources}], repositories: ["local"], retention: ${retention}, notify: NOTIFY }`;

/** A config with one repository, the given projects, and (with `hook`) a webhook carrying a secret header. */
function configText(projects: string, hook?: string): string {
  const notifiers = hook ? `{ hook: webhook({ url: "${hook}", headers: { "X-Token": env("HOOK_TOKEN") } }) }` : "{}";
  return `${header}export default defineConfig({
  timezone: "UTC",
  repositories: ${repositories},
  notifiers: ${notifiers},
  projects: ${projects.replaceAll("NOTIFY", hook ? `["hook"]` : "[]")},
});
`;
}

/** A metric sample: `name{labels} value`. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Prometheus text format 0.0.4: `# HELP`, `# TYPE` and sample lines; anything else is an error. */
function parseMetrics(text: string): { samples: Sample[]; types: Map<string, string>; help: Map<string, string> } {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  const help = new Map<string, string>();
  const name = "[a-zA-Z_:][a-zA-Z0-9_:]*";
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    let m = new RegExp(`^# HELP (${name}) (.*)$`).exec(line);
    if (m) {
      help.set(m[1], m[2]);
      continue;
    }
    m = new RegExp(`^# TYPE (${name}) (counter|gauge|histogram|summary|untyped)$`).exec(line);
    if (m) {
      types.set(m[1], m[2]);
      continue;
    }
    m = new RegExp(`^(${name})(?:\\{(.*)\\})? (\\S+)(?: -?\\d+)?$`).exec(line);
    assert.ok(m, `not a metrics line: ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    const labelText = m[2] ?? "";
    const label = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/y;
    while (label.lastIndex < labelText.length) {
      const l = label.exec(labelText);
      assert.ok(l, `bad labels in ${JSON.stringify(line)}`);
      labels[l[1]] = l[2].replace(/\\(.)/g, (_all, c: string) => (c === "n" ? "\n" : c));
    }
    const value = m[3] === "+Inf" ? Infinity : m[3] === "-Inf" ? -Infinity : Number(m[3]);
    assert.ok(m[3] === "NaN" || !Number.isNaN(value), `bad value in ${JSON.stringify(line)}`);
    assert.ok(types.has(m[1]), `${m[1]} has no # TYPE line before its samples`);
    samples.push({ name: m[1], labels, value });
  }
  return { samples, types, help };
}

/** The one sample of `name` with these labels (and any others: each per-project series also has `runner`). */
function sample(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  const found = samples.filter((s) =>
    s.name === name && Object.entries(labels).every(([label, value]) => s.labels[label] === value)
  );
  assert.equal(found.length, 1, `${name}${JSON.stringify(labels)} in ${JSON.stringify(samples)}`);
  return found[0].value;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  return typeof address === "object" && address ? address.port : 0;
}

interface RunRow {
  id: string;
  project: string;
  status: string;
  started_at: string;
  error: string | null;
}

interface Watch {
  cli: BackgroundCli;
  url: string;
  /** Waits until `pattern` (global) matched `count` times in the output, after `from` (an offset); returns the matches. */
  waitLog(pattern: RegExp, options?: { count?: number; from?: number; timeoutMs?: number }): Promise<RegExpExecArray[]>;
  get(path: string): Promise<{ status: number; type: string; body: string }>;
  /** SIGTERM, then the outcome. */
  stop(): Promise<Awaited<BackgroundCli["done"]>>;
}

describe("backupctl watch", () => {
  const started = new Set<BackgroundCli>();
  const cleanups: (() => unknown)[] = [];
  const password = (demo: DemoDir) => demo.env.DEMO_RESTIC_PASSWORD;
  const token = `hook-token-${randomBytes(6).toString("hex")}`;

  after(async () => {
    for (const cli of started) {
      try {
        process.kill(cli.pid, "SIGKILL");
      } catch {
        // exited
      }
      await cli.done;
    }
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  function newDemo(): DemoDir {
    const demo = makeDemo();
    cleanups.push(() => demo.cleanup());
    return demo;
  }
  async function newReceiver(): Promise<HttpReceiver> {
    const receiver = await startHttpReceiver();
    cleanups.push(() => receiver.stop());
    return receiver;
  }
  const stateDir = (demo: DemoDir) => join(demo.dir, ".backupctl");
  const locks = (demo: DemoDir) =>
    existsSync(join(stateDir(demo), "locks")) ? readdirSync(join(stateDir(demo), "locks")) : [];
  const sql = async <T>(demo: DemoDir, query: string): Promise<T[]> => {
    const result = await runTool("sqlite3", ["-json", join(stateDir(demo), "state.db"), query]);
    assert.equal(result.code, 0, result.stderr);
    return result.stdout.trim() ? JSON.parse(result.stdout) as T[] : [];
  };
  const runs = (demo: DemoDir, project: string) =>
    sql<RunRow>(demo, `SELECT * FROM runs WHERE project = '${project}' ORDER BY started_at`);
  const snapshots = async (demo: DemoDir, project: string) => {
    const result = await runTool("restic", ["--no-cache", "snapshots", "--json", "--tag", `project=${project}`], {
      env: { RESTIC_REPOSITORY: demo.repository, RESTIC_PASSWORD: password(demo) },
    });
    assert.equal(result.code, 0, result.stderr);
    return JSON.parse(result.stdout) as { id: string; time: string; tags: string[] }[];
  };

  async function startWatch(demo: DemoDir, now: string, extra: string[] = []): Promise<Watch> {
    const port = await freePort();
    const cli = spawnCli(
      [
        "--config",
        demo.config,
        "--log-format",
        "text",
        "watch",
        "--now",
        now,
        "--max-sleep",
        "2s",
        "--listen",
        `127.0.0.1:${port}`,
        ...extra,
      ],
      { env: { ...demo.env, HOOK_TOKEN: token } },
    );
    started.add(cli);
    let exited = false;
    cli.done.then(() => (exited = true));
    const url = `http://127.0.0.1:${port}`;
    const watch: Watch = {
      cli,
      url,
      waitLog: (pattern, { count = 1, from = 0, timeoutMs = 60_000 } = {}) =>
        waitFor(`${count}× ${pattern} in the output of watch`, () => {
          const text = cli.output();
          const matches = [...text.matchAll(pattern)].filter((m) => m.index! >= from) as RegExpExecArray[];
          if (matches.length >= count) return matches;
          if (exited) throw new Error(`watch exited before ${pattern} appeared:\n${text}`);
          return undefined;
        }, timeoutMs).catch((error: Error) => {
          throw new Error(`${error.message}\n--- output ---\n${cli.output()}`);
        }),
      get: async (path) => {
        const response = await fetch(`${url}${path}`);
        return {
          status: response.status,
          type: response.headers.get("content-type") ?? "",
          body: await response.text(),
        };
      },
      stop: async () => {
        process.kill(cli.pid, "SIGTERM");
        const result = await cli.done;
        started.delete(cli);
        return result;
      },
    };
    await watch.waitLog(
      new RegExp(`watch: serving the dashboard, /healthz and /metrics on ${url.replaceAll(".", "\\.")}\\n`, "g"),
    );
    return watch;
  }

  it("backs up at start and at the next slot; /healthz and /metrics agree with the state and hide secrets", async () => {
    const demo = newDemo();
    const receiver = await newReceiver();
    writeFileSync(demo.config, configText(`{ app: ${project(uploads)} }`, `${receiver.url}/hook`));
    // 15 s before the slot: on a loaded machine the first backup (init included) must still start before it.
    const watch = await startWatch(demo, "2026-11-01T10:00:45Z");
    await watch.waitLog(/watch: started \(config .*, 1 projects, concurrency 1\)/g);
    const done = await watch.waitLog(/^\S+ Run (\S+) succeeded/gm, { count: 2 });
    await watch.waitLog(/watch: \d+ succeeded, 0 failed/g, { count: 2 });

    const rows = await runs(demo, "app");
    assert.deepEqual(rows.map((r) => [r.id, r.status]), done.map((m) => [m[1], "succeeded"]));
    assert.ok(Date.parse(rows[0].started_at) < Date.parse("2026-11-01T10:01:00Z"), "the first run is the one at start");
    assert.ok(Date.parse(rows[1].started_at) >= Date.parse("2026-11-01T10:01:00Z"), "the second is the 10:01 slot");
    assert.equal((await snapshots(demo, "app")).length, 2);

    const healthz = await watch.get("/healthz");
    assert.equal(healthz.status, 200, healthz.body);
    assert.match(healthz.type, /^application\/json/);
    const health = JSON.parse(healthz.body);
    assert.equal(health.status, "ok", healthz.body);
    assert.deepEqual(health.reasons, []);
    assert.ok(health.last_tick, healthz.body);
    assert.ok(Date.parse(health.last_tick) >= Date.parse(rows[1].started_at) - 1000, healthz.body);
    assert.equal(health.config.rejected, null);
    assert.deepEqual(health.overdue, []);

    const metrics = await watch.get("/metrics");
    assert.equal(metrics.status, 200);
    assert.match(metrics.type, /^text\/plain/);
    const { samples, types, help } = parseMetrics(metrics.body);
    assert.equal(types.get("backupctl_runs_total"), "counter");
    assert.ok(help.get("backupctl_snapshots"));
    const succeeded = rows.filter((r) => r.status === "succeeded").length;
    assert.equal(sample(samples, "backupctl_runs_total", { project: "app", status: "succeeded" }), succeeded);
    assert.equal(sample(samples, "backupctl_runs_total", { project: "app", status: "failed" }), 0);
    assert.equal(sample(samples, "backupctl_runs_total", { project: "app", status: "interrupted" }), 0);
    const [inventory] = await sql<{ n: number }>(
      demo,
      `SELECT count(*) AS n FROM snapshots WHERE project = 'app' AND repository = 'local'`,
    );
    assert.equal(inventory.n, 2);
    assert.equal(sample(samples, "backupctl_snapshots", { project: "app", repository: "local" }), inventory.n);
    const lastSuccess = sample(samples, "backupctl_last_success_timestamp_seconds", { project: "app" });
    assert.ok(
      Math.abs(lastSuccess - Date.parse(rows[1].started_at) / 1000) < 1,
      `${lastSuccess} vs ${rows[1].started_at}`,
    );
    assert.equal(sample(samples, "backupctl_overdue", { project: "app" }), 0);
    assert.equal(sample(samples, "backupctl_config_rejected"), 0);
    assert.equal(sample(samples, "backupctl_state_db_writable"), 1);
    // Every per-project series names the runner that exports it (by default the host); alone, it is never held back.
    assert.ok(samples.filter((s) => "project" in s.labels).every((s) => s.labels.runner), metrics.body);
    assert.equal(sample(samples, "backupctl_runner_connected"), 1);
    assert.equal(sample(samples, "backupctl_runner_held_back"), 0);
    const lastTick = sample(samples, "backupctl_watch_last_tick_timestamp_seconds");
    assert.ok(lastTick >= Date.parse(rows[1].started_at) / 1000 - 1, String(lastTick));

    for (const secret of [password(demo), token]) {
      assert.ok(!healthz.body.includes(secret), "no secret in /healthz");
      assert.ok(!metrics.body.includes(secret), "no secret in /metrics");
      assert.ok(!watch.cli.output().includes(secret), "no secret in the log");
    }
    assert.equal((await watch.get("/nothing")).status, 404);

    const stopped = await watch.stop();
    assert.equal(stopped.code, 0, stopped.stdout + stopped.stderr);
    assert.match(stopped.stdout, /watch: stopped by SIGTERM\n$/);
    assert.deepEqual(locks(demo), []);
  });

  it("reloads when a file the config imports is edited, and backs up the project it adds", async () => {
    const demo = newDemo();
    writeFileSync(
      demo.config,
      `import { defineConfig, env, restic } from "backupctl";
import { projects } from "./projects.ts";
export default defineConfig({ timezone: "UTC", repositories: ${repositories}, projects });
`,
    );
    const projectsFile = (entries: string) =>
      writeFileSync(
        join(demo.dir, "projects.ts"),
        `${header}export const projects = { ${entries.replaceAll("NOTIFY", "[]")} };\n`,
      );
    projectsFile(`app: ${project(uploads)}`);
    const watch = await startWatch(demo, "2026-11-01T10:00:52Z");
    await watch.waitLog(/watch: started \(config .*, 1 projects/g);
    await watch.waitLog(/watch: \d+ succeeded, 0 failed/g);
    assert.deepEqual((await runs(demo, "app")).map((r) => r.status), ["succeeded"]);

    const edited = watch.cli.output().length;
    projectsFile(`app: ${project(uploads)}, second: ${project(`sqlite({ path: "demo/app.db" })`)}`);
    await watch.waitLog(/watch: reloaded the config \(sha256:[0-9a-f]{12}\)/g, { from: edited });
    const [run] = await watch.waitLog(/Run (\S+) \(project second\)/g, { from: edited });
    await watch.waitLog(new RegExp(`Run ${run[1]} succeeded`, "g"));
    assert.deepEqual((await runs(demo, "second")).map((r) => [r.id, r.status]), [[run[1], "succeeded"]]);
    {
      // Seen once in CI (Bun, beside the Deno suite): two snapshots of "second" after one run. Everything that can
      // tell why goes into the message.
      const found = await snapshots(demo, "second");
      const stages = await sql(demo, `SELECT * FROM stages WHERE project = 'second' ORDER BY id`);
      assert.equal(
        found.length,
        1,
        `${JSON.stringify(found)}\n${JSON.stringify(stages)}\n--- watch ---\n${watch.cli.output()}`,
      );
    }
    const health = JSON.parse((await watch.get("/healthz")).body);
    assert.ok(Date.parse(health.config.loaded_at) > Date.parse("2026-11-01T10:00:52Z"), JSON.stringify(health));

    const stopped = await watch.stop();
    assert.equal(stopped.code, 0, stopped.stdout + stopped.stderr);
  });

  it("rejects an invalid edit once (log, /healthz, config.invalid), keeps backing up, and reloads the fix", async () => {
    const demo = newDemo();
    const receiver = await newReceiver();
    const write = (retention: string) =>
      writeFileSync(demo.config, configText(`{ app: ${project(uploads, retention)} }`, `${receiver.url}/hook`));
    write("{ last: 20 }");
    const watch = await startWatch(demo, "2026-11-01T10:00:50Z");
    await watch.waitLog(/watch: \d+ succeeded, 0 failed/g);

    const edited = watch.cli.output().length;
    write(`{ last: "twenty" }`);
    const [rejected] = await watch.waitLog(
      /error: the edited config was rejected, the previous one keeps running:\n {2}(projects\.app\.retention\.last: [^\n]+)\n/g,
      { from: edited },
    );
    const healthz = await watch.get("/healthz");
    assert.equal(healthz.status, 200, healthz.body);
    const health = JSON.parse(healthz.body);
    assert.equal(health.status, "degraded", healthz.body);
    assert.deepEqual(health.reasons, ["the edited config was rejected; the previous one is running"]);
    assert.deepEqual(health.config.rejected.problems, [rejected[1]]);
    assert.equal(sample(parseMetrics((await watch.get("/metrics")).body).samples, "backupctl_config_rejected"), 1);

    await receiver.waitFor(1, 15_000);
    const notification = JSON.parse(receiver.requests[0].body);
    assert.equal(notification.event, "config.invalid");
    assert.equal(notification.file, demo.config);
    assert.deepEqual(notification.problems, [rejected[1]]);
    assert.equal(receiver.requests[0].headers["x-token"], token);

    // The old config goes on: the next slot backs up (with `last: 20`, as before).
    const [next] = await watch.waitLog(/Run (\S+) \(project app\)/g, { from: rejected.index, timeoutMs: 90_000 });
    await watch.waitLog(new RegExp(`Run ${next[1]} succeeded`, "g"));
    const tickAfterRun = JSON.parse((await watch.get("/healthz")).body).last_tick;
    await waitFor("two more ticks", async () => {
      const health = JSON.parse((await watch.get("/healthz")).body);
      return Date.parse(health.last_tick) >= Date.parse(tickAfterRun) + 3000 && health;
    }, 20_000);
    assert.equal(receiver.requests.length, 1, "notified once for this content");
    assert.doesNotMatch(
      watch.cli.output().slice(rejected.index! + rejected[0].length),
      /the edited config was rejected/,
    );

    const fixed = watch.cli.output().length;
    write("{ last: 30 }");
    await watch.waitLog(/watch: reloaded the config \(sha256:[0-9a-f]{12}\)/g, { from: fixed });
    const healed = JSON.parse((await watch.get("/healthz")).body);
    assert.equal(healed.status, "ok", JSON.stringify(healed));
    assert.equal(healed.config.rejected, null);
    assert.deepEqual(
      receiver.requests.map((r) => JSON.parse(r.body).event),
      ["config.invalid"],
      "nothing else was sent",
    );
    for (const secret of [password(demo), token]) assert.ok(!receiver.requests[0].body.includes(secret));

    const stopped = await watch.stop();
    assert.equal(stopped.code, 0, stopped.stdout + stopped.stderr);
  });

  it("SIGTERM while a stage runs: the stage finishes within --grace, the run is interrupted, exit 0", async () => {
    const demo = newDemo();
    const startedFile = join(demo.dir, "dump-started");
    const marker = `watch-grace-${randomBytes(4).toString("hex")}`;
    writeFileSync(
      demo.config,
      configText(
        `{ slow: ${
          project(
            `command({ name: "dump", filename: "dump.txt", run: "touch ${startedFile}; sleep 3; echo ${marker}" })`,
          )
        } }`,
      ),
    );
    const watch = await startWatch(demo, "2026-11-01T10:00:10Z");
    const [run] = await watch.waitLog(/Run (\S+) \(project slow\)/g);
    await waitFor("the dump to start", () => existsSync(startedFile));
    const signalled = Date.now();
    const result = await watch.stop();
    const ms = Date.now() - signalled;
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.ok(ms > 1000 && ms < 20_000, `exited ${ms} ms after the signal`);
    assert.match(result.stderr, /SIGTERM: stopping — no new work starts; a running stage may finish within 60s/);
    assert.doesNotMatch(result.stderr, /grace period is over/);
    assert.match(result.stdout, /\+ backup slow\/dump → local: snapshot [0-9a-f]{8}/, "the stage completed");
    assert.match(result.stdout, new RegExp(`Run ${run[1]} interrupted by SIGTERM\\n`));
    assert.match(result.stdout, /watch: stopped by SIGTERM\n$/);
    const [row] = await sql<RunRow>(demo, `SELECT * FROM runs WHERE id = '${run[1]}'`);
    assert.equal(row.status, "interrupted");
    assert.match(row.error!, /^interrupted by SIGTERM/);
    const stages = await sql<{ status: string }>(
      demo,
      `SELECT status FROM stages WHERE run_id = '${run[1]}' AND type = 'backup'`,
    );
    assert.deepEqual(stages.map((s) => s.status), ["succeeded"]);
    assert.deepEqual(locks(demo), []);
    assert.deepEqual(processesWith(marker), []);
  });

  it("SIGTERM with a stage longer than --grace: the stage is stopped, exit 143, no child left", async () => {
    const demo = newDemo();
    const startedFile = join(demo.dir, "dump-started");
    // The sleep's own command line carries the unique duration (and restic's the file name): a leftover is found.
    const duration = `60.${randomInt(100_000, 999_999)}`;
    writeFileSync(
      demo.config,
      configText(
        `{ slow: ${
          project(
            `command({ name: "dump", filename: "${duration}.txt", run: "touch ${startedFile}; sleep ${duration}" })`,
          )
        } }`,
      ),
    );
    const watch = await startWatch(demo, "2026-11-01T10:00:10Z", ["--grace", "1s"]);
    const [run] = await watch.waitLog(/Run (\S+) \(project slow\)/g);
    await waitFor("the dump to start", () => existsSync(startedFile) && processesWith(`sleep ${duration}`).length > 0);
    const signalled = Date.now();
    const result = await watch.stop();
    const ms = Date.now() - signalled;
    assert.equal(result.code, 143, result.stdout + result.stderr);
    assert.ok(ms >= 900 && ms < 12_000, `exited ${ms} ms after the signal`);
    assert.match(result.stderr, /SIGTERM: the grace period is over; stopping the running stage/);
    assert.match(result.stdout, new RegExp(`Run ${run[1]} interrupted by SIGTERM\\n`));
    assert.match(result.stdout, /watch: stopped by SIGTERM\n$/);
    const [row] = await sql<RunRow>(demo, `SELECT * FROM runs WHERE id = '${run[1]}'`);
    assert.equal(row.status, "interrupted");
    const stages = await sql<{ status: string }>(
      demo,
      `SELECT status FROM stages WHERE run_id = '${run[1]}' AND type = 'backup'`,
    );
    assert.deepEqual(stages.map((s) => s.status), ["interrupted"]);
    assert.deepEqual(locks(demo), []);
    assert.deepEqual(processesWith(`sleep ${duration}`), [], "the dump (bash and its sleep) was stopped");
    assert.deepEqual(processesWith(`--stdin-filename ${duration}.txt`, demo.dir), [], "restic was stopped");
  });

  it("an invalid config at start: exit 3 with the problem, nothing started", async () => {
    const demo = newDemo();
    writeFileSync(demo.config, configText(`{ app: ${project(uploads, `{ last: "twenty" }`)} }`));
    const port = await freePort();
    const result = await runCli(
      ["--config", demo.config, "--log-format", "text", "watch", "--max-sleep", "2s", "--listen", `127.0.0.1:${port}`],
      { env: demo.env, timeoutMs: 60_000 },
    );
    assert.equal(result.code, 3, result.stdout + result.stderr);
    assert.match(result.stderr, new RegExp(`invalid configuration ${demo.config.replaceAll(".", "\\.")}`));
    assert.match(result.stderr, /projects\.app\.retention\.last: expected a number of snapshots/);
    assert.doesNotMatch(result.stdout, /watch: started/);
    assert.ok(!existsSync(join(stateDir(demo), "state.db")), "no state was opened");
  });
});
