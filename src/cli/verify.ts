/**
 * `backupctl verify [PROJECT…]`: runs the restore drills now (the projects named, or every project with `verify`),
 * whatever their cadence: the latest snapshot restored into the scratch database and checked, audited as a `verify`
 * stage, a failure notified (`verify.failed`) and exit 1.
 */
import type { Command } from "commander";
import { runDrill } from "../apply/actions/verify.ts";
import { acquireProjectLock, type ProjectLock } from "../apply/lock.ts";
import { createClock } from "../clock.ts";
import { ActionsFailedError, ExitCode, UsageError } from "../errors.ts";
import { OutboxSender } from "../notify/outbox.ts";
import { notificationLine } from "./apply.ts";
import { type GlobalOptions, hostFor, load, openStore, type Output, parseNow } from "./context.ts";
import { parseDuration } from "../config/duration.ts";
import { machineTimeZone } from "../format/time.ts";
import { drillReport, renderDrillReport } from "../status/drill-report.ts";
import { refreshRepositories } from "../apply/inventory.ts";
import { handleStopSignals } from "../runtime/shutdown.ts";

export const description = "Run restore drills now: restore the latest snapshot into the scratch database and check it";

interface Options extends GlobalOptions {
  report?: string;
  since: string;
  now?: string;
}

export function define(program: Command, output: Output, done: (code: number) => void): void {
  program.command("verify").description(description)
    .argument("[projects...]", "projects to drill (default: every project with verify)")
    .option(
      "--report <format>",
      "run no drill: print the evidence report of past drills, markdown or json (per project, every drill with its " +
        "date, snapshot, what was restored and checked, duration, result)",
    )
    .option("--since <duration>", "with --report: the period, back from now", "90d")
    .option("--now <iso>", "with --report: the end of the period (default: the clock)")
    .action(async (projects: string[], _options, command: Command) =>
      done(await run(projects, command.optsWithGlobals<Options>(), output))
    );
}

/** `verify --report`: the drills of the period from the audit; reads only. */
async function report(names: string[], options: Options, output: Output): Promise<number> {
  const format = options.report;
  if (format !== "markdown" && format !== "json") {
    throw new UsageError(`--report: expected markdown or json, got "${format}"`);
  }
  const periodMs = parseDuration(options.since);
  if (periodMs === undefined) {
    throw new UsageError(`--since: expected a duration such as "90d", got "${options.since}"`);
  }
  const now = parseNow(options.now) ?? new Date();
  const loaded = await load(options);
  const store = await openStore(options, loaded, "read");
  try {
    const evidence = await drillReport(loaded, store, new Date(now.getTime() - periodMs), now);
    if (names.length > 0) evidence.projects = evidence.projects.filter((p) => names.includes(p.project));
    output.stdout(
      format === "json"
        ? `${JSON.stringify(evidence, null, 2)}\n`
        : renderDrillReport(evidence, loaded.displayTimeZone ?? machineTimeZone()),
    );
  } finally {
    await store.close();
  }
  return ExitCode.ok;
}

export async function run(names: string[], options: Options, output: Output): Promise<number> {
  if (options.report !== undefined) return await report(names, options, output);
  // SIGINT/SIGTERM stop the drill's children and let it unwind: a PITR drill's scratch cluster is stopped and removed.
  handleStopSignals();
  const loaded = await load(options);
  const all = Object.values(loaded.config.projects);
  for (const name of names) {
    const project = loaded.config.projects[name];
    if (!project) {
      throw new UsageError(`unknown project "${name}"; declared projects: ${all.map((p) => p.name).join(", ")}`);
    }
    if (!project.verify) {
      throw new UsageError(`project ${name} declares no restore drill: add verify: { every, into, check } to it`);
    }
  }
  const projects = names.length ? names : all.filter((p) => p.verify && p.enabled).map((p) => p.name);
  if (projects.length === 0) {
    output.stdout("No project declares a restore drill (verify: { every, into, check }).\n");
    return ExitCode.ok;
  }
  const store = await openStore(options, loaded);
  const host = hostFor(loaded);
  const locks: ProjectLock[] = [];
  const clock = createClock();
  const sender = new OutboxSender(store, loaded, {
    now: () => clock.now(),
    warn: (line) => output.stderr(`warning: ${line}\n`),
  });
  let failed = 0;
  try {
    for (const name of projects) locks.push(acquireProjectLock(store.dir, name, { command: "verify", host }));
    // A project of pgbackrest() sources alone has no restic repository to refresh.
    const primaries = [...new Set(projects.map((name) => loaded.config.projects[name].repositories[0]))]
      .filter((name) => name !== undefined);
    await refreshRepositories(loaded, store, primaries, output);
    const ctx = {
      loaded,
      store,
      clock,
      host,
      privateDir: store.privateDir,
      notifications: sender,
      out: (line: string) => output.stdout(`${line}\n`),
    };
    for (const name of projects) {
      if (!await runDrill(name, ctx)) failed++;
    }
    await sender.drain();
    output.stdout(notificationLine(sender.report));
  } finally {
    await sender.drain();
    for (const lock of locks) lock.release();
    await store.close();
  }
  if (failed > 0) throw new ActionsFailedError(failed, projects.length, 0);
  return ExitCode.ok;
}
