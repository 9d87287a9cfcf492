/**
 * Database sources inside containers (`container:`), for real with podman: a PostgreSQL container (the local
 * postgres:15-bookworm stand-in of scripts/container/bases.ts) and a MariaDB one (Debian's mariadb-server on the
 * Debian base, built here and cached), each without a network (`--network none`): nothing reaches them but
 * `podman exec`. backupctl on this host lists the PostgreSQL databases (`databases: "all"`) and dumps them with
 * pg_dump inside the container, dumps the MariaDB database with mariadb-dump inside its container, drills and
 * restores into the PostgreSQL container with pg_restore there; the passwords are in no process's argv (sampled from
 * /proc) and not in `podman inspect` of either container.
 *
 * Needs root and podman like test/container/podman.ts (skipped, loudly, elsewhere). `deno task test:container` runs it.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { type ContainerHost, containerHostProblem, prepareContainerHost } from "../../scripts/container/bases.ts";
import { runCli } from "../support/cli.ts";
import { sampleCommandLines } from "../support/inspect.ts";

const problem = containerHostProblem();
if (problem) console.error(`\n*** test/container/podman-databases.ts is SKIPPED on this machine: ${problem} ***\n`);

const pgPassword = "in-container-pg-secret-3390";
const mariaPassword = "in-container-maria-secret-7214";
const resticPassword = "in-container-restic-secret-1187";
const mariadbImage = "localhost/backupctl-test-mariadb:bookworm";
/** Debian's MariaDB on the Debian base; its data folder made at the first start, listening on the loopback only. */
const mariadbDockerfile = `FROM docker.io/library/debian:bookworm-slim
RUN apt-get update \\
 && apt-get install -y --no-install-recommends mariadb-server mariadb-client \\
 && rm -rf /var/lib/apt/lists/* \\
 && mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
CMD ["sh", "-c", "[ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql >/dev/null; exec mariadbd --user=mysql --bind-address=127.0.0.1 --skip-name-resolve"]
`;

describe("database sources inside containers (podman exec)", { skip: problem ?? false, timeout: 900_000 }, () => {
  let host: ContainerHost;
  let work = "";
  const pg = `backupctl-dbtest-pg-${process.pid}`;
  const maria = `backupctl-dbtest-maria-${process.pid}`;
  const podman = (...args: string[]) => {
    const result = spawnSync("podman", args, {
      encoding: "utf8",
      env: { ...process.env, ...host.env },
      maxBuffer: 64 << 20,
    });
    return { code: result.status, stdout: result.stdout ?? "", stderr: result.stderr ?? "" };
  };
  const must = (...args: string[]) => {
    const result = podman(...args);
    assert.equal(result.code, 0, `podman ${args.join(" ")}:\n${result.stdout}${result.stderr}`);
    return result.stdout;
  };
  const psql = (sql: string, database = "postgres") =>
    must("exec", pg, "psql", "-U", "postgres", "-d", database, "-At", "-v", "ON_ERROR_STOP=1", "-c", sql).trim();
  const mariadb = (sql: string) => must("exec", maria, "mariadb", "--batch", "--skip-column-names", "-e", sql).trim();
  const env = () => ({
    ...host.env,
    PG_PASSWORD: pgPassword,
    MARIA_PASSWORD: mariaPassword,
    RESTIC_PW: resticPassword,
  });
  const cli = (...args: string[]) => runCli(["--config", join(work, "backup.config.ts"), ...args], { env: env() });
  async function until(what: string, ready: () => boolean, ms = 120_000) {
    const deadline = Date.now() + ms;
    while (!ready()) {
      if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
      await sleep(250);
    }
  }

  before(async () => {
    host = prepareContainerHost((line) => console.error(line));
    buildMariadbImage();
    work = mkdtempSync(join(tmpdir(), "backupctl-container-dbs-"));
    // The password from podman's environment (-e NAME): in the container's environment, not in its create command.
    const created = spawnSync(
      "podman",
      ["run", "-d", "--name", pg, "--network", "none", "-e", "POSTGRES_PASSWORD", host.images.postgres],
      { encoding: "utf8", env: { ...process.env, ...host.env, POSTGRES_PASSWORD: pgPassword } },
    );
    assert.equal(created.status, 0, created.stderr);
    must("run", "-d", "--name", maria, "--network", "none", mariadbImage);
    // Over TCP inside the container, as backupctl connects: password logins (scram-sha-256) are ready.
    await until("PostgreSQL in its container", () => podman("exec", pg, "pg_isready", "-h", "127.0.0.1").code === 0);
    await until("MariaDB in its container", () => podman("exec", maria, "mariadb-admin", "ping").code === 0);
    psql("CREATE DATABASE shop");
    psql(
      "CREATE TABLE orders (id int primary key, total numeric); INSERT INTO orders SELECT g, g FROM " +
        "generate_series(1, 2000) g",
      "shop",
    );
    psql("CREATE DATABASE shop_restored");
    mariadb(
      `CREATE USER 'backup'@'127.0.0.1' IDENTIFIED BY '${mariaPassword}'; ` +
        "GRANT ALL PRIVILEGES ON *.* TO 'backup'@'127.0.0.1'; CREATE DATABASE app; " +
        "CREATE TABLE app.users (id int primary key); INSERT INTO app.users VALUES (1), (2), (3);",
    );
    const connection = (container: string) => `container: "${container}", containerRuntime: "podman"`;
    writeFileSync(
      join(work, "backup.config.ts"),
      `import { defineConfig, env, mysql, postgres, restic } from "backupctl";
export default defineConfig({
  repositories: { local: restic({ url: "./repo", password: env("RESTIC_PW") }) },
  projects: { app: { schedule: "0 3 * * *", repositories: ["local"], retention: { daily: 7 },
    sources: [
      postgres({ name: "pg", ${connection(pg)}, host: "127.0.0.1", user: "postgres", password: env("PG_PASSWORD"),
        databases: "all", exclude: ["postgres", "shop_restored"] }),
      mysql({ ${
        connection(maria)
      }, host: "127.0.0.1", user: "backup", password: env("MARIA_PASSWORD"), database: "app" }),
    ],
    verify: { every: "7d", source: "pg-shop", into: postgres({ ${connection(pg)}, host: "127.0.0.1", user: "postgres",
      password: env("PG_PASSWORD"), database: "shop_drill" }), check: "SELECT count(*) FROM orders", expect: { minRows: 2000 } },
  } },
});
`,
    );
  });
  after(() => {
    if (host) podman("rm", "-f", "-t", "0", pg, maria);
    if (work) rmSync(work, { recursive: true, force: true });
  });

  function buildMariadbImage(): void {
    const label = "org.backupctl.test-dockerfile";
    const digest = Buffer.from(mariadbDockerfile).toString("base64url").slice(-40);
    const known = podman("image", "inspect", "--format", `{{index .Labels "${label}"}}`, mariadbImage);
    if (known.code === 0 && known.stdout.trim() === digest) return;
    const context = mkdtempSync(join(tmpdir(), "backupctl-mariadb-image-"));
    try {
      writeFileSync(join(context, "Dockerfile"), mariadbDockerfile);
      must("build", ...host.buildArgs, "--label", `${label}=${digest}`, "-t", mariadbImage, context);
    } finally {
      rmSync(context, { recursive: true, force: true });
    }
  }

  it("plans the PostgreSQL databases listed inside the container", async () => {
    const result = await cli("plan", "--json");
    assert.equal(result.code, 0, result.stderr);
    const plan = JSON.parse(result.stdout) as { actions: { type: string; source?: string; reason: string }[] };
    assert.deepEqual(plan.actions.filter((a) => a.type === "backup").map((a) => `${a.source}: ${a.reason}`), [
      // The project's own sources first, then the databases listed on its servers.
      "app: never backed up",
      "pg-shop: new database, never backed up",
    ]);
  });

  it("backs up and drills through podman exec, no password in any argv or in podman inspect", async () => {
    const inspectedBefore = must("inspect", pg);
    const sampler = sampleCommandLines();
    let seen: string[];
    try {
      const result = await cli("apply", "--auto-approve");
      assert.equal(result.code, 0, result.stdout + result.stderr);
      for (const secret of [pgPassword, mariaPassword]) assert.ok(!(result.stdout + result.stderr).includes(secret));
      const drill = await cli("verify", "app");
      assert.equal(drill.code, 0, drill.stdout + drill.stderr);
      // The check query counted the restored rows, in the scratch database inside the container.
      assert.match(drill.stdout, /2000/);
    } finally {
      seen = sampler.stop().commandLines;
    }
    const execs = seen.filter((line) => line.startsWith("podman exec -i"));
    assert.ok(execs.some((line) => line.includes(` ${pg} pg_dump -Fc -Z0`)), execs.join("\n"));
    assert.ok(execs.some((line) => line.includes("-e PGPASSWORD")), execs.join("\n"));
    assert.ok(execs.some((line) => line.includes(`-e MYSQL_PWD ${maria} sh -c`)), execs.join("\n"));
    for (const secret of [pgPassword, mariaPassword, resticPassword]) {
      assert.deepEqual(seen.filter((line) => line.includes(secret)), [], `a command line holds ${secret}`);
    }
    for (const container of [pg, maria]) {
      const inspected = must("inspect", container);
      assert.ok(!inspected.includes(mariaPassword), `podman inspect ${container} shows the MariaDB password`);
    }
    // The PostgreSQL container was created with its password (POSTGRES_PASSWORD); the execs added nothing to it.
    const count = (text: string) => text.split(pgPassword).length - 1;
    assert.equal(count(must("inspect", pg)), count(inspectedBefore));
  });

  it("restores into the database inside the container with pg_restore there", async () => {
    // The drill dropped its scratch database when it ended: an empty one to restore into.
    psql("DROP DATABASE IF EXISTS shop_drill");
    psql("CREATE DATABASE shop_drill");
    const result = await cli("restore", "app", "--source", "pg-shop", "--into-database");
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.equal(psql("SELECT count(*), sum(total) FROM orders", "shop_drill"), "2000|2001000");
  });

  it("the MariaDB dump came out of its container intact", async () => {
    const dump = await cli("restore", "app", "--source", "app", "--to", join(work, "out"));
    assert.equal(dump.code, 0, dump.stdout + dump.stderr);
    const restored = spawnSync("cat", [join(work, "out", "app.sql")], { encoding: "utf8" }).stdout;
    assert.match(restored, /INSERT INTO `users` VALUES\s*\(1\),\s*\(2\),\s*\(3\)/);
    assert.match(restored, /-- Dump completed/);
  });
});
