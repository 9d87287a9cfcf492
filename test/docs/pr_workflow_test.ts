/**
 * docs/examples/backupctl-pr.yml, the pull-request workflow of docs/getting-started.md:
 * (a) parsed with `yaml` and checked: trigger, permissions, steps, the sticky marker, the approval label;
 * (b) its own `run:` scripts executed here, as GitHub runs them (`bash --noprofile --norc -eo pipefail`), in a temp git
 *     repository: a "production" checkout on main whose state has three days of real backups, and a clone (origin/main)
 *     with a pull-request branch that shortens the retention; the state copy is made with `sqlite3 … ".backup …"` and
 *     downloaded by the workflow's own curl step; the approval gate runs against the real `plan --format json`;
 * (c) the `actions/github-script` script run against a recording stand-in for GitHub's API: create, then update.
 * Not run here: checkout, setup-deno, apt-get and npm ci (the runner's setup), and GitHub itself.
 * Runs under `deno test -A test/docs/pr_workflow_test.ts` and `bun --no-install test ./test/docs/pr_workflow_test.ts`.
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { pathToFileURL } from "node:url";
import { parse } from "yaml";
import { repoRoot, runCli } from "../support/cli.ts";
import { type DemoDir, makeDemo } from "../support/demo.ts";

const slow = { timeout: 240_000 };

interface Step {
  name?: string;
  id?: string;
  if?: string;
  uses?: string;
  run?: string;
  with?: Record<string, unknown>;
  env?: Record<string, string>;
  "continue-on-error"?: unknown;
}

interface Workflow {
  name: string;
  on: { pull_request: { types: string[]; paths?: string[]; "paths-ignore"?: string[] } };
  permissions: Record<string, string>;
  defaults: { run: { shell: string } };
  jobs: Record<string, { "runs-on": string; env: Record<string, string>; steps: Step[] }>;
}

const workflowText = readFileSync(join(repoRoot, "docs/examples/backupctl-pr.yml"), "utf8");
const workflow = parse(workflowText) as Workflow;
const job = workflow.jobs.plan;
const stepById = (id: string): Step => {
  const found = job?.steps.find((step) => step.id === id);
  assert.ok(found, `the workflow has a step with id ${id}`);
  return found;
};

const approvalLabel = "backupctl/approve-deletions";
const marker = "<!-- backupctl-plan -->";
const gitEnv = {
  GIT_AUTHOR_NAME: "backupctl test",
  GIT_AUTHOR_EMAIL: "test@backupctl.invalid",
  GIT_COMMITTER_NAME: "backupctl test",
  GIT_COMMITTER_EMAIL: "test@backupctl.invalid",
  GIT_CONFIG_NOSYSTEM: "1",
};
const git = (cwd: string, ...args: string[]) =>
  execFileSync("git", ["-c", "commit.gpgsign=false", "-c", "init.defaultBranch=main", ...args], {
    cwd,
    env: { ...process.env, ...gitEnv },
    encoding: "utf8",
  });

interface StepResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs one step's `run:` script verbatim with the job's env, the step's env (every `${{ … }}` value must be given in
 * `expressions`, so nothing the workflow needs is silently missing), and the runner's variables.
 */
function runStep(id: string, cwd: string, temp: string, expressions: Record<string, string> = {}): StepResult {
  const step = stepById(id);
  assert.equal(typeof step.run, "string", `step ${id} has a run: script`);
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !key.startsWith("BACKUPCTL_") && key !== "NO_COLOR") env[key] = value;
  }
  for (const [key, value] of Object.entries(job.env)) {
    assert.ok(!String(value).includes("${{"), `job env ${key} is a literal`);
    env[key] = String(value);
  }
  for (const [key, value] of Object.entries(step.env ?? {})) {
    if (String(value).includes("${{")) {
      assert.ok(key in expressions, `the test gives step ${id}'s env ${key} (${value})`);
      env[key] = expressions[key];
    } else env[key] = String(value);
  }
  const script = join(temp, `step-${id}.sh`);
  writeFileSync(script, step.run!);
  Object.assign(env, {
    RUNNER_TEMP: temp,
    GITHUB_WORKSPACE: cwd,
    GITHUB_OUTPUT: join(temp, "github-output"),
    GITHUB_ENV: join(temp, "github-env"),
    BACKUPCTL: join(repoRoot, "bin/backupctl"),
    BACKUPCTL_RUNTIME: "Bun" in globalThis ? "bun" : "deno",
    PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ""}`,
  });
  const result = spawnSync("bash", ["--noprofile", "--norc", "-eo", "pipefail", script], {
    cwd,
    env,
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024,
  });
  return { code: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

interface PlanDocument {
  actions: { type: string; project?: string; source?: string; approval?: string; approval_reason?: string }[];
}
const requiredActions = (plan: PlanDocument) => plan.actions.filter((action) => action.approval === "required");

/** What the pipeline of one pull-request run left in $RUNNER_TEMP/backupctl. */
interface Run {
  temp: string;
  out: string;
  read(name: string): string;
  plan(): PlanDocument;
}

function newRun(): Run {
  const temp = mkdtempSync(join(tmpdir(), "backupctl-runner-"));
  const out = join(temp, "backupctl");
  return {
    temp,
    out,
    read: (name) => readFileSync(join(out, name), "utf8"),
    plan: () => JSON.parse(readFileSync(join(out, "plan.json"), "utf8")) as PlanDocument,
  };
}

describe("docs/examples/backupctl-pr.yml", () => {
  it("runs on every pull request (a required check must report), with write access to pull requests only", () => {
    assert.equal(workflow.name, "backupctl plan");
    const trigger = workflow.on.pull_request;
    // A paths filter leaves a pull request that does not match waiting forever on a required check.
    assert.equal(trigger.paths, undefined, "no paths: filter");
    assert.equal(trigger["paths-ignore"], undefined, "no paths-ignore: filter");
    assert.equal(Object.keys(workflow.on).join(), "pull_request");
    for (const type of ["opened", "synchronize", "reopened", "labeled", "unlabeled"]) {
      assert.ok(trigger.types.includes(type), `runs again on ${type}`);
    }
    assert.deepEqual(workflow.permissions, { contents: "read", "pull-requests": "write" });
    assert.equal(workflow.defaults.run.shell, "bash");
    assert.deepEqual(Object.keys(workflow.jobs), ["plan"]);
    assert.equal(job["runs-on"], "ubuntu-latest");
    assert.equal(job.env.APPROVAL_LABEL, approvalLabel);
    assert.equal(job.env.COMMENT_MARKER, marker);
  });

  it("sets up the runner: full history, Deno, restic from apt, backupctl", () => {
    const steps = job.steps;
    assert.equal(steps[0].uses, "actions/checkout@v4");
    assert.equal(steps[0].with?.["fetch-depth"], 0);
    for (const step of steps.filter((s) => s.uses)) {
      assert.match(step.uses!, /^[\w-]+\/[\w-]+@v\d+$/, `${step.uses} is pinned by major version`);
    }
    const deno = steps.find((s) => s.uses?.startsWith("denoland/setup-deno@"));
    assert.equal(deno?.with?.["deno-version"], "v2.x");
    const apt = steps.find((s) => s.run?.includes("apt-get install"));
    assert.match(apt?.run ?? "", /apt-get install -y[^\n]* restic sqlite3 jq/);
    const install = steps.find((s) => s.run?.includes("npm ci"));
    assert.match(install?.run ?? "", /echo "BACKUPCTL=\$home\/bin\/backupctl" >> "\$GITHUB_ENV"/);
    const order = steps.map((s) => s.id).filter(Boolean);
    assert.deepEqual(order, ["changes", "validate", "diff", "state", "plan", "gate", "comment-body"]);
  });

  it("every step after the change check is skipped when the pull request does not touch the config", () => {
    const steps = job.steps;
    const changes = steps.findIndex((s) => s.id === "changes");
    assert.equal(changes, 1, "right after the checkout of the pull request");
    assert.equal(stepById("changes").env?.BASE_REF, "${{ github.base_ref }}");
    assert.match(stepById("changes").run!, /git diff --quiet "origin\/\$BASE_REF\.\.\.HEAD" -- "\$BACKUPCTL_CONFIG"/);
    for (const step of steps.slice(changes + 1)) {
      // The comment steps depend on validate (skipped with it); every other step checks the output itself.
      if (step.id === "comment-body") assert.match(step.if ?? "", /steps\.validate\.outcome != 'skipped'/);
      else if (step.uses?.startsWith("actions/github-script@")) {
        assert.match(step.if ?? "", /steps\.comment-body\.outcome == 'success'/);
      } else {
        assert.match(step.if ?? "", /^steps\.changes\.outputs\.touched == 'true'( && |$)/, `step ${step.name}`);
      }
    }
  });

  it("backupctl's own checkout is pinned to a tag or commit, with a token for a private repository", () => {
    const ref = job.env.BACKUPCTL_REF;
    assert.match(ref, /^(v\d+\.\d+\.\d+|[0-9a-f]{40})$/, `BACKUPCTL_REF ${ref} is a release tag or a full commit SHA`);
    assert.match(workflowText, /To upgrade, read\s+# CHANGELOG\.md, change it here/, "says how to upgrade");
    const tool = job.steps.find((s) => s.with?.path === ".backupctl-tool");
    assert.ok(tool, "a checkout of backupctl");
    assert.equal(tool.with?.ref, "${{ env.BACKUPCTL_REF }}");
    assert.equal(tool.with?.repository, "${{ vars.BACKUPCTL_REPOSITORY }}");
    assert.equal(tool.with?.token, "${{ secrets.BACKUPCTL_TOKEN || github.token }}");
    assert.match(
      workflowText,
      /secret BACKUPCTL_TOKEN +when that repository is private: a fine-grained personal access/,
    );
    assert.doesNotMatch(workflowText, /vars\.BACKUPCTL_REF/, "the ref is not an unpinned variable any more");
  });

  it("validate, diff, plan and the gate run the commands of the docs; expressions never reach a script", () => {
    assert.match(stepById("validate").run!, /"\$BACKUPCTL" validate /);
    const diff = stepById("diff");
    assert.equal(diff.env?.BASE_REF, "${{ github.base_ref }}");
    assert.match(diff.run!, /"\$BACKUPCTL" diff --against "origin\/\$BASE_REF" --format markdown/);
    const plan = stepById("plan").run!;
    assert.match(plan, /"\$BACKUPCTL" --state-dir "\$out\/state" plan --now "\$now" --format markdown/);
    assert.match(plan, /"\$BACKUPCTL" --state-dir "\$out\/state" plan --now "\$now" --format json/);
    const state = stepById("state");
    assert.equal(state.env?.STATE_URL, "${{ secrets.BACKUPCTL_STATE_URL }}");
    const gate = stepById("gate");
    assert.match(gate.run!, /select\(\.approval == "required"\)/);
    assert.match(gate.run!, /\$APPROVAL_LABEL/);
    assert.equal(gate.env?.PR_LABELS, "${{ toJSON(github.event.pull_request.labels.*.name) }}");
    for (const step of job.steps) {
      assert.ok(!(step.run ?? "").includes("${{"), `step ${step.name} passes expressions through env:`);
    }
    // The comment is written and posted even when validation, the diff or the gate failed.
    assert.match(stepById("comment-body").if ?? "", /!cancelled\(\)/);
  });

  it("the sticky comment: github-script finds the marker, then updates or creates", () => {
    const post = job.steps.find((s) => s.uses?.startsWith("actions/github-script@"));
    assert.ok(post, "a github-script step");
    assert.match(post.if ?? "", /!cancelled\(\)/);
    const script = String(post.with?.script);
    assert.match(script, /process\.env\.COMMENT_MARKER/);
    assert.match(script, /github\.paginate\(github\.rest\.issues\.listComments/);
    assert.match(script, /c\.body\?\.includes\(marker\)/);
    assert.match(script, /github\.rest\.issues\.updateComment\(/);
    assert.match(script, /github\.rest\.issues\.createComment\(/);
    assert.match(stepById("comment-body").run!, /echo "\$COMMENT_MARKER"/);
  });

  it("docs/getting-started.md names the same file, label, marker and secret", () => {
    const guide = readFileSync(join(repoRoot, "docs/getting-started.md"), "utf8");
    assert.ok(guide.includes("docs/examples/backupctl-pr.yml"));
    assert.ok(guide.includes(`\`${job.env.APPROVAL_LABEL}\``), "the label");
    assert.ok(guide.includes(job.env.COMMENT_MARKER), "the marker");
    assert.ok(guide.includes("`BACKUPCTL_STATE_URL`"), "the state secret");
    assert.ok(guide.includes('sqlite3 state.db ".backup'), "the copy command");
    assert.ok(guide.includes("`BACKUPCTL_TOKEN`"), "the token for a private backupctl repository");
    assert.ok(guide.includes("`BACKUPCTL_REF`") && /release tag or a full commit SHA/.test(guide), "the pinned ref");
    assert.doesNotMatch(guide, /`paths:`/, "no paths filter to edit");
    assert.match(guide, /git init -b main /, "the branch the diff and the workflow compare with is main");
  });
});

describe("the workflow's scripts on a real pull request", () => {
  let prod: DemoDir;
  let root: string;
  let clone: string;
  let published: string;
  const runs: Run[] = [];
  const fresh = () => {
    const run = newRun();
    runs.push(run);
    return run;
  };

  before(async () => {
    // "Production": the demo config on main, with three days of backups made by real applies.
    prod = makeDemo();
    root = mkdtempSync(join(tmpdir(), "backupctl-pr-"));
    const demo = readFileSync(prod.config, "utf8");
    // A fixed repository URL, as a production one is: the clone's plan must see the same repository.
    const config = demo.replace('url: ".backupctl/restic-demo"', `url: ${JSON.stringify(prod.repository)}`);
    assert.notEqual(config, demo);
    writeFileSync(prod.config, config);
    writeFileSync(join(prod.dir, ".gitignore"), ".backupctl/\ndemo/\n");
    git(prod.dir, "init", "-q");
    git(prod.dir, "add", ".");
    git(prod.dir, "commit", "-q", "-m", "demo config");
    const today = new Date();
    for (const daysAgo of [3, 2, 1]) {
      const now = new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate() - daysAgo, 4));
      const applied = await runCli(["--config", prod.config, "apply", "--now", now.toISOString()], {
        cwd: prod.dir,
        env: prod.env,
      });
      assert.equal(applied.code, 0, applied.stdout + applied.stderr);
    }
    // The copy the backup host publishes, made as docs/getting-started.md says.
    mkdirSync(join(root, "published"));
    published = join(root, "published", "state.db");
    execFileSync("sqlite3", [join(prod.dir, ".backupctl", "state.db"), `.backup ${published}`]);

    // The pull request: a clone (origin/main), a branch that keeps fewer snapshots.
    clone = join(root, "clone");
    git(root, "clone", "-q", prod.dir, clone);
    git(clone, "checkout", "-q", "-b", "shorter-retention");
    const shorter = config.replace(
      "retention: { last: 3, daily: 7, weekly: 4, monthly: 6 }",
      "retention: { last: 1, daily: 2, weekly: 1, monthly: 1 }",
    );
    assert.notEqual(shorter, config);
    writeFileSync(join(clone, "backup.config.ts"), shorter);
    git(clone, "commit", "-q", "-am", "keep fewer snapshots");
  }, slow);
  after(() => {
    for (const run of runs) rmSync(run.temp, { recursive: true, force: true });
    if (root) rmSync(root, { recursive: true, force: true });
    prod?.cleanup();
  });

  /** validate → diff → state → plan, as the workflow runs them; asserts each step's exit code. */
  function pipeline(run: Run, stateUrl: string, codes = { validate: 0, diff: 0, state: 0, plan: 0 }) {
    const validate = runStep("validate", clone, run.temp);
    assert.equal(validate.code, codes.validate, validate.stdout + validate.stderr);
    const diff = runStep("diff", clone, run.temp, { BASE_REF: "main" });
    assert.equal(diff.code, codes.diff, diff.stdout + diff.stderr);
    const state = runStep("state", clone, run.temp, { STATE_URL: stateUrl, STATE_TOKEN: "" });
    assert.equal(state.code, codes.state, state.stdout + state.stderr);
    const plan = runStep("plan", clone, run.temp);
    assert.equal(plan.code, codes.plan, plan.stdout + plan.stderr);
  }

  const gate = (run: Run, labels: string[]) =>
    runStep("gate", clone, run.temp, { PR_LABELS: JSON.stringify(labels, null, 2) });
  const writeComment = (run: Run, validateOutcome = "success") =>
    runStep("comment-body", clone, run.temp, {
      VALIDATE_OUTCOME: validateOutcome,
      HEAD_SHA: git(clone, "rev-parse", "HEAD").trim(),
      RUN_URL: "https://ci.invalid/acme/backups/actions/runs/1",
    });

  let production: Run;

  it(
    "with the production copy: the diff and the plan flag the shorter retention, the gate holds the check",
    slow,
    () => {
      production = fresh();
      pipeline(production, pathToFileURL(published).href);
      assert.match(production.read("validate.txt"), /^Configuration valid: 1 project, 2 sources, 1 repository\.$/m);

      const diff = production.read("diff.md");
      assert.ok(diff.startsWith("### backupctl config diff against `origin/main`\n"), diff);
      assert.match(diff, /^Diff: 0 added, 0 removed, 4 changed \(4 destructive\)\.$/m);
      assert.match(diff, /> \[!WARNING\]\n> 4 destructive changes: review before merging\./);
      assert.match(diff, /^> - \*\*retention of demo\*\*: `daily 7 → 2` — older daily snapshots will be forgotten/m);

      assert.match(production.read("state.md"), /copy of the production state/);
      const plan = production.read("plan.md");
      assert.ok(plan.startsWith("### backupctl plan: ⛔ Deletions need approval\n"), plan);
      assert.match(
        plan,
        /^> - 1 snapshot of demo\/app in local would be forgotten because retention changed \(last 3 → 1, daily 7 → 2, weekly 4 → 1, monthly 6 → 1\)$/m,
      );
      const required = requiredActions(production.plan());
      assert.deepEqual(required.map((a) => [a.type, a.project, a.source]), [
        ["forget", "demo", "app"],
        ["forget", "demo", "uploads"],
      ]);
      assert.match(required[0].approval_reason ?? "", /^retention changed \(/);

      const held = gate(production, []);
      assert.equal(held.code, 1, held.stdout + held.stderr);
      assert.match(
        held.stdout,
        /⛔ \*\*Deletions need approval\.\*\* Review them, then add the label `backupctl\/approve-deletions`/,
      );
      assert.match(held.stdout, /^- forget 1 snapshot\(s\) of demo\/app in local: retention changed \(last 3 → 1, /m);
      assert.match(held.stdout, /^::error title=backupctl approval gate::/m);
      const otherLabel = gate(production, ["documentation"]);
      assert.equal(otherLabel.code, 1, "another label does not approve");
    },
  );

  it("the approval label lets the check pass", () => {
    const approved = gate(production, ["documentation", approvalLabel]);
    assert.equal(approved.code, 0, approved.stdout + approved.stderr);
    assert.match(
      approved.stdout,
      /^✅ Deletions that need approval, approved with the label `backupctl\/approve-deletions`:/,
    );
    assert.match(approved.stdout, /^- forget 1 snapshot\(s\) of demo\/uploads in local: retention changed/m);
  });

  it("a missing or broken plan fails the gate (it fails closed)", () => {
    const empty = fresh();
    assert.notEqual(gate(empty, [approvalLabel]).code, 0);
    mkdirSync(empty.out, { recursive: true });
    writeFileSync(join(empty.out, "plan.json"), "{ cut short");
    assert.notEqual(gate(empty, [approvalLabel]).code, 0);
  });

  it("the comment: marker first, diff, state note, plan and the gate's verdict", () => {
    gate(production, []);
    const written = writeComment(production);
    assert.equal(written.code, 0, written.stderr);
    const comment = production.read("comment.md");
    const lines = comment.split("\n");
    assert.deepEqual(lines.slice(0, 3), [marker, "## backupctl", ""]);
    const order = [
      "### backupctl config diff against `origin/main`",
      "> Planned against a **copy of the production state**",
      "### backupctl plan: ⛔ Deletions need approval",
      "⛔ **Deletions need approval.**",
    ].map((text) => comment.indexOf(text));
    assert.ok(order.every((at, i) => at > 0 && (i === 0 || at > order[i - 1])), `in order: ${order}`);
    assert.doesNotMatch(comment, /The configuration is invalid/);
    assert.match(
      lines.at(-2) ?? "",
      /^<sub>commit [0-9a-f]{12} · \[workflow run\]\(https:\/\/ci\.invalid\/.*\)<\/sub>$/,
    );
  });

  it("github-script creates the comment once, then updates it", async () => {
    const post = job.steps.find((s) => s.uses?.startsWith("actions/github-script@"))!;
    const body = production.read("comment.md");
    const calls: [string, Record<string, unknown>][] = [];
    let existing: { id: number; user: { type: string }; body: string; html_url: string }[] = [];
    const listComments = () => {
      throw new Error("called through paginate only");
    };
    const github = {
      paginate: (method: unknown, params: Record<string, unknown>) => {
        assert.equal(method, listComments);
        calls.push(["list", params]);
        return Promise.resolve(existing);
      },
      rest: {
        issues: {
          listComments,
          updateComment: (params: Record<string, unknown>) => Promise.resolve(calls.push(["update", params])),
          createComment: (params: Record<string, unknown>) => {
            calls.push(["create", params]);
            return Promise.resolve({ data: { html_url: "https://ci.invalid/comment/1" } });
          },
        },
      },
    };
    const context = { repo: { owner: "acme", repo: "backups" }, payload: { pull_request: { number: 7 } } };
    const core = { info: () => {} };
    const env = { COMMENT_MARKER: marker, RUNNER_TEMP: production.temp };
    const AsyncFunction = Object.getPrototypeOf(async () => {}).constructor;
    const script = new AsyncFunction("github", "context", "core", "require", "process", String(post.with?.script));
    const run = () => script(github, context, core, createRequire(import.meta.url), { env });

    existing = [
      { id: 1, user: { type: "User" }, body: "LGTM", html_url: "" },
      { id: 2, user: { type: "User" }, body: `quoting ${marker}`, html_url: "" },
    ];
    await run();
    assert.deepEqual(calls, [
      ["list", { owner: "acme", repo: "backups", issue_number: 7, per_page: 100 }],
      ["create", { owner: "acme", repo: "backups", issue_number: 7, body }],
    ]);

    calls.length = 0;
    existing.push({ id: 42, user: { type: "Bot" }, body: `${marker}\nan older plan`, html_url: "" });
    await run();
    assert.deepEqual(calls.map(([what]) => what), ["list", "update"]);
    assert.deepEqual(calls[1][1], { owner: "acme", repo: "backups", comment_id: 42, body });

    calls.length = 0;
    writeFileSync(join(production.out, "comment.md"), `${marker}\n${"x".repeat(70_000)}`);
    await run();
    const long = String(calls[1][1].body);
    assert.ok(long.startsWith(marker) && long.length < 65_536, `cut to ${long.length} characters`);
    writeFileSync(join(production.out, "comment.md"), body);
  });

  it("on the base branch's config the same state needs no approval: the gate passes without a label", slow, () => {
    git(clone, "checkout", "-q", "main");
    try {
      const run = fresh();
      pipeline(run, pathToFileURL(published).href);
      assert.equal(
        run.read("diff.md"),
        "### backupctl config diff against `origin/main`\n\nNo changes to the configuration.\n",
      );
      assert.doesNotMatch(run.read("plan.md"), /Deletions need approval/);
      assert.deepEqual(requiredActions(run.plan()), []);
      const passed = gate(run, []);
      assert.equal(passed.code, 0, passed.stdout + passed.stderr);
      assert.equal(passed.stdout, "✅ No deletion needs approval.\n");
    } finally {
      git(clone, "checkout", "-q", "shorter-retention");
    }
  });

  it("without the state secret: an empty state, said in the comment; the diff still flags the change", slow, () => {
    const run = fresh();
    pipeline(run, "");
    assert.equal(readFileSync(join(run.out, "state", "state.db")).subarray(0, 15).toString(), "SQLite format 3");
    assert.match(run.read("state.md"), /Planned against an \*\*empty state\*\*/);
    assert.match(run.read("diff.md"), /^> 4 destructive changes: review before merging\.$/m);
    const plan = run.read("plan.md");
    assert.match(plan, /^\| demo \| backup app → local \| never backed up \|$/m);
    assert.doesNotMatch(plan, /Deletions need approval/);
    assert.equal(gate(run, []).code, 0);
    assert.equal(writeComment(run).code, 0);
    assert.match(run.read("comment.md"), /empty state/);
  });

  it(
    "the same commands directly: diff --against main and plan --format markdown, with their exit codes",
    slow,
    async () => {
      const diff = await runCli(["diff", "--against", "main", "--format", "markdown", "--detailed-exitcode"], {
        cwd: clone,
      });
      assert.equal(diff.code, 2, diff.stderr);
      assert.match(diff.stdout, /⚠️ \*\*destructive:\*\* older daily snapshots will be forgotten/);
      const stateDir = join(root, "direct-state");
      mkdirSync(stateDir);
      execFileSync("sqlite3", [published, `.backup ${join(stateDir, "state.db")}`]);
      const plan = await runCli(["--state-dir", stateDir, "plan", "--format", "markdown", "--detailed-exitcode"], {
        cwd: clone,
      });
      assert.equal(plan.code, 2, plan.stderr);
      assert.match(plan.stdout, /^### backupctl plan: ⛔ Deletions need approval$/m);
      assert.match(plan.stdout, /\| demo \| forget 1 snapshot of app in local \(needs approval\) \|/);
    },
  );

  it("an invalid config fails validate with exit 3, and the comment shows the problem", () => {
    const config = join(clone, "backup.config.ts");
    const valid = readFileSync(config, "utf8");
    writeFileSync(config, valid.replace('schedule: "0 3 * * *"', 'schedule: "0 25 * * *"'));
    try {
      const run = fresh();
      const validate = runStep("validate", clone, run.temp);
      assert.equal(validate.code, 3, validate.stdout + validate.stderr);
      assert.match(run.read("validate.txt"), /projects\.demo\.schedule: invalid cron expression "0 25 \* \* \*"/);
      assert.equal(writeComment(run, "failure").code, 0);
      const comment = run.read("comment.md");
      assert.match(comment, /### ❌ The configuration is invalid\n\n```text\n[^`]*invalid cron expression/);
      assert.doesNotMatch(comment, /backupctl plan:/, "no plan was made");
    } finally {
      writeFileSync(config, valid);
    }
  });

  it("the change check: the config's branch is planned, a branch that touches only other files passes at once", () => {
    const touched = (branch: string) => {
      git(clone, "checkout", "-q", branch);
      const run = fresh();
      mkdirSync(run.temp, { recursive: true });
      const result = runStep("changes", clone, run.temp, { BASE_REF: "main" });
      assert.equal(result.code, 0, result.stdout + result.stderr);
      return { output: readFileSync(join(run.temp, "github-output"), "utf8"), stdout: result.stdout };
    };
    try {
      assert.equal(touched("shorter-retention").output, "touched=true\n");
      git(clone, "checkout", "-q", "-b", "readme-only", "main");
      writeFileSync(join(clone, "README.md"), "# backups\n");
      git(clone, "add", "README.md");
      git(clone, "commit", "-q", "-m", "a readme");
      const readme = touched("readme-only");
      assert.equal(readme.output, "touched=false\n");
      assert.match(readme.stdout, /nothing to plan/);
      mkdirSync(join(clone, "backup"), { recursive: true });
      writeFileSync(join(clone, "backup", "hosts.ts"), "export const hosts = [];\n");
      git(clone, "add", "backup/hosts.ts");
      git(clone, "commit", "-q", "-m", "a file the config imports");
      assert.equal(touched("readme-only").output, "touched=true\n", "a file under CONFIG_PATHS counts");
    } finally {
      git(clone, "checkout", "-q", "shorter-retention");
    }
  });

  it("a base branch without the config: the diff says the whole config is new", () => {
    const emptyTree = git(clone, "hash-object", "-t", "tree", "/dev/null").trim();
    const commit = git(clone, "commit-tree", emptyTree, "-m", "empty").trim();
    git(clone, "update-ref", "refs/remotes/origin/bare", commit);
    const run = fresh();
    mkdirSync(run.out, { recursive: true });
    const diff = runStep("diff", clone, run.temp, { BASE_REF: "bare" });
    assert.equal(diff.code, 0, diff.stderr);
    assert.equal(
      run.read("diff.md"),
      "### backupctl config diff against `origin/bare`\n\nThe base branch has no `backup.config.ts` yet: the whole config is new.\n",
    );
    assert.ok(!existsSync(join(clone, ".backupctl")), "no state was written into the checkout");
  });
});
