/**
 * `plan --simulate` (issue 22, point 5) against what restic really keeps: a project backed up once, its retention
 * simulated over 12 days, then the same 12 days replayed as real applies with `--now` at each slot of the schedule —
 * the snapshots restic holds at the end are as many as the simulation says, from the same oldest restore point, and
 * each rule keeps as many as it said.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { repoRoot, runCli, runTool } from "../support/cli.ts";

const slot = (day: number) => `2026-11-${String(day).padStart(2, "0")}T03:00:00Z`;

interface Simulated {
  project: string;
  source: string;
  repository: string;
  backups: number;
  points: { label: string; kept: number; byRule: Record<string, number>; oldest: string | null }[];
}

describe("plan --simulate against restic replaying the same schedule", () => {
  let dir = "";
  let config = "";
  const env = { SIMULATE_RESTIC_PASSWORD: "simulate-restic-password-4711" };
  const cli = (args: string[]) => runCli(["--config", config, ...args], { env, timeoutMs: 120_000 });

  before(() => {
    dir = mkdtempSync(join(tmpdir(), "backupctl-simulate-"));
    config = join(dir, "backup.config.ts");
    writeFileSync(
      config,
      `import { command, defineConfig, env, restic } from ${JSON.stringify(join(repoRoot, "src", "mod.ts"))};
export default defineConfig({
  repositories: { local: restic({ url: ".backupctl/restic", password: env("SIMULATE_RESTIC_PASSWORD") }) },
  projects: {
    app: {
      schedule: "0 3 * * *",
      sources: [command({ name: "export", filename: "export.txt", run: "date +%s%N" })],
      repositories: ["local"],
      retention: { last: 2, daily: 3, weekly: 2 },
    },
  },
});
`,
    );
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("keeps what restic keeps after the same applies", async () => {
    const first = await cli(["apply", "--now", slot(1)]);
    assert.equal(first.code, 0, first.stdout + first.stderr);
    const planned = await cli(["plan", "--json", "--now", "2026-11-01T03:00:30Z", "--simulate", "12d"]);
    assert.equal(planned.code, 0, planned.stderr);
    const [group] = (JSON.parse(planned.stdout) as { simulation: Simulated[] }).simulation;
    assert.equal(group.backups, 12);
    const end = group.points.at(-1)!;
    assert.equal(end.label, "after 12d");
    assert.deepEqual(group.points.map((p) => p.label), ["now", "after 7d", "after 12d"]);
    assert.equal(group.points[0].kept, 1);
    const text = await cli(["plan", "--now", "2026-11-01T03:00:30Z", "--simulate", "12d"]);
    assert.match(text.stdout, /Retention simulation over 12d/);
    assert.match(text.stdout, new RegExp(`after 12d +${end.kept} kept \\(`));

    for (let day = 2; day <= 13; day++) {
      const applied = await cli(["apply", "--now", slot(day)]);
      assert.equal(applied.code, 0, `day ${day}: ${applied.stdout}${applied.stderr}`);
    }
    const listed = await runTool("restic", ["--no-cache", "snapshots", "--json"], {
      env: { RESTIC_REPOSITORY: join(dir, ".backupctl", "restic"), RESTIC_PASSWORD: env.SIMULATE_RESTIC_PASSWORD },
    });
    assert.equal(listed.code, 0, listed.stderr);
    const times = (JSON.parse(listed.stdout) as { time: string }[]).map((s) => Date.parse(s.time)).sort();
    assert.equal(times.length, end.kept, `restic holds ${times.length}, the simulation said ${end.kept}`);
    assert.equal(new Date(times[0]).toISOString(), new Date(end.oldest!).toISOString(), "the oldest restore point");
    // What each rule keeps, as retention reports it for what restic holds now.
    const kept = await cli(["plan", "--json", "--now", "2026-11-13T03:00:30Z", "--simulate", "1d"]);
    const now = (JSON.parse(kept.stdout) as { simulation: Simulated[] }).simulation[0].points[0];
    assert.equal(now.kept, end.kept);
    assert.deepEqual(now.byRule, end.byRule);
  });

  it("refuses a horizon that is not a duration, or longer than 10 years", async () => {
    for (const horizon of ["forever", "11y", "0d"]) {
      const result = await cli(["plan", "--simulate", horizon]);
      assert.equal(result.code, 64, horizon);
      assert.match(result.stderr, /--simulate: expected a duration up to 10y/);
    }
  });
});
