/**
 * The plan document, defined once: the zod schemas of its actions (a union keyed on `type`, recover split by what it
 * recovers) and of the whole plan. The planner builds these types, the plan-file reader checks a file against them,
 * the executor runs them: every TypeScript type here is inferred from its schema.
 *
 * One field is not in the document: a prune's `trigger`, why the planner planned it. Writing it would change the
 * plan JSON (golden plans, saved plans of earlier versions), so the planner's output for apply ({@link PlanToApply})
 * carries it and the document ({@link Plan}, what `plan --format json` and `plan --out` write) does not. A saved plan
 * is applied with the triggers of the plan made again from it (see cli/apply.ts).
 */
import { z } from "zod";

const reason = z.string();
const destructive = z.boolean();
/** A restic snapshot id, full or short. */
const snapshotId = z.string().regex(/^[0-9a-f]{8,64}$/);
const approval = z.enum(["routine", "required"]);

/** A repository to initialize; one that only receives copies takes the chunker parameters of `chunker_from`. */
const initAction = z.object({
  id: z.string(),
  type: z.literal("init"),
  repository: z.string(),
  chunker_from: z.string().optional(),
  reason,
  destructive,
});

/** A source to back up into the project's first repository. */
const backupAction = z.object({
  id: z.string(),
  type: z.literal("backup"),
  project: z.string(),
  source: z.string(),
  repository: z.string(),
  reason,
  destructive,
});

/** `restic copy` of `snapshots` (plus the snapshot this plan's backup makes) from `from` into `repository`. */
const copyAction = z.object({
  id: z.string(),
  type: z.literal("copy"),
  project: z.string(),
  source: z.string(),
  repository: z.string(),
  from: z.string(),
  snapshots: z.array(snapshotId),
  reason,
  destructive,
});

/** Retention's deletions in one (project, source, repository) group; `approval_reason` says why one is `required`. */
const forgetAction = z.object({
  id: z.string(),
  type: z.literal("forget"),
  project: z.string(),
  source: z.string(),
  repository: z.string(),
  snapshots: z.array(snapshotId),
  destructive,
  approval,
  approval_reason: z.string().optional(),
  reason,
});

const pruneFields = {
  id: z.string(),
  type: z.literal("prune"),
  repository: z.string(),
  reason,
  destructive,
};

/**
 * Why a prune is planned. `after-forget`: only because of this plan's forgets in the repository (apply skips it when
 * none of them ran); `forgotten`: snapshots forgotten before this plan make it due (never pruned, half of them gone,
 * or the default cadence); `unfinished`: the prune after earlier forgets failed or was cut short; `cadence`: the
 * `prune.every` a project sets has passed; `requested`: `forget --prune` asked for it.
 */
export const pruneTriggers = ["after-forget", "forgotten", "unfinished", "cadence", "requested"] as const;
export type PruneTrigger = (typeof pruneTriggers)[number];

const pruneDocument = z.object(pruneFields);
const prunePlanned = z.object({ ...pruneFields, trigger: z.enum(pruneTriggers) });

/** `restic check`, reading `read_data_subset` of the data when set. */
const checkAction = z.object({
  id: z.string(),
  type: z.literal("check"),
  repository: z.string(),
  reason,
  destructive,
  read_data_subset: z.string().optional(),
});

/** A restore drill of the project from its first repository. */
const verifyAction = z.object({
  id: z.string(),
  type: z.literal("verify"),
  project: z.string(),
  repository: z.string(),
  reason,
  destructive,
});

/** A pgBackRest stanza: one pgbackrest() source of a project. */
const stanzaFields = { project: z.string(), source: z.string(), stanza: z.string() };
/** A pgBackRest backup label, e.g. `20261206-223228F` or `20261206-223228F_20261207-010000I`. */
const backupLabel = z.string().regex(/^\d{8}-\d{6}F(_\d{8}-\d{6}[DI])?$/);

/** `pgbackrest stanza-create`: the stanza does not exist in its repository yet (counted as an init). */
const stanzaCreateAction = z.object({
  id: z.string(),
  type: z.literal("stanza_create"),
  ...stanzaFields,
  reason,
  destructive,
});

/** `pgbackrest backup --type=…`: a backup of the stanza due on its type's schedule (counted as a backup). */
const pitrBackupAction = z.object({
  id: z.string(),
  type: z.literal("pitr_backup"),
  ...stanzaFields,
  backup_type: z.enum(["full", "diff", "incr"]),
  reason,
  destructive,
});

/**
 * `pgbackrest expire --set=…` of each backup set the project's retention no longer keeps, by label, with the backups
 * that depend on them (counted with the snapshots to forget); held for approval like a forget.
 */
const pitrExpireAction = z.object({
  id: z.string(),
  type: z.literal("pitr_expire"),
  ...stanzaFields,
  labels: z.array(backupLabel),
  destructive,
  approval,
  approval_reason: z.string().optional(),
  reason,
});

/** `pgbackrest check`: configuration, repository and a WAL segment reaching the archive (counted as a check). */
const pitrCheckAction = z.object({
  id: z.string(),
  type: z.literal("pitr_check"),
  ...stanzaFields,
  reason,
  destructive,
});

/**
 * A recover action of one kind: the fields every kind has (id, type, the kind; whether it deletes, why) around the
 * kind's own, in the order the plan document has always written them.
 */
function recoverKind<K extends string, F extends z.ZodRawShape, T extends z.ZodRawShape>(kind: K, fields: F, tail: T) {
  return z.object({
    id: z.string(),
    type: z.literal("recover"),
    recover: z.literal(kind),
    ...fields,
    destructive,
    ...tail,
    reason,
  });
}

/** A run left `running` by a dead process: marked interrupted. */
const recoverInterruptedRun = recoverKind("interrupted_run", { project: z.string(), run_id: z.string() }, {});

/** A project lock file of a dead process: removed. */
const recoverStaleLock = recoverKind("stale_lock", { project: z.string(), run_id: z.string().optional() }, {});

/** Private temporary folders of dead processes, relative to the state folder: deleted. */
const recoverLeftoverFiles = recoverKind("leftover_files", { paths: z.array(z.string()) }, {});

/** restic locks a dead process may have left in a repository: removed when their holder is provably gone. */
const recoverResticUnlock = recoverKind(
  "restic_unlock",
  { repository: z.string(), run_id: z.string().optional() },
  {},
);

/** A snapshot made from a stream cut short (a failed or interrupted run): forgotten. */
const recoverPartialSnapshot = recoverKind("partial_snapshot", {
  run_id: z.string().optional(),
  project: z.string(),
  source: z.string(),
  repository: z.string(),
  snapshots: z.array(snapshotId),
}, { approval });

const recoverAction = z.discriminatedUnion("recover", [
  recoverInterruptedRun,
  recoverStaleLock,
  recoverLeftoverFiles,
  recoverResticUnlock,
  recoverPartialSnapshot,
]);

/** An action as the plan document holds it. */
export const planActionSchema = z.discriminatedUnion("type", [
  initAction,
  backupAction,
  copyAction,
  forgetAction,
  pruneDocument,
  checkAction,
  verifyAction,
  recoverAction,
  stanzaCreateAction,
  pitrBackupAction,
  pitrExpireAction,
  pitrCheckAction,
]);

/** An action as the planner hands it to apply: the document's, with each prune's trigger. */
export const actionSchema = z.discriminatedUnion("type", [
  initAction,
  backupAction,
  copyAction,
  forgetAction,
  prunePlanned,
  checkAction,
  verifyAction,
  recoverAction,
  stanzaCreateAction,
  pitrBackupAction,
  pitrExpireAction,
  pitrCheckAction,
]);

/** Something that exists in the state or a repository but is not declared in the config: reported, never deleted. */
const notManaged = z.object({
  kind: z.enum(["project", "repository", "source", "foreign"]),
  subject: z.string(),
  detail: z.string(),
});

/**
 * A project whose last successful backup is older than its maxAge (an RPO breach). `source` and `stanza`: it is the
 * newest pgBackRest backup of that pgbackrest() source that is too old (absent for the dumps).
 */
const overdue = z.object({
  project: z.string(),
  last_success: z.string(),
  max_age: z.string(),
  source: z.string().optional(),
  stanza: z.string().optional(),
});

const summary = z.object({
  backup: z.number(),
  copy: z.number(),
  init: z.number(),
  forget: z.number(),
  prune: z.number(),
  check: z.number(),
  verify: z.number(),
});

const planFields = {
  format_version: z.literal(1),
  /** Identifies a saved plan: it is applied at most once. */
  plan_id: z.string(),
  generated_at: z.string(),
  now: z.string(),
  config_fingerprint: z.string(),
  state: z.object({ lineage: z.string(), serial: z.number().int() }),
  /** The projects the plan covers (all enabled ones unless --project was given). */
  projects: z.array(z.string()),
  summary,
  warnings: z.array(z.string()),
  overdue: z.array(overdue),
  not_managed: z.array(notManaged),
  /** The next time a backup will be due, per project. */
  next_due: z.array(z.object({ project: z.string(), at: z.string() })),
  /** sha256 of the saved plan without this field: an edited plan file is refused. */
  checksum: z.string().optional(),
};

/** The plan document (`plan --format json`, saved plan files). Its shape is versioned: see docs/cli.md. */
export const planSchema = z.object({ ...planFields, actions: z.array(planActionSchema) });

/** A saved plan file: the document with an id, an ISO `now` (apply plans again at that instant) and its checksum. */
export const planFileSchema = planSchema.extend({
  plan_id: z.string().min(1),
  now: z.string().refine((text) => /^\d{4}-\d{2}-\d{2}T/.test(text) && !Number.isNaN(Date.parse(text)), {
    message: "expected an ISO-8601 time",
  }),
  checksum: z.string(),
});

export type Plan = z.infer<typeof planSchema>;
export type PlanAction = z.infer<typeof planActionSchema>;
/** The plan apply runs: the document with the planner's triggers (see the top of this file). */
export type PlanToApply = Omit<Plan, "actions"> & {
  actions: Action[];
  /** The pgbackrest() sources whose archive is stale: apply and watch notify `archive.stale` (not in the document). */
  stale_archives?: StaleArchive[];
};

/** A pgbackrest() source whose WAL archive is older than its rpo, or whose archiving fails. */
export interface StaleArchive {
  project: string;
  source: string;
  stanza: string;
  reason: string;
  last_archived_wal: string | null;
  last_archived_at: string | null;
  rpo?: string;
}
export type Action = z.infer<typeof actionSchema>;
export type ActionType = Action["type"];
export type RecoverAction = Extract<Action, { type: "recover" }>;
/**
 * What a recover action repairs: a run left `running` by a dead process, a lock file of a dead process, private
 * temporary files of dead processes, restic locks a dead process may have left (removed only when restic judges them
 * stale), a snapshot made from a stream cut short.
 */
export type RecoverKind = RecoverAction["recover"];
export type NotManaged = z.infer<typeof notManaged>;
export type Overdue = z.infer<typeof overdue>;
export type PlanSummary = z.infer<typeof summary>;

/** The document of a plan to apply: every prune without its trigger, every key in the order the planner wrote it. */
export function planDocument(plan: PlanToApply | Plan): Plan {
  // Stale archives are for apply's notifications (warnings say them in the document).
  const { stale_archives: _stale, ...document } = plan as PlanToApply;
  return { ...document, actions: plan.actions.map(documentAction) };
}

/** An action as the document holds it (a prune without its trigger). */
export function documentAction(action: Action | PlanAction): PlanAction {
  if (action.type !== "prune" || !("trigger" in action)) return action;
  const { trigger: _trigger, ...rest } = action;
  return rest;
}

/** Narrows a list of actions to those of one type. */
export function ofType<T extends ActionType>(
  type: T,
): (action: Action | PlanAction) => action is Extract<Action | PlanAction, { type: T }> {
  return (action): action is Extract<Action | PlanAction, { type: T }> => action.type === type;
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
/** An action as the planner drafts it, before the plan numbers its actions. */
export type Draft = DistributiveOmit<Action, "id">;
/** A draft of one type of action. */
export type DraftOf<T extends ActionType> = Extract<Draft, { type: T }>;

/** The project an action belongs to: none for inits, prunes, checks, leftover files and restic's locks. */
export function projectOf(action: Action | PlanAction): string | undefined {
  return "project" in action ? action.project : undefined;
}

/** The repository an action works on: none for the local recoveries (a run, a lock file, leftover files). */
export function repositoryOf(action: Action | PlanAction): string | undefined {
  return "repository" in action ? action.repository : undefined;
}
