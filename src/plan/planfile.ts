/**
 * Saved plans: `plan --out FILE` writes the plan document with a checksum; `apply FILE` reads it back, refuses an
 * edited, malformed or stale one, and executes exactly its actions — once.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { z } from "zod";
import { canonicalJson } from "../config/fingerprint.ts";
import { StalePlanError, UsageError } from "../errors.ts";
import type { Plan } from "./types.ts";

function checksumOf(plan: Plan): string {
  const { checksum: _ignored, ...rest } = plan;
  return `sha256:${createHash("sha256").update(canonicalJson(rest)).digest("hex")}`;
}

/** The plan as saved: with its checksum. */
export function sealPlan(plan: Plan): Plan {
  return { ...plan, checksum: checksumOf(plan) };
}

const action = z.object({
  id: z.string(),
  type: z.enum(["init", "backup", "copy", "forget", "prune", "check", "verify", "recover"]),
  project: z.string().optional(),
  source: z.string().optional(),
  repository: z.string().optional(),
  reason: z.string(),
  destructive: z.boolean(),
  recover: z.enum(["interrupted_run", "stale_lock", "leftover_files", "restic_unlock", "partial_snapshot"]).optional(),
  run_id: z.string().optional(),
  paths: z.array(z.string()).optional(),
  snapshots: z.array(z.string().regex(/^[0-9a-f]{8,64}$/)).optional(),
  approval: z.enum(["routine", "required"]).optional(),
  approval_reason: z.string().optional(),
  read_data_subset: z.string().optional(),
  chunker_from: z.string().optional(),
  from: z.string().optional(),
});

const planSchema = z.object({
  format_version: z.literal(1),
  plan_id: z.string().min(1),
  generated_at: z.string(),
  now: z.string(),
  config_fingerprint: z.string(),
  state: z.object({ lineage: z.string(), serial: z.number().int() }),
  projects: z.array(z.string()),
  actions: z.array(action),
  summary: z.record(z.string(), z.number()),
  warnings: z.array(z.string()),
  overdue: z.array(z.unknown()),
  not_managed: z.array(z.unknown()),
  next_due: z.array(z.unknown()),
  checksum: z.string(),
});

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
  if (typeof value === "object" && value !== null && "format_version" in value && value.format_version !== 1) {
    throw new UsageError(
      `${path} has plan format version ${JSON.stringify(value.format_version)}; this backupctl reads version 1`,
    );
  }
  const parsed = planSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new UsageError(`${path} is not a valid plan file (${issue.path.join(".") || "document"}: ${issue.message})`);
  }
  const plan = parsed.data as unknown as Plan;
  // Over the document as written, not as parsed: parsing drops keys it does not know, and an added key is an edit too.
  if (checksumOf(value as Plan) !== plan.checksum) {
    throw new StalePlanError(`${path} was edited after it was made (checksum mismatch); make a new plan`);
  }
  return plan;
}

/** Refuses a plan made against another config or state, or one already applied (exit 5). */
export function assertCurrent(
  plan: Plan,
  current: { fingerprint: string; lineage: string; serial: number; appliedPlans: readonly string[] },
): void {
  const again = "run `backupctl plan --out` again and review the new plan";
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
