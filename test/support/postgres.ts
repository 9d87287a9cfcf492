/**
 * A real, throwaway PostgreSQL server for tests: a fresh cluster in a temp folder, listening only on 127.0.0.1 at a
 * free port, its socket inside that folder. TCP connections must give a real password (scram-sha-256), so tests
 * exercise the same authentication as production; the helpers below use the socket as the trusted superuser.
 */
import { execFile, execFileSync } from "node:child_process";
import {
  appendFileSync,
  chownSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cachedTemplate, copyTemplate } from "./template-cache.ts";

/** A running test server; `stop()` must be called (in an `after` hook) whatever happens. */
export interface PostgresServer {
  host: "127.0.0.1";
  port: number;
  superuser: "postgres";
  /** The cluster's folder (data, socket, log), removed by `stop()`. */
  dir: string;
  /** The folder holding the server's socket: `psql -h <socketDir>` connects as the trusted superuser. */
  socketDir: string;
  /** Runs SQL (sent on stdin, never in argv) as the superuser; returns unaligned, tuples-only output. */
  psql(sql: string, database?: string): Promise<string>;
  createDatabase(name: string, owner?: string): Promise<void>;
  /** A login role that must authenticate with `password` over TCP. */
  createUser(name: string, password: string): Promise<void>;
  /** Stops the server (its connections are cut) and keeps its data: `resume()` starts it again on the same port. */
  pause(): Promise<void>;
  resume(): Promise<void>;
  stop(): Promise<void>;
}

const debianPackage = "postgresql";

/** The newest installed server's bin folder (/usr/lib/postgresql/<version>/bin), or a clear error naming the package. */
export function postgresBinDir(): string {
  const base = "/usr/lib/postgresql";
  const versions = existsSync(base)
    ? readdirSync(base).filter((v) => existsSync(join(base, v, "bin", "initdb"))).sort((a, b) => Number(b) - Number(a))
    : [];
  if (versions.length === 0) {
    throw new Error(
      `PostgreSQL server binaries (initdb, pg_ctl) not found under ${base}: install the Debian package ` +
        `"${debianPackage}" (apt-get install -y ${debianPackage})`,
    );
  }
  return join(base, versions[0], "bin");
}

/** A port that was free a moment ago on 127.0.0.1. */
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

/** Runs a program; rejects with its stderr when it fails. */
export function exec(
  program: string,
  args: string[],
  options: { input?: string; env?: Record<string, string> } = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(program, args, {
      env: { ...process.env, ...options.env } as Record<string, string>,
      maxBuffer: 256 * 1024 * 1024,
    }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${program} ${args.join(" ")} failed: ${String(stderr).trim() || error.message}`));
      else resolve(String(stdout));
    });
    child.stdin!.end(options.input ?? "");
  });
}

const isRoot = typeof process.getuid === "function" && process.getuid() === 0;

/** The `postgres` OS user's ids, for the folders it must own when the tests run as root. */
const serverUser = isRoot
  ? {
    uid: Number(execFileSync("id", ["-u", "postgres"]).toString().trim()),
    gid: Number(execFileSync("id", ["-g", "postgres"]).toString().trim()),
  }
  : { uid: 0, gid: 0 };

/** initdb and the server refuse to run as root: run them as the `postgres` OS user then. */
function asServerUser(program: string, args: string[]): [string, string[]] {
  return isRoot ? ["runuser", ["-u", "postgres", "--", program, ...args]] : [program, args];
}

/** Quotes an SQL identifier. */
export function ident(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** Quotes an SQL string literal. */
export function literal(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

const initdbArgs = ["-U", "postgres", "--auth=trust", "--encoding=UTF8", "--no-locale", "--no-sync"];

/** pg_hba.conf of every test cluster. */
const hba = [
  "# The helpers' superuser over the socket is trusted; every other connection must give its password.",
  "local all postgres trust",
  "local all all scram-sha-256",
  "host all all 127.0.0.1/32 scram-sha-256",
  "",
].join("\n");

/**
 * A cluster made by initdb once per version (template-cache.ts), in `<template>/data`, owned by the server user:
 * every test server starts from a copy of it.
 */
async function postgresTemplate(bin: string): Promise<string> {
  const version = (await exec(join(bin, "postgres"), ["--version"])).trim();
  return cachedTemplate("postgres", version, [...initdbArgs, hba], async (folder) => {
    if (isRoot) chownSync(folder, serverUser.uid, serverUser.gid);
    await exec(...asServerUser(join(bin, "initdb"), ["-D", join(folder, "data"), ...initdbArgs]));
    writeFileSync(join(folder, "data", "pg_hba.conf"), hba);
  });
}

/** Starts a fresh PostgreSQL cluster; see the module comment. */
export async function startPostgres(): Promise<PostgresServer> {
  const bin = postgresBinDir();
  const dir = mkdtempSync(join(tmpdir(), "backupctl-pg-"));
  const data = join(dir, "data");
  if (isRoot) chownSync(dir, serverUser.uid, serverUser.gid);
  const pgCtl = (args: string[]) => exec(...asServerUser(join(bin, "pg_ctl"), ["-D", data, ...args]));
  let started = false;
  try {
    await copyTemplate(join(await postgresTemplate(bin), "data"), data);
    let port = 0;
    // Another process may take the free port before the server binds it: try a few.
    for (let attempt = 1;; attempt++) {
      port = await freePort();
      appendFileSync(
        join(data, "postgresql.conf"),
        [
          "",
          "listen_addresses = '127.0.0.1'",
          `port = ${port}`,
          `unix_socket_directories = '${dir}'`,
          "password_encryption = 'scram-sha-256'",
          "max_connections = 30",
          // A test cluster needs no durability; these make setup and big inserts much faster.
          "fsync = off",
          "synchronous_commit = off",
          "full_page_writes = off",
          "",
        ].join("\n"),
      );
      try {
        await pgCtl(["-w", "-t", "60", "-l", join(dir, "server.log"), "start"]);
        started = true;
        break;
      } catch (error) {
        if (attempt >= 3) {
          const log = existsSync(join(dir, "server.log")) ? readFileSync(join(dir, "server.log"), "utf8") : "";
          throw new Error(`${(error as Error).message}\n${log}`);
        }
      }
    }
    const psql = (sql: string, database = "postgres") =>
      exec("psql", [
        "--no-psqlrc",
        "--host",
        dir,
        "--port",
        String(port),
        "--username",
        "postgres",
        "--dbname",
        database,
        "--no-align",
        "--tuples-only",
        "--quiet",
        "--set",
        "ON_ERROR_STOP=1",
      ], { input: sql });
    return {
      host: "127.0.0.1",
      port,
      superuser: "postgres",
      dir,
      socketDir: dir,
      psql,
      createDatabase: async (name, owner) => {
        await psql(`CREATE DATABASE ${ident(name)}${owner ? ` OWNER ${ident(owner)}` : ""};`);
      },
      createUser: async (name, password) => {
        await psql(`CREATE ROLE ${ident(name)} LOGIN PASSWORD ${literal(password)};`);
      },
      pause: async () => {
        await pgCtl(["-m", "fast", "-w", "stop"]);
        started = false;
      },
      resume: async () => {
        await pgCtl(["-w", "-t", "60", "-l", join(dir, "server.log"), "start"]);
        started = true;
      },
      stop: async () => {
        try {
          if (started) await pgCtl(["-m", "fast", "-w", "stop"]);
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      },
    };
  } catch (error) {
    if (started) await pgCtl(["-m", "immediate", "-w", "stop"]).catch(() => {});
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}
