/**
 * mkfifo(3) called in this process, through the runtime's foreign function interface to the C library (Deno.dlopen,
 * bun:ffi). Making a stream's FIFOs by starting the mkfifo program costs a process at the start of every backup and
 * restore (about 15 ms of their fixed cost, measured). Where the C library cannot be opened (not glibc) or the runtime
 * refuses (Deno without FFI permission), nothing is made here and exec/fifo.ts runs mkfifo; a failed call stops too,
 * and mkfifo, run for what is left, names the cause in its message.
 */
import { chmodSync } from "node:fs";
import { runtimeName } from "./detect.ts";

/** The C library's mkfifo: 0 when made, -1 when not. */
type Mkfifo = (path: string, mode: number) => number;

const libc = "libc.so.6";
let loading: Promise<Mkfifo | undefined> | undefined;

async function load(): Promise<Mkfifo | undefined> {
  try {
    if (runtimeName === "bun") return (await import("./mkfifo-bun.ts")).bunMkfifo(libc);
    const library = Deno.dlopen(libc, { mkfifo: { parameters: ["buffer", "u32"], result: "i32" } });
    const encoder = new TextEncoder();
    return (path, mode) => library.symbols.mkfifo(encoder.encode(`${path}\0`), mode);
  } catch {
    return undefined;
  }
}

/**
 * Makes FIFOs at `paths`, in order, each mode 0600 (whatever the umask); returns how many it made: all of them, or
 * those before the first it could not make.
 */
export async function makeFifosInProcess(paths: string[]): Promise<number> {
  const mkfifo = await (loading ??= load());
  if (!mkfifo) return 0;
  for (const [made, path] of paths.entries()) {
    if (mkfifo(path, 0o600) !== 0) return made;
    chmodSync(path, 0o600);
  }
  return paths.length;
}
