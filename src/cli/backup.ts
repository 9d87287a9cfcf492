/**
 * `backupctl backup PROJECT… [--source S]… [--repository R]…`: back up now, outside the schedule. The plan holds a
 * backup of each selected source and the copies that follow it, and runs through apply's path: the projects' locks,
 * startup recovery, the inventory refresh, retries, the audit (runs recorded with command `backup`), hooks and
 * notifications. Nothing is forgotten, pruned or checked, and the schedule is untouched (see `OnDemand` in
 * src/plan/planner.ts and docs/cli.md).
 */
import type { Command } from "commander";
import { serverDatabaseSource } from "../config/discovered.ts";
import type { LoadedConfig } from "../config/load.ts";
import { UsageError } from "../errors.ts";
import { type ApplyOptions, run as runApply, waitFlags, waitHelp } from "./apply.ts";
import { type GlobalOptions, load, namedProjects, type Output } from "./context.ts";
import { collect } from "./context.ts";

export const description =
  "Back up now, outside the schedule: the projects' sources, then the copies to their other repositories";

interface BackupOptions extends GlobalOptions {
  source?: string[];
  repository?: string[];
  wait?: string;
}

export function define(program: Command, output: Output, done: (code: number) => void): void {
  program.command("backup").description(description)
    .argument("<projects...>", "the projects to back up now")
    .option("-s, --source <name>", "only this source (repeatable)", collect)
    .option(
      "-r, --repository <name>",
      "copy only to this repository (repeatable; the backup itself always goes to the project's first)",
      collect,
    )
    .option(waitFlags, waitHelp)
    .action(async (projects: string[], _options, command: Command) =>
      done(await run(projects, command.optsWithGlobals<BackupOptions>(), output))
    );
}

export async function run(names: string[], options: BackupOptions, output: Output): Promise<number> {
  const loaded = await load(options);
  const projects = namedProjects(loaded, names, "backup");
  const sources = options.source?.length ? [...new Set(options.source)] : undefined;
  const repositories = options.repository?.length ? [...new Set(options.repository)] : undefined;
  // A database of a `databases: "all"` server is named as its source (`pg-shop`): known once listed, when planning.
  const serverDatabases = (p: Project) => sources?.filter((name) => serverDatabaseSource(p, name)) ?? [];
  if (sources) {
    checkNamed(loaded, projects, "source", sources, (p) => [...p.sources.map((s) => s.name), ...serverDatabases(p)]);
  }
  if (repositories) checkNamed(loaded, projects, "repository", repositories, (p) => p.repositories);
  const list = projects.join(" ");
  const applyOptions: ApplyOptions = { ...options, project: projects };
  return await runApply(undefined, applyOptions, output, {
    command: "backup",
    projects,
    plan: { command: "backup", sources, repositories },
    approveWith: `backupctl apply --project ${projects.join(" --project ")} --auto-approve`,
    nothingToDo: `Nothing to back up for ${list}.`,
  });
}

type Project = LoadedConfig["config"]["projects"][string];

/**
 * Every name given with --source (or --repository) belongs to a named project, and every named project has one of
 * them: otherwise a usage error naming what each project has.
 */
function checkNamed(
  loaded: LoadedConfig,
  projects: string[],
  what: "source" | "repository",
  given: string[],
  has: (project: Project) => string[],
): void {
  const plural = what === "source" ? "sources" : "repositories";
  const valid = projects.length === 1
    ? `its ${plural}: ${has(loaded.config.projects[projects[0]]).join(", ")}`
    : `their ${plural}: ${
      projects.map((name) => `${name}: ${has(loaded.config.projects[name]).join(", ")}`).join("; ")
    }`;
  for (const name of given) {
    if (!projects.some((project) => has(loaded.config.projects[project]).includes(name))) {
      throw new UsageError(
        `--${what}: ${
          projects.length === 1 ? `project ${projects[0]} has no ${what}` : `no project named has a ${what}`
        } "${name}"; ${valid}`,
      );
    }
  }
  for (const project of projects) {
    if (!has(loaded.config.projects[project]).some((name) => given.includes(name))) {
      throw new UsageError(
        `--${what}: project ${project} has none of the ${plural} named (${given.join(", ")}); its ${plural}: ` +
          has(loaded.config.projects[project]).join(", "),
      );
    }
  }
}
