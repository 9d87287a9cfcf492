/**
 * A throwaway S3-compatible server: s3rver (npm) on loopback, a random port, a temp folder, one bucket, and an access
 * key pair of its own (the built-in one revoked). It runs in a child process (s3rver-main.ts, under Bun: see
 * serverArgv), its credentials in that child's environment, never its argv.
 *
 * By default it speaks HTTPS with a certificate of a throwaway CA (`caFile`): restic 0.14 (minio-go) signs uploads
 * over plain HTTP with the streaming signature (`Content-Encoding: aws-chunked`, STREAMING-AWS4-HMAC-SHA256-PAYLOAD),
 * which s3rver 3.7.1 does not decode: it stores the chunk framing (`1b6;chunk-signature=…`) as the object's bytes, and
 * restic's next read fails with "Unmarshal: invalid character 'b' after top-level value". Over HTTPS minio-go sends
 * the payload unsigned in one piece, which s3rver stores as it is. s3rver checks the access key id; it does not check
 * version 4 signatures, so a wrong secret key would not be refused (tests check where the secret went instead).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { repoRoot } from "./cli.ts";
import { makeCertificate } from "./receivers.ts";
import { stopChild } from "./sshd.ts";

export interface S3Server {
  /** `https://127.0.0.1:PORT` (or http:// without TLS), no trailing slash. */
  endpoint: string;
  port: number;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** The PEM file of the CA that signed the server's certificate (TLS only). */
  caFile?: string;
  /** Where s3rver keeps the bucket's objects. */
  root: string;
  /** What the server logged (every request, its path and status). */
  log(): string;
  stop(): Promise<void>;
}

/**
 * s3rver runs under Bun (the project's dev dependency), whichever runtime runs the tests: under Deno 2's node:https,
 * s3rver's answers to GET over TLS stall until restic gives up (the body is never finished), so restic 0.14 hangs
 * reading its first key file.
 */
function serverArgv(script: string): string[] {
  return [join(repoRoot, "node_modules", "bun", "bin", "bun.exe"), "--no-install", script];
}

export async function startS3Server(options: { tls?: boolean } = {}): Promise<S3Server> {
  const dir = mkdtempSync(join(tmpdir(), "backupctl-s3rver-"));
  const root = join(dir, "data");
  mkdirSync(root);
  const tls = options.tls ?? true;
  const env: Record<string, string> = {
    ...process.env as Record<string, string>,
    S3RVER_ACCESS_KEY_ID: `AKIA${randomBytes(8).toString("hex").toUpperCase()}`,
    S3RVER_SECRET_ACCESS_KEY: `s3-secret-${randomBytes(16).toString("hex")}`,
  };
  let caFile: string | undefined;
  if (tls) {
    const certificate = makeCertificate(dir);
    writeFileSync(join(dir, "server.key"), certificate.key, { mode: 0o600 });
    writeFileSync(join(dir, "server.pem"), certificate.cert);
    env.S3RVER_TLS_KEY = join(dir, "server.key");
    env.S3RVER_TLS_CERT = join(dir, "server.pem");
    caFile = certificate.caFile;
  }
  const bucket = "backups";
  const [program, ...args] = serverArgv(join(repoRoot, "test", "support", "s3rver-main.ts"));
  // The log goes to a file, not a pipe: a test blocked in a synchronous call would leave a pipe undrained, and
  // s3rver, which logs every request, would stall on it.
  const logFile = join(dir, "s3rver.log");
  const logFd = openSync(logFile, "a");
  const child: ChildProcess = spawn(program, [...args, root, bucket], { env, stdio: ["ignore", logFd, logFd] });
  closeSync(logFd);
  const output = () => readFileSync(logFile, "utf8");
  const stop = async () => {
    try {
      await stopChild(child);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  let port: number | undefined;
  try {
    const deadline = Date.now() + 30_000;
    while (port === undefined) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`s3rver exited (${child.exitCode ?? child.signalCode}) before listening:\n${output()}`);
      }
      if (Date.now() > deadline) throw new Error(`s3rver did not start within 30 s:\n${output()}`);
      const found = /listening (\d+)/.exec(output());
      if (found) port = Number(found[1]);
      else await new Promise((resolve) => setTimeout(resolve, 50));
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    endpoint: `${tls ? "https" : "http"}://127.0.0.1:${port}`,
    port,
    bucket,
    accessKeyId: env.S3RVER_ACCESS_KEY_ID,
    secretAccessKey: env.S3RVER_SECRET_ACCESS_KEY,
    caFile,
    root,
    log: output,
    stop,
  };
}
