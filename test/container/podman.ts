/**
 * The container for real: the project's unmodified Dockerfile built with podman (from the local bases of
 * scripts/container/bases.ts), and compose.yaml brought up with podman-compose exactly as an operator does it
 * (docker/make-secrets.sh, then `podman-compose up -d`), with its PostgreSQL and SFTP neighbours:
 * a backup lands in the SFTP repository in the first slot; /healthz, /metrics and the image's HEALTHCHECK answer;
 * uid 10001 and a read-only container; no secret in podman inspect, the image's layers, the logs or any argv;
 * `podman stop` during a running backup and a restart on the same volume; a restore run inside the image.
 *
 * Needs root and podman (.ci/run installs it); elsewhere the file says why and skips, loudly. Run it with
 * `deno task test:container`; `deno task test` runs it once, under Deno, beside the two runtimes' suites.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { root } from "../../scripts/runtimes.ts";
import { type ContainerHost, containerHostProblem, prepareContainerHost } from "../../scripts/container/bases.ts";
import { freePort } from "../support/postgres.ts";

const problem = containerHostProblem();
if (problem) {
  console.error(`\n*** test/container/podman.ts is SKIPPED on this machine: ${problem} ***\n`);
}

/** The first run builds the bases and the images: minutes, not the 5 s default of `bun test`. */
const slow = { timeout: 600_000 };
/** What each step measured, printed at the end (the closing note's figures). */
const figures: Record<string, string> = {};
const seconds = (since: number) => `${((Date.now() - since) / 1000).toFixed(1)} s`;

interface Snapshot {
  id: string;
  time: string;
  state: string;
  project: string | null;
}

interface Run {
  status: string;
  started_at: string;
  stages: { type: string; status: string }[];
}

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

describe("the image and compose.yaml in real containers (podman, podman-compose)", { skip: problem ?? false }, () => {
  let host: ContainerHost;
  let work = "";
  const project = `backupctl-test-${process.pid}`;
  const port = { value: 0 };
  const secrets: Record<string, string> = {};
  let bulkCreated = 0;
  let restarted = 0;

  const env = () => ({ ...process.env, ...host.env, BACKUPCTL_PORT: String(port.value) });
  const run = (command: string, args: string[], options: { input?: string; cwd?: string } = {}): Result => {
    const result = spawnSync(command, args, {
      encoding: "utf8",
      env: env(),
      cwd: options.cwd ?? work,
      input: options.input,
      maxBuffer: 256 << 20,
    });
    return { code: result.status, stdout: result.stdout ?? "", stderr: result.stderr ?? "" };
  };
  const must = (command: string, args: string[], options: { input?: string; cwd?: string } = {}): string => {
    const result = run(command, args, options);
    assert.equal(result.code, 0, `${command} ${args.join(" ")}:\n${result.stdout}${result.stderr}`);
    return result.stdout;
  };
  const podman = (...args: string[]) => must("podman", args);
  const compose = (...args: string[]) => must("podman-compose", ["-p", project, ...args]);
  /** The container of a compose service (podman-compose names them PROJECT_SERVICE_1; asked by label, not guessed). */
  const container = (service: string) => {
    const names = podman(
      "ps",
      "-a",
      "--filter",
      `label=io.podman.compose.project=${project}`,
      "--filter",
      `label=com.docker.compose.service=${service}`,
      "--format",
      "{{.Names}}",
    ).trim().split("\n").filter(Boolean);
    assert.equal(names.length, 1, `one container for the service ${service}: ${names.join(", ")}`);
    return names[0];
  };
  const backupctl = (...args: string[]) =>
    run("podman", ["exec", container("backupctl"), "/app/bin/backupctl", ...args]);
  const psql = (database: string, sql: string) =>
    must("podman", ["exec", container("postgres"), "psql", "-U", "backup", "-d", database, "-At", "-c", sql]).trim();
  const get = async (path: string) => {
    const response = await fetch(`http://127.0.0.1:${port.value}${path}`);
    return { status: response.status, body: await response.text() };
  };
  async function waitFor<T>(what: string, check: () => T | undefined | Promise<T | undefined>, ms = 180_000) {
    const deadline = Date.now() + ms;
    let last: unknown;
    while (Date.now() < deadline) {
      try {
        const value = await check();
        if (value !== undefined && value !== false) return value as T;
      } catch (error) {
        last = error;
      }
      await sleep(500);
    }
    throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? `: ${last}` : ""}`);
  }
  /** Every process's argv inside a container, one line each (arguments joined by spaces). */
  const argvs = (name: string) =>
    run("podman", [
      "exec",
      name,
      "sh",
      "-c",
      'for p in /proc/[0-9]*; do tr "\\0" " " < "$p/cmdline" 2>/dev/null; echo; done',
    ]).stdout;
  const snapshots = () => {
    const listed = backupctl("snapshots", "--json");
    assert.equal(listed.code, 0, listed.stdout + listed.stderr);
    return JSON.parse(listed.stdout) as Snapshot[];
  };
  /** A one-off container of the image on the state volume, with no network (reads the state only). */
  const oneOff = (...args: string[]) =>
    run("podman", [
      "run",
      "--rm",
      "--network=none",
      "-v",
      `${project}_state:/var/lib/backupctl`,
      "-v",
      `${join(work, "docker/backup.config.ts")}:/config/backup.config.ts:ro`,
      "-v",
      `${join(work, "docker/secrets/sftp_known_hosts")}:/config/sftp_known_hosts:ro`,
      "backupctl:local",
      ...args,
    ]);
  /** The runs of the state, newest first, read through the running container, or a one-off when it is stopped. */
  const history = () => {
    const running = podman("inspect", "--format", "{{.State.Running}}", container("backupctl")).trim() === "true";
    const listed = running ? backupctl("history", "--json") : oneOff("history", "--json");
    assert.equal(listed.code, 0, listed.stdout + listed.stderr);
    return JSON.parse(listed.stdout) as Run[];
  };
  const resticLocks = () =>
    must("podman", ["exec", container("sftp"), "sh", "-c", "ls -A /home/backup/restic/locks"]).trim();
  const healthcheck = () => run("podman", ["healthcheck", "run", container("backupctl")]);

  before(async () => {
    let started = Date.now();
    host = prepareContainerHost((line) => console.error(`  ${line.slice(0, 200)}`));
    figures["bases (podman settings, debian base, stand-ins)"] = seconds(started);

    // The operator's checkout: what git holds (the build context, compose.yaml, docker/), secrets made in it first,
    // as `sh docker/make-secrets.sh && docker compose up --build` does: the build must not take them into the image.
    work = mkdtempSync(join(tmpdir(), "backupctl-podman-"));
    for (const path of ["Dockerfile", ".dockerignore", "compose.yaml", "package.json", "package-lock.json"]) {
      cpSync(join(root, path), join(work, path));
    }
    for (const path of ["deno.json", "bunfig.toml", "bin", "src", "docker"]) {
      cpSync(join(root, path), join(work, path), { recursive: true });
    }
    rmSync(join(work, "docker/secrets"), { recursive: true, force: true });
    mkdirSync(join(work, "docker/secrets"));
    writeFileSync(join(work, "docker/secrets/README.md"), "kept out of git\n");
    must("sh", ["docker/make-secrets.sh"]);
    for (const name of ["restic_password", "postgres_password"]) {
      secrets[name] = readFileSync(join(work, "docker/secrets", name), "utf8").trim();
    }
    // The private key's base64 body, line by line: any of its lines would betray it.
    secrets.ssh_key = readFileSync(join(work, "docker/secrets/ssh_key"), "utf8").split("\n")
      .filter((line) => line && !line.startsWith("-----")).join("");

    started = Date.now();
    const version = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).version as string;
    const revision = spawnSync("git", ["rev-parse", "HEAD"], { cwd: root, encoding: "utf8" }).stdout.trim() ||
      "unknown";
    podman(
      "build",
      ...host.buildArgs,
      "--build-arg",
      `VERSION=${version}`,
      "--build-arg",
      `REVISION=${revision}`,
      "-t",
      "backupctl:local",
      ".",
    );
    figures["build of the Dockerfile"] = seconds(started);
    started = Date.now();
    podman("build", ...host.buildArgs, "-t", "backupctl-sftp:local", "docker/sftp");
    figures["build of docker/sftp"] = seconds(started);
    port.value = await freePort();
  }, slow);

  after(() => {
    if (!host || !work) return;
    for (const [what, figure] of Object.entries(figures)) console.error(`  ${what}: ${figure}`);
    const logs = run("podman-compose", ["-p", project, "logs"]);
    if (process.env.BACKUPCTL_TEST_VERBOSE) console.error(logs.stdout + logs.stderr);
    run("podman-compose", ["-p", project, "down", "-v", "-t", "5"]);
    rmSync(work, { recursive: true, force: true });
  });

  it("the image: OCI labels, a user 10001, no build tools or npm cache, its size", slow, () => {
    const inspect = JSON.parse(podman("image", "inspect", "backupctl:local"))[0];
    const labels = inspect.Config.Labels as Record<string, string>;
    const version = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).version;
    assert.equal(labels["org.opencontainers.image.version"], version);
    assert.match(labels["org.opencontainers.image.revision"], /^[0-9a-f]{40}$|^unknown$/);
    assert.equal(labels["org.opencontainers.image.title"], "backupctl");
    assert.equal(inspect.Config.User, "10001:10001");
    assert.ok(inspect.Healthcheck?.Test?.join(" ").includes("/healthz"), "--format docker keeps HEALTHCHECK");
    const inside = run("podman", [
      "run",
      "--rm",
      "--network=none",
      "--entrypoint",
      "sh",
      "backupctl:local",
      "-c",
      "for p in npm node gcc cc make g++ git; do command -v $p; done; ls -d /root/.npm /app/.npm 2>/dev/null; " +
      "restic version; pg_dump --version; deno --version | head -1",
    ]);
    const lines = inside.stdout.trim().split("\n");
    assert.deepEqual(lines.filter((line) => line.startsWith("/")), [], "no build tool, no npm cache in the image");
    assert.match(inside.stdout, /restic 0\.\d+/);
    assert.match(inside.stdout, /pg_dump \(PostgreSQL\) 15/);
    assert.match(inside.stdout, /deno 2\.9\.6/);
    // Compiled at build: with no network at all, validate loads the config and every module of backupctl.
    const offline = run("podman", [
      "run",
      "--rm",
      "--network=none",
      "-v",
      `${join(work, "docker/backup.config.ts")}:/config/backup.config.ts:ro`,
      "-v",
      `${join(work, "docker/secrets/sftp_known_hosts")}:/config/sftp_known_hosts:ro`,
      "backupctl:local",
      "validate",
    ]);
    assert.equal(offline.code, 0, offline.stdout + offline.stderr);
    figures["image size"] = `${(inspect.Size / 1e6).toFixed(0)} MB`;
  });

  it(
    "podman-compose up -d: a backup lands in the SFTP repository in the first slot; health and metrics answer",
    slow,
    async () => {
      const started = Date.now();
      compose("up", "-d");
      // /healthz answers as soon as watch listens (200 while nothing is overdue), before the first backup ends.
      const health = await waitFor("/healthz to answer", async () => {
        const answer = await get("/healthz");
        return answer.status === 200 ? answer : undefined;
      });
      assert.match(health.body, /ok|degraded/);
      figures["up to /healthz answering"] = seconds(started);
      const first = await waitFor("the first snapshot", () => {
        const listed = snapshots();
        return listed.length > 0 ? listed : undefined;
      });
      figures["up to the first snapshot"] = seconds(started);
      assert.ok(first.every((snapshot) => snapshot.state === "complete" && snapshot.project === "shop"));
      // docker/init.sql ran as the backup role in shop (the official image's contract).
      assert.equal(
        psql(
          "shop",
          "SELECT (SELECT count(*) FROM customers), (SELECT count(*) FROM products), (SELECT count(*) FROM orders), " +
            "(SELECT count(*) FROM order_items), " +
            "(SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tableowner = 'backup')",
        ),
        "4|4|500|750|4",
      );
      // restic itself, inside the sftp container's view: the repository's files are on its volume.
      assert.match(must("podman", ["exec", container("sftp"), "ls", "/home/backup/restic"]), /snapshots/);
      await waitFor("the image's HEALTHCHECK to pass", () => healthcheck().code === 0 || undefined, 60_000);
      figures["up to healthy (podman healthcheck run)"] = seconds(started);
      assert.match(podman("inspect", "--format", "{{.State.Health.Status}}", container("backupctl")), /healthy/);
      const metrics = await get("/metrics");
      assert.equal(metrics.status, 200);
      assert.match(metrics.body, /backupctl_last_success_timestamp_seconds\{[^}]*project="shop"/);
    },
  );

  it(
    "runs as uid 10001 in a read-only container: it can write its volume (and a tmpfs /tmp), nothing else",
    slow,
    () => {
      const name = container("backupctl");
      assert.equal(must("podman", ["exec", name, "id", "-u"]).trim(), "10001");
      const writes = run("podman", [
        "exec",
        name,
        "sh",
        "-c",
        "for f in /app/x /config/x /etc/x /tmp/x /x /var/lib/backupctl/probe; do " +
        'if touch "$f" 2>/dev/null; then echo "wrote $f"; rm -f "$f"; fi; done',
      ]);
      // /tmp is the tmpfs podman gives a read-only container (memory, gone with the container), not the image.
      assert.equal(writes.stdout.trim(), "wrote /tmp/x\nwrote /var/lib/backupctl/probe");
      assert.match(must("podman", ["exec", name, "cat", "/proc/mounts"]), /^tmpfs \/tmp tmpfs /m);
    },
  );

  it("no secret in podman inspect, the image's layers, the logs or any process's argv", slow, () => {
    const texts: Record<string, string> = {};
    for (const service of ["backupctl", "postgres", "sftp"]) {
      texts[`inspect ${service}`] = podman("inspect", container(service));
      const logs = run("podman", ["logs", container(service)]);
      texts[`logs ${service}`] = logs.stdout + logs.stderr;
      texts[`argv ${service}`] = argvs(container(service));
    }
    texts["inspect image"] = podman("image", "inspect", "backupctl:local");
    const saved = join(work, "image.tar");
    podman("save", "--format", "docker-archive", "-o", saved, "backupctl:local");
    // Layers are tars of plain files: a secret copied in would be there as its bytes.
    texts["image layers"] = readFileSync(saved).toString("latin1");
    rmSync(saved);
    for (const [where, text] of Object.entries(texts)) {
      for (const [name, value] of Object.entries(secrets)) {
        assert.ok(value.length >= 32, `secret ${name} is long enough to search for`);
        assert.ok(!text.includes(value), `${name} appears in ${where}`);
        assert.ok(!text.includes(Buffer.from(value).toString("base64")), `${name} (base64) appears in ${where}`);
      }
    }
    assert.match(texts["logs backupctl"], /shop/, "the logs were read");
  });

  it(
    "podman stop during a running backup: the run ends as documented and is in the history after a restart",
    slow,
    async () => {
      // A dump that takes a while: random rows, so restic cannot deduplicate them away.
      psql(
        "shop",
        "CREATE TABLE bulk AS SELECT g AS id, md5(random()::text) || md5(random()::text) AS a, " +
          "md5(random()::text) || md5(random()::text) AS b FROM generate_series(1, 1000000) g",
      );
      bulkCreated = Date.now();
      const name = container("backupctl");
      // The next minute's slot: wait for its restic backup, looking at every argv meanwhile.
      const seen: string[] = [];
      await waitFor("the next slot's restic backup", () => {
        const text = argvs(name);
        seen.push(text);
        return /restic .*backup/.test(text) || undefined;
      }, 150_000);
      for (const [secret, value] of Object.entries(secrets)) {
        assert.ok(!seen.join("\n").includes(value), `${secret} in an argv during the backup`);
      }
      const stopped = Date.now();
      podman("stop", "-t", "90", name);
      figures["podman stop during a backup"] = seconds(stopped);
      const code = Number(podman("inspect", "--format", "{{.State.ExitCode}}", name).trim());
      // docs/deploy.md: 0 when the stage finished within --grace, 143 when it had to be stopped.
      assert.ok(code === 0 || code === 143, `exit code ${code}`);
      const runs = history();
      assert.ok(runs.length >= 2, `the history holds the runs: ${JSON.stringify(runs)}`);
      assert.ok(["succeeded", "interrupted"].includes(runs[0].status), `the stopped run: ${JSON.stringify(runs[0])}`);
      // Exit 0: the stage that ran finished within --grace (the run is interrupted when stages were left undone).
      const unfinished = runs[0].stages.filter((stage) => stage.status !== "succeeded");
      if (code === 0) assert.deepEqual(unfinished, [], `exit 0: ${JSON.stringify(runs[0])}`);
      else assert.equal(runs[0].status, "interrupted", `exit 143: ${JSON.stringify(runs[0])}`);
      figures["the stopped run"] = `exit ${code}, run ${runs[0].status}, stages ${
        runs[0].stages.map((stage) => `${stage.type} ${stage.status}`).join(", ")
      }`;

      // The same volume again: the history continues; the first run after the restart repairs nothing.
      restarted = Date.now();
      compose("up", "-d", "backupctl");
      const after = await waitFor("a run after the restart to succeed", () => {
        const newer = history().filter((run) => Date.parse(run.started_at) >= restarted - 1000);
        const first = newer.at(-1);
        return first && first.status !== "running" ? { first, all: history() } : undefined;
      }, 200_000);
      assert.equal(after.first.status, "succeeded", JSON.stringify(after.first));
      assert.deepEqual(
        after.first.stages.filter((stage) => stage.type === "recover" || stage.type === "unlock"),
        [],
        "nothing to repair: no partial snapshot to forget, no stale lock to remove",
      );
      assert.ok(after.all.length > runs.length, "the runs before the restart are still there");
    },
  );

  it(
    "stopped between slots: restic and the state list the same snapshots, all complete, no lock left",
    slow,
    async () => {
      await waitFor("a complete snapshot made after the bulk rows", () => {
        const listed = snapshots();
        return listed.some((s) => Date.parse(s.time) > bulkCreated) || undefined;
      }, 200_000);
      // A stop waits for the running stage (if any), so afterwards nothing is half done.
      podman("stop", "-t", "90", container("backupctl"));
      const state = oneOff("snapshots", "--json");
      assert.equal(state.code, 0, state.stdout + state.stderr);
      const listed = JSON.parse(state.stdout) as Snapshot[];
      assert.ok(listed.length >= 3);
      assert.deepEqual(listed.filter((s) => s.state !== "complete"), []);
      const inRepository = must("podman", ["exec", container("sftp"), "ls", "/home/backup/restic/snapshots"])
        .trim().split("\n").sort();
      assert.deepEqual(inRepository, listed.map((s) => s.id).sort(), "restic holds exactly the state's snapshots");
      assert.equal(resticLocks(), "", "no lock left in the repository");
      compose("up", "-d", "backupctl");
      await waitFor("/healthz after the second start", async () => (await get("/healthz")).status === 200 || undefined);
    },
  );

  it("backupctl restore --into-database inside the image restores the demo database row for row", slow, () => {
    const newest = snapshots().filter((s) => s.project === "shop" && s.state === "complete").at(-1);
    assert.ok(newest && Date.parse(newest.time) > bulkCreated, "a snapshot holding the bulk rows");
    must("podman", ["exec", container("postgres"), "createdb", "-U", "backup", "shop_restored"]);
    const restored = run("podman", [
      "exec",
      container("backupctl"),
      "sh",
      "-c",
      `PGPASSWORD_RESTORE=$(cat /run/secrets/postgres_password) /app/bin/backupctl restore shop --snapshot ${newest.id} ` +
      "--into-database --target-db 'postgresql://backup@postgres:5432/shop_restored?passwordEnv=PGPASSWORD_RESTORE'",
    ]);
    assert.equal(restored.code, 0, restored.stdout + restored.stderr);
    const tables = psql(
      "shop",
      "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname='public'",
    );
    assert.ok(tables.split(",").includes("bulk"), tables);
    for (const table of tables.split(",")) {
      const digest =
        `SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') FROM ${table} t`;
      assert.equal(psql("shop_restored", digest), psql("shop", digest), `table ${table}`);
    }
    assert.ok(!restored.stdout.includes(secrets.postgres_password));
  });
});
