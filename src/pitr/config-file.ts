/**
 * pgBackRest's configuration, rendered from a `pgbackrest()` source into an ini file that backupctl passes with
 * `--config`. The file is the only place a secret goes (the repository's cipher passphrase, an S3 repository's keys):
 * it is 0600, owned by the user pgBackRest runs as (run-as.ts), and lasts, because the server's `archive_command`
 * reads it on every WAL segment. Its folder also holds pgBackRest's lock, log and spool folders, so nothing is written
 * to /tmp/pgbackrest or /var/log/pgbackrest, and a pgpass file when the cluster needs a password.
 */
import { mkdirSync, rmSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import { resolveSecret } from "../config/secrets.ts";
import { SourceError } from "../errors.ts";
import { writeLastingPrivateFile } from "../exec/private-file.ts";
import { repositoryLines, type RepositorySettings, repositorySettings } from "./repository.ts";
import { handOver, type OsUser } from "./run-as.ts";
import type { PgBackRestRetention, PgBackRestSource } from "./types.ts";

/** Everything the config file says, secrets resolved. */
export interface PgBackRestSettings {
  stanza: string;
  /** The folder of the config file and of pgBackRest's lock, log and spool folders. */
  dir: string;
  dataDirectory: string;
  /** The server's socket folder; unset: libpq's default. pgBackRest reaches a local cluster by its socket only. */
  socketPath?: string;
  port?: number;
  user?: string;
  database?: string;
  /** The cluster role's password: written to a pgpass file (0600) beside the config, which pgBackRest's libpq reads. */
  password?: string;
  /** repo1: a local folder or an S3 bucket, its keys resolved (repository.ts). */
  repository: RepositorySettings;
  cipherPassphrase?: string;
  processMax?: number;
  retention?: PgBackRestRetention;
}

/** The config file's name in its folder. */
export function configFileName(stanza: string): string {
  return `${stanza}.conf`;
}

/** The pgpass file of a cluster that needs a password, beside the config. */
export function pgpassPath(dir: string): string {
  return join(dir, "pgpass");
}

/**
 * The settings of a source: its secrets resolved (they are remembered for redaction), `dir` where its config lives
 * (a folder the cluster's OS user can reach: the server's archive_command reads the file), `retention` as the
 * project's retention maps to pgBackRest's.
 */
export function settingsOf(
  source: PgBackRestSource,
  options: { dir: string; configDir: string; retention?: PgBackRestRetention },
): PgBackRestSettings {
  const host = source.cluster.host;
  if (host !== undefined && !isAbsolute(host) && !["localhost", "127.0.0.1", "::1"].includes(host)) {
    throw new SourceError(
      `pgbackrest source ${source.name}: cluster.host "${host}" is not local. pgBackRest backs up a cluster on this ` +
        "machine through its socket: set cluster.host to the socket folder (e.g. /var/run/postgresql)",
    );
  }
  return {
    stanza: source.stanza,
    dir: options.dir,
    dataDirectory: source.cluster.dataDirectory,
    socketPath: host !== undefined && isAbsolute(host) ? host : undefined,
    port: source.cluster.port,
    user: source.cluster.user,
    database: source.cluster.database,
    password: source.cluster.password ? resolveSecret(source.cluster.password, options.configDir) : undefined,
    repository: repositorySettings(source.repository, options.configDir),
    cipherPassphrase: source.cipherPassphrase ? resolveSecret(source.cipherPassphrase, options.configDir) : undefined,
    processMax: source.processMax,
    retention: options.retention,
  };
}

/** One `key=value` line; a value with a line break would end the line early and is refused. */
function line(key: string, value: string | number): string {
  const text = String(value);
  if (/[\r\n]/.test(text)) {
    throw new SourceError(`pgBackRest setting ${key} holds a line break, which its config file cannot hold`);
  }
  return `${key}=${text}`;
}

/** The text of the config file. */
export function renderPgBackRestConfig(settings: PgBackRestSettings): string {
  const global = [
    ...repositoryLines(settings.repository).map(([key, value]) => line(key, value)),
    line("lock-path", join(settings.dir, "lock")),
    line("log-path", join(settings.dir, "log")),
    line("spool-path", join(settings.dir, "spool")),
    // Warnings and errors on stderr (the audit keeps its tail); the detail in the log file beside the config.
    line("log-level-console", "warn"),
    line("log-level-stderr", "warn"),
    line("log-level-file", "info"),
    // A backup starts with a checkpoint now, not at the next scheduled one (up to checkpoint_timeout later).
    line("start-fast", "y"),
  ];
  if (settings.processMax !== undefined) global.push(line("process-max", settings.processMax));
  if (settings.retention) {
    global.push(line("repo1-retention-full-type", "count"), line("repo1-retention-full", settings.retention.full));
    if (settings.retention.diff !== undefined) global.push(line("repo1-retention-diff", settings.retention.diff));
  }
  if (settings.cipherPassphrase !== undefined) {
    global.push(line("repo1-cipher-type", "aes-256-cbc"), line("repo1-cipher-pass", settings.cipherPassphrase));
  }
  const stanza = [line("pg1-path", settings.dataDirectory)];
  if (settings.socketPath !== undefined) stanza.push(line("pg1-socket-path", settings.socketPath));
  if (settings.port !== undefined) stanza.push(line("pg1-port", settings.port));
  if (settings.user !== undefined) stanza.push(line("pg1-user", settings.user));
  if (settings.database !== undefined) stanza.push(line("pg1-database", settings.database));
  if (!/^[A-Za-z0-9_.-]+$/.test(settings.stanza)) {
    throw new SourceError(
      `pgBackRest stanza "${settings.stanza}": use letters, digits, "_", "." and "-" only (it names a section and ` +
        "folders of the repository)",
    );
  }
  return [
    "# Written by backupctl from its configuration: edit that, not this file (it is rewritten).",
    "[global]",
    ...global,
    "",
    `[${settings.stanza}]`,
    ...stanza,
    "",
  ].join("\n");
}

/**
 * Writes the config file (0600) into `dir` and makes its lock, log and spool folders, all given to `owner` (the user
 * pgBackRest runs as, when backupctl is root); returns the file's path.
 */
export function writePgBackRestConfig(
  dir: string,
  settings: Omit<PgBackRestSettings, "dir">,
  owner?: OsUser,
): Promise<string> {
  const path = join(dir, configFileName(settings.stanza));
  const text = renderPgBackRestConfig({ ...settings, dir });
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  handOver(dir, owner);
  for (const folder of ["lock", "log", "spool"]) {
    mkdirSync(join(dir, folder), { recursive: true, mode: 0o700 });
    handOver(join(dir, folder), owner);
  }
  writeLastingPrivateFile(path, text);
  handOver(path, owner);
  const pgpass = pgpassPath(dir);
  if (settings.password === undefined) rmSync(pgpass, { force: true });
  else {
    // Any host, port and database of this cluster, for the configured role only.
    const escape = (text: string) => text.replaceAll("\\", "\\\\").replaceAll(":", "\\:");
    writeLastingPrivateFile(
      pgpass,
      `*:*:*:${settings.user ? escape(settings.user) : "*"}:${escape(settings.password)}\n`,
    );
    handOver(pgpass, owner);
  }
  return Promise.resolve(path);
}
