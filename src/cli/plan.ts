/** `backupctl plan`: what apply would do now, Terraform-style; optionally saved for `apply FILE`. */
import { randomUUID } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, isAbsolute, join } from "node:path";
import type { Command } from "commander";
import type { LoadedConfig } from "../config/load.ts";
import { ExitCode, UsageError } from "../errors.ts";
import { sealPlan } from "../plan/planfile.ts";
import { type OnDemand, plan as makePlan } from "../plan/planner.ts";
import { colours, renderJson, renderMarkdown, renderText, terminalColours } from "../plan/render.ts";
import { isoSeconds } from "../format/time.ts";
import type { Leftovers, ObservedState, Plan } from "../plan/types.ts";
import type { StateStore } from "../state/store.ts";
import { createClock } from "../clock.ts";
import {
  fromInvocationDir,
  type GlobalOptions,
  load,
  observe,
  openStore,
  type Output,
  parseNow,
  repositoriesInScope,
  selectProjects,
} from "./context.ts";

export const description = "Show what apply would do: initializations, backups, deletions by retention, maintenance";

export interface PlanCommandOptions extends GlobalOptions {
  project?: string[];
  now?: string;
  format?: string;
  json?: boolean;
  out?: string | boolean;
  detailedExitcode?: boolean;
  /** Reload the snapshot inventory of the repositories in scope from restic first (apply always does). */
  refresh?: boolean;
}

const formats = ["text", "json", "markdown"];
export const collect = (value: string, previous: string[] = []) => [...previous, value];

export function define(program: Command, output: Output, done: (code: number) => void): void {
  program.command("plan").description(description)
    .option("-p, --project <name>", "only this project (repeatable)", collect)
    .option("--now <iso>", "evaluate schedules as if the clock read this time")
    .option("--format <format>", "text, json or markdown (a pull-request comment)", "text")
    .option("--json", "same as --format json")
    .option(
      "--out [file]",
      "also save the plan for `apply FILE` (a bare name goes to plans/; default plans/plan-<time>.json)",
    )
    .option("--refresh", "reload the snapshot inventory from the repositories first (apply always does)")
    .option(
      "--detailed-exitcode",
      "exit 0 when there are no changes and 2 when there are (errors keep their own codes)",
    )
    .action(async (_options, command: Command) =>
      done(await run(command.optsWithGlobals<PlanCommandOptions>(), output))
    );
}

/** Reads the observed state and makes the plan (shared with apply, watch, and `backup`/`forget` with `onDemand`). */
export async function preparePlan(
  options: PlanCommandOptions,
  loaded: LoadedConfig,
  store: StateStore,
  onDemand?: OnDemand,
): Promise<{ plan: Plan; adopted: string[] }> {
  const now = parseNow(options.now) ?? new Date();
  const projects = selectProjects(loaded, options.project);
  let { observed, adopted, warnings } = await observe(loaded, store, projects);
  if (options.refresh) {
    // Snapshots forgotten or added outside backupctl must not make the plan wrong (a forget of an id that is gone,
    // a copy that is missing): ask the repositories what they hold now.
    const names = repositoriesInScope(loaded, projects).filter((name) => observed.repositories[name]?.initialized);
    const context = { loaded, store, clock: createClock(now), out: (line: string) => warnings.push(line.trim()) };
    const { refreshInventory } = await import("../apply/executor.ts");
    for (const name of names) await refreshInventory(null, name, undefined, context);
    const again = await observe(loaded, store, projects);
    observed = again.observed;
    adopted = [...new Set([...adopted, ...again.adopted])];
    warnings = [...warnings, ...again.warnings];
  }
  const plan = makePlan(loaded, observed, now, { projects, generatedAt: new Date(), planId: randomUUID(), onDemand });
  plan.warnings.push(...warnings);
  return { plan, adopted };
}

/**
 * The plan a saved plan file must hold: made again by the planner from the present config and state, observed as
 * `plan` observes them (dead runs, leftovers, repositories probed) but not refreshed, at the file's `now`, for its
 * projects, with its id. Writes nothing. `takenOver`: stale project locks this apply has just taken over, which `plan`
 * saw as leftovers (and planned a recover for).
 */
export async function rederivePlan(
  saved: Plan,
  loaded: LoadedConfig,
  store: StateStore,
  takenOver: Leftovers["staleLocks"],
): Promise<{ plan: Plan; observed: ObservedState; adopted: string[] }> {
  const { observed, adopted } = await observe(loaded, store, saved.projects);
  if (takenOver.length > 0) {
    const leftovers = observed.leftovers ??= { interruptedRuns: [], staleLocks: [], files: [] };
    const lockFile = (lock: { project: string }) => `${lock.project}.lock`;
    const seen = new Set(leftovers.staleLocks.map((lock) => lock.project));
    // In the order findLeftovers lists them: by lock file name.
    leftovers.staleLocks = [...leftovers.staleLocks, ...takenOver.filter((lock) => !seen.has(lock.project))]
      .sort((a, b) => (lockFile(a) < lockFile(b) ? -1 : lockFile(a) > lockFile(b) ? 1 : 0));
  }
  // generated_at decides nothing; the plan id, the projects and `now` are the file's.
  const plan = makePlan(loaded, observed, new Date(saved.now), {
    projects: saved.projects,
    generatedAt: new Date(),
    planId: saved.plan_id,
  });
  return { plan, observed, adopted };
}

/** Where `--out` writes: a bare file name goes to plans/ in the current folder. */
export function planOutPath(out: string | true, now: Date): string {
  if (out === true) return fromInvocationDir(join("plans", `plan-${now.toISOString().replace(/[:.]/g, "-")}.json`));
  if (isAbsolute(out) || out.includes("/")) return fromInvocationDir(out);
  return fromInvocationDir(join("plans", out));
}

export async function run(options: PlanCommandOptions, output: Output): Promise<number> {
  const format = options.json ? "json" : options.format ?? "text";
  if (!formats.includes(format)) throw new UsageError(`--format: expected text, json or markdown, got "${format}"`);
  parseNow(options.now); // a usage error is reported before the config is read
  const loaded = await load(options);
  selectProjects(loaded, options.project);
  // Only --refresh writes the state (the inventory); --out saves a plan that only a writable state can apply.
  const store = await openStore(options, loaded, options.refresh || options.out ? "write" : "read");
  // Decided at the whole second the document records as `now`: `apply FILE` makes the plan again at that instant.
  const now = isoSeconds(parseNow(options.now) ?? new Date());
  const { plan } = await preparePlan({ ...options, now }, loaded, store).finally(() => store.close());
  if (options.out) {
    const path = planOutPath(options.out, new Date());
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, renderJson(sealPlan(plan)));
    output.stderr(`Saved the plan to ${path}; apply it with \`backupctl apply ${path}\`.\n`);
  }
  const rendered = format === "json"
    ? renderJson(plan)
    : format === "markdown"
    ? renderMarkdown(plan, loaded.displayTimeZone)
    : renderText(plan, colours(terminalColours()), loaded.displayTimeZone);
  output.stdout(rendered);
  return options.detailedExitcode && plan.actions.length > 0 ? ExitCode.changes : ExitCode.ok;
}
