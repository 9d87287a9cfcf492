/**
 * The sources a server declared with `databases: "all"` stands for, once its databases are known: one source per
 * database, named `<server name>-<database>`. Pure: the listing itself is done by sources/discover.ts when planning,
 * and apply/discovery.ts puts the two together.
 *
 * Names are stable: a database's source name depends only on the server's name, the database's name and (for a
 * collision) the names the project declares, never on which other databases exist. A database name that is not a
 * valid source name (characters other than letters, digits, '.', '_', '-', or too long) is written with '_' for each
 * run of other characters, cut to fit, and followed by `-` and 8 hex digits of the name's SHA-256, so two databases
 * never share a source name; so is one whose plain name another source of the project already has.
 */
import { createHash } from "node:crypto";
import type { Listing, NamedSource, NormalizedConfig, NormalizedProject, ServerSource } from "./normalize.ts";
import { namePattern } from "./schema-values.ts";

export type { Listing };

/** The most characters a source name may have (schema-values.ts namePattern). */
const maxNameLength = 64;

/** The source name of `database` on `server`; `taken`: the project's other source names. */
export function databaseSourceName(server: ServerSource, database: string, taken: ReadonlySet<string>): string {
  const plain = `${server.name}-${database}`;
  if (namePattern.test(plain) && !taken.has(plain)) return plain;
  const hash = createHash("sha256").update(database).digest("hex").slice(0, 8);
  const room = maxNameLength - server.name.length - hash.length - 2;
  const readable = database.replace(/[^A-Za-z0-9_.-]+/g, "_").slice(0, Math.max(room, 0));
  return `${server.name}-${readable}${readable === "" ? "" : "-"}${hash}`;
}

/** Whether `database` matches one of the glob patterns (`*`: any run of characters, `?`: one character). */
export function excluded(database: string, patterns: readonly string[] | undefined): boolean {
  return (patterns ?? []).some((pattern) => globRegExp(pattern).test(database));
}

function globRegExp(pattern: string): RegExp {
  const body = [...pattern].map((c) => (c === "*" ? ".*" : c === "?" ? "." : c.replace(/[\\^$.|+()[\]{}]/g, "\\$&")))
    .join("");
  return new RegExp(`^${body}$`, "s");
}

/** The names a project's sources have without any server's databases (a server's globals included). */
function declaredNames(project: NormalizedProject): Set<string> {
  return new Set([...project.sources.map((s) => s.name), ...(project.servers ?? []).map((s) => s.name)]);
}

/** One source for each of the databases (those the server's `exclude` leaves), in the order given. */
export function databaseSources(
  project: NormalizedProject,
  server: ServerSource,
  databases: readonly string[],
): NamedSource[] {
  const taken = declaredNames(project);
  return databases.filter((database) => !excluded(database, server.exclude))
    .map((database) => databaseSource(server, database, databaseSourceName(server, database, taken)));
}

/**
 * The databases of `server` that the state has seen backed up (its source names among `known`), when the server
 * cannot be asked. The database of a plain name is its suffix; a name with a hash suffix cannot be read back, so
 * the suffix is taken as it is (what a restore into it would name: see docs/configuration.md).
 */
export function knownDatabases(
  project: NormalizedProject,
  server: ServerSource,
  known: Iterable<string>,
): string[] {
  const declared = declaredNames(project);
  const servers = project.servers ?? [];
  const databases = new Set<string>();
  for (const name of known) {
    if (declared.has(name) || serverOf(servers, name) !== server) continue;
    databases.add(name.slice(server.name.length + 1));
  }
  return [...databases].sort();
}

/** The server whose databases' names `name` would be among: the longest `<server>-` prefix of it. */
export function serverOf(servers: readonly ServerSource[], name: string): ServerSource | undefined {
  return servers.filter((server) => name.startsWith(`${server.name}-`) && name.length > server.name.length + 1)
    .sort((a, b) => b.name.length - a.name.length)[0];
}

/**
 * The config with each server's databases as sources of its project (after the project's own sources), and what
 * was found on each server in `listings`. `listings` holds, per project and server, the databases to back up (those
 * listed, or those known from the state when the server could not be asked) and the listing itself (none when no
 * server was asked).
 */
export function withServerDatabases(
  config: NormalizedConfig,
  listings: Map<string, Map<string, { databases: string[]; listing?: Listing }>>,
): NormalizedConfig {
  const projects: Record<string, NormalizedProject> = {};
  for (const [name, project] of Object.entries(config.projects)) {
    const found = listings.get(name);
    if (!project.servers || !found) {
      projects[name] = project;
      continue;
    }
    const added: NamedSource[] = [];
    const seen: NormalizedProject["listings"] = {};
    for (const server of project.servers) {
      const entry = found.get(server.name);
      if (!entry) continue;
      added.push(...databaseSources(project, server, entry.databases));
      if (entry.listing) seen[server.name] = entry.listing;
    }
    projects[name] = { ...project, sources: [...project.sources, ...added], listings: seen };
  }
  return { ...config, projects };
}

/**
 * The source `name` stands for when the project does not declare it: a database of one of its servers, by its
 * source name (as a restore names it, maybe after the database is gone from the server). Undefined when no server's
 * names could be it.
 */
export function serverDatabaseSource(project: NormalizedProject, name: string): NamedSource | undefined {
  const server = serverOf(project.servers ?? [], name);
  if (!server || declaredNames(project).has(name)) return undefined;
  return databaseSource(server, name.slice(server.name.length + 1), name);
}

/** The source of one database of `server`: the server's connection settings, without its globals (dumped once). */
export function databaseSource(server: ServerSource, database: string, name: string): NamedSource {
  const discovered = { server: server.name, database };
  if (server.type === "postgres") {
    const { databases: _, exclude: __, globals: ___, ...connection } = server;
    return { ...connection, database, name, discovered };
  }
  const { databases: _, exclude: __, ...connection } = server;
  return { ...connection, database, name, discovered };
}
