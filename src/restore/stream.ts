/**
 * A dump streamed out of the repository: `restic dump ID /FILE | [decryption] | [tap | sink]`, or into a file, the
 * programs connected by FIFOs (exec/fifo.ts) so the dump never passes through this process.
 *
 * A stream can be opened before its sink may run: restic and the filters start at once (restic's start, its key
 * derivation, takes most of a small restore's time), while the caller still checks the target; the sink starts only
 * in `finish()`, and `abandon()` stops the rest before the sink ever ran. Until the sink runs, nothing is written
 * anywhere: the tap blocks on a FIFO this process holds.
 */
import { closeSync, existsSync, openSync, rmSync, statSync } from "node:fs";
import { basename } from "node:path";
import { decryptionFilter } from "../encrypt/filter.ts";
import type { StreamFilter } from "../encrypt/types.ts";
import { ExecError, MissingToolError, SourceError } from "../errors.ts";
import { FifoFolder, parseTap, stopAndWait, tapArgv } from "../exec/fifo.ts";
import { transientOutput } from "../exec/failure.ts";
import { onPath, type RunningProcess, type RunResult, start } from "../exec/run.ts";
import type { Restic } from "../repository/restic.ts";
import type { Located, RestoreContext } from "./restore.ts";
import type { RestoreSink } from "./targets.ts";

async function decryption(located: Located, ctx: RestoreContext): Promise<StreamFilter | undefined> {
  if (!located.encrypted) return undefined;
  const encrypt = located.project.encrypt;
  const expected = encrypt ? (encrypt.type === "gpg" ? ".gpg" : ".age") : undefined;
  if (!encrypt || expected !== located.encrypted) {
    throw new SourceError(
      `the dump ${
        basename(located.dumpPath!)
      } is encrypted (${located.encrypted}) but project ${located.project.name} ` +
        `${
          encrypt ? `encrypts with ${encrypt.type}` : "declares no encrypt"
        }: restore it by hand with the key it was made with`,
    );
  }
  return await decryptionFilter(encrypt, { configDir: ctx.loaded.dir, privateDir: ctx.privateDir });
}

export interface StreamOutcome {
  /** Bytes of the restored (decrypted) dump. */
  bytes: number;
  durationMs: number;
}

export interface DumpStreamOptions {
  /** Stop every program of the stream after this long. */
  timeoutMs?: number;
  /** The sink may stop reading early (see {@link streamDump}). */
  readerMayStop?: boolean;
}

/** A dump stream whose restic (and filters) run; its sink starts in `finish()`. */
export interface DumpStream {
  /** Starts the sink and waits for the whole stream: its outcome, or the failure, after every program ended. */
  finish(): Promise<StreamOutcome>;
  /** Stops what the stream started, waits until it is gone and removes what it made. The sink never ran. */
  abandon(): Promise<void>;
}

/**
 * Streams a dump out of the repository into `into`: a file path (created 0600 and written by restic or the
 * decryption filter through a redirection, removed when anything fails) or a database sink (a program reading
 * stdin). The programs are connected by FIFOs (exec/fifo.ts): the dump never passes through this process. A sink
 * reads a FIFO backupctl holds open, so it sees the end of the dump only once restic and every filter exited 0;
 * when anything fails, the sink is stopped before the FIFO is let go, so it never takes a cut dump for a whole one.
 * A tap (exec/fifo.ts) before the sink counts the bytes; a file's size is its count.
 *
 * `readerMayStop` is for a sink that legitimately reads only part of the dump: pg_restore restoring some tables or
 * schemas from a pipe exits 0 once it restored the last entry it was asked for, without reading the rest. Its clean
 * exit then ends the stream (restic and the filters are stopped, which is not a failure); what it read had passed
 * restic's checks, since restic verifies every blob before it writes it. The bytes are then those the tap counted, or
 * 0 when the tap was stopped before it could say.
 */
export async function streamDump(
  located: Located,
  into: { file: string } | { sink: RestoreSink },
  ctx: RestoreContext,
  timeoutMs?: number,
  readerMayStop = false,
): Promise<StreamOutcome> {
  const stream = await openDumpStream(located, into, ctx, { timeoutMs, readerMayStop });
  return await stream.finish();
}

/**
 * Opens the stream of {@link streamDump}: restic, the decryption filter and the tap start now, the sink in
 * `finish()`. Call exactly one of `finish()` and `abandon()`.
 */
export async function openDumpStream(
  located: Located,
  into: { file: string } | { sink: RestoreSink },
  ctx: RestoreContext,
  options: DumpStreamOptions = {},
): Promise<DumpStream> {
  const { timeoutMs, readerMayStop = false } = options;
  const started = Date.now();
  const sink = "sink" in into ? into.sink : undefined;
  const file = "file" in into ? into.file : undefined;
  let filter: StreamFilter | undefined;
  let fifos: FifoFolder | undefined;
  let created = false;
  /** What the stream made, removed once (after its programs ended); `failed` removes the output file too. */
  let cleaned = false;
  const cleanup = async (failed: boolean) => {
    if (cleaned) return;
    cleaned = true;
    if (failed && created) rmSync(file!, { force: true });
    fifos?.remove();
    await filter?.cleanup?.();
    sink?.cleanup();
  };
  let repository: Restic | undefined;
  let sinkInput: string | undefined;
  let release: () => void = () => {};
  /** The programs after restic, in order; the sink last once started. */
  const chain: { name: string; process: RunningProcess; tap?: boolean }[] = [];
  let dump: ReturnType<Restic["startDump"]> | undefined;
  /**
   * restic first, and only once it is gone the programs after it: a restic whose reader died first would die of
   * SIGPIPE on its next write (Go programs do, on their standard output) without removing its lock.
   */
  const stopStarted = async () => {
    if (dump) await stopAndWait({ kill: dump.kill, result: dump.finished }, "SIGINT");
    for (const { process } of chain) process.kill();
    await Promise.all(chain.map(({ process }) => process.result));
    // A restic stopped while it wrote its lock leaves it behind (it cannot finish its clean-up): removed here.
    if (dump) await repository?.removeOwnLocksSince(started - 1000);
  };
  try {
    filter = await decryption(located, ctx);
    for (const program of [filter, sink]) {
      if (program && !(await onPath(program.argv[0]))) throw new MissingToolError(program.argv[0], program.package);
    }
    if (sink && !(await onPath("perl"))) throw new MissingToolError("perl", "perl-base");
    repository = ctx.repositoryFor(located.repository);
    fifos = FifoFolder.create(ctx.privateDir);
    // restic dump → [decryption] → tap → sink, or restic dump → [decryption] → the file: FIFO i is what the
    // (i+1)th program reads.
    const paths = await fifos.make(
      ...Array.from({ length: (filter ? 1 : 0) + (sink ? 2 : 0) }, (_, i) => `stream-${i}`),
    );
    if (file) {
      // Created here, 0600 and only if absent (wx); restic or the filter writes into it through a redirection.
      try {
        closeSync(openSync(file, "wx", 0o600));
      } catch (error) {
        throw new SourceError(`cannot write the restored dump: ${(error as Error).message}`);
      }
      created = true;
    }
    sinkInput = sink ? paths.at(-1)! : undefined;
    // Held until restic and every filter succeeded: the sink sees the end of the dump only then.
    release = sinkInput ? fifos.hold(sinkInput) : () => {};
    dump = repository.startDump(located.snapshot.id, located.dumpPath!, paths[0] ?? file!, timeoutMs);
    if (filter) {
      chain.push({
        name: `${filter.argv[0]} (decryption)`,
        process: start(filter.argv, {
          env: filter.env,
          stdout: "stream",
          timeoutMs,
          stdinFrom: paths[0],
          stdoutTo: sink ? paths[1] : file!,
        }),
      });
    }
    if (sink) {
      const tap = start(tapArgv(sinkInput!, false), { timeoutMs, stdinFrom: paths.at(-2)! });
      chain.push({ name: "tap", tap: true, process: tap });
    }
  } catch (error) {
    await stopStarted();
    await cleanup(true);
    throw error;
  }
  const [running, source] = [dump, repository];
  let settled = false;
  return {
    abandon: async () => {
      if (settled) return;
      settled = true;
      await stopStarted();
      await cleanup(true);
    },
    finish: async () => {
      if (settled) throw new Error("the dump stream was already finished or abandoned");
      settled = true;
      let failed = true;
      try {
        if (sink) {
          chain.push({
            name: sink.argv[0],
            process: start(sink.argv, { env: sink.env, timeoutMs, stdinFrom: sinkInput }),
          });
        }
        const outcome = await watchStream({
          dump: running,
          chain,
          reader: sink ? chain.length - 1 : undefined,
          release,
          readerMayStop,
          restored: (tapResult) =>
            file ? (existsSync(file) ? statSync(file).size : 0) : (tapResult && parseTap(tapResult.stdout)?.bytes) ?? 0,
          file,
          failure: (result) => source.failure("dump", result),
        });
        failed = false;
        return { ...outcome, durationMs: Date.now() - started };
      } finally {
        await cleanup(failed);
      }
    },
  };
}

interface Watched {
  dump: ReturnType<Restic["startDump"]>;
  chain: { name: string; process: RunningProcess; tap?: boolean }[];
  /** The sink's index in `chain`, when there is one. */
  reader: number | undefined;
  /** Lets the sink see the end of the dump. */
  release: () => void;
  readerMayStop: boolean;
  /** Bytes of the dump so far: the tap's count (known once it ended), or the file's size. */
  restored: (tapResult?: RunResult) => number;
  file: string | undefined;
  failure: (result: RunResult) => Error;
}

/**
 * Watches every process of a started stream at once: the first to fail stops the others (a reader that quits early,
 * such as pg_restore refused by the target, would otherwise leave restic blocked on a full pipe forever), and it is
 * the one reported, not the ones the kill stopped.
 */
async function watchStream(watched: Watched): Promise<{ bytes: number }> {
  const { dump, chain, reader, release, readerMayStop, restored, file } = watched;
  const upstream = [dump.finished, ...chain.filter((_, i) => i !== reader).map(({ process }) => process.result)];
  const upstreamDone = Promise.all(upstream);
  let sinkStopped: Promise<unknown> | undefined;
  const killAll = () => {
    // The sink first, so it never sees the end of a cut dump (the FIFO is let go only once it exited).
    if (reader !== undefined) sinkStopped ??= stopAndWait(chain[reader].process, "SIGTERM");
    dump.kill();
    for (const { process } of chain) process.kill();
  };
  // -1 is restic.
  let culprit: number | undefined;
  /** The reader (the last program) ended cleanly before restic and the filters had sent everything. */
  let stoppedReading = false;
  /** …and that was allowed (readerMayStop): the others were stopped, their exits are not failures. */
  let doneReading = false;
  let sent = false;
  void upstreamDone.then((results) => {
    sent = results.every((result) => result.code === 0);
    if (sent && culprit === undefined) release();
  });
  const watch = (index: number, finished: Promise<RunResult>) =>
    finished.then(async (result) => {
      if (index === reader && result.code === 0 && !sent) {
        // The others' exits may simply not have been seen yet: give them a moment before calling the reader early.
        await Promise.race([upstreamDone, new Promise((resolve) => setTimeout(resolve, 2000))]);
      }
      const early = index === reader && result.code === 0 && !sent;
      if (early && readerMayStop && culprit === undefined) {
        doneReading = true;
        dump.kill();
        for (const { process } of chain) process.kill();
        return result;
      }
      if (doneReading) return result;
      if ((result.code !== 0 || early) && culprit === undefined) {
        culprit = index;
        stoppedReading = early;
        killAll();
      }
      return result;
    });
  const [resticResult, ...results] = await Promise.all([
    watch(-1, dump.finished),
    ...chain.map(({ process }, i) => watch(i, process.result)),
  ]);
  await sinkStopped;
  const tapResult = reader !== undefined ? results[chain.findIndex((stage) => stage.tap)] : undefined;
  const bytes = restored(tapResult);
  if (doneReading) return { bytes };
  if (culprit === -1 || (culprit === undefined && resticResult.code !== 0)) {
    if (file && /no space left on device|disk quota exceeded/i.test(resticResult.stderrTail)) {
      throw new SourceError(`cannot write the restored dump: ${resticResult.stderrTail}`);
    }
    throw watched.failure(resticResult);
  }
  if (stoppedReading) {
    throw new SourceError(
      `${chain[reader!].name} exited before it had read the whole dump (after ${bytes} bytes): the restore ` +
        "is incomplete",
    );
  }
  const failed = culprit ?? chain.findIndex((_, i) => results[i].code !== 0);
  if (failed >= 0) {
    const result = results[failed];
    throw new ExecError(
      chain[failed].name,
      result.code,
      result.stderrTail,
      `${chain[failed].name} failed (exit ${result.code ?? result.signal}) after ${bytes} bytes of the dump` +
        (result.stderrTail ? `:\n    ${result.stderrTail.replaceAll("\n", "\n    ")}` : ""),
      transientOutput(result.stderrTail),
    );
  }
  return { bytes };
}
