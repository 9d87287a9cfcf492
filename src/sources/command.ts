/**
 * Any program whose standard output is the dump. A string runs with `bash -o pipefail -c`, so a failure anywhere
 * in a shell pipeline fails the source; an array runs the program directly. Secrets reach it through `env`.
 */
import type { CommandSource } from "../config/types.ts";
import { resolveMaybeSecret } from "../config/secrets.ts";
import type { SourceContext, StreamInput } from "./types.ts";

export function commandInput(source: CommandSource & { name: string }, context: SourceContext): StreamInput {
  const argv = typeof source.run === "string" ? ["bash", "-o", "pipefail", "-c", source.run] : source.run;
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(source.env ?? {})) env[key] = resolveMaybeSecret(value, context.configDir);
  return {
    kind: "stream",
    argv,
    env,
    filename: source.filename,
    allowEmpty: source.allowEmpty ?? false,
    package: typeof source.run === "string" ? "bash" : source.run[0],
    // Its drill compares the restored dump with this checksum (restore/drill-samples.ts).
    checksum: true,
  };
}
