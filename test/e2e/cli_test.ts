/**
 * End to end: the real CLI (spawned with the runtime running the tests), real restic and real sqlite3, on a copy
 * of the demo config that lives outside the repository (so its `import "backupctl"` must resolve from anywhere).
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { repoRoot, runCli, runTool } from "../support/cli.ts";
import { type DemoDir, makeDemo } from "../support/demo.ts";

const day1 = "2026-11-21T10:00:00Z";
const day2 = "2026-11-22T10:00:00Z";

interface PlanJson {
  format_version: number;
  config_fingerprint: string;
  state: { lineage: string; serial: number };
  actions: {
    id: string;
    type: string;
    project?: string;
    source?: string;
    repository: string;
    reason: string;
    destructive: boolean;
  }[];
  summary: Record<string, number>;
}

interface SnapshotJson {
  id: string;
  time: string;
  project: string;
  source: string;
  run_id: string;
  tags: string[];
  repository: string;
}

describe("backupctl end to end with restic and sqlite3", () => {
  let demo: DemoDir;
  const cli = (args: string[], env: Record<string, string> = {}) =>
    runCli(["--config", demo.config, ...args], { env: { ...demo.env, ...env } });
  const restic = (args: string[]) =>
    runTool("restic", ["--no-cache", ...args], {
      env: { RESTIC_REPOSITORY: demo.repository, RESTIC_PASSWORD: demo.env.DEMO_RESTIC_PASSWORD },
    });

  before(() => {
    demo = makeDemo();
  });
  after(() => demo.cleanup());

  it("plan shows the repository to initialize and both sources to back up", async () => {
    const result = await cli(["plan", "--now", day1, "--format", "json"]);
    assert.equal(result.code, 0, result.stderr);
    const plan = JSON.parse(result.stdout) as PlanJson;
    assert.equal(plan.format_version, 1);
    assert.match(plan.config_fingerprint, /^sha256:[0-9a-f]{64}$/);
    assert.equal(plan.state.serial, 0);
    assert.deepEqual(
      plan.actions.map((a) => [a.id, a.type, a.source ?? null, a.repository, a.reason]),
      [
        ["a1", "init", null, "local", "repository not initialized"],
        ["a2", "backup", "app", "local", "never backed up"],
        ["a3", "backup", "uploads", "local", "never backed up"],
      ],
    );
    assert.deepEqual(plan.summary, { backup: 2, copy: 0, init: 1, forget: 0, prune: 0, check: 0, verify: 0 });

    const text = await cli(["plan", "--now", day1]);
    assert.match(text.stdout, /\+ init local/);
    assert.match(text.stdout, /Plan: 2 to back up, 0 to copy, 1 to initialize, 0 snapshots to forget, 0 checks\.\n$/);
    const detailed = await cli(["plan", "--now", day1, "--detailed-exitcode"]);
    assert.equal(detailed.code, 2);
    assert.equal(existsSync(demo.repository), false, "plan must not create the repository");
  });

  it("apply initializes the repository and backs up both sources", async () => {
    const result = await cli(["apply", "--now", day1]);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.match(result.stdout, /\+ init local: created/);
    assert.match(result.stdout, /Apply complete: 3 succeeded, 0 failed\./);
    assert.ok(existsSync(join(demo.repository, "config")), "restic repository exists");
    const stateDir = join(demo.dir, ".backupctl");
    assert.equal(statSync(stateDir).mode & 0o777, 0o700);
    assert.equal(statSync(join(stateDir, "state.db")).mode & 0o777, 0o600);
    for (const file of readdirSync(stateDir).filter((name) => name.startsWith("state.db"))) {
      const bytes = readFileSync(join(stateDir, file)).toString("latin1");
      assert.ok(!bytes.includes(demo.env.DEMO_RESTIC_PASSWORD), `${file} must not hold the repository password`);
    }
    assert.ok(!(result.stdout + result.stderr).includes(demo.env.DEMO_RESTIC_PASSWORD));
  });

  it("snapshots carry the backupctl tags and the --now time, in restic and in the inventory", async () => {
    const listed = await restic(["snapshots", "--json"]);
    assert.equal(listed.code, 0, listed.stderr);
    const inRestic = JSON.parse(listed.stdout) as { id: string; time: string; tags: string[]; hostname: string }[];
    assert.equal(inRestic.length, 2);
    const runTags = new Set(inRestic.map((s) => s.tags.find((t) => t.startsWith("run="))));
    assert.equal(runTags.size, 1, "both snapshots belong to one run");
    for (const source of ["app", "uploads"]) {
      const snapshot = inRestic.find((s) => s.tags.includes(`source=${source}`));
      assert.ok(snapshot, `snapshot of ${source}`);
      assert.ok(snapshot.tags.includes("backupctl") && snapshot.tags.includes("project=demo"), snapshot.tags.join(","));
      assert.ok(Math.abs(Date.parse(snapshot.time) - Date.parse(day1)) < 60_000, `time ${snapshot.time} near ${day1}`);
    }

    const result = await cli(["snapshots", "--json"]);
    assert.equal(result.code, 0, result.stderr);
    const inventory = JSON.parse(result.stdout) as SnapshotJson[];
    assert.deepEqual(inventory.map((s) => s.id).sort(), inRestic.map((s) => s.id).sort());
    assert.deepEqual(inventory.map((s) => s.source).sort(), ["app", "uploads"]);
    const app = inventory.find((s) => s.source === "app") as SnapshotJson & { size: number | null };
    assert.ok(app.size !== null && app.size > 1000, `the dump's size is recorded (got ${app.size})`);
    assert.ok(
      inventory.every((s) =>
        s.project === "demo" && s.repository === "local" && /^\d{8}T\d{6}Z-[0-9a-f]{6}$/.test(s.run_id)
      ),
    );

    const table = await cli(["snapshots", "--project", "demo"]);
    assert.match(table.stdout, /^ID\s+TIME\s+REPOSITORY\s+PROJECT\s+SOURCE\s+SIZE/m);
  });

  it("the SQLite dump restores to the same rows, and excluded files are absent", async () => {
    const dump = await restic(["dump", "latest", "/app.sql", "--tag", "source=app"]);
    assert.equal(dump.code, 0, dump.stderr);
    const restored = join(demo.dir, "restored.db");
    const load = await runTool("sqlite3", [restored], { input: dump.stdout });
    assert.equal(load.code, 0, load.stderr);
    const query = "SELECT count(*), sum(length(name)) FROM customers;";
    const original = await runTool("sqlite3", [demo.database, query]);
    const copy = await runTool("sqlite3", [restored, query]);
    assert.equal(copy.stdout, original.stdout);
    assert.match(original.stdout, /^500\|/);

    const files = await restic(["ls", "latest", "--tag", "source=uploads"]);
    assert.match(files.stdout, /invoice\.txt/);
    assert.doesNotMatch(files.stdout, /scratch\.tmp/);
  });

  it("a second plan at the same time says no changes", async () => {
    const result = await cli(["plan", "--now", day1, "--detailed-exitcode"]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(
      result.stdout,
      /^No changes\. Backups are up to date\.\nNext due: demo at 2026-11-22 03:00:00\+00:00 \(in 17h\)\.\n$/,
    );
    const json = JSON.parse((await cli(["plan", "--now", day1, "--json"])).stdout) as PlanJson;
    assert.equal(json.actions.length, 0);
    assert.equal(json.state.serial, 1, "the apply bumped the serial");
  });

  it("a day later the backup is due again", async () => {
    const result = await cli(["plan", "--now", day2, "--format", "json"]);
    const plan = JSON.parse(result.stdout) as PlanJson;
    assert.deepEqual(plan.actions.map((a) => [a.type, a.source, a.reason]), [
      ["backup", "app", "due since 2026-11-22T03:00:00Z (0 3 * * *)"],
      ["backup", "uploads", "due since 2026-11-22T03:00:00Z (0 3 * * *)"],
    ]);
  });

  it("status reports the last success and the next due time", async () => {
    const result = await cli(["status", "--json", "--now", day1]);
    assert.equal(result.code, 0, result.stderr);
    const status = JSON.parse(result.stdout) as {
      projects: {
        project: string;
        last_success: string;
        due: boolean;
        next_due: string;
        snapshots: Record<string, { count: number }>;
      }[];
    };
    const [demoStatus] = status.projects;
    assert.equal(demoStatus.project, "demo");
    assert.equal(demoStatus.due, false);
    assert.equal(demoStatus.next_due, "2026-11-22T03:00:00Z");
    assert.equal(demoStatus.snapshots.local.count, 2);
    assert.ok(Math.abs(Date.parse(demoStatus.last_success) - Date.parse(day1)) < 60_000);
    const later = JSON.parse((await cli(["status", "--json", "--now", day2])).stdout) as typeof status;
    assert.equal(later.projects[0].due, true);
  });

  it("a wrong repository password fails with a clear message, exit 1, and never prints the password", async () => {
    const wrong = "not-the-password-93x7";
    const result = await cli(["apply", "--now", day2], { DEMO_RESTIC_PASSWORD: wrong });
    assert.equal(result.code, 1, result.stdout + result.stderr);
    const output = result.stdout + result.stderr;
    assert.match(output, /wrong password/i);
    assert.match(output, /check env\("DEMO_RESTIC_PASSWORD"\)/);
    assert.ok(!output.includes(wrong), "the password must not be printed");
    assert.doesNotMatch(output, /^\s+at /m, "no stack trace");
    const listed = await restic(["snapshots", "--json"]);
    assert.equal((JSON.parse(listed.stdout) as unknown[]).length, 2, "no snapshot was added");
  });

  it("a failed backup keeps the project due and leaves no snapshot behind", async () => {
    writeFileSync(demo.database, "this is not a database");
    const result = await cli(["apply", "--now", day2]);
    assert.equal(result.code, 1);
    assert.match(result.stdout, /✗ backup demo\/app → local failed: source app: .*app\.db is not an SQLite database/);
    assert.match(result.stdout, /\+ backup demo\/uploads → local: snapshot [0-9a-f]{8}/);
    const listed = JSON.parse((await restic(["snapshots", "--json"])).stdout) as { tags: string[] }[];
    assert.equal(listed.filter((s) => s.tags.includes("source=app")).length, 1, "no new app snapshot");
    const plan = JSON.parse((await cli(["plan", "--now", day2, "--json"])).stdout) as PlanJson;
    assert.deepEqual(plan.actions.map((a) => [a.source, a.reason.replace(/at \S+$/, "at …")]), [
      ["app", "due since 2026-11-22T03:00:00Z (0 3 * * *); last attempt failed at …"],
    ]);
  });
});

describe("backupctl command-line errors", () => {
  it("an invalid config exits 3 naming each path, without a stack trace", async () => {
    const demo = makeDemo();
    try {
      writeFileSync(
        demo.config,
        `import { defineConfig, env, restic, sqlite } from "backupctl";
export default defineConfig({
  repositories: { local: restic({ url: "r", password: env("P") }) },
  projects: { shop: { schedule: "0 25 * * *", sources: [sqlite({ path: "a.db", port: 1 } as never)], repositories: ["lokal"], retention: { daily: 7 } } },
});
`,
      );
      for (const command of ["validate", "plan", "apply", "status"]) {
        const result = await runCli(["--config", demo.config, command]);
        assert.equal(result.code, 3, `${command}: ${result.stderr}`);
        assert.match(result.stderr, /projects\.shop\.schedule: invalid cron expression "0 25 \* \* \*"/);
        assert.match(result.stderr, /projects\.shop\.sources\[0\]\.port: unknown key "port"/);
        assert.match(
          result.stderr,
          /projects\.shop\.repositories\[0\]: unknown repository "lokal"; did you mean "local"\?/,
        );
        assert.doesNotMatch(result.stderr, /^\s+at /m);
      }
      assert.equal(existsSync(join(demo.dir, ".backupctl")), false, "nothing written to the state dir");
      const debug = await runCli(["--config", demo.config, "validate", "--debug"]);
      assert.equal(debug.code, 3);
      assert.match(debug.stderr, /^\s+at /m, "--debug shows the stack");
    } finally {
      demo.cleanup();
    }
  });

  it("a missing config file exits 3 and says how to create one", async () => {
    const result = await runCli(["--config", "/nonexistent/backup.config.ts", "plan"]);
    assert.equal(result.code, 3);
    assert.match(result.stderr, /config file not found: create one with `backupctl init`/);
  });

  it("validate --secrets lists missing secrets by name only", async () => {
    const demo = makeDemo();
    try {
      const missing = await runCli(["--config", demo.config, "validate", "--secrets"], {
        env: { DEMO_RESTIC_PASSWORD: undefined },
      });
      assert.equal(missing.code, 3);
      assert.match(missing.stderr, /repositories\.local\.password: secret env\("DEMO_RESTIC_PASSWORD"\) is not set/);
      const present = await runCli(["--config", demo.config, "validate", "--secrets"], { env: demo.env });
      assert.equal(present.code, 0, present.stderr);
      assert.match(present.stdout, /Configuration valid: 1 project, 2 sources, 1 repository, all secrets resolved\./);
      assert.ok(!present.stdout.includes(demo.env.DEMO_RESTIC_PASSWORD));
    } finally {
      demo.cleanup();
    }
  });

  it("usage errors exit 64; --help and --version exit 0", async () => {
    assert.equal((await runCli(["plan", "--no-such-flag"])).code, 64);
    assert.equal((await runCli(["frobnicate"])).code, 64);
    const badNow = await runCli(["--config", "/nonexistent.ts", "plan", "--now", "yesterday"]);
    assert.equal(badNow.code, 64);
    assert.match(badNow.stderr, /--now: expected an ISO-8601 time/);
    const help = await runCli(["--help"]);
    assert.equal(help.code, 0);
    for (const command of ["init", "validate", "plan", "apply", "status", "snapshots"]) {
      assert.match(help.stdout, new RegExp(`\\n  ${command}\\b`));
    }
    assert.match(help.stdout, /64\s+usage error/);
    const version = await runCli(["--version"]);
    assert.equal(version.code, 0);
    assert.match(version.stdout, /^backupctl \d+\.\d+\.\d+ \(git [0-9a-f]{7}, (deno|bun) \d+\.\d+\.\d+\)\n$/);
  });

  it("init writes a starter config that validates, and never overwrites one", async () => {
    const demo = makeDemo();
    try {
      const path = join(demo.dir, "starter.config.ts");
      const first = await runCli(["--config", path, "init"]);
      assert.equal(first.code, 0, first.stderr);
      const valid = await runCli(["--config", path, "validate"]);
      assert.equal(valid.code, 0, valid.stderr);
      const second = await runCli(["--config", path, "init"]);
      assert.equal(second.code, 64);
      assert.match(second.stderr, /already exists; pass --force/);
    } finally {
      demo.cleanup();
    }
  });
});

describe("configs that exit, hang, throw from a callback or print", () => {
  let demo: DemoDir;
  const original = () => readFileSync(join(repoRoot, "backup.config.ts"), "utf8");
  /** A variant of the demo config with `code` run first, written beside it. */
  const variant = (name: string, code: string) => {
    const path = join(demo.dir, `${name}.config.ts`);
    writeFileSync(path, `${code}\n${original()}`);
    return path;
  };
  const cli = (config: string, args: string[], env: Record<string, string> = {}) =>
    runCli(["--config", config, ...args], { env: { ...demo.env, ...env }, timeoutMs: 60_000 });

  before(() => {
    demo = makeDemo();
  });
  after(() => demo.cleanup());

  it("an exit in the config, with any code, is an invalid config (exit 3) naming the file and the call", async () => {
    for (
      const [name, code, call] of [
        ["exit-0", "process.exit(0);", "process.exit(0)"],
        ["exit-2", "process.exit(2);", "process.exit(2)"],
        // Under Bun there is no Deno global: the config then exits through process.
        [
          "deno-exit",
          'if ("Deno" in globalThis) (globalThis as any).Deno.exit(0); else process.exit(0);',
          "Bun" in globalThis ? "process.exit(0)" : "Deno.exit(0)",
        ],
        ["late-exit", "await new Promise((resolve) => setTimeout(() => process.exit(0), 50));", "process.exit(0)"],
      ]
    ) {
      const config = variant(name, code);
      for (const args of [["validate"], ["apply", "--auto-approve"]]) {
        const result = await cli(config, args);
        assert.equal(result.code, 3, `${name} ${args[0]}: ${result.stdout}${result.stderr}`);
        assert.equal(result.stdout, "");
        assert.ok(result.stderr.includes(`invalid configuration ${config} `), result.stderr);
        assert.ok(
          result.stderr.includes(`the config called ${call} while loading: a config cannot end backupctl`),
          result.stderr,
        );
      }
    }
    assert.equal(existsSync(demo.repository), false, "apply must do nothing");
  });

  it("a config that does not finish loading is exit 3 after the load timeout, naming the likely cause", async () => {
    const config = variant("hangs", "await new Promise(() => {});");
    const result = await cli(config, ["validate"], { BACKUPCTL_CONFIG_TIMEOUT: "1s" });
    assert.equal(result.code, 3, result.stdout + result.stderr);
    assert.ok(result.ms < 30_000, `took ${result.ms} ms`);
    assert.match(
      result.stderr,
      /invalid configuration .*hangs\.config\.ts \(1 problem\):\n {2}did not finish loading within 1s: a top-level await that never resolves\? \(a config that needs longer: set BACKUPCTL_CONFIG_TIMEOUT/,
    );
    const bad = await cli(config, ["validate"], { BACKUPCTL_CONFIG_TIMEOUT: "forever" });
    assert.equal(bad.code, 64, bad.stderr);
    assert.match(bad.stderr, /BACKUPCTL_CONFIG_TIMEOUT: expected how long a config may take to load/);
  });

  it("an error thrown from a callback while the config loads is exit 3, not a crash", async () => {
    const config = variant(
      "callback",
      'setTimeout(() => { throw new Error("vault answered 503"); }, 10);\n' +
        "await new Promise((resolve) => setTimeout(resolve, 300));",
    );
    const result = await cli(config, ["validate"]);
    assert.equal(result.code, 3, result.stdout + result.stderr);
    assert.match(result.stderr, /\n {2}cannot load the file: vault answered 503 \(line 1, column \d+\)\n/);
  });

  it("what the config prints goes to stderr: plan --format json stays JSON", async () => {
    const config = variant(
      "prints",
      'console.log("hello from the config"); console.info({ info: 1 }); process.stdout.write("written\\n");',
    );
    const result = await cli(config, ["plan", "--now", day1, "--format", "json"]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(JSON.parse(result.stdout).format_version, 1);
    assert.match(result.stderr, /hello from the config\n[^]*info: 1[^]*written\n/);
  });
});
