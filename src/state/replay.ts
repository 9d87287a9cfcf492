/**
 * Replaying the fallback file into the database at open: the writes of processes that could not reach the database,
 * applied in order as their writers made them (writes.ts), in one transaction.
 */
import { join } from "node:path";
import type { Kysely } from "kysely";
import type { StateDialect } from "./dialect.ts";
import {
  claimFallback,
  fallbackFileName,
  type FallbackLine,
  type FallbackRecord,
  parseFallback,
  rejectedFileName,
  type RejectedLine,
  setAside,
} from "./fallback.ts";
import { breachOf, recordFencedWrite } from "./fleet.ts";
import type { Database } from "./schema.ts";
import { applyWrite, type Outcome, type WriteTarget } from "./writes.ts";

/** What `open` replayed from fallback.jsonl. */
export interface FallbackReplay {
  /** Lines now in the database. */
  applied: number;
  /** Lines set aside in fallback.rejected.jsonl, each with its reason. */
  rejected: number;
}

/** What became of a replay: nothing to replay, lines replayed, or a database that still cannot be written. */
export type ReplayResult =
  | { replayed: FallbackReplay }
  | { unwritable: string; consequence: string }
  | null;

/**
 * Claims fallback.jsonl (fallback.ts) and applies its valid lines in order, in one transaction; lines that are
 * malformed, or that the database refuses (a run already recorded, a stage whose start is missing), go to
 * fallback.rejected.jsonl and never block the others. The claimed file is removed only after the commit. When
 * the database still cannot be written, the lines go back to fallback.jsonl and the caller opens degraded.
 */
export async function replayFallback(
  dir: string,
  db: Kysely<Database>,
  dialect: StateDialect,
  warn: (message: string) => void,
): Promise<ReplayResult> {
  const claim = claimFallback(dir);
  if (!claim) return null;
  const { lines, rejected } = parseFallback(claim.text);
  let replay: { applied: number; refused: RejectedLine[] };
  try {
    replay = await applyLines(db, dialect, lines);
  } catch (error) {
    const reason = dialect.unwritableReason(error);
    try {
      claim.giveBack();
    } catch (giveBackError) {
      warn(
        `cannot put ${claim.path} back as ${fallbackFileName} (${(giveBackError as Error).message}): ` +
          "it stays as it is and is replayed by the first start after this process ended",
      );
    }
    if (reason === undefined) throw error;
    return {
      unwritable: reason,
      consequence: `the ${lines.length + rejected.length} lines of ${fallbackFileName} wait for the next start, ` +
        "and this process adds its results to them",
    };
  }
  const setAsideLines = [...rejected, ...replay.refused].sort((a, b) => a.line - b.line);
  setAside(dir, setAsideLines);
  claim.done();
  if (setAsideLines.length > 0) {
    const count = setAsideLines.length === 1 ? "1 line" : `${setAsideLines.length} lines`;
    warn(
      `${count} of ${fallbackFileName} could not be replayed into the state database: kept with the reason in ` +
        join(dir, rejectedFileName),
    );
  }
  return { replayed: { applied: replay.applied, rejected: setAsideLines.length } };
}

/**
 * One transaction, a savepoint per line: a line the database refuses is undone alone and the transaction goes on.
 * An error saying the database cannot be written aborts the whole replay.
 */
async function applyLines(
  db: Kysely<Database>,
  dialect: StateDialect,
  lines: FallbackLine[],
): Promise<{ applied: number; refused: RejectedLine[] }> {
  if (lines.length === 0) return { applied: 0, refused: [] };
  return await dialect.writeTransaction(db, async (connection) => {
    const target: WriteTarget = { db: connection, atomically: (body) => body(connection) };
    let applied = 0;
    const refused: RejectedLine[] = [];
    for (const { line, raw, record } of lines) {
      const savepoint = await dialect.savepoint(connection, "fallback_line");
      let reason: string | undefined;
      // A write made under leases another runner has taken since is refused, and recorded as such.
      const breach = record.fence ? await breachOf(connection, record.fence) : undefined;
      if (breach && record.fence) {
        await recordFencedWrite(connection, {
          op: record.op,
          runId: runOf(record),
          instance: record.fence.instance,
          via: "replay",
          at: new Date().toISOString(),
        }, breach);
        refused.push({
          line,
          raw,
          reason: `fenced: the lease ${breach.key} (token ${breach.token}) was taken over by ${
            breach.currentHolder ?? "another runner"
          } (token ${breach.currentToken ?? "none"}) before this write could be replayed`,
        });
        // The refusal's record stays (the savepoint is kept); the line itself goes to fallback.rejected.jsonl.
        await savepoint.release();
        continue;
      }
      try {
        const { missing } = await replayRecord(target, record);
        if (missing) reason = `no ${missing} in the database`;
      } catch (error) {
        if (dialect.unwritableReason(error) !== undefined) throw error;
        reason = (error as Error).message;
      }
      if (reason !== undefined) {
        await savepoint.rollback();
        refused.push({ line, raw, reason });
      } else {
        applied++;
      }
      await savepoint.release();
    }
    return { applied, refused };
  });
}

/** The run a write belongs to, where its arguments name one (for the record of a fenced write). */
export function runOf(record: { op: string; args: readonly unknown[] }): string | null {
  const [first] = record.args;
  if (record.op === "startRun" && typeof first === "object" && first !== null && "id" in first) {
    return String(first.id);
  }
  if ((record.op === "setRunStage" || record.op === "finishRun") && typeof first === "string") return first;
  if (record.op === "startStage" && typeof first === "object" && first !== null && "runId" in first) {
    return first.runId === null ? null : String(first.runId);
  }
  return null;
}

/** Applies a replayed line as its writer made it. */
function replayRecord(target: WriteTarget, record: FallbackRecord): Promise<Outcome> {
  return applyWrite(target, record.op, record.args, {
    pid: record.pid,
    processStart: record.processStart,
    stageId: record.stageId,
  });
}
