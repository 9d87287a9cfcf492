/**
 * `backupctl watch`: plan and apply forever. Each tick plans against the wall clock (so a jump forward runs what
 * became due once, coalesced by the planner, and a jump backward repeats nothing: a slot counts as done when a
 * success is newer than it), runs what is due with per-project locks and a global concurrency limit, enqueues the
 * time-driven notifications, then sleeps until the next due time, at most `maxSleepMs`, in short steps that notice
 * a stop signal, a config edit and a clock jump. A config edit is validated in a child process first; a valid one
 * takes effect at the next tick (never during a run), an invalid one is reported and the previous one keeps running.
 */
import { applyPlan } from "../apply/executor.ts";
import { enqueueScheduledNotifications } from "../apply/scheduled-notifications.ts";
import { type ProjectLock, waitForProjectLock } from "../apply/lock.ts";
import { preparePlan } from "../apply/prepare.ts";
import type { Clock } from "../clock.ts";
import type { LoadedConfig } from "../config/load.ts";
import { redact } from "../config/secrets.ts";
import { ConfigError, LockError } from "../errors.ts";
import { configInvalid, enqueueFor, type RunnerRef } from "../notify/events.ts";
import { OutboxSender } from "../notify/outbox.ts";
import { type PlanAction, type PlanToApply, projectOf, repositoryOf } from "../plan/document.ts";
import { loadConfigIsolated } from "../runtime/isolated-load.ts";
import { stopRequested } from "../runtime/shutdown.ts";
import type { StateStore } from "../state/store.ts";
import { configDigest } from "./config-files.ts";
import type { FleetMember } from "../fleet/member.ts";
import { fleetLockAgeMs, type FleetTickContext, runFleetTick } from "../fleet/tick.ts";
import { checkFleet, notifyUnplaced, placedOn, unplacedProjects } from "../fleet/checks.ts";

export interface WatchOptions {
  /** Projects run at the same time, at most (default 1). */
  concurrency: number;
  /** Longest sleep between ticks (default 60 s): bounds how late a clock jump or a missed wake-up is noticed. */
  maxSleepMs: number;
  /** How long a tick waits for a project lock another process holds before it skips the project (default 5 min). */
  lockWaitMs: number;
  /** How often the config files are read for changes while sleeping (default 2 s). */
  configPollMs?: number;
  host: string;
  clock: Clock;
  /** One line of log output (already without secrets). */
  log: (line: string) => void;
  /** This runner's name (`--runner-name`, default the host) and labels (`--runner-labels`, default its name). */
  runnerName?: string;
  labels?: string[];
  /** In a fleet (a PostgreSQL state): the member whose leases decide which runner runs what. */
  fleet?: FleetMember;
}

/** What /healthz and /metrics read: updated by the loop as it goes. */
export interface WatchStatus {
  startedAt: Date;
  ticks: number;
  lastTickAt: Date | null;
  /** The loop's last sign of life: a tick, a sleep step, a line of a run's output (progress lines included). */
  heartbeatAt: Date;
  /** The error that ended the last tick early, if any (the loop goes on). */
  lastTickError: string | null;
  /** Projects being backed up right now. */
  running: Set<string>;
  /** Projects skipped at the last tick because another process held their lock. */
  lockWaits: string[];
  /** Actions that failed at the last tick that ran any (an init, a backup, a check…), with the first error. */
  failedActions: { count: number; at: Date | null };
  config: {
    file: string;
    fingerprint: string;
    loadedAt: Date;
    /** The last edit that was refused, while it is still the file's content. */
    rejected: { at: Date; problems: string[] } | null;
  };
  /** This runner: its name and labels, and (in a fleet) whether it reaches the state and why it takes no work. */
  runner: {
    name: string;
    labels: string[];
    /** In a fleet: whether the last heartbeat reached the state database (false: /healthz is unhealthy). */
    connected: boolean;
    /** Why it takes no new work now (config drift, the database out of reach); null when it takes work. */
    heldBack: string | null;
    /** Enabled projects no live runner can take (their runsOn labels), at the last tick. */
    unplaced: string[];
  };
}

export class Watcher {
  readonly status: WatchStatus;
  #loaded: LoadedConfig;
  #sender: OutboxSender;
  #digest: string;

  constructor(loaded: LoadedConfig, readonly store: StateStore, readonly options: WatchOptions) {
    this.#loaded = loaded;
    this.#digest = configDigest(loaded.file);
    this.#sender = this.#newSender();
    const now = options.clock.now();
    this.status = {
      startedAt: now,
      ticks: 0,
      lastTickAt: null,
      heartbeatAt: now,
      lastTickError: null,
      running: new Set(),
      lockWaits: [],
      failedActions: { count: 0, at: null },
      config: { file: loaded.file, fingerprint: loaded.fingerprint, loadedAt: now, rejected: null },
      runner: {
        name: options.runnerName ?? options.host,
        labels: options.labels ?? [options.runnerName ?? options.host],
        connected: true,
        heldBack: null,
        unplaced: [],
      },
    };
  }

  get loaded(): LoadedConfig {
    return this.#loaded;
  }

  #newSender(): OutboxSender {
    return new OutboxSender(this.store, this.#loaded, {
      now: () => this.options.clock.now(),
      warn: (line) => this.options.log(`warning: ${line}`),
    });
  }

  /** Runs ticks until a stop signal; returns after the running work ended and the outbox was given its chance. */
  async run(): Promise<void> {
    this.options.log(
      `watch: started (config ${this.#loaded.file}, ${Object.keys(this.#loaded.config.projects).length} projects, ` +
        `concurrency ${this.options.concurrency})`,
    );
    while (!stopRequested()) {
      const wakeAt = await this.tick();
      if (stopRequested()) break;
      await this.#sleepUntil(wakeAt);
    }
    await this.#sender.drain();
    this.options.log(`watch: stopped by ${stopRequested()}`);
  }

  /** One round: reload if the config changed, plan, run what is due. Returns when the next tick is wanted. */
  async tick(): Promise<Date> {
    const { clock, maxSleepMs } = this.options;
    this.status.heartbeatAt = clock.now();
    await this.reloadIfChanged();
    const now = clock.now();
    let wakeAt = new Date(now.getTime() + maxSleepMs);
    try {
      const mayWork = this.options.fleet ? await this.#fleetChecks(this.options.fleet) : true;
      const runners = this.options.fleet ? this.#fleetRunners : [this.status.runner];
      this.status.runner.unplaced = unplacedProjects(this.#loaded, runners);
      if (this.status.runner.connected) await notifyUnplaced(this.#context(), this.status.runner.unplaced, runners);
      // Held back (config drift, the state out of reach): nothing new starts here; other runners take the work.
      if (!mayWork) return this.#tickDone(wakeAt);
      this.#sender.kick(); // retries of what earlier ticks could not send
      const { plan } = await preparePlan(this.#loaded, this.store, {
        now,
        host: this.options.host,
        lockAgeMs: this.options.fleet ? fleetLockAgeMs : undefined,
      });
      const due = new Set(
        plan.actions.filter(runsNow).map((a) => projectOf(a) ?? "").filter((p) => p !== "" && this.#placed(p)),
      );
      if (this.options.fleet && plan.actions.some(runsNow)) {
        this.status.failedActions = { count: 0, at: this.options.clock.now() };
        await runFleetTick(this.#fleetContext(this.options.fleet), plan);
        await enqueueScheduledNotifications(this.#context(), plan.overdue, plan.stale_archives);
      } else if (plan.actions.some(runsNow)) await this.#runDue(plan, due);
      else await enqueueScheduledNotifications(this.#context(), plan.overdue, plan.stale_archives);
      for (const next of plan.next_due) {
        const at = new Date(next.at);
        if (at < wakeAt) wakeAt = at;
      }
      this.status.lastTickError = null;
    } catch (error) {
      const message = redact(error instanceof Error ? error.message : String(error));
      this.status.lastTickError = message;
      this.options.log(`error: this tick failed, the next one tries again: ${message}`);
    }
    return this.#tickDone(wakeAt);
  }

  #tickDone(wakeAt: Date): Date {
    this.status.ticks++;
    this.status.lastTickAt = this.options.clock.now();
    this.status.heartbeatAt = this.status.lastTickAt;
    return wakeAt;
  }

  /** Whether this runner may run a project: it has every label the project's `runsOn` asks for. */
  #placed(project: string): boolean {
    return placedOn(this.#loaded, project, this.status.runner.labels);
  }

  /** The fleet's live runners that take work (this one included unless it holds back), read at the last check. */
  #fleetRunners: RunnerRef[] = [];

  /** Whether this runner may take new work now (fleet/checks.ts), with the runners that take work. */
  async #fleetChecks(member: FleetMember): Promise<boolean> {
    const checked = await checkFleet({ ...this.#context(), member, runner: this.status.runner, log: this.options.log });
    this.#fleetRunners = checked.runners;
    return checked.mayWork;
  }

  #fleetContext(member: FleetMember): FleetTickContext {
    return {
      ...this.#context(),
      member,
      concurrency: this.options.concurrency,
      lockWaitMs: this.options.lockWaitMs,
      placed: (project) => this.#placed(project),
      running: this.status.running,
      log: (line) => {
        this.status.heartbeatAt = this.options.clock.now();
        this.options.log(line);
      },
      counted: (report) => (this.status.failedActions.count += report.failed + report.skipped),
    };
  }

  #context() {
    return {
      loaded: this.#loaded,
      store: this.store,
      clock: this.options.clock,
      host: this.options.host,
      notifications: this.#sender,
    };
  }

  /**
   * Runs the due projects in groups that share no repository (so no two restic processes of this watch contend for
   * a repository's lock), at most `concurrency` groups at a time. A repository-wide action (init, prune, check) goes
   * with the group whose projects use the repository; one that no due project needs runs in a last, lock-free group.
   */
  async #runDue(plan: PlanToApply, due: Set<string>): Promise<void> {
    const groups: { projects: string[]; repositories: Set<string> }[] = independentGroups(this.#loaded, [...due].sort())
      .map((projects) => ({ projects, repositories: this.#repositoriesOf(projects) }));
    const used = new Set(groups.flatMap((g) => [...g.repositories]));
    const orphans = new Set(
      plan.actions.filter((a) => runsNow(a) && projectOf(a) === undefined)
        .flatMap((a) => repositoryOf(a) ?? []).filter((repository) => !used.has(repository)),
    );
    if (orphans.size > 0) groups.push({ projects: [], repositories: orphans });
    this.status.lockWaits = [];
    this.status.failedActions = { count: 0, at: this.options.clock.now() };
    const queue = [...groups];
    const workers = Array.from({ length: Math.min(this.options.concurrency, queue.length) }, async () => {
      for (let group = queue.shift(); group && !stopRequested(); group = queue.shift()) {
        await this.#runGroup(group.projects, group.repositories);
      }
    });
    await Promise.all(workers);
  }

  #repositoriesOf(projects: string[]): Set<string> {
    return new Set(projects.flatMap((p) => this.#loaded.config.projects[p]?.repositories ?? []));
  }

  /** Locks a group's projects (waiting a bounded time), plans them again with fresh inventories and applies. */
  async #runGroup(projects: string[], repositories: Set<string>): Promise<void> {
    const locks = new Map<string, ProjectLock>();
    try {
      for (const project of projects) {
        try {
          const lock = await waitForProjectLock(
            this.store.dir,
            project,
            { command: "watch", host: this.options.host },
            {
              timeoutMs: this.options.lockWaitMs,
            },
          );
          locks.set(project, lock);
        } catch (error) {
          if (!(error instanceof LockError)) throw error;
          this.status.lockWaits.push(project);
          this.options.log(`warning: skipped ${project} this tick: ${redact(error.message)}`);
        }
      }
      const scope = [...locks.keys()];
      if (projects.length > 0 && scope.length === 0) return;
      // Planned again under the locks, with the inventories refreshed: what another process did meanwhile counts.
      const { plan, adopted, loaded } = await preparePlan(this.#loaded, this.store, {
        now: this.options.clock.now(),
        host: this.options.host,
        projects: scope,
        refresh: true,
      });
      for (const name of adopted) this.options.log(`~ adopted the initialized repository ${name}`);
      const actions = plan.actions.filter((a) => {
        const project = projectOf(a);
        return runsNow(a) && (project === undefined ? repositories.has(repositoryOf(a) ?? "") : locks.has(project));
      });
      if (actions.length === 0) return;
      for (const project of scope) this.status.running.add(project);
      try {
        const report = await applyPlan({ ...plan, actions }, {
          ...this.#context(),
          loaded, // with the databases of `databases: "all"` servers as sources
          approved: false, // deletions that need approval are held and notified, never run by watch
          privateDir: this.store.privateDir,
          command: "watch",
          locks,
          out: (line) => {
            this.status.heartbeatAt = this.options.clock.now();
            this.options.log(line);
          },
        });
        this.status.failedActions.count += report.failed + report.skipped;
        this.options.log(
          `watch: ${report.succeeded} succeeded, ${report.failed} failed${
            report.held ? `, ${report.held} deletions held for approval` : ""
          }${report.skipped ? `, ${report.skipped} skipped` : ""}`,
        );
      } finally {
        for (const project of scope) this.status.running.delete(project);
      }
    } finally {
      for (const lock of locks.values()) lock.release();
    }
  }

  /**
   * Loads the config again when its files changed. Returns true when a new configuration took effect. A config that
   * does not load or validate is logged and notified (once per content) and the running one stays.
   */
  async reloadIfChanged(): Promise<boolean> {
    const digest = configDigest(this.#loaded.file);
    if (digest === this.#digest) return false;
    let next: LoadedConfig;
    try {
      next = await loadConfigIsolated(this.#loaded.file);
    } catch (error) {
      const problems = error instanceof ConfigError
        ? error.problems.map((p) => (p.path ? `${p.path}: ${p.message}` : p.message))
        : [error instanceof Error ? error.message : String(error)];
      this.#digest = digest; // reported once; the next edit is looked at again
      this.status.config.rejected = { at: this.options.clock.now(), problems };
      this.options.log(
        `error: the edited config was rejected, the previous one keeps running:\n${
          problems.map((p) => `  ${redact(p)}`).join("\n")
        }`,
      );
      await this.#notifyRejected(problems, digest);
      return false;
    }
    this.#digest = digest;
    const wasRejected = this.status.config.rejected !== null;
    this.status.config.rejected = null;
    if (next.fingerprint === this.#loaded.fingerprint) {
      if (wasRejected) this.options.log("watch: the config is valid again (the same configuration as the running one)");
      return false;
    }
    if (next.config.stateDir !== this.#loaded.config.stateDir) {
      this.status.config.rejected = {
        at: this.options.clock.now(),
        problems: ["stateDir changed: restart backupctl watch to use another state folder"],
      };
      this.options.log(
        "error: the edited config moves stateDir; restart watch to use it. The previous config keeps running.",
      );
      return false;
    }
    await this.#sender.drain();
    this.#loaded = next;
    this.#sender = this.#newSender();
    if (this.options.fleet) this.options.fleet.fingerprint = next.fingerprint;
    this.status.config = {
      file: next.file,
      fingerprint: next.fingerprint,
      loadedAt: this.options.clock.now(),
      rejected: null,
    };
    this.options.log(`watch: reloaded the config (${next.fingerprint.slice(0, 19)})`);
    return true;
  }

  async #notifyRejected(problems: string[], digest: string): Promise<void> {
    const now = this.options.clock.now();
    const message = configInvalid({ host: this.options.host, at: now, file: this.#loaded.file, problems });
    const projects = Object.keys(this.#loaded.config.projects);
    await this.store.enqueueNotifications(
      enqueueFor(this.#loaded, projects, message, { now, key: `config.invalid:${digest}` }),
    );
    this.#sender.kick();
  }

  /** Sleeps until `wakeAt` (wall clock) or `maxSleepMs` (monotonic), whichever first; wakes early on a stop or an edit. */
  async #sleepUntil(wakeAt: Date): Promise<void> {
    const started = performance.now();
    const pollMs = this.options.configPollMs ?? 2000;
    let lastPoll = started;
    while (!stopRequested()) {
      const elapsed = performance.now() - started;
      const remaining = Math.min(
        wakeAt.getTime() - this.options.clock.now().getTime(),
        this.options.maxSleepMs - elapsed,
      );
      if (remaining <= 0) return;
      await new Promise((resolve) => setTimeout(resolve, Math.min(remaining, 500)));
      this.status.heartbeatAt = this.options.clock.now();
      if (performance.now() - lastPoll >= pollMs) {
        lastPoll = performance.now();
        if (configDigest(this.#loaded.file) !== this.#digest) return;
      }
    }
  }
}

/** Actions watch runs; `verify` waits for restore drills. */
function runsNow(action: PlanAction): boolean {
  return action.type !== "verify";
}

/** Splits projects into groups connected by shared repositories (union-find over the repositories they use). */
export function independentGroups(loaded: LoadedConfig, projects: string[]): string[][] {
  const parent = new Map<string, string>();
  const find = (x: string): string => {
    while (parent.get(x) !== x) x = parent.get(x)!;
    return x;
  };
  for (const project of projects) parent.set(project, project);
  const owner = new Map<string, string>();
  for (const project of projects) {
    for (const repository of loaded.config.projects[project]?.repositories ?? []) {
      const other = owner.get(repository);
      if (other === undefined) owner.set(repository, project);
      else parent.set(find(project), find(other));
    }
  }
  const groups = new Map<string, string[]>();
  for (const project of projects) {
    const root = find(project);
    groups.set(root, [...(groups.get(root) ?? []), project]);
  }
  return [...groups.values()];
}
