import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { openSsh, parseSftpUrl } from "../../src/repository/ssh.ts";

describe("parseSftpUrl", () => {
  const cases: [string, ReturnType<typeof parseSftpUrl>][] = [
    ["sftp:backup@nas.example:/srv/restic", { host: "nas.example", user: "backup" }],
    ["sftp:nas.example:restic", { host: "nas.example", user: undefined }],
    ["sftp://backup@127.0.0.1:2222//srv/restic", { host: "127.0.0.1", user: "backup", port: 2222 }],
    ["sftp://nas.example/srv/restic", { host: "nas.example", user: undefined, port: undefined }],
    ["sftp://backup@[::1]:2200//srv", { host: "::1", user: "backup", port: 2200 }],
    ["rest:http://127.0.0.1:8000/", undefined],
    ["/srv/restic", undefined],
  ];
  for (const [url, expected] of cases) {
    it(url, () => assert.deepEqual(parseSftpUrl(url), expected));
  }
});

describe("openSsh", () => {
  it("does nothing for repositories without ssh settings", () => {
    const session = openSsh([], undefined);
    assert.deepEqual(session.env, {});
  });

  it("writes a private key, a Match block per server and removes it all", () => {
    const privateDir = mkdtempSync(join(tmpdir(), "backupctl-ssh-"));
    process.env.TEST_SSH_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----";
    process.env.TEST_SSH_PASSPHRASE = "correct horse";
    try {
      const session = openSsh([
        {
          name: "a",
          url: "sftp://backup@127.0.0.1:2222//srv",
          configDir: privateDir,
          ssh: { key: { secret: "env", name: "TEST_SSH_KEY" }, knownHosts: "[127.0.0.1]:2222 ssh-ed25519 AAAA" },
        },
        {
          name: "b",
          url: "sftp:root@nas.example:/x",
          configDir: privateDir,
          ssh: {
            key: { secret: "env", name: "TEST_SSH_KEY" },
            passphrase: { secret: "env", name: "TEST_SSH_PASSPHRASE" },
            hostKeyChecking: "accept-new",
          },
        },
      ], privateDir);
      const dir = session.env.PATH.split(":")[0].replace(/\/bin$/, "");
      assert.match(dir, /\/secret-\d+-ssh-/);
      assert.equal(statSync(dir).mode & 0o777, 0o700);
      assert.equal(statSync(join(dir, "key-0")).mode & 0o777, 0o600);
      assert.ok(readFileSync(join(dir, "key-0"), "utf8").endsWith("KEY-----\n"), "the key ends with a newline");
      const config = readFileSync(join(dir, "ssh_config"), "utf8");
      assert.match(config, /Match host 127\.0\.0\.1 user backup exec "test %p = 2222"\n {2}IdentityFile "[^"]+key-0"/);
      assert.match(config, /Match host nas\.example user root exec "test %p = 22"/);
      assert.match(config, /StrictHostKeyChecking yes[\s\S]*UserKnownHostsFile "[^"]+known_hosts-0"/);
      assert.match(config, /StrictHostKeyChecking accept-new/);
      assert.doesNotMatch(config, /BatchMode yes/, "a passphrase needs askpass, not batch mode");
      assert.equal(session.env.BACKUPCTL_SSH_PASSPHRASE_1, "correct horse");
      assert.equal(session.env.SSH_ASKPASS_REQUIRE, "force");
      assert.ok(!readFileSync(session.env.SSH_ASKPASS, "utf8").includes("correct horse"), "askpass reads env");
      assert.match(readFileSync(join(dir, "bin", "ssh"), "utf8"), /^#!\/bin\/sh\nexec '\/[^']+\/ssh' -F '/);
      session.remove();
      assert.ok(!existsSync(dir));
    } finally {
      delete process.env.TEST_SSH_KEY;
      delete process.env.TEST_SSH_PASSPHRASE;
      rmSync(privateDir, { recursive: true, force: true });
    }
  });

  it("refuses a url that is not sftp and leaves nothing behind", () => {
    const privateDir = mkdtempSync(join(tmpdir(), "backupctl-ssh-"));
    process.env.TEST_SSH_KEY = "key";
    try {
      assert.throws(
        () =>
          openSsh([{
            name: "r",
            url: "rest:http://127.0.0.1:1/",
            configDir: privateDir,
            ssh: { key: { secret: "env", name: "TEST_SSH_KEY" } },
          }], privateDir),
        /repository r: ssh settings apply to sftp: repositories only/,
      );
      assert.deepEqual(readdirSync(privateDir), []);
    } finally {
      delete process.env.TEST_SSH_KEY;
      rmSync(privateDir, { recursive: true, force: true });
    }
  });
});
