/** What exists in the state or a repository but is not declared: reported, never deleted. */
import { serverOf } from "../config/discovered.ts";
import type { LoadedConfig } from "../config/load.ts";
import type { NormalizedProject } from "../config/normalize.ts";
import type { InventorySnapshot, NotManaged, ObservedState } from "./types.ts";

/** What exists but is not declared: old projects and repositories, foreign snapshots, dropped sources. */
export function notManaged(loaded: Pick<LoadedConfig, "config">, observed: ObservedState): NotManaged[] {
  const { config } = loaded;
  const result: NotManaged[] = [];
  const dropped = observed.knownProjects.filter((project) => !(project in config.projects));
  // Counted once for all, and only when a project was dropped: a scan of the inventory per dropped project grows with
  // both.
  const counts = new Map<string | null, number>();
  if (dropped.length > 0) {
    for (const snapshot of observed.snapshots) counts.set(snapshot.project, (counts.get(snapshot.project) ?? 0) + 1);
  }
  for (const project of dropped) {
    const n = counts.get(project) ?? 0;
    result.push({
      kind: "project",
      subject: project,
      detail: `no longer declared; its ${
        n === 1 ? "snapshot is" : `${n} snapshots are`
      } kept, never deleted automatically`,
    });
  }
  for (const repository of observed.knownRepositories) {
    if (repository in config.repositories) continue;
    result.push({ kind: "repository", subject: repository, detail: "no longer declared; nothing is done with it" });
  }
  const known = new Set(observed.knownProjects);
  type Group = { kind: NotManaged["kind"]; label: string; detail: string; n: number; newest: string };
  const groups = new Map<string, Group>();
  /** What a snapshot of (repository, project, source) counts towards: its group, or null when it is managed. */
  const verdict = (snapshot: InventorySnapshot): Group | null => {
    let kind: NotManaged["kind"];
    let label: string;
    let detail: string;
    if (snapshot.project === null) {
      kind = "foreign";
      label = `${snapshot.repository}: snapshots not made by backupctl`;
      detail = "kept as they are";
    } else {
      const project = config.projects[snapshot.project];
      if (!project) {
        if (known.has(snapshot.project)) return null; // reported with its project above
        kind = "project";
        label = `${snapshot.project} in ${snapshot.repository}`;
        detail = "project not declared (and not in this state's audit); its snapshots are kept";
      } else if (!project.sources.some((s) => s.name === snapshot.source)) {
        kind = "source";
        label = `${snapshot.project}/${snapshot.source} in ${snapshot.repository}`;
        const server = goneFrom(project, snapshot.source);
        detail = server === undefined
          ? "source no longer declared; its snapshots are kept"
          : `database no longer present on the server of ${server} (dropped, renamed or excluded); its snapshots ` +
            "are kept";
      } else if (!project.repositories.includes(snapshot.repository)) {
        kind = "source";
        label = `${snapshot.project}/${snapshot.source} in ${snapshot.repository}`;
        detail = "the project no longer uses this repository; its snapshots are kept";
      } else return null;
    }
    let group = groups.get(label);
    if (!group) groups.set(label, group = { kind, label, detail, n: 0, newest: snapshot.time });
    return group;
  };
  // Judged once per (repository, project, source), found through a map per field: the inventory of a fleet holds
  // 100,000 snapshots of a few thousand of them.
  const judged = new Map<string, Map<string | null, Map<string | null, Group | null>>>();
  for (const snapshot of observed.snapshots) {
    if (!(snapshot.repository in config.repositories)) continue;
    let byProject = judged.get(snapshot.repository);
    if (!byProject) judged.set(snapshot.repository, byProject = new Map());
    let bySource = byProject.get(snapshot.project);
    if (!bySource) byProject.set(snapshot.project, bySource = new Map());
    let group = bySource.get(snapshot.source);
    if (group === undefined) bySource.set(snapshot.source, group = verdict(snapshot));
    if (group) group.n++;
  }
  // In the order the inventory lists them (newest first), except that adjacent groups whose newest snapshots share a
  // second (one apply backing up several databases) go by name, whatever order the inventory read those in.
  const ordered = [...groups.values()];
  for (let i = 0; i < ordered.length;) {
    let j = i + 1;
    while (j < ordered.length && ordered[j].newest === ordered[i].newest) j++;
    const tied = ordered.slice(i, j).sort((a, b) => (a.label < b.label ? -1 : a.label > b.label ? 1 : 0));
    ordered.splice(i, j - i, ...tied);
    i = j;
  }
  for (const entry of ordered) {
    result.push({
      kind: entry.kind,
      subject: entry.label,
      detail: `${entry.n} snapshot${entry.n === 1 ? "" : "s"}: ${entry.detail}`,
    });
  }
  return result;
}

/**
 * The server (`databases: "all"`) a source name was a database of, when its listing at this plan no longer has it.
 * A server whose listing failed is not asked: its known databases are still sources (apply/discovery.ts).
 */
function goneFrom(project: NormalizedProject, source: string | null): string | undefined {
  if (source === null) return undefined;
  const server = serverOf(project.servers ?? [], source);
  if (!server) return undefined;
  const listing = project.listings?.[server.name];
  return listing && "databases" in listing ? server.name : undefined;
}
