/**
 * Saved plans end to end against a real restic repository (issue 16, point 3): `apply PLANFILE` makes the plan again
 * from the config, the state and the file's `now`, and runs the file only when that gives the same actions.
 * - The reproduction: a plan forgetting the older of two snapshots, edited to forget the newest instead and sealed again
 *   with a checksum computed as docs/cli.md describes (sha256 of the canonical JSON of the rest) is refused with exit 5
 *   and restic keeps the newest snapshot; the file as made applies.
 * - What apply itself changes before comparing does not make a good plan stale: a stale project lock the plan saw
 *   (and planned a recover for) is taken over by apply first, and the plan still applies.
 * - What changed since the plan without a new serial does: a process that died holding a lock after the plan was made
 *   is a recover the file lacks (exit 5, the takeover audited, nothing run).
 * Runs under `deno test -A test/e2e/saved_plan_test.ts` and `bun --no-install test ./test/e2e/saved_plan_test.ts`.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { runCli, runTool } from "../support/cli.ts";
import { type DemoDir, makeDemo } from "../support/demo.ts";

interface Action {
  id: string;
  type: string;
  source?: string;
  recover?: string;
  snapshots?: string[];
  approval?: string;
}
interface PlanDocument {
  actions: Action[];
  checksum: string;
  [key: string]: unknown;
}
interface ResticSnapshot {
  id: string;
  time: string;
}

const dayAt = (n: number) => new Date(Date.UTC(2026, 10, 1 + n, 10, 0, 0)).toISOString().replace(".000Z", "Z");

/** JSON with every object's keys sorted and no spaces: what the checksum is computed over (docs/cli.md). */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value !== null && typeof value === "object") {
    return `{${
      Object.keys(value).sort().map((key) =>
        `${JSON.stringify(key)}:${canonical((value as Record<string, unknown>)[key])}`
      )
        .join(",")
    }}`;
  }
  return JSON.stringify(value);
}

/** Seals an edited plan again as anyone can: `sha256:` of the canonical JSON of the document without `checksum`. */
function reseal(document: PlanDocument): PlanDocument {
  const { checksum: _old, ...rest } = document;
  return { ...rest, checksum: `sha256:${createHash("sha256").update(canonical(rest)).digest("hex")}` };
}

/** The pid of a process that has exited (and been reaped). */
async function deadPid(): Promise<number> {
  const proc = spawn("true");
  await new Promise((resolve) => proc.on("close", resolve));
  return proc.pid!;
}

describe("saved plans are made again at apply", () => {
  let demo: DemoDir;
  // From the demo folder: `--out NAME` writes plans/NAME there, and `apply plans/NAME` reads it from there.
  const cli = (args: string[]) => runCli(["--config", demo.config, ...args], { env: demo.env, cwd: demo.dir });
  const planFile = (name: string) => join(demo.dir, "plans", name);
  const snapshots = async () => {
    const result = await runTool("restic", ["--no-cache", "snapshots", "--json", "--tag", "source=app"], {
      env: { RESTIC_REPOSITORY: demo.repository, RESTIC_PASSWORD: demo.env.DEMO_RESTIC_PASSWORD },
    });
    assert.equal(result.code, 0, result.stderr);
    return (JSON.parse(result.stdout) as ResticSnapshot[]).sort((a, b) => a.time.localeCompare(b.time));
  };
  /** A lock file of demo left by a process that is gone, as a kill -9 leaves it. */
  const staleLock = async () => {
    const dir = join(demo.dir, ".backupctl", "locks");
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const holder = {
      pid: await deadPid(),
      host: hostname(),
      command: "apply",
      run_id: null,
      started_at: new Date().toISOString(),
      process_start: null,
    };
    writeFileSync(join(dir, "demo.lock"), JSON.stringify(holder, null, 2) + "\n", { mode: 0o600 });
    return holder;
  };

  before(async () => {
    demo = makeDemo();
    writeFileSync(
      demo.config,
      `import { defineConfig, env, restic, sqlite } from "backupctl";
export default defineConfig({
  timezone: "UTC",
  repositories: { local: restic({ url: ".backupctl/restic-demo", password: env("DEMO_RESTIC_PASSWORD") }) },
  projects: {
    demo: { schedule: "0 3 * * *", sources: [sqlite({ path: "demo/app.db" })], repositories: ["local"], retention: { last: 1 } },
  },
});
`,
    );
    for (const day of [1, 2]) {
      const applied = await cli(["apply", "--now", dayAt(day)]);
      assert.equal(applied.code, 0, applied.stdout + applied.stderr);
    }
  });
  after(() => demo.cleanup());

  it("refuses a plan whose forget was swapped to the newest snapshot and sealed again (exit 5); the real one applies", async () => {
    const [older, newest] = await snapshots();
    assert.ok(older && newest, "two snapshots to start with");
    const saved = await cli(["plan", "--now", dayAt(3), "--out", "review.json"]);
    assert.equal(saved.code, 0, saved.stderr);
    assert.match(saved.stderr, /Saved the plan to .*plans\/review\.json/);
    const original = readFileSync(planFile("review.json"), "utf8");
    const document = JSON.parse(original) as PlanDocument;
    const forget = document.actions.find((a) => a.type === "forget");
    assert.ok(forget, JSON.stringify(document.actions));
    assert.deepEqual([forget.snapshots, forget.approval], [[older.id], "routine"], "last 1 forgets the older one");

    forget.snapshots = [newest.id];
    writeFileSync(planFile("review.json"), JSON.stringify(reseal(document), null, 2) + "\n");
    const refused = await cli(["apply", "plans/review.json", "--now", dayAt(3)]);
    assert.equal(refused.code, 5, refused.stdout + refused.stderr);
    assert.match(
      refused.stderr,
      new RegExp(
        `plans/review\\.json: the file's actions differ from what the config and state give: ${forget.id} \\(forget ` +
          `1 snapshot of app in local\\) differs in snapshots \\(the file names ${newest.id} where the config and ` +
          `state name ${older.id}\\)`,
      ),
    );
    assert.match(refused.stderr, /run `backupctl plan --out` again and review the new plan/);
    assert.doesNotMatch(refused.stdout, /forget|backup demo/, "nothing ran");
    assert.deepEqual((await snapshots()).map((s) => s.id), [older.id, newest.id], "restic still has both");

    writeFileSync(planFile("review.json"), original);
    const applied = await cli(["apply", "plans/review.json", "--now", dayAt(3)]);
    assert.equal(applied.code, 0, applied.stdout + applied.stderr);
    assert.match(applied.stdout, /- forget 1 snapshot of demo\/app in local: done/);
    const left = (await snapshots()).map((s) => s.id);
    assert.equal(left.length, 2, "the day-3 backup and the newest of before");
    assert.ok(left.includes(newest.id) && !left.includes(older.id), "the older one is forgotten, the newest kept");
  });

  it("applies a plan that saw a stale lock: apply takes the lock over first, and the plan is still the same", async () => {
    const dead = await staleLock();
    const saved = await cli(["plan", "--now", dayAt(4), "--out", "with-lock.json"]);
    assert.equal(saved.code, 0, saved.stderr);
    const document = JSON.parse(readFileSync(planFile("with-lock.json"), "utf8")) as PlanDocument;
    assert.equal(document.actions[0].recover, "stale_lock", JSON.stringify(document.actions));

    const applied = await cli(["apply", "plans/with-lock.json", "--now", dayAt(4)]);
    assert.equal(applied.code, 0, applied.stdout + applied.stderr);
    assert.match(applied.stdout, new RegExp(`~ recover: took over the stale lock of demo: apply \\(pid ${dead.pid}`));
    assert.match(applied.stdout, /~ recover: the lock of demo is no longer stale \(taken over or released\)/);
    assert.match(applied.stdout, /\+ backup demo\/app → local: snapshot [0-9a-f]{8}/);
    assert.ok(!existsSync(join(demo.dir, ".backupctl", "locks", "demo.lock")), "the lock is released");
  });

  it("refuses a plan made before a process died holding a lock (exit 5): a recover the file lacks", async () => {
    const saved = await cli(["plan", "--now", dayAt(5), "--out", "before-crash.json"]);
    assert.equal(saved.code, 0, saved.stderr);
    const before = (await snapshots()).map((s) => s.id);
    const dead = await staleLock();

    const refused = await cli(["apply", "plans/before-crash.json", "--now", dayAt(5)]);
    assert.equal(refused.code, 5, refused.stdout + refused.stderr);
    assert.match(
      refused.stderr,
      /before-crash\.json: the file's actions differ from what the config and state give: the file has a1 \(backup app → local\) where the config and state give a1 \(recover: remove the stale lock of demo\)/,
    );
    assert.match(refused.stdout, new RegExp(`~ recover: took over the stale lock of demo: apply \\(pid ${dead.pid}`));
    assert.deepEqual((await snapshots()).map((s) => s.id), before, "nothing ran");

    const again = await cli(["plan", "--now", dayAt(5), "--out", "after-crash.json"]);
    assert.equal(again.code, 0, again.stderr);
    const applied = await cli(["apply", "plans/after-crash.json", "--now", dayAt(5)]);
    assert.equal(applied.code, 0, applied.stdout + applied.stderr);
    assert.match(applied.stdout, /\+ backup demo\/app → local: snapshot [0-9a-f]{8}/);
  });
});
