/**
 * pitr/stanza.ts: an S3 repository's CA file is checked before pgBackRest would read it (and fail with "unable to set
 * user-defined CA certificate location"): it must exist, and, when backupctl is root, be readable by the data
 * directory's owner, who runs pgBackRest and the server's archive_command. Nothing is written when it is refused.
 */
import assert from "node:assert/strict";
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, describe, it } from "node:test";
import type { PgBackRestS3Repository } from "../../src/config/types.ts";
import { SourceError } from "../../src/errors.ts";
import { runningAsRoot } from "../../src/pitr/run-as.ts";
import { pitrConfigDir, preparePgBackRest } from "../../src/pitr/stanza.ts";
import type { PgBackRestSource } from "../../src/pitr/types.ts";

const root = mkdtempSync(join(tmpdir(), "backupctl-stanza-test-"));
after(() => rmSync(root, { recursive: true, force: true }));

/** A user other than root to own the data directory (as postgres owns a real one). */
const owner = { uid: 54321, gid: 54321 };

function sourceWith(dataDirectory: string, caFile: string): PgBackRestSource {
  const repository: PgBackRestS3Repository = {
    type: "s3",
    endpoint: "https://minio.lan:9000",
    bucket: "backups",
    region: "us-east-1",
    path: "/pgbackrest",
    accessKeyId: "AKIATEST",
    secretAccessKey: { secret: "file", path: join(root, "secret") },
    caFile,
  };
  return {
    type: "pgbackrest",
    name: "main",
    stanza: "main",
    cluster: { dataDirectory, host: "/var/run/postgresql", database: "postgres" },
    repository,
    schedule: { full: "@weekly" },
    bin: "pgbackrest",
  };
}

describe("preparePgBackRest with an S3 repository's CA file", () => {
  writeFileSync(join(root, "secret"), "s3-secret", { mode: 0o600 });
  chmodSync(root, 0o711);
  const data = join(root, "cluster", "data");
  mkdirSync(data, { recursive: true });
  if (runningAsRoot()) {
    chownSync(join(root, "cluster"), owner.uid, owner.gid);
    chownSync(data, owner.uid, owner.gid);
  }

  it("refuses a CA file that does not exist, writing nothing", async () => {
    const source = sourceWith(data, join(root, "missing-ca.pem"));
    await assert.rejects(
      () => preparePgBackRest(source, { configDir: root }),
      (error: Error) =>
        error instanceof SourceError &&
        /repository\.caFile \S+missing-ca\.pem does not exist: name the PEM file of the store's CA/.test(error.message),
    );
    assert.equal(existsSync(dirname(pitrConfigDir(source))), false);
  });

  it("refuses a CA file in a folder the data directory's owner cannot enter, takes it where they can read it", async (t) => {
    if (!runningAsRoot()) return t.skip("needs root: the data directory's owner is then another user");
    const closed = join(root, "closed");
    mkdirSync(closed, { mode: 0o700 });
    writeFileSync(join(closed, "ca.pem"), "-----BEGIN CERTIFICATE-----\n", { mode: 0o644 });
    await assert.rejects(
      () => preparePgBackRest(sourceWith(data, join(closed, "ca.pem")), { configDir: root }),
      (error: Error) =>
        error instanceof SourceError &&
        error.message.includes(`cannot be read by the data directory's owner (uid ${owner.uid})`) &&
        error.message.includes(`${closed} cannot be entered`),
    );
    const unreadable = join(root, "unreadable-ca.pem");
    writeFileSync(unreadable, "-----BEGIN CERTIFICATE-----\n", { mode: 0o600 });
    await assert.rejects(
      () => preparePgBackRest(sourceWith(data, unreadable), { configDir: root }),
      /the file is not readable\): put it where that user can read it/,
    );
    const readable = join(root, "ca.pem");
    writeFileSync(readable, "-----BEGIN CERTIFICATE-----\n", { mode: 0o644 });
    const pgbackrest = await preparePgBackRest(sourceWith(data, readable), { configDir: root });
    assert.equal(pgbackrest.runAs?.uid, owner.uid);
  });
});
