/**
 * `backupctl state push [URL]` and `backupctl state pull PATH`: move a whole state between the local SQLite file and
 * a PostgreSQL state (lineage, serial, the audit, the inventory, the outbox, held plans: every table). The copy is
 * one transaction on the target, verified by counting each table's rows before it commits; a target that already
 * holds a state is replaced only with --force.
 */
import { existsSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import type { Command } from "commander";
import { BackupctlError, UsageError } from "../errors.ts";
import { type PostgresState, type RowCounts, stateFileName, StateStore } from "../state/store.ts";
import {
  defaultStateSchema,
  fromInvocationDir,
  type GlobalOptions,
  load,
  type Output,
  postgresStateFor,
  stateDirFor,
  stateUrlArgument,
  stateUrlVariable,
} from "./context.ts";

export const description = "Move the state: push the local SQLite state into PostgreSQL, or pull it back";

interface Options extends GlobalOptions {
  force?: boolean;
  schema?: string;
}

/** A target that holds a state already, replaced only with --force (exit 1: nothing was changed). */
class TargetNotEmptyError extends BackupctlError {
  constructor(target: string, holds: string) {
    super(
      `${target} already holds a state (${holds}): nothing was copied. Pull or push into an empty one, or add --force ` +
        "to replace everything it holds",
    );
    this.name = "TargetNotEmptyError";
  }
}

export function define(program: Command, output: Output, done: (code: number) => void): void {
  const state = program.command("state").description(description);
  state.command("push").description("Copy this config's local SQLite state into a PostgreSQL state")
    .argument(
      "[url]",
      `the PostgreSQL database, without password (default: --state-url, ${stateUrlVariable}, the config's state.url)`,
    )
    .option(
      "--schema <name>",
      `the schema of the target state (default: the config's state.schema, else ${defaultStateSchema})`,
    )
    .option("--force", "replace the state the target already holds")
    .action(async (url: string | undefined, _options, command: Command) =>
      done(await push(url, command.optsWithGlobals<Options>(), output))
    );
  state.command("pull").description("Copy the configured PostgreSQL state into a local SQLite state")
    .argument("<path>", `a state folder, or the ${stateFileName} file in one (created when missing)`)
    .option("--force", "replace the state the target already holds")
    .action(async (path: string, _options, command: Command) =>
      done(await pull(path, command.optsWithGlobals<Options>(), output))
    );
}

export async function push(url: string | undefined, options: Options, output: Output): Promise<number> {
  const loaded = await load(options);
  const configured = postgresStateFor(options, loaded);
  const schema = options.schema ?? configured?.schema ?? defaultStateSchema;
  const target: PostgresState | undefined = url !== undefined
    ? { url: stateUrlArgument(url, "state push URL"), schema }
    : configured && { ...configured, schema };
  if (!target) {
    throw new UsageError(
      `state push: no PostgreSQL state to push to: give its URL (without password), or set ${stateUrlVariable} or ` +
        "the config's state.url",
    );
  }
  const dir = stateDirFor(options, loaded);
  if (!existsSync(join(dir, stateFileName))) {
    throw new UsageError(
      `state push: there is no local state to push: ${join(dir, stateFileName)} does not exist (point --state-dir or ` +
        "BACKUPCTL_STATE_DIR at the folder that holds it)",
    );
  }
  await copyBetween(() => StateStore.open(dir), () => StateStore.open(dir, { postgres: target }), options, output);
  return 0;
}

export async function pull(path: string, options: Options, output: Output): Promise<number> {
  const loaded = await load(options);
  const source = postgresStateFor(options, loaded);
  if (!source) {
    throw new UsageError(
      `state pull: no PostgreSQL state to pull from: set --state-url, ${stateUrlVariable} or the config's state.url`,
    );
  }
  const absolute = fromInvocationDir(path);
  const targetDir = basename(absolute) === stateFileName ? dirname(absolute) : absolute;
  await copyBetween(
    () => StateStore.openPostgresReadOnly(stateDirFor(options, loaded), source),
    () => StateStore.open(targetDir),
    options,
    output,
  );
  return 0;
}

/** Opens the source, then the target, copies, and closes both whatever happens. */
async function copyBetween(
  openFrom: () => Promise<StateStore>,
  openTo: () => Promise<StateStore>,
  options: Options,
  output: Output,
): Promise<void> {
  const from = await openFrom();
  try {
    const to = await openTo();
    try {
      await copy(from, to, options, output);
    } finally {
      await to.close();
    }
  } finally {
    await from.close();
  }
}

async function copy(from: StateStore, to: StateStore, options: Options, output: Output): Promise<void> {
  const holds = await to.contents();
  if (holds !== undefined && !options.force) throw new TargetNotEmptyError(to.location, holds);
  const counts = await from.copyInto(to);
  output.stdout(`copied the state ${from.location} into ${to.location}${holds ? ` (replacing ${holds})` : ""}\n`);
  output.stdout(formatCounts(counts));
  output.stdout("verified: every table of the target holds as many rows as the source's\n");
}

function formatCounts(counts: RowCounts): string {
  const width = Math.max(...Object.keys(counts).map((table) => table.length));
  return Object.entries(counts).map(([table, n]) => `  ${table.padEnd(width)}  ${n}\n`).join("");
}
