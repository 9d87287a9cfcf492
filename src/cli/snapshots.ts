/**
 * `backupctl snapshots`: the snapshot inventory, as last refreshed from restic, with the backups of pgbackrest()
 * sources as pgBackRest lists them now. Its subcommands `ls`, `find` and `diff` look inside snapshots
 * (snapshots-browse.ts).
 */
import type { Command } from "commander";
import { formatBytes } from "../format/bytes.ts";
import { ExitCode, UsageError } from "../errors.ts";
import { localTime, machineTimeZone } from "../format/time.ts";
import { colours, terminalColours } from "../plan/render.ts";
import { refreshRepositories } from "../apply/inventory.ts";
import { type GlobalOptions, load, openStore, type Output, selectProjects } from "./context.ts";
import { repositoriesInScope } from "../apply/prepare.ts";
import { defineBrowse } from "./snapshots-browse.ts";

export const description = "List the snapshot inventory per project, source and repository";

interface Options extends GlobalOptions {
  json?: boolean;
  project?: string[];
  repository?: string;
  refresh?: boolean;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

export function define(program: Command, output: Output, done: (code: number) => void): void {
  const snapshots = program.command("snapshots").description(description)
    .option("-p, --project <name>", "only this project (repeatable)", collect)
    .option("-r, --repository <name>", "only this repository")
    .option("--refresh", "reload the snapshot lists from restic first (the repositories of the projects in scope)")
    .option("--json", "print JSON")
    .action(async (_options, command: Command) => done(await run(command.optsWithGlobals<Options>(), output)));
  defineBrowse(snapshots, output, done);
}

export async function run(options: Options, output: Output): Promise<number> {
  const loaded = await load(options);
  const projects = selectProjects(loaded, options.project);
  if (options.repository && !(options.repository in loaded.config.repositories)) {
    throw new UsageError(
      `--repository: unknown repository "${options.repository}"; declared: ${
        Object.keys(loaded.config.repositories).join(", ")
      }`,
    );
  }
  const store = await openStore(options, loaded, options.refresh ? "write" : "read");
  const { listed: rows, states } = await (async () => {
    if (options.refresh) {
      const names = options.repository ? [options.repository] : repositoriesInScope(loaded, projects);
      await refreshRepositories(loaded, store, names, output);
    }
    const listed = await store.listSnapshots({ projects, repository: options.repository });
    return { listed, states: await store.snapshotStates() };
  })().finally(() => store.close());
  // pgBackRest's backups beside restic's snapshots, read now from pgBackRest (only where a project has a stanza).
  const pitr = options.repository === undefined &&
      Object.values(loaded.config.projects).some((p) => p.pitr.length > 0 && (!projects || projects.includes(p.name)))
    ? await (await import("../apply/pitr.ts")).pitrInventory(loaded, projects, (line) => output.stderr(`${line}\n`))
    : [];
  const restic = rows.map((row) => ({
    id: row.id,
    short_id: row.short_id,
    time: row.time,
    repository: row.repository,
    project: row.project,
    source: row.source,
    run_id: row.run_id,
    hostname: row.hostname,
    tags: JSON.parse(row.tags) as string[],
    paths: JSON.parse(row.paths) as string[],
    size: row.size,
    // complete | adopted | pending | incomplete: see SnapshotState (restores pick complete and adopted ones only).
    state: states.get(`${row.repository}\u0000${row.id}`) ?? "adopted",
  }));
  const snapshots = [
    ...restic,
    ...pitr.map((row) => ({ ...row, run_id: null, hostname: "", tags: [] as string[], paths: [] as string[] })),
  ];
  if (options.json) {
    output.stdout(JSON.stringify(snapshots, null, 2) + "\n");
    return ExitCode.ok;
  }
  if (snapshots.length === 0) {
    output.stdout("No snapshots in the inventory. Run `backupctl apply` to make the first backups.\n");
    return ExitCode.ok;
  }
  // Times in the config's time zone (else the machine's) with their offset; JSON keeps restic's UTC times.
  const zone = loaded.displayTimeZone ?? machineTimeZone();
  const c = colours(terminalColours());
  const statePaint: Record<string, (text: string) => string> = {
    complete: c.green,
    adopted: c.dim,
    pending: c.yellow,
    incomplete: c.red,
  };
  const table = [["ID", "TIME", "REPOSITORY", "PROJECT", "SOURCE", "SIZE", "STATE", "RUN"]];
  for (const s of snapshots) {
    table.push([
      s.short_id,
      localTime(new Date(s.time), zone),
      s.repository,
      s.project ?? "(not managed)",
      s.source ?? "-",
      s.size === null ? "-" : formatBytes(s.size),
      s.state,
      s.run_id ?? "-",
    ]);
  }
  const widths = table[0].map((_, column) => Math.max(...table.map((row) => row[column].length)));
  const paint = (row: number, column: number) =>
    row === 0
      ? c.bold
      : column === 6
      ? statePaint[table[row][column]] ?? ((text: string) => text)
      : (text: string) => text;
  output.stdout(
    table.map((row, r) =>
      row.map((cell, i) => paint(r, i)(i === row.length - 1 ? cell : cell.padEnd(widths[i]))).join("  ").trimEnd()
    ).join("\n") + "\n",
  );
  const doubtful = snapshots.filter((s) => s.state === "incomplete" || s.state === "pending").length;
  if (doubtful > 0) {
    output.stdout(
      `\n${doubtful} snapshot${doubtful === 1 ? " is" : "s are"} not known to be complete (incomplete: a run that ` +
        "failed or died made it; pending: its run has not finished). Restores and drills skip them; the next apply " +
        "forgets the incomplete ones.\n",
    );
  }
  return ExitCode.ok;
}
