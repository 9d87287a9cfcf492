/**
 * Runs external programs through zx: every child process of backupctl starts here (or in exec/interactive.ts, for one
 * that uses the terminal), so shutdown sees it (runtime/shutdown.ts). Arguments are passed as an argv array, never through
 * shell text; secrets reach children only through `env`, never argv. Output goes to sinks of this module
 * (exec/output-sink.ts) so a multi-gigabyte dump never sits in memory: stdout is either streamed to a consumer or kept
 * up to a cap, stderr keeps its last 64 KiB. A small bash `exec`s the program; `stdinFrom`/`stdoutTo` redirect its
 * standard input/output to a path (a FIFO of exec/fifo.ts) — opening a FIFO blocks until its other end opens, which
 * must not block this process — so a dump flows between programs without passing through this process.
 *
 * Every program runs in a process group of its own, and is stopped as a group: a timeout or a stop signals the
 * group (the program's stop signal — SIGTERM, or SIGINT for restic, which then removes its lock — then SIGKILL after
 * a grace), so what the program left running in the background (`(sleep 300; …) &`) is stopped with it. The result
 * never waits on a pipe such an orphan still holds.
 */
import type { Readable, Writable } from "node:stream";
import { $, type ProcessPromise } from "zx/core";
import { redact } from "../config/secrets.ts";
import { childEnvironment } from "./child-env.ts";
import { OutputSink } from "./output-sink.ts";
import { which } from "./which.ts";
import { withPriority } from "./priority.ts";
import type { Priority } from "../config/types.ts";
import { trackChild } from "../runtime/shutdown.ts";

export interface RunOptions {
  /** Variables added to (or, when undefined, removed from) the inherited environment. */
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** Text written to the program's standard input. */
  input?: string;
  /** Stop the program (its whole process group) after this many milliseconds. */
  timeoutMs?: number;
  /**
   * The signal that asks the program to stop, on a timeout or when backupctl is stopped (default SIGTERM; restic
   * takes SIGINT, on which it removes its lock). SIGKILL follows after `stopGraceMs`.
   */
  stopSignal?: NodeJS.Signals;
  /** How long a stopped program's group gets before SIGKILL (default 10 s). */
  stopGraceMs?: number;
  /** Keep at most this many bytes of stdout (default 64 MiB); `stream` discards it for the caller to read live. */
  stdout?: "keep" | "stream";
  /** Standard input read from this path (`< path`), e.g. a FIFO; the pipe to this process stays unused. */
  stdinFrom?: string;
  /**
   * Standard output written to this path (`> path`), e.g. a FIFO. A missing file is created by the shell with the
   * umask's mode: create a private file (0600) first.
   */
  stdoutTo?: string;
  /** Run the program at this CPU and I/O priority (`nice`, `ionice`; see exec/priority.ts). */
  priority?: Priority;
  /**
   * A short cleanup that must run even while backupctl stops (reading and removing the lock a restic it stopped left
   * behind): a stop of backupctl does not stop it, so give it a `timeoutMs`.
   */
  whileStopping?: boolean;
}

export interface RunResult {
  argv: string[];
  /** Exit code, or null when killed by a signal. */
  code: number | null;
  signal: string | null;
  stdout: string;
  /** The last lines of stderr, with secrets redacted. */
  stderrTail: string;
  /**
   * All of stderr (its last 64 KiB when longer), with secrets redacted: for telling what a failure was, whose cause
   * is often above the last lines (a stack trace, "unable to create lock" after the real error).
   */
  stderr: string;
  /** Set when the program was stopped because it ran longer than `timeoutMs`. */
  timedOut?: boolean;
}

const stderrCap = 64 * 1024;
const defaultStopGraceMs = 10_000;
/** How long the result waits for an exited program's pipes, which an orphan of it may still hold. */
const orphanPipeWaitMs = 500;
const stdoutCap = 64 * 1024 * 1024;

/** Not all of backupctl's environment: the config's `env()` variables are withheld (see child-env.ts). */
function environment(extra: RunOptions["env"]): Record<string, string> {
  return childEnvironment(extra);
}

/** A started program whose stdin/stdout can be wired to other programs. */
export interface RunningProcess {
  argv: string[];
  /** The program's PID, which is also its process group's id. */
  pid: number | undefined;
  stdin: Writable;
  stdout: Readable;
  result: Promise<RunResult>;
  kill(signal?: NodeJS.Signals): void;
}

/**
 * The argv zx runs (each element quoted by zx as a word, never read as shell text): a small bash whose script names
 * the redirections' paths and the program's argv only as positional parameters. `exec`: the shell becomes the
 * program, so its PID is the group's and a FIFO it opens is its own.
 */
function shellArgv(argv: string[], options: RunOptions): string[] {
  const paths: string[] = [];
  let script = "";
  let redirect = "";
  for (const [name, path, operator] of [["in", options.stdinFrom, "<"], ["out", options.stdoutTo, ">"]] as const) {
    if (path === undefined) continue;
    paths.push(path);
    script += `${name}=$${paths.length}; `;
    redirect += ` ${operator}"$${name}"`;
  }
  if (paths.length > 0) script += `shift ${paths.length}; `;
  return ["bash", "-c", `${script}exec "$@"${redirect}`, "bash", ...paths, ...argv];
}

export function start(argv: string[], options: RunOptions = {}): RunningProcess {
  const stdoutSink = new OutputSink(options.stdout === "stream" ? 0 : stdoutCap);
  const stderrSink = new OutputSink(stderrCap);
  /** zx copies every chunk here as well; nothing reads it, so it is kept empty. */
  const everything = new OutputSink(0);
  const stopSignal = options.stopSignal ?? "SIGTERM";
  const graceMs = options.stopGraceMs ?? defaultStopGraceMs;
  const child: ProcessPromise = $({
    quiet: true,
    nothrow: true,
    verbose: false,
    // A process group (and session) of its own: the group is what is stopped, orphans included.
    detached: true,
    env: environment(options.env),
    cwd: options.cwd,
    input: options.input,
    // zx's shell `exec`s the bash of shellArgv, which `exec`s the program: one process, the group's leader.
    prefix: `${$.prefix ?? ""}exec `,
    // The output lands in arrays this module owns and caps (exec/output-sink.ts), not in zx's unbounded default.
    store: { stdout: stdoutSink.chunks, stderr: stderrSink.chunks, stdall: everything.chunks },
  })`${shellArgv(withPriority(argv, options.priority), options)}`;
  const group = child.pid;
  stdoutSink.follow(child.child?.stdout);
  stderrSink.follow(child.child?.stderr);
  everything.follow(child.child?.stdout);
  everything.follow(child.child?.stderr);
  // A write to a program that has exited fails with EPIPE, reported as an 'error' event: unhandled, it would crash
  // backupctl. The program's exit (its result) already tells what happened; the lost bytes do not matter.
  child.child?.stdin?.on("error", () => {});
  let exited = false;
  let groupGone = false;
  /** Signals the program's process group (the program, what it started, and what it left behind). */
  const signalGroup = (signal: NodeJS.Signals | 0): boolean => {
    if (group === undefined || groupGone) return false;
    try {
      process.kill(-group, signal);
      return true;
    } catch {
      groupGone = true; // ESRCH: nobody is left in the group
      return false;
    }
  };
  const timers: ReturnType<typeof setTimeout>[] = [];
  /** Asks the group to stop with `signal`, then SIGKILL after the grace unless it is gone by then. */
  const stopGroup = (signal: NodeJS.Signals) => {
    if (!signalGroup(signal) || signal === "SIGKILL") return;
    const timer = setTimeout(() => signalGroup("SIGKILL"), graceMs);
    timer.unref?.();
    timers.push(timer);
  };
  const kill = (signal: NodeJS.Signals = stopSignal) => {
    if (signal === "SIGKILL") signalGroup("SIGKILL");
    else stopGroup(signal);
  };
  let timedOut = false;
  if (options.timeoutMs !== undefined) {
    const timer = setTimeout(() => {
      timedOut = true;
      stopGroup(stopSignal);
    }, options.timeoutMs);
    timer.unref?.();
    timers.push(timer);
  }
  // The program exited: its pipes are not waited for beyond a short moment (something it left running in the
  // background may hold a copy of stderr for minutes). What it left keeps running, still under the timeout: a stage
  // whose orphan holds its output open ends at the timeout, its whole group stopped, not minutes later.
  child.child?.once("exit", () => {
    exited = true;
    const timer = setTimeout(() => {
      child.child?.stdout?.destroy();
      child.child?.stderr?.destroy();
    }, orphanPipeWaitMs);
    timer.unref?.();
    timers.push(timer);
  });
  // A stop of backupctl stops its children too (runtime/shutdown.ts), each with its own stop signal.
  const untrack = options.whileStopping ? () => {} : trackChild({ kill, stopSignal });
  const result = (async (): Promise<RunResult> => {
    try {
      const output = await child;
      const stderr = redact(stderrSink.text());
      return {
        argv,
        code: output.exitCode,
        signal: output.signal ?? null,
        stdout: stdoutSink.text(),
        stderrTail: tail(stderr),
        stderr,
        ...(timedOut ? { timedOut } : {}),
      };
    } finally {
      untrack();
      // Once the group is known to be empty, no timer needs to fire; otherwise the SIGKILL stays armed.
      if (exited && !signalGroup(0)) { for (const timer of timers) clearTimeout(timer); }
    }
  })();
  return { argv, pid: group, stdin: child.stdin, stdout: child.stdout, result, kill };
}

/** Runs a program to completion. Never throws for a non-zero exit: callers decide what an exit code means. */
export async function run(argv: string[], options: RunOptions = {}): Promise<RunResult> {
  return await start(argv, options).result;
}

/** The last few non-empty lines of a text, at most 2 KiB. */
export function tail(text: string, lines = 8): string {
  const kept = text.trim().split("\n").filter((line) => line.trim()).slice(-lines).join("\n");
  return kept.length > 2048 ? kept.slice(-2048) : kept;
}

/** Whether a program is on PATH (a few `stat`s, as exec/which.ts finds it, not a shell started to ask). */
export function onPath(program: string): Promise<boolean> {
  return Promise.resolve(which(program) !== undefined);
}
