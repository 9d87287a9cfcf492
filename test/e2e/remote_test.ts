/**
 * End to end against remote restic backends started for the test on loopback: OpenSSH `sshd` as an SFTP target
 * (restic's `-o sftp.command=…` for the random port and the test's key) and `rclone serve restic` as a REST target
 * with HTTP basic auth, whose URL (with the credentials) reaches backupctl only as `env("REST_URL")`.
 * The real CLI, real restic and real sqlite3; a missing sshd or rclone fails these tests, naming the Debian package.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type CliResult, runCli, runTool } from "../support/cli.ts";
import { type DemoDir, makeDemo } from "../support/demo.ts";
import { type RestServer, startRestServer } from "../support/rclone.ts";
import { requireProgram, type SftpServer, startSftp } from "../support/sshd.ts";
import { filesUnder, sampleCommandLines } from "../support/inspect.ts";

const day1 = "2026-11-21T10:00:00Z";
const day2 = "2026-11-22T10:00:00Z";
const day3 = "2026-11-23T10:00:00Z";

interface PlanJson {
  actions: { type: string; source?: string; repository: string; reason: string }[];
  summary: Record<string, number>;
}

/** The real CLI with a hard time limit: a hung apply fails instead of hanging. */
const runCliWithin = (args: string[], env: Record<string, string | undefined>, timeoutMs = 120_000) =>
  runCli(args, { env, timeoutMs });

/** Writes the demo's project (SQLite database + files) against one repository given as `restic({ … })` source text. */
function writeConfig(demo: DemoDir, repository: string, resticCall: string): void {
  writeFileSync(
    demo.config,
    `import { defineConfig, env, files, restic, sqlite } from "backupctl";

export default defineConfig({
  timezone: "UTC",
  repositories: {
    ${repository}: ${resticCall},
  },
  projects: {
    demo: {
      schedule: "0 3 * * *",
      sources: [
        sqlite({ path: "demo/app.db" }),
        files({ name: "uploads", paths: ["demo/uploads"], exclude: ["*.tmp"] }),
      ],
      repositories: [${JSON.stringify(repository)}],
      retention: { last: 10, daily: 7 },
    },
  },
});
`,
  );
}

function freshDump(database: string): Promise<CliResult> {
  return runTool("sqlite3", [database, ".dump"]);
}

describe("remote repository over SFTP (OpenSSH sshd on loopback)", () => {
  let sftp: SftpServer | undefined;
  let demo: DemoDir | undefined;
  let url = "";

  const server = () => {
    assert.ok(sftp, "sshd is not running (see the failure of the before hook)");
    return sftp;
  };
  const configure = () =>
    writeConfig(
      demo!,
      "sftp",
      `restic({ url: ${JSON.stringify(url)}, password: env("DEMO_RESTIC_PASSWORD"), options: { "sftp.command": ${
        JSON.stringify(server().sftpCommand)
      } } })`,
    );
  const cli = (args: string[]) => runCliWithin(["--config", demo!.config, ...args], demo!.env);
  const restic = (args: string[]) =>
    runTool("restic", ["--no-cache", "-o", `sftp.command=${server().sftpCommand}`, ...args], {
      env: { RESTIC_REPOSITORY: url, RESTIC_PASSWORD: demo!.env.DEMO_RESTIC_PASSWORD },
    });

  before(async () => {
    requireProgram("restic", "restic");
    requireProgram("sqlite3", "sqlite3");
    sftp = await startSftp();
    demo = makeDemo();
    url = `sftp:root@127.0.0.1:${sftp.root}/repo`;
    configure();
  });
  after(async () => {
    try {
      await sftp?.stop();
    } finally {
      demo?.cleanup();
    }
  });

  it("plan shows the repository to initialize and both sources to back up", async () => {
    const result = await cli(["plan", "--now", day1, "--format", "json"]);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    const plan = JSON.parse(result.stdout) as PlanJson;
    assert.deepEqual(plan.actions.map((a) => [a.type, a.source ?? null, a.repository]), [
      ["init", null, "sftp"],
      ["backup", "app", "sftp"],
      ["backup", "uploads", "sftp"],
    ]);
    const text = await cli(["plan", "--now", day1]);
    assert.match(text.stdout, /\+ init sftp/);
    assert.match(text.stdout, /Plan: 2 to back up, 0 to copy, 1 to initialize/);
  });

  it("apply initializes the repository over SFTP and backs up both sources", async () => {
    const result = await cli(["apply", "--now", day1]);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.match(result.stdout, /\+ init sftp: created \(sftp:root@127\.0\.0\.1:\/.*\/repo\)/);
    assert.match(result.stdout, /\+ backup demo\/app → sftp: snapshot [0-9a-f]{8}/);
    assert.match(result.stdout, /\+ backup demo\/uploads → sftp: snapshot [0-9a-f]{8}/);
    assert.match(result.stdout, /Apply complete: 3 succeeded, 0 failed\./);
  });

  it("restic itself sees both snapshots through the same sftp command", async () => {
    const listed = await restic(["snapshots", "--json"]);
    assert.equal(listed.code, 0, listed.stderr);
    const snapshots = JSON.parse(listed.stdout) as { tags: string[] }[];
    assert.deepEqual(snapshots.map((s) => s.tags.find((t) => t.startsWith("source="))).sort(), [
      "source=app",
      "source=uploads",
    ]);
    assert.ok(snapshots.every((s) => s.tags.includes("backupctl") && s.tags.includes("project=demo")));
    const inventory = JSON.parse((await cli(["snapshots", "--json"])).stdout) as { repository: string }[];
    assert.equal(inventory.length, 2);
    assert.ok(inventory.every((s) => s.repository === "sftp"));
  });

  it("a second plan at the same time says no changes", async () => {
    const result = await cli(["plan", "--now", day1, "--detailed-exitcode"]);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.match(result.stdout, /^No changes\. Backups are up to date\./);
  });

  it("the SQLite dump in the repository equals a fresh sqlite3 .dump", async () => {
    const dump = await restic(["dump", "latest", "/app.sql", "--tag", "source=app"]);
    assert.equal(dump.code, 0, dump.stderr);
    const fresh = await freshDump(demo!.database);
    assert.equal(fresh.code, 0, fresh.stderr);
    assert.match(fresh.stdout, /^PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;/);
    assert.equal(dump.stdout, fresh.stdout);
  });

  it("with sshd down, apply fails in time with exit 1 naming the repository; after a restart it succeeds", async () => {
    await server().halt();
    const down = await cli(["apply", "--now", day2]);
    const output = down.stdout + down.stderr;
    assert.ok(down.ms < 60_000, `apply must not hang (took ${down.ms} ms)`);
    assert.equal(down.code, 1, output);
    assert.match(down.stdout, /✗ backup demo\/app → sftp failed: repository sftp: restic backup/);
    assert.match(down.stdout, /✗ backup demo\/uploads → sftp failed: repository sftp: restic backup/);
    assert.match(output, /Connection refused|unable to start the sftp session/);
    // An unreachable server is transient: retried with backoff before the stage fails.
    assert.match(down.stdout, /! backup demo\/app → sftp: attempt 1\/3 failed \(transient\), retrying in \d/);
    assert.match(down.stdout, /! backup demo\/app → sftp: attempt 2\/3 failed \(transient\), retrying in \d/);
    assert.match(down.stdout, /✗ refreshing the inventory of sftp failed: repository sftp: restic snapshots failed/);
    assert.match(down.stdout, /Apply finished with failures: 0 succeeded, 3 failed\./);
    assert.doesNotMatch(output, /^\s+at /m, "no stack trace");
    const due = JSON.parse((await cli(["plan", "--now", day2, "--json"])).stdout) as PlanJson;
    assert.deepEqual(due.actions.map((a) => [a.type, a.source]), [["backup", "app"], ["backup", "uploads"]]);

    await server().restart(); // same port when still free; otherwise a new port, written into the config below
    configure();
    const up = await cli(["apply", "--now", day2]);
    assert.equal(up.code, 0, up.stdout + up.stderr);
    assert.match(up.stdout, /Apply complete: 2 succeeded, 0 failed\./);
    const listed = JSON.parse((await restic(["snapshots", "--json"])).stdout) as unknown[];
    assert.equal(listed.length, 4);
    const again = await cli(["plan", "--now", day2, "--detailed-exitcode"]);
    assert.equal(again.code, 0, again.stdout + again.stderr);
  });
});

describe("remote repository over REST (rclone serve restic, basic auth, URL as a secret)", () => {
  let rest: RestServer | undefined;
  let demo: DemoDir | undefined;
  const outputs: { what: string; text: string }[] = [];

  const server = () => {
    assert.ok(rest, "rclone serve restic is not running (see the failure of the before hook)");
    return rest;
  };
  const cli = async (args: string[], env: Record<string, string> = {}) => {
    const result = await runCliWithin(["--config", demo!.config, ...args], {
      ...demo!.env,
      REST_URL: server().url,
      ...env,
    });
    outputs.push({ what: `backupctl ${args.join(" ")}`, text: result.stdout + result.stderr });
    return result;
  };
  const restic = (args: string[]) =>
    runTool("restic", ["--no-cache", ...args], {
      env: { RESTIC_REPOSITORY: server().url, RESTIC_PASSWORD: demo!.env.DEMO_RESTIC_PASSWORD },
    });
  const assertNoCredentials = (what: string, text: string) => {
    assert.ok(!text.includes(server().password), `${what} must not contain the REST password`);
    assert.ok(!text.includes(`${server().user}:${server().password}`), `${what} must not contain the credentials`);
  };

  before(async () => {
    requireProgram("restic", "restic");
    requireProgram("sqlite3", "sqlite3");
    rest = await startRestServer();
    demo = makeDemo();
    writeConfig(demo, "rest", `restic({ url: env("REST_URL"), password: env("DEMO_RESTIC_PASSWORD") })`);
  });
  after(async () => {
    try {
      await rest?.stop();
    } finally {
      demo?.cleanup();
    }
  });

  it('plan and apply work with the URL from env("REST_URL"); no process\'s argv ever holds the password', async () => {
    const plan = await cli(["plan", "--now", day1]);
    assert.equal(plan.code, 0, plan.stdout + plan.stderr);
    assert.match(plan.stdout, /\+ init rest/);
    assert.match(plan.stdout, /Plan: 2 to back up, 0 to copy, 1 to initialize/);
    const json = await cli(["plan", "--now", day1, "--format", "json"]);
    assert.equal(json.code, 0, json.stderr);

    const sampler = sampleCommandLines(20);
    let sampled: { commandLines: string[]; samples: number } | undefined;
    const apply = await cli(["apply", "--now", day1]).finally(() => (sampled = sampler.stop()));
    const { commandLines, samples } = sampled!;
    assert.equal(apply.code, 0, apply.stdout + apply.stderr);
    assert.match(apply.stdout, /\+ init rest: created \(+url from env\("REST_URL"\)\)+/);
    assert.match(apply.stdout, /Apply complete: 3 succeeded, 0 failed\./);
    assert.ok(samples >= 5, `sampled /proc only ${samples} times`);
    assert.ok(
      commandLines.some((line) => /\brestic\b/.test(line) && /\bbackup\b/.test(line)),
      `the sampler saw restic backup running (${commandLines.filter((l) => /restic/.test(l)).length} restic lines)`,
    );
    for (const line of commandLines) assertNoCredentials(`the command line "${line.slice(0, 200)}"`, line);

    const listed = await restic(["snapshots", "--json"]);
    assert.equal(listed.code, 0, listed.stderr);
    assert.equal((JSON.parse(listed.stdout) as unknown[]).length, 2);
    const dump = await restic(["dump", "latest", "/app.sql", "--tag", "source=app"]);
    assert.equal(dump.code, 0, dump.stderr);
    assert.equal(dump.stdout, (await freshDump(demo!.database)).stdout);
  });

  it("status, snapshots and a second plan work and never print the credentials", async () => {
    const status = await cli(["status", "--now", day1]);
    assert.equal(status.code, 0, status.stderr);
    const statusJson = await cli(["status", "--json", "--now", day1]);
    const parsed = JSON.parse(statusJson.stdout) as { projects: { snapshots: Record<string, { count: number }> }[] };
    assert.equal(parsed.projects[0].snapshots.rest.count, 2);
    const snapshots = await cli(["snapshots"]);
    assert.equal(snapshots.code, 0, snapshots.stderr);
    assert.match(snapshots.stdout, /\brest\b/);
    assert.equal((JSON.parse((await cli(["snapshots", "--json"])).stdout) as unknown[]).length, 2);
    const again = await cli(["plan", "--now", day1, "--detailed-exitcode"]);
    assert.equal(again.code, 0, again.stdout + again.stderr);
    assert.match(again.stdout, /^No changes\./);

    assert.ok(outputs.length >= 8);
    for (const { what, text } of outputs) assertNoCredentials(`the output of ${what}`, text);
  });

  it("the state database (state.db and its WAL) never holds the credentials", () => {
    const stateDir = join(demo!.dir, ".backupctl");
    const files = filesUnder(stateDir);
    const names = files.map((f) => f.path.slice(stateDir.length + 1));
    assert.ok(names.includes("state.db"), `state files: ${names.join(", ")}`);
    for (const { path, bytes } of files) {
      assertNoCredentials(path, bytes);
      assert.ok(!bytes.includes(server().url), `${path} must not hold the REST URL`);
    }
    const db = files.find((f) => f.path.endsWith("state.db"))!;
    assert.match(db.bytes + (files.find((f) => f.path.endsWith("state.db-wal"))?.bytes ?? ""), /url from env/);
  });

  it("a wrong REST password fails with exit 1 and a clear message, and prints no password", async () => {
    const wrongPassword = "wrong-rest-pass-5521";
    const wrongUrl = server().url.replace(`:${server().password}@`, `:${wrongPassword}@`);
    assert.notEqual(wrongUrl, server().url);

    // A repository the state database knows: the backups fail.
    const known = await cli(["apply", "--now", day2], { REST_URL: wrongUrl });
    const output = known.stdout + known.stderr;
    assert.ok(known.ms < 60_000, `apply took ${known.ms} ms`);
    assert.equal(known.code, 1, output);
    assert.match(known.stdout, /✗ backup demo\/app → rest failed: repository rest: restic backup/);
    assert.match(known.stdout, /✗ backup demo\/uploads → rest failed: repository rest: restic backup/);
    assert.match(known.stdout, /Apply finished with failures: 0 succeeded, 3 failed\./);
    assert.match(output, /401 Unauthorized/);
    assert.ok(!output.includes(wrongPassword), "the wrong password must not be printed");
    assertNoCredentials("the failed apply's output", output);
    assert.doesNotMatch(output, /^\s+at /m, "no stack trace");

    // A fresh state folder (the repository must be probed first): still exit 1, still no password.
    const stateDir = mkdtempSync(join(tmpdir(), "backupctl-e2e-state-"));
    try {
      const fresh = await cli(["--state-dir", stateDir, "apply", "--now", day2], { REST_URL: wrongUrl });
      const freshOutput = fresh.stdout + fresh.stderr;
      assert.equal(fresh.code, 1, freshOutput);
      assert.match(freshOutput, /repository rest: restic \w+/);
      assert.match(freshOutput, /401 Unauthorized/);
      assert.ok(!freshOutput.includes(wrongPassword), "the wrong password must not be printed");
      assertNoCredentials("the failed apply's output", freshOutput);
    } finally {
      rmSync(stateDir, { recursive: true, force: true });
    }

    const listed = await restic(["snapshots", "--json"]);
    assert.equal((JSON.parse(listed.stdout) as unknown[]).length, 2, "nothing was written");
    const good = await cli(["apply", "--now", day3]);
    assert.equal(good.code, 0, good.stdout + good.stderr);
  });
});
