/**
 * pitr/config-file.ts: the ini text rendered from a source (retention, cipher, socket connection, an S3
 * repository), the refusals (a remote host, a line break, a bad stanza name), and the files written: the config 0600
 * holding the passphrase that no other file, argv or environment gets, and the pgpass file of a cluster with a
 * password.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import type { PgBackRestS3Repository } from "../../src/config/types.ts";
import { renderPgBackRestConfig, settingsOf, writePgBackRestConfig } from "../../src/pitr/config-file.ts";
import { PgBackRest } from "../../src/pitr/pgbackrest.ts";
import { repositoryLabel } from "../../src/pitr/repository.ts";
import type { PgBackRestSource } from "../../src/pitr/types.ts";

const root = mkdtempSync(join(tmpdir(), "backupctl-pitr-config-test-"));
after(() => rmSync(root, { recursive: true, force: true }));

const source: PgBackRestSource = {
  type: "pgbackrest",
  name: "main",
  stanza: "main",
  cluster: { dataDirectory: "/var/lib/postgresql/15/main", host: "/var/run/postgresql", port: 5433, database: "app" },
  repository: { path: "/srv/pgbackrest" },
  cipherPassphrase: { secret: "env", name: "PITR_TEST_CIPHER" },
  processMax: 2,
  schedule: { full: "@weekly", incr: "@daily" },
  bin: "pgbackrest",
};

describe("the pgBackRest config file", () => {
  it("renders the repository, retention, cipher and the cluster's socket connection", () => {
    process.env.PITR_TEST_CIPHER = "correct horse battery";
    const settings = settingsOf(source, { dir: "/state/pgbackrest/main", configDir: root, retention: { full: 2 } });
    const text = renderPgBackRestConfig(settings);
    assert.match(text, /^\[global\]$/m);
    for (
      const line of [
        "repo1-path=/srv/pgbackrest",
        "lock-path=/state/pgbackrest/main/lock",
        "log-path=/state/pgbackrest/main/log",
        "repo1-retention-full-type=count",
        "repo1-retention-full=2",
        "repo1-cipher-type=aes-256-cbc",
        "repo1-cipher-pass=correct horse battery",
        "process-max=2",
        "[main]",
        "pg1-path=/var/lib/postgresql/15/main",
        "pg1-socket-path=/var/run/postgresql",
        "pg1-port=5433",
        "pg1-database=app",
      ]
    ) assert.ok(text.split("\n").includes(line), `${line} in\n${text}`);
    assert.doesNotMatch(text, /repo1-retention-diff|pg1-user/);
  });

  it("renders an S3 repository: endpoint split into host and port, path-style by default, keys resolved", () => {
    process.env.PITR_TEST_S3_KEY = "AKIATEST";
    process.env.PITR_TEST_S3_SECRET = "s3-secret-value";
    const repository: PgBackRestS3Repository = {
      type: "s3",
      endpoint: "https://minio.lan:9000",
      bucket: "backups",
      region: "us-east-1",
      path: "/pgbackrest",
      accessKeyId: { secret: "env", name: "PITR_TEST_S3_KEY" },
      secretAccessKey: { secret: "env", name: "PITR_TEST_S3_SECRET" },
      caFile: "/etc/ssl/private-ca.pem",
    };
    const s3: PgBackRestSource = { ...source, cipherPassphrase: undefined, repository };
    const text = renderPgBackRestConfig(settingsOf(s3, { dir: "/state/pgbackrest/main", configDir: root }));
    const global = text.split("\n[main]")[0].split("\n");
    for (
      const line of [
        "repo1-type=s3",
        "repo1-path=/pgbackrest",
        "repo1-s3-endpoint=minio.lan",
        "repo1-storage-port=9000",
        "repo1-s3-bucket=backups",
        "repo1-s3-region=us-east-1",
        "repo1-s3-uri-style=path",
        "repo1-s3-key=AKIATEST",
        "repo1-s3-key-secret=s3-secret-value",
        "repo1-storage-ca-file=/etc/ssl/private-ca.pem",
      ]
    ) assert.ok(global.includes(line), `${line} in [global] of\n${text}`);
    const hostStyle = renderPgBackRestConfig(settingsOf(
      { ...s3, repository: { ...repository, endpoint: "s3.eu-central-1.amazonaws.com", uriStyle: "host" as const } },
      { dir: root, configDir: root },
    ));
    assert.match(hostStyle, /^repo1-s3-endpoint=s3\.eu-central-1\.amazonaws\.com$/m);
    assert.match(hostStyle, /^repo1-s3-uri-style=host$/m);
    assert.doesNotMatch(hostStyle, /repo1-storage-port/);
    assert.equal(repositoryLabel(repository), "s3:https://minio.lan:9000/backups/pgbackrest");
    assert.equal(repositoryLabel(source.repository), "/srv/pgbackrest");
    delete process.env.PITR_TEST_S3_KEY;
    delete process.env.PITR_TEST_S3_SECRET;
  });

  it("refuses a remote host, a line break and a stanza name pgBackRest cannot use", () => {
    assert.throws(
      () =>
        settingsOf({ ...source, cluster: { ...source.cluster, host: "db.internal" } }, { dir: root, configDir: root }),
      /cluster.host "db.internal" is not local.*socket folder/,
    );
    process.env.PITR_TEST_CIPHER = "two\nlines";
    assert.throws(
      () => renderPgBackRestConfig(settingsOf(source, { dir: root, configDir: root })),
      /repo1-cipher-pass holds a line break/,
    );
    delete process.env.PITR_TEST_CIPHER;
    assert.throws(
      () =>
        renderPgBackRestConfig(
          settingsOf({ ...source, cipherPassphrase: undefined, stanza: "a b" }, { dir: root, configDir: root }),
        ),
      /stanza "a b": use letters/,
    );
  });

  it("writes the config 0600 with its folders, a pgpass file for a password, and keeps the secrets out of argv", async () => {
    process.env.PITR_TEST_CIPHER = "s3cret-passphrase";
    process.env.PITR_TEST_PGPW = "db:pass\\word";
    const withPassword: PgBackRestSource = {
      ...source,
      cluster: { ...source.cluster, user: "backup", password: { secret: "env", name: "PITR_TEST_PGPW" } },
    };
    const dir = join(root, "pgbackrest", "main");
    const path = await writePgBackRestConfig(dir, settingsOf(withPassword, { dir, configDir: root }));
    assert.equal(path, join(dir, "main.conf"));
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.match(readFileSync(path, "utf8"), /repo1-cipher-pass=s3cret-passphrase/);
    for (const folder of ["lock", "log", "spool"]) assert.ok(statSync(join(dir, folder)).isDirectory());
    assert.equal(statSync(join(dir, "pgpass")).mode & 0o777, 0o600);
    assert.equal(readFileSync(join(dir, "pgpass"), "utf8"), "*:*:*:backup:db\\:pass\\\\word\n");
    const pgbackrest = new PgBackRest({ configPath: path, stanza: "main" });
    const argv = [...pgbackrest.argv("backup", ["--type=full"]), pgbackrest.archivePushCommand()].join(" ");
    assert.doesNotMatch(argv, /s3cret|pass\\word/);
    assert.equal(pgbackrest.archivePushCommand(), `pgbackrest --config=${path} --stanza=main archive-push %p`);
    // Written again without a password: the pgpass file goes.
    await writePgBackRestConfig(dir, settingsOf(source, { dir, configDir: root }));
    assert.equal(existsSync(join(dir, "pgpass")), false);
    delete process.env.PITR_TEST_CIPHER;
    delete process.env.PITR_TEST_PGPW;
  });
});
