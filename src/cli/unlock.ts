/**
 * `backupctl unlock [project] [--force]`: clears what interrupted runs leave locked. backupctl's own project locks
 * go when their holder is gone (a live one only with --force); then `restic unlock` removes the repository locks
 * restic itself judges stale, in every repository of the projects in scope. Each removal is audited.
 */
import { ask } from "./prompt.ts";
import type { Command } from "commander";
import { repositoryFor } from "../apply/context.ts";
import { describeHolder, inspectLocks, type LockInfo, removeLock } from "../apply/lock.ts";
import { runStage, SkippedStage, type StageContext } from "../apply/stage.ts";
import { createClock } from "../clock.ts";
import { ExitCode, UsageError } from "../errors.ts";
import { type GlobalOptions, hostFor, load, openStore, type Output, parseNow, stateDirFor } from "./context.ts";

export const description = "Clear stale locks: backupctl's project locks whose holder is gone, and restic's";

interface Options extends GlobalOptions {
  force?: boolean;
  now?: string;
}

export function define(program: Command, output: Output, done: (code: number) => void): void {
  program.command("unlock").description(description)
    .argument("[project]", "only this project (default: every declared project)")
    .option("--force", "also remove a live lock: asks on a terminal, removes it with a warning otherwise")
    .option("--now <iso>", "record the audit as if the clock read this time")
    .action(async (project: string | undefined, _options, command: Command) =>
      done(await run(project, command.optsWithGlobals<Options>(), output))
    );
}

export async function run(project: string | undefined, options: Options, output: Output): Promise<number> {
  const clock = createClock(parseNow(options.now));
  const loaded = await load(options);
  const declared = Object.keys(loaded.config.projects);
  if (project !== undefined && !declared.includes(project)) {
    throw new UsageError(`unknown project "${project}"; declared projects: ${declared.join(", ")}`);
  }
  const scope = project === undefined ? declared : [project];
  const locks = inspectLocks(stateDirFor(options, loaded), project === undefined ? undefined : scope, hostFor(loaded));
  const store = await openStore(options, loaded);
  const ctx: StageContext = { store, clock };
  let kept = 0;
  let failed = 0;
  try {
    // Lock files of projects no longer declared are cleared too when no project is named.
    const undeclared = locks.map((lock) => lock.project).filter((name) => !scope.includes(name));
    for (const name of [...scope, ...undeclared]) {
      const lock = locks.find((l) => l.project === name);
      if (!lock) output.stdout(`${name} has no lock\n`);
      else if (!await clearLock(lock, Boolean(options.force), ctx, output)) kept++;
    }
    const repositories = [...new Set(scope.flatMap((name) => loaded.config.projects[name].repositories))];
    for (const name of repositories) {
      // restic 0.14 says "successfully removed locks" whether or not there were any, so every run is audited.
      const outcome = await runStage(ctx, { runId: null, type: "unlock", project, repository: name }, async () => {
        const said = (await repositoryFor({ loaded, store }, name).unlock()) || "no stale locks";
        return { value: said, note: `restic: ${said}` };
      }, { describe: messageOf });
      if (outcome.ok) output.stdout(`restic unlock ${name}: ${outcome.value}\n`);
      else {
        failed++;
        const message = outcome.error;
        output.stderr(`${message.startsWith(`repository ${name}`) ? "" : `repository ${name}: `}${message}\n`);
      }
    }
  } finally {
    await store.close();
  }
  if (failed > 0) return ExitCode.failed;
  return kept > 0 ? ExitCode.locked : ExitCode.ok;
}

/** Removes one project lock if its holder is gone, or on --force (confirmed on a terminal). False when kept. */
async function clearLock(lock: LockInfo, force: boolean, ctx: StageContext, output: Output): Promise<boolean> {
  const subject = describeLock(lock);
  if (lock.state === "stale") return await remove(lock, ctx, output, `removed ${subject}: that process is gone`);
  const forceIt = `\`backupctl unlock ${lock.project} --force\``;
  const why = lock.state === "live"
    ? `that process is still running: wait for it to finish, or stop it first (or run ${forceIt} if you are sure ` +
      "it no longer works on the project)"
    : lock.state === "foreign-host"
    ? `that is another host, so whether the process still runs cannot be checked here; if it is gone, run ${forceIt}`
    : `if no backupctl works on ${lock.project} now, run ${forceIt}`;
  if (!force) {
    output.stderr(`kept ${subject}: ${why}\n`);
    return false;
  }
  if (process.stdin.isTTY && process.stdout.isTTY) {
    const answer = await ask(`Remove ${subject}? Only 'yes' will be accepted: `);
    if (answer !== "yes") {
      output.stderr(
        `kept ${subject}: ${answer === undefined ? "stopped at the prompt" : "the answer was not 'yes'"}\n`,
      );
      return false;
    }
  } else {
    output.stderr(
      `WARNING: removing ${subject} without asking (--force, no terminal); if a run of ${lock.project} is still ` +
        "working, another may now start beside it\n",
    );
  }
  return await remove(lock, ctx, output, `removed ${subject} (--force)`);
}

/** "the live lock of shop held by apply (pid 4242 on host db1, run …) since … (3m ago)", and so on per state. */
function describeLock(lock: LockInfo): string {
  if (!lock.holder) return `the unreadable lock file of ${lock.project}, ${lock.path} (${lock.problem})`;
  const kind = lock.state === "live" ? "live " : lock.state === "stale" ? "stale " : "";
  return `the ${kind}lock of ${lock.project} held by ${describeHolder(lock.holder)}`;
}

/** Removes a lock file as an audited `unlock` stage: its note names the holder; a lock gone meanwhile is skipped. */
async function remove(lock: LockInfo, ctx: StageContext, output: Output, done: string): Promise<boolean> {
  const outcome = await runStage(ctx, { runId: null, type: "unlock", project: lock.project }, () => {
    if (!removeLock(lock.path, lock.holder ?? lock.text)) {
      throw new SkippedStage(`the lock of ${lock.project} was released or taken over meanwhile; left as it is`);
    }
    return Promise.resolve({ value: done, note: done });
  }, { describe: messageOf });
  if (!outcome.ok && !(outcome.cause instanceof SkippedStage)) throw outcome.cause;
  output.stdout(`${outcome.ok ? done : outcome.error}\n`);
  return true;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
