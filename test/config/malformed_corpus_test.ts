/**
 * Malformed input, end to end (issue 5): a generated corpus of broken backup.config.ts files goes through the CLI's
 * entry point. Each one must exit 3 with a message naming the config path of the problem (or, when the file cannot be
 * loaded, the file and the cause), never a stack trace, and must leave the state folder alone. Every case runs
 * through `main` in the test process (test/support/in-process-cli.ts: the same code from the command line to the exit
 * code and the streams); a sample of every category also goes through a real launch, where a crash the runtime
 * prints or an exit of the process itself would show. Then broken saved plans: apply must refuse each with exit 5 or
 * 64 in one line, before running any action.
 *
 * Runs under `deno test -A test/config/malformed_corpus_test.ts` and
 * `bun --no-install test --timeout 300000 ./test/config/malformed_corpus_test.ts`.
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { sealPlan } from "../../src/plan/planfile.ts";
import type { Plan } from "../../src/plan/types.ts";
import { type CliResult, runCli } from "../support/cli.ts";
import { type DemoDir, makeDemo } from "../support/demo.ts";
import { runMain } from "../support/in-process-cli.ts";
import {
  baselineFile,
  categories,
  type Category,
  configFile,
  type MalformedConfig,
  malformedConfigs,
} from "../support/malformed-configs.ts";

const now = "2026-11-21T10:00:00Z";
const concurrency = 4;
const stackLine = /^\s+at /m;
/** Every problem list is cut short long before this: a 5 MB value or 100 000 problems must not flood the terminal. */
const maxStderr = 16 * 1024;

const corpus = malformedConfigs();
const root = mkdtempSync(join(tmpdir(), "backupctl-malformed-"));
after(() => rmSync(root, { recursive: true, force: true }));

/** Runs `work` over the items, at most `size` at a time, keeping their order. */
async function inPool<T, R>(items: T[], size: number, work: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index], index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(size, items.length) }, worker));
  return results;
}

function writeFiles(dir: string, files: Record<string, string>): void {
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
}

/** Every file and folder under `dir`, relative, sorted. */
function listing(dir: string): string[] {
  return (readdirSync(dir, { recursive: true }) as string[]).map(String).sort();
}

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** Why a CLI run on a malformed config is wrong; empty when it is right. */
function complaints(entry: MalformedConfig, file: string, result: CliResult, created: string[]): string[] {
  const found: string[] = [];
  if (result.code !== 3) found.push(`exit ${result.code}, expected 3`);
  if (!result.stderr.startsWith(`Error: invalid configuration ${file} (`)) {
    found.push("stderr does not start with `Error: invalid configuration <file> (`");
  }
  for (const path of entry.paths) {
    if (!new RegExp(`^ {2}${escape(path)}: `, "m").test(result.stderr)) found.push(`no problem at ${path}`);
  }
  for (const pattern of entry.says) {
    if (!pattern.test(result.stderr)) found.push(`stderr does not match ${pattern}`);
  }
  if (stackLine.test(result.stderr)) found.push("a stack trace");
  if (result.stderr.length > maxStderr) found.push(`${result.stderr.length} characters on stderr`);
  for (const secret of entry.neverPrinted) {
    if (result.stderr.includes(secret) || result.stdout.includes(secret)) found.push("printed a secret value");
  }
  if (result.stdout !== "") found.push(`stdout: ${result.stdout.slice(0, 200)}`);
  if (created.length > 0) found.push(`created ${created.join(", ")}`);
  return found;
}

/** How a command line runs: launched as a process, or through `main` in this one (one at a time). */
const runners = {
  launched: { size: concurrency, run: (args: string[]) => runCli(args, { timeoutMs: 60_000 }) },
  "in-process": { size: 1, run: (args: string[]) => runMain(args) },
};

/**
 * Writes each config into its own folder, runs `command` on it with a state folder inside that folder, and returns
 * one report line per config that was not refused properly.
 */
async function refuseAll(
  entries: MalformedConfig[],
  command: string[],
  how: keyof typeof runners,
): Promise<{ failures: string[]; ms: number }> {
  const started = Date.now();
  const runner = runners[how];
  const failures = await inPool(entries, runner.size, async (entry) => {
    const dir = join(root, `${command[0]}-${how}-${corpus.indexOf(entry)}`);
    mkdirSync(dir);
    writeFiles(dir, entry.files);
    const written = listing(dir);
    const file = join(dir, configFile);
    const result = await runner.run(["--config", file, "--state-dir", join(dir, "state"), ...command]);
    const created = listing(dir).filter((name) => !written.includes(name));
    const found = complaints(entry, file, result, created);
    rmSync(dir, { recursive: true, force: true });
    if (found.length === 0) return undefined;
    return `✗ ${entry.name} [${entry.category}] (${how}), exit ${result.code}: ${found.join("; ")}\n${
      result.stderr.slice(0, 1200).replace(/^/gm, "    | ")
    }`;
  });
  return { failures: failures.filter((line): line is string => line !== undefined), ms: Date.now() - started };
}

describe("a generated corpus of malformed configs through the real CLI", () => {
  it("has at least 220 distinct cases in every category", () => {
    assert.ok(corpus.length >= 220, `only ${corpus.length} cases`);
    const names = corpus.map((entry) => entry.name);
    assert.deepEqual(names.filter((name, index) => names.indexOf(name) !== index), [], "case names are unique");
    const counts = new Map<Category, number>();
    for (const entry of corpus) counts.set(entry.category, (counts.get(entry.category) ?? 0) + 1);
    assert.deepEqual([...counts.keys()].sort(), [...categories].sort());
    for (const entry of corpus) {
      assert.ok(entry.paths.length + entry.says.length > 0, `${entry.name} expects nothing of the message`);
    }
  });

  it("the baseline every edit starts from is valid (so each case fails for its own edit)", async () => {
    const dir = join(root, "baseline");
    mkdirSync(dir);
    writeFiles(dir, baselineFile());
    // Launched and in this process: either way of running tells a valid config from a broken one.
    for (const run of [runCli, runMain]) {
      const result = await run(["--config", join(dir, configFile), "validate"]);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /^Configuration valid: 2 projects, 8 sources, 2 repositories\./);
      assert.equal(result.stderr, "");
    }
  });

  it("validate refuses every one: exit 3, the path or the cause, no stack trace, no state written", async () => {
    const { failures, ms } = await refuseAll(corpus, ["validate"], "in-process");
    assert.equal(
      failures.length,
      0,
      `${failures.length} of ${corpus.length} malformed configs were not refused properly (${ms} ms):\n` +
        failures.join("\n"),
    );
  });

  it("a launched validate refuses the first and the last case of every category the same way", async () => {
    const sample = categories.flatMap((category) => {
      const of = corpus.filter((entry) => entry.category === category);
      return [...new Set([of[0], of[of.length - 1]])];
    });
    assert.ok(sample.length >= 2 * categories.length - 2, `a sample of ${sample.length}`);
    const { failures, ms } = await refuseAll(sample, ["validate"], "launched");
    assert.equal(
      failures.length,
      0,
      `${failures.length} of ${sample.length} launches were not refused properly (${ms} ms):\n${failures.join("\n")}`,
    );
  });

  it("plan refuses a sample the same way, before it opens the state", async () => {
    const step = Math.ceil(corpus.length / 25);
    const sample = corpus.filter((_, index) => index % step === 0);
    assert.ok(sample.length >= 20, `a sample of ${sample.length}`);
    // Every one through main, every fifth also launched.
    const inProcess = await refuseAll(sample, ["plan", "--now", now], "in-process");
    const launched = await refuseAll(sample.filter((_, index) => index % 5 === 0), ["plan", "--now", now], "launched");
    const failures = [...inProcess.failures, ...launched.failures];
    assert.equal(
      failures.length,
      0,
      `${failures.length} of ${sample.length} refused badly by plan:\n${failures.join("\n")}`,
    );
  });

  it("--debug adds the stack trace the other runs must not show", async () => {
    const entry = corpus.find((candidate) => candidate.name === "a default function that throws")!;
    const dir = join(root, "debug");
    mkdirSync(dir);
    writeFiles(dir, entry.files);
    const result = await runCli(["--config", join(dir, configFile), "validate", "--debug"]);
    assert.equal(result.code, 3, result.stderr);
    assert.match(result.stderr, stackLine);
  });
});

// ── saved plans ─────────────────────────────────────────────────────────────────────────────────────────────────

interface PlanVariant {
  name: string;
  /** The file's text, made from the good plan's text and document. */
  text: (good: { text: string; plan: Plan }) => string;
  code: 5 | 64;
  message: RegExp;
}

const edited = /was edited after it was made \(checksum mismatch\); make a new plan$/;
const notAPlan = /is not a plan file \(not JSON, or cut short\)/;
const json = (plan: unknown) => JSON.stringify(plan, null, 2) + "\n";
/** A plan changed and sealed again: the checksum matches, so the refusal must come from the config or state. */
const forged = (change: (plan: Plan) => void) => ({ plan }: { plan: Plan }) => {
  const copy = structuredClone(plan);
  change(copy);
  return json(sealPlan(copy));
};
const editedPlan = (change: (plan: Plan) => void) => ({ plan }: { plan: Plan }) => {
  const copy = structuredClone(plan);
  change(copy);
  return json(copy);
};

const planVariants: PlanVariant[] = [
  { name: "truncated to half", text: ({ text }) => text.slice(0, text.length / 2), code: 64, message: notAPlan },
  { name: "cut by one byte", text: ({ text }) => text.trimEnd().slice(0, -1), code: 64, message: notAPlan },
  { name: "empty", text: () => "", code: 64, message: notAPlan },
  { name: "not JSON", text: () => "plan:\n  actions: []\n", code: 64, message: notAPlan },
  { name: "binary", text: () => "\u0000\u0001\u00ff\u00fe PK\u0003\u0004", code: 64, message: notAPlan },
  { name: "a JSON list", text: () => "[]\n", code: 64, message: /is not a valid plan file \(document: / },
  { name: "JSON null", text: () => "null\n", code: 64, message: /is not a valid plan file \(document: / },
  {
    name: "format_version 2",
    text: forged((plan) => (plan as { format_version: number }).format_version = 2),
    code: 64,
    message: /has plan format version 2; this backupctl reads version 1/,
  },
  {
    name: 'format_version "1"',
    text: editedPlan((plan) => (plan as { format_version: unknown }).format_version = "1"),
    code: 64,
    message: /has plan format version "1"/,
  },
  {
    name: "without format_version",
    text: editedPlan((plan) => delete (plan as { format_version?: number }).format_version),
    code: 64,
    message: /is not a valid plan file \(format_version: /,
  },
  {
    name: "a changed reason",
    text: editedPlan((plan) => plan.actions[1].reason = "requested by the auditor"),
    code: 5,
    message: edited,
  },
  {
    name: "an added action",
    text: editedPlan((plan) => plan.actions.push({ ...plan.actions[1], id: "a9" })),
    code: 5,
    message: edited,
  },
  { name: "a removed action", text: editedPlan((plan) => plan.actions.pop()), code: 5, message: edited },
  {
    name: "an action turned destructive",
    text: editedPlan((plan) => plan.actions[1].destructive = true),
    code: 5,
    message: edited,
  },
  {
    name: "an action with an extra key",
    text: editedPlan((plan) => Object.assign(plan.actions[1], { command: "rm -rf /srv" })),
    code: 5,
    message: edited,
  },
  {
    name: "an extra top-level key",
    text: editedPlan((plan) => Object.assign(plan, { approved_by: "mallory" })),
    code: 5,
    message: edited,
  },
  {
    name: "a removed checksum",
    text: editedPlan((plan) => delete plan.checksum),
    code: 64,
    message: /is not a valid plan file \(checksum: /,
  },
  {
    name: "a checksum of zeros",
    text: editedPlan((plan) => plan.checksum = `sha256:${"0".repeat(64)}`),
    code: 5,
    message: edited,
  },
  {
    name: "a checksum that is not one",
    text: editedPlan((plan) => plan.checksum = "md5:abc"),
    code: 5,
    message: edited,
  },
  {
    name: "an unknown action type",
    text: forged((plan) => (plan.actions[1] as { type: string }).type = "destroy"),
    code: 64,
    message: /is not a valid plan file \(actions\.1\.type: /,
  },
  {
    name: "another config's fingerprint",
    text: forged((plan) => plan.config_fingerprint = `sha256:${"1".repeat(64)}`),
    code: 5,
    message: /the configuration changed since the plan was made; run `backupctl plan --out` again/,
  },
  {
    name: "another state's lineage",
    text: forged((plan) => plan.state.lineage = "00000000-0000-4000-8000-000000000000"),
    code: 5,
    message: /the plan was made against another state database \(lineage 00000000-0000-4000-8000-000000000000\)/,
  },
  {
    name: "a newer serial",
    text: forged((plan) => plan.state.serial = 3),
    code: 5,
    message: /the state changed since the plan was made \(serial 3 → 0\)/,
  },
];

describe("malformed saved plans through apply", () => {
  let demo: DemoDir;
  let good = { text: "", plan: {} as Plan };
  let goodFile = "";
  const cli = (args: string[]) => runCli(["--config", demo.config, ...args], { env: demo.env, timeoutMs: 60_000 });

  before(async () => {
    demo = makeDemo();
    goodFile = join(demo.dir, "plans", "good.json");
    const saved = await cli(["plan", "--now", now, "--out", goodFile]);
    assert.equal(saved.code, 0, saved.stderr);
    const text = readFileSync(goodFile, "utf8");
    good = { text, plan: JSON.parse(text) as Plan };
    assert.deepEqual(good.plan.actions.map((action) => action.type), ["init", "backup", "backup"]);
  });
  after(() => demo.cleanup());

  /** Runs apply on a plan file and returns what is wrong with its refusal. */
  async function refusal(file: string, code: number, message: RegExp, repositoryBefore = false): Promise<string[]> {
    const result = await cli(["apply", file, "--now", now]);
    const found: string[] = [];
    if (result.code !== code) found.push(`exit ${result.code}, expected ${code}`);
    const lines = result.stderr.trimEnd().split("\n");
    if (lines.length !== 1) found.push(`${lines.length} lines on stderr`);
    if (!lines[0].startsWith("Error: ")) found.push("stderr does not start with `Error: `");
    if (!message.test(result.stderr.trimEnd())) found.push(`stderr does not match ${message}`);
    if (stackLine.test(result.stderr)) found.push("a stack trace");
    if (result.stdout !== "") found.push(`stdout: ${result.stdout.slice(0, 300)}`);
    if (!repositoryBefore && existsSync(demo.repository)) found.push("the repository was created: an action ran");
    return found.length === 0 ? [] : [`✗ ${file}: ${found.join("; ")}\n    | ${result.stderr.trimEnd()}`];
  }

  it("refuses every edited, cut, mistyped or forged plan file with exit 5 or 64, running nothing", async () => {
    // One at a time: apply takes the project's lock first, so a second apply at the same moment would exit 4.
    const failures = await inPool(planVariants, 1, async (variant, index) => {
      const file = join(demo.dir, "plans", `variant-${index}.json`);
      writeFileSync(file, variant.text(good));
      const found = await refusal(file, variant.code, variant.message);
      return found.map((line) => `${variant.name}: ${line}`);
    });
    assert.deepEqual(failures.flat(), []);
    assert.equal(existsSync(demo.repository), false);
  });

  it("refuses a plan made for another config, and one made against another state database", async () => {
    const other = makeDemo();
    try {
      writeFileSync(other.config, readFileSync(other.config, "utf8").replace("daily: 7", "daily: 8"));
      const foreign = join(demo.dir, "plans", "other-config.json");
      const made = await runCli(["--config", other.config, "plan", "--now", now, "--out", foreign], { env: other.env });
      assert.equal(made.code, 0, made.stderr);
      const lineage = join(demo.dir, "plans", "other-state.json");
      const madeElsewhere = await cli([
        "--state-dir",
        join(demo.dir, "other-state"),
        "plan",
        "--now",
        now,
        "--out",
        lineage,
      ]);
      assert.equal(madeElsewhere.code, 0, madeElsewhere.stderr);
      const failures = [
        ...await refusal(foreign, 5, /the configuration changed since the plan was made/),
        ...await refusal(lineage, 5, /the plan was made against another state database \(lineage [0-9a-f-]{36}\)/),
        ...await refusal(join(demo.dir, "plans"), 64, /cannot read the plan file .*plans/),
        ...await refusal(join(demo.dir, "plans", "missing.json"), 64, /cannot read the plan file .*missing\.json/),
      ];
      assert.deepEqual(failures, []);
    } finally {
      other.cleanup();
    }
  });

  it("applies the good plan once (so the checks above could fail), then refuses it", async () => {
    const applied = await cli(["apply", goodFile, "--now", now]);
    assert.equal(applied.code, 0, applied.stdout + applied.stderr);
    assert.ok(existsSync(demo.repository), "apply initialized the repository");
    assert.deepEqual(await refusal(goodFile, 5, /this plan was already applied/, true), []);
  });
});
