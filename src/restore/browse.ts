/**
 * Looking into snapshots without restoring them (`snapshots ls`, `find`, `diff`, `ls --list`): which snapshot is
 * meant (the selection of restores, `locate`, so `latest` and the refusal of incomplete snapshots are the same),
 * then restic's read-only commands (`ls`, `find`, `diff`, `dump`), parsed by repository/restic-browse.ts. Nothing here
 * writes to the state or the repository.
 */
import { basename, isAbsolute, resolve } from "node:path";
import type { NamedSource, NormalizedProject } from "../config/normalize.ts";
import { decryptionFilter } from "../encrypt/filter.ts";
import type { StreamFilter } from "../encrypt/types.ts";
import { ExecError, MissingToolError, SourceError, UsageError } from "../errors.ts";
import { FifoFolder } from "../exec/fifo.ts";
import { onPath, type RunningProcess, type RunResult, start } from "../exec/run.ts";
import { isUsable } from "../plan/types.ts";
import { parseDiff, parseFind, parseLs, type TreeNode } from "../repository/restic-browse.ts";
import type { SnapshotTable } from "../state/schema.ts";
import { locate, type Located, type RestoreContext, sourcesOf } from "./restore.ts";

/** Which sources a command can look into when none is named. */
export type SourceKind = "files" | "postgres";

/**
 * The snapshot a browse command means: `spec` is `latest` or an id (prefix) as for a restore. The source is the one
 * named; else, for an id, the source of that snapshot; else the project's only source of `kind`.
 */
export async function resolveSnapshot(
  ctx: RestoreContext,
  project: NormalizedProject,
  repository: string,
  spec: string,
  sourceName: string | undefined,
  kind: SourceKind,
): Promise<Located> {
  if (sourceName !== undefined) return await locate(ctx, project, sourcesOf(project, sourceName)[0], repository, spec);
  if (spec !== "latest") {
    return await locate(ctx, project, await sourceOfId(ctx, project, repository, spec), repository, spec);
  }
  // A globals dump is plain SQL: never the one --list means when no source is named.
  const candidates = project.sources.filter((source) => source.type === kind && source.part !== "globals");
  if (candidates.length !== 1) {
    throw new UsageError(
      candidates.length === 0
        ? `project ${project.name} has no ${kind} source (its sources: ${describeSources(project)}): name one with ` +
          "--source"
        : `project ${project.name} has several ${kind} sources: choose one with --source (${
          candidates.map((s) => s.name).join(", ")
        })`,
    );
  }
  return await locate(ctx, project, candidates[0], repository, spec);
}

function describeSources(project: NormalizedProject): string {
  return project.sources.map((s) => `${s.name} (${s.type})`).join(", ");
}

/**
 * The source of the snapshot `spec` names in `project`. An id of another project's snapshot, one matching
 * snapshots of several sources, or none at all is a UsageError saying which.
 */
async function sourceOfId(
  ctx: RestoreContext,
  project: NormalizedProject,
  repository: string,
  spec: string,
): Promise<NamedSource> {
  const id = spec.toLowerCase();
  if (!/^[0-9a-f]{4,64}$/.test(id)) {
    throw new UsageError(`expected "latest" or a snapshot id (at least 4 hex characters), got "${spec}"`);
  }
  const rows = (await ctx.store.listSnapshots({ repository })).filter((row) => row.id.startsWith(id));
  const own = rows.filter((row) => row.project === project.name);
  const sources = [...new Set(own.map((row) => row.source))];
  if (own.length > 1) {
    throw new UsageError(
      `snapshot id ${spec} is ambiguous in ${project.name} in ${repository}: ${
        own.map((row) => `${row.short_id} (${row.source})`).join(", ")
      }; give more of it`,
    );
  }
  const source = project.sources.find((s) => s.name === sources[0]);
  if (source) return source;
  if (own.length === 1) {
    throw new UsageError(
      `snapshot ${own[0].short_id} is of source "${own[0].source}", which project ${project.name} no longer declares`,
    );
  }
  if (rows.length > 0) {
    const other = rows[0];
    throw new UsageError(
      `snapshot ${other.short_id} in ${repository} is not ${project.name}'s: it is ${
        other.project ? `a snapshot of ${other.project}/${other.source}` : "not managed by backupctl"
      }`,
    );
  }
  throw new UsageError(
    `no snapshot ${spec} of ${project.name} in ${repository} in the inventory: \`backupctl snapshots -p ` +
      `${project.name}\` lists them (\`--refresh\` reloads them from restic)`,
  );
}

/**
 * A path of the snapshot's tree. restic keeps the absolute paths it backed up, so a relative one starts at the
 * config's folder, as the files source's own paths do; a trailing slash goes.
 */
export function treePath(path: string, configDir: string): string {
  const absolute = isAbsolute(path) ? path : resolve(configDir, path);
  return absolute.length > 1 ? absolute.replace(/\/+$/, "") : absolute;
}

/**
 * The tree of a snapshot as restic walks it (each folder, then what it holds), or the part at and below `path`.
 * A path the snapshot does not hold is a UsageError naming what it backed up.
 */
export async function listTree(located: Located, ctx: RestoreContext, path?: string): Promise<TreeNode[]> {
  const repository = ctx.repositoryFor(located.repository);
  const args = path === undefined ? ["--", located.snapshot.id] : ["--recursive", "--", located.snapshot.id, path];
  const nodes = parseLs(await repository.browse("ls", args));
  if (path !== undefined && nodes.length === 0) {
    throw new UsageError(
      `snapshot ${located.snapshot.short_id} of ${located.project.name}/${located.source.name} holds no ${path}; ` +
        `it backed up ${(JSON.parse(located.snapshot.paths) as string[]).join(", ")}`,
    );
  }
  return nodes;
}

/** A match of `find`, with the snapshot that holds it. */
export interface Found {
  snapshot: SnapshotTable;
  node: TreeNode;
}

/**
 * Where `pattern` (restic find's: a name or glob such as `*.pdf`, matched against each path's last part, or a path
 * with `/`) matches in the project's snapshots (of `sourceName` only, when given), newest first. Snapshots not known
 * to be complete are searched only with `allowIncomplete`.
 */
export async function findPaths(
  ctx: RestoreContext,
  project: NormalizedProject,
  repository: string,
  pattern: string,
  sourceName: string | undefined,
): Promise<{ searched: number; found: Found[] }> {
  const sources = sourcesOf(project, sourceName).map((s) => s.name);
  const states = await ctx.store.snapshotStates();
  const rows = (await ctx.store.listSnapshots({ projects: [project.name], repository }))
    .filter((row) => row.source !== null && sources.includes(row.source))
    .filter((row) => ctx.allowIncomplete || isUsable({ state: states.get(`${row.repository}\u0000${row.id}`) }));
  if (rows.length === 0) {
    throw new UsageError(
      `no ${ctx.allowIncomplete ? "" : "complete "}snapshot of ${project.name}${
        sourceName ? `/${sourceName}` : ""
      } in ${repository} in the inventory to search`,
    );
  }
  const byId = new Map(rows.map((row) => [row.id, row]));
  const args = [...rows.flatMap((row) => ["--snapshot", row.id]), "--", pattern];
  const hits = parseFind(await ctx.repositoryFor(repository).browse("find", args));
  const found = hits.flatMap((hit) => {
    const snapshot = byId.get(hit.snapshot);
    return snapshot ? hit.matches.map((node) => ({ snapshot, node })) : [];
  });
  found.sort((a, b) =>
    a.snapshot.time === b.snapshot.time
      ? a.node.path.localeCompare(b.node.path)
      : a.snapshot.time < b.snapshot.time
      ? 1
      : -1
  );
  return { searched: rows.length, found };
}

/** A path that differs between two snapshots, with its size on each side (undefined where it does not exist). */
export interface Difference {
  path: string;
  change: "added" | "removed" | "changed";
  type: string;
  before?: number;
  after?: number;
}

/**
 * What changed from `from` to `to`: restic diff says which paths (it compares content, so a file rewritten with the
 * same size and time still shows), the two listings give their sizes and types.
 */
export async function diffSnapshots(ctx: RestoreContext, from: Located, to: Located): Promise<Difference[]> {
  const repository = ctx.repositoryFor(from.repository);
  const [changes, before, after] = await Promise.all([
    repository.browse("diff", ["--", from.snapshot.id, to.snapshot.id]).then(parseDiff),
    repository.browse("ls", ["--", from.snapshot.id]).then(byPath),
    repository.browse("ls", ["--", to.snapshot.id]).then(byPath),
  ]);
  return changes.map(({ path, modifier }) => {
    const old = before.get(path);
    const now = after.get(path);
    const change = modifier === "+" ? "added" : modifier === "-" ? "removed" : "changed";
    return {
      path,
      change,
      type: (now ?? old)?.type ?? "file",
      before: change === "added" ? undefined : old?.size,
      after: change === "removed" ? undefined : now?.size,
    };
  });
}

function byPath(stdout: string): Map<string, TreeNode> {
  return new Map(parseLs(stdout).map((node) => [node.path, node]));
}

/**
 * The table of contents of a PostgreSQL custom-format dump (`pg_restore --list`), read from the dump streamed out
 * of the repository: `restic dump` → [decryption] → pg_restore, through FIFOs, with no copy on disk. pg_restore
 * stops once it has read the table of contents at the start of the archive: the list is whole when it says so
 * (exit 0), and restic, which still had the rest to send, is then stopped (SIGINT, so that it removes its lock).
 * When pg_restore fails, a program upstream that failed first is the one reported.
 */
export async function dumpContents(located: Located, ctx: RestoreContext): Promise<string> {
  if (located.format !== "pg_custom") {
    const what = located.source.type === "files"
      ? "a files source"
      : `a ${located.source.type} source whose dump is ${located.source.type === "postgres" ? "plain SQL" : "SQL"}`;
    throw new UsageError(
      `--list needs a PostgreSQL custom-format dump (pg_dump -Fc, a .pgdump file); ${located.project.name}/` +
        `${located.source.name} is ${what}: \`backupctl restore --to DIR\` writes it out to read`,
    );
  }
  const dumpPath = located.dumpPath;
  if (!dumpPath) throw new SourceError(`snapshot ${located.snapshot.short_id} lists no dump file`);
  if (!(await onPath("pg_restore"))) throw new MissingToolError("pg_restore", "postgresql-client");
  const filter = located.encrypted ? await decryption(located, ctx, dumpPath) : undefined;
  const fifos = FifoFolder.create(ctx.privateDir);
  try {
    if (filter && !(await onPath(filter.argv[0]))) throw new MissingToolError(filter.argv[0], filter.package);
    const paths = await fifos.make(...(filter ? ["dump", "plain"] : ["dump"]));
    const repository = ctx.repositoryFor(located.repository);
    // Held (this process one more reader) while restic writes: when pg_restore quits after the table of contents,
    // restic blocks on a full pipe instead of meeting a closed one, which would kill it by SIGPIPE with its lock
    // left behind. Let go once restic is done, so that a reader sees the end of a dump restic could not send.
    const releaseDump = fifos.hold(paths[0]);
    const dump = repository.startDump(located.snapshot.id, dumpPath, paths[0]);
    const upstream: { name: string; process: Pick<RunningProcess, "kill" | "result"> }[] = [
      { name: "restic dump", process: { kill: dump.kill, result: dump.finished.finally(releaseDump) } },
    ];
    if (filter) {
      upstream.push({
        name: `${filter.argv[0]} (decryption)`,
        process: start(filter.argv, { env: filter.env, stdinFrom: paths[0], stdoutTo: paths[1], stdout: "stream" }),
      });
    }
    let stopping = false;
    /** Each upstream result, and whether the program ended before it was stopped (a failure of its own). */
    const ended = upstream.map(({ process }) => process.result.then((result) => ({ result, own: !stopping })));
    const list = await start(["pg_restore", "--list"], { stdinFrom: paths.at(-1) }).result;
    // restic first (SIGINT: it removes its lock), then the filter it was writing to.
    stopping = true;
    for (const [i, { process }] of upstream.entries()) {
      process.kill();
      await ended[i];
    }
    if (list.code === 0) return list.stdout;
    // pg_restore failed: the cause is upstream when a program there failed (pg_restore then saw a cut stream).
    for (const [i, { name }] of upstream.entries()) {
      const { result, own } = await ended[i];
      if (!own || result.code === 0 || result.signal !== null) continue;
      if (i === 0) throw repository.failure("dump", result);
      throw new ExecError(name, result.code, result.stderrTail, failed(name, result));
    }
    throw new ExecError("pg_restore", list.code, list.stderrTail, failed("pg_restore --list", list));
  } finally {
    fifos.remove();
    await filter?.cleanup?.();
  }
}

function failed(name: string, result: RunResult): string {
  return `${name} failed (exit ${result.code ?? result.signal})` +
    (result.stderrTail ? `:\n    ${result.stderrTail.replaceAll("\n", "\n    ")}` : "");
}

async function decryption(located: Located, ctx: RestoreContext, dumpPath: string): Promise<StreamFilter> {
  const encrypt = located.project.encrypt;
  const expected = encrypt ? (encrypt.type === "gpg" ? ".gpg" : ".age") : undefined;
  if (!encrypt || expected !== located.encrypted) {
    throw new SourceError(
      `the dump ${basename(dumpPath)} is encrypted (${located.encrypted}) but project ` +
        `${located.project.name} ${encrypt ? `encrypts with ${encrypt.type}` : "declares no encrypt"}`,
    );
  }
  return await decryptionFilter(encrypt, { configDir: ctx.loaded.dir, privateDir: ctx.privateDir });
}
