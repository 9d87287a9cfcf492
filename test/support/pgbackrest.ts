/**
 * A real PostgreSQL cluster archiving into a real pgBackRest repository, for tests: a server of postgres.ts restarted
 * with `archive_mode = on` and the `archive_command` backupctl prints, a stanza whose config (written by the engine,
 * src/pitr/stanza.ts, beside the data directory), lock, log, spool and (unless the test gives an S3 one) repository all
 * live in the server's temp folder. When the tests run as root, pgBackRest runs as the server's OS user
 * (src/pitr/run-as.ts), as in production.
 */
import { appendFileSync } from "node:fs";
import { join } from "node:path";
import type { PgBackRestRepository } from "../../src/config/types.ts";
import { requiredSettings } from "../../src/pitr/archive.ts";
import type { PgBackRest } from "../../src/pitr/pgbackrest.ts";
import { pitrConfigDir, preparePgBackRest } from "../../src/pitr/stanza.ts";
import type { PgBackRestRetention, PgBackRestSource } from "../../src/pitr/types.ts";
import { type PostgresServer, startPostgres } from "./postgres.ts";

export interface PgBackRestCluster {
  server: PostgresServer;
  /** The normalised source describing this cluster and stanza (socket connection as the superuser). */
  source: PgBackRestSource;
  /** The folder of the config file (and lock, log, spool). */
  configDir: string;
  configPath: string;
  pgbackrest: PgBackRest;
  /** Rewrites the config file with another retention. */
  setRetention(retention: PgBackRestRetention | undefined): Promise<void>;
  /** Ends the current WAL segment and waits until the archiver has pushed it; returns its name. */
  switchWal(): Promise<string>;
  stop(): Promise<void>;
}

/**
 * The `cluster: {…}` of a pgbackrest() source reaching this cluster, as text for a test's backup.config.ts (the
 * superuser over the socket), followed by a comma.
 */
export function clusterConfigText(cluster: PgBackRestCluster, indent = "        "): string {
  const { dataDirectory, host, port } = cluster.source.cluster;
  return [
    "cluster: {",
    `  dataDirectory: ${JSON.stringify(dataDirectory)},`,
    `  host: ${JSON.stringify(host)},`,
    `  port: ${port},`,
    '  user: "postgres",',
    "},",
  ].join(`\n${indent}`);
}

async function delay(ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * `repository`: where the stanza's backups go (default: a folder `repo` in the server's temp folder); an S3 one's
 * secret references must be resolvable in this process's environment.
 */
export async function startPgBackRestCluster(
  options: { stanza?: string; retention?: PgBackRestRetention; repository?: PgBackRestRepository } = {},
): Promise<PgBackRestCluster> {
  const server = await startPostgres();
  try {
    const stanza = options.stanza ?? "main";
    const dataDirectory = join(server.dir, "data");
    const source: PgBackRestSource = {
      type: "pgbackrest",
      name: stanza,
      stanza,
      cluster: { dataDirectory, host: server.socketDir, port: server.port, user: "postgres", database: "postgres" },
      repository: options.repository ?? { path: join(server.dir, "repo") },
      schedule: { full: "@weekly", incr: "@daily" },
      bin: "pgbackrest",
    };
    const configDir = pitrConfigDir(source);
    const write = (retention: PgBackRestRetention | undefined) =>
      preparePgBackRest(source, { configDir: server.dir, retention });
    const pgbackrest = await write(options.retention);
    const configPath = pgbackrest.configPath;
    await server.pause();
    appendFileSync(
      join(dataDirectory, "postgresql.conf"),
      ["", ...requiredSettings({ archiveCommand: pgbackrest.archivePushCommand() }), ""].join("\n"),
    );
    await server.resume();
    const switchWal = async () => {
      const segment = (await server.psql("SELECT pg_walfile_name(pg_switch_wal());")).trim();
      for (let wait = 20;; wait = Math.min(wait * 2, 500)) {
        const archived = (await server.psql("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver;")).trim();
        if (archived >= segment) return segment;
        const failed = (await server.psql("SELECT coalesce(last_failed_wal, '') FROM pg_stat_archiver;")).trim();
        if (failed === segment) throw new Error(`archiving ${segment} failed: see ${join(server.dir, "server.log")}`);
        await delay(wait);
      }
    };
    return {
      server,
      source,
      configDir,
      configPath,
      pgbackrest,
      setRetention: async (retention) => {
        await write(retention);
      },
      switchWal,
      stop: () => server.stop(),
    };
  } catch (error) {
    await server.stop();
    throw error;
  }
}
