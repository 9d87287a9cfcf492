/**
 * Before a plan is made: the databases of each server declared with `databases: "all"` become sources of its project
 * (config/discovered.ts), listed by asking the server (sources/discover.ts) with the source's own credentials.
 *
 * A server that cannot be asked is never taken as empty: the plan warns, and backs up the databases the state has
 * seen backed up from it (those backups then fail loudly while it is down); with none known, the server itself is
 * planned as a source whose backup fails, saying why, so the run fails and its notifications go out. `offline`
 * (status, the dashboard) asks no server: the databases the state knows stand in, and nothing is said to be gone.
 */
import type { LoadedConfig } from "../config/load.ts";
import { databaseSource, knownDatabases, type Listing, withServerDatabases } from "../config/discovered.ts";
import type { NamedSource, NormalizedProject, ServerSource } from "../config/normalize.ts";
import type { ObservedState } from "../plan/types.ts";
import { listDatabases } from "../sources/discover.ts";

export interface DiscoveryOptions {
  /** Only these projects (default: all). */
  projects?: readonly string[];
  /** Ask no server: take the databases the state knows. */
  offline?: boolean;
  /** Where private files (a pgpass file for the listing) go. */
  privateDir: string;
}

/** The config with the servers' databases as sources, and the warnings for servers that could not be asked. */
export async function discoverDatabases(
  loaded: LoadedConfig,
  observed: ObservedState,
  options: DiscoveryOptions,
): Promise<{ loaded: LoadedConfig; warnings: string[] }> {
  const projects = Object.values(loaded.config.projects).filter((project) =>
    project.servers && project.enabled && (options.projects === undefined || options.projects.includes(project.name))
  );
  if (projects.length === 0) return { loaded, warnings: [] };
  const warnings: string[] = [];
  const listings = new Map<string, Map<string, { databases: string[]; listing?: Listing }>>();
  const context = { configDir: loaded.dir, privateDir: options.privateDir };
  for (const project of projects) {
    const found = new Map<string, { databases: string[]; listing?: Listing }>();
    const known = knownSourceNames(project, observed);
    for (const server of project.servers ?? []) {
      const fromState = knownDatabases(project, server, known);
      if (options.offline) {
        found.set(server.name, { databases: fromState });
        continue;
      }
      try {
        const databases = await listDatabases(server, context);
        found.set(server.name, { databases, listing: { databases } });
      } catch (error) {
        const why = (error instanceof Error ? error.message : String(error)).split("\n")[0];
        found.set(server.name, { databases: fromState, listing: { unreachable: why } });
        warnings.push(unlistedWarning(project, server, why, fromState.length));
      }
    }
    listings.set(project.name, found);
  }
  const config = withServerDatabases(loaded.config, listings);
  for (const project of projects) {
    const expanded = config.projects[project.name];
    for (const server of project.servers ?? []) {
      const listing = expanded.listings?.[server.name];
      if (!listing || !("unreachable" in listing)) continue;
      if (expanded.sources.some((source) => source.discovered?.server === server.name)) continue;
      // Nothing known to back up: the server itself stands in, as a source whose backup fails saying why.
      expanded.sources.push(unlistedSource(server, listing.unreachable));
    }
  }
  return { loaded: { ...loaded, config }, warnings };
}

/** The source names the state holds for the project: its backups, failures and snapshots. */
function knownSourceNames(project: NormalizedProject, observed: ObservedState): Set<string> {
  const names = new Set<string>();
  for (const record of [...observed.backups, ...observed.failures, ...observed.snapshots]) {
    if (record.project === project.name && record.source) names.add(record.source);
  }
  return names;
}

function unlistedWarning(project: NormalizedProject, server: ServerSource, why: string, known: number): string {
  const what = `project ${project.name}, source ${server.name} (databases: "all"): the server's databases could not ` +
    `be listed: ${why}`;
  return known === 0
    ? `${what}. No database of it is known yet: its backup is planned, and fails until the server answers`
    : `${what}. The ${known === 1 ? "database" : `${known} databases`} backed up from it before ` +
      `${known === 1 ? "is" : "are"} planned; a database created since is not, until the server answers`;
}

/** The server as a source of its own name, whose backup fails with why its databases could not be listed. */
function unlistedSource(server: ServerSource, why: string): NamedSource {
  const source = databaseSource(server, "", server.name);
  return { ...source, discovered: { server: server.name, database: "", unlisted: why } };
}
