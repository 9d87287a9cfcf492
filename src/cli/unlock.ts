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
      if (!lock) output.stdout(`${name}: no lock\n`);
      else if (!await clearLock(lock, Boolean(options.force), store, output)) kept++;
    }
    const repositories = [...new Set(scope.flatMap((name) => loaded.config.projects[name].repositories))];
    for (const name of repositories) {
      const started = new Date();
      try {
        const said = await repositoryFor({ loaded, store }, name).unlock();
        output.stdout(`repository ${name}: ${said || "no stale restic locks"}\n`);
        if (/removed [1-9]/.test(said)) {
          await audit(store, { project, repository: name }, started, { status: "succeeded", error: `restic: ${said}` });
        }
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
  const held = heldBy(lock);
  if (lock.state === "stale") {
    return await remove(lock, store, output, `removed the stale lock ${held}: that process is gone`);
  }
  const why = lock.state === "live"
    ? "that process is still running: wait for it to finish, or stop it first"
    : lock.state === "foreign-host"
    ? "that is another host, so whether the process still runs cannot be checked here; if it is gone, " +
      `run \`backupctl unlock ${lock.project} --force\``
    : `if no backupctl runs ${lock.project} now, run \`backupctl unlock ${lock.project} --force\``;
  const kind = lock.state === "live" ? "live " : "";
  if (!force) {
    output.stderr(`${lock.project}: not removed: the lock is ${held}; ${why}\n`);
    return false;
  }
  if (process.stdin.isTTY && process.stdout.isTTY) {
    const prompt = createInterface({ input: process.stdin, output: process.stdout });
    try {
      const question = `Remove the ${kind}lock of ${lock.project} ${held}? Only 'yes' will be accepted: `;
      if ((await prompt.question(question)).trim() !== "yes") {
        output.stderr(`${lock.project}: kept the lock ${held}\n`);
        return false;
      }
    } finally {
      prompt.close();
    }
  } else {
    output.stderr(
      `WARNING: removing the ${kind}lock of ${lock.project} ${held} without asking (--force, no terminal); if that ` +
        `process is still running, two runs may now work on ${lock.project} at once\n`,
    );
  }
  return await remove(lock, store, output, `removed the ${kind}lock ${held} (--force)`);
}

/** "held by apply (pid 4242 on host db1, run …) since … (3m ago)", or what is wrong with an unreadable file. */
function heldBy(lock: LockInfo): string {
  return lock.holder ? `held by ${describeHolder(lock.holder)}` : `file ${lock.path} (unreadable: ${lock.problem})`;
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
    const note = "the lock was released or taken over meanwhile; left as it is";
    await finish(store, stage, started, { status: "skipped", error: note });
    output.stdout(`${lock.project}: ${note}\n`);
    return true;
  }
  // Like recover stages, a succeeded unlock keeps what it did in the error column: the audit names the holder.
  await finish(store, stage, started, { status: "succeeded", error: done });
  output.stdout(`${lock.project}: ${done}\n`);
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
