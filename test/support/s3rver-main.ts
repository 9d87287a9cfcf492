/**
 * The s3rver process of test/support/s3rver.ts: an S3-compatible server on loopback, storing into the folder given as
 * the first argument, with one bucket (the second). The access key pair it accepts comes from its environment
 * (S3RVER_ACCESS_KEY_ID, S3RVER_SECRET_ACCESS_KEY), never its argv; with S3RVER_TLS_KEY and S3RVER_TLS_CERT (PEM
 * files) it speaks HTTPS. It prints `listening PORT` once it accepts connections.
 */
import { createHash } from "node:crypto";
import { createWriteStream, readFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname } from "node:path";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";

const require = createRequire(import.meta.url);
const S3rver = require("s3rver");
const { DUMMY_ACCOUNT } = require("s3rver/lib/models/account.js");
const FilesystemStore = require("s3rver/lib/stores/filesystem.js");

/*
 * s3rver 3.7.1 answers a PUT before the object's file is written: it resolves when its own hashing stream finishes (or,
 * for a body in memory, right after `end()`), not when the file stream does, and that stream opens its file
 * asynchronously. A GET right after could find no file (pgBackRest, on a loaded machine: "unable to open missing file
 * '…/backup.manifest' for read"); real S3 reads its writes. The same store, answering once the file is complete.
 */
FilesystemStore.prototype.putObject = async function (
  this: {
    getResourcePath(bucket: string, key: string, kind: string): string;
    putMetadata(bucket: string, key: string, metadata: unknown, md5: string): Promise<void>;
  },
  object: { bucket: string; key: string; content: Buffer | NodeJS.ReadableStream; metadata: unknown },
) {
  const objectPath = this.getResourcePath(object.bucket, object.key, "object");
  await mkdir(dirname(objectPath), { recursive: true });
  const md5 = createHash("md5");
  let size = 0;
  const count = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      md5.update(chunk);
      size += chunk.length;
      callback(null, chunk);
    },
  });
  const source = Buffer.isBuffer(object.content) ? Readable.from([object.content]) : object.content;
  await pipeline(source, count, createWriteStream(objectPath));
  const digest = md5.digest("hex");
  await this.putMetadata(object.bucket, object.key, object.metadata, digest);
  return { size, md5: digest };
};

const [directory, bucket] = process.argv.slice(2);
const accessKeyId = process.env.S3RVER_ACCESS_KEY_ID;
const secretAccessKey = process.env.S3RVER_SECRET_ACCESS_KEY;
if (!directory || !bucket || !accessKeyId || !secretAccessKey) {
  console.error("usage: s3rver-main.ts DIRECTORY BUCKET, with S3RVER_ACCESS_KEY_ID and S3RVER_SECRET_ACCESS_KEY set");
  process.exit(64);
}
// Only this key pair is known: the built-in S3RVER/S3RVER pair is revoked.
DUMMY_ACCOUNT.revokeAccessKey("S3RVER");
DUMMY_ACCOUNT.createKeyPair(accessKeyId, secretAccessKey);
const tls = process.env.S3RVER_TLS_KEY && process.env.S3RVER_TLS_CERT
  ? { key: readFileSync(process.env.S3RVER_TLS_KEY), cert: readFileSync(process.env.S3RVER_TLS_CERT) }
  : {};
const server = new S3rver({
  address: "127.0.0.1",
  port: 0,
  ...tls,
  directory,
  silent: false,
  vhostBuckets: false,
  configureBuckets: [{ name: bucket, configs: [] }],
});
const { port } = await server.run();
console.log(`listening ${port}`);
process.on("SIGTERM", () => server.close().then(() => process.exit(0)));
