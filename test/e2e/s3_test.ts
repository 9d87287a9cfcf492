/**
 * S3-compatible repositories (issue 23, point 2), end to end against s3rver on loopback (test/support/s3rver.ts) with
 * the real restic 0.14: a project backs up straight into an s3: repository, another backs up into a local one whose
 * snapshots are copied into the s3: one; then forget (retention), prune and restore, all through the bucket. The
 * credentials are `s3: { accessKeyId, secretAccessKey }` secret references; region and path-style addressing are
 * `-o` options; the server's certificate authority is `cacert`.
 *
 * Over HTTPS, because restic 0.14 cannot use s3rver 3.7.1 over plain HTTP: minio-go then signs uploads with the
 * streaming signature (aws-chunked), which s3rver stores undecoded, chunk headers included, so the next read fails
 * with "Unmarshal: invalid character 'b' after top-level value" (see test/support/s3rver.ts). The last test shows it.
 *
 * Secrets: `restic` and a command source are wrappers first on PATH that record their argv and environment. The AWS
 * secret must reach only the restic processes that open the s3: repository (in AWS_SECRET_ACCESS_KEY), and appear in
 * no argv, no other child's environment, no output, no plan file and no byte of the state folder.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { runCli, runTool } from "../support/cli.ts";
import { filesUnder } from "../support/inspect.ts";
import { type S3Server, startS3Server } from "../support/s3rver.ts";

const dayAt = (n: number) => new Date(Date.UTC(2026, 10, 1 + n, 10)).toISOString().replace(".000Z", "Z");
const password = "s3-test-restic-password";

/** One recorded start of a wrapped program: its argv and environment. */
interface Call {
  argv: string[];
  env: Map<string, string>;
}

describe("s3: repositories against s3rver", () => {
  let s3: S3Server;
  let work = "";
  let calls = "";
  const outputs: string[] = [];
  const url = () => `s3:${s3.endpoint}/${s3.bucket}/restic`;
  const cliEnv = () => ({
    RESTIC_PW: password,
    S3_KEY_ID: s3.accessKeyId,
    S3_SECRET: s3.secretAccessKey,
    PATH: `${join(work, "bin")}:${process.env.PATH}`,
    BACKUPCTL_STATE_DIR: undefined,
    BACKUPCTL_CONFIG: undefined,
  });
  const cli = async (args: string[]) => {
    const result = await runCli(["--config", join(work, "backup.config.ts"), ...args], {
      env: cliEnv(),
      cwd: work,
      timeoutMs: 180_000,
    });
    outputs.push(result.stdout, result.stderr);
    return result;
  };
  /** The output of a run for a failure message, the secret masked (assert would print it as it is). */
  const shown = (result: { stdout: string; stderr: string }) =>
    (result.stdout + result.stderr).replaceAll(s3.secretAccessKey, "(the secret)");
  const recorded = (program: string): Call[] =>
    readdirSync(calls).filter((name) => name.startsWith(`${program}.`) && name.endsWith(".argv")).sort()
      .map((name) => {
        const read = (extension: string) =>
          readFileSync(join(calls, name.replace(/\.argv$/, extension)), "latin1").split("\0").slice(0, -1);
        const env = new Map<string, string>();
        for (const entry of read(".env")) {
          env.set(entry.slice(0, entry.indexOf("=")), entry.slice(entry.indexOf("=") + 1));
        }
        return { argv: read(".argv"), env };
      });
  /** restic on the bucket, as an operator would run it. */
  const resticS3 = (args: string[]) =>
    runTool("restic", ["--no-cache", "--cacert", s3.caFile!, "-o", "s3.bucket-lookup=path", ...args], {
      env: {
        RESTIC_REPOSITORY: url(),
        RESTIC_PASSWORD: password,
        AWS_ACCESS_KEY_ID: s3.accessKeyId,
        AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
      },
    });
  const snapshots = async () => {
    const listed = await resticS3(["snapshots", "--json"]);
    assert.equal(listed.code, 0, listed.stderr);
    return JSON.parse(listed.stdout) as { id: string; tags: string[]; original?: string }[];
  };

  before(async () => {
    s3 = await startS3Server();
    work = mkdtempSync(join(tmpdir(), "backupctl-e2e-s3-"));
    calls = join(work, "calls");
    const bin = join(work, "bin");
    mkdirSync(calls);
    mkdirSync(bin);
    mkdirSync(join(work, "data"));
    writeFileSync(join(work, "data", "report.txt"), "quarterly report\n");
    const record = (name: string) =>
      `f="${calls}/${name}.$(date +%s%N).$$"; printf '%s\\0' "$@" > "$f.argv"; cat /proc/$$/environ > "$f.env"`;
    const real = execFileSync("sh", ["-c", "command -v restic"]).toString().trim();
    writeFileSync(join(bin, "restic"), `#!/bin/sh\n${record("restic")}\nexec "${real}" "$@"\n`);
    writeFileSync(join(bin, "export-orders"), `#!/bin/sh\n${record("export")}\necho "order 1"\n`);
    for (const name of ["restic", "export-orders"]) chmodSync(join(bin, name), 0o755);
    writeFileSync(
      join(work, "backup.config.ts"),
      `import { command, defineConfig, env, files, restic } from "backupctl";
export default defineConfig({
  repositories: {
    local: restic({ url: "local-repo", password: env("RESTIC_PW") }),
    bucket: restic({
      url: ${JSON.stringify(url())},
      password: env("RESTIC_PW"),
      cacert: ${JSON.stringify(s3.caFile)},
      s3: { accessKeyId: env("S3_KEY_ID"), secretAccessKey: env("S3_SECRET"), region: "us-east-1", pathStyle: true },
    }),
  },
  projects: {
    direct: {
      schedule: "0 3 * * *",
      sources: [files({ name: "reports", paths: ["data"] })],
      repositories: ["bucket"],
      retention: { last: 1 },
    },
    copied: {
      schedule: "0 3 * * *",
      sources: [command({ name: "orders", run: ["export-orders"], filename: "orders.txt" })],
      repositories: ["local", "bucket"],
      retention: { last: 1 },
      prune: { every: "1d" },
    },
  },
});
`,
    );
  });

  after(async () => {
    await s3?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it("initializes the bucket's repository, backs up into it and copies into it", async () => {
    const planned = await cli(["plan", "--now", dayAt(1), "--out", join(work, "plan.json")]);
    assert.equal(planned.code, 0, shown(planned));
    // Applied with the plan's clock (`apply PLANFILE` records runs at the real time, ahead of the later --now).
    const result = await cli(["apply", "--now", dayAt(1)]);
    assert.equal(result.code, 0, shown(result));
    assert.match(result.stdout, /\+ backup direct\/reports → bucket: snapshot/);
    assert.match(result.stdout, /\+ copy copied\/orders local → bucket: 1 snapshot/);
    const stored = await snapshots();
    assert.deepEqual(stored.map((s) => s.tags.find((tag) => tag.startsWith("source="))).sort(), [
      "source=orders",
      "source=reports",
    ]);
    assert.ok(stored.find((s) => s.tags.includes("source=orders"))?.original, "the orders snapshot is a copy");
    assert.ok(readdirSync(join(s3.root, s3.bucket, "restic")).includes("snapshots"), "the objects are in the bucket");
  });

  it("gives restic the region and path-style lookup as options, the CA as --cacert, the keys in its environment", () => {
    const opening = recorded("restic").filter((call) => call.env.get("RESTIC_REPOSITORY") === url());
    assert.ok(opening.length >= 3, `restic opened the bucket ${opening.length} times`);
    for (const { argv, env } of opening) {
      assert.ok(argv.join(" ").includes("-o s3.region=us-east-1 -o s3.bucket-lookup=path"), JSON.stringify(argv));
      assert.ok(argv.join(" ").includes(`--cacert ${s3.caFile}`));
      assert.equal(env.get("AWS_ACCESS_KEY_ID"), s3.accessKeyId);
      assert.equal(env.get("AWS_SECRET_ACCESS_KEY"), s3.secretAccessKey);
      assert.equal(env.has("S3_SECRET"), false, "the variable the reference names is withheld");
    }
  });

  it("forgets and prunes in the bucket by retention, and restores from it", async () => {
    writeFileSync(join(work, "data", "report.txt"), "quarterly report, revised\n");
    const backedUp = await cli(["apply", "--now", dayAt(2)]);
    assert.equal(backedUp.code, 0, shown(backedUp));
    // The next plan sees the new snapshots: each group keeps its newest.
    const result = await cli(["apply", "--now", dayAt(2), "--auto-approve"]);
    assert.equal(result.code, 0, shown(result));
    assert.match(result.stdout, /- forget 1 snapshot of direct\/reports in bucket: done/);
    assert.match(result.stdout, /- forget 1 snapshot of copied\/orders in bucket: done/);
    assert.match(result.stdout, /~ prune bucket: done/);
    const stored = await snapshots();
    assert.equal(stored.length, 2, "one snapshot per source is left");
    const target = join(work, "restored");
    const restored = await cli(["restore", "direct", "--source", "reports", "--to", target]);
    assert.equal(restored.code, 0, shown(restored));
    assert.equal(readFileSync(join(target, work, "data", "report.txt"), "utf8"), "quarterly report, revised\n");
    const orders = await cli(["restore", "copied", "--repository", "bucket", "--to", join(work, "orders")]);
    assert.equal(orders.code, 0, shown(orders));
    const dump = filesUnder(join(work, "orders")).find((file) => file.path.endsWith("orders.txt"));
    assert.equal(dump?.bytes, "order 1\n");
  });

  it("the AWS secret reaches only restic processes that open the bucket, and nothing else", () => {
    const secret = s3.secretAccessKey;
    for (const { argv, env } of recorded("restic")) {
      assert.ok(!argv.some((arg) => arg.includes(secret)), "never in argv");
      const holders = [...env].filter(([, value]) => value.includes(secret)).map(([key]) => key);
      const opensBucket = env.get("RESTIC_REPOSITORY") === url() || env.get("RESTIC_FROM_REPOSITORY") === url();
      assert.deepEqual(holders, opensBucket ? ["AWS_SECRET_ACCESS_KEY"] : [], argv.slice(0, 1).join(" "));
    }
    const exports = recorded("export");
    assert.ok(exports.length >= 2);
    for (const { env } of exports) assert.ok(![...env.values()].some((value) => value.includes(secret)));
    for (const text of outputs) assert.ok(!text.includes(secret), "never in backupctl's output");
    assert.ok(!readFileSync(join(work, "plan.json"), "utf8").includes(secret), "never in a plan file");
    for (const { path, bytes } of filesUnder(join(work, ".backupctl"))) {
      assert.ok(!bytes.includes(secret), `never in the state folder (${path})`);
    }
  });

  it("over plain HTTP restic 0.14 and s3rver disagree: the uploads are stored with their aws-chunked framing", async () => {
    const plain = await startS3Server({ tls: false });
    try {
      const env = {
        RESTIC_REPOSITORY: `s3:${plain.endpoint}/${plain.bucket}/restic`,
        RESTIC_PASSWORD: password,
        AWS_ACCESS_KEY_ID: plain.accessKeyId,
        AWS_SECRET_ACCESS_KEY: plain.secretAccessKey,
      };
      assert.equal((await runTool("restic", ["--no-cache", "init"], { env })).code, 0);
      const config = readFileSync(join(plain.root, plain.bucket, "restic", "config._S3rver_object"), "latin1");
      assert.match(config, /^[0-9a-f]+;chunk-signature=[0-9a-f]{64}\r\n/);
      const read = await runTool("restic", ["--no-cache", "cat", "config"], { env });
      assert.notEqual(read.code, 0);
      assert.match(read.stderr, /Unmarshal|invalid character|ciphertext verification failed|wrong password/);
    } finally {
      await plain.stop();
    }
  });
});
