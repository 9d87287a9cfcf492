/** Lookups over the observed state that several planning rules share, built once per plan. */
import type { InventorySnapshot, ObservedState } from "./types.ts";
import { retentionGroupKey } from "./retention.ts";

/** Lookups over the observed state, built once per plan (the inventory can hold 100,000 snapshots). */
export interface ObservedIndex {
  success: Map<string, string>;
  failure: Map<string, string>;
  groups: Map<string, InventorySnapshot[]>;
  retention: Map<string, string>;
}

/** The key of a retention group (plan/retention.ts). */
export function groupKey(project: string, source: string, repository: string): string {
  return retentionGroupKey(project, source, repository);
}

export function indexObserved(observed: ObservedState): ObservedIndex {
  const latest = (records: ObservedState["backups"]) => {
    const map = new Map<string, string>();
    for (const r of records) {
      const key = groupKey(r.project, r.source, r.repository);
      if ((map.get(key) ?? "") < r.at) map.set(key, r.at);
    }
    return map;
  };
  const groups = new Map<string, InventorySnapshot[]>();
  // Found through a map per field, not by a key made for each of 100,000 snapshots: the group's key is made once.
  const byProject = new Map<string, Map<string, Map<string, InventorySnapshot[]>>>();
  for (const snapshot of observed.snapshots) {
    const { project, source, repository } = snapshot;
    if (project === null || source === null) continue;
    let bySource = byProject.get(project);
    if (!bySource) byProject.set(project, bySource = new Map());
    let byRepository = bySource.get(source);
    if (!byRepository) bySource.set(source, byRepository = new Map());
    const group = byRepository.get(repository);
    if (group) group.push(snapshot);
    else {
      const started = [snapshot];
      byRepository.set(repository, started);
      groups.set(groupKey(project, source, repository), started);
    }
  }
  return {
    success: latest(observed.backups),
    failure: latest(observed.failures),
    groups,
    retention: new Map(observed.retention.map((r) => [groupKey(r.project, r.source, r.repository), r.policy])),
  };
}
