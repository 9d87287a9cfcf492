/**
 * Saved plans: `plan --out FILE` writes the plan document with a checksum; `apply FILE` reads it back, refuses a
 * malformed or stale one, makes the plan again from the present config and state at the file's `now`, refuses the file
 * unless that gives the same actions, and executes exactly them — once.
 *
 * The checksum has no key: anyone who can edit the file can seal it again. It only catches accidents (a truncated copy,
 * a stray edit); what makes an edited plan harmless is that apply runs nothing the config and state do not give.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { canonicalJson } from "../config/fingerprint.ts";
import { StalePlanError, UsageError } from "../errors.ts";
import {
  type Action,
  documentAction,
  ofType,
  type Plan,
  type PlanAction,
  planDocument,
  planFileSchema,
  type PlanToApply,
} from "./document.ts";
import { describeAction } from "./render.ts";

/** The checksum of a plan document: sha256 of its canonical JSON without the checksum itself. */
function checksumOf(document: object): string {
  const rest = Object.fromEntries(Object.entries(document).filter(([key]) => key !== "checksum"));
  return `sha256:${createHash("sha256").update(canonicalJson(rest)).digest("hex")}`;
}

/** The plan as saved: its document (a plan to apply loses its prune triggers), with its checksum. */
export function sealPlan(plan: Plan | PlanToApply): Plan {
  const document = planDocument(plan);
  return { ...document, checksum: checksumOf(document) };
}

/** Reads a saved plan; a file that is not one is a usage error (64), an edited one is refused (5). */
export function readPlanFile(path: string): Plan {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new UsageError(`cannot read the plan file ${path}: ${(error as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new UsageError(
      `${path} is not a plan file (not JSON, or cut short); make a new one with \`backupctl plan --out\``,
    );
  }
  if (typeof value !== "object" || value === null) {
    throw new UsageError(`${path} is not a valid plan file (document: expected an object)`);
  }
  if ("format_version" in value && value.format_version !== 1) {
    throw new UsageError(
      `${path} has plan format version ${JSON.stringify(value.format_version)}; this backupctl reads version 1`,
    );
  }
  // Each action is checked against its own type: a prune without a repository, a forget without snapshot ids, a
  // recover of an unknown kind are refused here, before anything runs.
  const parsed = planFileSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new UsageError(`${path} is not a valid plan file (${issue.path.join(".") || "document"}: ${issue.message})`);
  }
  const plan = parsed.data;
  // Over the document as written, not as parsed: parsing drops keys it does not know, and an added key is an edit too.
  if (checksumOf(value) !== plan.checksum) {
    throw new StalePlanError(`${path} was edited after it was made (checksum mismatch); make a new plan`);
  }
  return plan;
}

const again = "run `backupctl plan --out` again and review the new plan";

/** Refuses a plan made against another config or state, or one already applied (exit 5). */
export function assertCurrent(
  plan: Plan,
  current: { fingerprint: string; lineage: string; serial: number; appliedPlans: readonly string[] },
): void {
  if (current.appliedPlans.includes(plan.plan_id)) {
    throw new StalePlanError(`this plan was already applied; ${again}`);
  }
  if (plan.config_fingerprint !== current.fingerprint) {
    throw new StalePlanError(`the configuration changed since the plan was made; ${again}`);
  }
  if (plan.state.lineage !== current.lineage) {
    throw new StalePlanError(
      `the plan was made against another state database (lineage ${plan.state.lineage}); ${again}`,
    );
  }
  if (plan.state.serial !== current.serial) {
    throw new StalePlanError(
      `the state changed since the plan was made (serial ${plan.state.serial} → ${current.serial}); ${again}`,
    );
  }
}

/**
 * Refuses a saved plan that is not the plan the config and state give now (exit 5). `derived` is that plan: made again
 * by the planner from the present config and state (observed as `plan` observes them), at the file's `now`, for its
 * projects. A file edited and sealed again, or made before the state changed in a way the serial does not count (a
 * process that died since, an inventory refresh), is refused here.
 */
export function assertRederived(path: string, saved: Plan, derived: Plan): void {
  const difference = planDifference(saved, derived);
  if (difference === undefined) return;
  throw new StalePlanError(
    `${path}: ${difference}; it was edited after it was made, or the state changed since (a process that died, an ` +
      `inventory refresh); ${again}`,
  );
}

/**
 * What is left of a saved plan that was applied with deletions held for approval: exactly its held forgets, to run
 * once, approved (`apply FILE --auto-approve`); everything else in it ran already. The file must still be made against
 * this config (fingerprint) and state database (lineage); the serial has moved (that apply bumped it), so instead each
 * held forget is checked against `derived`, the plan the config and state give now at the file's `now`: retention must
 * still forget every snapshot it names in that group. A snapshot forgotten since, or kept now, makes the file stale
 * (exit 5). New snapshots may make retention forget more in the group: those wait for the next plan.
 */
export function heldRemainder(
  path: string,
  saved: Plan,
  held: readonly string[],
  derived: Plan | PlanToApply,
  current: { fingerprint: string; lineage: string },
): PlanToApply {
  if (saved.config_fingerprint !== current.fingerprint) {
    throw new StalePlanError(
      `the configuration changed since the plan was made; its held deletions cannot run; ${again}`,
    );
  }
  if (saved.state.lineage !== current.lineage) {
    throw new StalePlanError(
      `the plan was made against another state database (lineage ${saved.state.lineage}); ${again}`,
    );
  }
  const derivedActions: readonly (Action | PlanAction)[] = derived.actions;
  const actions = held.map((id) => {
    const action = saved.actions.find((a) => a.id === id);
    if (action?.type === "forget") {
      const same = derivedActions.filter(ofType("forget")).find((a) =>
        a.project === action.project && a.source === action.source && a.repository === action.repository
      );
      stillDeleted(path, label(action), action.snapshots, same?.snapshots, "forget");
      return action;
    }
    if (action?.type === "pitr_expire") {
      const same = derivedActions.filter(ofType("pitr_expire")).find((a) =>
        a.project === action.project && a.source === action.source && a.stanza === action.stanza
      );
      const what = `expiration of ${action.project}/${action.source} (stanza ${action.stanza})`;
      stillDeleted(path, what, action.labels, same?.labels, "expire");
      return action;
    }
    throw new StalePlanError(
      `${path}: the state records ${id} as a held deletion, the file has no such forget or expiration; ${again}`,
    );
  });
  const forget = actions.reduce(
    (n, action) => n + (action.type === "forget" ? action.snapshots.length : action.labels.length),
    0,
  );
  return {
    ...saved,
    actions,
    summary: { backup: 0, copy: 0, init: 0, forget, prune: 0, check: 0, verify: 0 },
    warnings: [],
    overdue: [],
    not_managed: [],
  };
}

/**
 * Refuses a held deletion that retention would no longer make in full: something it names was deleted since, or is
 * kept now. What runs from a saved plan is only ever what its reviewer saw, and still due.
 */
function stillDeleted(
  path: string,
  what: string,
  named: readonly string[],
  dueNow: readonly string[] | undefined,
  verb: string,
): void {
  const gone = named.filter((name) => !(dueNow ?? []).includes(name));
  if (gone.length === 0) return;
  throw new StalePlanError(
    `${path}: the held ${what} no longer matches what the config and state give: retention does not ${verb} ` +
      `${gone.slice(0, 3).join(", ")}${gone.length > 3 ? ` and ${gone.length - 3} more` : ""} now ` +
      `(deleted since, or kept); ${again}`,
  );
}

/**
 * Where a saved plan departs from its re-derivation, in words, or undefined when it does not: the projects, then the
 * first action that differs, then the summary and the overdue projects (apply sends their alerts). Values are shown
 * only for names, flags and snapshot ids; reasons and paths are only named.
 */
export function planDifference(saved: Plan, derived: Plan | PlanToApply): string | undefined {
  const given = "what the config and state give";
  if (canonicalJson(saved.projects) !== canonicalJson(derived.projects)) {
    return `the file's projects (${namesOf(saved.projects)}) differ from ${given} (${namesOf(derived.projects)})`;
  }
  const count = Math.max(saved.actions.length, derived.actions.length);
  for (let i = 0; i < count; i++) {
    const inFile: PlanAction | undefined = saved.actions[i];
    // Compared as documents: the file has no prune triggers.
    const made: PlanAction | undefined = i < derived.actions.length ? documentAction(derived.actions[i]) : undefined;
    if (canonicalJson(inFile) === canonicalJson(made)) continue;
    const differ = `the file's actions differ from ${given}`;
    if (made === undefined) return `${differ}: the file has ${label(inFile)}, the config and state do not`;
    if (inFile === undefined) return `${differ}: the config and state give ${label(made)}, the file does not`;
    if (identity.some((key) => canonicalJson(fieldsOf(inFile)[key]) !== canonicalJson(fieldsOf(made)[key]))) {
      return `${differ}: the file has ${label(inFile)} where the config and state give ${label(made)}`;
    }
    return `${differ}: ${label(inFile)} differs in ${fieldsDiffering(inFile, made).join(", ")}`;
  }
  if (canonicalJson(saved.summary) !== canonicalJson(derived.summary)) {
    return `the file's summary differs from ${given}`;
  }
  if (canonicalJson(saved.overdue) !== canonicalJson(derived.overdue)) {
    const projects = (plan: Plan) => namesOf(plan.overdue.map((o) => o.project));
    return `the file's overdue projects (${projects(saved)}) differ from ${given} (${projects(derived)})`;
  }
  return undefined;
}

/** What an action is about: a difference here is another action, not the same one changed. */
const identity = ["type", "recover", "project", "source", "repository"] as const;
/** Fields whose values may be shown: names, flags, ids. The rest (reasons, paths) is only named. */
const shown = new Set<string>([
  "id",
  "destructive",
  "run_id",
  "approval",
  "read_data_subset",
  "chunker_from",
  "from",
]);

function label(action: PlanAction): string {
  return `${String(action.id)} (${describeAction(action)})`;
}

function namesOf(names: readonly string[]): string {
  return names.length === 0 ? "(none)" : names.join(", ");
}

/** An action's fields by name, for comparing actions of any type field by field. */
function fieldsOf(action: PlanAction): Readonly<Record<string, unknown>> {
  return action;
}

/** The snapshot ids an action names (forget, copy, a partial snapshot's recover), or none. */
function snapshotsOf(action: PlanAction): readonly string[] {
  return "snapshots" in action ? action.snapshots : [];
}

function fieldsDiffering(inFile: PlanAction, made: PlanAction): string[] {
  const [file, plan] = [fieldsOf(inFile), fieldsOf(made)];
  const keys = [...new Set([...Object.keys(file), ...Object.keys(plan)])];
  return keys.filter((key) => canonicalJson(file[key]) !== canonicalJson(plan[key])).map((key) => {
    if (key === "snapshots") {
      const only = (from: PlanAction, other: PlanAction) => {
        const ids = snapshotsOf(from).filter((id) => !snapshotsOf(other).includes(id));
        return ids.length === 0
          ? "none"
          : ids.slice(0, 3).join(", ") + (ids.length > 3 ? ` and ${ids.length - 3} more` : "");
      };
      const [fileOnly, madeOnly] = [only(inFile, made), only(made, inFile)];
      return fileOnly === "none" && madeOnly === "none"
        ? "snapshots (the same ids in another order)"
        : `snapshots (the file names ${fileOnly} where the config and state name ${madeOnly})`;
    }
    if (shown.has(key)) {
      const value = (fields: Readonly<Record<string, unknown>>) =>
        fields[key] === undefined ? "none" : JSON.stringify(fields[key]);
      return `${key} (the file: ${value(file)}; the config and state: ${value(plan)})`;
    }
    return key;
  });
}
