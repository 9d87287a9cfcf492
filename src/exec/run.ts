/**
 * Runs external programs through zx. Arguments are passed as an argv array (zx quotes each one); secrets reach
 * children only through `env`, never argv. Output is kept in bounded buffers so a multi-gigabyte dump never sits in
 * memory: stdout is either streamed to a consumer or kept up to a cap, stderr keeps its last 8 KiB. The shell zx
 * starts `exec`s the program, so the process killed is the program itself; `stdinFrom`/`stdoutTo` redirect its
 * standard input/output to a path (a FIFO of exec/fifo.ts), so a dump flows between programs without passing
 * through this process.
 */
import type { Readable, Writable } from "node:stream";
import { $, type ProcessPromise, quote } from "zx";
import { redact } from "../config/secrets.ts";
import { childEnvironment } from "./child-env.ts";
import { trackChild } from "../runtime/shutdown.ts";

export interface RunOptions {
  /** Variables added to (or, when undefined, removed from) the inherited environment. */
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** Text written to the program's standard input. */
  input?: string;
  /** Kill the program after this many milliseconds. */
  timeoutMs?: number;
  /** The signal a timeout sends (default SIGTERM). */
  timeoutSignal?: NodeJS.Signals;
  /** Keep at most this many bytes of stdout (default 64 MiB); `stream` discards it for the caller to read live. */
  stdout?: "keep" | "stream";
  /** Standard input read from this path (`< path`), e.g. a FIFO; the pipe to this process stays unused. */
  stdinFrom?: string;
  /**
   * Standard output written to this path (`> path`), e.g. a FIFO. A missing file is created by the shell with the
   * umask's mode: create a private file (0600) first.
   */
  stdoutTo?: string;
}

export interface RunResult {
  argv: string[];
  /** Exit code, or null when killed by a signal. */
  code: number | null;
  signal: string | null;
  stdout: string;
  /** The last lines of stderr, with secrets redacted. */
  stderrTail: string;
}

const stderrCap = 8 * 1024;
const stdoutCap = 64 * 1024 * 1024;

/** An array that keeps only its newest chunks, up to `cap` bytes (zx appends output chunks with push). */
class TailBuffer extends Array<string | Uint8Array> {
  private bytes = 0;
  constructor(private readonly cap: number) {
    super();
  }
  override push(...chunks: (string | Uint8Array)[]): number {
    for (const chunk of chunks) {
      super.push(chunk);
      this.bytes += chunk.length;
    }
    while (this.bytes > this.cap && this.length > 1) this.bytes -= (this.shift() as Uint8Array).length;
    return this.length;
  }
}

class Discard extends Array<string | Uint8Array> {
  override push(): number {
    return 0;
  }
}

/** Not all of backupctl's environment: the config's `env()` variables are withheld (see child-env.ts). */
function environment(extra: RunOptions["env"]): Record<string, string> {
  return childEnvironment(extra);
}

/** A started program whose stdin/stdout can be wired to other programs. */
export interface RunningProcess {
  argv: string[];
  stdin: Writable;
  stdout: Readable;
  result: Promise<RunResult>;
  kill(signal?: NodeJS.Signals): void;
}

/** The shell text after the program: its redirections, each path quoted like an argument. */
function redirections(options: RunOptions): string {
  let text = "";
  if (options.stdinFrom !== undefined) text += ` <${quote(options.stdinFrom)}`;
  if (options.stdoutTo !== undefined) text += ` >${quote(options.stdoutTo)}`;
  return text;
}

export function start(argv: string[], options: RunOptions = {}): RunningProcess {
  const store = {
    stdout: options.stdout === "stream" ? new Discard() : new TailBuffer(stdoutCap),
    stderr: new TailBuffer(stderrCap),
    stdall: new Discard(),
  };
  const child: ProcessPromise = $({
    quiet: true,
    nothrow: true,
    verbose: false,
    env: environment(options.env),
    cwd: options.cwd,
    input: options.input,
    timeout: options.timeoutMs,
    timeoutSignal: options.timeoutSignal ?? "SIGTERM",
    // `exec`: the shell becomes the program, so its PID is the one signalled (and a FIFO it opens is its own).
    prefix: `${$.prefix ?? ""}exec `,
    postfix: redirections(options),
    // deno-lint-ignore no-explicit-any
    store: store as any,
  })`${argv}`;
  const kill = (signal: NodeJS.Signals = "SIGTERM") => {
    // zx signals the program and what it started (it lists the process tree first, so a shell's children are not
    // orphaned by its death). Callers that must know the program is gone wait for `result`.
    // zx throws at once ("Too late to kill the process") when the program has already exited: nothing to do then.
    try {
      child.kill(signal).catch(() => {});
    } catch {
      // already gone
    }
  };
  // A SIGTERM to backupctl stops its children too (runtime/shutdown.ts).
  const untrack = trackChild({ kill });
  const result = (async (): Promise<RunResult> => {
    try {
      const output = await child;
      return {
        argv,
        code: output.exitCode,
        signal: output.signal ?? null,
        stdout: options.stdout === "stream" ? "" : output.stdout,
        stderrTail: tail(redact(output.stderr)),
      };
    } finally {
      untrack();
    }
  })();
  return { argv, stdin: child.stdin, stdout: child.stdout, result, kill };
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

/** Whether a program is on PATH. */
export async function onPath(program: string): Promise<boolean> {
  const result = await run(["sh", "-c", 'command -v "$1" >/dev/null 2>&1', "sh", program]);
  return result.code === 0;
}
