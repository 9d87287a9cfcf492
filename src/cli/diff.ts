/**
 * `backupctl diff --against REF|FILE`: a semantic diff of two configs without any state, for pull-request review.
 * The "before" config is another file, or the config file's content at a git ref; the "after" one is the current
 * config. The comparison itself is pure (src/diff/); this file only finds and loads the two configs.
 */
import { randomBytes } from "node:crypto";
import { existsSync, rmSync, statSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import type { Command } from "commander";
import { loadConfig, type LoadedConfig } from "../config/load.ts";
import { BackupctlError, ConfigError, ExitCode, MissingToolError, UsageError } from "../errors.ts";
import { run as runProgram } from "../exec/run.ts";
import { diffConfigs } from "../diff/config-diff.ts";
import { renderDiffMarkdown, renderDiffText, summarizeDiff } from "../diff/render.ts";
import type { ConfigChange } from "../diff/types.ts";
import { configPath, fromInvocationDir, type GlobalOptions, load, type Output } from "./context.ts";

export const description = "Compare the config with another version (a git ref or a file), without any state";

/** Options of `backupctl diff`, with the global ones. */
export interface DiffCommandOptions extends GlobalOptions {
  against?: string;
  format?: string;
  json?: boolean;
  detailedExitcode?: boolean;
}

const formats = ["text", "markdown", "json"] as const;

/** Registers `diff` on the program. */
export function define(program: Command, output: Output, done: (code: number) => void): void {
  program.command("diff").description(description)
    .requiredOption(
      "--against <ref|file>",
      "the config to compare with: a config file, or a git ref (origin/main, HEAD~1, a sha) at which the " +
        "current config file is read",
    )
    .option("--format <format>", "text, markdown (for a pull-request comment) or json", "text")
    .option("--json", "same as --format json")
    .option("--detailed-exitcode", "exit 0 when the configs are the same and 2 when they differ")
    .addHelpText(
      "after",
      `
The --against config is "before", the current config (--config) is "after". A value that is not an existing file
is a git ref: the config file's content at that ref is written next to the current config (so its relative imports
resolve) as .backupctl-diff-<random>.config.ts, loaded, and deleted again.

Examples:
  backupctl diff --against origin/main --format markdown
  backupctl diff --against HEAD~1 --detailed-exitcode
  backupctl diff --against backup.config.old.ts`,
    )
    .action(async (_options, command: Command) =>
      done(await run(command.optsWithGlobals<DiffCommandOptions>(), output))
    );
}

/** Where the "before" config comes from: a file, or a git ref's version of the current config file. */
type AgainstSource = { kind: "file"; file: string } | { kind: "ref"; ref: string; content: string };

/** Runs `diff`; returns the exit code (2 with --detailed-exitcode when the configs differ). */
export async function run(options: DiffCommandOptions, output: Output): Promise<number> {
  const format = options.json ? "json" : options.format ?? "text";
  if (!(formats as readonly string[]).includes(format)) {
    throw new UsageError(`--format: expected text, markdown or json, got "${format}"`);
  }
  const against = options.against;
  if (against === undefined || against.trim() === "") {
    throw new UsageError("--against: pass a config file or a git ref, e.g. --against origin/main");
  }
  const currentFile = configPath(options);
  const source = await resolveAgainst(against, currentFile);
  const after = await load(options);
  const before = await loadAgainst(source, after.file);
  const changes = before.fingerprint === after.fingerprint ? [] : diffConfigs(before.config, after.config);
  output.stdout(render(changes, format as (typeof formats)[number], against, before, after));
  return options.detailedExitcode && changes.length > 0 ? ExitCode.changes : ExitCode.ok;
}

function render(
  changes: ConfigChange[],
  format: (typeof formats)[number],
  against: string,
  before: LoadedConfig,
  after: LoadedConfig,
): string {
  if (format === "markdown") return renderDiffMarkdown(changes, { against });
  if (format === "text") return renderDiffText(changes);
  const document = {
    format_version: 1,
    against,
    before_fingerprint: before.fingerprint,
    after_fingerprint: after.fingerprint,
    summary: summarizeDiff(changes),
    changes,
  };
  return JSON.stringify(document, null, 2) + "\n";
}

/** An existing file is a config file; anything else is a git ref, read with `git show REF:./NAME`. */
async function resolveAgainst(against: string, currentFile: string): Promise<AgainstSource> {
  const file = fromInvocationDir(against);
  if (existsSync(file) && statSync(file).isFile()) return { kind: "file", file };
  if (against.startsWith("-")) {
    throw new UsageError(`--against: "${against}" is neither an existing file nor a git ref`);
  }
  const dir = dirname(currentFile);
  const name = basename(currentFile);
  const result = await git(["-C", dir, "show", `${against}:./${name}`]);
  if (result.code !== 0) {
    const reason = result.stderr.split("\n").find((line) =>
      line.trim() !== ""
    )?.replace(/^fatal:\s*/, "").replace(/\.$/, "") ??
      `git exited with ${result.code}`;
    throw new UsageError(
      `--against: "${against}" is not an existing file, and git cannot read ${name} at that ref in ${dir} ` +
        `(${reason}): pass a config file, or a git ref where the config file exists, such as HEAD~1 or origin/main`,
    );
  }
  return { kind: "ref", ref: against, content: result.stdout };
}

/** Loads the "before" config; its problems are reported as the --against config's (exit 3). */
async function loadAgainst(source: AgainstSource, currentFile: string): Promise<LoadedConfig> {
  if (source.kind === "file") {
    return await renamingProblems(() => loadConfig(source.file), source.file, `${source.file}, the --against config`);
  }
  const dir = dirname(currentFile);
  const label = `${basename(currentFile)} at ${source.ref}, the --against config`;
  const temp = join(dir, `.backupctl-diff-${randomBytes(6).toString("hex")}.config.ts`);
  try {
    writeFileSync(temp, source.content, { mode: 0o600, flag: "wx" });
  } catch (error) {
    throw new BackupctlError(
      `cannot write the --against config's temporary copy ${temp} (${(error as NodeJS.ErrnoException).code}): ` +
        `diff needs to write into the config's folder; make it writable, or save that version as a file ` +
        `there and pass it to --against`,
    );
  }
  try {
    return await renamingProblems(() => loadConfig(temp), temp, label);
  } finally {
    rmSync(temp, { force: true });
  }
}

/** A ConfigError of the --against config names it as such, never by its temporary file name. */
async function renamingProblems(
  load: () => Promise<LoadedConfig>,
  file: string,
  label: string,
): Promise<LoadedConfig> {
  try {
    return await load();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    throw new ConfigError(
      label,
      error.problems.map((problem) => ({ ...problem, message: problem.message.split(file).join(label) })),
    );
  }
}

/** Runs git (exec/run.ts: no shell text, tracked by shutdown); a missing git is a MissingToolError. */
async function git(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const result = await runProgram(["git", ...args], { env: { GIT_TERMINAL_PROMPT: "0" } });
  // 127: the shell that starts git found no such program.
  if (result.code === 127) throw new MissingToolError("git", "git");
  return { code: result.code ?? 1, stdout: result.stdout, stderr: result.stderr };
}
