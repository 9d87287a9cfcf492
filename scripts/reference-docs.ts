/**
 * Writes the two generated references: docs/config-reference.md from the zod schema every config is validated with
 * (src/config/schema.ts: its field descriptions and the titled value formats), and docs/cli-reference.md from the
 * commander program (src/cli/program.ts: commands, arguments, options). Nothing in them is written by hand, so they
 * cannot drift. The output is already as `deno fmt` would write it. It also refreshes the example payloads of
 * docs/notifications.md (scripts/notification-docs.ts). `--check` writes nothing and exits 1 naming each stale file;
 * test/docs/docs_test.ts runs the same comparison.
 *
 * Usage: deno run -A scripts/reference-docs.ts [--check]
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Argument, Command, Option } from "commander";
import { z } from "zod";
import { buildProgram } from "../src/cli/program.ts";
import { configSchema } from "../src/config/schema.ts";
import { docsPath as notificationsPath, withPayloads } from "./notification-docs.ts";

const docs = join(new URL("..", import.meta.url).pathname, "docs");
export const configReferencePath: string = join(docs, "config-reference.md");
export const cliReferencePath: string = join(docs, "cli-reference.md");

/** deno fmt's lineWidth (deno.json): prose is wrapped at it. */
const lineWidth = 120;

// ---------------------------------------------------------------------------------------------------------------
// Markdown helpers

/** GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens. */
export function slug(heading: string): string {
  return heading.toLowerCase().replace(/[^\p{L}\p{M}\p{N}\p{Pc}\- ]/gu, "").replace(/ /g, "-");
}

/** Text outside code spans with the characters markdown would read as markup escaped. */
function escapeText(text: string): string {
  return text.split(/(`[^`]*`)/).map((part, i) => i % 2 === 1 ? part : part.replace(/[\\|<*]/g, (c) => `\\${c}`)).join(
    "",
  );
}

/** A table cell: pipes escaped, even inside code spans (GitHub splits cells on them first). */
function cell(text: string): string {
  return text.replace(/(?<!\\)\|/g, "\\|");
}

/** A table padded the way deno fmt pads it. */
function table(header: string[], rows: string[][]): string {
  const all = [header, ...rows].map((row) => row.map(cell));
  const width = header.map((_, column) => Math.max(3, ...all.map((row) => [...row[column]].length)));
  const line = (row: string[]) => `| ${row.map((text, column) => text.padEnd(width[column])).join(" | ")} |`;
  return [line(all[0]), `| ${width.map((w) => "-".repeat(w)).join(" | ")} |`, ...all.slice(1).map(line)].join("\n");
}

/** A paragraph wrapped at the line width; code spans are never broken. */
function paragraph(text: string): string {
  const words = text.split(/(`[^`]*`|\s+)/).reduce<string[]>((out, part, i) => {
    if (i % 2 === 0 || !/^\s+$/.test(part)) {
      if (part === "") return out;
      if (out.length > 0 && !out[out.length - 1].endsWith(" ")) out[out.length - 1] += part;
      else out.push(part);
    } else if (out.length > 0) out[out.length - 1] += " ";
    return out;
  }, []).map((word) => word.trimEnd());
  const lines: string[] = [];
  for (const word of words) {
    const last = lines.length - 1;
    if (last >= 0 && [...lines[last]].length + 1 + [...word].length <= lineWidth) lines[last] += ` ${word}`;
    else lines.push(word);
  }
  return lines.join("\n");
}

function sentence(text: string): string {
  return /[.!?]$/.test(text) ? text : `${text}.`;
}

function capitalized(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function code(text: string): string {
  const longest = Math.max(0, ...(text.match(/`+/g) ?? []).map((run) => run.length));
  const marks = "`".repeat(longest + 1);
  return longest > 0 ? `${marks} ${text} ${marks}` : `${marks}${text}${marks}`;
}

function list(items: string[], last = "or"): string {
  return items.length <= 1 ? items.join("") : `${items.slice(0, -1).join(", ")} ${last} ${items[items.length - 1]}`;
}

// ---------------------------------------------------------------------------------------------------------------
// The configuration reference, from the zod schema

type Schema = z.core.$ZodType;
// deno-lint-ignore no-explicit-any
type Def = any;

const def = (schema: Schema): Def => schema._zod.def;
const metaOf = (schema: Schema): { title?: string; description?: string } =>
  (z.globalRegistry.get(schema) ?? {}) as { title?: string; description?: string };

const secretLabel = 'secret (`env("NAME")` or `file(PATH)`)';

function unwrap(schema: Schema): { inner: Schema; optional: boolean } {
  let inner = schema;
  let optional = false;
  while (def(inner).type === "optional") {
    optional = true;
    inner = def(inner).innerType;
  }
  return { inner, optional };
}

/** The first title on the way in (a shared value format such as "duration"). */
function titleOf(schema: Schema): string | undefined {
  for (let current: Schema | undefined = schema; current;) {
    const title = metaOf(current).title;
    if (title) return title;
    current = def(current).type === "optional" ? def(current).innerType : undefined;
  }
  return undefined;
}

/** The schema a title was given to: its description is the format's, not a field's. */
function titleOwner(schema: Schema, title: string): Schema {
  let owner = schema;
  for (let parent = owner._zod.parent; parent && metaOf(parent).title === title; parent = parent._zod.parent) {
    owner = parent;
  }
  return owner;
}

/** The description a field was given itself (not one inherited from its value format). */
function ownDescription(schema: Schema): string | undefined {
  const description = metaOf(schema).description;
  if (description === undefined) return undefined;
  const title = metaOf(schema).title;
  if (title && titleOwner(schema, title) === schema) return undefined;
  return description;
}

/** The literal `type` of an object made by a helper (`postgres()`), if it is one. */
function helperOf(object: Schema): string | undefined {
  const type = def(object).shape?.type;
  return type && def(type).type === "literal" ? String(def(type).values[0]) : undefined;
}

interface Section {
  object: Schema;
  title: string;
  paths: string[];
  /** The description of the field that first led here (for objects not made by a helper). */
  fieldDescription?: string;
}

interface Walk {
  sections: Map<Schema, Section>;
  /** Value formats by title, with their descriptions, in the order met. */
  formats: Map<string, string>;
  titles: Set<string>;
}

/**
 * A key that must stay absent (`z.undefined()`): it only keeps two forms of one helper apart (postgres() with one
 * database, and with `databases: "all"`), and is not listed.
 */
function absentKey(field: Schema): boolean {
  return def(unwrap(field).inner).type === "undefined";
}

/** The literal `databases` of a helper's second form (`postgres({ databases: "all" })`), if it is one. */
function formOf(object: Schema): string | undefined {
  const databases = def(object).shape?.databases;
  if (!databases || absentKey(databases)) return undefined;
  const inner = unwrap(databases).inner;
  return def(inner).type === "literal" ? `{ databases: ${JSON.stringify(def(inner).values[0])} }` : undefined;
}

function sectionTitle(object: Schema, path: string): string {
  const helper = helperOf(object);
  if (helper) return `\`${helper}(${formOf(object) ?? ""})\``;
  return path === "" ? "Top level" : `\`${path}\``;
}

function visitObject(walk: Walk, object: Schema, path: string, fieldDescription?: string): void {
  const known = walk.sections.get(object);
  if (known) {
    if (!known.paths.includes(path)) known.paths.push(path);
    return;
  }
  walk.sections.set(object, { object, title: sectionTitle(object, path), paths: [path], fieldDescription });
  for (const [key, field] of Object.entries(def(object).shape as Record<string, Schema>)) {
    if ((key === "type" && helperOf(object)) || absentKey(field)) continue;
    const fieldPath = path === "" ? key : `${path}.${key}`;
    if (ownDescription(field) === undefined) throw new Error(`the schema has no description for ${fieldPath}`);
    visitValue(walk, field, fieldPath, ownDescription(field));
  }
}

/** Finds the objects (sections) and value formats below a field. */
function visitValue(walk: Walk, schema: Schema, path: string, description?: string): void {
  const { inner } = unwrap(schema);
  const title = titleOf(schema);
  if (title) {
    const formatDescription = metaOf(titleOwner(unwrapTitled(schema), title)).description;
    if (formatDescription && !walk.formats.has(title)) walk.formats.set(title, formatDescription);
    walk.titles.add(title);
    return;
  }
  const d = def(inner);
  switch (d.type) {
    case "object":
      return visitObject(walk, inner, path, description);
    case "array":
      return visitValue(walk, d.element, `${path}[]`);
    case "record":
      visitValue(walk, d.keyType, path);
      return visitValue(walk, d.valueType, `${path}.${recordKeyName(d.keyType)}`);
    case "union":
      for (const option of d.options) visitValue(walk, option, path);
      return;
  }
}

/** The innermost schema that still carries the title. */
function unwrapTitled(schema: Schema): Schema {
  let current = schema;
  while (def(current).type === "optional" && titleOf(def(current).innerType)) current = def(current).innerType;
  return current;
}

function recordKeyName(key: Schema): string {
  return (titleOf(key) ?? "key").toUpperCase().replace(/ /g, "_");
}

/** The type column: structural, with value formats by title and objects as links to their sections. */
function typeOf(walk: Walk, schema: Schema): string {
  const { inner } = unwrap(schema);
  const title = titleOf(schema);
  if (title === "secret") return secretLabel;
  if (title) return title;
  const d = def(inner);
  switch (d.type) {
    case "string":
      return "string";
    case "boolean":
      return "boolean";
    case "number": {
      const { minValue, maxValue, isInt } = inner as unknown as { minValue: number; maxValue: number; isInt: boolean };
      const kind = isInt ? "integer" : "number";
      const hasMin = Number.isFinite(minValue) && minValue > Number.MIN_SAFE_INTEGER;
      const hasMax = Number.isFinite(maxValue) && maxValue < Number.MAX_SAFE_INTEGER;
      if (hasMin && hasMax) return `${kind} ${minValue}–${maxValue}`;
      if (hasMin) return `${kind} ≥ ${minValue}`;
      if (hasMax) return `${kind} ≤ ${maxValue}`;
      return kind;
    }
    case "literal":
      return list(d.values.map((value: unknown) => code(JSON.stringify(value))));
    case "enum":
      return `one of ${list(Object.values(d.entries).map((value) => code(JSON.stringify(value))))}`;
    case "array": {
      const nonEmpty = (d.checks ?? []).some((check: Schema) =>
        def(check).check === "min_length" && def(check).minimum > 0
      );
      return `${nonEmpty ? "non-empty " : ""}list of ${plural(walk, d.element)}`;
    }
    case "record":
      return `record ${typeOf(walk, d.keyType)} → ${typeOf(walk, d.valueType)}`;
    case "union": {
      if (d.discriminator === "secret") return secretLabel;
      return list(d.options.map((option: Schema) => typeOf(walk, option)));
    }
    case "object": {
      const section = walk.sections.get(inner);
      if (!section) throw new Error("an object without a section");
      const helper = helperOf(inner);
      return helper ? `[${section.title}](#${slug(section.title)})` : `[object](#${slug(section.title)})`;
    }
  }
  throw new Error(`the reference generator does not know zod's "${d.type}" (teach typeOf)`);
}

function plural(walk: Walk, element: Schema): string {
  const type = typeOf(walk, element);
  if (type === secretLabel) return "secrets";
  if (/^[a-z][a-z ]*$/i.test(type)) return `${type}s`;
  return type.startsWith("one of ") ? type.replace(/^one of /, "") : type;
}

function walkConfig(): Walk {
  const walk: Walk = { sections: new Map(), formats: new Map(), titles: new Set() };
  visitObject(walk, configSchema, "");
  const undescribed = [...walk.titles].filter((title) => !walk.formats.has(title));
  if (undescribed.length > 0) throw new Error(`the schema has no description for the format ${undescribed.join(", ")}`);
  return walk;
}

export function renderConfigReference(): string {
  const walk = walkConfig();
  const sections = [...walk.sections.values()];
  const parts: string[] = [
    "# Configuration reference (generated)",
    "<!-- Generated by scripts/reference-docs.ts from src/config/schema.ts: do not edit by hand. -->",
    paragraph(
      "Every key `backup.config.ts` accepts, generated from the schema it is validated with " +
        "(`src/config/schema.ts`); refresh it with `deno task docs`. What the keys do, with examples, is in " +
        "[configuration.md](configuration.md). Every object is strict: an unknown key is an error. Paths with " +
        "`NAME` stand for any name.",
    ),
    sections.map((section) => `- [${section.title}](#${slug(section.title)})`).join("\n"),
    "## Value formats",
    table(
      ["format", "accepted values"],
      [...walk.formats].map(([title, description]) => [title === "secret" ? secretLabel : title, description]),
    ),
  ];
  for (const section of sections) {
    parts.push(`## ${section.title}`);
    const helper = helperOf(section.object);
    const description = metaOf(section.object).description ?? section.fieldDescription;
    const intro: string[] = [];
    if (description) intro.push(sentence(description));
    if (helper) {
      intro.push(`Written \`${helper}({ … })\`; the helper adds \`type: ${JSON.stringify(helper)}\`.`);
    }
    if (section.paths[0] === "") {
      intro.push("The default export of the config file: `export default defineConfig({ … })`.");
    } else if (helper || section.paths.length > 1) {
      intro.push(`Used at ${list(section.paths.map((path) => `\`${path}\``), "and")}.`);
    }
    parts.push(paragraph(intro.join(" ")));
    const rows = Object.entries(def(section.object).shape as Record<string, Schema>)
      .filter(([key, field]) => !(key === "type" && helper) && !absentKey(field))
      .map(([key, field]) => [
        `\`${key}\``,
        typeOf(walk, field),
        unwrap(field).optional ? "optional" : "required",
        ownDescription(field)!,
      ]);
    parts.push(table(["key", "type", "required", "description"], rows));
  }
  return `${parts.join("\n\n")}\n`;
}

// ---------------------------------------------------------------------------------------------------------------
// The CLI reference, from the commander program

function optionDefault(option: Option): string {
  if (option.defaultValueDescription) return escapeText(option.defaultValueDescription);
  if (option.defaultValue === undefined) return "";
  return code(typeof option.defaultValue === "string" ? option.defaultValue : JSON.stringify(option.defaultValue));
}

function optionDescription(option: Option): string {
  const extra: string[] = [];
  if (option.argChoices) extra.push(`one of ${list(option.argChoices.map((choice) => code(choice)))}`);
  if (option.mandatory) extra.push("required");
  return [escapeText(option.description), ...extra].filter((text) => text !== "").join("; ");
}

function optionsTable(options: readonly Option[]): string {
  const withEnv = options.some((option) => option.envVar);
  const header = withEnv ? ["option", "env", "default", "description"] : ["option", "default", "description"];
  return table(
    header,
    options.map((option) => [
      code(option.flags),
      ...(withEnv ? [option.envVar ? code(option.envVar) : ""] : []),
      optionDefault(option),
      optionDescription(option),
    ]),
  );
}

function argumentName(argument: Argument): string {
  const name = `${argument.name()}${argument.variadic ? "..." : ""}`;
  return argument.required ? `<${name}>` : `[${name}]`;
}

function argumentsTable(args: readonly Argument[]): string {
  return table(
    ["argument", "required", "default", "description"],
    args.map((argument) => [
      code(argumentName(argument)),
      argument.required ? "required" : "optional",
      argument.defaultValue === undefined ? "" : code(JSON.stringify(argument.defaultValue)),
      escapeText(argument.description),
    ]),
  );
}

/** A command's own options, without commander's help option (every command has it). */
function ownOptions(command: Command): Option[] {
  return command.options.filter((option) => !option.hidden);
}

function commandPath(command: Command): string {
  const names: string[] = [];
  for (let current: Command | null = command; current?.parent; current = current.parent) names.unshift(current.name());
  return names.join(" ");
}

function renderCommand(command: Command, level: number): string[] {
  const help = command.createHelp();
  const parts = [
    `${"#".repeat(level)} \`${commandPath(command)}\``,
    "```text\n" + help.commandUsage(command) + "\n```",
    paragraph(sentence(capitalized(escapeText(command.description())))),
  ];
  if (command.registeredArguments.length > 0) parts.push(argumentsTable(command.registeredArguments));
  const options = ownOptions(command);
  if (options.length > 0) parts.push(optionsTable(options));
  const subcommands = command.commands.filter((sub) => !(sub as unknown as { _hidden: boolean })._hidden);
  if (subcommands.length > 0) {
    // Wrapped like prose: three subcommands' links are longer than a line.
    parts.push(paragraph(
      `Subcommands: ${list(subcommands.map((sub) => `[\`${commandPath(sub)}\`](#${slug(commandPath(sub))})`), "and")}.`,
    ));
    for (const sub of subcommands) parts.push(...renderCommand(sub, level + 1));
  }
  return parts;
}

export async function renderCliReference(): Promise<string> {
  const program = await buildProgram({ stdout: () => {}, stderr: () => {} }, () => {});
  const help = program.createHelp();
  const commands = program.commands.filter((command) => !(command as unknown as { _hidden: boolean })._hidden);
  const parts = [
    "# Command-line reference (generated)",
    "<!-- Generated by scripts/reference-docs.ts from src/cli/program.ts: do not edit by hand. -->",
    paragraph(
      "Every command, argument and option, generated from the command definitions (`src/cli/`); refresh it with " +
        "`deno task docs`. What the commands do, their output and exit codes, is in [cli.md](cli.md).",
    ),
    "```text\n" + help.commandUsage(program) + "\n```",
    paragraph(sentence(escapeText(program.description()))),
    "## Global options",
    paragraph(
      "Accepted by every command, before or after the command name. Every command also takes `-h, --help`.",
    ),
    optionsTable(help.visibleOptions(program)),
    "## Commands",
    commands.map((command) => `- [\`${command.name()}\`](#${slug(command.name())})`).join("\n"),
  ];
  for (const command of commands) parts.push(...renderCommand(command, 3));
  return `${parts.join("\n\n")}\n`;
}

// ---------------------------------------------------------------------------------------------------------------

/** Each generated file with the content it should have (docs/notifications.md: only its generated part). */
export async function generatedFiles(): Promise<{ path: string; content: string }[]> {
  return [
    { path: configReferencePath, content: renderConfigReference() },
    { path: cliReferencePath, content: await renderCliReference() },
    { path: notificationsPath, content: withPayloads(readFileSync(notificationsPath, "utf8")) },
  ];
}

/** The files whose content differs from what the generator makes (missing files included). */
export async function staleFiles(): Promise<string[]> {
  return (await generatedFiles()).filter(({ path, content }) => {
    try {
      return readFileSync(path, "utf8") !== content;
    } catch {
      return true;
    }
  }).map(({ path }) => path);
}

if (import.meta.main) {
  const root = join(docs, "..");
  const relative = (path: string) => path.slice(root.length + 1);
  if (process.argv.includes("--check")) {
    const stale = await staleFiles();
    for (const path of stale) {
      console.error(`${relative(path)} is stale: run \`deno task docs\` (scripts/reference-docs.ts) and review it`);
    }
    if (stale.length > 0) process.exit(1);
    console.log(`${(await generatedFiles()).map(({ path }) => relative(path)).join(", ")} are up to date`);
  } else {
    const stale = new Set(await staleFiles());
    for (const { path, content } of await generatedFiles()) {
      if (stale.has(path)) writeFileSync(path, content);
      console.log(stale.has(path) ? `wrote ${relative(path)}` : `${relative(path)} was up to date`);
    }
  }
}
