/**
 * `history` lists every audited operation, not only runs: init, backups (runs), forget, prune, check and restore,
 * filterable with `--kind`, in JSON too. Times for people are in the config's time zone with the offset (plan, status,
 * history, snapshots) while JSON keeps UTC; status, history and snapshots use colour on a terminal only.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { cliArgv, runCli } from "../support/cli.ts";
import { type DemoDir, makeDemo } from "../support/demo.ts";

// deno-lint-ignore no-control-regex
const ANSI = /\x1b\[[0-9;]*m/;
const quote = (arg: string) => `'${arg.replaceAll("'", `'\\''`)}'`;

describe("history of every audited operation, times in the operator's zone", () => {
  let demo: DemoDir;
  const cli = (args: string[]) => runCli(["--config", demo.config, ...args], { env: demo.env });
  /** The CLI in a pseudo-terminal (util-linux `script`): stdout is a TTY. */
  const onTerminal = (args: string[], env: Record<string, string> = {}) => {
    const command = [...cliArgv(), "--config", demo.config, ...args].map(quote).join(" ");
    const result = spawnSync("script", ["-qec", command, "/dev/null"], {
      env: { ...process.env, ...demo.env, NO_COLOR: "", TERM: "xterm", ...env },
      encoding: "utf8",
      timeout: 120_000,
    });
    assert.equal(result.error, undefined, "util-linux `script` runs");
    return result.stdout;
  };

  before(async () => {
    demo = makeDemo();
    writeFileSync(
      demo.config,
      readFileSync(demo.config, "utf8")
        .replace('timezone: "UTC"', 'timezone: "Europe/Berlin"')
        .replace(
          "retention: { last: 3, daily: 7, weekly: 4, monthly: 6 },",
          'retention: { last: 1 }, check: { every: "1d" },',
        ),
    );
    // Day 1 (11:00 in Berlin): init, the first backups. Day 2: backups. Day 3: a forget of each source's older
    // snapshot, backups, the prune after the forgets and the daily check.
    for (const now of ["2026-11-02T10:00:00Z", "2026-11-03T10:00:00Z", "2026-11-04T10:00:00Z"]) {
      const apply = await cli(["apply", "--auto-approve", "--now", now]);
      assert.equal(apply.code, 0, apply.stdout + apply.stderr);
    }
    const restore = await cli(["restore", "demo", "--source", "app", "--to", join(demo.dir, "restored")]);
    assert.equal(restore.code, 0, restore.stdout + restore.stderr);
  });
  after(() => demo.cleanup());

  it("history --json has every kind, newest first, UTC times, the same keys for runs and operations", async () => {
    const result = await cli(["history", "--json", "--limit", "100"]);
    assert.equal(result.code, 0, result.stderr);
    const entries = JSON.parse(result.stdout) as Record<string, unknown>[];
    const kinds = new Set(entries.map((e) => e.kind));
    for (const kind of ["backup", "init", "forget", "prune", "check", "restore"]) {
      assert.ok(kinds.has(kind), `${kind} in ${[...kinds].join(", ")}`);
    }
    const times = entries.map((e) => String(e.started_at));
    assert.deepEqual(times, [...times].sort().reverse(), "newest first");
    assert.ok(times.every((t) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z$/.test(t)), times.join(" "));
    const keys = JSON.stringify(Object.keys(entries.find((e) => e.kind === "backup")!));
    for (const entry of entries) assert.equal(JSON.stringify(Object.keys(entry)), keys);
    const restore = entries.find((e) => e.kind === "restore")!;
    assert.equal(restore.id, null);
    assert.equal(restore.project, "demo");
    const [stage] = restore.stages as Record<string, unknown>[];
    assert.equal(stage.type, "restore");
    assert.equal(stage.source, "app");
    assert.equal(stage.repository, "local");
    assert.ok(Number(stage.bytes) > 0);
    const forgets = entries.filter((e) => e.kind === "forget");
    assert.deepEqual(forgets.map((e) => (e.stages as { source: string }[])[0].source).sort(), ["app", "uploads"]);
    // restic's own figure for what a backup added (data_added): the unchanged database's second backup adds little.
    const runs = entries.filter((e) => e.kind === "backup");
    const app = runs.map((run) => (run.stages as Record<string, number | string>[]).find((s) => s.source === "app")!);
    assert.equal(app.length, 3);
    assert.ok(Number(app[2].bytes_added) >= Number(app[2].bytes) / 2, JSON.stringify(app[2]), "first: all of it");
    assert.ok(Number(app[0].bytes_added) < Number(app[0].bytes) / 2, JSON.stringify(app[0]), "second: deduplicated");
  });

  it("history --kind picks kinds (comma-separated, repeatable, drill = verify) and rejects unknown ones", async () => {
    const picked = JSON.parse((await cli(["history", "--json", "--kind", "forget,prune"])).stdout) as {
      kind: string;
    }[];
    assert.deepEqual([...new Set(picked.map((e) => e.kind))].sort(), ["forget", "prune"]);
    const runsOnly = JSON.parse((await cli(["history", "--json", "--kind", "backup", "--kind", "init"])).stdout);
    assert.deepEqual([...new Set(runsOnly.map((e: { kind: string }) => e.kind))].sort(), ["backup", "init"]);
    const drills = await cli(["history", "--kind", "drill"]);
    assert.equal(drills.code, 0, drills.stderr);
    assert.equal(drills.stdout, "Nothing recorded that matches.\n");
    const bad = await cli(["history", "--kind", "forget,backups"]);
    assert.equal(bad.code, 64);
    assert.match(bad.stderr, /--kind: unknown kind "backups"; expected one or more of backup, forget, prune/);
  });

  it("history text: one line per operation, times in the config's zone with the offset", async () => {
    const result = await cli(["history", "--limit", "100"]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^✓ 2026-11-04 11:00:\d\d\+01:00 {2}forget demo\/app in local {2}succeeded in \S+/m);
    assert.match(result.stdout, /^✓ 2026-11-04 11:00:\d\d\+01:00 {2}prune local {2}succeeded in /m);
    assert.match(result.stdout, /^✓ 2026-11-04 11:00:\d\d\+01:00 {2}check local {2}succeeded in /m);
    assert.match(result.stdout, /^✓ 2026-11-02 11:00:\d\d\+01:00 {2}init local {2}succeeded in /m);
    assert.match(
      result.stdout,
      /^✓ \d{4}-\d\d-\d\d \d\d:\d\d:\d\d[+-]\d\d:\d\d {2}restore demo\/app from local {2}succeeded in \S+( \S+)? {2}\([\d.]+ KiB restored, snapshot [0-9a-f]{8}\)$/m,
    );
    assert.match(result.stdout, /^✓ 2026-11-04 11:00:\d\d\+01:00 {2}demo {2}succeeded in .*\(\S+, apply on \S+\)$/m);
    assert.doesNotMatch(result.stdout, /\d\d:\d\dZ/, "no UTC times in the text");
    assert.doesNotMatch(result.stdout, ANSI, "no colour when piped");
  });

  it("status and plan show the next due time in the config's zone with the offset; JSON keeps UTC", async () => {
    const status = await cli(["status", "--now", "2026-11-04T10:30:00Z"]);
    assert.equal(status.code, 0, status.stdout + status.stderr);
    // 0 3 * * * in Europe/Berlin is 03:00+01:00 (02:00Z), not 02:00:00Z.
    assert.match(status.stdout, /\s2026-11-05 03:00:00\+01:00\s/);
    assert.match(status.stdout, /\s2026-11-04 11:00:\d\d\+01:00 \(\d+m( \d+s)? ago\)\s/);
    assert.match(status.stdout, /\slocal 4, newest \d+m( \d+s)? ago\s/);
    const json = JSON.parse((await cli(["status", "--json", "--now", "2026-11-04T10:30:00Z"])).stdout);
    assert.equal(json.projects[0].next_due, "2026-11-05T02:00:00Z");
    const plan = await cli(["plan", "--now", "2026-11-04T10:30:00Z"]);
    // The text plan names the snapshots each forget deletes, as the JSON plan does.
    const forget = /^ {2}- forget 1 snapshot of app in local {2}.*\n {6}([0-9a-f]{8})$/m.exec(plan.stdout);
    assert.ok(forget, plan.stdout);
    const listed = JSON.parse((await cli(["snapshots", "--json"])).stdout) as { short_id: string; source: string }[];
    const oldestApp = listed.filter((x) => x.source === "app")[0];
    assert.equal(forget[1], oldestApp.short_id);
    const planned = JSON.parse((await cli(["plan", "--json", "--now", "2026-11-04T10:30:00Z"])).stdout);
    const ids = planned.actions.find((x: { source?: string; type: string }) =>
      x.type === "forget" && x.source === "app"
    );
    assert.deepEqual(ids.snapshots.map((id: string) => id.slice(0, 8)), [forget[1]]);
    const snapshots = await cli(["snapshots"]);
    assert.match(snapshots.stdout, /^[0-9a-f]{8} {2}2026-11-04 11:00:\d\d\+01:00 {2}local /m);
  });

  it("status, history and snapshots use colour on a terminal, and not with NO_COLOR", () => {
    for (const args of [["status", "--now", "2026-11-04T10:30:00Z"], ["history"], ["snapshots"]]) {
      const coloured = onTerminal(args);
      assert.match(coloured, ANSI, `${args[0]} on a terminal: ${coloured}`);
      assert.doesNotMatch(onTerminal(args, { NO_COLOR: "1" }), ANSI, `${args[0]} with NO_COLOR`);
    }
  });
});
