/**
 * The names a Tab completes from the config (pure): its projects, the sources of the projects named on the line, their
 * repositories (or every declared one), its notification channels. Read from the validated config; no secret is
 * resolved.
 */
import type { NormalizedConfig } from "../config/normalize.ts";
import type { NameKind } from "./spec.ts";

/**
 * The names of `kind`, each once, in the config's order. `projects` (those named on the line) narrow sources and
 * repositories to theirs; an undeclared one is left out, and none named means every project.
 */
export function completionNames(config: NormalizedConfig, kind: NameKind, projects: readonly string[] = []): string[] {
  const named = projects.filter((name) => Object.hasOwn(config.projects, name)).map((name) => config.projects[name]);
  const scope = named.length > 0 ? named : Object.values(config.projects);
  switch (kind) {
    case "projects":
      return Object.keys(config.projects);
    case "sources":
      return [...new Set(scope.flatMap((project) => project.sources.map((source) => source.name)))];
    case "repositories":
      return named.length > 0
        ? [...new Set(named.flatMap((project) => project.repositories))]
        : Object.keys(config.repositories);
    case "channels":
      return Object.keys(config.notifiers);
  }
}
