/**
 * The streaming backup: `producer | tap | [encryption filter | tap] | restic backup --stdin`, connected by FIFOs
 * in a private folder (exec/fifo.ts), so the dump flows from program to program through the kernel and never passes
 * through this process. The tap (a small perl program, see exec/fifo.ts) counts the bytes the producer wrote and
 * keeps the first and last 64 KiB for the source's format check; with a filter, a second tap counts what restic is
 * sent.
 *
 * restic never sees the end of the stream unless everything before it succeeded: restic runs behind a gate
 * (exec/fifo.ts) that holds its input FIFO open, as backupctl does, and lets it go only on backupctl's `commit` —
 * given when every upstream process exited 0, the dump is not empty and its format check passed. Otherwise restic
 * is stopped first (SIGINT: it removes its lock and stores nothing), and only then is the FIFO let go. Should
 * backupctl die (SIGKILL, the OOM killer) while the producer carries on, the gate sees its word never come and stops
 * restic itself: a stream cut by a crash stores no snapshot. When restic dies early, the upstream processes are stopped (they would block forever on a
 * FIFO backupctl holds). Should a snapshot exist all the same, or restic not have stored every byte it was sent, the
 * snapshot is forgotten at once, so a truncated stream never looks like a good backup. No temp file holds the dump.
 */
import type { StreamFilter } from "../encrypt/types.ts";
import { ExecError, FencedError, MissingToolError, PartialSnapshotError, SourceError } from "../errors.ts";
import { transientOutput } from "../exec/failure.ts";
import { FifoFolder, parseTap, stopAndWait, tapArgv, type TapReport } from "../exec/fifo.ts";
import { onPath, type RunningProcess, type RunResult, start } from "../exec/run.ts";
import type { BackupOptions, Restic } from "../repository/restic.ts";
import type { StreamInput } from "../sources/types.ts";
import { humanDuration } from "../format/time.ts";

export interface StreamResult {
  /** Undefined only for an empty dump the source allows: restic stores no empty snapshot. */
  snapshotId: string | undefined;
  /** Bytes the producer wrote (the dump's size, before encryption). */
  bytes: number;
  bytesAdded: number;
  /** The SHA-256 (hex) of the dump the producer wrote, when the tap could compute it (exec/fifo.ts). */
  sha256?: string;
}

/**
 * The note of a backup stage whose stream was hashed: `sha256 HEX`, what a command drill compares the restored dump
 * with (restore/drill-samples.ts). The note, not a column: it is what a succeeded stage has to say.
 */
export function checksumNote(sha256: string): string {
  return `sha256 ${sha256}`;
}

/** The checksum a backup stage's note recorded, if any. */
export function noteChecksum(note: string | null): string | undefined {
  return /^sha256 ([0-9a-f]{64})$/.exec(note ?? "")?.[1];
}

/**
 * Forgets a snapshot restic stored from a failed backup; returns the error to throw: `reason`, its message saying the
 * snapshot was discarded, or — when the forget fails (another restic process holds the lock, the backend went away) —
 * a {@link PartialSnapshotError} carrying the id: the failed stage records it and the next plan has a recover action
 * for it.
 */
export async function discardSnapshot(repository: Restic, snapshotId: string, reason: Error): Promise<Error> {
  try {
    await repository.forget([snapshotId]);
    reason.message += `; the incomplete snapshot ${snapshotId.slice(0, 8)} was discarded`;
    return reason;
  } catch (error) {
    const why = error instanceof Error ? error.message.split("\n")[0] : String(error);
    return new PartialSnapshotError(
      reason,
      snapshotId,
      `${reason.message}\nthe incomplete snapshot ${snapshotId.slice(0, 8)} could not be forgotten (${why}); the ` +
        "next apply forgets it (a recover action)",
    );
  }
}

/** The dump's file name in the snapshot: the source's, plus each filter's extension (`shop.sql.gpg`). */
export function storedName(input: StreamInput, filters: StreamFilter[]): string {
  return input.filename + filters.map((filter) => filter.extension).join("");
}

export async function streamBackup(
  input: StreamInput,
  repository: Restic,
  options: BackupOptions,
  filters: StreamFilter[] = [],
): Promise<StreamResult> {
  let fifos: FifoFolder | undefined;
  try {
    for (const program of [input, ...filters]) {
      if (!(await onPath(program.argv[0]))) throw new MissingToolError(program.argv[0], program.package);
    }
    if (!(await onPath("perl"))) throw new MissingToolError("perl", "perl-base");
    fifos = FifoFolder.create(options.privateDir);
    return await run(input, repository, options, filters, fifos);
  } finally {
    fifos?.remove();
    input.cleanup?.();
    for (const filter of filters) await filter.cleanup?.();
  }
}

interface Stage {
  name: string;
  process: RunningProcess;
  /** A tap: what it printed tells how many bytes went through (and the edges of the dump). */
  tap?: "produced" | "sent";
}

async function run(
  input: StreamInput,
  repository: Restic,
  options: BackupOptions,
  filters: StreamFilter[],
  fifos: FifoFolder,
) {
  const filename = storedName(input, filters);
  // The programs in order, each reading the FIFO the previous one writes; restic reads the last one.
  const programs: { name: string; argv: string[]; env?: Record<string, string>; tap?: Stage["tap"] }[] = [
    { name: input.argv[0], argv: input.argv, env: input.env },
  ];
  programs.push({ name: "tap", argv: [], tap: "produced" });
  for (const filter of filters) programs.push({ name: filter.argv[0], argv: filter.argv, env: filter.env });
  if (filters.length > 0) programs.push({ name: "tap", argv: [], tap: "sent" });
  const paths = await fifos.make(...programs.map((_, i) => `stream-${i}`));
  const resticInput = paths.at(-1)!;
  // Held from before restic starts until the verdict: restic cannot see the end of the stream before that.
  const release = fifos.hold(resticInput);

  const started = Date.now();
  const consumer = repository.startStdinBackup(filename, options, resticInput);
  // The stream starts once restic's gate holds the FIFO (or the gate ended: the verdict below then says why).
  await consumer.ready;
  const stages: Stage[] = programs.map((program, i) => {
    const redirect = { stdinFrom: i > 0 ? paths[i - 1] : undefined, stdoutTo: program.tap ? undefined : paths[i] };
    const argv = program.tap
      ? tapArgv(
        paths[i],
        program.tap === "produced" && input.check !== undefined,
        program.tap === "produced" && input.checksum === true,
      )
      : program.argv;
    const stdout = program.tap ? "keep" as const : "stream" as const;
    return {
      name: program.name,
      tap: program.tap,
      process: start(argv, {
        env: program.env,
        stdout,
        timeoutMs: options.timeoutMs,
        priority: options.priority,
        ...redirect,
      }),
    };
  });

  // Live progress: the first tap prints its count about once a second (`+N` lines, see exec/fifo.ts).
  let producedSoFar = 0;
  const firstTap = stages.find((stage) => stage.tap === "produced")!.process.stdout;
  let partial = "";
  firstTap.on("data", (chunk: Uint8Array | string) => {
    const lines = (partial + chunk.toString()).split("\n");
    partial = lines.pop() ?? "";
    for (const line of lines) if (line.startsWith("+")) producedSoFar = Number(line.slice(1)) || producedSoFar;
  });
  const progress = options.progress?.(() => producedSoFar);
  const killStages = () => stages.forEach(({ process }) => process.kill());
  /** restic stopped before the end of the stream (SIGINT, then SIGKILL), once; resolves when it is gone. */
  let stopping: Promise<unknown> | undefined;
  const stopRestic = () =>
    stopping ??= stopAndWait({ kill: consumer.kill, result: consumer.finished.then((done) => done.result) }, "SIGINT");
  /** Set when restic failed while the dump still ran: restic's error is the cause, not the dump's SIGTERM. */
  let resticFailedFirst = false;
  let stagesDone = 0;
  /** Set once backupctl stopped the stages: later failures are what the kill did. */
  let killed = false;
  const consumed = consumer.finished.then((done) => {
    if (stagesDone < stages.length && !stopping) {
      // restic ended before the stream did: whatever still writes towards it would block forever.
      resticFailedFirst = done.result.code !== 0;
      killed = true;
      killStages();
    }
    return done;
  });
  /** The stages that failed, in the order they ended, and whether each did so before backupctl stopped them. */
  const failures: { index: number; cause: boolean }[] = [];
  let results: RunResult[];
  try {
    results = await Promise.all(
      stages.map(({ process }, index) =>
        process.result.then((result) => {
          stagesDone++;
          if (result.code !== 0) {
            // A broken pipe is the consequence of the next program's failure, not a cause.
            failures.push({ index, cause: !killed && result.signal !== "SIGPIPE" });
            // Its output is worthless now: restic first, so it never sees the end of a cut stream, then the rest.
            void stopRestic();
            killed = true;
            killStages();
          }
          return result;
        })
      ),
    );
  } catch (error) {
    await stopRestic();
    consumer.abandon();
    release();
    throw error;
  }

  const reports = new Map<Stage["tap"], TapReport | undefined>();
  stages.forEach((stage, i) => {
    if (stage.tap) reports.set(stage.tap, parseTap(results[i].stdout));
  });
  const produced = () => reports.get("produced")?.bytes ?? producedSoFar;

  // The verdict on the stream before restic may see its end.
  const timedOut = () => options.timeoutMs !== undefined && Date.now() - started >= options.timeoutMs;
  const failed = (failures.find((failure) => failure.cause) ?? failures[0])?.index ?? -1;
  const producedReport = reports.get("produced");
  const edges = producedReport?.head && producedReport.tail ? producedReport : undefined;
  const problem = failed < 0 && edges && edges.bytes > 0 ? input.check?.(edges.head!, edges.tail!) : undefined;
  const whole = !timedOut() && !resticFailedFirst && failed < 0 && !problem && !stopping &&
    producedReport !== undefined && producedReport.bytes > 0;
  // The last word before restic may store the snapshot: a run whose lease was taken over stores none.
  const refused = whole ? await options.beforeCommit?.() : undefined;
  const complete = whole && refused === undefined;
  if (complete) consumer.commit();
  else {
    await stopRestic();
    consumer.abandon();
  }
  release();
  const { result: resticResult, summary } = await consumed;
  progress?.stop();
  // A restic stopped while it wrote its lock leaves it behind: removed here rather than shown at the next plan.
  if (stopping) await repository.removeOwnLocksSince(started - 1000);
  const snapshotId = summary.snapshotId;
  const bytes = producedReport?.bytes ?? summary.bytesProcessed;

  const discard = async (reason: Error): Promise<never> => {
    if (snapshotId) {
      throw await discardSnapshot(repository, snapshotId, reason);
    } else if (stopping) {
      reason.message += "\nrestic was stopped before the end of the stream: no snapshot was stored";
    }
    throw reason;
  };

  if (timedOut()) {
    return await discard(
      new SourceError(`the stage ran out of time (${humanDuration(options.timeoutMs!)}) and was stopped`),
    );
  }
  if (resticFailedFirst) return await discard(repository.failure("backup --stdin", resticResult));
  if (refused !== undefined) return await discard(new FencedError("", `not stored: ${refused}`));
  if (failed >= 0) {
    const result = results[failed];
    const what = failed === 0 ? "the dump" : stages[failed].tap ? "counting the stream" : "encryption";
    return await discard(
      new ExecError(
        stages[failed].name,
        result.code,
        result.stderrTail,
        `${stages[failed].name} (${what}) failed (exit ${result.code ?? result.signal}) after ${produced()} bytes` +
          (result.stderrTail ? `:\n    ${result.stderrTail.replaceAll("\n", "\n    ")}` : ""),
        transientOutput(result.stderrTail),
      ),
    );
  }
  if (bytes === 0) {
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
  // A failed check stopped restic: its exit is not the cause.
  if (problem) return await discard(new SourceError(`the dump failed verification: ${problem}`));
  if (resticResult.code !== 0) return await discard(repository.failure("backup --stdin", resticResult));
  // What restic was sent: the last tap's count (after encryption), or the only one's.
  const sent = reports.get(filters.length > 0 ? "sent" : "produced")?.bytes;
  if (sent !== undefined && summary.bytesProcessed !== sent) {
    return await discard(
      new SourceError(`restic stored ${summary.bytesProcessed} bytes of the ${sent} it was sent`),
    );
  }
  if (!snapshotId) {
    throw new ExecError("restic backup", resticResult.code, resticResult.stderrTail, "restic reported no snapshot id");
  }
  return { snapshotId, bytes, bytesAdded: summary.bytesAdded, sha256: producedReport?.sha256 };
}
