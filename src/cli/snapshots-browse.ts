/**
 * `backupctl snapshots ls|find|diff`: a look inside snapshots without restoring them — a files snapshot's tree (or a
 * PostgreSQL dump's table of contents with `--list`), the snapshots holding a path, what changed between two. Read
 * only: the state is opened for reading, restic runs with --no-lock (restore/browse.ts does the work).
 */
import type { Command } from "commander";
import { repositoryFor } from "../apply/context.ts";
import type { NormalizedProject } from "../config/normalize.ts";
import { ExitCode, UsageError } from "../errors.ts";
import { formatBytes } from "../format/bytes.ts";
import { localTime, machineTimeZone } from "../format/time.ts";
import {
  type Difference,
  diffSnapshots,
  dumpContents,
  findPaths,
  listTree,
  resolveSnapshot,
  treePath,
} from "../restore/browse.ts";
import type { Located, RestoreContext } from "../restore/restore.ts";
import type { LoadedConfig } from "../config/load.ts";
import { type GlobalOptions, load, openStore, type Output } from "./context.ts";

interface Options extends GlobalOptions {
  snapshot?: string;
  source?: string;
  repository?: string;
  allowIncomplete?: boolean;
  list?: boolean;
  json?: boolean;
}

type Done = (code: number) => void;

const incompleteHelp =
  "also use a snapshot backupctl does not know to be complete (a run that failed, died or is still going made it)";

/** Adds `ls`, `find` and `diff` under the `snapshots` command. */
export function defineBrowse(snapshots: Command, output: Output, done: Done): void {
  snapshots.command("ls").description("List a files snapshot's tree, or a PostgreSQL dump's contents (--list)")
    .argument("<project>", "the project whose snapshot to list")
    .argument("[path]", "only this file or folder and what is below it (relative: from the config's folder)")
    .option("--snapshot <id>", 'a snapshot id (or a prefix of at least 4 characters), or "latest"', "latest")
    .option("--source <name>", "the source (default: the snapshot's, else the project's only files source)")
    .option("-r, --repository <name>", "look in this repository (default: the project's first)")
    .option("--list", "the table of contents of a PostgreSQL custom-format dump (pg_restore --list)")
    .option("--allow-incomplete", incompleteHelp)
    .option("--json", "print JSON")
    .action(async (project: string, path: string | undefined, _options, command: Command) =>
      done(await withContext(project, command.optsWithGlobals<Options>(), (c) => ls(c, path, output)))
    );
  snapshots.command("find").description("Find the snapshots holding a path that matches a pattern, newest first")
    .argument("<project>", "the project whose snapshots to search")
    .argument("<pattern>", "a name or glob (*.pdf) matched against each path's last part, or a path with /")
    .option("--source <name>", "only this source's snapshots")
    .option("-r, --repository <name>", "search this repository (default: the project's first)")
    .option("--allow-incomplete", incompleteHelp)
    .option("--json", "print JSON")
    .action(async (project: string, pattern: string, _options, command: Command) =>
      done(await withContext(project, command.optsWithGlobals<Options>(), (c) => find(c, pattern, output)))
    );
  snapshots.command("diff").description("Show the paths added, removed and changed between two snapshots")
    .argument("<project>", "the project of both snapshots")
    .argument("<from>", "the older snapshot's id (or a prefix of at least 4 characters)")
    .argument("<to>", "the newer snapshot's id, or latest")
    .option("--source <name>", "the source, for latest (default: the snapshot's)")
    .option("-r, --repository <name>", "look in this repository (default: the project's first)")
    .option("--allow-incomplete", incompleteHelp)
    .option("--json", "print JSON")
    .action(async (project: string, from: string, to: string, _options, command: Command) =>
      done(await withContext(project, command.optsWithGlobals<Options>(), (c) => diff(c, from, to, output)))
    );
}

interface Context {
  loaded: LoadedConfig;
  project: NormalizedProject;
  repository: string;
  restore: RestoreContext;
  options: Options;
  zone: string;
}

/** Loads the config, checks the project and repository, opens the state for reading, runs `work`. */
async function withContext(name: string, options: Options, work: (c: Context) => Promise<number>): Promise<number> {
  const loaded = await load(options);
  const project = loaded.config.projects[name];
  if (!project) {
    throw new UsageError(
      `unknown project "${name}"; declared projects: ${Object.keys(loaded.config.projects).join(", ")}`,
    );
  }
  const repository = options.repository ?? project.repositories[0];
  if (!project.repositories.includes(repository)) {
    throw new UsageError(
      `project ${name} does not use repository "${repository}"; its repositories: ${project.repositories.join(", ")}`,
    );
  }
  const store = await openStore(options, loaded, "read");
  try {
    const restore: RestoreContext = {
      loaded,
      store,
      privateDir: store.privateDir,
      repositoryFor: (repo) => repositoryFor({ loaded, store }, repo),
      allowIncomplete: Boolean(options.allowIncomplete),
    };
    const zone = loaded.displayTimeZone ?? machineTimeZone();
    return await work({ loaded, project, repository, restore, options, zone });
  } finally {
    await store.close();
  }
}

function snapshotJson(located: Located) {
  const { id, short_id, time } = located.snapshot;
  return {
    id,
    short_id,
    time,
    project: located.project.name,
    source: located.source.name,
    repository: located.repository,
  };
}

function heading(c: Context, located: Located): string {
  const { short_id, time } = located.snapshot;
  return `snapshot ${short_id} of ${c.project.name}/${located.source.name} in ${c.repository}, ` +
    `${localTime(new Date(time), c.zone)}`;
}

/** Columns padded to their widest cell, two spaces apart, the last one unpadded. */
function table(rows: string[][]): string {
  const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => row[column].length)));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]))).join("  "))
    .join("\n") + "\n";
}

const sizeOf = (type: string, size: number) => (type === "file" ? formatBytes(size) : "-");

async function ls(c: Context, path: string | undefined, output: Output): Promise<number> {
  const kind = c.options.list ? "postgres" : "files";
  const located = await resolveSnapshot(
    c.restore,
    c.project,
    c.repository,
    c.options.snapshot ?? "latest",
    c.options.source,
    kind,
  );
  if (c.options.list) {
    if (path !== undefined) throw new UsageError("--list shows a whole dump's contents: leave out the path");
    const contents = await dumpContents(located, c.restore);
    if (c.options.json) {
      const entries = contents.split("\n").filter((line) => line.trim() !== "" && !line.startsWith(";"));
      output.stdout(
        JSON.stringify({ snapshot: snapshotJson(located), dump: located.dumpPath, entries }, null, 2) + "\n",
      );
    } else {
      output.stdout(`${heading(c, located)}, ${located.dumpPath}\n${contents}`);
    }
    return ExitCode.ok;
  }
  if (located.source.type !== "files") {
    throw new UsageError(
      `${c.project.name}/${located.source.name} is a ${located.source.type} source: its snapshot holds one dump ` +
        `(${located.dumpPath}).${
          located.format === "pg_custom" ? " Add --list to see its table of contents." : ""
        } ls lists files sources`,
    );
  }
  const nodes = await listTree(located, c.restore, path === undefined ? undefined : treePath(path, c.loaded.dir));
  if (c.options.json) {
    output.stdout(JSON.stringify({ snapshot: snapshotJson(located), nodes }, null, 2) + "\n");
    return ExitCode.ok;
  }
  const rows = [["TYPE", "SIZE", "MODIFIED", "PATH"]];
  for (const node of nodes) {
    rows.push([node.type, sizeOf(node.type, node.size), localTime(new Date(node.mtime), c.zone), node.path]);
  }
  const files = nodes.filter((node) => node.type === "file");
  const folders = nodes.filter((node) => node.type === "dir").length;
  const bytes = files.reduce((sum, node) => sum + node.size, 0);
  output.stdout(
    `${heading(c, located)}\n${table(rows)}\n${plural(files.length, "file")}, ${plural(folders, "folder")}, ` +
      `${formatBytes(bytes)}\n`,
  );
  return ExitCode.ok;
}

function plural(count: number, noun: string, nouns = `${noun}s`): string {
  return `${count} ${count === 1 ? noun : nouns}`;
}

async function find(c: Context, pattern: string, output: Output): Promise<number> {
  const { searched, found } = await findPaths(c.restore, c.project, c.repository, pattern, c.options.source);
  if (c.options.json) {
    const matches = found.map(({ snapshot, node }) => ({
      snapshot: { id: snapshot.id, short_id: snapshot.short_id, time: snapshot.time, source: snapshot.source },
      ...node,
    }));
    output.stdout(JSON.stringify({ pattern, searched, matches }, null, 2) + "\n");
    return ExitCode.ok;
  }
  const scope = `${plural(searched, "snapshot")} of ${c.project.name}${
    c.options.source ? `/${c.options.source}` : ""
  } in ${c.repository}`;
  if (found.length === 0) {
    output.stdout(`nothing matches ${pattern} in the ${scope}\n`);
    return ExitCode.ok;
  }
  const rows = [["SNAPSHOT", "TIME", "SOURCE", "SIZE", "MODIFIED", "PATH"]];
  for (const { snapshot, node } of found) {
    rows.push([
      snapshot.short_id,
      localTime(new Date(snapshot.time), c.zone),
      snapshot.source ?? "-",
      sizeOf(node.type, node.size),
      localTime(new Date(node.mtime), c.zone),
      node.path,
    ]);
  }
  const holding = new Set(found.map(({ snapshot }) => snapshot.id)).size;
  output.stdout(
    `${table(rows)}\n${pattern}: ${plural(found.length, "match", "matches")} in ${holding} of the ${scope}\n`,
  );
  return ExitCode.ok;
}

async function diff(c: Context, fromSpec: string, toSpec: string, output: Output): Promise<number> {
  const from = await resolveSnapshot(c.restore, c.project, c.repository, fromSpec, c.options.source, "files");
  const to = await resolveSnapshot(
    c.restore,
    c.project,
    c.repository,
    toSpec,
    c.options.source ?? (toSpec === "latest" ? from.source.name : undefined),
    "files",
  );
  if (from.source.name !== to.source.name) {
    throw new UsageError(
      `${from.snapshot.short_id} is a snapshot of ${c.project.name}/${from.source.name}, ${to.snapshot.short_id} of ` +
        `${c.project.name}/${to.source.name}: diff compares two snapshots of the same source`,
    );
  }
  const changes = await diffSnapshots(c.restore, from, to);
  const summary = summarize(changes);
  if (c.options.json) {
    output.stdout(
      JSON.stringify({ from: snapshotJson(from), to: snapshotJson(to), changes, summary }, null, 2) + "\n",
    );
    return ExitCode.ok;
  }
  const when = (located: Located) =>
    `${located.snapshot.short_id} (${located.source.name}, ${localTime(new Date(located.snapshot.time), c.zone)})`;
  const rows = changes.map((change) => {
    const size = change.change === "added"
      ? sizeOf(change.type, change.after ?? 0)
      : change.change === "removed"
      ? sizeOf(change.type, change.before ?? 0)
      : change.type === "file"
      ? `${formatBytes(change.before ?? 0)} → ${formatBytes(change.after ?? 0)}`
      : "-";
    return [{ added: "+", removed: "-", changed: "M" }[change.change], change.path, size];
  });
  const body = rows.length === 0 ? "no differences\n" : table(rows);
  output.stdout(
    `${c.project.name} in ${c.repository}: ${when(from)} → ${when(to)}\n${body}\n` +
      `${summary.added} added (${formatBytes(summary.added_bytes)}), ${summary.removed} removed ` +
      `(${formatBytes(summary.removed_bytes)}), ${summary.changed} changed ` +
      `(${formatBytes(summary.changed_bytes_before)} → ${formatBytes(summary.changed_bytes_after)})\n`,
  );
  return ExitCode.ok;
}

function summarize(changes: Difference[]) {
  const of = (kind: Difference["change"]) => changes.filter((change) => change.change === kind);
  const sum = (list: Difference[], side: "before" | "after") => list.reduce((total, c) => total + (c[side] ?? 0), 0);
  return {
    added: of("added").length,
    removed: of("removed").length,
    changed: of("changed").length,
    added_bytes: sum(of("added"), "after"),
    removed_bytes: sum(of("removed"), "before"),
    changed_bytes_before: sum(of("changed"), "before"),
    changed_bytes_after: sum(of("changed"), "after"),
  };
}
