/**
 * A pgbackrest() source whose repository is a bucket (issue 24, point 1), end to end with the real CLI, a real
 * PostgreSQL cluster archiving through pgBackRest 2.45 (test/support/pgbackrest.ts) and s3rver over HTTPS with a
 * throwaway CA (test/support/s3rver.ts): the first plan shows stanza-create and a full backup, apply runs them, and
 * the backup and the archived WAL are objects in the bucket, not files of a local folder; an incr backup and `check`
 * run on the same rendered config; rows at T1 and T2, then a restore to a time between them has T1, not T2; a drill
 * passes; a retention cut expires the oldest full and its incr in the bucket.
 *
 * The endpoint is `https://localhost:PORT`: pgBackRest 2.45 checks the certificate's DNS names only, and with
 * `127.0.0.1` it refuses s3rver's certificate (which holds the address as an IP SAN) with "unable to find hostname
 * '127.0.0.1' in certificate common name or subject alternative names".
 *
 * Secrets: `pgbackrest` is a wrapper first on backupctl's PATH that records its argv and environment. The secret
 * access key must be in the 0600 pgBackRest config file only: in no argv or environment of a child, no output of the
 * CLI, no plan file, no byte of the state folder, pgBackRest's log folder or the restored copy's settings.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import {
  chmodSync,
  copyFileSync,
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
import { type CliResult, runCli } from "../support/cli.ts";
import { filesUnder } from "../support/inspect.ts";
import { clusterConfigText, type PgBackRestCluster, startPgBackRestCluster } from "../support/pgbackrest.ts";
import { type S3Server, startS3Server } from "../support/s3rver.ts";

/** One recorded start of the wrapped pgbackrest: its argv and environment. */
interface Call {
  argv: string[];
  env: Map<string, string>;
}

let s3: S3Server;
let pg: PgBackRestCluster;
/** The CLI's config, state and plan file (root's, 0700). */
let work = "";
/** The wrapper and its records, and the CA's copy: a folder the cluster's OS user reaches (pgBackRest runs as it). */
let shared = "";
const outputs: string[] = [];
/** A moment between the rows t1 and t2, by the server's clock. */
let between: Date;

/**
 * The CLI reads the key id from a file() secret and the secret key from an env() one (in its environment only);
 * this process writes the same config from file() secrets, which its own server's environment never sees.
 */
const keyFile = () => join(work, "s3-key");
const secretFile = () => join(work, "s3-secret");
const secretVariable = "PITR_S3_TEST_SECRET";
const prefix = "/pgbackrest";

/** The output of a run for a failure message, the secret masked (assert would print it as it is). */
const show = (result: CliResult) =>
  `exit ${result.code}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`
    .replaceAll(s3.secretAccessKey, "(the secret)");

function writeConfig(retention: string, extra = ""): void {
  writeFileSync(
    join(work, "backup.config.ts"),
    `import { defineConfig, env, file, pgbackrest, s3 } from "backupctl";

export default defineConfig({
  repositories: {},
  projects: {
    ledger: {
      schedule: "@daily",
      sources: [pgbackrest({
        stanza: "main",
        ${clusterConfigText(pg)}
        repository: s3({
          endpoint: "https://localhost:${s3.port}",
          bucket: ${JSON.stringify(s3.bucket)},
          region: "us-east-1",
          path: ${JSON.stringify(prefix)},
          accessKeyId: file(${JSON.stringify(keyFile())}),
          secretAccessKey: env(${JSON.stringify(secretVariable)}),
          caFile: ${JSON.stringify(join(shared, "ca.pem"))},
        }),
        schedule: { full: "0 0 1 1 *" },
      })],
      repositories: [],
      retention: ${retention},${extra}
    },
  },
});
`,
  );
}

async function cli(args: string[]): Promise<CliResult> {
  const result = await runCli(
    ["--config", join(work, "backup.config.ts"), "--state-dir", join(work, "state"), ...args],
    {
      env: { [secretVariable]: s3.secretAccessKey, PATH: `${join(shared, "bin")}:${process.env.PATH}` },
      timeoutMs: 240_000,
    },
  );
  outputs.push(result.stdout, result.stderr);
  return result;
}

function recorded(): Call[] {
  const calls = join(shared, "calls");
  return readdirSync(calls).filter((name) => name.endsWith(".argv")).sort().map((name) => {
    const read = (extension: string) =>
      readFileSync(join(calls, name.replace(/\.argv$/, extension)), "latin1").split("\0").slice(0, -1);
    const env = new Map<string, string>();
    for (const entry of read(".env")) env.set(entry.slice(0, entry.indexOf("=")), entry.slice(entry.indexOf("=") + 1));
    return { argv: read(".argv"), env };
  });
}

/** The keys of the objects in the bucket, without s3rver's own suffixes. */
function objectKeys(): string[] {
  const bucket = join(s3.root, s3.bucket);
  return filesUnder(bucket).map((file) => file.path.slice(bucket.length))
    .filter((key) => key.endsWith("._S3rver_object")).map((key) => key.replace(/\._S3rver_object$/, ""));
}

/** The labels in the restored copy listening in `into` on `port`. */
function labels(into: string, port: string | undefined): string {
  const argv = ["-h", into, "-p", String(port), "-U", "postgres", "-At", "-d", "postgres", "-c"];
  return execFileSync("psql", [...argv, "SELECT string_agg(label, ',' ORDER BY label) FROM marks"]).toString().trim();
}

before(async () => {
  s3 = await startS3Server();
  work = mkdtempSync(join(tmpdir(), "backupctl-pitr-s3-"));
  shared = mkdtempSync(join(tmpdir(), "backupctl-pitr-s3-shared-"));
  chmodSync(shared, 0o755);
  mkdirSync(join(shared, "bin"), { mode: 0o755 });
  // pgBackRest runs as the cluster's OS user when the tests run as root: it writes the records there.
  mkdirSync(join(shared, "calls"));
  chmodSync(join(shared, "calls"), 0o777);
  // s3rver's CA sits in its 0700 temp folder, which the cluster's OS user cannot enter (nor could archive-push).
  copyFileSync(s3.caFile ?? "", join(shared, "ca.pem"));
  chmodSync(join(shared, "ca.pem"), 0o644);
  const real = execFileSync("sh", ["-c", "command -v pgbackrest"]).toString().trim();
  const record =
    `f="${shared}/calls/pgbackrest.$(date +%s%N).$$"; printf '%s\\0' "$@" > "$f.argv"; cat /proc/$$/environ > "$f.env"`;
  writeFileSync(join(shared, "bin", "pgbackrest"), `#!/bin/sh\n${record}\nexec "${real}" "$@"\n`);
  chmodSync(join(shared, "bin", "pgbackrest"), 0o755);
  writeFileSync(keyFile(), s3.accessKeyId, { mode: 0o600 });
  writeFileSync(secretFile(), s3.secretAccessKey, { mode: 0o600 });
  try {
    pg = await startPgBackRestCluster({
      stanza: "main",
      repository: {
        type: "s3",
        endpoint: `https://localhost:${s3.port}`,
        bucket: s3.bucket,
        region: "us-east-1",
        path: prefix,
        accessKeyId: { secret: "file", path: keyFile() },
        secretAccessKey: { secret: "file", path: secretFile() },
        caFile: join(shared, "ca.pem"),
      },
    });
  } catch (error) {
    await s3.stop();
    throw error;
  }
  writeConfig("{ yearly: 1 }");
});

after(async () => {
  if (!process.env.KEEP) {
    await pg?.stop();
    await s3?.stop();
    for (const dir of [work, shared]) if (dir) rmSync(dir, { recursive: true, force: true });
  }
});

describe("pgbackrest() source with an S3 repository (s3rver over HTTPS)", () => {
  it("plans stanza-create and a full backup; apply puts them in the bucket, not in a local folder", async () => {
    const plan = await cli(["plan", "--out", join(work, "plan.json")]);
    assert.equal(plan.code, 0, show(plan));
    assert.match(plan.stdout, /\+ stanza-create main \(pgBackRest\)/, show(plan));
    assert.match(plan.stdout, /\+ backup main → stanza main \(pgBackRest full\)\s+never backed up/, show(plan));
    const json = JSON.parse((await cli(["plan", "--format", "json"])).stdout);
    assert.deepEqual(json.actions.map((a: { type: string }) => a.type), ["stanza_create", "pitr_backup"]);
    assert.equal(json.actions[1].backup_type, "full");
    assert.match(
      JSON.stringify(json.actions[0]),
      new RegExp(`does not exist in s3:https://localhost:${s3.port}/${s3.bucket}${prefix}`),
    );

    const apply = await cli(["apply"]);
    assert.equal(apply.code, 0, show(apply));
    assert.match(apply.stdout, /stanza-create main \(ledger\/main\): done/, show(apply));
    assert.match(apply.stdout, /\+ backup ledger\/main → stanza main \(full\): \d{8}-\d{6}F, /, show(apply));
    const info = await pg.pgbackrest.info();
    assert.equal(info.status.code, 0, info.status.message);
    assert.deepEqual(info.backups.map((b) => b.type), ["full"]);

    const keys = objectKeys();
    const label = info.backups[0].label;
    for (
      const key of [
        `${prefix}/backup/main/backup.info`,
        `${prefix}/archive/main/archive.info`,
        `${prefix}/backup/main/${label}/backup.manifest`,
      ]
    ) assert.ok(keys.includes(key), `${key} among ${keys.slice(0, 20).join(", ")}…`);
    assert.ok(keys.some((key) => key.startsWith(`${prefix}/archive/main/15-1/`)), "archived WAL in the bucket");
    assert.equal(existsSync(join(pg.server.dir, "repo")), false, "no local repository");
    const config = readFileSync(pg.configPath, "utf8");
    assert.match(config, /^repo1-type=s3$/m);
    assert.equal(statSync(pg.configPath).mode & 0o777, 0o600);

    const inventory = await cli(["snapshots", "--json"]);
    assert.equal(inventory.code, 0, show(inventory));
    const listed = JSON.parse(inventory.stdout) as { repository: string; id: string }[];
    assert.deepEqual(listed.map((s) => [s.repository, s.id]), [["pgbackrest:main", label]]);
  });

  it("takes an incr and checks through the bucket; restores to a time between two writes: T1, not T2", async () => {
    await pg.server.psql("CREATE TABLE marks (label text); SELECT pg_sleep(1); INSERT INTO marks VALUES ('t1');");
    between = new Date(Number(await pg.server.psql("SELECT extract(epoch FROM clock_timestamp())")) * 1000);
    await pg.server.psql("SELECT pg_sleep(0.05); INSERT INTO marks VALUES ('t2');");
    await pg.switchWal();
    await pg.pgbackrest.backup("incr", { expireAuto: false });
    await pg.pgbackrest.check();
    assert.deepEqual((await pg.pgbackrest.info()).backups.map((b) => b.type), ["full", "incr"]);

    const into = join(pg.server.dir, "restored-between");
    const result = await cli(["restore", "ledger", "--to-time", between.toISOString(), "--into-cluster", into]);
    assert.equal(result.code, 0, show(result));
    assert.match(result.stdout, /^restored ledger\/main \(stanza main, backup \d{8}-\d{6}F\) to \S+ into /m);
    const port = /it runs on 127\.0\.0\.1:(\d+)/.exec(result.stdout)?.[1];
    try {
      assert.equal(labels(into, port), "t1");
      // The restored copy fetches WAL with archive-get through the same config: the key is not in its settings.
      const settings = readFileSync(join(into, "postgresql.auto.conf"), "utf8");
      assert.match(settings, /restore_command = '\S*pgbackrest --config=\S+main\.conf/, settings);
      assert.ok(!settings.includes(s3.secretAccessKey), "no key in the restored copy's settings");
    } finally {
      await stopServer(into);
    }
  });

  it("drills the stanza from the bucket into a scratch cluster, audited", async () => {
    writeConfig(
      "{ yearly: 1 }",
      '\n      verify: { every: "7d", check: "SELECT count(*) FROM marks", expect: { minRows: 1 } },',
    );
    const plan = await cli(["plan"]);
    assert.match(plan.stdout, /~ verify ledger \(restore drill from pgbackrest:main\)/, show(plan));
    const apply = await cli(["apply"]);
    assert.equal(apply.code, 0, show(apply));
    const status = JSON.parse((await cli(["status", "--json"])).stdout);
    assert.equal(status.projects[0].last_drill?.status, "succeeded", JSON.stringify(status.projects[0]));
  });

  it("expires the oldest full and its incr in the bucket when a retention cut is approved", async () => {
    for (let n = 0; n < 2; n++) await pg.pgbackrest.backup("full", { expireAuto: false });
    const before = (await pg.pgbackrest.info()).backups.map((b) => b.label);
    assert.equal(before.length, 4, before.join(", "));
    writeConfig("{ daily: 7 }");
    const plan = await cli(["plan"]);
    assert.match(plan.stdout, /- expire 2 pgBackRest backups of main in stanza main \(needs approval\)/, show(plan));
    const approved = await cli(["apply", "--auto-approve"]);
    assert.equal(approved.code, 0, show(approved));
    assert.match(
      approved.stdout,
      /- expire 2 pgBackRest backups of ledger\/main \(stanza main\): done/,
      show(approved),
    );
    assert.deepEqual((await pg.pgbackrest.info()).backups.map((b) => b.label), before.slice(2));
    // pgBackRest deletes an expired backup's manifests, then the folders it lists beside the kept ones. s3rver 3.7.1
    // lists a "folder" (a common prefix) only when an object sits directly in it, so it never shows the rest of an
    // expired backup (all under pg_data/) and those objects stay in the test's bucket; on S3 they go.
    const keys = objectKeys();
    for (const label of before.slice(0, 2)) {
      for (const manifest of ["backup.manifest", "backup.manifest.copy"]) {
        assert.ok(!keys.includes(`${prefix}/backup/main/${label}/${manifest}`), `${label}'s ${manifest} is deleted`);
      }
    }
    assert.ok(keys.includes(`${prefix}/backup/main/${before[2]}/backup.manifest`), "the kept fulls stay");
  });

  it("keeps the secret access key in the 0600 config file only", () => {
    const secret = s3.secretAccessKey;
    assert.ok(readFileSync(pg.configPath, "utf8").includes(`repo1-s3-key-secret=${secret}`));

    const calls = recorded();
    const commands = new Set(calls.map((call) => call.argv[call.argv.length - 1]));
    for (const command of ["stanza-create", "backup", "info", "restore", "expire"]) {
      assert.ok(commands.has(command), `pgbackrest ${command} recorded (got ${[...commands].join(", ")})`);
    }
    for (const { argv, env } of calls) {
      assert.ok(argv.some((arg) => arg === `--config=${pg.configPath}`), JSON.stringify(argv));
      assert.ok(!argv.join("\0").includes(secret), "no secret in pgbackrest's argv");
      assert.ok(![...env.values()].some((value) => value.includes(secret)), "no secret in pgbackrest's environment");
      assert.ok(!env.has(secretVariable), "the variable env() reads is withheld from pgbackrest");
    }
    assert.ok(outputs.length > 0 && !outputs.some((text) => text.includes(secret)), "no secret in any output");
    const plan = readFileSync(join(work, "plan.json"), "utf8");
    assert.match(plan, /stanza_create/);
    assert.ok(!plan.includes(secret), "no secret in the plan file");
    const elsewhere = [
      ...filesUnder(join(work, "state")),
      ...filesUnder(join(pg.configDir, "log")),
      ...filesUnder(join(s3.root, s3.bucket)),
    ];
    assert.ok(elsewhere.length > 3, "the state folder and pgBackRest's log are there to search");
    const leaks = elsewhere.filter((file) => file.bytes.includes(secret)).map((file) => file.path);
    assert.deepEqual(leaks, [], "no secret in the state, pgBackRest's log or the bucket");
  });
});
