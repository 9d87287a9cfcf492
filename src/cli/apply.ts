/** `backupctl apply`: make the plan and execute it, auditing every run and stage. */
import type { Command } from "commander";
import { applyPlan } from "../apply/executor.ts";
import { createClock } from "../clock.ts";
import { ActionsFailedError, ExitCode, UsageError } from "../errors.ts";
import { renderText } from "../plan/render.ts";
import { Restic } from "../repository/restic.ts";
import { hostFor, load, openStore, type Output, parseNow, selectProjects } from "./context.ts";
import { type PlanCommandOptions, preparePlan } from "./plan.ts";

export const description = "Execute the plan: initialize repositories and run the backups that are due";

interface ApplyOptions extends PlanCommandOptions {
  autoApprove?: boolean;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

export function define(program: Command, output: Output, done: (code: number) => void): void {
  program.command("apply").description(description)
    .argument("[planfile]", "a saved plan (not supported yet: plan again instead)")
    .option("-p, --project <name>", "only this project (repeatable)", collect)
    .option("--now <iso>", "run as if the clock read this time (schedules, audit and snapshot times)")
    .option("--auto-approve", "execute deletions that need approval without asking")
    .action(async (planfile: string | undefined, _options, command: Command) => {
      if (planfile) {
        throw new UsageError("saved plan files are not supported by this version yet; run `backupctl apply`");
      }
      done(await run(command.optsWithGlobals<ApplyOptions>(), output));
    });
}

export async function run(options: ApplyOptions, output: Output): Promise<number> {
  const now = parseNow(options.now);
  const loaded = await load(options);
  selectProjects(loaded, options.project);
  const store = await openStore(options, loaded);
  try {
    const { plan, adopted } = await preparePlan(options, loaded, store);
    output.stdout(renderText(plan));
    for (const name of adopted) {
      const repository = new Restic(name, loaded.config.repositories[name], loaded.dir);
      await store.markRepositoryInitialized(name, repository.location(), (now ?? new Date()).toISOString());
    }
    if (plan.actions.length === 0) return ExitCode.ok;
    output.stdout("\n");
    const report = await applyPlan(plan, {
      loaded,
      store,
      clock: createClock(now),
      host: hostFor(loaded),
      command: "apply",
      out: (line) => output.stdout(`${line}\n`),
    });
    output.stdout(
      `\nApply ${report.failed === 0 ? "complete" : "finished with failures"}: ${report.succeeded} succeeded, ` +
        `${report.failed} failed${report.skipped ? `, ${report.skipped} skipped` : ""}.\n`,
    );
    if (report.failed + report.skipped > 0) {
      throw new ActionsFailedError(report.failed + report.skipped, report.succeeded + report.failed + report.skipped);
    }
    return ExitCode.ok;
  } finally {
    await store.close();
  }
}
