/** The snapshot inventory as apply keeps it: reloaded from restic after a step that changed a repository. */
import type { ResticSnapshot } from "../repository/restic.ts";
import { repositoryFor, type StepContext } from "./context.ts";
import { createClock } from "../clock.ts";
import type { LoadedConfig } from "../config/load.ts";
import type { StateStore } from "../state/store.ts";
import { runStage } from "./stage.ts";

/** Reloads a repository's snapshot list into the inventory; returns the error text, or undefined on success. */
export async function refreshInventory(
  runId: string | null,
  name: string,
  project: string | undefined,
  ctx: StepContext,
): Promise<string | undefined> {
  const repository = repositoryFor(ctx, name);
  const outcome = await runStage(ctx, { runId, type: "refresh", project, repository: name }, async () => {
    // A local repository whose snapshot files are exactly the inventory's ids holds nothing new: snapshot files are
    // immutable and named by their content's hash. That listing costs a readdir instead of a restic process (which
    // derives the key first: about half a second).
    const local = repository.localSnapshotIds();
    if (local && sameIds(local, await ctx.store.snapshotIds(name))) {
      await ctx.store.markRefreshed(name, ctx.clock.now().toISOString());
      return { value: local.length };
    }
    const snapshots = await repository.snapshots();
    const at = ctx.clock.now();
    await ctx.store.replaceSnapshots(name, snapshots.map(toInventoryRow(at)), at.toISOString());
    return { value: snapshots.length };
  });
  if (outcome.ok) return undefined;
  ctx.out(`  ✗ refreshing the inventory of ${name} failed: ${outcome.error}`);
  return outcome.error;
}

function sameIds(a: string[], b: string[]): boolean {
  const set = new Set(a);
  return a.length === b.length && set.size === b.length && b.every((id) => set.has(id));
}

/** Maps a restic snapshot to an inventory row, reading our tags (project=, source=, run=). */
export function toInventoryRow(recordedAt: Date) {
  return (snapshot: ResticSnapshot) => {
    const tags = snapshot.tags ?? [];
    const tag = (key: string) => tags.find((t) => t.startsWith(`${key}=`))?.slice(key.length + 1) ?? null;
    const managed = tags.includes("backupctl");
    return {
      id: snapshot.id,
      short_id: snapshot.short_id ?? snapshot.id.slice(0, 8),
      time: new Date(snapshot.time).toISOString(),
      project: managed ? tag("project") : null,
      source: managed ? tag("source") : null,
      run_id: managed ? tag("run") : null,
      hostname: snapshot.hostname,
      tags: JSON.stringify(tags),
      paths: JSON.stringify(snapshot.paths ?? []),
      size: null,
      recorded_at: recordedAt.toISOString(),
      original: snapshot.original ?? null,
    };
  };
}

/**
 * Reloads the inventories of `names` from restic (each an audited refresh stage). A repository that cannot be listed
 * is a warning on stderr; its last known inventory stays.
 */
export async function refreshRepositories(
  loaded: LoadedConfig,
  store: StateStore,
  names: string[],
  output: { stderr(text: string): void },
): Promise<void> {
  const context = { loaded, store, clock: createClock(), out: (line: string) => output.stderr(`${line.trim()}\n`) };
  for (const name of names) await refreshInventory(null, name, undefined, context);
}
