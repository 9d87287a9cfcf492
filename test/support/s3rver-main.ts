/**
 * The s3rver process of test/support/s3rver.ts: an S3-compatible server on loopback, storing into the folder given as
 * the first argument, with one bucket (the second). The access key pair it accepts comes from its environment
 * (S3RVER_ACCESS_KEY_ID, S3RVER_SECRET_ACCESS_KEY), never its argv; with S3RVER_TLS_KEY and S3RVER_TLS_CERT (PEM
 * files) it speaks HTTPS. It prints `listening PORT` once it accepts connections.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const S3rver = require("s3rver");
const { DUMMY_ACCOUNT } = require("s3rver/lib/models/account.js");

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
