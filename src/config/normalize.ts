/** Defaults applied after validation: source names, time zones, enabled flags. Pure; paths stay as written. */
import { basename, extname } from "node:path";
import type { Config, Notifier, Project, Repository, Source } from "./types.ts";

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
  sources: NamedSource[];
}

export interface NormalizedConfig extends Omit<Config, "projects" | "timezone" | "notifiers"> {
  timezone: string;
  repositories: Record<string, Repository>;
  notifiers: Record<string, Notifier>;
  projects: Record<string, NormalizedProject>;
}

/** The name a source gets when none is given: DESIGN.md "Config API". */
export function defaultSourceName(source: Partial<Source> & { type?: unknown }): string | undefined {
  switch (source.type) {
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

export function sourceName(source: Partial<Source> & { type?: unknown }): string | undefined {
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
      sources: project.sources.flatMap((source) => expandSource(source, sourceName(source)!)),
    };
  }
  return { ...config, timezone, notifiers: config.notifiers ?? {}, projects };
}
