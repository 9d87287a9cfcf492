/**
 * Unit tests of saved plans (src/plan/planfile.ts): the checksum sealPlan adds, readPlanFile refusing edited (exit 5)
 * and malformed (exit 64) files, assertCurrent refusing a plan made against another config or state, or applied
 * already (exit 5), and assertRederived refusing a file whose actions are not those the planner gives again from the
 * same config, state and `now` (exit 5), even when its checksum was computed again. Files go to a fresh temp dir.
 * Runs under `deno test -A test/plan/planfile_test.ts` and `bun --no-install test ./test/plan/planfile_test.ts`.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { env, postgres, restic } from "../../src/config/helpers.ts";
import { validateConfig } from "../../src/config/validate.ts";
import { ExitCode, StalePlanError, UsageError } from "../../src/errors.ts";
import { assertCurrent, assertRederived, planDifference, readPlanFile, sealPlan } from "../../src/plan/planfile.ts";
import { plan } from "../../src/plan/planner.ts";
import { policyKey } from "../../src/plan/retention.ts";
import type { InventorySnapshot, ObservedState, Plan } from "../../src/plan/types.ts";
import { readable, type TestPlan } from "../support/plan-fixtures.ts";

const LINEAGE = "8c0f3a52-0000-4000-8000-000000000001";
const PLAN_ID = "5f1d7a0e-3c2b-4d6e-9f10-2a3b4c5d6e7f";

/**
 * The planner's inputs for a plan with an init of offsite (chunker parameters of local), a backup, a copy to offsite, a
 * required forget of three snapshots and a prune; `archive`, disabled, is planned nothing.
 */
function sampleInputs() {
  const config = validateConfig({
    repositories: {
      local: restic({ url: "/srv/restic", password: env("RESTIC_PASSWORD") }),
      offsite: restic({ url: "/srv/offsite", password: env("RESTIC_PASSWORD") }),
    },
    projects: {
      shop: {
        schedule: "0 3 * * *",
        sources: [postgres({ database: "shop" })],
        repositories: ["local", "offsite"],
        retention: { last: 2 },
      },
      archive: {
        enabled: false,
        schedule: "0 4 * * *",
        sources: [postgres({ database: "archive" })],
        repositories: ["local"],
        retention: { last: 2 },
      },
    },
  }, "t.ts");
  const snapshot = (id: string, time: string): InventorySnapshot => ({
    repository: "local",
    id,
    short_id: id.slice(0, 8),
    time,
    project: "shop",
    source: "shop",
    run_id: null,
    hostname: "backup-host",
    tags: [],
  });
  const observed: ObservedState = {
    lineage: LINEAGE,
    serial: 7,
    repositories: { local: { initialized: true } },
    backups: [{ project: "shop", source: "shop", repository: "local", at: "2026-11-20T03:00:00Z" }],
    failures: [],
    snapshots: [
      snapshot("4f2c9d1e00000001", "2026-11-16T03:00:05Z"),
      snapshot("4f2c9d1e00000002", "2026-11-17T03:00:05Z"),
      snapshot("4f2c9d1e00000003", "2026-11-18T03:00:05Z"),
      snapshot("4f2c9d1e00000004", "2026-11-19T03:00:05Z"),
      snapshot("4f2c9d1e00000005", "2026-11-20T03:00:05Z"),
    ],
    retention: [{ project: "shop", source: "shop", repository: "local", policy: policyKey({ last: 7 }), at: "x" }],
    maintenance: [],
    knownProjects: [],
    knownRepositories: [],
    appliedPlans: [],
    partials: [],
  };
  return { loaded: { config, fingerprint: "sha256:config" }, observed, now: new Date("2026-11-21T10:00:00Z") };
}

function samplePlan(): Plan {
  const { loaded, observed, now } = sampleInputs();
  return plan(loaded, observed, now, { generatedAt: new Date("2026-11-21T10:00:05Z"), planId: PLAN_ID });
}

/** What apply does with a saved plan: the planner again, on the present inputs, at the file's `now`, for its projects. */
function rederive(saved: Plan, change: (observed: ObservedState) => void = () => {}): Plan {
  const { loaded, observed } = sampleInputs();
  change(observed);
  return plan(loaded, observed, new Date(saved.now), {
    projects: saved.projects,
    generatedAt: new Date(),
    planId: saved.plan_id,
  });
}

let dir = "";
let counter = 0;

before(() => {
  dir = mkdtempSync(join(tmpdir(), "backupctl-planfile-test-"));
});

after(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Writes text to a new file in the temp dir and returns its path. */
function write(text: string): string {
  const path = join(dir, `plan-${++counter}.json`);
  writeFileSync(path, text);
  return path;
}

const writePlan = (value: unknown) => write(JSON.stringify(value, null, 2) + "\n");

/** assert.throws validator: the error's class, exit code and message. */
function failsWith(kind: typeof StalePlanError | typeof UsageError, exitCode: number, message: RegExp) {
  return (error: unknown) => {
    assert.ok(error instanceof kind, `expected a ${kind.name}, got ${String(error)}`);
    assert.equal(error.exitCode, exitCode);
    assert.match(error.message, message);
    return true;
  };
}

const edited = failsWith(StalePlanError, ExitCode.stalePlan, /was edited after it was made \(checksum mismatch\)/);
const notAPlan = failsWith(UsageError, ExitCode.usage, /is not a plan file \(not JSON, or cut short\)/);

describe("sealPlan", () => {
  it("adds a sha256 checksum and changes nothing else", () => {
    const unsealed = samplePlan();
    const before = structuredClone(unsealed);
    const sealed = sealPlan(unsealed);
    assert.match(sealed.checksum ?? "", /^sha256:[0-9a-f]{64}$/);
    const { checksum: _checksum, ...rest } = sealed;
    assert.deepEqual(rest, unsealed);
    assert.deepEqual(unsealed, before, "the input is left as it was");
    assert.equal(ExitCode.stalePlan, 5);
    assert.equal(ExitCode.usage, 64);
  });

  it("is deterministic, ignores an old checksum, and changes with the content", () => {
    const sealed = sealPlan(samplePlan());
    assert.equal(sealPlan(samplePlan()).checksum, sealed.checksum);
    assert.equal(sealPlan({ ...sealed, checksum: "sha256:old" }).checksum, sealed.checksum);
    assert.notEqual(sealPlan({ ...sealed, now: "2026-11-21T10:00:01Z" }).checksum, sealed.checksum);
  });
});

describe("readPlanFile", () => {
  it("reads back a sealed plan", () => {
    const sealed = sealPlan(samplePlan());
    assert.deepEqual(
      readable(sealed).actions.map((a) => [a.type, a.approval ?? "", a.chunker_from ?? "", a.from ?? ""]),
      [
        ["init", "", "local", ""],
        ["backup", "", "", ""],
        ["copy", "", "", "local"],
        ["forget", "required", "", ""],
        ["prune", "", "", ""],
      ],
    );
    assert.deepEqual(readPlanFile(writePlan(sealed)), sealed);
  });

  it("accepts a file re-indented or with its keys in another order", () => {
    const sealed = sealPlan(samplePlan());
    const reversed = Object.fromEntries(Object.entries(sealed).reverse());
    assert.deepEqual(readPlanFile(write(JSON.stringify(reversed))), sealed);
  });

  it("refuses an edited snapshot id, reason, approval or action list (exit 5)", () => {
    const sealed = sealPlan(samplePlan());
    const forget = sealed.actions.findIndex((a) => a.type === "forget");
    const edits: ((plan: TestPlan) => void)[] = [
      (p) => p.actions[forget].snapshots![0] = "4f2c9d1e00000005",
      (p) => p.actions[forget].snapshots!.push("4f2c9d1e00000004"),
      (p) => p.actions[forget].reason = "retention last 7 keeps 7 of 5 snapshots",
      (p) => p.actions[forget].approval = "routine",
      (p) => p.actions.splice(1, 1),
      (p) => p.state.serial = 8,
      (p) => p.checksum = `sha256:${"0".repeat(64)}`,
    ];
    for (const edit of edits) {
      const copy = structuredClone(sealed);
      edit(copy);
      const path = writePlan(copy);
      assert.throws(() => readPlanFile(path), edited, String(edit));
      assert.throws(() => readPlanFile(path), new RegExp(path.replaceAll(/[.\\/-]/g, "\\$&")));
    }
  });

  it("refuses a key added to the plan or to an action, though the reader would drop it (exit 5)", () => {
    const sealed = sealPlan(samplePlan());
    const extraAction = structuredClone(sealed);
    Object.assign(extraAction.actions[1], { command: "rm -rf /srv" });
    const extraTop = { ...structuredClone(sealed), approved_by: "mallory" };
    for (const edit of [extraAction, extraTop]) assert.throws(() => readPlanFile(writePlan(edit)), edited);
  });

  it("refuses truncated JSON, non-JSON and empty files (exit 64)", () => {
    const text = JSON.stringify(sealPlan(samplePlan()), null, 2);
    for (const content of [text.slice(0, Math.floor(text.length / 2)), text.slice(0, -1), "plan: yes\n", ""]) {
      assert.throws(() => readPlanFile(write(content)), notAPlan, JSON.stringify(content.slice(0, 20)));
    }
  });

  it("refuses another format_version (exit 64)", () => {
    const sealed = sealPlan({ ...samplePlan(), format_version: 2 as 1 });
    assert.throws(
      () => readPlanFile(writePlan(sealed)),
      failsWith(UsageError, 64, /has plan format version 2; this backupctl reads version 1$/),
    );
    assert.throws(
      () => readPlanFile(writePlan({ ...sealed, format_version: "1" })),
      failsWith(UsageError, 64, /has plan format version "1"/),
    );
  });

  it("refuses a document with missing or mistyped fields, naming the field (exit 64)", () => {
    const sealed = sealPlan(samplePlan());
    const without = (key: keyof Plan) => {
      const copy: Partial<Plan> = structuredClone(sealed);
      delete copy[key];
      return copy;
    };
    const cases: [unknown, RegExp][] = [
      [without("actions"), /is not a valid plan file \(actions: /],
      [without("checksum"), /is not a valid plan file \(checksum: /],
      [without("plan_id"), /is not a valid plan file \(plan_id: /],
      [without("format_version"), /is not a valid plan file \(format_version: /],
      [{ ...sealed, plan_id: "" }, /is not a valid plan file \(plan_id: /],
      [{ ...sealed, state: { lineage: LINEAGE } }, /is not a valid plan file \(state\.serial: /],
      [{ ...sealed, actions: [{ ...sealed.actions[0], type: "destroy" }] }, /\(actions\.0\.type: /],
      [[], /is not a valid plan file \(document: /],
      [null, /is not a valid plan file \(document: /],
      [42, /is not a valid plan file \(document: /],
    ];
    for (const [value, message] of cases) {
      assert.throws(() => readPlanFile(writePlan(value)), failsWith(UsageError, 64, message), String(message));
    }
  });

  it("refuses a snapshot id that is not a restic id, even with a matching checksum (exit 64)", () => {
    const sealed = samplePlan();
    const forget = sealed.actions.find((a) => a.type === "forget")!;
    for (const id of ["--password-file=/etc/shadow", "latest", "4F2C9D1E", "4f2c9d1"]) {
      forget.snapshots = [id];
      assert.throws(
        () => readPlanFile(writePlan(sealPlan(sealed))),
        failsWith(UsageError, 64, /\(actions\.3\.snapshots\.0: /),
        id,
      );
    }
  });

  it("refuses an action whose fields do not match its type, even with a matching checksum (exit 64)", () => {
    const sealed = sealPlan(samplePlan());
    const index = (type: string) => sealed.actions.findIndex((a) => a.type === type);
    // Each edit leaves fields of another type of action, or drops one its type needs; sealed again each time.
    const cases: [(plan: Record<string, unknown>[]) => void, RegExp][] = [
      [(actions) => delete actions[index("prune")].repository, /\(actions\.4\.repository: /],
      [(actions) => delete actions[index("forget")].approval, /\(actions\.3\.approval: /],
      [(actions) => delete actions[index("copy")].from, /\(actions\.2\.from: /],
      [(actions) => actions[index("backup")].type = "forget", /\(actions\.1\.snapshots: /],
      [(actions) => actions[index("init")].type = "reboot", /\(actions\.0\.type: /],
      [
        (actions) => Object.assign(actions[index("prune")], { type: "recover", recover: "partial_snapshot" }),
        /\(actions\.4\.project: /,
      ],
      [
        (actions) => Object.assign(actions[index("prune")], { type: "recover", recover: "everything" }),
        /\(actions\.4\.recover: /,
      ],
    ];
    for (const [edit, message] of cases) {
      const copy = structuredClone(sealed);
      const actions: Record<string, unknown>[] = copy.actions;
      edit(actions);
      assert.throws(() => readPlanFile(writePlan(sealPlan(copy))), failsWith(UsageError, 64, message), String(edit));
    }
  });

  it("says when the file cannot be read (exit 64)", () => {
    const path = join(dir, "no-such-plan.json");
    assert.throws(
      () => readPlanFile(path),
      failsWith(UsageError, 64, /^cannot read the plan file .*no-such-plan\.json/),
    );
  });
});

describe("assertCurrent", () => {
  const sealed = sealPlan(samplePlan());
  const current = { fingerprint: "sha256:config", lineage: LINEAGE, serial: 7, appliedPlans: ["another-plan"] };
  const stale = (message: RegExp) => failsWith(StalePlanError, ExitCode.stalePlan, message);
  const again = /; run `backupctl plan --out` again and review the new plan$/;

  it("passes when the config, the state and the applied plans all match", () => {
    assert.doesNotThrow(() => assertCurrent(sealed, current));
    assert.doesNotThrow(() => assertCurrent(sealed, { ...current, appliedPlans: [] }));
  });

  it("refuses a plan made with another config", () => {
    const check = () => assertCurrent(sealed, { ...current, fingerprint: "sha256:other" });
    assert.throws(check, stale(/^the configuration changed since the plan was made; /));
    assert.throws(check, again);
  });

  it("refuses a plan made against another state database", () => {
    const check = () => assertCurrent(sealed, { ...current, lineage: "another-lineage" });
    assert.throws(
      check,
      stale(new RegExp(`^the plan was made against another state database \\(lineage ${LINEAGE}\\); `)),
    );
    assert.throws(check, again);
  });

  it("refuses a plan made before the state changed", () => {
    const check = () => assertCurrent(sealed, { ...current, serial: 8 });
    assert.throws(check, stale(/^the state changed since the plan was made \(serial 7 → 8\); /));
    assert.throws(check, again);
  });

  it("refuses a plan already applied, before anything else", () => {
    const check = () => assertCurrent(sealed, { ...current, appliedPlans: ["another-plan", PLAN_ID] });
    assert.throws(check, stale(/^this plan was already applied; /));
    assert.throws(check, again);
    // An applied plan has bumped the serial: it still says "already applied", the clearer reason.
    assert.throws(
      () => assertCurrent(sealed, { ...current, serial: 8, appliedPlans: [PLAN_ID] }),
      stale(/^this plan was already applied; /),
    );
  });
});

describe("assertRederived", () => {
  const stale = (message: RegExp) => failsWith(StalePlanError, ExitCode.stalePlan, message);
  const tail =
    /; it was edited after it was made, or the state changed since \(a process that died, an inventory refresh\); run `backupctl plan --out` again and review the new plan$/;
  /** The sealed sample plan, edited, sealed again as docs/cli.md describes, and read back: the checksum passes. */
  const resealed = (edit: (plan: TestPlan) => void): { path: string; saved: Plan } => {
    const copy = structuredClone(sealPlan(samplePlan()));
    edit(copy);
    const path = writePlan(sealPlan(copy));
    return { path, saved: readPlanFile(path) };
  };

  it("passes a plan read back from its file: the planner gives it again from the same config, state and now", () => {
    const path = writePlan(sealPlan(samplePlan()));
    const saved = readPlanFile(path);
    assert.deepEqual(saved.projects, ["shop"], "the disabled project is not among the plan's projects");
    const derived = rederive(saved);
    assert.equal(planDifference(saved, derived), undefined);
    assert.doesNotThrow(() => assertRederived(path, saved, derived));
    // Made for --project shop, or with its warnings and generated_at changed: the same decisions.
    const { loaded, observed, now } = sampleInputs();
    const forShop = plan(loaded, observed, now, { projects: ["shop"], generatedAt: new Date(0), planId: PLAN_ID });
    assert.equal(planDifference(saved, forShop), undefined);
    assert.equal(
      planDifference({ ...saved, warnings: ["x"], generated_at: "2026-11-21T10:01:00Z" }, derived),
      undefined,
    );
  });

  it("refuses the newest snapshot swapped in for a forgotten one and sealed again (exit 5), naming both ids", () => {
    const { path, saved } = resealed((p) => {
      const forget = p.actions.find((a) => a.type === "forget")!;
      assert.deepEqual(forget.snapshots, ["4f2c9d1e00000003", "4f2c9d1e00000002", "4f2c9d1e00000001"]);
      forget.snapshots![0] = "4f2c9d1e00000005";
    });
    const derived = rederive(saved);
    assert.equal(
      planDifference(saved, derived),
      "the file's actions differ from what the config and state give: a4 (forget 3 snapshots of shop in local " +
        "(needs approval)) differs in snapshots (the file names 4f2c9d1e00000005 where the config and state name " +
        "4f2c9d1e00000003)",
    );
    const refusal = () => assertRederived(path, saved, derived);
    assert.throws(refusal, stale(new RegExp(`^${path.replaceAll(/[.\\/-]/g, "\\$&")}: the file's actions differ`)));
    assert.throws(refusal, stale(/differs in snapshots/));
    assert.throws(refusal, stale(tail));
  });

  it("names a changed approval with its values, a changed reason without quoting it", () => {
    const approval = resealed((p) => p.actions.find((a) => a.type === "forget")!.approval = "routine").saved;
    assert.match(
      planDifference(approval, rederive(approval))!,
      /: a4 \(forget 3 snapshots of shop in local\) differs in approval \(the file: "routine"; the config and state: "required"\)$/,
    );
    const reason = resealed((p) => p.actions[1].reason = "hunter2 is the password").saved;
    const said = planDifference(reason, rederive(reason))!;
    assert.match(said, /: a2 \(backup shop → local\) differs in reason$/);
    assert.doesNotMatch(said, /hunter2/);
  });

  it("refuses a file lacking an action, with one more, or with another in its place", () => {
    const fewer = resealed((p) => p.actions.pop()).saved;
    assert.match(
      planDifference(fewer, rederive(fewer))!,
      /: the config and state give a5 \(prune local\), the file does not$/,
    );
    const more = resealed((p) =>
      p.actions.push({
        id: "a6",
        type: "check",
        repository: "local",
        reason: p.actions[4].reason,
        destructive: false,
      })
    ).saved;
    assert.match(
      planDifference(more, rederive(more))!,
      /: the file has a6 \(check local\), the config and state do not$/,
    );
    // A process that died since the plan was made: its leftovers are recovered first, in front of the rest.
    const saved = readPlanFile(writePlan(sealPlan(samplePlan())));
    const died = rederive(saved, (observed) => {
      observed.leftovers = { interruptedRuns: [], staleLocks: [], files: ["tmp/secret-4242-abc"] };
    });
    assert.match(
      planDifference(saved, died)!,
      /: the file has a1 \(init offsite\) where the config and state give a1 \(recover: delete 1 leftover private folder\)$/,
    );
  });

  it("compares the projects, the summary and the overdue projects too", () => {
    const projects = resealed((p) => p.projects = ["shop", "archive"]).saved;
    assert.equal(
      planDifference(projects, rederive(projects)),
      "the file's projects (shop, archive) differ from what the config and state give (shop)",
    );
    const summary = resealed((p) => p.summary.forget = 0).saved;
    assert.equal(
      planDifference(summary, rederive(summary)),
      "the file's summary differs from what the config and state give",
    );
    const overdue = resealed((p) => p.overdue = [{ project: "shop", last_success: "x", max_age: "2d" }]).saved;
    assert.equal(
      planDifference(overdue, rederive(overdue)),
      "the file's overdue projects (shop) differ from what the config and state give ((none))",
    );
  });

  it("readPlanFile refuses a `now` that is not a time (exit 64): the plan is made again at it", () => {
    const sealed = sealPlan({ ...samplePlan(), now: "yesterday" });
    assert.throws(
      () => readPlanFile(writePlan(sealed)),
      failsWith(UsageError, 64, /\(now: expected an ISO-8601 time\)/),
    );
  });
});
