/**
 * The CPU and I/O priority a child runs with: its argv wrapped as `nice -n N ionice -c C -n L PROGRAM …`. Both tools
 * `exec` the program, so it keeps the PID exec/run.ts started (and signals, and its process group); what it starts
 * inherits both priorities. nice is coreutils, ionice util-linux.
 */
import type { Priority } from "../config/types.ts";

const ioniceClass = { "best-effort": "2", idle: "3" } as const;

/** `argv` behind `nice` and `ionice` as `priority` asks; unchanged when it asks for neither. */
export function withPriority(argv: string[], priority: Priority | undefined): string[] {
  if (!priority) return argv;
  const wrapped = [...argv];
  const { ionice } = priority;
  if (ionice) {
    const level = ionice.class === "best-effort" && ionice.level !== undefined ? ["-n", String(ionice.level)] : [];
    wrapped.unshift("ionice", "-c", ioniceClass[ionice.class], ...level);
  }
  if (priority.nice !== undefined) wrapped.unshift("nice", "-n", String(priority.nice));
  return wrapped;
}
