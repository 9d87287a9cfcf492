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
import { type GlobalOptions, hostFor, load, openStore, type Output } from "./context.ts";
import { refreshRepositories } from "./snapshots.ts";

export const description = "Run restore drills now: restore the latest snapshot into the scratch database and check it";

export function define(program: Command, output: Output, done: (code: number) => void): void {
  program.command("verify").description(description)
    .argument("[projects...]", "projects to drill (default: every project with verify)")
    .action(async (projects: string[], _options, command: Command) =>
      done(await run(projects, command.optsWithGlobals<GlobalOptions>(), output))
    );
}

export async function run(names: string[], options: GlobalOptions, output: Output): Promise<number> {
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
    const primaries = [...new Set(projects.map((name) => loaded.config.projects[name].repositories[0]))];
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
