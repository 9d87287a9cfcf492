/**
 * backupctl's side of a pgbackrest() source: its pgBackRest configuration (re)written with the retention the project's
 * maps to (the engine's stanza.ts keeps it beside the data directory), the `PgBackRest` program that uses it, and what
 * plan and apply observe of it (pgBackRest's info, the cluster's archiving) before they plan.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { LoadedConfig } from "../config/load.ts";
import type { NormalizedProject } from "../config/normalize.ts";
import { archiveStatus } from "../pitr/archive.ts";
import { configFileName } from "../pitr/config-file.ts";
import { PgBackRest } from "../pitr/pgbackrest.ts";
import { ownerToRunAs } from "../pitr/run-as.ts";
import { pitrConfigDir, preparePgBackRest } from "../pitr/stanza.ts";
import { pitrRetention, stanzaRepository } from "../plan/pitr-actions.ts";
import type { PitrObservation } from "../plan/types.ts";
import type { PgBackRestSource } from "../pitr/types.ts";

/** The pgbackrest program of a source, reading the configuration at its lasting place (stanza.ts). */
export function pgBackRestOf(source: PgBackRestSource): PgBackRest {
  return new PgBackRest({
    bin: source.bin,
    configPath: join(pitrConfigDir(source), configFileName(source.stanza)),
    stanza: source.stanza,
    runAs: existsSync(source.cluster.dataDirectory) ? ownerToRunAs(source.cluster.dataDirectory) : undefined,
  });
}

/**
 * (Re)writes a source's pgBackRest configuration with the retention the project's maps to, and returns the program
 * reading it. Apply does this before every pgBackRest command, so the file always says what the config says.
 */
export async function preparedPgBackRest(
  project: NormalizedProject,
  source: PgBackRestSource,
  loaded: LoadedConfig,
): Promise<PgBackRest> {
  return await preparePgBackRest(source, { configDir: loaded.dir, retention: pitrRetention(project, source) });
}

/** The project and source an action names, as the config declares them (a saved plan is re-derived first). */
export function pitrSourceOf(
  loaded: LoadedConfig,
  action: { project: string; source: string },
): { project: NormalizedProject; source: PgBackRestSource } {
  const project = loaded.config.projects[action.project];
  const source = project?.pitr.find((s) => s.name === action.source);
  if (!project || !source) {
    throw new Error(`the plan names pgbackrest source ${action.project}/${action.source}, which the config lacks`);
  }
  return { project, source };
}

/**
 * What pgBackRest and the cluster say of the pgbackrest() sources of `projects` (all enabled ones without), for the
 * planner. Writes nothing: a stanza whose configuration backupctl has not written yet (before the first apply) is
 * taken as not created, and its archiving is judged against the archive_command it will need.
 */
export async function observePitr(
  loaded: LoadedConfig,
  stateDir: string,
  projects: string[] | undefined,
): Promise<PitrObservation[]> {
  // The state folder only for the private files of the archive queries (a pgpass file).
  const observations: PitrObservation[] = [];
  const context = { configDir: loaded.dir, privateDir: join(stateDir, "tmp") };
  for (const project of Object.values(loaded.config.projects)) {
    if (!project.enabled || (projects && !projects.includes(project.name))) continue;
    for (const source of project.pitr) {
      const pgbackrest = pgBackRestOf(source);
      const seen: PitrObservation = {
        project: project.name,
        source: source.name,
        archiveCommand: pgbackrest.archivePushCommand(),
      };
      if (!existsSync(pgbackrest.configPath)) {
        seen.info = {
          stanza: source.stanza,
          status: { code: 1, message: "missing stanza path (backupctl has not written its configuration yet)" },
          backupRunning: false,
          cipher: "none",
          backups: [],
        };
      } else {
        try {
          seen.info = await pgbackrest.info();
        } catch (error) {
          seen.infoError = firstLine(error);
        }
      }
      try {
        seen.archive = await archiveStatus(source.cluster, context);
      } catch (error) {
        seen.archiveError = firstLine(error);
      }
      observations.push(seen);
    }
  }
  return observations;
}

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split("\n")[0];
}

/** One pgBackRest backup as the inventory lists it beside restic's snapshots. */
export interface PitrInventoryRow {
  /** pgBackRest's label. */
  id: string;
  short_id: string;
  time: string;
  /** `pgbackrest:<stanza>`, as the audit names the stanza. */
  repository: string;
  project: string;
  source: string;
  backup_type: string;
  /** The label of the backup it depends on (a diff's or incr's), null for a full. */
  prior: string | null;
  /** What the backup stored in the repository. */
  size: number;
  /** pgBackRest found page checksum errors while copying it. */
  state: "complete" | "checksum errors";
}

/**
 * The backups of the pgbackrest() sources of `projects`, read now with `pgbackrest info` (reads only), newest last.
 * A stanza that cannot be read is reported through `warn` and lists nothing.
 */
export async function pitrInventory(
  loaded: LoadedConfig,
  projects: string[] | undefined,
  warn: (line: string) => void,
): Promise<PitrInventoryRow[]> {
  const rows: PitrInventoryRow[] = [];
  for (const project of Object.values(loaded.config.projects)) {
    if (projects && !projects.includes(project.name)) continue;
    for (const source of project.pitr) {
      const pgbackrest = pgBackRestOf(source);
      if (!existsSync(pgbackrest.configPath)) continue; // never applied: no stanza yet
      try {
        for (const backup of (await pgbackrest.info()).backups) {
          rows.push({
            id: backup.label,
            short_id: backup.label,
            time: backup.stop.toISOString(),
            repository: stanzaRepository(source.stanza),
            project: project.name,
            source: source.name,
            backup_type: backup.type,
            prior: backup.prior,
            size: backup.repositoryDeltaBytes,
            state: backup.error ? "checksum errors" : "complete",
          });
        }
      } catch (error) {
        warn(`pgbackrest ${project.name}/${source.name}: stanza ${source.stanza} cannot be read: ${firstLine(error)}`);
      }
    }
  }
  return rows;
}
