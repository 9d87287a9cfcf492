/** `backupctl validate [--secrets]`: load and validate the config; list the problems with their paths (the first 50, then a count). */
import type { Command } from "commander";
import { collectSecretRefs, describeSecret, readSecret } from "../config/secrets.ts";
import { ConfigError, ExitCode } from "../errors.ts";
import { type GlobalOptions, load, type Output } from "./context.ts";

export const description =
  "Load and validate the config; print each problem with its path, up to 50 (exit 3 when invalid)";

interface Options extends GlobalOptions {
  secrets?: boolean;
}

export function define(program: Command, output: Output, done: (code: number) => void): void {
  program.command("validate").description(description)
    .option("--secrets", "also resolve every secret reference and list the missing ones (by name, never value)")
    .action(async (_options, command: Command) => done(await run(command.optsWithGlobals<Options>(), output)));
}

export async function run(options: Options, output: Output): Promise<number> {
  const loaded = await load(options);
  const { config } = loaded;
  if (options.secrets) {
    const missing = collectSecretRefs(config).filter(({ ref }) => readSecret(ref, loaded.dir) === undefined);
    if (missing.length > 0) {
      throw new ConfigError(
        loaded.file,
        missing.map(({ path, ref }) => ({
          path,
          message: `secret ${describeSecret(ref)} is ${ref.secret === "env" ? "not set" : "missing or empty"}`,
        })),
      );
    }
  }
  const projects = Object.values(config.projects);
  const sources = projects.reduce((n, p) => n + p.sources.length, 0);
  output.stdout(
    `Configuration valid: ${projects.length} project${projects.length === 1 ? "" : "s"}, ${sources} source${
      sources === 1 ? "" : "s"
    }, ` +
      `${Object.keys(config.repositories).length} repositor${
        Object.keys(config.repositories).length === 1 ? "y" : "ies"
      }` +
      `${options.secrets ? ", all secrets resolved" : ""}.\nFingerprint: ${loaded.fingerprint}\n`,
  );
  return ExitCode.ok;
}
