/**
 * A real, throwaway MariaDB server for tests: a fresh data folder in a temp folder, listening only on 127.0.0.1 at a
 * free port, its socket inside that folder. Grant tables are on (real authentication): users created here must give
 * their password over TCP; the helpers talk to the server as root over the socket.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { exec, freePort } from "./postgres.ts";
import { cachedTemplate, copyTemplate } from "./template-cache.ts";

/** A running test server; `stop()` must be called (in an `after` hook) whatever happens. */
export interface MariadbServer {
  host: "127.0.0.1";
  port: number;
  /** The server's folder (data, socket, log), removed by `stop()`. */
  dir: string;
  socket: string;
  /** Runs SQL (sent on stdin, never in argv) as root over the socket; returns batch output without column names. */
  sql(sql: string, database?: string): Promise<string>;
  createDatabase(name: string): Promise<void>;
  /** A user that must authenticate with `password` from 127.0.0.1, with all privileges on `database`. */
  createUser(name: string, password: string, database: string): Promise<void>;
  stop(): Promise<void>;
}

/** Finds a server program on PATH or in /usr/sbin (not on every user's PATH), or names the package to install. */
function serverProgram(name: string): string {
  for (const dir of [...(process.env.PATH ?? "").split(":").filter(Boolean), "/usr/sbin", "/usr/bin"]) {
    if (existsSync(join(dir, name))) return join(dir, name);
  }
  throw new Error(
    `${name} not found: install the Debian package "mariadb-server" (apt-get install -y mariadb-server)`,
  );
}

/** Quotes an SQL string literal for MariaDB (backslashes are escapes there). */
export function mariadbLiteral(value: string): string {
  return `'${value.replaceAll("\\", "\\\\").replaceAll("'", "''")}'`;
}

/** Quotes an SQL identifier for MariaDB. */
export function mariadbIdent(name: string): string {
  return `\`${name.replaceAll("`", "``")}\``;
}

const isRoot = typeof process.getuid === "function" && process.getuid() === 0;

/**
 * A data folder made by mariadb-install-db once per version (template-cache.ts), in `<template>/data`: every test
 * server starts from a copy of it.
 */
async function mariadbTemplate(installDb: string, mariadbd: string, user: string[]): Promise<string> {
  const version = (await exec(mariadbd, ["--version"])).trim();
  const args = [...user, "--auth-root-authentication-method=normal", "--skip-test-db", "--skip-name-resolve"];
  return cachedTemplate("mariadb", version, args, async (folder) => {
    await exec(installDb, ["--no-defaults", `--datadir=${join(folder, "data")}`, ...args]);
  });
}

/** Starts a fresh MariaDB server; see the module comment. */
export async function startMariadb(): Promise<MariadbServer> {
  const installDb = serverProgram("mariadb-install-db");
  const mariadbd = serverProgram("mariadbd");
  const dir = mkdtempSync(join(tmpdir(), "backupctl-mariadb-"));
  const data = join(dir, "data");
  const socket = join(dir, "mysqld.sock");
  const log = join(dir, "server.log");
  mkdirSync(join(dir, "tmp"));
  // The server refuses to run as root unless told to; the temp folder belongs to root, so run it as root.
  const user = isRoot ? ["--user=root"] : [];
  let server: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  const sql = (text: string, database?: string) =>
    exec("mariadb", [
      "--no-defaults",
      `--socket=${socket}`,
      "--user=root",
      "--batch",
      "--skip-column-names",
      ...(database ? [`--database=${database}`] : []),
    ], { input: text });
  const stopServer = async () => {
    if (!server || server.exitCode !== null || server.signalCode !== null) return;
    await exec("mariadb-admin", ["--no-defaults", `--socket=${socket}`, "--user=root", "shutdown"]).catch(() => {});
    const timer = setTimeout(() => server?.kill("SIGKILL"), 15_000);
    await exited;
    clearTimeout(timer);
  };
  try {
    await copyTemplate(join(await mariadbTemplate(installDb, mariadbd, user), "data"), data);
    let port = 0;
    // Another process may take the free port before the server binds it: try a few.
    for (let attempt = 1;; attempt++) {
      port = await freePort();
      server = spawn(mariadbd, [
        "--no-defaults",
        `--datadir=${data}`,
        ...user,
        `--port=${port}`,
        "--bind-address=127.0.0.1",
        `--socket=${socket}`,
        `--pid-file=${join(dir, "mariadbd.pid")}`,
        `--log-error=${log}`,
        `--tmpdir=${join(dir, "tmp")}`,
        "--skip-name-resolve",
        "--skip-log-bin",
        // A test server needs no durability; this makes setup and inserts faster.
        "--innodb-flush-log-at-trx-commit=0",
        "--innodb-buffer-pool-size=64M",
      ], { stdio: "ignore" });
      const child = server;
      exited = new Promise((resolve) => child.once("exit", () => resolve()));
      if (await waitReady(socket, child)) break;
      await stopServer();
      if (attempt >= 3) {
        throw new Error(`mariadbd did not start:\n${existsSync(log) ? readFileSync(log, "utf8").slice(-4000) : ""}`);
      }
    }
    return {
      host: "127.0.0.1",
      port,
      dir,
      socket,
      sql,
      createDatabase: async (name) => {
        await sql(`CREATE DATABASE ${mariadbIdent(name)} CHARACTER SET utf8mb4;`);
      },
      createUser: async (name, password, database) => {
        await sql(
          `CREATE USER ${mariadbLiteral(name)}@'127.0.0.1' IDENTIFIED BY ${mariadbLiteral(password)};\n` +
            `GRANT ALL PRIVILEGES ON ${mariadbIdent(database)}.* TO ${mariadbLiteral(name)}@'127.0.0.1';`,
        );
      },
      stop: async () => {
        try {
          await stopServer();
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      },
    };
  } catch (error) {
    await stopServer().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

/** Waits until the server answers a ping on its socket; false when it exits first or takes over a minute. */
async function waitReady(socket: string, child: ChildProcess): Promise<boolean> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) return false;
    const ok = await exec("mariadb-admin", ["--no-defaults", `--socket=${socket}`, "--user=root", "ping"])
      .then(() => true, () => false);
    if (ok) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return false;
}
