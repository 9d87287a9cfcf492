/**
 * The pgbackrest program, one method per command backupctl uses: stanza-create, backup, info, expire, check, restore,
 * and the archive_command line the server must run. Every call goes through src/exec with `--config` (the 0600 file
 * of config-file.ts: no secret in argv or env) and the stanza; as the data directory's owner when backupctl is root
 * (run-as.ts). A failure is an ExecError naming the command and pgBackRest's own message.
 */
import { existsSync } from "node:fs";
import { dirname } from "node:path";
import { ExecError, MissingToolError } from "../errors.ts";
import { transientOutput } from "../exec/failure.ts";
import { run, type RunResult, start } from "../exec/run.ts";
import { which } from "../exec/which.ts";
import { pgpassPath } from "./config-file.ts";
import { parseInfo } from "./info.ts";
import { asUser, type OsUser } from "./run-as.ts";
import type { PitrBackupType, PitrInfo } from "./types.ts";

export { expirationsFor, parseInfo, restorableRange } from "./info.ts";

export interface PgBackRestOptions {
  /** The pgbackrest program (default "pgbackrest"). */
  bin?: string;
  /** The config file written by config-file.ts; its folder holds the lock, log and spool folders it names. */
  configPath: string;
  stanza: string;
  /** Run as this OS user (run-as.ts: the data directory's owner when backupctl is root). */
  runAs?: OsUser;
}

/** What a restore recovers to: the end of the archive, or a moment (`recovery_target_time`). */
export type RestoreTarget = Date | "latest";

/** pgBackRest's form of a time target: UTC with milliseconds, which PostgreSQL reads as recovery_target_time. */
export function targetTimeText(target: Date): string {
  return target.toISOString().replace("T", " ").replace("Z", "+00");
}

export class PgBackRest {
  readonly bin: string;
  readonly configPath: string;
  readonly stanza: string;
  readonly runAs?: OsUser;

  constructor(options: PgBackRestOptions) {
    this.bin = options.bin ?? "pgbackrest";
    this.configPath = options.configPath;
    this.stanza = options.stanza;
    this.runAs = options.runAs;
  }

  /** The argv of a pgbackrest command (what `--print-commands` shows, and what runs). */
  argv(command: string, args: string[] = []): string[] {
    return [this.bin, `--config=${this.configPath}`, `--stanza=${this.stanza}`, ...args, command];
  }

  /** Runs a command; throws an ExecError on a non-zero exit. */
  private async exec(command: string, args: string[] = [], signal?: AbortSignal): Promise<RunResult> {
    if (!which(this.bin)) throw new MissingToolError(this.bin, "pgbackrest");
    const argv = this.argv(command, args);
    const pgpass = pgpassPath(dirname(this.configPath));
    const running = runWithSignal(asUser(argv, this.runAs), {
      // libpq in pgBackRest reads the cluster's password from the pgpass file beside the config, if there is one.
      env: existsSync(pgpass) ? { PGPASSFILE: pgpass, PGPASSWORD: "" } : {},
    }, signal);
    const result = await running;
    if (result.code !== 0) {
      throw new ExecError(
        `pgbackrest ${command}`,
        result.code,
        result.stderrTail || result.stdout.trim().split("\n").slice(-4).join("\n"),
        undefined,
        transientOutput(result.stderr),
      );
    }
    return result;
  }

  /** Creates the stanza in the repository (idempotent: pgBackRest accepts an existing, matching stanza). */
  async stanzaCreate(): Promise<void> {
    await this.exec("stanza-create");
  }

  /** Takes a backup; pgBackRest turns a diff or incr into a full when there is no full to base it on. */
  async backup(type: PitrBackupType, options: { signal?: AbortSignal; expireAuto?: boolean } = {}): Promise<void> {
    // expireAuto false: no expire after the backup (backupctl plans expirations, some held for approval).
    const expire = options.expireAuto === false ? ["--no-expire-auto"] : [];
    await this.exec("backup", [`--type=${type}`, ...expire], options.signal);
  }

  async info(): Promise<PitrInfo> {
    const result = await this.exec("info", ["--output=json"]);
    return parseInfo(result.stdout, this.stanza);
  }

  /** Deletes what the configured retention no longer keeps (predicted beforehand by `expirationsFor`). */
  async expire(options: { set?: string } = {}): Promise<void> {
    // set: only this backup set and the backups depending on it (the labels a plan showed), whatever the retention.
    await this.exec("expire", options.set === undefined ? [] : [`--set=${options.set}`]);
  }

  /** Checks the stanza end to end: the configuration, the repository, and that a WAL segment reaches the archive. */
  async check(): Promise<void> {
    await this.exec("check");
  }

  /**
   * Restores into the new data directory `into` (it must exist and be empty), recovering to `target`: the end of the
   * archive, or the moment, after which the restored server promotes itself.
   */
  async restore(options: { target: RestoreTarget; into: string; signal?: AbortSignal }): Promise<void> {
    await this.exec("restore", this.restoreArgs(options), options.signal);
  }

  /** The options of `restore` (shown by `restore --print-commands`). */
  restoreArgs(options: { target: RestoreTarget; into: string }): string[] {
    const args = [`--pg1-path=${options.into}`];
    if (options.target !== "latest") {
      args.push("--type=time", `--target=${targetTimeText(options.target)}`, "--target-action=promote");
    }
    return args;
  }

  /** The server's `archive_command`: `%p` is the WAL segment PostgreSQL hands over. */
  archivePushCommand(): string {
    const words = [this.bin, `--config=${this.configPath}`, `--stanza=${this.stanza}`, "archive-push", "%p"];
    return words.map(shellWord).join(" ");
  }
}

/** A word of a shell command line (PostgreSQL runs archive_command through /bin/sh). */
function shellWord(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'"'"'`)}'`;
}

/** Runs argv; an abort of `signal` stops the program's group (it unwinds as a failed run). */
async function runWithSignal(
  argv: string[],
  options: Parameters<typeof run>[1],
  signal: AbortSignal | undefined,
): Promise<RunResult> {
  if (!signal) return await run(argv, options);
  const running = start(argv, options);
  const stop = () => running.kill();
  if (signal.aborted) stop();
  signal.addEventListener("abort", stop, { once: true });
  try {
    return await running.result;
  } finally {
    signal.removeEventListener("abort", stop);
  }
}
