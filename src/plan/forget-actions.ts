/** Retention's forget actions, per (project, source, repository) group, and when they need approval. */
import type { NormalizedProject } from "../config/normalize.ts";
import type { DraftOf } from "./document.ts";
import { groupKey, type ObservedIndex } from "./observed-index.ts";
import { describePolicyChange, policyKey, retentionForgets } from "./retention.ts";
import { isUsable } from "./types.ts";

/**
 * Forget actions: retention per (project, source) group in each of the project's repositories, over the group's
 * complete snapshots only (see {@link isUsable}). An incomplete snapshot (a stream cut by a crash, a failed run's) or
 * one of a run still going is neither counted nor forgotten by retention: recovery judges it. So whatever the policy
 * says, a group always keeps its newest complete snapshot — the invariant docs/operations.md states.
 */
export function forgetActions(project: NormalizedProject, index: ObservedIndex, now: Date): DraftOf<"forget">[] {
  const drafts: DraftOf<"forget">[] = [];
  // Worked out when a group has something to forget (rarely, in a fleet's steady state).
  let current: string | undefined;
  for (const repository of project.repositories) {
    for (const source of project.sources) {
      const key = groupKey(project.name, source.name, repository);
      const group = (index.groups.get(key) ?? []).filter(isUsable);
      if (group.length < 2) continue;
      const forgotten = retentionForgets(group, project.retention, { now });
      // Retention keeps them all (a fleet's steady state): nothing below can find one to forget.
      if (forgotten.length === 0) continue;
      // Never the newest complete snapshot of a group, nor one newer than the source's last successful backup, nor
      // one dated after now. Backups land in the primary repository first, so its last success bounds the copies in
      // the other repositories too.
      const newest = group.reduce((a, b) => (a.time >= b.time ? a : b));
      const lastSuccess = index.success.get(groupKey(project.name, source.name, project.repositories[0]));
      const limit = Math.min(lastSuccess ? Date.parse(lastSuccess) : Number.POSITIVE_INFINITY, now.getTime());
      const forgettable = new Set(
        group.filter((snapshot) => snapshot.id !== newest.id && Date.parse(snapshot.time) <= limit).map((s) => s.id),
      );
      const ids = forgotten.filter((id) => forgettable.has(id));
      if (ids.length === 0) continue;
      current ??= policyKey(project.retention);
      const approval = approvalFor(project, index.retention.get(key), current, group.length - ids.length);
      const skipped = (index.groups.get(key)?.length ?? 0) - group.length;
      drafts.push({
        type: "forget",
        project: project.name,
        source: source.name,
        repository,
        snapshots: ids,
        destructive: true,
        approval: approval ? "required" : "routine",
        ...(approval ? { approval_reason: approval } : {}),
        reason:
          `retention ${describePolicy(project.retention)} keeps ${group.length - ids.length} of ${group.length} ` +
          `snapshot${group.length === 1 ? "" : "s"}${
            skipped > 0 ? ` (${skipped} incomplete or unfinished not counted)` : ""
          }`,
      });
    }
  }
  return drafts;
}

/** Why a forget needs approval, or undefined when it is routine. */
function approvalFor(
  project: NormalizedProject,
  applied: string | undefined,
  current: string,
  remaining: number,
): string | undefined {
  const reasons: string[] = [];
  if (applied === undefined) {
    reasons.push("retention was never applied to these snapshots by this state (adopted repository or new state)");
  } else if (applied !== current) {
    reasons.push(`retention changed (${describePolicyChange(JSON.parse(applied), project.retention)})`);
  }
  const floor = project.retention.minSnapshots;
  if (floor !== undefined && remaining < floor) {
    reasons.push(`it would leave ${remaining} snapshot${remaining === 1 ? "" : "s"}, below minSnapshots ${floor}`);
  }
  return reasons.length > 0 ? reasons.join("; ") : undefined;
}

function describePolicy(retention: NormalizedProject["retention"]): string {
  return Object.entries(retention)
    .filter(([key, value]) => key !== "minSnapshots" && value !== undefined)
    .map(([key, value]) => `${key} ${value}`)
    .join(", ");
}
