/**
 * `backupctl unlock [project] [--force]`: clears what interrupted runs leave locked. backupctl's own project locks
 * go when their holder is gone (a live one only with --force); then `restic unlock` removes the repository locks
 * restic itself judges stale, in every repository of the projects in scope. Each removal is audited.
 */
import { createInterface } from "node:readline/promises";
import type { Command } from "commander";
import { repositoryFor } from "../apply/executor.ts";
import { describeHolder, inspectLocks, type LockInfo, removeLock } from "../apply/lock.ts";
import { ExitCode, UsageError } from "../errors.ts";
import type { StateStore } from "../state/store.ts";
import { type GlobalOptions, hostFor, load, openStore, type Output, stateDirFor } from "./context.ts";

export const description = "Clear stale locks: backupctl's project locks whose holder is gone, and restic's";

interface Options extends GlobalOptions {
  force?: boolean;
}

export function define(program: Command, output: Output, done: (code: number) => void): void {
  program.command("unlock").description(description)
    .argument("[project]", "only this project (default: every declared project)")
    .option("--force", "also remove a live lock: asks on a terminal, removes it with a warning otherwise")
    .action(async (project: string | undefined, _options, command: Command) =>
      done(await run(project, command.optsWithGlobals<Options>(), output))
    );
}

export async function run(project: string | undefined, options: Options, output: Output): Promise<number> {
  const loaded = await load(options);
  const declared = Object.keys(loaded.config.projects);
  if (project !== undefined && !declared.includes(project)) {
    throw new UsageError(`unknown project "${project}"; declared projects: ${declared.join(", ")}`);
  }
  const scope = project === undefined ? declared : [project];
  const locks = inspectLocks(stateDirFor(options, loaded), project === undefined ? undefined : scope, hostFor(loaded));
  const store = await openStore(options, loaded);
  let kept = 0;
  let failed = 0;
  try {
    // Lock files of projects no longer declared are cleared too when no project is named.
    const undeclared = locks.map((lock) => lock.project).filter((name) => !scope.includes(name));
    for (const name of [...scope, ...undeclared]) {
      const lock = locks.find((l) => l.project === name);
      if (!lock) output.stdout(`${name} has no lock\n`);
      else if (!await clearLock(lock, Boolean(options.force), store, output)) kept++;
    }
    const repositories = [...new Set(scope.flatMap((name) => loaded.config.projects[name].repositories))];
    for (const name of repositories) {
      const started = new Date();
      try {
        const said = await repositoryFor({ loaded, store }, name).unlock();
        output.stdout(`restic unlock ${name}: ${said || "no stale locks"}\n`);
        // restic 0.14 says "successfully removed locks" whether or not there were any, so every run is audited.
        await audit(store, { project, repository: name }, started, {
          status: "succeeded",
          error: `restic: ${said || "no stale locks"}`,
        });
      } catch (error) {
        failed++;
        const message = (error as Error).message;
        output.stderr(`${message.startsWith(`repository ${name}`) ? "" : `repository ${name}: `}${message}\n`);
        await audit(store, { project, repository: name }, started, { status: "failed", error: message });
      }
    }
  } finally {
    await store.close();
  }
  if (failed > 0) return ExitCode.failed;
  return kept > 0 ? ExitCode.locked : ExitCode.ok;
}

/** Removes one project lock if its holder is gone, or on --force (confirmed on a terminal). False when kept. */
async function clearLock(lock: LockInfo, force: boolean, store: StateStore, output: Output): Promise<boolean> {
  const subject = describeLock(lock);
  if (lock.state === "stale") return await remove(lock, store, output, `removed ${subject}: that process is gone`);
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
    const prompt = createInterface({ input: process.stdin, output: process.stdout });
    try {
      const answer = await prompt.question(`Remove ${subject}? Only 'yes' will be accepted: `);
      if (answer.trim() !== "yes") {
        output.stderr(`kept ${subject}: the answer was not 'yes'\n`);
        return false;
      }
    } finally {
      prompt.close();
    }
  } else {
    output.stderr(
      `WARNING: removing ${subject} without asking (--force, no terminal); if a run of ${lock.project} is still ` +
        "working, another may now start beside it\n",
    );
  }
  return await remove(lock, store, output, `removed ${subject} (--force)`);
}

/** "the live lock of shop held by apply (pid 4242 on host db1, run …) since … (3m ago)", and so on per state. */
function describeLock(lock: LockInfo): string {
  if (!lock.holder) return `the unreadable lock file of ${lock.project}, ${lock.path} (${lock.problem})`;
  const kind = lock.state === "live" ? "live " : lock.state === "stale" ? "stale " : "";
  return `the ${kind}lock of ${lock.project} held by ${describeHolder(lock.holder)}`;
}

async function remove(lock: LockInfo, store: StateStore, output: Output, done: string): Promise<boolean> {
  const started = new Date();
  const stage = await store.startStage({
    runId: null,
    type: "unlock",
    project: lock.project,
    startedAt: started.toISOString(),
  });
  let removed: boolean;
  try {
    removed = removeLock(lock.path, lock.holder ?? lock.text);
  } catch (error) {
    await finish(store, stage, started, { status: "failed", error: (error as Error).message });
    throw error;
  }
  if (!removed) {
    const note = `the lock of ${lock.project} was released or taken over meanwhile; left as it is`;
    await finish(store, stage, started, { status: "skipped", error: note });
    output.stdout(`${note}\n`);
    return true;
  }
  // Like recover stages, a succeeded unlock keeps what it did in the error column: the audit names the holder.
  await finish(store, stage, started, { status: "succeeded", error: done });
  output.stdout(`${done}\n`);
  return true;
}

async function audit(
  store: StateStore,
  where: { project?: string; repository: string },
  started: Date,
  result: { status: "succeeded" | "failed"; error: string },
): Promise<void> {
  const stage = await store.startStage({ runId: null, type: "unlock", ...where, startedAt: started.toISOString() });
  await finish(store, stage, started, result);
}

async function finish(
  store: StateStore,
  stage: number,
  started: Date,
  result: { status: "succeeded" | "failed" | "skipped"; error?: string },
): Promise<void> {
  const finished = new Date();
  await store.finishStage(stage, {
    ...result,
    finishedAt: finished.toISOString(),
    durationMs: finished.getTime() - started.getTime(),
  });
}
