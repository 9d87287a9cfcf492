/**
 * A selective or parallel PostgreSQL restore: only some tables (`--table`, pg_restore `--table`) or schemas
 * (`--schema`, pg_restore `--schema`, the schema created first when missing: pg_restore does not), `--clean`
 * (pg_restore `--clean --if-exists`: the dump's objects dropped before they are restored), and `--jobs N`
 * (pg_restore `--jobs`). pg_restore reads a dump in parallel only from a
 * seekable file, not from a pipe: with `--jobs` the decrypted dump is first written to a 0600 file in a private
 * folder (0700) of the state folder's tmp, `secret-<pid>-restore-XXXXXX`, then pg_restore reads it. That is the
 * trade-off: the dump's plaintext sits on the state folder's disk for the restore's length, and needs its size in
 * free space. The folder is removed on every way out — success, failure, SIGINT/SIGTERM (and at exit at the
 * latest, exec/private-file.ts); a `kill -9` leaves it, and the next restore (or apply's startup recovery) deletes
 * the folders of processes that are gone.
 */
import { rmSync } from "node:fs";
import { join } from "node:path";
import { ExecError, UsageError } from "../errors.ts";
import { transientOutput } from "../exec/failure.ts";
import { createPrivateFolder } from "../exec/private-file.ts";
import { run } from "../exec/run.ts";
import { type Located, type RestoreContext, restoredName } from "./restore.ts";
import { streamDump, type StreamOutcome } from "./stream.ts";
import type { SourceContext } from "../sources/types.ts";
import { createSchemas, type DatabaseTarget, existingTables, restoreSink } from "./targets.ts";

/** What of a PostgreSQL dump to restore, and how. */
export interface PostgresSelection {
  tables: string[];
  schemas: string[];
  /** Drop the dump's objects in the target before restoring them (into an existing database). */
  clean: boolean;
  /** Parallel pg_restore jobs; undefined or 1: one stream, no file. */
  jobs?: number;
}

/** The kind of the private folders a `--jobs` restore writes its dump into. */
const folderKind = "restore";

/** Whether the selection asks for anything beyond a plain restore of the whole dump. */
export function isSelective(selection: PostgresSelection): boolean {
  return selection.tables.length > 0 || selection.schemas.length > 0 || selection.clean ||
    (selection.jobs ?? 1) > 1;
}

/** pg_restore's options for the selection (`--jobs` apart: it goes with a file). */
export function selectionArgs(selection: PostgresSelection): string[] {
  return [
    ...selection.schemas.map((schema) => `--schema=${schema}`),
    ...selection.tables.map((table) => `--table=${table}`),
    ...(selection.clean ? ["--clean", "--if-exists"] : []),
  ];
}

/** The audit's note of what was restored: "tables: a, b; schemas: s; jobs: 4; clean"; undefined for a plain one. */
export function describeSelection(selection: PostgresSelection): string | undefined {
  const parts = [
    selection.tables.length > 0 ? `tables: ${selection.tables.join(", ")}` : "",
    selection.schemas.length > 0 ? `schemas: ${selection.schemas.join(", ")}` : "",
    (selection.jobs ?? 1) > 1 ? `jobs: ${selection.jobs}` : "",
    selection.clean ? "clean" : "",
  ].filter(Boolean);
  return parts.length > 0 ? parts.join("; ") : undefined;
}

/**
 * Refuses a selection the dump cannot honour: tables, schemas, --clean and --jobs need pg_restore, so a PostgreSQL
 * custom-format dump (not a plain SQL one, nor another database's).
 */
export function checkSelection(located: Located, selection: PostgresSelection): void {
  if (!isSelective(selection) || located.format === "pg_custom") return;
  throw new UsageError(
    `--table, --schema, --clean and --jobs restore through pg_restore, and ${located.project.name}/` +
      `${located.source.name}'s dump (${restoredName(located)}) is not a PostgreSQL custom-format dump: restore ` +
      "it whole",
  );
}

/**
 * Restores a custom-format dump into `target` through pg_restore: streamed (as restore --into-database does) with
 * the selection's options, or, with jobs > 1, written to a private file first and read from there by
 * `pg_restore --jobs`.
 */
export async function restorePostgres(
  located: Located,
  target: DatabaseTarget,
  selection: PostgresSelection,
  ctx: RestoreContext,
): Promise<StreamOutcome> {
  const context = { configDir: ctx.loaded.dir, privateDir: ctx.privateDir };
  const args = selectionArgs(selection);
  const jobs = selection.jobs ?? 1;
  if (target.type === "postgres") await createSchemas(target, selection.schemas, context);
  if (jobs <= 1) {
    // Some tables or schemas: pg_restore stops reading once it restored them (see streamDump).
    const partial = selection.tables.length > 0 || selection.schemas.length > 0;
    const outcome = await streamDump(
      located,
      { sink: restoreSink(target, "pg_custom", context, args) },
      ctx,
      undefined,
      partial,
    );
    await checkTablesRestored(target, selection, context);
    return outcome;
  }
  const started = Date.now();
  const folder = createPrivateFolder(ctx.privateDir, folderKind);
  const file = join(folder, restoredName(located));
  const sink = restoreSink(target, "pg_custom", context, [...args, `--jobs=${jobs}`]);
  try {
    const { bytes } = await streamDump(located, { file }, ctx);
    const result = await run([...sink.argv, file], { env: sink.env });
    if (result.code !== 0) {
      throw new ExecError(
        "pg_restore",
        result.code,
        result.stderrTail,
        `pg_restore --jobs=${jobs} failed (exit ${result.code ?? result.signal})` +
          (result.stderrTail ? `:\n    ${result.stderrTail.replaceAll("\n", "\n    ")}` : ""),
        transientOutput(result.stderrTail),
      );
    }
    await checkTablesRestored(target, selection, context);
    return { bytes, durationMs: Date.now() - started };
  } finally {
    sink.cleanup();
    rmSync(folder, { recursive: true, force: true });
  }
}

/**
 * pg_restore `--table=T` of a table the dump does not hold (a typo, a schema-qualified name, which --table does not
 * take) restores nothing and exits 0: each table asked for must now be in the target (in one of the --schema ones,
 * when given), else the restore fails naming it. Without --table, each --schema must hold a table now.
 */
async function checkTablesRestored(
  target: DatabaseTarget,
  selection: PostgresSelection,
  context: SourceContext,
): Promise<void> {
  if (selection.tables.length === 0 && selection.schemas.length === 0) return;
  const present = await existingTables(target, context);
  if (selection.tables.length === 0) {
    // --schema S of a schema the dump does not hold: backupctl created S empty, pg_restore restored nothing into it.
    const empty = selection.schemas.filter((schema) => !present.some((name) => name.startsWith(`${schema}.`)));
    if (empty.length === 0) return;
    throw new UsageError(
      `the dump holds no table in schema ${empty.join(", ")}, so pg_restore restored nothing for it (the schema was ` +
        "created empty in the target; drop it). `pg_restore --list` of the dump, or `backupctl snapshots ls P " +
        "--source S --list`, shows what it holds",
    );
  }
  const missing = selection.tables.filter((table) =>
    !present.some((name) =>
      selection.schemas.length > 0
        ? selection.schemas.some((schema) => name === `${schema}.${table}`)
        : name.endsWith(`.${table}`)
    )
  );
  if (missing.length === 0) return;
  throw new UsageError(
    `the dump holds no table ${missing.join(", ")}${
      selection.schemas.length > 0 ? ` in schema ${selection.schemas.join(", ")}` : ""
    }, so pg_restore restored nothing for it. --table takes a table's name without its schema (add --schema S for ` +
      "that); `pg_restore --list` of the dump shows what it holds",
  );
}
