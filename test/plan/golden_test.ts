import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { repoRoot } from "../support/cli.ts";
import { goldenPlans } from "../support/golden.ts";

describe("golden plans in plans/", () => {
  it("match what the planner makes of the demo config (refresh with `deno task golden`)", async () => {
    for (const [name, text] of Object.entries(await goldenPlans())) {
      const saved = readFileSync(join(repoRoot, "plans", name), "utf8");
      assert.equal(saved, text, `plans/${name} is stale: run \`deno task golden\` and review the difference`);
    }
  });
});
