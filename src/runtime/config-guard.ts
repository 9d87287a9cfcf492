/**
 * Runs the evaluation of a user's config module in this process under guard. A config is code, and code can end the
 * process, print or wait forever; none of that may decide what backupctl does. While the config loads:
 *
 * - an exit it asks for (`process.exit`, `process.reallyExit`, `Deno.exit`) ends the loading, not the process;
 * - what it prints goes to stderr: stdout carries `plan --format json` and other output read by programs;
 * - an error it throws from a callback (a timer, an unhandled rejection) fails the loading instead of the process;
 * - it has a deadline: a top-level await that never resolves would otherwise hang or end the process its own way.
 *
 * Everything is put back once the loading is over. Code the config leaves running (a timer set while loading that
 * fires later) is not guarded; one-shot commands exit right after their work.
 */
import { Console } from "node:console";

/** The config asked to end the process while it was loading. */
export class ConfigExitRequest extends Error {
  constructor(readonly call: string, readonly code: unknown) {
    super(`the config called ${call}(${code === undefined ? "" : JSON.stringify(code) ?? String(code)})`);
    this.name = "ConfigExitRequest";
  }
}

/** The config did not finish loading within its time. */
export class ConfigLoadTimeout extends Error {
  constructor(readonly timeoutMs: number) {
    super(`did not finish loading within ${timeoutMs} ms`);
    this.name = "ConfigLoadTimeout";
  }
}

/** A config module's code threw outside the import itself (in a callback) while loading. */
export class ConfigCallbackError extends Error {
  constructor(readonly thrown: unknown) {
    super("the config threw in a callback while loading");
    this.name = "ConfigCallbackError";
  }
}

type Patch = { target: object; key: string; original: unknown };

/** The streams the config's console writes to while loading: both are stderr. */
let stderrConsole: Console | undefined;

/** Console methods that write to stdout in Deno, Bun or Node (the others already write to stderr). */
const stdoutConsoleMethods = [
  "log",
  "info",
  "debug",
  "dir",
  "dirxml",
  "table",
  "group",
  "groupCollapsed",
  "groupEnd",
  "count",
  "countReset",
  "time",
  "timeLog",
  "timeEnd",
] as const;

/**
 * Runs `evaluate` (the import of the config and the call of its factory) under guard. Rejects with a
 * ConfigExitRequest, a ConfigLoadTimeout or a ConfigCallbackError for what the config did; whatever `evaluate`
 * itself throws is passed on as it is.
 */
export async function guardConfigEvaluation<T>(evaluate: () => Promise<T>, timeoutMs: number): Promise<T> {
  let stop!: (reason: Error) => void;
  const stopped = new Promise<never>((_resolve, reject) => (stop = reject));
  stopped.catch(() => {}); // a rejection nobody awaits (the evaluation won the race) is not an unhandled one
  let exitRequest: ConfigExitRequest | undefined;
  const requestExit = (call: string) => (code?: unknown): never => {
    exitRequest ??= new ConfigExitRequest(call, code);
    stop(exitRequest);
    // Thrown so that the config's code after the call does not run; the loading has already failed.
    throw exitRequest;
  };
  const onCallbackError = (error: unknown) => {
    if (error instanceof ConfigExitRequest) return; // an exit from a callback: already reported
    stop(new ConfigCallbackError(error));
  };

  const patches: Patch[] = [];
  const patch = (target: object | undefined, key: string, replacement: unknown) => {
    if (!target) return;
    const original = (target as Record<string, unknown>)[key];
    if (typeof original !== "function") return;
    try {
      (target as Record<string, unknown>)[key] = replacement;
      patches.push({ target, key, original });
    } catch {
      // A read-only property: left as it is.
    }
  };
  const deno = (globalThis as { Deno?: DenoExits }).Deno;
  patch(process, "exit", requestExit("process.exit"));
  patch(process, "reallyExit", requestExit("process.reallyExit"));
  patch(deno, "exit", requestExit("Deno.exit"));
  stderrConsole ??= new Console({ stdout: process.stderr, stderr: process.stderr });
  for (const method of stdoutConsoleMethods) {
    const replacement = (stderrConsole as unknown as Record<string, (...args: unknown[]) => unknown>)[method];
    if (replacement) patch(console, method, replacement.bind(stderrConsole));
  }
  patch(process.stdout, "write", process.stderr.write.bind(process.stderr));
  patch(deno?.stdout, "write", deno?.stderr.write.bind(deno.stderr));
  patch(deno?.stdout, "writeSync", deno?.stderr.writeSync.bind(deno.stderr));
  process.on("uncaughtException", onCallbackError);
  process.on("unhandledRejection", onCallbackError);
  const timer = setTimeout(() => stop(new ConfigLoadTimeout(timeoutMs)), timeoutMs);
  try {
    const value = await Promise.race([evaluate(), stopped]);
    // An exit the config caught and carried on from is still an exit it asked for.
    if (exitRequest) throw exitRequest;
    return value;
  } catch (error) {
    throw exitRequest ?? error;
  } finally {
    clearTimeout(timer);
    process.off("uncaughtException", onCallbackError);
    process.off("unhandledRejection", onCallbackError);
    for (const { target, key, original } of patches.reverse()) {
      (target as Record<string, unknown>)[key] = original;
    }
  }
}

interface DenoExits {
  exit(code?: number): never;
  stdout: { write(data: Uint8Array): Promise<number>; writeSync(data: Uint8Array): number };
  stderr: { write(data: Uint8Array): Promise<number>; writeSync(data: Uint8Array): number };
}
