/**
 * A source's pgBackRest, ready to run: its config written where the server's archive_command finds it, and the
 * program set to run as the right OS user. The config's folder is `<parent of the data directory>/backupctl-pgbackrest/
 * <stanza>`: stable whatever state folder or invocation backupctl uses (postgresql.conf names it in archive_command),
 * owned by the cluster's OS user who runs archive-push (on Debian, /var/lib/postgresql/15/backupctl-pgbackrest/main),
 * and outside the data directory, so the passphrase in it is not copied into the backups themselves.
 */
import { existsSync, mkdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { SourceError } from "../errors.ts";
import { settingsOf, writePgBackRestConfig } from "./config-file.ts";
import { PgBackRest } from "./pgbackrest.ts";
import { folderBlocking, handOver, type OsUser, ownerToRunAs } from "./run-as.ts";
import type { PgBackRestRetention, PgBackRestSource } from "./types.ts";

/** The folder of a source's pgBackRest config, lock, log and spool folders. */
export function pitrConfigDir(source: PgBackRestSource): string {
  return join(dirname(source.cluster.dataDirectory), "backupctl-pgbackrest", source.stanza);
}

/**
 * Writes the source's config (again: it follows the backupctl config) and returns its pgBackRest. `configDir` is
 * where the backupctl config is (for file() secrets); `retention` as retention.ts maps the project's.
 */
export async function preparePgBackRest(
  source: PgBackRestSource,
  options: { configDir: string; retention?: PgBackRestRetention },
): Promise<PgBackRest> {
  const data = source.cluster.dataDirectory;
  if (!existsSync(data)) {
    throw new SourceError(
      `pgbackrest source ${source.name}: the cluster's data directory ${data} does not exist: set ` +
        "cluster.dataDirectory to the folder of PG_VERSION (SHOW data_directory)",
    );
  }
  const owner = ownerToRunAs(data);
  checkCaFile(source, owner);
  const dir = pitrConfigDir(source);
  const parent = dirname(dir);
  if (!existsSync(parent)) {
    mkdirSync(parent, { recursive: true, mode: 0o700 });
    handOver(parent, owner);
  }
  const settings = settingsOf(source, { dir, configDir: options.configDir, retention: options.retention });
  const configPath = await writePgBackRestConfig(dir, settings, owner);
  return new PgBackRest({ bin: source.bin, configPath, stanza: source.stanza, runAs: owner });
}

/**
 * An S3 repository's CA file must be there and readable by the user pgBackRest runs as (the server's archive_command
 * reads it too): pgBackRest itself only says "unable to set user-defined CA certificate location".
 */
function checkCaFile(source: PgBackRestSource, owner: OsUser | undefined): void {
  if (source.repository.type !== "s3" || source.repository.caFile === undefined) return;
  const caFile = source.repository.caFile;
  const where = `pgbackrest source ${source.name}: repository.caFile ${caFile}`;
  if (!existsSync(caFile)) throw new SourceError(`${where} does not exist: name the PEM file of the store's CA`);
  if (owner === undefined) return;
  const blocking = folderBlocking(caFile, owner);
  const stat = statSync(caFile);
  const readable = stat.uid === owner.uid
    ? (stat.mode & 0o400) !== 0
    : stat.gid === owner.gid
    ? (stat.mode & 0o040) !== 0
    : (stat.mode & 0o004) !== 0;
  if (blocking !== undefined || !readable) {
    throw new SourceError(
      `${where} cannot be read by the data directory's owner (uid ${owner.uid}), who runs pgBackRest (${
        blocking === undefined ? "the file is not readable" : `${blocking} cannot be entered`
      }): put it where that user can read it, e.g. /etc/ssl/certs, mode 0644`,
    );
  }
}

/**
 * A project's pgbackrest() sources: `project.pitr`, which the config's normalisation fills (pitr-plan's schema); none
 * for a project normalised without it.
 */
export function pitrSourcesOf(project: object): PgBackRestSource[] {
  const pitr: unknown = "pitr" in project ? project.pitr : undefined;
  return Array.isArray(pitr) ? pitr.filter(isPgBackRestSource) : [];
}

function isPgBackRestSource(value: unknown): value is PgBackRestSource {
  return typeof value === "object" && value !== null && "type" in value && value.type === "pgbackrest";
}
