/**
 * `pitr_backup`: a full, diff or incr backup of a pgbackrest() source's stanza, inside its project's run like any
 * backup: an audited stage per attempt, transient failures retried with backoff, the stage's time limit. pgBackRest's
 * own expire after the backup is turned off: expirations are planned, shown and approved like forgets.
 */
import { parseDuration } from "../../config/duration.ts";
import { ExecError } from "../../errors.ts";
import { formatBytes } from "../../format/bytes.ts";
import { humanDuration } from "../../format/time.ts";
import { repositoryFull } from "../../pitr/repository-space.ts";
import { stanzaRepository } from "../../plan/pitr-actions.ts";
import type { Action } from "../../plan/types.ts";
import { pitrSourceOf, preparedPgBackRest } from "../pitr.ts";
import { backoffFor } from "../retry.ts";
import { runStage, withRetries } from "../stage.ts";
import { defaultStageTimeout } from "./backup.ts";
import type { ActionContexts, Outcome } from "./types.ts";

export async function pitrBackup(
  action: Extract<Action, { type: "pitr_backup" }>,
  ctx: ActionContexts["pitr_backup"],
): Promise<Outcome> {
  const { project, source } = pitrSourceOf(ctx.loaded, action);
  const stage = {
    runId: ctx.run.id,
    type: "backup",
    project: project.name,
    source: source.name,
    repository: stanzaRepository(source.stanza),
  } as const;
  const label = `${project.name}/${source.name} → stanza ${source.stanza} (${action.backup_type})`;
  const backoff = backoffFor(project.retry, ctx.loaded.config.defaults?.retry);
  const timeoutMs = parseDuration(project.timeout ?? ctx.loaded.config.defaults?.timeout ?? defaultStageTimeout)!;
  const outcome = await withRetries(
    ctx.out,
    backoff,
    `backup ${label}`,
    (attempt) =>
      runStage(ctx, { ...stage, attempt }, async () => {
        const pgbackrest = await preparedPgBackRest(project, source, ctx.loaded);
        const before = new Set((await pgbackrest.info()).backups.map((backup) => backup.label));
        try {
          await pgbackrest.backup(action.backup_type, { signal: AbortSignal.timeout(timeoutMs), expireAuto: false });
        } catch (error) {
          // A bucket has no disk here to look at; a local repository's full disk is named.
          throw source.repository.type === "s3" ? error : withFullRepository(error, source.repository.path);
        }
        const made = (await pgbackrest.info()).backups.find((backup) => !before.has(backup.label));
        return {
          value: made,
          bytes: made?.databaseBytes,
          bytesAdded: made?.repositoryDeltaBytes,
          // The label in the note, not as the stage's snapshot: snapshot ids are restic's.
          note: made ? `pgBackRest ${made.type} backup ${made.label}` : undefined,
        };
      }),
  );
  if (!outcome.ok) {
    ctx.out(`  ✗ backup ${label} failed: ${outcome.error}`);
    return { status: "failed", error: outcome.error, attempt: outcome.attempt };
  }
  const made = outcome.value;
  ctx.out(
    made
      ? `  + backup ${label}: ${made.label}, ${formatBytes(made.databaseBytes)} read, ` +
        `${formatBytes(made.repositoryDeltaBytes)} added (${humanDuration(outcome.durationMs)})`
      : `  + backup ${label}: done (${humanDuration(outcome.durationMs)})`,
  );
  ctx.run.bytes = (ctx.run.bytes ?? 0) + (made?.databaseBytes ?? 0);
  return { status: "succeeded" };
}

/**
 * A failed backup's error, saying that the repository's disk is full when it is (pgBackRest does not say it: see
 * pitr/repository-space.ts). Such a failure is not transient: retrying fills the same disk.
 */
function withFullRepository(error: unknown, path: string): unknown {
  const full = repositoryFull(path);
  if (full === undefined || !(error instanceof ExecError)) return error;
  return new ExecError(error.command, error.code, `${error.stderrTail}\n${full}`);
}
