/** Which JavaScript runtime runs us. The only place besides runtime/* files that looks at runtime globals. */
export type RuntimeName = "deno" | "bun";

export const runtimeName: RuntimeName = "Bun" in globalThis ? "bun" : "deno";
