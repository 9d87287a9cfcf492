/** mkfifo(3) through bun:ffi (runtime/mkfifo.ts). */
// @ts-ignore: bun:ffi exists only under Bun; this module is imported only there.
import { dlopen, FFIType } from "bun:ffi";

export function bunMkfifo(libc: string): (path: string, mode: number) => number {
  const library = dlopen(libc, { mkfifo: { args: [FFIType.cstring, FFIType.u32], returns: FFIType.i32 } });
  return (path, mode) => library.symbols.mkfifo(Buffer.from(`${path}\0`), mode) as number;
}
