/**
 * The streaming backup: `producer | restic backup --stdin`. Both exit codes are checked; when the producer fails,
 * is empty when it must not be, or restic fails after writing a snapshot, that snapshot is forgotten at once so a
 * truncated stream never looks like a good backup.
 */
import { Transform } from "node:stream";
import { ExecError, MissingToolError, SourceError } from "../errors.ts";
import { onPath, start } from "../exec/run.ts";
import type { BackupOptions, Restic } from "../repository/restic.ts";
import type { StreamInput } from "../sources/input.ts";

export interface StreamResult {
  snapshotId: string;
  /** Bytes the producer wrote (the dump's size). */
  bytes: number;
  bytesAdded: number;
}

export async function streamBackup(
  input: StreamInput,
  repository: Restic,
  options: BackupOptions,
): Promise<StreamResult> {
  const program = input.argv[0];
  if (!(await onPath(program))) throw new MissingToolError(program, input.package);

  const consumer = repository.startStdinBackup(input.filename, options);
  const producer = start(input.argv, { env: input.env, stdout: "stream" });
  let bytes = 0;
  const counter = new Transform({
    transform(chunk: Uint8Array, _encoding, callback) {
      bytes += chunk.length;
      callback(null, chunk);
    },
  });
  // A consumer that dies early closes its stdin: the producer then fails on a broken pipe, which is reported below.
  const ignore = () => {};
  counter.on("error", ignore);
  consumer.stdin.on("error", ignore);
  producer.stdout.on("error", ignore);
  producer.stdout.pipe(counter).pipe(consumer.stdin);

  const consumerDone = consumer.finished.then((done) => {
    if (done.result.code !== 0) producer.kill();
    return done;
  });
  const [produced, consumed] = await Promise.all([producer.result, consumerDone]);
  const snapshotId = consumed.summary.snapshotId;

  const discard = async (reason: Error): Promise<never> => {
    if (snapshotId) {
      try {
        await repository.forget([snapshotId]);
      } catch (error) {
        reason.message += `\nthe incomplete snapshot ${snapshotId.slice(0, 8)} could not be forgotten: ` +
          `${
            (error as Error).message
          }; forget it with \`restic forget ${snapshotId}\` on repository ${repository.name}`;
      }
    }
    throw reason;
  };

  if (consumed.result.code !== 0) {
    return await discard(repository.failure("backup --stdin", consumed.result));
  }
  if (produced.code !== 0) {
    return await discard(
      new ExecError(
        program,
        produced.code,
        produced.stderrTail,
        `${program} failed (exit ${produced.code ?? produced.signal}) after ${bytes} bytes; ` +
          `the partial snapshot was discarded${
            produced.stderrTail ? `:\n    ${produced.stderrTail.replaceAll("\n", "\n    ")}` : ""
          }`,
      ),
    );
  }
  if (bytes === 0 && !input.allowEmpty) {
    return await discard(
      new SourceError(`${program} produced an empty dump; set allowEmpty: true on the source if that is expected`),
    );
  }
  if (!snapshotId) {
    throw new ExecError(
      "restic backup",
      consumed.result.code,
      consumed.result.stderrTail,
      "restic reported no snapshot id",
    );
  }
  return { snapshotId, bytes, bytesAdded: consumed.summary.bytesAdded };
}
