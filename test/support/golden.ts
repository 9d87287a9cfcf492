/** The golden plans: the demo config against an empty state at a fixed time, with fixed ids. */
import { join } from "node:path";
import { loadConfig } from "../../src/config/load.ts";
import { plan } from "../../src/plan/planner.ts";
import { renderJson, renderMarkdown } from "../../src/plan/render.ts";
import type { ObservedState } from "../../src/plan/types.ts";
import { repoRoot } from "./cli.ts";

export const emptyState: ObservedState = {
  lineage: "00000000-0000-4000-8000-000000000000",
  serial: 0,
  repositories: {},
  backups: [],
  failures: [],
  snapshots: [],
  retention: [],
  maintenance: [],
  knownProjects: [],
  knownRepositories: [],
  appliedPlans: [],
  partials: [],
};

export async function goldenPlans(): Promise<Record<string, string>> {
  const loaded = await loadConfig(join(repoRoot, "backup.config.ts"));
  const demo = plan(loaded, emptyState, new Date("2026-11-21T10:00:00Z"), {
    generatedAt: new Date("2026-11-21T10:00:00Z"),
    planId: "00000000-0000-4000-8000-000000000001",
  });
  return { "demo.plan.json": renderJson(demo), "demo.plan.md": renderMarkdown(demo, loaded.displayTimeZone) };
}
