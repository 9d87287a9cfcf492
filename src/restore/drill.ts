/**
 * Restore drills (`verify: { every, into?, source?, sample?, check?, expect? }`): the latest complete snapshot of the
 * drilled source is restored and checked. A database source is restored into the scratch database named by `into`
 * (dropped and created first), then the check query runs against it; a files source has a sample of its files
 * restored and compared with the live ones, a command source its dump restored and compared with what the backup
 * recorded (drill-samples.ts). The measured restore time, the restored size and the result go to the audit as a
 * `verify` stage.
 */
import { serverDatabaseSource } from "../config/discovered.ts";
import type { NamedSource, NormalizedProject } from "../config/normalize.ts";
import { SourceError } from "../errors.ts";
import { commandDrill, type DumpCheck, type FilesCheck, filesDrill } from "./drill-samples.ts";
import { locate, type RestoreContext } from "./restore.ts";
import { streamDump } from "./stream.ts";
import { checkQuery, recreate, restoreSink, sameDatabase } from "./targets.ts";

export interface DrillResult {
  source: string;
  /** What was drilled: a database into a scratch database, a sample of files, or a command's dump. */
  kind: "database" | "files" | "command";
  repository: string;
  /** The snapshot restored (full id). */
  snapshot: string;
  /** Bytes of the restored dump, or of the restored sample of files. */
  bytes: number;
  /** How long the restore itself took (restic dump → decryption → database; restic restore of the sample). */
  restoreMs: number;
  /** What the check query counted, when there is one. */
  rows?: number;
  /** A files drill's comparison with the live files. */
  files?: FilesCheck;
  /** A command drill's comparison with the backup's record. */
  dump?: DumpCheck;
}

const databaseTypes = new Set(["postgres", "mysql", "sqlite"]);

/**
 * The source a drill restores: `verify.source` when named (a database of a `databases: "all"` server by its source
 * name); else, with `into`, the project's first database source of the scratch target's kind; else its first files
 * source, else its first command source.
 */
export function drillSource(project: NormalizedProject): NamedSource {
  const spec = project.verify!;
  const listed = () => project.sources.map((s) => `${s.name} (${s.type})`).join(", ");
  if (spec.source !== undefined) {
    // A database of a `databases: "all"` server is named by its source name, listed on the server or not.
    const named = project.sources.find((s) => s.name === spec.source) ?? serverDatabaseSource(project, spec.source);
    if (!named) {
      throw new SourceError(`verify.source: project ${project.name} has no source "${spec.source}" (${listed()})`);
    }
    return named;
  }
  const into = spec.into;
  if (into) {
    const source = project.sources.find((s) => s.type === into.type && s.part !== "globals");
    if (!source) {
      throw new SourceError(
        `verify.into is a ${into.type} database but project ${project.name} has no ${into.type} source to restore`,
      );
    }
    return source;
  }
  const source = project.sources.find((s) => s.type === "files") ??
    project.sources.find((s) => s.type === "command");
  if (!source) {
    throw new SourceError(
      `project ${project.name} has no files or command source to drill without verify.into (${listed()}): name a ` +
        "scratch database in verify.into",
    );
  }
  return source;
}

export async function drill(project: NormalizedProject, ctx: RestoreContext): Promise<DrillResult> {
  const spec = project.verify!;
  const source = drillSource(project);
  const repository = project.repositories[0];
  if (source.type === "files" || source.type === "command") {
    const located = await locate(ctx, project, source, repository, "latest");
    const common = { source: source.name, repository, snapshot: located.snapshot.id };
    if (source.type === "files") {
      const { bytes, restoreMs, check } = await filesDrill(located, spec.sample, ctx);
      return { ...common, kind: "files", bytes, restoreMs, files: check };
    }
    const { bytes, restoreMs, check } = await commandDrill(located, ctx);
    return { ...common, kind: "command", bytes, restoreMs, dump: check };
  }
  const into = spec.into;
  if (!into || !databaseTypes.has(source.type) || into.type !== source.type) {
    throw new SourceError(
      `verify: the drill of ${source.name} (${source.type}) needs verify.into, a scratch ${source.type} database ` +
        "to restore into",
    );
  }
  if (sameDatabase(into, source as typeof into, ctx.loaded.dir)) {
    throw new SourceError(
      `verify.into names the project's own ${source.type} database: a drill drops and recreates its target, so point ` +
        "it at a scratch database",
    );
  }
  const located = await locate(ctx, project, source, repository, "latest");
  const context = { configDir: ctx.loaded.dir, privateDir: ctx.privateDir };
  await recreate(into, context);
  const sink = restoreSink(into, located.format!, context);
  const outcome = await streamDump(located, { sink }, ctx);
  const result: DrillResult = {
    source: source.name,
    kind: "database",
    repository,
    snapshot: located.snapshot.id,
    bytes: outcome.bytes,
    restoreMs: outcome.durationMs,
  };
  if (spec.check) {
    result.rows = await checkQuery(into, spec.check, context);
    const minRows = spec.expect?.minRows ?? 1;
    if (result.rows < minRows) {
      throw new SourceError(
        `the check query returned ${result.rows} row${result.rows === 1 ? "" : "s"}, expected at least ${minRows}: ` +
          `the snapshot ${located.snapshot.short_id} restored, but its data is not what the drill expects`,
      );
    }
  }
  return result;
}
