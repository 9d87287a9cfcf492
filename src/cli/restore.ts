/**
 * `backupctl restore PROJECT`: one snapshot (latest by default) of a source, to a folder (`--to`), straight into a
 * database (`--into-database`), or as the commands of a manual restore (`--print-commands`, also printed before a
 * restore when combined); a pgbackrest() source to a point in time into a new cluster (`--to-time`, `--into-cluster`:
 * cli/restore-pitr.ts). Each restore is audited as a `restore` stage.
 */
import type { Command } from "commander";
import { repositoryFor } from "../apply/context.ts";
import { formatBytes } from "../format/bytes.ts";
import { type Clock, createClock } from "../clock.ts";
import type { NamedSource, NormalizedProject } from "../config/normalize.ts";
import { ExitCode, PromptStopped, StoppedError, UsageError } from "../errors.ts";
import { ask } from "./prompt.ts";
import { handleStopSignals, stopRequested } from "../runtime/shutdown.ts";
import { humanDuration } from "../format/time.ts";
import {
  folderConflicts,
  locate,
  type Located,
  type RestoreContext,
  restoreToFolder,
  sourcesOf,
} from "../restore/restore.ts";
import { openDumpStream } from "../restore/stream.ts";
import { importLater } from "../runtime/later.ts";
import { snapshotPaths } from "../restore/files.ts";
import {
  checkSelection,
  describeSelection,
  isSelective,
  type PostgresSelection,
  restorePostgres,
  selectionArgs,
} from "../restore/postgres-selection.ts";
import { manualCommands } from "../restore/manual-commands.ts";
import { removeDeadPrivateFolders } from "../apply/recovery.ts";
import { type DatabaseTarget, existingTables, parseTargetUrl, restoreSink, sameDatabase } from "../restore/targets.ts";
import { runStage, type StageContext } from "../apply/stage.ts";
import {
  declaredProject,
  fromInvocationDir,
  type GlobalOptions,
  load,
  openStore,
  type Output,
  parseNow,
} from "./context.ts";
import { collect } from "./context.ts";
import { refreshRepositories } from "../apply/inventory.ts";

export const description = "Restore a snapshot: to a folder, straight into a database, or as manual commands";

interface Options extends GlobalOptions {
  snapshot: string;
  source?: string;
  repository?: string;
  to?: string;
  intoDatabase?: boolean;
  targetDb?: string;
  printCommands?: boolean;
  force?: boolean;
  overwrite?: boolean;
  allowIncomplete?: boolean;
  refresh?: boolean;
  now?: string;
  path?: string[];
  table?: string[];
  schema?: string[];
  jobs?: string;
  clean?: boolean;
  yes?: boolean;
  toTime?: string;
  intoCluster?: string;
  port?: string;
}

export function define(program: Command, output: Output, done: (code: number) => void): void {
  program.command("restore").description(description)
    .argument("<project>", "the project whose snapshot to restore")
    .option("--snapshot <id>", 'a snapshot id (or a prefix of at least 4 characters), or "latest"', "latest")
    .option("--source <name>", "the source to restore (default: every source with --to; required when ambiguous)")
    .option("--repository <name>", "restore from this repository (default: the project's first)")
    .option("--to <dir>", "write dumps as files (decrypted) and restore files sources under this folder")
    .option(
      "--path <path>",
      "with --to, restore only this path of a files snapshot (repeatable): absolute as in the snapshot, or relative " +
        "to its folder",
      collect,
    )
    .option("--into-database", "stream the dump into a database: --target-db, else the project's verify.into")
    .option(
      "--table <name>",
      "with --into-database, restore only this table of a PostgreSQL dump (repeatable)",
      collect,
    )
    .option(
      "--schema <name>",
      "with --into-database, restore only this schema of a PostgreSQL dump (repeatable)",
      collect,
    )
    .option(
      "--jobs <n>",
      "with --into-database, run pg_restore with N parallel jobs: the dump is written to a private file of the state " +
        "folder first",
    )
    .option(
      "--clean",
      "with --into-database, drop the PostgreSQL dump's objects in the target before restoring them: restores into a " +
        "database that holds them, after you type its name (or --yes)",
    )
    .option("--yes", "confirm --clean without being asked (needed without a terminal)")
    .option(
      "--target-db <url>",
      "postgresql://USER@HOST:PORT/DB, mysql://USER@HOST:PORT/DB or sqlite:PATH (with --print-commands: where the " +
        "printed commands restore; default: the source's own database)",
    )
    .option(
      "--print-commands",
      "print the commands of a manual restore, secrets read from where the config keeps them (alone, or before the " +
        "restore)",
    )
    .option(
      "--force",
      "restore into a target that holds data: an existing file, a non-empty or symlinked --to folder, a database " +
        "with tables, the project's own source database",
    )
    .option(
      "--overwrite",
      "restore into a --to folder that is not empty, or a database with tables (never the project's own source " +
        "database: that takes --force)",
    )
    .option(
      "--allow-incomplete",
      "restore the snapshot named by --snapshot even when backupctl does not know it to be complete (a run that " +
        "failed, died or is still going made it)",
    )
    .option(
      "--to-time <time>",
      'point-in-time restore of a pgbackrest() source: a time with its zone ("2026-12-01T10:00:00+01:00") or ' +
        '"latest" (the end of the archive); needs --into-cluster',
    )
    .option(
      "--into-cluster <dir>",
      "with --to-time, the NEW data directory to restore into (missing or empty; never the live cluster's), started " +
        "on a loopback port for inspection",
    )
    .option(
      "--port <n>",
      "with --into-cluster, the loopback port the restored cluster listens on (default: a free one)",
    )
    .option("--refresh", "reload the repository's snapshot list from restic first")
    .option("--now <iso>", "record the audit as if the clock read this time")
    .action(async (project: string, _options, command: Command) =>
      done(await run(project, command.optsWithGlobals<Options>(), output))
    );
}

export async function run(projectName: string, options: Options, output: Output): Promise<number> {
  if (options.toTime !== undefined || options.intoCluster !== undefined || options.port !== undefined) {
    // A pgbackrest() source's point-in-time restore: its own module (cli/restore-pitr.ts), loaded only then.
    const { runPitrRestore } = await importLater<typeof import("./restore-pitr.ts")>(
      new URL("./restore-pitr.ts", import.meta.url),
    );
    return await runPitrRestore(projectName, options, output);
  }
  const targets = [options.to !== undefined, Boolean(options.intoDatabase)].filter(Boolean).length;
  if (targets > 1) throw new UsageError("choose one target: --to DIR or --into-database");
  if (targets === 0 && !options.printCommands) {
    throw new UsageError("say where to restore: --to DIR, --into-database [--target-db URL], or --print-commands");
  }
  if (options.targetDb && !options.intoDatabase && !options.printCommands) {
    throw new UsageError("--target-db goes with --into-database or --print-commands");
  }
  const selection: PostgresSelection = {
    tables: options.table ?? [],
    schemas: options.schema ?? [],
    clean: Boolean(options.clean),
    jobs: parseJobs(options.jobs),
  };
  if (isSelective(selection) && !options.intoDatabase && !options.printCommands) {
    throw new UsageError(
      "--table, --schema, --jobs and --clean restore into a database: add --into-database (or --print-commands)",
    );
  }
  const clock = createClock(parseNow(options.now));
  // SIGINT/SIGTERM stop restic and the database client, and the restore unwinds: its private folders (a --jobs
  // dump, a files restore's staging folder) are removed and the stage is recorded interrupted (exit 130/143).
  handleStopSignals();
  const loaded = await load(options);
  const project = declaredProject(loaded, projectName);
  const repository = options.repository ?? project.repositories[0];
  if (!project.repositories.includes(repository)) {
    throw new UsageError(
      `project ${projectName} does not use repository "${repository}"; its repositories: ${
        project.repositories.join(", ")
      }`,
    );
  }
  const store = await openStore(options, loaded);
  try {
    const ctx: RestoreContext = {
      loaded,
      store,
      privateDir: store.privateDir,
      repositoryFor: (name) => repositoryFor({ loaded, store }, name),
      allowIncomplete: Boolean(options.allowIncomplete),
    };
    removeDeadPrivateFolders(store, "restore", "fifo");
    if (options.refresh) await refreshRepositories(loaded, store, [repository], output);
    const sources = sourcesOf(project, options.source);
    const paths = options.path ?? [];
    if (paths.length > 0 && (options.to === undefined || sources.length !== 1 || sources[0].type !== "files")) {
      throw new UsageError(
        "--path restores part of one files source into a folder: add --to DIR and --source naming a files source" +
          `${sources.length === 1 ? ` (${sources[0].name} is a ${sources[0].type} source)` : ""}`,
      );
    }
    if (options.intoDatabase) {
      const databases = sources.filter((s) => s.type === "postgres" || s.type === "mysql" || s.type === "sqlite");
      if (databases.length !== 1) {
        throw new UsageError(
          databases.length === 0
            ? `project ${projectName} has no database source to restore into a database${
              options.source ? ` (${options.source} is a ${sources[0].type} source)` : ""
            }`
            : `project ${projectName} has several database sources: choose one with --source (${
              databases.map((s) => s.name).join(", ")
            })`,
        );
      }
      return await intoDatabase(project, databases[0], repository, { ...options, selection }, ctx, clock, output);
    }
    const printTarget = options.targetDb ? targetFromUrl(options.targetDb) : undefined;
    const chosen: Located[] = [];
    for (const source of sources) chosen.push(await locate(ctx, project, source, repository, options.snapshot));
    // Resolved before anything is written: a path that is not in the snapshot's folders is refused at once.
    const wanted = paths.length > 0 ? snapshotPaths(chosen[0], paths) : [];
    const dir = options.to === undefined ? undefined : fromInvocationDir(options.to);
    // Every source's target is checked before the first is written: a refusal leaves the folder as it was.
    if (dir !== undefined && !options.force && !options.overwrite) {
      const conflicts = folderConflicts(chosen, dir);
      if (conflicts.length > 0) {
        throw new UsageError(
          `nothing restored: ${
            conflicts.join("; ")
          }. Restore into a new or empty folder, or add --overwrite to write ` +
            "there anyway",
        );
      }
    }
    for (const located of chosen) {
      const source = located.source;
      if (options.printCommands) {
        output.stdout(`# ${projectName}/${source.name}, snapshot ${located.snapshot.short_id} in ${repository}\n`);
        const chosen = { include: wanted, pgRestore: selectionArgs(selection), jobs: selection.jobs };
        output.stdout(`${printed(located, ctx, printTarget, chosen).join("\n")}\n`);
      }
      if (dir === undefined) continue;
      const done = await audited(
        { store, clock },
        located,
        "to a folder",
        async () => ({
          ...await restoreToFolder(located, dir, ctx, options.force || options.overwrite, wanted),
          note: wanted.length > 0 ? `paths: ${wanted.join(", ")}` : undefined,
        }),
        output,
      );
      const size = done.bytes === undefined ? "" : `, ${formatBytes(done.bytes)}`;
      output.stdout(
        `restored ${projectName}/${source.name} (snapshot ${located.snapshot.short_id} of ${located.snapshot.time}` +
          `${size}) from ${repository} to ${done.path}${wanted.length > 0 ? `: ${wanted.join(", ")}` : ""}\n`,
      );
    }
    return ExitCode.ok;
  } finally {
    await store.close();
  }
}

async function intoDatabase(
  project: NormalizedProject,
  source: NamedSource,
  repository: string,
  options: Options & { selection: PostgresSelection },
  ctx: RestoreContext,
  clock: Clock,
  output: Output,
): Promise<number> {
  const selection = options.selection;
  let target: DatabaseTarget;
  if (options.targetDb) target = targetFromUrl(options.targetDb);
  else if (project.verify?.into) target = project.verify.into;
  else {
    throw new UsageError(
      `--into-database needs a target: --target-db URL, or a scratch database in project ${project.name}'s verify.into`,
    );
  }
  if (!options.force && sameDatabase(target, source as DatabaseTarget, ctx.loaded.dir)) {
    throw new UsageError(
      `the target is ${project.name}'s own ${source.type} database (${describeTarget(target)}): restoring there ` +
        "overwrites production data. Restore into another database, or add --force if that is what you want",
    );
  }
  const located = await locate(ctx, project, source, repository, options.snapshot);
  checkSelection(located, selection);
  const context = { configDir: ctx.loaded.dir, privateDir: ctx.privateDir };
  const note = describeSelection(selection);
  // A whole dump's stream opens before the target is checked: restic starts (its key derivation takes most of a
  // small restore) while the check runs, and the sink starts only once the check passed. A stream that could not
  // open fails the audited restore below, as it did when it opened there.
  const opening = note === undefined
    ? (async () => await openDumpStream(located, { sink: restoreSink(target, located.format!, context) }, ctx))()
      .then((stream) => ({ stream }), (error: unknown) => ({ error }))
    : undefined;
  try {
    await checkTarget(target, source, located, selection, options, context);
  } catch (error) {
    const opened = await opening;
    if (opened && "stream" in opened) await opened.stream.abandon();
    throw error;
  }
  if (options.printCommands) {
    const chosen = { pgRestore: selectionArgs(selection), jobs: selection.jobs };
    output.stdout(`${printed(located, ctx, target, chosen).join("\n")}\n`);
  }
  const outcome = await audited({ store: ctx.store, clock }, located, "into a database", async () => {
    if (opening === undefined) return { ...await restorePostgres(located, target, selection, ctx), note };
    const opened = await opening;
    if ("error" in opened) throw opened.error;
    return await opened.stream.finish();
  }, output);
  output.stdout(
    `restored ${project.name}/${source.name} (snapshot ${located.snapshot.short_id} of ${located.snapshot.time}, ` +
      `${formatBytes(outcome.bytes)}) from ${repository} into ${describeTarget(target)} in ` +
      `${humanDuration(outcome.durationMs)}\n`,
  );
  return ExitCode.ok;
}

/**
 * Refuses a target that holds tables, before anything is written there: the dump would be mixed into them. A globals
 * dump creates roles, cluster-wide, so the target's tables say nothing of it; --clean is the word that the target holds
 * the dump's objects, and is confirmed instead; --force and --overwrite accept a target as it is.
 */
async function checkTarget(
  target: DatabaseTarget,
  source: NamedSource,
  located: Located,
  selection: PostgresSelection,
  options: Options,
  context: { configDir: string; privateDir: string },
): Promise<void> {
  if (selection.clean) return await confirmClean(target, Boolean(options.yes));
  if (options.force || options.overwrite || source.part === "globals") return;
  const tables = await existingTables(target, context);
  if (tables.length === 0) return;
  const count = tables.length === 1 ? "1 table" : `${tables.length} tables`;
  const shown = tables.length > 5 ? [...tables.slice(0, 5), `${tables.length - 5} more`] : tables;
  throw new UsageError(
    `nothing restored: ${describeTarget(target)} is not empty (${count}: ${shown.join(", ")}), and the dump ` +
      "would be mixed into what it holds. Restore into an empty database, " +
      `${located.format === "pg_custom" ? "add --clean to replace the dump's objects there, " : ""}or add ` +
      "--overwrite to restore into it anyway",
  );
}

/** --jobs N: a whole number from 1 to 64. */
function parseJobs(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const jobs = Number(text);
  if (!/^\d+$/.test(text) || jobs < 1 || jobs > 64) {
    throw new UsageError(`--jobs: expected a whole number of parallel pg_restore jobs from 1 to 64, got "${text}"`);
  }
  return jobs;
}

/**
 * --clean drops what the dump holds in the target before restoring it: confirmed by typing the database's name on a
 * terminal, or by --yes. Without a terminal and without --yes, refused (exit 64) before anything happens.
 */
async function confirmClean(target: DatabaseTarget, yes: boolean): Promise<void> {
  if (yes) return;
  const name = target.type === "sqlite" ? target.path : target.database;
  const what = `--clean drops the dump's objects in ${describeTarget(target)} before restoring them`;
  if (!process.stdin.isTTY || !process.stdout.isTTY) {
    throw new UsageError(
      `nothing restored: ${what}, and there is no terminal to confirm it on. Add --yes to confirm, or restore into a ` +
        "new database without --clean",
    );
  }
  const answer = await ask(`${what}. Type the database name (${name}) to go on: `);
  if (answer === undefined) throw new PromptStopped("nothing restored");
  if (answer !== name) throw new UsageError(`nothing restored: the answer was not the database name ${name}`);
}

function targetFromUrl(url: string): DatabaseTarget {
  const target = parseTargetUrl(url);
  // Like --to, a relative sqlite:PATH on the command line starts where backupctl was run, not at the config.
  return target.type === "sqlite" ? { ...target, path: fromInvocationDir(target.path) } : target;
}

function printed(
  located: Located,
  ctx: RestoreContext,
  target: DatabaseTarget | undefined,
  selection: { include?: string[]; pgRestore?: string[]; jobs?: number } = {},
): string[] {
  return manualCommands(located, ctx.repositoryFor(located.repository), ctx.loaded.dir, target, selection);
}

function describeTarget(target: DatabaseTarget): string {
  if (target.type === "sqlite") return `sqlite:${target.path}`;
  return `${target.type} database ${target.database}${target.host ? ` on ${target.host}` : ""}${
    target.port ? `:${target.port}` : ""
  }`;
}

/** Runs a restore as an audited `restore` stage, on the command's clock. */
async function audited<T extends { bytes?: number; note?: string }>(
  ctx: StageContext,
  located: Awaited<ReturnType<typeof locate>>,
  how: string,
  work: () => Promise<T>,
  output: Output,
): Promise<T> {
  const stage = {
    runId: null,
    type: "restore",
    project: located.project.name,
    source: located.source.name,
    repository: located.repository,
  } as const;
  const outcome = await runStage(ctx, stage, async () => {
    const value = await work();
    return { value, bytes: value.bytes, note: value.note };
  }, {
    snapshotId: located.snapshot.id,
    describe: (error) => `${how}: ${error instanceof Error ? error.message : String(error)}`,
  });
  if (outcome.ok) return outcome.value;
  const stopped = stopRequested();
  if (stopped) throw new StoppedError(stopped);
  output.stderr(`restore of ${located.project.name}/${located.source.name} failed\n`);
  throw outcome.cause;
}
