/**
 * A process's place in the fleet (several runners sharing a PostgreSQL state; docs/fleet.md): its runner row and
 * heartbeat (a `watch`), and the leases it holds — a project's (`project:NAME`) while it runs the project, a
 * repository's (`repository:NAME`) while it forgets, prunes or checks there. The heartbeat, every quarter of the
 * lease TTL, renews the runner row and every held lease in the database's clock; a lease found taken over is
 * marked lost, and the writes made under it are refused by the store's fence from then on.
 *
 * The leases are rows, not PostgreSQL session advisory locks: a paused process (SIGSTOP) keeps its session and its
 * advisory locks forever, while its lease simply expires; and a row carries the fencing token that every write of
 * the run is checked against.
 */
import { randomBytes } from "node:crypto";
import { setTimeout as delay } from "node:timers/promises";
import { setInterval } from "node:timers";
import { LockError } from "../errors.ts";
import { humanDuration } from "../format/time.ts";
import type { Fence, LeaseHolder, RunnerView } from "../state/fleet.ts";
import type { StateStore } from "../state/store.ts";

/** The default lease TTL: a runner killed mid-backup is taken over within it. */
export const defaultLeaseTtlMs = 120_000;

export interface MemberOptions {
  /** The runner's name (`--runner-name`, else the host), or the command for an `apply` that only takes leases. */
  name: string;
  labels: string[];
  host: string;
  ttlMs: number;
  version: string;
  fingerprint: string;
  /** A `watch`: a runner row others see in status, with a heartbeat. An `apply` only takes leases. */
  register: boolean;
  log: (line: string) => void;
}

/** A lease this process holds. */
export interface Lease {
  key: string;
  token: number;
  /** The holder whose expired lease was taken over to get this one. */
  tookOver?: { holder: string; runId: string | null; silentMs: number };
}

export class FleetMember {
  readonly instance: string;
  readonly #held = new Map<string, Lease>();
  readonly #lost = new Set<string>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #beating: Promise<void> | undefined;
  /** Whether the last heartbeat reached the database. */
  #connected = true;
  #lastBeatAt = new Date();
  #disconnectedBecause = "";
  /** What the runner row says it runs, and why it takes no work. */
  work: string | null = null;
  heldBack: string | null = null;

  private constructor(readonly store: StateStore, readonly options: MemberOptions) {
    this.instance = `${options.name}/${process.pid}/${randomBytes(4).toString("hex")}`;
  }

  /**
   * Joins the fleet: registers the runner (refused with a LockError while a live runner of the same name
   * heart-beats elsewhere) and starts the heartbeat.
   */
  static async join(store: StateStore, options: MemberOptions): Promise<FleetMember> {
    const member = new FleetMember(store, options);
    if (options.register) {
      const live = await store.fleet.register({
        name: options.name,
        instance: member.instance,
        host: options.host,
        pid: process.pid,
        labels: options.labels,
        version: options.version,
        fingerprint: options.fingerprint,
        startedAt: new Date().toISOString(),
        ttlMs: options.ttlMs,
      });
      if (live) throw runnerNameTaken(live);
    }
    member.#timer = setInterval(() => void member.beat(), Math.max(250, Math.floor(options.ttlMs / 4)));
    member.#timer.unref();
    return member;
  }

  get ttlMs(): number {
    return this.options.ttlMs;
  }

  /** Whether the last heartbeat reached the database (a runner cut off takes no new work). */
  get connected(): boolean {
    return this.#connected;
  }

  get disconnectedBecause(): string {
    return this.#disconnectedBecause;
  }

  get lastBeatAt(): Date {
    return this.#lastBeatAt;
  }

  /** Whether a lease of this process was taken over by another (its writes are refused from then on). */
  lost(key: string): boolean {
    return this.#lost.has(key);
  }

  /** Changes the config fingerprint the runner row reports (a reloaded config). */
  set fingerprint(fingerprint: string) {
    this.options.fingerprint = fingerprint;
  }

  /**
   * One heartbeat: the runner row and every held lease renewed. Never throws: a database out of reach marks the
   * member disconnected until a beat gets through. Beats do not overlap.
   */
  beat(): Promise<void> {
    this.#beating ??= this.#beat().finally(() => (this.#beating = undefined));
    return this.#beating;
  }

  async #beat(): Promise<void> {
    try {
      if (this.options.register) {
        const mine = await this.store.fleet.heartbeat({
          name: this.options.name,
          instance: this.instance,
          fingerprint: this.options.fingerprint,
          work: this.work,
          heldBack: this.heldBack,
        });
        if (!mine) {
          this.options.log(
            `warning: the runner name ${this.options.name} was taken by another process while this one was silent`,
          );
        }
      }
      const leases = [...this.#held.values()];
      if (leases.length > 0) {
        for (const key of await this.store.fleet.renew(leases, this.options.ttlMs)) {
          if (this.#lost.has(key)) continue;
          this.#lost.add(key);
          this.options.log(`warning: the lease ${key} was taken over by another runner: its work here is fenced`);
        }
      }
      if (!this.#connected) this.options.log("fleet: the state database is reachable again");
      this.#connected = true;
      this.#lastBeatAt = new Date();
    } catch (error) {
      const reason = (error as Error).message.split("\n")[0];
      if (this.#connected) {
        this.options.log(`error: the heartbeat cannot reach the state database (${reason}): no new work until it can`);
      }
      this.#connected = false;
      this.#disconnectedBecause = reason;
    }
  }

  /**
   * Takes a lease when it is free or expired; otherwise returns who holds it. A lease this process holds already is
   * held too: two units of one runner (`--concurrency`) must not share a repository's exclusive work, and the first to
   * finish would release it under the other.
   */
  async tryAcquire(key: string): Promise<Lease | { held: LeaseHolder }> {
    if (this.#held.has(key)) {
      const now = Date.now();
      return {
        held: { holder: this.options.name, instance: this.instance, runId: null, expiresMs: now, nowMs: now },
      };
    }
    const answer = await this.store.fleet.acquire({
      key,
      holder: this.options.name,
      instance: this.instance,
      ttlMs: this.options.ttlMs,
    });
    if ("held" in answer) return answer;
    const { granted } = answer;
    const lease: Lease = {
      key,
      token: granted.token,
      ...(granted.tookOver
        ? {
          tookOver: {
            holder: granted.tookOver.holder,
            runId: granted.tookOver.runId,
            silentMs: Math.max(0, granted.expiresMs - granted.tookOver.expiredMs),
          },
        }
        : {}),
    };
    this.#held.set(key, lease);
    this.#lost.delete(key);
    return lease;
  }

  /** Takes a lease, waiting for its holder up to `timeoutMs` (polling), else a LockError naming the holder. */
  async acquire(key: string, timeoutMs: number, pollMs = 1000): Promise<Lease> {
    const started = Date.now();
    for (;;) {
      const answer = await this.tryAcquire(key);
      if (!("held" in answer)) return answer;
      const waited = Date.now() - started;
      if (waited >= timeoutMs) throw leaseHeldError(key, answer.held, waited);
      await delay(Math.min(pollMs, timeoutMs - waited));
    }
  }

  /** Ends a lease (its row keeps the token, fencing the writes of whoever held it before). */
  async release(lease: Lease): Promise<void> {
    this.#held.delete(lease.key);
    this.#lost.delete(lease.key);
    try {
      await this.store.fleet.release(lease.key, lease.token);
    } catch (error) {
      // Unreleased, it expires within the TTL.
      this.options.log(`warning: the lease ${lease.key} could not be released (${(error as Error).message})`);
    }
  }

  /** Records the run made under a project lease (status and a takeover name it). */
  async setRun(lease: Lease, runId: string): Promise<void> {
    await this.store.fleet.setRun(lease.key, lease.token, runId);
  }

  /**
   * Why work under `fence` must not be committed (a lease taken over), asked of the database now; undefined while
   * every token is current. A database out of reach is not a reason: the write that follows is fenced anyway.
   */
  async refusal(fence: Fence): Promise<string | undefined> {
    try {
      const breach = await this.store.fleet.breach(fence);
      if (!breach) return undefined;
      this.#lost.add(breach.key);
      return `the lease ${breach.key} was taken over by runner ${breach.currentHolder ?? "unknown"} while this ` +
        "process was silent";
    } catch {
      return undefined;
    }
  }

  /** The fence for writes made under `leases` (the list may grow: a repository's lease taken midway). */
  fence(leases: Lease[]): Fence {
    return { instance: this.instance, leases: leases.map(({ key, token }) => ({ key, token })) };
  }

  /** Leaves the fleet: heartbeat stopped, leases released, the runner row marked stopped (never reported lost). */
  async leave(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    await this.#beating;
    for (const lease of [...this.#held.values()]) await this.release(lease);
    if (!this.options.register) return;
    try {
      await this.store.fleet.stop(this.options.name, this.instance, new Date().toISOString());
    } catch (error) {
      this.options.log(`warning: could not record this runner as stopped (${(error as Error).message})`);
    }
  }
}

/** The LockError for a lease another process holds: who, and until when at the latest. */
export function leaseHeldError(key: string, holder: LeaseHolder, waitedMs?: number): LockError {
  const [kind, name] = splitKey(key);
  const run = holder.runId ? `, run ${holder.runId}` : "";
  const waited = waitedMs === undefined ? "" : `waited ${humanDuration(waitedMs)}: `;
  return new LockError(
    `${waited}${kind} ${name} is leased by runner ${holder.holder}${run} (expires in ` +
      `${humanDuration(Math.max(0, holder.expiresMs - holder.nowMs))} unless renewed); it runs there now. If that ` +
      "runner is gone, its lease expires by itself and the next runner takes the work over",
  );
}

function runnerNameTaken(live: RunnerView): LockError {
  return new LockError(
    `a runner named ${live.name} is already running (pid ${live.pid} on host ${live.host}, last heartbeat ` +
      `${humanDuration(live.silentMs)} ago): give this one another name with --runner-name, or stop that one first`,
  );
}

function splitKey(key: string): [string, string] {
  const colon = key.indexOf(":");
  return colon < 0 ? ["lease", key] : [key.slice(0, colon), key.slice(colon + 1)];
}
