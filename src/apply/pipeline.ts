/**
 * The streaming backup: `producer | [encryption filter] | restic backup --stdin`. Every process is checked; when
 * any of them fails, the dump is empty when it must not be, its format check fails, or restic did not store every
 * byte it was sent, the snapshot restic wrote is forgotten at once, so a truncated stream never looks like a good
 * backup. No temp file holds the dump.
 */
import { Transform } from "node:stream";
import type { StreamFilter } from "../encrypt/types.ts";
import { ExecError, MissingToolError, SourceError } from "../errors.ts";
import { onPath, type RunningProcess, type RunResult, start } from "../exec/run.ts";
import type { BackupOptions, Restic } from "../repository/restic.ts";
import type { StreamInput } from "../sources/input.ts";
import { humanDuration } from "../plan/time.ts";

export interface StreamResult {
  /** Undefined only for an empty dump the source allows: restic stores no empty snapshot. */
  snapshotId: string | undefined;
  /** Bytes the producer wrote (the dump's size, before encryption). */
  bytes: number;
  bytesAdded: number;
}

const edge = 64 * 1024;

/** Counts the bytes passing through and, with `keepEdges`, keeps the first and last 64 KiB (for a format check). */
export class Meter extends Transform {
  bytes = 0;
  private head: Uint8Array[] = [];
  private headBytes = 0;
  private tail: Uint8Array[] = [];
  private tailBytes = 0;

  constructor(private readonly keepEdges: boolean) {
    super();
  }

  override _transform(chunk: Uint8Array, _encoding: string, callback: (error: null, data: Uint8Array) => void) {
    this.bytes += chunk.length;
    if (this.keepEdges) {
      if (this.headBytes < edge) {
        this.head.push(chunk);
        this.headBytes += chunk.length;
      }
      this.tail.push(chunk);
      this.tailBytes += chunk.length;
      while (this.tailBytes - this.tail[0].length >= edge) this.tailBytes -= this.tail.shift()!.length;
    }
    callback(null, chunk);
  }

  edges(): { head: Uint8Array; tail: Uint8Array } {
    const head = Buffer.concat(this.head).subarray(0, edge);
    const all = Buffer.concat(this.tail);
    return { head, tail: all.subarray(Math.max(0, all.length - edge)) };
  }
}

export async function streamBackup(
  input: StreamInput,
  repository: Restic,
  options: BackupOptions,
  filters: StreamFilter[] = [],
): Promise<StreamResult> {
  try {
    for (const program of [input, ...filters]) {
      if (!(await onPath(program.argv[0]))) throw new MissingToolError(program.argv[0], program.package);
    }
    return await run(input, repository, options, filters);
  } finally {
    input.cleanup?.();
    for (const filter of filters) filter.cleanup?.();
  }
}

async function run(input: StreamInput, repository: Restic, options: BackupOptions, filters: StreamFilter[]) {
  const filename = input.filename + filters.map((f) => f.extension).join("");
  const consumer = repository.startStdinBackup(filename, options);
  const started = Date.now();
  const producer = start(input.argv, { env: input.env, stdout: "stream", timeoutMs: options.timeoutMs });
  const stages: { name: string; process: RunningProcess }[] = [
    { name: input.argv[0], process: producer },
    ...filters.map((filter) => ({
      name: filter.argv[0],
      process: start(filter.argv, { env: filter.env, stdout: "stream", timeoutMs: options.timeoutMs }),
    })),
  ];
  const produced = new Meter(input.check !== undefined);
  const sent = new Meter(false);
  // A process that dies early closes its stdin: the one before it then fails on a broken pipe, reported below.
  const ignore = () => {};
  for (const stream of [produced, sent, consumer.stdin]) stream.on("error", ignore);
  let upstream: NodeJS.ReadableStream = producer.stdout.pipe(produced);
  for (const { process } of stages.slice(1)) {
    process.stdin.on("error", ignore);
    process.stdout.on("error", ignore);
    upstream.pipe(process.stdin);
    upstream = process.stdout;
  }
  producer.stdout.on("error", ignore);
  upstream.pipe(sent).pipe(consumer.stdin);

  const progress = options.progress?.(() => produced.bytes);
  const killAll = () => stages.forEach(({ process }) => process.kill());
  /** Set when restic failed while the dump still ran: restic's error is the cause, not the dump's SIGTERM. */
  let resticFailedFirst = false;
  let stagesDone = 0;
  const consumed = consumer.finished.then((done) => {
    if (done.result.code !== 0) {
      resticFailedFirst = stagesDone < stages.length;
      killAll();
    }
    // Nothing reads what is still in the pipes now: let it drain, or a killed producer whose output sits in a
    // paused stream never reports its exit (its stdout never ends) and the stage hangs.
    sent.unpipe();
    sent.resume();
    return done;
  });
  const results: RunResult[] = await Promise.all(
    stages.map(({ process }) =>
      process.result.then((result) => {
        stagesDone++;
        if (result.code !== 0) killAll(); // stop the rest of the chain: its output is worthless now
        return result;
      })
    ),
  );
  const { result: resticResult, summary } = await consumed;
  progress?.stop();
  const snapshotId = summary.snapshotId;

  const discard = async (reason: Error): Promise<never> => {
    if (snapshotId) {
      try {
        await repository.forget([snapshotId]);
        reason.message += `; the incomplete snapshot ${snapshotId.slice(0, 8)} was discarded`;
      } catch (error) {
        reason.message += `\nthe incomplete snapshot ${snapshotId.slice(0, 8)} could not be forgotten ` +
          `(${(error as Error).message.split("\n")[0]}); the next apply forgets it (a recover action)`;
        throw Object.assign(reason, { partialSnapshotId: snapshotId });
      }
    }
    throw reason;
  };

  if (options.timeoutMs !== undefined && Date.now() - started >= options.timeoutMs) {
    return await discard(
      new SourceError(`the stage ran out of time (${humanDuration(options.timeoutMs)}) and was stopped`),
    );
  }
  if (resticFailedFirst) return await discard(repository.failure("backup --stdin", resticResult));
  const failed = stages.findIndex((_, i) => results[i].code !== 0);
  if (failed >= 0) {
    const result = results[failed];
    const what = failed === 0 ? "the dump" : "encryption";
    return await discard(
      new ExecError(
        stages[failed].name,
        result.code,
        result.stderrTail,
        `${stages[failed].name} (${what}) failed (exit ${result.code ?? result.signal}) after ${produced.bytes} bytes` +
          (result.stderrTail ? `:\n    ${result.stderrTail.replaceAll("\n", "\n    ")}` : ""),
      ),
    );
  }
  if (produced.bytes === 0) {
    if (!input.allowEmpty) {
      return await discard(
        new SourceError(
          `${input.argv[0]} produced an empty dump; set allowEmpty: true on the source if that is expected`,
        ),
      );
    }
    // restic refuses to store an empty snapshot ("snapshot is empty"): an allowed empty dump stores nothing.
    if (snapshotId) await repository.forget([snapshotId]);
    return { snapshotId: undefined, bytes: 0, bytesAdded: 0 };
  }
  if (resticResult.code !== 0) return await discard(repository.failure("backup --stdin", resticResult));
  const problem = input.check?.(produced.edges().head, produced.edges().tail);
  if (problem && produced.bytes > 0) {
    return await discard(new SourceError(`the dump failed verification: ${problem}`));
  }
  if (summary.bytesProcessed !== sent.bytes) {
    return await discard(
      new SourceError(`restic stored ${summary.bytesProcessed} bytes of the ${sent.bytes} it was sent`),
    );
  }
  if (!snapshotId) {
    throw new ExecError("restic backup", resticResult.code, resticResult.stderrTail, "restic reported no snapshot id");
  }
  return { snapshotId, bytes: produced.bytes, bytesAdded: summary.bytesAdded };
}
