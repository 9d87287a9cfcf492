/**
 * The reads of the state database that every store offers (StateStore extends it): lineage and serial, the reports
 * of history, status and notifications (reports.ts), and the planner's read model (observe.ts). Apart from the store
 * so that the store itself keeps to opening, writing and the fallback.
 */
import type { Kysely } from "kysely";
import type { ObservedState, SnapshotState } from "../plan/types.ts";
import * as observed from "./observe.ts";
import * as reports from "./reports.ts";
import type { HistoryEntry, HistoryFilter, RepositoryCheck, RunDigest, RunSummary, RunWithStages } from "./reports.ts";
import type { StateDialect } from "./dialect.ts";
import type { Database, SnapshotTable } from "./schema.ts";

export class StateReader {
  constructor(
    protected readonly db: Kysely<Database>,
    private readonly readDialect: Pick<StateDialect, "inventoryAsText">,
  ) {}

  async meta(key: string): Promise<string | undefined> {
    return await observed.meta(this.db, key);
  }

  async lineage(): Promise<string> {
    return await observed.lineage(this.db);
  }

  async serial(): Promise<number> {
    return await observed.serial(this.db);
  }

  // Reports (reports.ts).

  /** The audit, newest first, for `history`: runs with their stages and operations audited without a run. */
  async history(filter: HistoryFilter): Promise<HistoryEntry[]> {
    return await reports.history(this.db, filter);
  }

  /** One run and its stages, or undefined for an unknown id. */
  async runWithStages(id: string): Promise<RunWithStages | undefined> {
    return await reports.runWithStages(this.db, id);
  }

  /** Per project (of `projects` only, when given), its latest restore drill (a finished `verify` stage). */
  /** Per group (`project NUL source NUL repository`), what its backups added since `since`: largest and median. */
  async backupBytes(since: string): ReturnType<typeof reports.backupBytes> {
    return await reports.backupBytes(this.db, since);
  }

  /** Per project, its last drills (default 10), oldest first: the trend status shows. */
  async drillTrends(limit?: number): ReturnType<typeof reports.drillTrends> {
    return await reports.drillTrends(this.db, limit);
  }

  async latestDrills(projects?: string[]): Promise<Map<string, reports.LatestDrill>> {
    return await reports.latestDrills(this.db, projects);
  }

  /** Finished runs of a project that failed or were interrupted after its last successful run. */
  async failuresSinceLastSuccess(project: string): Promise<number> {
    return await reports.failuresSinceLastSuccess(this.db, project);
  }

  /** Per project: runs started in [from, to) by status, and its last success. For the daily summary. */
  async runDigest(from: string, to: string): Promise<Map<string, RunDigest>> {
    return await reports.runDigest(this.db, from, to);
  }

  /** Per project (of `projects` only, when given): the latest run and the latest successful run. */
  async projectRuns(projects?: string[]): Promise<Map<string, { lastRun?: RunSummary; lastSuccess?: RunSummary }>> {
    return await reports.projectRuns(this.db, projects);
  }

  /** Per repository, its last check: when, and what it found (null: never checked). */
  async repositoryChecks(): Promise<Map<string, RepositoryCheck>> {
    return await reports.repositoryChecks(this.db);
  }

  /** Snapshot counts and newest snapshot time per (repository, project). */
  async snapshotCounts(): Promise<{ repository: string; project: string | null; count: number; newest: string }[]> {
    return await reports.snapshotCounts(this.db);
  }

  async listSnapshots(filter: { projects?: string[]; repository?: string }): Promise<SnapshotTable[]> {
    return await reports.listSnapshots(this.db, filter);
  }

  /** The ids of a repository's snapshots in the inventory. */
  async snapshotIds(repository: string): Promise<string[]> {
    return await reports.snapshotIds(this.db, repository);
  }

  // The planner's read model (observe.ts).

  /**
   * Everything the planner needs, in a few indexed queries (see {@link observed.ObserveOptions}). `deadRuns`' snapshots
   * count as partial like those of failed and interrupted runs.
   */
  async observe(options: observed.ObserveOptions = {}): Promise<ObservedState> {
    return await observed.observe(this.db, options, this.readDialect);
  }

  /** How far backupctl vouches for each snapshot of the inventory, keyed `repository NUL id`. */
  async snapshotStates(options: { deadRuns?: string[] } = {}): Promise<Map<string, SnapshotState>> {
    return await observed.snapshotStates(this.db, options);
  }

  /** Runs the audit shows as running: the caller judges whether their process still lives. */
  async runningRuns(): ReturnType<typeof observed.runningRuns> {
    return await observed.runningRuns(this.db);
  }
}
