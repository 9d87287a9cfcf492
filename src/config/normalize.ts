/** Defaults applied after validation: source names, time zones, enabled flags. Pure; paths stay as written. */
import { basename, extname } from "node:path";
import type { Config, Notifier, Project, Repository, Source } from "./types.ts";

export type NamedSource = Source & { name: string };

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
      sources: project.sources.map((source) => ({ ...source, name: sourceName(source)! })),
    };
  }
  return { ...config, timezone, notifiers: config.notifiers ?? {}, projects };
}
