/**
 * SFTP repositories whose SSH key is a secret reference (`ssh: { key, passphrase?, knownHosts }`), against two real
 * OpenSSH servers on loopback: repository `a` logs in with a plain key from env(), repository `b` with a
 * passphrase-protected key from file() and its passphrase from env(). The copy a → b opens both servers in one restic
 * process, each with its own key and host key. Nothing of either secret may show in argv, output or the state folder,
 * and no key file may stay behind.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { runCli, runTool } from "../support/cli.ts";
import { type DemoDir, makeDemo } from "../support/demo.ts";
import { filesUnder, sampleCommandLines } from "../support/inspect.ts";
import { requireProgram, type SftpServer, startSftp } from "../support/sshd.ts";

const day1 = "2026-11-21T10:00:00Z";
const day2 = "2026-11-22T10:00:00Z";

interface Options {
  knownHostsA?: string;
  passphraseEnv?: string;
}

describe("sftp repositories with the SSH key as a secret reference", () => {
  let serverA: SftpServer | undefined;
  let serverB: SftpServer | undefined;
  let demo: DemoDir | undefined;
  let keyA = "";
  const outputs: string[] = [];

  const a = () => (assert.ok(serverA, "sshd a is not running"), serverA);
  const b = () => (assert.ok(serverB, "sshd b is not running"), serverB);
  const urlOf = (server: SftpServer) => `sftp://root@127.0.0.1:${server.port}/${server.root}/repo`;

  function configure(options: Options = {}): void {
    writeFileSync(
      demo!.config,
      `import { defineConfig, env, file, files, restic, sqlite } from "backupctl";

export default defineConfig({
  timezone: "UTC",
  repositories: {
    a: restic({
      url: ${JSON.stringify(urlOf(a()))},
      password: env("DEMO_RESTIC_PASSWORD"),
      ssh: { key: env("SSH_KEY_A"), knownHosts: ${JSON.stringify(options.knownHostsA ?? a().knownHostsLine)} },
    }),
    b: restic({
      url: ${JSON.stringify(urlOf(b()))},
      password: env("DEMO_RESTIC_PASSWORD"),
      ssh: {
        key: file(${JSON.stringify(b().lockedKeyFile)}),
        passphrase: env(${JSON.stringify(options.passphraseEnv ?? "SSH_PASSPHRASE_B")}),
        knownHosts: [${JSON.stringify(b().knownHostsLine)}],
      },
    }),
  },
  projects: {
    demo: {
      schedule: "0 3 * * *",
      sources: [sqlite({ path: "demo/app.db" }), files({ name: "uploads", paths: ["demo/uploads"] })],
      repositories: ["a", "b"],
      retention: { last: 10 },
    },
  },
});
`,
    );
  }

  const cli = async (args: string[]) => {
    const result = await runCli(["--config", demo!.config, ...args], {
      env: { ...demo!.env, SSH_KEY_A: keyA, SSH_PASSPHRASE_B: b().passphrase, WRONG_PASSPHRASE: "not-the-passphrase" },
      timeoutMs: 120_000,
    });
    outputs.push(result.stdout + result.stderr);
    return result;
  };
  /** restic run by the test itself, logging in with the server's plain test key. */
  const restic = (server: SftpServer, args: string[]) =>
    runTool("restic", ["--no-cache", "-o", `sftp.command=${server.sftpCommand}`, ...args], {
      env: {
        RESTIC_REPOSITORY: `sftp:root@127.0.0.1:${server.root}/repo`,
        RESTIC_PASSWORD: demo!.env.DEMO_RESTIC_PASSWORD,
      },
    });
  const privateDir = () => join(demo!.dir, ".backupctl", "tmp");
  const leftovers = () => existsSync(privateDir()) ? readdirSync(privateDir()) : [];

  before(async () => {
    requireProgram("restic", "restic");
    requireProgram("sqlite3", "sqlite3");
    serverA = await startSftp();
    serverB = await startSftp();
    demo = makeDemo();
    keyA = readFileSync(a().keyFile, "utf8");
    configure();
  });
  after(async () => {
    try {
      await Promise.all([serverA?.stop(), serverB?.stop()]);
    } finally {
      demo?.cleanup();
    }
  });

  it("apply initializes both, backs up to a and copies to b, each server with its own key", async () => {
    const watcher = sampleCommandLines();
    const result = await cli(["apply", "--now", day1]);
    const { commandLines, samples } = watcher.stop();
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.match(result.stdout, /\+ init a: created/);
    assert.match(result.stdout, /\+ init b: created/);
    assert.match(result.stdout, /\+ backup demo\/app → a: snapshot [0-9a-f]{8}/);
    assert.match(result.stdout, /\+ copy demo\/app a → b/);
    assert.match(result.stdout, /Apply complete: \d+ succeeded, 0 failed\./);
    assert.ok(samples > 5, `sampled the process list ${samples} times`);
    const resticLines = commandLines.filter((line) => /\brestic\b/.test(line));
    assert.ok(resticLines.length > 0, "saw restic running");
    const keyBody = keyA.split("\n")[1];
    for (const line of commandLines) {
      assert.ok(!line.includes(b().passphrase), `a command line shows the passphrase: ${line}`);
      assert.ok(!line.includes(keyBody), `a command line shows the key: ${line}`);
    }
  });

  it("the copy in b restores to the same SQLite dump", async () => {
    const dump = await restic(b(), ["dump", "latest", "/app.sql", "--tag", "source=app"]);
    assert.equal(dump.code, 0, dump.stderr);
    const fresh = await runTool("sqlite3", [demo!.database, ".dump"]);
    assert.equal(dump.stdout, fresh.stdout);
    const listed = JSON.parse((await restic(b(), ["snapshots", "--json"])).stdout) as { original?: string }[];
    assert.equal(listed.length, 2);
    assert.ok(listed.every((snapshot) => snapshot.original), "b holds copies (with the original's id)");
  });

  it("no key file, askpass script or ssh_config stays behind, and no secret is in the state folder", () => {
    assert.deepEqual(leftovers(), []);
    const keyBody = keyA.split("\n")[1];
    const lockedKey = readFileSync(b().lockedKeyFile, "utf8").split("\n")[1];
    for (const file of filesUnder(join(demo!.dir, ".backupctl"))) {
      assert.ok(!file.bytes.includes(keyBody), `${file.path} holds key a`);
      assert.ok(!file.bytes.includes(lockedKey), `${file.path} holds key b`);
      assert.ok(!file.bytes.includes(b().passphrase), `${file.path} holds the passphrase`);
    }
    for (const output of outputs) {
      assert.ok(!output.includes(keyBody) && !output.includes(b().passphrase), "the output holds a secret");
    }
  });

  it("a host key that is not the server's fails the apply with a hint about knownHosts", async () => {
    configure({ knownHostsA: b().knownHostsLine.replace(`:${b().port}]`, `:${a().port}]`) });
    const result = await cli(["apply", "--now", day2]);
    assert.equal(result.code, 1, result.stdout + result.stderr);
    assert.ok(result.ms < 60_000, `apply must not hang (${result.ms} ms)`);
    assert.match(result.stdout, /repository a: restic backup failed/);
    assert.match(result.stdout, /ssh does not trust the server's host key: put its known_hosts line/);
    assert.deepEqual(leftovers(), []);
  });

  it("a wrong passphrase fails without hanging and names the secrets to check", async () => {
    configure({ passphraseEnv: "WRONG_PASSPHRASE" });
    const result = await cli(["apply", "--now", day2]);
    assert.equal(result.code, 1, result.stdout + result.stderr);
    assert.ok(result.ms < 60_000, `apply must not hang (${result.ms} ms)`);
    assert.match(result.stdout, /\+ backup demo\/app → a: snapshot/, "repository a is not affected");
    assert.match(
      result.stdout,
      /the sftp server refused the key: check that file\(".*client_locked_ed25519"\) is the private key .* and that env\("WRONG_PASSPHRASE"\) is its passphrase/,
    );
    assert.ok(!(result.stdout + result.stderr).includes("not-the-passphrase"));
    assert.deepEqual(leftovers(), []);
  });

  it("configured right again, the next apply copies what b missed", async () => {
    configure();
    const result = await cli(["apply", "--now", day2]);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    const listed = JSON.parse((await restic(b(), ["snapshots", "--json"])).stdout) as unknown[];
    assert.equal(listed.length, 4);
  });

  it("validate refuses ssh settings on a non-sftp url and next to an sftp.command option", async () => {
    writeFileSync(
      demo!.config,
      `import { defineConfig, env, restic, sqlite } from "backupctl";
export default defineConfig({
  repositories: {
    rest: restic({ url: "rest:http://127.0.0.1:1/x", password: env("P"), ssh: { key: env("K") } }),
    both: restic({
      url: "sftp:backup@127.0.0.1:/x", password: env("P"),
      options: { "sftp.command": "ssh backup@127.0.0.1 -s sftp" }, ssh: { key: env("K") },
    }),
  },
  projects: { demo: { schedule: "0 3 * * *", sources: [sqlite({ path: "app.db" })], repositories: ["rest", "both"] } },
});
`,
    );
    const result = await cli(["validate"]);
    assert.equal(result.code, 3, result.stdout + result.stderr);
    assert.match(result.stderr, /repositories\.rest\.ssh: ssh settings apply to sftp: repositories only/);
    assert.match(result.stderr, /repositories\.both\.ssh: ssh settings and options\["sftp\.command"\] both say/);
  });
});
