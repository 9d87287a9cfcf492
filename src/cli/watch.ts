/**
 * `backupctl watch`: runs plan → apply forever (see watch/loop.ts), with optional /healthz and /metrics
 * (watch/http.ts). SIGTERM/SIGINT: no new work, the running stage may finish within --grace, then it is stopped; the
 * run is recorded interrupted, locks are released, exit 0 (143/130 when the grace period ran out).
 */
import type { Command } from "commander";
import { Option } from "commander";
import { createClock } from "../clock.ts";
import { parseDuration } from "../config/duration.ts";
import { ExitCode, UsageError } from "../errors.ts";
import { handleStopSignals, signalExitCode, stopForced, stopRequested } from "../runtime/shutdown.ts";
import { parseListen, startHttp } from "../watch/http.ts";
import { Watcher } from "../watch/loop.ts";
import { parseLogFormat, setupEventLog } from "../log.ts";
import { fromInvocationDir, type GlobalOptions, hostFor, load, openStore, type Output, parseNow } from "./context.ts";

export const description = "Run plan and apply forever: due backups, retention, checks; optional /healthz and /metrics";

export const defaultListen = "127.0.0.1:9464";

interface Options extends GlobalOptions {
  listen?: string | true;
  concurrency: string;
  grace: string;
  maxSleep: string;
  lockWait: string;
  now?: string;
}

export function define(program: Command, output: Output, done: (code: number) => void): void {
  program.command("watch").description(description)
    .addOption(
      new Option("--listen [addr]", `serve GET /healthz and /metrics on HOST:PORT (default ${defaultListen})`)
        .env("BACKUPCTL_LISTEN"),
    )
    .option("--concurrency <n>", "projects backed up at the same time, at most", "1")
    .option("--grace <duration>", "after SIGTERM/SIGINT, how long a running stage may take to finish", "60s")
    .option("--max-sleep <duration>", "longest sleep between two looks at the schedule", "60s")
    .option("--lock-wait <duration>", "how long to wait for a project another process has locked, then skip it", "5m")
    .option("--now <iso>", "start the clock at this time (it then runs at normal speed): for trying schedules")
    .action(async (_options, command: Command) => done(await run(command.optsWithGlobals<Options>(), output)));
}

function durationOption(name: string, text: string): number {
  const ms = parseDuration(text);
  if (ms === undefined) throw new UsageError(`--${name}: expected a duration such as "30s" or "5m", got "${text}"`);
  return ms;
}

export async function run(options: Options, output: Output): Promise<number> {
  const concurrency = Number(options.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) {
    throw new UsageError(`--concurrency: expected a whole number from 1 to 64, got "${options.concurrency}"`);
  }
  const graceMs = durationOption("grace", options.grace);
  const maxSleepMs = Math.max(1000, durationOption("max-sleep", options.maxSleep));
  const lockWaitMs = durationOption("lock-wait", options.lockWait);
  let listen: { host: string; port: number } | undefined;
  try {
    if (options.listen !== undefined) listen = parseListen(options.listen === true ? defaultListen : options.listen);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const clock = createClock(parseNow(options.now));
  handleStopSignals({ graceMs });
  const loaded = await load(options);
  const store = await openStore(options, loaded);
  const events = await setupEventLog({
    format: parseLogFormat(options.logFormat) ?? (process.stdout.isTTY ? "text" : "json"),
    file: options.logFile ? fromInvocationDir(options.logFile) : undefined,
    timestamps: true,
    timeZone: loaded.displayTimeZone,
    stdout: output.stdout,
  }, options.debug);
  const log = events.scope();
  const watcher = new Watcher(loaded, store, {
    concurrency,
    maxSleepMs,
    lockWaitMs,
    host: hostFor(loaded),
    clock,
    log,
  });
  let http: Awaited<ReturnType<typeof startHttp>> | undefined;
  try {
    if (listen) {
      http = await startHttp(watcher, listen);
      log(`watch: serving /healthz and /metrics on http://${listen.host}:${http.port}`);
    }
    await watcher.run();
  } finally {
    await http?.close();
    await store.close();
    await events.close();
  }
  const signal = stopRequested();
  return signal && stopForced() ? signalExitCode(signal) : ExitCode.ok;
}
