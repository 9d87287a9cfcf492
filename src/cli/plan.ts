/** `backupctl plan`: what apply would do now, Terraform-style; the state is only read. */
import type { Command } from "commander";
import { ExitCode, UsageError } from "../errors.ts";
import { plan as makePlan } from "../plan/planner.ts";
import { renderJson, renderText } from "../plan/render.ts";
import type { Plan } from "../plan/types.ts";
import type { LoadedConfig } from "../config/load.ts";
import type { StateStore } from "../state/store.ts";
import { type GlobalOptions, load, observe, openStore, type Output, parseNow, selectProjects } from "./context.ts";

export const description = "Show what apply would do: repositories to initialize and backups that are due";

export interface PlanCommandOptions extends GlobalOptions {
  project?: string[];
  now?: string;
  format?: string;
  json?: boolean;
  detailedExitcode?: boolean;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

export function define(program: Command, output: Output, done: (code: number) => void): void {
  program.command("plan").description(description)
    .option("-p, --project <name>", "only this project (repeatable)", collect)
    .option("--now <iso>", "evaluate schedules as if the clock read this time")
    .option("--format <format>", "text or json", "text")
    .option("--json", "same as --format json")
    .option(
      "--detailed-exitcode",
      "exit 0 when there are no changes and 2 when there are (errors keep their own codes)",
    )
    .action(async (_options, command: Command) =>
      done(await run(command.optsWithGlobals<PlanCommandOptions>(), output))
    );
}

/** Reads the observed state and makes the plan (shared with apply). */
export async function preparePlan(
  options: PlanCommandOptions,
  loaded: LoadedConfig,
  store: StateStore,
): Promise<{ plan: Plan; adopted: string[] }> {
  const now = parseNow(options.now) ?? new Date();
  const projects = selectProjects(loaded, options.project);
  const { observed, adopted, warnings } = await observe(loaded, store, projects);
  const plan = makePlan(loaded, observed, now, { projects, generatedAt: new Date() });
  plan.warnings.push(...warnings);
  return { plan, adopted };
}

export async function run(options: PlanCommandOptions, output: Output): Promise<number> {
  const format = options.json ? "json" : options.format ?? "text";
  if (format !== "text" && format !== "json") throw new UsageError(`--format: expected text or json, got "${format}"`);
  parseNow(options.now); // a usage error is reported before the config is read
  const loaded = await load(options);
  selectProjects(loaded, options.project);
  const store = await openStore(options, loaded);
  const { plan } = await preparePlan(options, loaded, store).finally(() => store.close());
  output.stdout(format === "json" ? renderJson(plan) : renderText(plan));
  return options.detailedExitcode && plan.actions.length > 0 ? ExitCode.changes : ExitCode.ok;
}
