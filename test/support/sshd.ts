/**
 * A throwaway OpenSSH server on loopback as an SFTP backend for restic: its own host key, a client key, an
 * authorized_keys file and a config in a temp folder; `sshd -D -e` on a random free port, run as a child process.
 * Tests run as root, so the login is root with the client key only (no passwords, no PAM).
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

const sshd = "/usr/sbin/sshd";

export interface SftpServer {
  port: number;
  /** The login user (root: tests run as root). */
  user: string;
  /** The client's private key (ed25519, no passphrase). */
  keyFile: string;
  /** A second authorized client key, protected by `passphrase`. */
  lockedKeyFile: string;
  passphrase: string;
  /** The server's known_hosts line for its current port: `[127.0.0.1]:PORT ssh-ed25519 AAAA…`. */
  knownHostsLine: string;
  /** A folder for repositories, e.g. `sftp:root@127.0.0.1:${root}/repo`. */
  root: string;
  /** The ssh command for restic's `-o sftp.command=…` (restic then ignores host and port in the URL). */
  sftpCommand: string;
  /** Stops sshd but keeps keys, config and repositories, as if the server went down. */
  halt(): Promise<void>;
  /**
   * Starts a new sshd with the same keys, config and root, on the same port when it is still free; otherwise on a
   * new one (then `port` and `sftpCommand` change).
   */
  restart(): Promise<void>;
  /** Stops sshd and removes everything (keys, config, repositories). */
  stop(): Promise<void>;
}

/** Fails with the Debian package to install when a program is missing. */
export function requireProgram(program: string, debianPackage: string): void {
  const found = program.startsWith("/") ? existsSync(program) : onPath(program);
  if (!found) {
    throw new Error(
      `${program} is not installed: install the Debian package ${debianPackage} ` +
        `(apt-get install ${debianPackage}); these tests need the real program`,
    );
  }
}

function onPath(program: string): boolean {
  try {
    execFileSync("sh", ["-c", 'command -v "$1"', "sh", program], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => {
      socket.destroy();
      resolve(false);
    });
  });
}

/** Waits until a child process listens on the port; fails early with its log when it exits first. */
export async function waitForPort(
  port: number,
  child: ChildProcess,
  log: () => string,
  what: string,
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${what} exited (${child.exitCode ?? child.signalCode}) before listening:\n${log()}`);
    }
    if (await accepts(port)) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`${what} did not listen on 127.0.0.1:${port} within ${timeoutMs} ms:\n${log()}`);
}

/** Stops a child process: SIGTERM, then SIGKILL after a grace period; resolves when it has exited. */
export async function stopChild(child: ChildProcess | undefined, graceMs = 5_000): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await exited;
  clearTimeout(timer);
}

export async function startSftp(): Promise<SftpServer> {
  requireProgram(sshd, "openssh-server");
  requireProgram("ssh", "openssh-client");
  requireProgram("ssh-keygen", "openssh-client");
  mkdirSync("/run/sshd", { recursive: true }); // sshd's privilege separation folder
  const dir = mkdtempSync(join(tmpdir(), "backupctl-sshd-"));
  const root = join(dir, "data");
  mkdirSync(root);
  const hostKey = join(dir, "host_ed25519");
  const keyFile = join(dir, "client_ed25519");
  const authorizedKeys = join(dir, "authorized_keys");
  const configFile = join(dir, "sshd_config");
  execFileSync("ssh-keygen", ["-q", "-N", "", "-t", "ed25519", "-f", hostKey, "-C", "backupctl-test-host"]);
  execFileSync("ssh-keygen", ["-q", "-N", "", "-t", "ed25519", "-f", keyFile, "-C", "backupctl-test-client"]);
  const lockedKeyFile = join(dir, "client_locked_ed25519");
  const passphrase = `pass-${randomBytes(8).toString("hex")}`;
  execFileSync("ssh-keygen", ["-q", "-N", passphrase, "-t", "ed25519", "-f", lockedKeyFile, "-C", "backupctl-locked"]);
  writeFileSync(authorizedKeys, readFileSync(`${keyFile}.pub`, "utf8") + readFileSync(`${lockedKeyFile}.pub`, "utf8"));
  const hostPublicKey = readFileSync(`${hostKey}.pub`, "utf8").trim().split(/\s+/).slice(0, 2).join(" ");

  let child: ChildProcess | undefined;
  let output = "";
  const server: SftpServer = {
    port: 0,
    user: "root",
    keyFile,
    lockedKeyFile,
    passphrase,
    knownHostsLine: "",
    root,
    sftpCommand: "",
    halt: async () => {
      await stopChild(child);
      child = undefined;
    },
    restart: async () => {
      await server.halt();
      await launch((await portFree(server.port)) ? server.port : await freePort());
    },
    stop: async () => {
      try {
        await server.halt();
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };

  async function launch(port: number): Promise<void> {
    writeFileSync(
      configFile,
      [
        "ListenAddress 127.0.0.1",
        `Port ${port}`,
        `HostKey ${hostKey}`,
        `PidFile ${join(dir, "sshd.pid")}`,
        `AuthorizedKeysFile ${authorizedKeys}`,
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PubkeyAuthentication yes",
        "StrictModes no",
        "UsePAM no",
        "PermitRootLogin prohibit-password",
        "AllowUsers root",
        "Subsystem sftp internal-sftp",
        "",
      ].join("\n"),
    );
    output = "";
    const started = spawn(sshd, ["-D", "-e", "-f", configFile], { stdio: ["ignore", "pipe", "pipe"] });
    started.stdout!.on("data", (chunk) => (output += chunk));
    started.stderr!.on("data", (chunk) => (output += chunk));
    child = started;
    try {
      await waitForPort(port, started, () => output, "sshd");
    } catch (error) {
      await stopChild(started);
      throw error;
    }
    server.port = port;
    server.knownHostsLine = `[127.0.0.1]:${port} ${hostPublicKey}`;
    server.sftpCommand = `ssh -i ${keyFile} -p ${port} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null ` +
      "-o BatchMode=yes root@127.0.0.1 -s sftp";
  }

  try {
    await launch(await freePort());
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return server;
}
