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
import { dashboardOff, parseListen, startHttp } from "../watch/http.ts";
import { listenProblem, readToken, tokenVariable } from "../web/security.ts";
import { Watcher } from "../watch/loop.ts";
import { FleetMember } from "../fleet/member.ts";
import { versionLine } from "./version.ts";
import { parseLogFormat, setupEventLog } from "../log.ts";
import { fromInvocationDir, type GlobalOptions, hostFor, load, openStore, type Output, parseNow } from "./context.ts";

export const description =
  "Run plan and apply forever: due backups, retention, checks; optional /healthz, /metrics and the dashboard";

export const defaultListen = "127.0.0.1:9464";

interface Options extends GlobalOptions {
  listen?: string | true;
  tokenFile?: string;
  concurrency: string;
  grace: string;
  maxSleep: string;
  lockWait: string;
  now?: string;
  runnerName?: string;
  runnerLabels?: string;
  leaseTtl: string;
}

export function define(program: Command, output: Output, done: (code: number) => void): void {
  program.command("watch").description(description)
    .addOption(
      new Option(
        "--listen [addr]",
        `serve GET /healthz, /metrics and the dashboard on HOST:PORT (default ${defaultListen})`,
      ).env("BACKUPCTL_LISTEN"),
    )
    .option(
      "--token-file <path>",
      `the dashboard's token, from a file (default: ${tokenVariable}); required for the dashboard beyond loopback`,
    )
    .option("--concurrency <n>", "projects backed up at the same time, at most", "1")
    .option("--grace <duration>", "after SIGTERM/SIGINT, how long a running stage may take to finish", "60s")
    .option("--max-sleep <duration>", "longest sleep between two looks at the schedule", "60s")
    .option("--lock-wait <duration>", "how long to wait for a project another process has locked, then skip it", "5m")
    .option("--now <iso>", "start the clock at this time (it then runs at normal speed): for trying schedules")
    .addOption(
      new Option("--runner-name <name>", "this runner's name in a fleet and in status (default: the host name)")
        .env("BACKUPCTL_RUNNER_NAME"),
    )
    .addOption(
      new Option(
        "--runner-labels <labels>",
        "comma-separated labels of this runner: it runs only projects whose runsOn it has (default: its name)",
      ).env("BACKUPCTL_RUNNER_LABELS"),
    )
    .addOption(
      new Option(
        "--lease-ttl <duration>",
        "with a PostgreSQL state: how long a silent runner keeps its work before another takes it over",
      ).default("2m").env("BACKUPCTL_LEASE_TTL"),
    )
    .action(async (_options, command: Command) => done(await run(command.optsWithGlobals<Options>(), output)));
}

/** A runner name or label: what `runsOn` accepts. */
function runnerLabel(option: string, text: string): string {
  if (!/^[a-z0-9][a-z0-9_.-]{0,62}$/.test(text)) {
    throw new UsageError(
      `${option}: "${text}" is not a runner label: lower-case letters, digits, ".", "_" or "-" (e.g. "db-eu")`,
    );
  }
  return text;
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
  const leaseTtlMs = durationOption("lease-ttl", options.leaseTtl);
  if (leaseTtlMs < 2000) throw new UsageError(`--lease-ttl: at least 2s, got "${options.leaseTtl}"`);
  const runnerName = options.runnerName === undefined ? undefined : runnerLabel("--runner-name", options.runnerName);
  const labels = options.runnerLabels === undefined
    ? undefined
    : options.runnerLabels.split(",").map((label) => runnerLabel("--runner-labels", label.trim()));
  let listen: { host: string; port: number } | undefined;
  try {
    if (options.listen !== undefined) listen = parseListen(options.listen === true ? defaultListen : options.listen);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const token = readToken({ tokenFile: options.tokenFile ? fromInvocationDir(options.tokenFile) : undefined });
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
  const host = hostFor(loaded);
  const name = runnerName ?? host;
  // With a PostgreSQL state this watch is a runner of a fleet: leases decide which runner runs what.
  let fleet: FleetMember | undefined;
  try {
    fleet = store.postgres
      ? await FleetMember.join(store, {
        name,
        labels: labels ?? [name],
        host,
        ttlMs: leaseTtlMs,
        version: versionLine().replace(/^backupctl /, ""),
        fingerprint: loaded.fingerprint,
        register: true,
        log,
      })
      : undefined;
  } catch (error) {
    await store.close();
    await events.close();
    throw error;
  }
  const watcher = new Watcher(loaded, store, {
    concurrency,
    maxSleepMs,
    lockWaitMs,
    host,
    clock,
    log,
    runnerName: name,
    labels: labels ?? [name],
    fleet,
  });
  let http: Awaited<ReturnType<typeof startHttp>> | undefined;
  try {
    if (listen) {
      // Beyond loopback without a token the dashboard stays off; /healthz and /metrics serve as they always did.
      const dashboard = listenProblem(listen.host, token) ? undefined : { token };
      http = await startHttp(watcher, listen, dashboard);
      const where = `http://${listen.host.includes(":") ? `[${listen.host}]` : listen.host}:${http.port}`;
      log(
        dashboard
          ? `watch: serving the dashboard, /healthz and /metrics on ${where}`
          : `watch: serving /healthz and /metrics on ${where}; the dashboard is off: ${dashboardOff}`,
      );
    }
    await watcher.run();
  } finally {
    await http?.close();
    await fleet?.leave();
    await store.close();
    await events.close();
  }
  const signal = stopRequested();
  return signal && stopForced() ? signalExitCode(signal) : ExitCode.ok;
}
