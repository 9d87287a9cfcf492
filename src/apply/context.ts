/** What applying a plan works with: the context every step receives, the report it fills, the repositories. */
import { randomBytes } from "node:crypto";
import type { Clock } from "../clock.ts";
import type { LoadedConfig } from "../config/load.ts";
import { isoSeconds } from "../format/time.ts";
import { Restic } from "../repository/restic.ts";
import { forProject } from "../repository/restic-flags.ts";
import type { NormalizedProject } from "../config/normalize.ts";
import type { StateStore } from "../state/store.ts";
import type { OutboxSender } from "../notify/outbox.ts";
import type { ProjectLock } from "./lock.ts";
import type { FleetMember, Lease } from "../fleet/member.ts";
import type { Fence } from "../state/fleet.ts";

export interface ApplyContext {
  loaded: LoadedConfig;
  /** Whether deletions that need approval may run (--auto-approve, or "yes" on a terminal). */
  approved: boolean;
  store: StateStore;
  clock: Clock;
  /** Host name recorded in snapshots. */
  host: string;
  /** Folder (0700) for private files of this process's stages, under the state folder. */
  privateDir: string;
  /** The command recorded on each run (`backup`: a backup on demand, outside the schedule). */
  command: "apply" | "watch" | "backup" | "forget";
  /**
   * Whether the plan evaluated retention for its projects (default true). A `backup` plan forgets nothing and says
   * nothing about retention: the policy applied to each group is then not recorded, so a forget that needs approval
   * (a changed policy) still needs it afterwards.
   */
  retention?: boolean | "forgets";
  /** The command that runs held deletions once reviewed (default `backupctl apply --auto-approve`). */
  approveWith?: string;
  /** The project locks this process holds: each run writes its id into its project's lock. */
  locks?: Map<string, ProjectLock>;
  /**
   * In a fleet (a PostgreSQL state): the member whose leases this apply holds. `store` is then fenced by `fence`;
   * forgets, prunes and checks take their repository's lease first (waiting up to `waitMs`).
   */
  fleet?: FleetWork;
  /** Progress output, one line at a time. */
  out: (line: string) => void;
  /** Sends the notifications this apply enqueues, in the background (none when absent, as in tests). */
  notifications?: OutboxSender;
}

/** The fleet's side of an apply: who holds which leases, and the fence its writes carry. */
export interface FleetWork {
  member: FleetMember;
  /** The project leases, by project. */
  projects: Map<string, Lease>;
  fence: Fence;
  waitMs: number;
}

/** What recording a step of apply needs: the state, the clock, the config, and somewhere to report. */
export type StepContext = Pick<ApplyContext, "loaded" | "store" | "clock" | "out" | "notifications">;

export interface ApplyReport {
  succeeded: number;
  failed: number;
  /** Actions not run because something they depend on failed. */
  skipped: number;
  /** Deletions held back because they need approval. */
  held: number;
  /** The ids of the forget actions held back because they need approval. */
  heldActions?: string[];
  runs: { id: string; project: string; status: "succeeded" | "failed" | "interrupted" }[];
}

export function newRunId(at: Date): string {
  return `${isoSeconds(at).replace(/[-:]/g, "")}-${randomBytes(3).toString("hex")}`;
}

/**
 * The repository `name`; for one project's commands (its backups, copies and forgets), with the project's restic
 * settings, nice and ionice laid over the repository's.
 */
export function repositoryFor(
  ctx: Pick<StepContext, "loaded" | "store">,
  name: string,
  project?: NormalizedProject,
): Restic {
  const spec = ctx.loaded.config.repositories[name];
  return new Restic(name, project ? forProject(spec, project) : spec, ctx.loaded.dir, ctx.store.privateDir);
}

/** The projects whose backups go to (or are copied to) a repository. */
export function projectsUsing(loaded: LoadedConfig, repository: string): string[] {
  return Object.values(loaded.config.projects).filter((p) => p.repositories.includes(repository)).map((p) => p.name);
}
