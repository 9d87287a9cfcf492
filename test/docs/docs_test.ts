/**
 * Docs that cannot drift:
 * (a) docs/config-reference.md and docs/cli-reference.md are what scripts/reference-docs.ts generates from the schema
 *     and the command definitions now (and docs/notifications.md's payloads, which the same script refreshes);
 * (b) every example config in docs/*.md and README.md (a ```ts block containing `defineConfig(`) loads and validates,
 *     written as backup.config.ts in a temp folder with every env() variable it names set to a dummy value;
 * (c) docs/cli.md and the command definitions agree: every option row of a command's table and every `--flag` of a
 *     `backupctl COMMAND …` example exists in that command; every command has a section, is in the list of commands,
 *     and every option of every command (and every global option) is mentioned in it.
 * Runs under `deno test -A test/docs/docs_test.ts` and `bun --no-install test ./test/docs/docs_test.ts`.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { after, describe, it } from "node:test";
import type { Command, Option } from "commander";
import { generatedFiles } from "../../scripts/reference-docs.ts";
import { buildProgram } from "../../src/cli/program.ts";
import { loadConfig } from "../../src/config/load.ts";

const root = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");
const docsDir = join(root, "docs");
const cliDocPath = join(docsDir, "cli.md");

const generated = await generatedFiles();

describe("generated references", () => {
  for (const { path, content } of generated) {
    const name = relative(root, path);
    it(`${name} is current (refresh: deno task docs)`, () => {
      let saved: string | undefined;
      try {
        saved = readFileSync(path, "utf8");
      } catch {
        assert.fail(`${name} is missing: run \`deno task docs\``);
      }
      assert.ok(saved === content, `${name} is stale: run \`deno task docs\` and review the difference`);
    });
  }
});

interface CodeBlock {
  file: string;
  /** Line of the opening fence (1-based). */
  line: number;
  language: string;
  text: string;
}

/** Fenced code blocks of a markdown file, indented ones (in lists) included. */
export function codeBlocks(file: string, markdown: string): CodeBlock[] {
  const lines = markdown.split("\n");
  const blocks: CodeBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,}|~{3,})\s*([\w-]*)/.exec(lines[i]);
    if (!open) continue;
    const [, indent, fence, language] = open;
    const close = new RegExp(`^\\s*${fence[0] === "`" ? "`" : "~"}{${fence.length},}\\s*$`);
    let end = i + 1;
    while (end < lines.length && !close.test(lines[end])) end++;
    const body = lines.slice(i + 1, end).map((line) => line.startsWith(indent) ? line.slice(indent.length) : line);
    blocks.push({ file, line: i + 1, language, text: body.join("\n") });
    i = end;
  }
  return blocks;
}

function exampleConfigs(): CodeBlock[] {
  const files = [
    ...readdirSync(docsDir).filter((name) => name.endsWith(".md")).sort().map((name) => join(docsDir, name)),
    join(root, "README.md"),
  ];
  return files.flatMap((path) => codeBlocks(relative(root, path), readFileSync(path, "utf8")))
    .filter((block) =>
      (block.language === "ts" || block.language === "typescript") && block.text.includes("defineConfig(")
    );
}

describe("example configs in the docs", () => {
  const examples = exampleConfigs();
  const dir = mkdtempSync(join(tmpdir(), "backupctl-doc-examples-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("finds the examples (README.md and docs/configuration.md have one each at least)", () => {
    const files = new Set(examples.map((example) => example.file));
    assert.ok(files.has("README.md"), "README.md has no example config");
    assert.ok(files.has("docs/configuration.md"), "docs/configuration.md has no example config");
  });

  it("every example config loads and validates (fragments without defineConfig( are skipped)", async () => {
    const failures: string[] = [];
    for (const [index, example] of examples.entries()) {
      const names = [
        ...new Set([...example.text.matchAll(/\benv\(\s*["'`]([A-Za-z_][A-Za-z0-9_]*)["'`]\s*\)/g)]
          .map((match) => match[1])),
      ];
      const saved = new Map(names.map((name) => [name, process.env[name]]));
      try {
        const file = join(mkdtempSync(join(dir, `${index}-`)), "backup.config.ts");
        writeFileSync(file, example.text);
        for (const name of names) process.env[name] = `dummy-${name.toLowerCase()}`;
        await loadConfig(file);
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        failures.push(`${example.file}:${example.line}: the example config does not validate:\n${message}`);
      } finally {
        for (const [name, value] of saved) {
          if (value === undefined) delete process.env[name];
          else process.env[name] = value;
        }
      }
    }
    assert.equal(failures.length, 0, failures.join("\n\n"));
  });
});

// ---------------------------------------------------------------------------------------------------------------
// docs/cli.md against the command definitions

interface Section {
  /** The heading's text. */
  title: string;
  line: number;
  level: number;
  /** The lines up to the next heading of the same or a higher level. */
  lines: string[];
}

function sectionsOf(markdown: string): Section[] {
  const lines = markdown.split("\n");
  const headings: { title: string; line: number; level: number }[] = [];
  let fence: string | undefined;
  lines.forEach((text, i) => {
    const marks = /^\s*(`{3,}|~{3,})/.exec(text)?.[1];
    if (marks && (fence === undefined || marks.startsWith(fence))) fence = fence === undefined ? marks : undefined;
    const heading = fence === undefined ? /^(#{1,6}) (.*)$/.exec(text) : null;
    if (heading) headings.push({ title: heading[2], line: i + 1, level: heading[1].length });
  });
  return headings.map((heading, index) => {
    const next = headings.slice(index + 1).find((other) => other.level <= heading.level);
    return { ...heading, lines: lines.slice(heading.line, next ? next.line - 1 : lines.length) };
  });
}

/** Table rows as cells (pipes escaped with a backslash stay in their cell, unescaped). */
function tableRows(section: Section): { line: number; cells: string[] }[] {
  return section.lines.flatMap((text, i) => {
    if (!/^\s*\|/.test(text) || /^\s*\|[\s:|-]+\|\s*$/.test(text)) return [];
    const cells = text.trim().replace(/^\||\|$/g, "").split(/(?<!\\)\|/).map((cell) =>
      cell.trim().replace(/\\\|/g, "|")
    );
    return [{ line: section.line + 1 + i, cells }];
  });
}

const longFlag = /(?<![\w-])--[a-z][a-z0-9-]*/g;

function visibleOptions(command: Command): Option[] {
  return command.options.filter((option) => !option.hidden);
}

function argumentNames(command: Command): string[] {
  return command.registeredArguments.map((argument) => argument.name());
}

/** Compares docs/cli.md with the program; each mismatch is one line naming the place. */
export function cliDocMismatches(markdown: string, program: Command): string[] {
  const problems: string[] = [];
  const at = (line: number, text: string) => problems.push(`docs/cli.md:${line}: ${text}`);
  const sections = sectionsOf(markdown);
  const globals = visibleOptions(program);
  const globalLongs = new Set(globals.map((option) => option.long));
  // Hidden commands (`__complete`, which completion scripts call) are not the operator's: no section, not listed.
  const commands = program.commands.filter((command) => !(command as unknown as { _hidden: boolean })._hidden);

  // The global options table: exactly the program's options.
  const globalSection = sections.find((section) => section.level === 2 && section.title === "Global options");
  if (!globalSection) {
    problems.push("docs/cli.md: no `## Global options` section");
  } else {
    const documented = new Map<string, number>();
    for (const { line, cells } of tableRows(globalSection)) {
      const flags = /^`(-[^`]*)`$/.exec(cells[0])?.[1];
      if (!flags) continue;
      documented.set(flags, line);
      if (flags === "-h, --help") continue;
      const option = globals.find((candidate) => candidate.long === flags.match(longFlag)?.[0]);
      if (!option) at(line, `global option \`${flags}\` is not a global option of the program`);
      else if (option.flags !== flags) at(line, `global option written \`${flags}\`, defined \`${option.flags}\``);
    }
    for (const option of globals) {
      if (![...documented.keys()].some((flags) => flags.match(longFlag)?.[0] === option.long)) {
        at(globalSection.line, `the global option \`${option.flags}\` is missing from the table`);
      }
    }
  }

  // The list of commands in the introduction.
  const listLine = markdown.split("\n").findIndex((line) => line.startsWith("Commands in this version:"));
  if (listLine >= 0) {
    const paragraph = markdown.split("\n").slice(listLine).join("\n").split("\n\n")[0];
    const listed = [...paragraph.matchAll(/`([a-z][\w-]*)[^`]*`/g)].map((match) => match[1]);
    for (const command of commands) {
      if (!listed.includes(command.name())) {
        at(listLine + 1, `"Commands in this version" does not name \`${command.name()}\``);
      }
    }
    for (const name of listed) {
      if (name !== "help" && !commands.some((command) => command.name() === name)) {
        at(listLine + 1, `"Commands in this version" names \`${name}\`, which is not a command`);
      }
    }
  }

  // One section per command, under "## Commands".
  const commandsSection = sections.find((section) => section.level === 2 && section.title === "Commands");
  const commandSections = sections.filter((section) =>
    section.level === 3 && commandsSection && section.line > commandsSection.line &&
    section.line <= commandsSection.line + commandsSection.lines.length
  );
  const sectionOf = new Map<Command, Section>();
  for (const section of commandSections) {
    const name = /^`([a-z][\w-]*)/.exec(section.title)?.[1];
    const command = commands.find((candidate) => candidate.name() === name);
    if (!command) {
      at(section.line, `section ${section.title} names no command of the program`);
      continue;
    }
    sectionOf.set(command, section);
    const text = section.lines.join("\n");
    const family = [command, ...command.commands];

    // Rows of its tables that name an option or an argument.
    for (const { line, cells } of tableRows(section)) {
      const first = /^`([-[<][^`]*)`$/.exec(cells[0])?.[1];
      if (!first) continue;
      const sub = cells.slice(1).map((cell) => /^\(`([a-z][\w-]*)`\)/.exec(cell)?.[1]).find(Boolean);
      const target = sub ? command.commands.find((candidate) => candidate.name() === sub) : command;
      const where = sub ? `${command.name()} ${sub}` : command.name();
      if (!target) {
        at(line, `\`${first}\` is said to be an option of \`${where}\`, which is not a command`);
        continue;
      }
      if (first.startsWith("-")) {
        const long = first.match(longFlag)?.[0];
        const options = sub ? visibleOptions(target) : family.flatMap(visibleOptions);
        const option = options.find((candidate) => candidate.long === long);
        if (!option) at(line, `\`${first}\` is not an option of \`${where}\``);
        else if (option.flags !== first) {
          at(line, `\`${where}\` option written \`${first}\`, defined \`${option.flags}\``);
        }
      } else {
        const name = first.replace(/^[[<]|[\]>]$/g, "").replace(/(\.\.\.|…)$/, "");
        const names = sub ? argumentNames(target) : family.flatMap(argumentNames);
        if (!names.includes(name)) at(line, `\`${first}\` is not an argument of \`${where}\``);
      }
    }

    // Every option of the command and its subcommands is mentioned in its section.
    for (const member of family) {
      for (const option of visibleOptions(member)) {
        const mentioned = new RegExp(`(?<![\\w-])${option.long}(?![\\w-])`).test(text);
        if (!mentioned) {
          const who = member === command ? command.name() : `${command.name()} ${member.name()}`;
          at(section.line, `the section of \`${who}\` does not mention its option \`${option.flags}\``);
        }
      }
    }
  }
  for (const command of commands) {
    if (!sectionOf.has(command)) {
      problems.push(
        `docs/cli.md: no section for the command \`${command.name()}\` (a \`### \\\`${command.name()}\\\`\` heading under "## Commands")`,
      );
    }
  }

  // Every `--flag` of a `backupctl COMMAND …` example (code spans and code blocks) belongs to that command.
  const lineOf = (offset: number) => markdown.slice(0, offset).split("\n").length;
  const examples: { line: number; text: string }[] = [];
  for (const match of markdown.matchAll(/(`+)([^`][\s\S]*?)\1(?!`)/g)) {
    if (match[1].length >= 3) continue; // a fenced block, below
    // A double-backtick span may quote a command in single backticks: ``… run `backupctl apply --auto-approve`.``
    for (const part of match[2].split("`")) examples.push({ line: lineOf(match.index!), text: part.trim() });
  }
  for (const block of codeBlocks("docs/cli.md", markdown)) {
    block.text.split("\n").forEach((text, i) => examples.push({ line: block.line + 1 + i, text: text.trim() }));
  }
  for (const example of examples) {
    const words = /^backupctl\s/.test(example.text) ? example.text.split(/\s+/).slice(1) : [];
    let command: Command | undefined;
    let target: Command | undefined;
    for (const word of words) {
      if (word === "--") break; // what follows is another program's (backupctl restic R -- ARGS)
      const bare = word.replace(/^[[(]+|[\])|,.;:]+$/g, "");
      if (!command) {
        command = commands.find((candidate) => candidate.name() === bare);
        target = command;
        if (command) continue;
      } else if (target === command && command.commands.length > 0) {
        const sub = command.commands.find((candidate) => candidate.name() === bare);
        if (sub) {
          target = sub;
          continue;
        }
      }
      const flag = /^\[?(--[a-z][a-z0-9-]*)/.exec(word)?.[1];
      if (!flag || globalLongs.has(flag)) continue;
      if (!command) continue; // a global option before the command name, or no command at all
      const known = (target === command ? [command, ...command.commands] : [target!]).flatMap(visibleOptions);
      if (!known.some((option) => option.long === flag)) {
        const where = target === command ? command.name() : `${command.name()} ${target!.name()}`;
        at(example.line, `\`${flag}\` in \`${example.text.replace(/\s+/g, " ")}\` is not an option of \`${where}\``);
      }
    }
  }
  return problems;
}

describe("docs/cli.md and the command definitions", () => {
  it("agree on every command, option and argument", async () => {
    const program = await buildProgram({ stdout: () => {}, stderr: () => {} }, () => {});
    const problems = cliDocMismatches(readFileSync(cliDocPath, "utf8"), program);
    assert.equal(problems.length, 0, `${problems.length} mismatches:\n${problems.join("\n")}`);
  });
});
