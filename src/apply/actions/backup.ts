/**
 * `backup`: one source into the project's first repository, inside its project's run. A stream (a dump, encrypted
 * when the project asks) goes through the FIFO pipeline; files go to restic as paths. Each attempt is a stage row;
 * transient failures are retried with backoff.
 */
import { parseDuration } from "../../config/duration.ts";
import { encryptionFilter } from "../../encrypt/filter.ts";
import type { StreamFilter } from "../../encrypt/types.ts";
import { humanDuration, isoSeconds } from "../../format/time.ts";
import type { Action } from "../../plan/types.ts";
import type { BackupOptions, Restic } from "../../repository/restic.ts";
import { ResticError } from "../../repository/restic-errors.ts";
import { backupInput } from "../../sources/input.ts";
import { repositoryFor } from "../context.ts";
import { formatBytes } from "../../format/bytes.ts";
import { checksumNote, discardSnapshot, storedName, streamBackup } from "../pipeline.ts";
import { startProgress } from "../progress.ts";
import { backoffFor } from "../retry.ts";
import { runStage, withRetries } from "../stage.ts";
import type { ActionContexts, Outcome } from "./types.ts";

/** How long one backup stage may run when the project does not say. */
export const defaultStageTimeout = "6h";

export async function backup(
  action: Extract<Action, { type: "backup" }>,
  ctx: ActionContexts["backup"],
): Promise<Outcome> {
  const { run } = ctx;
  const project = ctx.loaded.config.projects[action.project];
  const source = project?.sources.find((s) => s.name === action.source);
  if (!project || !source) {
    // A saved plan is made again from the config before it runs, so this is a plan from another config.
    throw new Error(`the plan backs up ${action.project}/${action.source}, which the config does not declare`);
  }
  // The project's restic settings, nice and ionice win over the repository's (restic-flags.ts).
  const repository = repositoryFor(ctx, action.repository, project);
  const stage = {
    runId: run.id,
    type: "backup",
    project: project.name,
    source: source.name,
    repository: action.repository,
  } as const;
  const label = `${project.name}/${source.name} → ${action.repository}`;
  const backoff = backoffFor(project.retry, ctx.loaded.config.defaults?.retry);
  const timeoutMs = parseDuration(project.timeout ?? ctx.loaded.config.defaults?.timeout ?? defaultStageTimeout)!;
  run.touched.add(action.repository);
  const outcome = await withRetries(
    ctx.out,
    backoff,
    `backup ${label}`,
    (attempt) =>
      runStage(ctx, { ...stage, attempt }, async (started) => {
        const fleet = ctx.fleet;
        const options = {
          host: ctx.host,
          time: started,
          timeoutMs,
          privateDir: ctx.privateDir,
          progress: (bytes: () => number) =>
            startProgress(`backup ${label}`, bytes, ctx.out, { runId: run.id, project: project.name }),
          beforeCommit: fleet ? () => fleet.member.refusal(fleet.fence) : undefined,
          // The dump programs run at the project's priority; restic at the project's, else the repository's.
          priority: { nice: project.nice, ionice: project.ionice },
          tags: ["backupctl", `project=${project.name}`, `source=${source.name}`, `run=${run.id}`],
        };
        await repository.assertCompressionSupported();
        const context = { configDir: ctx.loaded.dir, privateDir: ctx.privateDir };
        const input = backupInput(source, context);
        // Dumps are encrypted in the stream when the project asks; files rely on restic's own encryption.
        let filters: StreamFilter[] = [];
        try {
          if (input.kind === "stream" && project.encrypt) filters = [await encryptionFilter(project.encrypt, context)];
        } catch (error) {
          if (input.kind === "stream") input.cleanup?.(); // the source's private files must not outlive the stage
          throw error;
        }
        const result = input.kind === "stream"
          ? await streamBackup(input, repository, options, filters)
          : await backupPaths(repository, input.paths, input.flags, options);
        // What `restic snapshots` will list for it: a stream is stored as /<file name>, paths as given (absolute).
        const paths = input.kind === "stream" ? [`/${storedName(input, filters)}`] : input.paths;
        const id = result.snapshotId === undefined ? undefined : repository.fullSnapshotId(result.snapshotId);
        const snapshot = id === undefined ? undefined : {
          id,
          short_id: id.slice(0, 8),
          time: isoSeconds(started), // restic's --time has whole seconds
          hostname: options.host,
          paths,
          tags: options.tags,
        };
        // restic's own figure for what the backup added (its summary's data_added), recorded beside what it read.
        return {
          value: { ...result, snapshot },
          bytes: result.bytes,
          bytesAdded: result.bytesAdded,
          snapshotId: result.snapshotId,
          // The dump's checksum, for its drills to compare the restored bytes with.
          note: "sha256" in result && result.sha256 ? checksumNote(result.sha256) : undefined,
        };
      }),
  );
  if (!outcome.ok) {
    ctx.out(`  ✗ backup ${label} failed: ${outcome.error}`);
    run.uncertain.add(action.repository);
    return { status: "failed", error: outcome.error, attempt: outcome.attempt };
  }
  const { snapshotId, snapshot, bytes, bytesAdded } = outcome.value;
  ctx.out(
    snapshotId
      ? `  + backup ${label}: snapshot ${snapshotId.slice(0, 8)}, ${formatBytes(bytes)} read, ` +
        `${formatBytes(bytesAdded)} added (${humanDuration(outcome.durationMs)})`
      : `  + backup ${label}: the dump was empty (allowed by allowEmpty), no snapshot stored`,
  );
  run.bytes = (run.bytes ?? 0) + (bytes ?? 0);
  run.bytesAdded = (run.bytesAdded ?? 0) + (bytesAdded ?? 0);
  if (snapshotId) run.made.set(action.source, snapshotId);
  if (snapshot) run.reported.set(action.repository, [...run.reported.get(action.repository) ?? [], snapshot]);
  else if (snapshotId) run.uncertain.add(action.repository); // its full id is unknown: list the repository
  return { status: "succeeded" };
}

/** A files backup; a snapshot restic wrote despite failing (exit 3: unreadable files) is forgotten at once. */
async function backupPaths(repository: Restic, paths: string[], flags: string[], options: BackupOptions) {
  try {
    const result = await repository.backupPaths(paths, flags, options);
    return { snapshotId: result.snapshotId!, bytes: result.bytesProcessed, bytesAdded: result.bytesAdded };
  } catch (error) {
    if (error instanceof ResticError && error.snapshotId) {
      throw await discardSnapshot(repository, error.snapshotId, error);
    }
    throw error;
  }
}
