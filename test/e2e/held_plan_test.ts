/**
 * Saved plans whose deletions were held (issue 18, point 5), end to end with real restic: `apply PLANFILE` off a
 * terminal runs everything but the deletions that need approval, holds those (exit 0, or 2 with
 * `--detailed-exitcode`) and names the command that runs them; `apply PLANFILE --auto-approve` then forgets exactly
 * those snapshots and nothing else of the plan again, and a third time is refused (exit 5). A held forget that no
 * longer matches the state (its snapshots forgotten by another apply since) is refused (exit 5).
 * Runs under `deno test -A test/e2e/held_plan_test.ts` and `bun --no-install test ./test/e2e/held_plan_test.ts`.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { runCli, runTool } from "../support/cli.ts";
import { type DemoDir, makeDemo } from "../support/demo.ts";

const dayAt = (n: number) => new Date(Date.UTC(2026, 10, 1 + n, 10, 0, 0)).toISOString().replace(".000Z", "Z");

function config(last: number): string {
  return `import { defineConfig, env, restic, sqlite } from "backupctl";
export default defineConfig({
  timezone: "UTC",
  repositories: { local: restic({ url: ".backupctl/restic-demo", password: env("DEMO_RESTIC_PASSWORD") }) },
  projects: {
    demo: { schedule: "0 3 * * *", sources: [sqlite({ path: "demo/app.db" })], repositories: ["local"], retention: { last: ${last} } },
  },
});
`;
}

describe("a saved plan whose deletions were held", () => {
  let demo: DemoDir;
  const cli = (args: string[]) => runCli(["--config", demo.config, ...args], { env: demo.env, cwd: demo.dir });
  const snapshots = async () => {
    const result = await runTool("restic", ["--no-cache", "snapshots", "--json", "--tag", "source=app"], {
      env: { RESTIC_REPOSITORY: demo.repository, RESTIC_PASSWORD: demo.env.DEMO_RESTIC_PASSWORD },
    });
    assert.equal(result.code, 0, result.stderr);
    return (JSON.parse(result.stdout) as { id: string; time: string }[])
      .sort((a, b) => a.time.localeCompare(b.time)).map((s) => s.id);
  };
  /** Backs up on days `from`..`to` under `last: 9` (nothing forgotten), then shrinks retention to `last: 1`. */
  const history = async (from: number, to: number) => {
    writeFileSync(demo.config, config(9));
    for (let day = from; day <= to; day++) {
      const applied = await cli(["apply", "--now", dayAt(day)]);
      assert.equal(applied.code, 0, applied.stdout + applied.stderr);
    }
    writeFileSync(demo.config, config(1));
  };

  before(() => {
    demo = makeDemo();
  });
  after(() => demo.cleanup());

  it("holds the deletions (exit 2 with --detailed-exitcode), then forgets exactly them with --auto-approve, once", async () => {
    await history(1, 3);
    const [first, second, third] = await snapshots();
    assert.ok(first && second && third, "three snapshots to start with");
    const saved = await cli(["plan", "--now", dayAt(4), "--out", "held.json"]);
    assert.equal(saved.code, 0, saved.stderr);

    const held = await cli(["apply", "plans/held.json", "--now", dayAt(4), "--detailed-exitcode"]);
    assert.equal(held.code, 2, held.stdout + held.stderr);
    assert.match(held.stdout, /\+ backup demo\/app → local: snapshot [0-9a-f]{8}/);
    assert.match(held.stdout, /! HELD: forget 2 snapshots of demo\/app in local needs approval: retention changed/);
    assert.match(held.stderr, /run `backupctl apply plans\/held\.json --auto-approve`/);
    const afterHeld = await snapshots();
    assert.equal(afterHeld.length, 4, "the day-4 backup ran, nothing was forgotten");
    const fourth = afterHeld[3];

    // Off a terminal without --auto-approve: held again (exit 0 without the flag), still runnable.
    const again = await cli(["apply", "plans/held.json", "--now", dayAt(4)]);
    assert.equal(again.code, 0, again.stdout + again.stderr);
    assert.match(again.stdout, /plans\/held\.json was applied except for deletions held for approval/);
    assert.match(again.stdout, /! HELD: forget 2 snapshots of demo\/app in local/);
    assert.doesNotMatch(again.stdout, /\+ backup/, "the backup does not run twice");

    const approved = await cli(["apply", "plans/held.json", "--now", dayAt(4), "--auto-approve"]);
    assert.equal(approved.code, 0, approved.stdout + approved.stderr);
    assert.match(approved.stdout, /- forget 2 snapshots of demo\/app in local: done/);
    assert.doesNotMatch(approved.stdout, /\+ backup|prune local: done/, "only the held forget runs");
    assert.deepEqual(await snapshots(), [third, fourth], "exactly the two held snapshots are gone");

    const twice = await cli(["apply", "plans/held.json", "--now", dayAt(4), "--auto-approve"]);
    assert.equal(twice.code, 5, twice.stdout + twice.stderr);
    assert.match(twice.stderr, /this plan was already applied/);
    assert.deepEqual(await snapshots(), [third, fourth]);

    // The group now records last 1: the forget of the third snapshot is routine.
    const next = await cli(["plan", "--now", dayAt(4), "--json"]);
    const forget = (JSON.parse(next.stdout) as { actions: { type: string; approval?: string; snapshots?: string[] }[] })
      .actions.find((a) => a.type === "forget");
    assert.deepEqual([forget?.snapshots, forget?.approval], [[third], "routine"]);
  });

  it("refuses a held forget that no longer matches the state (exit 5): its snapshots were forgotten since", async () => {
    await history(5, 7);
    const saved = await cli(["plan", "--now", dayAt(8), "--out", "stale.json"]);
    assert.equal(saved.code, 0, saved.stderr);
    const held = await cli(["apply", "plans/stale.json", "--now", dayAt(8)]);
    assert.equal(held.code, 0, held.stdout + held.stderr);
    assert.match(held.stdout, /! HELD: forget/);
    // Another apply, approved, forgets them (and more) first.
    const other = await cli(["apply", "--now", dayAt(8), "--auto-approve"]);
    assert.equal(other.code, 0, other.stdout + other.stderr);
    const left = await snapshots();

    const refused = await cli(["apply", "plans/stale.json", "--now", dayAt(8), "--auto-approve"]);
    assert.equal(refused.code, 5, refused.stdout + refused.stderr);
    assert.match(
      refused.stderr,
      /plans\/stale\.json: the held a\d+ \(forget \d+ snapshots of app in local \(needs approval\)\) no longer matches what the config and state give: retention does not forget [0-9a-f]{64}/,
    );
    assert.deepEqual(await snapshots(), left, "nothing ran");
  });
});
