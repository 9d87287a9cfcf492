/**
 * End to end: `backupctl diff` through the real CLI and real git, on a temp git repository whose config lives in a
 * subfolder (ops/) and imports a sibling module, so the temp copy written for a ref must resolve relative imports.
 * Runs under `deno test -A test/e2e/diff_test.ts` and `bun --no-install test ./test/e2e/diff_test.ts`.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type CliResult, repoRoot, runCli } from "../support/cli.ts";

const gitEnv = {
  GIT_AUTHOR_NAME: "backupctl test",
  GIT_AUTHOR_EMAIL: "test@backupctl.invalid",
  GIT_COMMITTER_NAME: "backupctl test",
  GIT_COMMITTER_EMAIL: "test@backupctl.invalid",
  GIT_CONFIG_NOSYSTEM: "1",
};

const expectedText = [
  '+ source demo/logs: files paths ["demo/logs"]',
  "    the next apply backs it up (never backed up yet)",
  "~ retention of demo: daily 7 → 3",
  "    destructive: older daily snapshots will be forgotten (needs approval on apply)",
  "",
  "Diff: 1 added, 0 removed, 1 changed (1 destructive).",
  "",
].join("\n");

describe("backupctl diff with real git", () => {
  let root: string;
  let ops: string;
  const git = (...args: string[]) =>
    execFileSync("git", ["-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false", ...args], {
      cwd: root,
      env: { ...process.env, ...gitEnv },
      encoding: "utf8",
    });
  const cli = (args: string[]): Promise<CliResult> =>
    runCli(["--config", "ops/backup.config.ts", "diff", ...args], { cwd: root });
  const leftovers = () => readdirSync(ops).filter((name) => name.startsWith(".backupctl-diff-"));

  before(() => {
    root = mkdtempSync(join(tmpdir(), "backupctl-diff-e2e-"));
    ops = join(root, "ops");
    mkdirSync(ops);
    // The demo config, with its schedule imported from a sibling module.
    const demo = readFileSync(join(repoRoot, "backup.config.ts"), "utf8");
    assert.match(demo, /schedule: "0 3 \* \* \*",/);
    assert.match(demo, /retention: \{ last: 3, daily: 7, weekly: 4, monthly: 6 \}/);
    const config = demo
      .replace(/^(import .* from "backupctl";)$/m, '$1\nimport { schedule } from "./shared.ts";')
      .replace('schedule: "0 3 * * *",', "schedule,");
    writeFileSync(join(ops, "shared.ts"), 'export const schedule = "0 3 * * *";\n');
    // An earlier, invalid version, tagged "broken".
    writeFileSync(join(ops, "backup.config.ts"), config.replace("schedule,", 'schedule: "0 25 * * *",'));
    git("init", "-q");
    git("add", ".");
    git("commit", "-q", "-m", "broken config");
    git("tag", "broken");
    writeFileSync(join(ops, "backup.config.ts"), config);
    git("commit", "-q", "-am", "demo config");
    // The working copy: retention lowered, a source added.
    const changed = config
      .replace("daily: 7,", "daily: 3,")
      .replace(
        /(files\(\{ name: "uploads".*\}\),)/,
        '$1\n        files({ name: "logs", paths: ["demo/logs"] }),',
      );
    assert.notEqual(changed, config);
    writeFileSync(join(ops, "backup.config.ts"), changed);
    writeFileSync(join(ops, "other.config.ts"), config);
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it("diff --against HEAD prints each change, its consequence and the summary line", async () => {
    const result = await cli(["--against", "HEAD"]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, expectedText);
    assert.deepEqual(leftovers(), [], "the temp copy is deleted");
  });

  it("--detailed-exitcode exits 2 when the configs differ", async () => {
    const result = await cli(["--against", "HEAD", "--detailed-exitcode"]);
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stdout, /^Diff: 1 added, 0 removed, 1 changed \(1 destructive\)\.$/m);
    assert.deepEqual(leftovers(), []);
  });

  it("--format markdown: title, summary, warning block and a table row per change", async () => {
    const result = await cli(["--against", "HEAD", "--format", "markdown"]);
    assert.equal(result.code, 0, result.stderr);
    const lines = result.stdout.split("\n");
    assert.deepEqual(lines.slice(0, 8), [
      "### backupctl config diff against `HEAD`",
      "",
      "Diff: 1 added, 0 removed, 1 changed (1 destructive).",
      "",
      "> [!WARNING]",
      "> 1 destructive change: review before merging.",
      "> - **retention of demo**: `daily 7 → 3` — older daily snapshots will be forgotten (needs approval on apply)",
      "",
    ]);
    assert.ok(lines.includes("#### Project `demo`"), result.stdout);
    assert.ok(
      lines.includes(
        '| `+` | **source demo/logs**: `files paths ["demo/logs"]` | the next apply backs it up (never backed up yet) |',
      ),
      result.stdout,
    );
    assert.ok(
      lines.includes(
        "| `~` | **retention of demo**: `daily 7 → 3` | ⚠️ **destructive:** older daily snapshots will be forgotten " +
          "(needs approval on apply) |",
      ),
      result.stdout,
    );
    assert.deepEqual(leftovers(), []);
  });

  it("--against FILE compares with another config file", async () => {
    const result = await cli(["--against", "ops/other.config.ts"]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, expectedText);
    const same = await cli(["--against", "ops/backup.config.ts", "--detailed-exitcode"]);
    assert.equal(same.code, 0, same.stderr);
    assert.equal(same.stdout, "No changes to the configuration.\n");
  });

  it("--format json lists the changes with the summary and both fingerprints", async () => {
    const result = await cli(["--against", "HEAD", "--format", "json"]);
    assert.equal(result.code, 0, result.stderr);
    const document = JSON.parse(result.stdout) as {
      format_version: number;
      against: string;
      before_fingerprint: string;
      after_fingerprint: string;
      summary: Record<string, number>;
      changes: { kind: string; subject: string; detail: string; destructive: boolean }[];
    };
    assert.equal(document.format_version, 1);
    assert.equal(document.against, "HEAD");
    assert.match(document.before_fingerprint, /^sha256:[0-9a-f]{64}$/);
    assert.notEqual(document.before_fingerprint, document.after_fingerprint);
    assert.deepEqual(document.summary, { added: 1, removed: 0, changed: 1, destructive: 1 });
    assert.deepEqual(document.changes.map((c) => [c.kind, c.subject, c.detail, c.destructive]), [
      ["added", "source demo/logs", 'files paths ["demo/logs"]', false],
      ["changed", "retention of demo", "daily 7 → 3", true],
    ]);
  });

  it("after committing, HEAD is the same (exit 0) and HEAD~1 differs (exit 2)", async () => {
    git("commit", "-q", "-am", "keep fewer daily snapshots, back up logs");
    const same = await cli(["--against", "HEAD", "--detailed-exitcode"]);
    assert.equal(same.code, 0, same.stderr);
    assert.equal(same.stdout, "No changes to the configuration.\n");
    const previous = await cli(["--against", "HEAD~1", "--detailed-exitcode"]);
    assert.equal(previous.code, 2, previous.stderr);
    assert.equal(previous.stdout, expectedText);
    assert.deepEqual(leftovers(), []);
  });

  it("a ref that does not exist is a usage error (64) naming it", async () => {
    const result = await cli(["--against", "no-such-ref"]);
    assert.equal(result.code, 64);
    assert.equal(result.stdout, "");
    assert.match(
      result.stderr,
      /^Error: --against: "no-such-ref" is not an existing file, and git cannot read backup\.config\.ts at that ref/,
    );
    assert.match(result.stderr, /pass a config file, or a git ref where the config file exists/);
    const option = await cli(["--against=--output=/tmp/x"]);
    assert.equal(option.code, 64, "a value starting with - never reaches git as an option");
    assert.deepEqual(leftovers(), []);
  });

  it("an invalid --against config exits 3 naming it, and the temp copy is still deleted", async () => {
    const atRef = await cli(["--against", "broken"]);
    assert.equal(atRef.code, 3, atRef.stderr);
    assert.match(
      atRef.stderr,
      /invalid configuration backup\.config\.ts at broken, the --against config \(1 problem\)/,
    );
    assert.match(atRef.stderr, /projects\.demo\.schedule: invalid cron expression "0 25 \* \* \*"/);
    assert.doesNotMatch(atRef.stderr, /\.backupctl-diff-/, "the temp file's name is not shown");
    assert.deepEqual(leftovers(), []);

    writeFileSync(join(ops, "broken.config.ts"), "export default { projects: {} };\n");
    const file = await cli(["--against", "ops/broken.config.ts"]);
    assert.equal(file.code, 3, file.stderr);
    assert.match(file.stderr, /ops\/broken\.config\.ts, the --against config/);
  });

  it("outside a git repository a non-file value is a usage error", async () => {
    const plain = mkdtempSync(join(tmpdir(), "backupctl-diff-nogit-"));
    try {
      writeFileSync(join(plain, "backup.config.ts"), readFileSync(join(repoRoot, "backup.config.ts")));
      const result = await runCli(["--config", "backup.config.ts", "diff", "--against", "HEAD"], {
        cwd: plain,
        env: { GIT_CEILING_DIRECTORIES: tmpdir() },
      });
      assert.equal(result.code, 64, result.stderr);
      assert.match(result.stderr, /git cannot read backup\.config\.ts at that ref .*not a git repository/);
    } finally {
      rmSync(plain, { recursive: true, force: true });
    }
  });

  it("diff is listed in --help with its options", async () => {
    const help = await runCli(["diff", "--help"]);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /--against <ref\|file>/);
    assert.match(help.stdout, /--format <format>\s+text, markdown/);
    assert.match(help.stdout, /--detailed-exitcode/);
    assert.match((await runCli(["--help"])).stdout, /\n {2}diff\b/);
    const missing = await runCli(["diff"]);
    assert.equal(missing.code, 64);
    assert.match(missing.stderr, /required option '--against <ref\|file>' not specified/);
  });
});
