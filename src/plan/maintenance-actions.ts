/** Maintenance: prunes (with why each is planned: its trigger), checks and restore drills, when their cadence is due. */
import type { NormalizedProject } from "../config/normalize.ts";
import { parseDuration } from "../config/duration.ts";
import type { Draft, DraftOf, PruneTrigger } from "./document.ts";
import { groupKey, type ObservedIndex } from "./observed-index.ts";
import { humanDuration, isoSeconds } from "../format/time.ts";
import type { MaintenanceRecord, ObservedState } from "./types.ts";

/** How often a repository with forgotten snapshots is pruned when no project using it sets `prune.every`. */
export const defaultPruneEvery = "7d";
/** The share of a repository's snapshots forgotten since its last prune that makes it due at once: half. */
export const pruneShare = { numerator: 1, denominator: 2 } as const;
/** How often repositories are checked when a project does not say. */
export const defaultCheckEvery = "7d";

export function maintenanceActions(
  active: NormalizedProject[],
  observed: ObservedState,
  index: ObservedIndex,
  forgets: DraftOf<"forget">[],
  now: Date,
): Draft[] {
  const drafts: Draft[] = [];
  // Lookups built once: a fleet has as many repositories and drills as projects, and a scan of every record (or
  // snapshot) for each of them grows with the square of the fleet.
  const byRepository = new Map<string, MaintenanceRecord>();
  const byProject = new Map<string, MaintenanceRecord>();
  for (const record of observed.maintenance) {
    // The first of each, as a search from the start finds it.
    const keys = [[byRepository, record.repository], [byProject, record.project]] as const;
    for (const [map, name] of keys) {
      if (name !== undefined && name !== null && !map.has(`${record.type}\u0000${name}`)) {
        map.set(`${record.type}\u0000${name}`, record);
      }
    }
  }
  const record = (type: MaintenanceRecord["type"], repository: string) =>
    byRepository.get(`${type}\u0000${repository}`);
  const last = (type: MaintenanceRecord["type"], repository: string) => record(type, repository)?.at;
  const since = (at: string) => `${isoSeconds(new Date(at))} (${humanDuration(now.getTime() - Date.parse(at))} ago)`;
  const repositories = [...new Set(active.flatMap((project) => project.repositories))];
  const usersOf = new Map<string, NormalizedProject[]>();
  for (const project of active) {
    for (const repository of new Set(project.repositories)) {
      const users = usersOf.get(repository);
      if (users) users.push(project);
      else usersOf.set(repository, [project]);
    }
  }
  const held = new Map<string, number>();
  for (const snapshot of observed.snapshots) held.set(snapshot.repository, (held.get(snapshot.repository) ?? 0) + 1);

  const forgottenIn = new Map<string, number>();
  for (const f of forgets) forgottenIn.set(f.repository, (forgottenIn.get(f.repository) ?? 0) + f.snapshots.length);

  for (const repository of repositories) {
    const users = usersOf.get(repository) ?? [];
    const forgotten = forgottenIn.get(repository) ?? 0;
    const explicitEvery = minimum(users.map((p) => p.prune?.every));
    const pruned = last("prune", repository);
    const lastPrune = pruned ?? observed.repositories[repository]?.initializedAt;
    const elapsed = (every: { ms: number }) =>
      lastPrune !== undefined && now.getTime() - Date.parse(lastPrune) >= every.ms;
    if (
      (last("forget", repository) ?? "") > (pruned ?? "") && (last("prune_attempt", repository) ?? "") > (pruned ?? "")
    ) {
      // Snapshots were forgotten and no prune succeeded since: the prune after them failed or was cut short.
      drafts.push({
        type: "prune",
        repository,
        reason: `snapshots were forgotten at ${isoSeconds(new Date(last("forget", repository)!))} and not pruned ` +
          "since (the prune after them failed or was interrupted)",
        destructive: false,
        trigger: "unfinished",
      });
      continue;
    }
    if (explicitEvery && elapsed(explicitEvery)) {
      // A cadence the config sets prunes whatever was forgotten: failed backups leave unreferenced data too.
      drafts.push({
        type: "prune",
        repository,
        reason:
          `${pruned ? `last prune ${since(pruned)}` : `never pruned since initialization ${since(lastPrune!)}`}, ` +
          `every ${explicitEvery.text}`,
        destructive: false,
        trigger: "cadence",
      });
      continue;
    }
    const due = pruneForForgets(repository, {
      every: explicitEvery ?? { ms: parseDuration(defaultPruneEvery)!, text: defaultPruneEvery },
      pruned,
      since,
      earlier: record("forget", repository)?.forgotten ?? 0,
      now: forgotten,
      held: held.get(repository) ?? 0,
      nowMs: now.getTime(),
    });
    if (due) drafts.push({ type: "prune", repository, reason: due.reason, destructive: false, trigger: due.trigger });
  }

  for (const repository of repositories) {
    const users = usersOf.get(repository) ?? [];
    const every = minimum(users.map((p) => p.check?.every ?? defaultCheckEvery))!;
    const subset = users.map((p) => p.check?.readDataSubset).find((s) => s !== undefined);
    const checked = last("check", repository);
    const base = checked ?? observed.repositories[repository]?.initializedAt;
    if (base === undefined || now.getTime() - Date.parse(base) < every.ms) continue;
    drafts.push({
      type: "check",
      repository,
      reason: `${
        checked ? `last check ${since(checked)}` : `never checked since initialization ${since(base)}`
      }, every ${every.text}${subset ? `, reading ${subset} of the data` : ""}`,
      destructive: false,
      ...(subset ? { read_data_subset: subset } : {}),
    });
  }

  for (const project of active) {
    // A drill of a pgbackrest() source is planned from its stanza's backups (pitr-actions.ts).
    if (!project.verify || pitrDrilled(project)) continue;
    const backedUp = project.sources.some((s) =>
      index.success.has(groupKey(project.name, s.name, project.repositories[0]))
    );
    if (!backedUp) continue;
    const every = parseDuration(project.verify.every)!;
    const lastDrill = byProject.get(`verify\u0000${project.name}`)?.at;
    if (lastDrill && now.getTime() - Date.parse(lastDrill) < every) continue;
    drafts.push({
      type: "verify",
      project: project.name,
      repository: project.repositories[0],
      reason: lastDrill
        ? `last restore drill ${since(lastDrill)}, every ${project.verify.every}`
        : "never restored in a drill",
      destructive: false,
    });
  }
  return drafts;
}

/**
 * Why forgotten snapshots make a repository due for a prune, or undefined when they wait (docs/retention.md#pruning):
 * it was never pruned, `every` has passed since its last prune, or at least half of the snapshots it held at its last
 * prune are forgotten since. `earlier`: snapshots forgotten since the last prune; `now`: in this plan; `held`: what
 * its inventory lists now. A prune due only with this plan's forgets has the trigger `after-forget` (its reason starts
 * with "after forgetting"): apply skips it when none of them ran.
 */
function pruneForForgets(
  repository: string,
  counts: {
    every: { ms: number; text: string };
    pruned: string | undefined;
    since: (at: string) => string;
    earlier: number;
    now: number;
    held: number;
    nowMs: number;
  },
): { reason: string; trigger: PruneTrigger } | undefined {
  const { every, pruned, since, earlier, now, held } = counts;
  const why = (forgotten: number): string | undefined => {
    if (forgotten === 0) return undefined;
    if (pruned === undefined) return "never pruned before";
    const total = held + earlier;
    if (forgotten * pruneShare.denominator >= total * pruneShare.numerator) {
      return `${forgotten} of ${total} snapshots (${Math.round((100 * forgotten) / total)}%) in ${repository} ` +
        `forgotten since the last prune ${since(pruned)}`;
    }
    if (counts.nowMs - Date.parse(pruned) >= every.ms) {
      return `${forgotten} snapshot${forgotten === 1 ? "" : "s"} forgotten since the last prune ${since(pruned)}, ` +
        `every ${every.text}`;
    }
    return undefined;
  };
  const reason = why(earlier + now);
  if (reason === undefined) return undefined;
  if (why(earlier) !== undefined) return { reason, trigger: "forgotten" };
  return { reason: `after forgetting ${now} snapshot${now === 1 ? "" : "s"}; ${reason}`, trigger: "after-forget" };
}

/** The shortest of several durations, keeping the text it was written as. */
function minimum(durations: (string | undefined)[]): { ms: number; text: string } | undefined {
  let best: { ms: number; text: string } | undefined;
  for (const text of durations) {
    if (text === undefined) continue;
    const ms = parseDuration(text);
    if (ms !== undefined && (!best || ms < best.ms)) best = { ms, text };
  }
  return best;
}

/**
 * `forget` now: a prune of each repository it forgets from, whatever the prune cadence (the point is to free space
 * now); with `prune`, every other repository of the projects too (the prune maintenance would plan, else a requested
 * one), to free what earlier forgets left.
 */
export function forgetNowPrunes(
  active: NormalizedProject[],
  maintenance: Draft[],
  forgets: DraftOf<"forget">[],
  prune = false,
): Draft[] {
  const repositories = [...new Set(active.flatMap((project) => project.repositories))];
  return repositories.flatMap((repository): Draft[] => {
    const forgotten = forgets.filter((forget) => forget.repository === repository)
      .reduce((n, forget) => n + forget.snapshots.length, 0);
    if (forgotten > 0) {
      const reason = `after forgetting ${forgotten} snapshot${forgotten === 1 ? "" : "s"}`;
      return [{ type: "prune", repository, reason, destructive: false, trigger: "after-forget" }];
    }
    if (!prune) return [];
    const planned = maintenance.find((action) => action.type === "prune" && action.repository === repository);
    return [
      planned ?? {
        type: "prune",
        repository,
        reason: "requested (forget --prune): frees the space of snapshots forgotten before",
        destructive: false,
        trigger: "requested",
      },
    ];
  });
}

/**
 * Whether a project's drill is of a pgbackrest() source: `verify.source` names one, or every source is one (the
 * engine's `pitrDrillSource` picks the same).
 */
export function pitrDrilled(project: NormalizedProject): boolean {
  const spec = project.verify;
  if (!spec) return false;
  if (spec.source !== undefined) return project.pitr.some((source) => source.name === spec.source);
  return project.sources.length === 0 && project.pitr.length > 0;
}
