/**
 * docs/architecture.md cannot drift from the code (issue 19, point 10):
 * (a) its `src/` section has one table row per folder and per file under src/ (recursively), whose first cell is the
 *     path relative to src/ in backticks (`cli/plan.ts`; a folder ends with a slash: `notify/channels/`), and every
 *     row there names a path that exists;
 * (b) every path of a module the document names anywhere (a backticked `….ts` with a folder, read relative to src/
 *     unless it starts with a top-level folder of the checkout, or a bare file name) exists, so the document cannot
 *     name a deleted or renamed module;
 * (c) every command registered in src/cli/program.ts (and every subcommand, `notify send`) is named as
 *     `backupctl NAME` in backticks, and every `backupctl NAME` it names is a registered command.
 * Runs under `deno test -A test/docs/architecture_test.ts` and `bun --no-install test ./test/docs/architecture_test.ts`.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { describe, it } from "node:test";
import { buildProgram } from "../../src/cli/program.ts";

const root = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");
const srcDir = join(root, "src");
const docPath = join(root, "docs", "architecture.md");
const doc = readFileSync(docPath, "utf8");
const program = await buildProgram({ stdout: () => {}, stderr: () => {} }, () => {});

/** Every folder (with a trailing slash) and file under `dir`, relative to it, sorted. */
export function treeOf(dir: string, prefix = ""): string[] {
  const entries: string[] = [];
  for (const entry of readdirSync(join(dir, prefix), { withFileTypes: true })) {
    const path = `${prefix}${entry.name}`;
    if (entry.isDirectory()) entries.push(`${path}/`, ...treeOf(dir, `${path}/`));
    else entries.push(path);
  }
  return entries.sort();
}

/**
 * The lines of the section under the heading `title` (any level), up to the next heading of the same or a higher
 * level; code blocks are not headings.
 */
export function section(markdown: string, title: string): string[] {
  const lines = markdown.split("\n");
  let level = 0;
  let fenced = false;
  const found: string[] = [];
  for (const line of lines) {
    if (/^\s*(```|~~~)/.test(line)) fenced = !fenced;
    const heading = fenced ? null : /^(#{1,6})\s+(.*?)\s*$/.exec(line);
    if (heading && level > 0 && heading[1].length <= level) break;
    if (level > 0) found.push(line);
    if (heading && level === 0 && heading[2] === title) level = heading[1].length;
  }
  return found;
}

/** The first cells of the section's table rows that hold exactly one backticked path. */
export function rowPaths(lines: string[]): string[] {
  return lines.flatMap((line) => {
    const cell = /^\|\s*`([^`|]+)`\s*\|/.exec(line);
    return cell ? [cell[1]] : [];
  });
}

/** Every backticked token of the markdown that reads as a TypeScript module path (`apply/lock.ts`, `fifo.ts`). */
export function modulePaths(markdown: string): string[] {
  const paths = new Set<string>();
  for (const [, token] of markdown.matchAll(/`([^`\s]+)`/g)) {
    if (/^[\w-][\w.-]*(\/[\w.-]+)*\.ts$/.test(token)) paths.add(token);
  }
  return [...paths].sort();
}

/** Top-level folders of the checkout: a path starting with one is read from the checkout's root. */
const rootFolders = new Set(
  readdirSync(root, { withFileTypes: true }).filter((entry) => entry.isDirectory()).map((entry) => entry.name),
);

/** All file names of the folders a bare module name may come from. */
function fileNames(): Set<string> {
  const names = new Set<string>([...readdirSync(root)]);
  for (const folder of ["src", "scripts", "test", "bench"]) {
    for (const path of treeOf(join(root, folder))) if (!path.endsWith("/")) names.add(basename(path));
  }
  return names;
}

export function missingModules(markdown: string): string[] {
  const names = fileNames();
  return modulePaths(markdown).filter((path) => {
    if (!path.includes("/")) return !names.has(path);
    const top = path.split("/")[0];
    return !existsSync(
      rootFolders.has(top) && top !== "src" ? join(root, path) : join(srcDir, path.replace(/^src\//, "")),
    );
  });
}

describe("docs/architecture.md names every file of src/", () => {
  const tree = treeOf(srcDir);
  const srcSection = section(doc, "`src/`");
  const rows = rowPaths(srcSection);

  it("has a `src/` section with a table", () => {
    assert.ok(srcSection.length > 0, "docs/architecture.md has no heading named `src/`");
    assert.ok(rows.length > 0, "the `src/` section of docs/architecture.md has no table rows");
  });

  it("every folder and file under src/ has its row (path relative to src/ in the first cell)", () => {
    const named = new Set(rows);
    const missing = tree.filter((path) => !named.has(path));
    assert.deepEqual(missing, [], `add a row for each to the \`src/\` section of docs/architecture.md`);
  });

  it("every row of the `src/` section names a path that exists, once", () => {
    const existing = new Set(tree);
    assert.deepEqual(rows.filter((path) => !existing.has(path)), [], "rows naming paths that are not in src/");
    assert.deepEqual(rows.filter((path, i) => rows.indexOf(path) !== i), [], "paths with more than one row");
  });

  it("every module path named anywhere in the document exists", () => {
    assert.deepEqual(missingModules(doc), [], "docs/architecture.md names modules that do not exist");
  });
});

describe("docs/architecture.md names every command", () => {
  const commands = program.commands.flatMap((command) => [
    command.name(),
    ...command.commands.map((sub) => `${command.name()} ${sub.name()}`),
  ]);
  const registered = new Set(program.commands.map((command) => command.name()));

  it("the program registers commands", () => {
    assert.ok(commands.length >= 15, `only ${commands.length} commands found in src/cli/program.ts`);
  });

  for (const name of commands) {
    it(`\`backupctl ${name}\` is named`, () => {
      const pattern = new RegExp("`backupctl " + name.replace(/ /g, "\\s+") + "(?=[\\s`|])");
      assert.match(doc, pattern, `docs/architecture.md never names \`backupctl ${name}\` (in the cli/ rows)`);
    });
  }

  it("every `backupctl NAME` it names is a registered command", () => {
    const named = [...doc.matchAll(/`backupctl ([a-z][a-z-]*)/g)].map((match) => match[1]);
    assert.deepEqual([...new Set(named.filter((name) => !registered.has(name)))], [], "commands that do not exist");
  });
});
