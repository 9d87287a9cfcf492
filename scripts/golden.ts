/**
 * Writes the golden plans in plans/: the demo config planned against an empty state at a fixed time, as JSON and
 * as the pull-request markdown. test/plan/golden_test.ts fails when they are stale; `deno task golden` refreshes.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { goldenPlans } from "../test/support/golden.ts";
import { root } from "./runtimes.ts";

for (const [name, text] of Object.entries(await goldenPlans())) {
  writeFileSync(join(root, "plans", name), text);
  console.log(`wrote plans/${name}`);
}
