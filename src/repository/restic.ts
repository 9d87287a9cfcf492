/**
 * A restic repository: init, backup (stdin stream or paths), snapshots, forget. The repository URL and password go
 * to restic through RESTIC_REPOSITORY / RESTIC_PASSWORD, its `env` and `s3` keys through its environment too (never
 * argv: URLs and keys are credentials); its flags (bandwidth, compression, `-o` options, extraArgs) are built in
 * restic-flags.ts, and it runs at the repository's (or its project's) nice and ionice. JSON output is parsed.
 */
import { rmSync } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";
import type { ResticError } from "./restic-errors.ts";
import { resticFailure } from "./restic-failure.ts";
import { fullId, fullLocalSnapshotId, localLockIds, localSnapshotIds, schemePattern } from "./restic-local.ts";
import { runInteractive } from "../exec/interactive.ts";
import { includeBatchBytes, includeBatches } from "./restic-browse.ts";
import { gateArgv } from "../exec/fifo.ts";
import { judgeLock, type LockVerdict, parseLock, type ResticLock } from "./restic-locks.ts";
import { describeSecret, redact, resolveMaybeSecret, resolveSecret } from "../config/secrets.ts";
import type { Priority, ResticRepository } from "../config/types.ts";
import { run, type RunOptions, type RunResult, start } from "../exec/run.ts";
import { openSsh, type SshRepository, type SshSession } from "./ssh.ts";
import { inheritedResticVariables, manualEnvironment, manualRestic, type ManualSetting } from "./restic-manual.ts";
import { type BackupResult, parseSummary } from "./restic-output.ts";
import { backupOnlyFlags, globalFlags, resticOptions, resticVariables } from "./restic-flags.ts";
import { BackupctlError } from "../errors.ts";

/** A snapshot as `restic snapshots --json` lists it. */
export interface ResticSnapshot {
  id: string;
  short_id: string;
  time: string;
  hostname: string;
  paths: string[];
  tags?: string[];
  /** Set on snapshots made by `restic copy`: the id of the snapshot copied. */
  original?: string;
}

export interface BackupOptions {
  tags: string[];
  host: string;
  /** Snapshot time (the --now clock); restic reads it in TZ=UTC. */
  time: Date;
  /** Stop every process of the stage after this long. */
  timeoutMs?: number;
  /** The state folder's private tmp/ (for a stream's FIFOs; see exec/fifo.ts). */
  privateDir?: string;
  /** Starts reporting the progress of a streamed backup, given how many bytes went through so far. */
  progress?: (bytes: () => number) => { stop(): void };
  /**
   * Asked once a stream is complete, just before restic may see its end: a reason not to store the snapshot after all
   * (the run's lease was taken over by another runner), or undefined to go on.
   */
  beforeCommit?: () => Promise<string | undefined>;
  /** The CPU and I/O priority of the stream's producer, filters and taps (the project's `nice`, `ionice`). */
  priority?: Priority;
}

/** How long reading one lock may take: restic opens the repository (about a second), then reads a small file. */
const lockReadTimeoutMs = 10_000;
/** The repositories (by URL) known to be of format version 2, which stores compressed data. */
const formatVersion2 = new Set<string>();

export class Restic {
  constructor(
    readonly name: string,
    private readonly spec: ResticRepository,
    private readonly configDir: string,
    /** A 0700 folder for the files a command needs briefly (an SSH key): `<state dir>/tmp`. */
    private readonly privateDir?: string,
  ) {}

  /** Where the repository is, fit for output and the state database (credentials removed). */
  location(): string {
    if (typeof this.spec.url !== "string") return `(url from ${describeSecret(this.spec.url)})`;
    return redact(this.url());
  }

  /**
   * The full id of a snapshot this repository just stored, given the id restic's backup summary reports (restic 0.14
   * reports the short id, later versions the full one), without a restic process: a local repository's snapshots are
   * the files of its snapshots/ folder. Undefined when that does not settle it (another backend, or no single match).
   */
  fullSnapshotId(id: string): string | undefined {
    return fullLocalSnapshotId(this.url(), id);
  }

  /** The ids of a local repository's snapshots, without restic (see restic-local.ts); undefined for other backends. */
  localSnapshotIds(): string[] | undefined {
    return localSnapshotIds(this.url());
  }

  private url(): string {
    const url = resolveMaybeSecret(this.spec.url, this.configDir);
    if (schemePattern.test(url)) return url;
    return isAbsolute(url) ? url : resolve(this.configDir, url);
  }

  /** The environment restic runs with: repository, password, extra variables, UTC for --time. */
  private environment(): Record<string, string | undefined> {
    const env: Record<string, string | undefined> = {};
    for (const key of inheritedResticVariables) env[key] = undefined;
    for (const [key, value] of Object.entries(resticVariables(this.spec))) {
      env[key] = resolveMaybeSecret(value, this.configDir);
    }
    env.RESTIC_REPOSITORY = this.url();
    env.RESTIC_PASSWORD = resolveSecret(this.spec.password, this.configDir);
    env.TZ = "UTC";
    env.RESTIC_PROGRESS_FPS = "0.2";
    return env;
  }

  private argv(command: string, ...args: string[]): string[] {
    return ["restic", command, ...globalFlags(this.spec, this.configDir), ...args];
  }

  /** The CPU and I/O priority of this repository's restic (a project's own, when made for one). */
  private get priority() {
    return { nice: this.spec.nice, ionice: this.spec.ionice };
  }

  /**
   * A command that opens `from` too (copy, init --copy-chunker-params): restic applies `-o` options to both
   * repositories, so the source's options (an sftp.command, say) are passed along; on a clash this one's win.
   */
  private argvWith(from: Restic, command: string, ...args: string[]): string[] {
    const options = { ...resticOptions(from.spec), ...resticOptions(this.spec) };
    return ["restic", command, ...globalFlags(this.spec, this.configDir, options), ...args];
  }

  private async restic(
    command: string,
    args: string[],
    input?: string,
    timeoutMs?: number,
    whileStopping = false,
  ): Promise<RunResult> {
    const attempt = () =>
      this.run(this.argv(command, ...args), { env: this.environment(), input, timeoutMs, whileStopping });
    const result = await attempt();
    // A lock a crashed process left (its holder provably gone) is removed, and the command runs once more.
    if (result.code !== 0 && command !== "unlock" && isLockConflict(result)) {
      const removed = await this.removeStaleLocks().catch(() => []);
      if (removed.length > 0) return await attempt();
    }
    return result;
  }

  /** Runs restic with SSH access prepared for this repository (and `from`, for copies) when they need it. */
  private async run(argv: string[], options: RunOptions, from?: Restic): Promise<RunResult> {
    const ssh = this.openSsh(from);
    try {
      // SIGINT is how restic is stopped: it then removes its lock (SIGTERM would leave a stale one).
      return await run(argv, {
        stopSignal: "SIGINT",
        priority: this.priority,
        ...options,
        env: { ...options.env, ...ssh.env },
      });
    } finally {
      ssh.remove();
    }
  }

  private openSsh(from?: Restic): SshSession {
    const repositories = [this, from].flatMap((repository) => repository?.sshRepository() ?? []);
    return openSsh(repositories, this.privateDir ?? from?.privateDir);
  }

  private sshRepository(): SshRepository[] {
    if (!this.spec.ssh) return [];
    return [{ name: this.name, url: this.url(), ssh: this.spec.ssh, configDir: this.configDir }];
  }

  /**
   * Whether a repository exists at the URL and opens with the password. Only restic saying that its config file is
   * not there means "not initialized" (false); a wrong password, refused credentials, an unreachable backend or a
   * folder it may not read throw a ResticError naming the cause: an init must never be planned over a repository
   * that may well exist. `--no-lock`: reading the config needs no lock (restic 0.14 would take one, and retry for a
   * minute on a read-only repository before failing).
   */
  async isInitialized(): Promise<boolean> {
    const result = await this.restic("cat", ["--no-lock", "config"]);
    if (result.code === 0) return true;
    const error = this.failure("open", result);
    if (error.failure.kind === "not-initialized") return false;
    throw error;
  }

  /**
   * Creates the repository; an existing one with the same password is adopted, not an error. With `chunkerFrom`,
   * it takes that repository's chunker parameters, so snapshots copied from there deduplicate.
   */
  async init(chunkerFrom?: Restic): Promise<"created" | "adopted"> {
    const result = chunkerFrom
      ? await this.run(this.argvWith(chunkerFrom, "init", "--copy-chunker-params"), {
        env: { ...chunkerFrom.fromEnvironment(), ...this.environment() },
      }, chunkerFrom)
      : await this.restic("init", []);
    if (result.code === 0) return "created";
    if (
      /already (exists|initialized)|config file already exists/i.test(result.stderr) && await this.isInitialized()
    ) {
      return "adopted";
    }
    throw this.failure("init", result);
  }

  /** Every snapshot in the repository (not only backupctl's: the inventory reports the others as not managed). */
  async snapshots(): Promise<ResticSnapshot[]> {
    const result = await this.restic("snapshots", ["--json"]);
    if (result.code !== 0) throw this.failure("snapshots", result);
    return (JSON.parse(result.stdout || "[]") as ResticSnapshot[] | null) ?? [];
  }

  /** The variables restic reads for the other repository of `copy` and `init --copy-chunker-params`. */
  fromEnvironment(): Record<string, string | undefined> {
    const own = this.environment();
    return {
      ...Object.fromEntries(Object.entries(own).filter(([key]) => !key.startsWith("RESTIC_"))),
      RESTIC_FROM_REPOSITORY: own.RESTIC_REPOSITORY,
      RESTIC_FROM_PASSWORD: own.RESTIC_PASSWORD,
      RESTIC_FROM_REPOSITORY_FILE: undefined,
      RESTIC_FROM_PASSWORD_FILE: undefined,
      RESTIC_FROM_PASSWORD_COMMAND: undefined,
    };
  }

  /** Copies snapshots (by id) from another repository into this one; restic skips those already copied. */
  async copyFrom(source: Restic, ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    const result = await this.run(this.argvWith(source, "copy", ...ids), {
      env: { ...source.fromEnvironment(), ...this.environment() },
    }, source);
    if (result.code !== 0) throw this.failure("copy", result);
  }

  /** Removes unreferenced data after forgets. */
  async prune(): Promise<void> {
    const { maxUnused, maxRepackSize } = this.spec.prune ?? {};
    const result = await this.restic("prune", [
      ...(maxUnused === undefined ? [] : ["--max-unused", maxUnused]),
      ...(maxRepackSize === undefined ? [] : ["--max-repack-size", maxRepackSize]),
    ]);
    if (result.code !== 0) throw this.failure("prune", result);
  }

  /** Verifies the repository's structure, and a subset of its data when `readDataSubset` is given. */
  async check(readDataSubset?: string): Promise<void> {
    const result = await this.restic("check", readDataSubset ? [`--read-data-subset=${readDataSubset}`] : []);
    if (result.code !== 0) throw this.failure("check", result);
  }

  /**
   * Removes the repository locks restic judges stale (its process gone on this host, or not refreshed for 30
   * minutes); never `--remove-all`, so a live restic's lock stays. Returns what restic said: "successfully removed
   * locks" every time from restic 0.14, "successfully removed 1 locks" or nothing at all from newer versions.
   */
  /** The repository's locks with what they say of their holder (a restic process per lock; none when there are none). */
  async locks(whileStopping = false): Promise<ResticLock[]> {
    const local = this.localLockIds();
    if (local && local.length === 0) return [];
    const listed = await this.restic(
      "list",
      ["locks", "--no-lock"],
      undefined,
      whileStopping ? lockReadTimeoutMs : undefined,
      whileStopping,
    );
    if (listed.code !== 0) throw this.failure("list locks", listed);
    const locks: ResticLock[] = [];
    for (const id of listed.stdout.split("\n").map((line) => line.trim()).filter((line) => fullId.test(line))) {
      // A lock removed meanwhile (its holder finished) is simply gone. restic 0.14 retries reading a file that is
      // not there for some 45 s before it says so: a local lock file is looked for first, and reading one gets a
      // time limit (a lock that vanished in between is then gone too; one that could not be read is not judged).
      if (local && !this.localLockIds()?.includes(id)) continue;
      const shown = await this.restic("cat", ["lock", id, "--no-lock"], undefined, lockReadTimeoutMs, whileStopping);
      const lock = shown.code === 0 ? parseLock(id, shown.stdout) : undefined;
      if (lock) locks.push(lock);
    }
    return locks;
  }

  /**
   * The ids in a local repository's locks/ folder, without starting restic; undefined for other backends. With
   * `olderThanMs`, only lock files not written for that long (restic rewrites a live lock every 5 minutes).
   */
  localLockIds(olderThanMs?: number): string[] | undefined {
    return localLockIds(this.url(), olderThanMs);
  }

  /**
   * Removes the locks whose holder is provably gone (see restic-locks.ts) and says which; a live holder's lock stays.
   * When every lock is stale, `restic unlock --remove-all`; otherwise a local repository's stale lock files are
   * deleted one by one, and other backends get restic's own judgement (`restic unlock`).
   */
  async removeStaleLocks(): Promise<LockVerdict[]> {
    const verdicts = (await this.locks()).map((lock) => judgeLock(lock));
    const stale = verdicts.filter((verdict) => verdict.stale);
    if (stale.length === 0) return [];
    if (stale.length === verdicts.length) {
      const result = await this.restic("unlock", ["--remove-all"]);
      if (result.code !== 0) throw this.failure("unlock --remove-all", result);
    } else if (this.localLockIds() !== undefined) {
      const dir = join(this.url().replace(/^local:/, ""), "locks");
      for (const { lock } of stale) rmSync(join(dir, lock.id), { force: true });
    } else {
      const result = await this.restic("unlock", []);
      if (result.code !== 0) throw this.failure("unlock", result);
    }
    return stale;
  }

  /**
   * Removes the locks of restic processes of this host that are gone and were made since `sinceMs`: after backupctl
   * stopped its own restic, whose SIGINT can arrive while restic writes its lock (restic then exits without removing
   * it). Older stale locks are left to the plan's recovery, where a reviewer sees them. Best effort: returns the
   * number removed, 0 when the locks cannot be read.
   */
  async removeOwnLocksSince(sinceMs: number): Promise<number> {
    let verdicts: LockVerdict[];
    try {
      // Run even while backupctl stops: that is when a stopped restic leaves its lock.
      verdicts = (await this.locks(true)).map((lock) => judgeLock(lock));
    } catch {
      return 0;
    }
    const gone = verdicts.filter(({ lock, stale }) => stale && Date.parse(lock.time) >= sinceMs);
    if (gone.length === 0) return 0;
    if (this.localLockIds() !== undefined) {
      const dir = join(this.url().replace(/^local:/, ""), "locks");
      for (const { lock } of gone) rmSync(join(dir, lock.id), { force: true });
    } else if ((await this.restic("unlock", [], undefined, lockReadTimeoutMs, true)).code !== 0) {
      return 0;
    }
    return gone.length;
  }

  async unlock(): Promise<string> {
    const result = await this.restic("unlock", []);
    if (result.code !== 0) throw this.failure("unlock", result);
    return result.stdout.trim();
  }

  async forget(ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    const result = await this.restic("forget", ids);
    if (result.code !== 0) throw this.failure("forget", result);
  }

  /**
   * Backs up files and folders directly, with the source's own `restic backup` flags (excludes and the like: see
   * sources/files.ts). restic's exit 3 (some files unreadable) counts as a failure.
   */
  async backupPaths(paths: string[], flags: string[], options: BackupOptions): Promise<BackupResult> {
    const args = [...this.backupArgs(options), ...flags, "--", ...paths];
    const result = await this.run(this.argv("backup", ...args), {
      env: this.environment(),
      timeoutMs: options.timeoutMs,
    });
    const summary = parseSummary(result.stdout);
    if (result.code !== 0) {
      throw this.failure("backup", result, summary.snapshotId);
    }
    return summary;
  }

  /**
   * Starts `restic backup --stdin` reading the FIFO `input` (see exec/fifo.ts) behind a gate: restic sees the end of
   * the stream only after `commit()`. `abandon()`, or this process's death, has restic stopped before it stores
   * anything (SIGINT: restic then removes its lock). The caller checks the producer's exit code too, and forgets a
   * snapshot made of a failed stream.
   */
  startStdinBackup(filename: string, options: BackupOptions, input: string) {
    const args = [...this.backupArgs(options), "--stdin", "--stdin-filename", filename];
    const ssh = this.openSsh();
    let child;
    try {
      // SIGINT on timeout: restic 0.14 then removes its lock and stores nothing (SIGTERM would leave a stale lock).
      // The gate and the restic it starts share the priority (a child inherits both).
      child = start(gateArgv(input, this.argv("backup", ...args)), {
        env: { ...this.environment(), ...ssh.env },
        timeoutMs: options.timeoutMs,
        stopSignal: "SIGINT",
        priority: this.priority,
      });
    } catch (error) {
      ssh.remove();
      throw error;
    }
    const finished = child.result.finally(() => ssh.remove())
      .then((result) => ({ result, summary: parseSummary(result.stdout) }));
    const say = (word?: string) => {
      try {
        if (word) child.stdin.write(word);
        child.stdin.end();
      } catch {
        // the gate is gone already
      }
    };
    // The gate's first line says it holds the FIFO; until then the stream must not start (see gateArgv).
    const ready = new Promise<void>((resolve) => {
      let seen = "";
      const listen = (chunk: Uint8Array | string) => {
        seen += chunk.toString();
        if (!seen.includes("gate: holding\n")) return;
        child.stdout.off("data", listen);
        resolve();
      };
      child.stdout.on("data", listen);
      void child.result.then(() => resolve());
    });
    return { kill: child.kill, finished, ready, commit: () => say("commit\n"), abandon: () => say() };
  }

  /**
   * Starts `restic dump ID PATH` writing the file's bytes to `output` (a FIFO of exec/fifo.ts, or a file), for a
   * restore to stream into a file, a decryption filter or a database client. `finished` resolves with restic's
   * result; the caller checks it.
   */
  startDump(snapshotId: string, path: string, output: string, timeoutMs?: number) {
    const ssh = this.openSsh();
    let child;
    try {
      child = start(this.argv("dump", "--", snapshotId, path), {
        env: { ...this.environment(), ...ssh.env },
        stdoutTo: output,
        timeoutMs,
        stopSignal: "SIGINT",
        priority: this.priority,
      });
    } catch (error) {
      ssh.remove();
      throw error;
    }
    return { kill: child.kill, finished: child.result.finally(() => ssh.remove()) };
  }

  /**
   * `backupctl restic R -- ARGS`: runs restic with this repository's environment (URL, password, options, SSH
   * access), its output streaming to the terminal; resolves with restic's exit code (128 + signal when killed).
   */
  async passthrough(args: string[]): Promise<number> {
    const ssh = this.openSsh();
    try {
      // The user's cache is allowed here (interactive use); backupctl's own commands run with --no-cache.
      const flags = globalFlags(this.spec, this.configDir).filter((flag) => flag !== "--no-cache");
      return await runInteractive(["restic", ...flags, ...args], {
        env: { ...this.environment(), ...ssh.env },
        stopSignal: "SIGINT",
        debianPackage: "restic",
      });
    } finally {
      ssh.remove();
    }
  }

  /**
   * The JSON lines of a read-only look into snapshots (`ls`, `find`, `diff`; see restic-browse.ts for what they
   * print). `--no-lock`: reading takes no lock, so browsing never waits for, nor blocks, a backup.
   */
  async browse(command: "ls" | "find" | "diff", args: string[]): Promise<string> {
    const result = await this.restic(command, ["--no-lock", "--json", ...args]);
    if (result.code !== 0) throw this.failure(command, result);
    return result.stdout;
  }

  /**
   * Restores a snapshot's files under `target` (restic keeps their absolute paths below it); with `include`, only
   * those paths of the snapshot (restic patterns: a folder brings what it holds).
   */
  async restore(snapshotId: string, target: string, include: string[] = []): Promise<void> {
    const only = include.flatMap((pattern) => ["--include", pattern]);
    const result = await this.restic("restore", ["--target", target, ...only, "--", snapshotId]);
    if (result.code !== 0) throw this.failure("restore", result);
  }

  /**
   * Restores only the files at `paths` (absolute, as the snapshot holds them) of a snapshot under `target`: one
   * `--include` each, their glob characters escaped so that a name like `a[1].txt` means itself. restic 0.14 reads
   * includes from its arguments only (no --include-file), and Linux caps a command line at about 2 MiB: a large
   * sample (a drill of "100%" of a big tree) is restored in several runs of at most `batchBytes` of includes each,
   * into the same target.
   */
  async restoreIncluding(
    snapshotId: string,
    target: string,
    paths: string[],
    batchBytes = includeBatchBytes,
  ): Promise<void> {
    for (const batch of includeBatches(paths, batchBytes)) {
      const includes = batch.flatMap((path) => ["--include", path]);
      const result = await this.restic("restore", ["--target", target, ...includes, "--", snapshotId]);
      if (result.code !== 0) throw this.failure("restore", result);
    }
  }

  /** The shell lines that set this repository up for a manual restic (see restic-manual.ts). */
  manualEnvironment(): string[] {
    return manualEnvironment(this.manualSetting());
  }

  /** `restic` and this repository's options as shell words (see restic-manual.ts). */
  manualRestic(): string {
    return manualRestic(this.manualSetting());
  }

  private manualSetting(): ManualSetting {
    return { name: this.name, spec: this.spec, configDir: this.configDir, url: this.url() };
  }

  private backupArgs(options: BackupOptions): string[] {
    return [
      "--json",
      "--host",
      options.host,
      "--time",
      options.time.toISOString().slice(0, 19).replace("T", " "),
      ...options.tags.flatMap((tag) => ["--tag", tag]),
      ...backupOnlyFlags(this.spec),
    ];
  }

  /**
   * Fails when the repository is of format version 1 and `compression` asks for compressed data ("auto", "max"):
   * restic 0.14 ignores `--compression` there without a word, so the backups would silently stay uncompressed. The
   * format is read once per process (a version 2 repository never goes back to 1).
   */
  async assertCompressionSupported(): Promise<void> {
    if (this.spec.compression === undefined || this.spec.compression === "off") return;
    const url = this.url();
    if (formatVersion2.has(url)) return;
    const result = await this.restic("cat", ["--no-lock", "config"]);
    if (result.code !== 0) throw this.failure("cat config", result);
    const version = (JSON.parse(result.stdout) as { version?: number }).version;
    if (version !== 1) {
      formatVersion2.add(url);
      return;
    }
    throw new BackupctlError(
      `repository ${this.name}: compression: "${this.spec.compression}" needs a repository of format version 2, ` +
        "and this one is version 1 (restic would store the data uncompressed without a word): upgrade it with " +
        `\`backupctl restic ${this.name} -- migrate upgrade_repo_v2\` (restic 0.14 or later), or remove compression`,
    );
  }

  /** A clear error for a failed restic command of this repository (see restic-failure.ts). */
  failure(command: string, result: RunResult, snapshotId?: string): ResticError {
    return resticFailure(this.name, this.spec, command, result, snapshotId);
  }
}

/** Whether restic failed because another process holds the repository's lock. */
function isLockConflict(result: RunResult): boolean {
  return /repository is already locked|unable to create lock/i.test(result.stderrTail);
}
