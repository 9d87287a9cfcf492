/** What each repository needs before and after the backups: an init when it does not exist, copies it lacks. */
import type { NormalizedProject } from "../config/normalize.ts";
import type { DraftOf } from "./document.ts";
import { groupKey, type ObservedIndex } from "./observed-index.ts";
import { isUsable, type ObservedState } from "./types.ts";
import { compareTimes } from "../format/time.ts";

/**
 * An init for each repository known not to be initialized. One restic could not open (a wrong password, a backend
 * that cannot be reached) may well exist: it is never initialized, and {@link unopenedRepositories} says why.
 */
export function initActions(active: NormalizedProject[], observed: ObservedState): DraftOf<"init">[] {
  const repositories = [...new Set(active.flatMap((project) => project.repositories))];
  const primaries = new Set(active.map((project) => project.repositories[0]));
  const drafts = repositories
    .filter((repository) =>
      !observed.repositories[repository]?.initialized && observed.repositories[repository]?.unreachable === undefined
    )
    .map((repository): DraftOf<"init"> => {
      // Not a primary, so some project copies into it: it takes the chunker parameters of that project's primary.
      const from = primaries.has(repository)
        ? undefined
        : active.find((project) => project.repositories.includes(repository))?.repositories[0];
      return from
        ? {
          type: "init",
          repository,
          chunker_from: from,
          reason: `repository not initialized (chunker parameters of ${from})`,
          destructive: false,
        }
        : { type: "init", repository, reason: "repository not initialized", destructive: false };
    });
  return [...drafts.filter((d) => !d.chunker_from), ...drafts.filter((d) => d.chunker_from)];
}

/** A warning for each repository of the plan that restic could not open: the cause, and that nothing initializes it. */
export function unopenedRepositories(active: NormalizedProject[], observed: ObservedState): string[] {
  const repositories = [...new Set(active.flatMap((project) => project.repositories))];
  return repositories.flatMap((repository) => {
    const reason = observed.repositories[repository]?.unreachable;
    return reason === undefined
      ? []
      : [`repository ${repository} cannot be opened, so it is not initialized and its stages will fail: ${reason}`];
  });
}

/**
 * Dump once, send to many: each later repository of a project gets `restic copy` of the primary's snapshots it
 * does not hold yet (a copy remembers its original), plus the snapshot this plan's backup will make. Snapshots the
 * plan forgets from the primary are not copied.
 */
export function copyActions(
  project: NormalizedProject,
  index: ObservedIndex,
  planned: PlannedChanges,
): DraftOf<"copy">[] {
  const [primary, ...others] = project.repositories;
  const drafts: DraftOf<"copy">[] = [];
  for (const repository of others) {
    for (const source of project.sources) {
      const present = new Set<string>();
      for (const copy of index.groups.get(groupKey(project.name, source.name, repository)) ?? []) {
        present.add(copy.id);
        if (copy.original) present.add(copy.original);
      }
      const forgotten = planned.forgotten.get(groupKey(project.name, source.name, primary)) ?? new Set<string>();
      const missing = (index.groups.get(groupKey(project.name, source.name, primary)) ?? [])
        // Incomplete snapshots (and those of a run still going) are never copied: recovery forgets them.
        .filter((snapshot) => isUsable(snapshot) && !present.has(snapshot.id) && !forgotten.has(snapshot.id))
        .sort((a, b) => compareTimes(a.time, b.time))
        .map((snapshot) => snapshot.id);
      const newBackup = planned.backedUp.has(groupKey(project.name, source.name, ""));
      if (missing.length === 0 && !newBackup) continue;
      const what = [
        newBackup ? "the new backup" : "",
        missing.length > 0 ? `${missing.length} snapshot${missing.length === 1 ? "" : "s"} it lacks` : "",
      ].filter(Boolean).join(" and ");
      drafts.push({
        type: "copy",
        project: project.name,
        source: source.name,
        repository,
        from: primary,
        snapshots: missing,
        reason: `copy ${what} from ${primary}`,
        destructive: false,
      });
    }
  }
  return drafts;
}

/** What this plan's backups and forgets do to each group, looked up by the copies of every project. */
export interface PlannedChanges {
  /** The ids each group's forgets remove, keyed by {@link groupKey}. */
  forgotten: Map<string, Set<string>>;
  /** The (project, source) pairs backed up, keyed by {@link groupKey} with an empty repository. */
  backedUp: Set<string>;
}

/**
 * Built once per plan: a scan of all the plan's forgets and backups for each project's copies would grow with the
 * square of the fleet.
 */
export function plannedChanges(
  backups: readonly DraftOf<"backup">[],
  forgets: readonly DraftOf<"forget">[],
): PlannedChanges {
  const forgotten = new Map<string, Set<string>>();
  for (const forget of forgets) {
    const key = groupKey(forget.project, forget.source, forget.repository);
    const ids = forgotten.get(key) ?? new Set<string>();
    for (const id of forget.snapshots) ids.add(id);
    forgotten.set(key, ids);
  }
  return { forgotten, backedUp: new Set(backups.map((backup) => groupKey(backup.project, backup.source, ""))) };
}
