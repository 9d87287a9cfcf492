/**
 * `backupctl import projects.yml [--env .env] [--out backup.config.ts] [--force]`: turns the older NestJS backupctl's
 * config/projects.yml into a commented backup.config.ts. What cannot be carried over becomes a `// TODO:` in the file
 * and a warning on stderr; no secret value is ever written or printed.
 */
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import type { Command } from "commander";
import { ExitCode, UsageError } from "../errors.ts";
import { countTodos, envFileNames, mapOldConfig, parseOldConfig } from "../import/old-config.ts";
import { renderConfig } from "../import/write-config.ts";
import { configPath, fromInvocationDir, type GlobalOptions, type Output } from "./context.ts";

export const description =
  "Write a backup.config.ts from the old backupctl's projects.yml (TODOs for what cannot be carried over)";

interface Options extends GlobalOptions {
  env?: string;
  out?: string;
  force?: boolean;
}

export function define(program: Command, output: Output, done: (code: number) => void): void {
  program.command("import").description(description)
    .argument("<projects.yml>", "the old tool's config/projects.yml")
    .option("--env <file>", "the old tool's .env: only which variables it defines is read, never their values")
    .option("--out <file>", "the config to write (default: --config, else ./backup.config.ts)")
    .option("--force", "overwrite an existing file")
    .action((file: string, _options, command: Command) => done(run(file, command.optsWithGlobals<Options>(), output)));
}

export function run(file: string, options: Options, output: Output): number {
  const out = options.out === undefined ? configPath(options) : fromInvocationDir(options.out);
  const shown = options.out ?? options.config ?? process.env.BACKUPCTL_CONFIG ?? "backup.config.ts";
  if (existsSync(out) && !options.force) {
    throw new UsageError(`${shown} already exists; pass --force to overwrite it`);
  }
  const input = fromInvocationDir(file);
  const old = parseOldConfig(readInput(input, "projects.yml"), input);
  const envNames = options.env === undefined
    ? undefined
    : envFileNames(readInput(fromInvocationDir(options.env), "--env"));
  const imported = mapOldConfig(old, { from: file, file: input, envFile: options.env, envNames });
  writeFileSync(out, renderConfig(imported), { mode: 0o644 });

  for (const warning of imported.warnings) output.stderr(`warning: ${warning}\n`);
  const todos = countTodos(imported);
  output.stdout(
    `Wrote ${shown}: ${count(imported.projects.length, "project")}, ` +
      `${count(imported.repositories.length, "repository", "repositories")}, ` +
      `${count(imported.notifiers.length, "notifier")}; ${count(todos, "TODO")} to review\n`,
  );
  output.stdout(
    "Next: review its TODOs, export the variables it names, then run `backupctl validate --secrets` and " +
      "`backupctl plan` (docs/migration.md).\n",
  );
  return ExitCode.ok;
}

function readInput(path: string, what: string): string {
  if (!existsSync(path) || !statSync(path).isFile()) throw new UsageError(`${what}: no such file ${path}`);
  return readFileSync(path, "utf8");
}

function count(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}
