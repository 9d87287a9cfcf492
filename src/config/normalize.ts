/** Defaults applied after validation: source names, time zones, enabled flags. Pure; paths stay as written. */
import { basename, extname } from "node:path";
import type { PgBackRestSource as PitrSource } from "../pitr/types.ts";
import type {
  Config,
  MysqlServerSource,
  Notifier,
  PgBackRestSource,
  PostgresServerSource,
  Project,
  ProjectSource,
  Repository,
  Source,
} from "./types.ts";

/** What planning found on a server: its databases, or why they could not be listed (config/discovered.ts). */
export type Listing = { databases: string[] } | { unreachable: string };

/** A declaration of every database of a server (`databases: "all"`), with its name defaulted. */
export type ServerSource = (PostgresServerSource | MysqlServerSource) & { name: string };

/** The PostgreSQL database a `postgres({ databases: "all" })` connects to for its listing and its globals. */
export const defaultMaintenanceDatabase = "postgres";

/**
 * A source with its name. `part: "globals"` marks the extra source a `postgres({ globals: true })` becomes:
 * `<name>-globals`, its own snapshot group with its own schedule state and retention. `discovered`: a database of a
 * server declared with `databases: "all"`, found when planning (config/discovered.ts).
 */
export type NamedSource = Exclude<Source, PostgresServerSource | MysqlServerSource> & {
  name: string;
  part?: "globals";
  /**
   * A database of a server declared with `databases: "all"`. `unlisted`: the server's databases could not be listed
   * and none is known: the server itself stands in, and its backup fails with this reason (apply/discovery.ts).
   */
  discovered?: { server: string; database: string; unlisted?: string };
};

/**
 * The sources a declared source stands for: itself, plus `<name>-globals` for postgres with `globals: true`. A
 * server's databases (`databases: "all"`) are not known before planning: it stands for its globals source only.
 */
export function expandSource(source: Source, name: string): NamedSource[] {
  if (isServer(source)) {
    if (source.type !== "postgres" || !source.globals) return [];
    const { databases: _, exclude: __, ...connection } = source;
    const database = source.database ?? defaultMaintenanceDatabase;
    return [{ ...connection, database, name: `${name}-globals`, part: "globals" }];
  }
  const named: NamedSource = { ...source, name };
  if (source.type !== "postgres" || !source.globals) return [named];
  return [named, { ...source, name: `${name}-globals`, part: "globals" }];
}

export interface NormalizedProject extends Omit<Project, "sources" | "timezone" | "enabled"> {
  name: string;
  timezone: string;
  enabled: boolean;
  /** What is backed up; a server's databases join it once listed (config/discovered.ts). */
  sources: NamedSource[];
  /** Declarations of every database of a server, when the project has any. */
  servers?: ServerSource[];
  /**
   * What planning found on each server (by its source name), set by discovery: the databases listed, or why they
   * could not be (then `sources` holds those known from the state).
   */
  listings?: Record<string, Listing>;
  /** The pgbackrest() sources: planned and applied through pgBackRest, never through restic (default none). */
  pitr: PitrSource[];
}

export interface NormalizedConfig extends Omit<Config, "projects" | "timezone" | "notifiers"> {
  timezone: string;
  repositories: Record<string, Repository>;
  notifiers: Record<string, Notifier>;
  projects: Record<string, NormalizedProject>;
}

/** The name a source gets when none is given: DESIGN.md "Config API". */
export function defaultSourceName(source: Partial<ProjectSource> & { type?: unknown }): string | undefined {
  switch (source.type) {
    case "pgbackrest":
      return typeof source.stanza === "string" ? source.stanza : undefined;
    case "postgres":
    case "mysql":
      if (source.databases === "all") return source.type;
      return typeof source.database === "string" ? source.database : undefined;
    case "mongodb":
      return typeof source.database === "string" ? source.database : "mongodb";
    case "sqlite":
      return typeof source.path === "string" ? basename(source.path, extname(source.path)) : undefined;
    case "files":
      return "files";
    default:
      return undefined;
  }
}

export function sourceName(source: Partial<ProjectSource> & { type?: unknown }): string | undefined {
  return typeof source.name === "string" ? source.name : defaultSourceName(source);
}

export function normalizeConfig(config: Config): NormalizedConfig {
  const timezone = config.timezone ?? "UTC";
  const projects: Record<string, NormalizedProject> = {};
  for (const [name, project] of Object.entries(config.projects)) {
    const servers = project.sources.filter(isResticSource).filter(isServer).map((source) => ({
      ...source,
      name: sourceName(source)!,
    }));
    projects[name] = {
      ...project,
      name,
      timezone: project.timezone ?? timezone,
      enabled: project.enabled ?? true,
      sources: project.sources.filter(isResticSource).flatMap((source) => expandSource(source, sourceName(source)!)),
      pitr: project.sources.filter(isPitrSource).map(normalizePitrSource),
      // Only when there are some: the fingerprint of a config without them stays what it was.
      ...(servers.length > 0 ? { servers } : {}),
    };
  }
  return { ...config, timezone, notifiers: config.notifiers ?? {}, projects };
}

export function isServer(source: Source): source is PostgresServerSource | MysqlServerSource {
  return "databases" in source && source.databases === "all";
}

/** A pgbackrest() source as the engine takes it: its name, the queries' database and the program filled in. */
function normalizePitrSource(source: PgBackRestSource): PitrSource {
  return {
    ...source,
    name: source.name ?? source.stanza,
    cluster: { ...source.cluster, database: source.cluster.database ?? "postgres" },
    bin: source.bin ?? "pgbackrest",
  };
}

function isPitrSource(source: ProjectSource): source is PgBackRestSource {
  return source.type === "pgbackrest";
}

function isResticSource(source: ProjectSource): source is Source {
  return source.type !== "pgbackrest";
}
