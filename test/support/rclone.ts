/**
 * A throwaway restic REST server: `rclone serve restic` on loopback, a random free port, a temp folder, HTTP basic
 * auth. The credentials reach rclone through its environment (RCLONE_USER / RCLONE_PASS), never its argv, so a
 * test that scans every process's command line for the password does not find it in the server's own.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, requireProgram, stopChild } from "./sshd.ts";

export interface RestServer {
  /** The repository URL with the credentials: `rest:http://USER:PASSWORD@127.0.0.1:PORT/`. */
  url: string;
  /** The same without credentials (requests get 401). */
  publicUrl: string;
  port: number;
  user: string;
  password: string;
  /** Where rclone stores the repositories. */
  root: string;
  stop(): Promise<void>;
}

/** Waits until the server answers HTTP at all (a 401 without credentials is an answer). */
async function waitForHttp(port: number, child: ChildProcess, log: () => string, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`rclone serve restic exited (${child.exitCode ?? child.signalCode}) before answering:\n${log()}`);
    }
    try {
      const response = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(1_000) });
      await response.body?.cancel();
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  throw new Error(`rclone serve restic did not answer on 127.0.0.1:${port} within ${timeoutMs} ms:\n${log()}`);
}

export async function startRestServer(): Promise<RestServer> {
  requireProgram("rclone", "rclone");
  const dir = mkdtempSync(join(tmpdir(), "backupctl-rclone-"));
  const root = join(dir, "data");
  mkdirSync(root);
  const rcloneConfig = join(dir, "rclone.conf");
  writeFileSync(rcloneConfig, "");
  const user = "backup";
  const password = `rest-${randomBytes(12).toString("hex")}`;
  const port = await freePort();
  let output = "";
  const child = spawn("rclone", ["serve", "restic", "--addr", `127.0.0.1:${port}`, root], {
    env: { ...process.env, RCLONE_CONFIG: rcloneConfig, RCLONE_USER: user, RCLONE_PASS: password },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout!.on("data", (chunk) => (output += chunk));
  child.stderr!.on("data", (chunk) => (output += chunk));
  // The suite's restic init (test/support/restic-init.ts) finds the folder behind this port here.
  const registry = process.env.BACKUPCTL_TEST_REST_FOLDERS;
  const entry = registry ? join(registry, String(port)) : undefined;
  const stop = async () => {
    try {
      if (entry) rmSync(entry, { force: true });
      await stopChild(child);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  try {
    await waitForHttp(port, child, () => output);
    if (entry) writeFileSync(entry, root);
    // Basic auth really is on: a request without credentials is refused.
    const anonymous = await fetch(`http://127.0.0.1:${port}/config`);
    await anonymous.body?.cancel();
    if (anonymous.status !== 401) {
      throw new Error(`rclone serve restic accepted a request without credentials (HTTP ${anonymous.status})`);
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    url: `rest:http://${user}:${password}@127.0.0.1:${port}/`,
    publicUrl: `rest:http://127.0.0.1:${port}/`,
    port,
    user,
    password,
    root,
    stop,
  };
}
