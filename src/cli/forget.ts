/**
 * `backupctl forget PROJECT… [--prune] [--auto-approve]`: apply the projects' retention now (to free space without
 * waiting for the next apply): the forgets apply would plan, shown first, under the same approval rules (a forget
 * that needs approval runs only with --auto-approve or a "yes" on a terminal, else it is held), then the prunes that
 * follow them. Runs through apply's path: locks, recovery, inventory refresh, audit, notifications.
 */
import { type Command, Option } from "commander";
import { UsageError } from "../errors.ts";
import { type ApplyOptions, run as runApply, waitFlags, waitHelp } from "./apply.ts";
import { type GlobalOptions, load, namedProjects, type Output } from "./context.ts";

export const description =
  "Apply retention now: forget the snapshots the projects' retention drops (approval rules as apply), then prune";

interface ForgetOptions extends GlobalOptions {
  prune?: boolean;
  autoApprove?: boolean;
  dryRun?: boolean;
  wait?: string;
}

export function define(program: Command, output: Output, done: (code: number) => void): void {
  program.command("forget").description(description)
    .argument("<projects...>", "the projects whose retention runs now")
    .option("--prune", "also prune the projects' repositories where nothing is forgotten now (frees earlier forgets)")
    .option("--auto-approve", "run deletions that need approval (changed retention, floors) without asking")
    .option(waitFlags, waitHelp)
    .addOption(new Option("--dry-run", "not an option: `backupctl plan --project P` shows the forgets").hideHelp())
    .action(async (projects: string[], _options, command: Command) =>
      done(await run(projects, command.optsWithGlobals<ForgetOptions>(), output))
    );
}

export async function run(names: string[], options: ForgetOptions, output: Output): Promise<number> {
  if (options.dryRun) {
    throw new UsageError(
      `forget has no --dry-run: \`backupctl plan --project ${names[0] ?? "P"}\` lists the snapshots it would forget ` +
        "(with everything else apply would do); forget prints them before it runs them, and one that needs approval " +
        "runs only with --auto-approve or a yes on a terminal",
    );
  }
  const loaded = await load(options);
  const projects = namedProjects(loaded, names, "forget");
  const applyOptions: ApplyOptions = { ...options, project: projects, dryRun: false };
  return await runApply(undefined, applyOptions, output, {
    command: "forget",
    projects,
    plan: { command: "forget", prune: Boolean(options.prune) },
    approveWith: `backupctl forget ${projects.join(" ")} --auto-approve`,
    nothingToDo: `Nothing to forget: the retention of ${projects.join(", ")} keeps every snapshot${
      options.prune ? "" : " (add --prune to prune anyway)"
    }.`,
  });
}
