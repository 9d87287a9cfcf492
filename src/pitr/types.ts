/**
 * The shapes point-in-time recovery works with: the normalised `pgbackrest()` source (pitr-plan's schema produces it;
 * the engine only consumes it), what `pgbackrest info` says about a stanza, the archive state PostgreSQL reports, and
 * the retention pgBackRest is told to keep. Plain data: no process, no clock.
 */
import type { PgBackRestCluster, PgBackRestSource as DeclaredPgBackRestSource } from "../config/types.ts";

/**
 * How backupctl reaches the PostgreSQL cluster a stanza backs up: as declared, with the database the queries connect
 * to filled in (default "postgres"). The owner of `dataDirectory` runs pgBackRest.
 */
export type PitrCluster = PgBackRestCluster & { database: string };

/**
 * A normalised `pgbackrest({ … })` source (see src/pitr/README.md for the shared interface): as declared, with its
 * name (default: the stanza), its cluster's database and its program (default "pgbackrest") filled in.
 */
export type PgBackRestSource = Omit<DeclaredPgBackRestSource, "name" | "cluster" | "bin"> & {
  name: string;
  cluster: PitrCluster;
  bin: string;
};

/** What pgBackRest keeps: counts of full and differential backups, as its `repo1-retention-*` options. */
export interface PgBackRestRetention {
  /** `repo1-retention-full` (type count): the newest N full backups stay, with what depends on them. */
  full: number;
  /** `repo1-retention-diff`: the newest N differential backups stay (default: pgBackRest's, equal to `full`). */
  diff?: number;
}

export type PitrBackupType = "full" | "diff" | "incr";

/** One backup of a stanza, from `pgbackrest info --output=json`. */
export interface PitrBackup {
  /** pgBackRest's label: `20261206-223228F`, `…F_20261206-223232I` for an incr on that full. */
  label: string;
  type: PitrBackupType;
  start: Date;
  stop: Date;
  /** The label this backup depends on (an incr's or diff's prior backup); null for a full. */
  prior: string | null;
  /** The size of the database when the backup ran, and what this backup itself stored in the repository. */
  databaseBytes: number;
  repositoryBytes: number;
  /** Bytes this backup added to the repository (the whole backup for a full). */
  repositoryDeltaBytes: number;
  /** The first and last WAL segment the backup needs to be consistent. */
  archiveStart: string;
  archiveStop: string;
  /** pgBackRest found page checksum errors while copying. */
  error: boolean;
}

/** A stanza's state: `status` is pgBackRest's own (`ok`, `no valid backups`, `missing stanza path`…). */
export interface PitrInfo {
  stanza: string;
  /** pgBackRest's status code (0 = ok, 1 = missing stanza path, 2 = no valid backups, …) and its message. */
  status: { code: number; message: string };
  /** Whether a backup of this stanza is running now. */
  backupRunning: boolean;
  cipher: string;
  /** Oldest first. */
  backups: PitrBackup[];
  /** The oldest and newest WAL segment in the repository's archive (current database id), when there is one. */
  archive?: { min: string; max: string };
}

/** The archiving state of a cluster: its settings and `pg_stat_archiver`. */
export interface ArchiveStatus {
  archiveMode: string;
  archiveCommand: string;
  walLevel: string;
  lastArchivedWal: string | null;
  lastArchivedAt: Date | null;
  failedCount: number;
  lastFailedWal: string | null;
  lastFailedAt: Date | null;
  /** The segment being written now (null on a standby). */
  currentWal: string | null;
  /** WAL has been written since the last archived segment: it is not in the archive yet. */
  pendingWal: boolean;
}

/** The times a restore can reach: from the end of the oldest backup to the last archived WAL known. */
export interface RestorableRange {
  earliest: Date;
  latest: Date;
}
