/** Defaults applied after validation: source names, time zones, enabled flags. Pure; paths stay as written. */
import { basename, extname } from "node:path";
import type { PgBackRestSource as PitrSource } from "../pitr/types.ts";
import type { Config, Notifier, PgBackRestSource, Project, ProjectSource, Repository, Source } from "./types.ts";

/**
 * A source with its name. `part: "globals"` marks the extra source a `postgres({ globals: true })` becomes:
 * `<name>-globals`, its own snapshot group with its own schedule state and retention.
 */
export type NamedSource = Source & { name: string; part?: "globals" };

/** The sources a declared source stands for: itself, plus `<name>-globals` for postgres with `globals: true`. */
export function expandSource(source: Source, name: string): NamedSource[] {
  const named = { ...source, name };
  if (source.type !== "postgres" || !source.globals) return [named];
  return [named, { ...source, name: `${name}-globals`, part: "globals" }];
}

export interface NormalizedProject extends Omit<Project, "sources" | "timezone" | "enabled"> {
  name: string;
  timezone: string;
  enabled: boolean;
  /** The sources backed up into the project's restic repositories. */
  sources: NamedSource[];
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
    projects[name] = {
      ...project,
      name,
      timezone: project.timezone ?? timezone,
      enabled: project.enabled ?? true,
      sources: project.sources.filter(isResticSource).flatMap((source) => expandSource(source, sourceName(source)!)),
      pitr: project.sources.filter(isPitrSource).map(normalizePitrSource),
    };
  }
  return { ...config, timezone, notifiers: config.notifiers ?? {}, projects };
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
