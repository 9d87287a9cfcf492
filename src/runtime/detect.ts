/** Which JavaScript runtime runs us. The only place besides runtime/* files that looks at runtime globals. */
export type RuntimeName = "deno" | "bun";

export const runtimeName: RuntimeName = "Bun" in globalThis ? "bun" : "deno";

/** The running runtime's version, e.g. "2.9.6" (both runtimes report themselves in process.versions). */
export const runtimeVersion: string = (process.versions as Record<string, string | undefined>)[runtimeName] ??
  "unknown";
