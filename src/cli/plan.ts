/** `backupctl plan`: what apply would do now, Terraform-style; optionally saved for `apply FILE`. */
import { mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, isAbsolute, join } from "node:path";
import type { Command } from "commander";
import { preparePlan } from "../apply/prepare.ts";
import { environmentError } from "../environment-errors.ts";
import { ExitCode, UsageError } from "../errors.ts";
import { sealPlan } from "../plan/planfile.ts";
import { colours, renderJson, renderMarkdown, renderText, terminalColours } from "../plan/render.ts";
import { isoSeconds, localTime, machineTimeZone } from "../format/time.ts";
import { formatBytes } from "../format/bytes.ts";
import type { LoadedConfig } from "../config/load.ts";
import { planDocument } from "../plan/document.ts";
import { type GroupSimulation, parseHorizon, renderSimulation, simulateProjects } from "../plan/simulate.ts";
import { isUsable, type ObservedState } from "../plan/types.ts";
import type { StateStore } from "../state/store.ts";
import {
  collect,
  fromInvocationDir,
  type GlobalOptions,
  hostFor,
  load,
  openStore,
  type Output,
  parseNow,
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
  simulate?: string;
}

const formats = ["text", "json", "markdown"];

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
      "--simulate <duration>",
      "also show what each retention policy keeps over this horizon (e.g. 1y): snapshots per rule, the oldest restore " +
        "point, a storage estimate",
    )
    .option(
      "--detailed-exitcode",
      "exit 0 when there are no changes and 2 when there are (errors keep their own codes)",
    )
    .action(async (_options, command: Command) =>
      done(await run(command.optsWithGlobals<PlanCommandOptions>(), output))
    );
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
  const horizonMs = options.simulate === undefined ? undefined : parseHorizon(options.simulate);
  if (options.simulate !== undefined && horizonMs === undefined) {
    throw new UsageError(`--simulate: expected a duration up to 10y such as "1y" or "90d", got "${options.simulate}"`);
  }
  const loaded = await load(options);
  const projects = selectProjects(loaded, options.project);
  // Only --refresh writes the state (the inventory); --out saves a plan that only a writable state can apply.
  const store = await openStore(options, loaded, options.refresh || options.out ? "write" : "read");
  // Decided at the whole second the document records as `now`: `apply FILE` makes the plan again at that instant.
  const now = new Date(isoSeconds(parseNow(options.now) ?? new Date()));
  let simulation: GroupSimulation[] | undefined;
  const { plan } = await preparePlan(loaded, store, { now, host: hostFor(loaded), projects, refresh: options.refresh })
    .then(async (prepared) => {
      if (horizonMs !== undefined) {
        simulation = await simulate(loaded, store, prepared.observed, now, horizonMs, projects);
      }
      return prepared;
    })
    .finally(() => store.close());
  if (options.out) {
    const path = planOutPath(options.out, new Date());
    savePlanFile(path, renderJson(sealPlan(plan)));
    output.stderr(`Saved the plan to ${path}; apply it with \`backupctl apply ${path}\`.\n`);
  }
  const zone = loaded.displayTimeZone ?? machineTimeZone();
  const simulated = simulation && horizonMs !== undefined
    ? renderSimulation(simulation, horizonMs, formatBytes, (iso) => localTime(new Date(iso), zone))
    : "";
  const rendered = format === "json"
    ? simulation ? `${JSON.stringify({ ...planDocument(plan), simulation }, null, 2)}\n` : renderJson(plan)
    : format === "markdown"
    ? renderMarkdown(plan, loaded.displayTimeZone) + (simulated ? `\n\`\`\`text\n${simulated}\`\`\`\n` : "")
    : renderText(plan, colours(terminalColours()), loaded.displayTimeZone) + (simulated ? `\n${simulated}` : "");
  output.stdout(rendered);
  return options.detailedExitcode && plan.actions.length > 0 ? ExitCode.changes : ExitCode.ok;
}

/**
 * Writes a plan file whole or not at all: into a temporary file beside it, renamed over `path` once written, so a full
 * disk or a crash never leaves a truncated plan under the name `apply` reads. A machine fault names the file.
 */
function savePlanFile(path: string, text: string): void {
  const temporary = `${path}.${process.pid}.tmp`;
  try {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(temporary, text);
    renameSync(temporary, path);
  } catch (error) {
    try {
      rmSync(temporary, { force: true });
    } catch {
      // Nothing was written there (Bun reports a read-only folder even for a file that does not exist).
    }
    throw environmentError(error, "cannot save the plan to", path) ?? error;
  }
}

/** The retention simulation of the projects in scope, from the observed inventory's complete snapshots. */
async function simulate(
  loaded: LoadedConfig,
  store: StateStore,
  observed: ObservedState,
  now: Date,
  horizonMs: number,
  projects: string[] | undefined,
): Promise<GroupSimulation[]> {
  const bytes = await store.backupBytes(new Date(now.getTime() - 90 * 86_400_000).toISOString());
  const scope = Object.values(loaded.config.projects).filter((p) => !projects || projects.includes(p.name));
  return simulateProjects(scope, observed.snapshots.filter(isUsable), now, horizonMs, bytes);
}
