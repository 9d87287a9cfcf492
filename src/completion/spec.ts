/**
 * What shell completion knows about the command line, read from the commander program itself (never written by hand,
 * so a new command or option completes the day it is defined): every visible command and subcommand, its options (and
 * the global ones), its positional arguments, and what each value completes to. The shell scripts
 * (`completion/bash.ts`, `zsh.ts`, `fish.ts`) are generated from this tree; names that live in the config (projects,
 * sources, repositories, channels) are asked of `backupctl __complete` when the Tab key is pressed.
 */
import type { Argument, Command, Option } from "commander";

/** Names read from the config when completing: `backupctl __complete KIND [PROJECT…]`. */
export const nameKinds = ["projects", "sources", "repositories", "channels"] as const;
export type NameKind = typeof nameKinds[number];

/**
 * What a value completes to: names from the config, file or folder names, a fixed list of words (commander choices),
 * or nothing (free text: a time, a URL, a snapshot id).
 */
export type ValueCompletion = NameKind | "files" | "dirs" | "none" | { words: readonly string[] };

export interface OptionSpec {
  /** `-p`, `--project`: every spelling of the option. */
  names: string[];
  description: string;
  /** What its value completes to; undefined for an option that takes no value. */
  value?: ValueCompletion;
}

export interface ArgumentSpec {
  name: string;
  value: ValueCompletion;
  /** Takes every word from here on (`backup <projects...>`). */
  variadic: boolean;
}

export interface CommandSpec {
  /** The words that lead to it after `backupctl`: [] for the program, ["snapshots", "ls"]. */
  path: string[];
  description: string;
  /** Its own options; the program's (global) options are offered everywhere, see `offeredOptions`. */
  options: OptionSpec[];
  arguments: ArgumentSpec[];
  commands: CommandSpec[];
}

/**
 * Values whose name alone would mislead: `init --project` names a new project and `init --repository` is a URL;
 * `restore --path` and `snapshots ls [path]` are paths inside a snapshot, not on this machine.
 */
const overrides: Record<string, ValueCompletion> = {
  "init --project": "none",
  "init --repository": "none",
  "restore --path": "none",
  "snapshots ls path": "none",
  "restic args": "none",
};

/** Names read from the config, by the option's long name or the argument's name. */
const namesByWord: Record<string, NameKind> = {
  project: "projects",
  projects: "projects",
  source: "sources",
  repository: "repositories",
  channel: "channels",
};

/** A value that names a file or a folder, by its placeholder: `<path>`, `[file]`, `<ref|file>`, `<projects.yml>`. */
function byPlaceholder(placeholder: string): ValueCompletion {
  if (/dir/.test(placeholder)) return "dirs";
  if (/file|path|\.ya?ml$/.test(placeholder)) return "files";
  return "none";
}

function optionValue(path: string[], option: Option): ValueCompletion | undefined {
  if (!option.required && !option.optional) return undefined;
  const long = option.long?.replace(/^--/, "") ?? "";
  const override = overrides[[...path, `--${long}`].join(" ")];
  if (override) return override;
  if (option.argChoices?.length) return { words: option.argChoices };
  const named = namesByWord[long];
  if (named) return named;
  return byPlaceholder(/[<[]([^>\]]+)[>\]]/.exec(option.flags)?.[1] ?? "");
}

function argumentValue(path: string[], argument: Argument): ValueCompletion {
  const override = overrides[[...path, argument.name()].join(" ")];
  if (override) return override;
  if (argument.argChoices?.length) return { words: argument.argChoices };
  return namesByWord[argument.name()] ?? byPlaceholder(argument.name());
}

function optionSpec(path: string[], option: Option): OptionSpec {
  return {
    names: [option.short, option.long].filter((name): name is string => name !== undefined),
    description: option.description,
    value: optionValue(path, option),
  };
}

/** The tree of `command` as commander shows it in `--help`: hidden commands and options left out, help included. */
export function commandSpec(command: Command, path: string[] = []): CommandSpec {
  const help = command.createHelp();
  const visible = help.visibleCommands(command);
  const siblings = visible.map((sub) => sub.name()).filter((name) => name !== "help");
  return {
    path,
    description: command.description(),
    options: help.visibleOptions(command).map((option) => optionSpec(path, option)),
    arguments: command.registeredArguments.map((argument) => ({
      name: argument.name(),
      value: argumentValue(path, argument),
      variadic: argument.variadic,
    })),
    commands: visible.map((sub) =>
      // commander's implicit `help [command]` completes the names of the commands beside it.
      sub.name() === "help" && sub.registeredArguments.length > 0
        ? {
          ...commandSpec(sub, [...path, "help"]),
          arguments: [{ name: "command", value: { words: siblings }, variadic: false }],
        }
        : commandSpec(sub, [...path, sub.name()])
    ),
  };
}

/** Every command of the tree, the program first, each before its subcommands. */
export function allCommands(spec: CommandSpec): CommandSpec[] {
  return [spec, ...spec.commands.flatMap(allCommands)];
}

/**
 * The options offered after a command: its own and the program's (global options may follow the command name), each
 * once; `--version` only before a command. `snapshots ls` does not offer `snapshots`'s `--project`: it means nothing
 * there.
 */
export function offeredOptions(root: CommandSpec, command: CommandSpec): OptionSpec[] {
  if (command === root) return root.options;
  const own = new Set(command.options.flatMap((option) => option.names));
  const globals = root.options.filter((option) => !option.names.some((name) => own.has(name) || name === "--version"));
  return [...command.options, ...globals];
}

/**
 * The options that take a value after a command, as commander parses them: its own and every ancestor's (a parent's
 * option is still the parent's after the subcommand's name). Used to tell an option's value from a positional word.
 */
export function valueOptions(root: CommandSpec, command: CommandSpec): OptionSpec[] {
  const chain = [root];
  for (let i = 1; i <= command.path.length; i++) {
    const next = chain[i - 1].commands.find((sub) => sub.path[i - 1] === command.path[i - 1]);
    if (next) chain.push(next);
  }
  const seen = new Set<string>();
  const options: OptionSpec[] = [];
  for (const spec of chain.reverse()) {
    for (const option of spec.options) {
      if (option.value === undefined || option.names.some((name) => seen.has(name))) continue;
      for (const name of option.names) seen.add(name);
      options.push(option);
    }
  }
  return options;
}

/** A value completion as one word the scripts test: `projects`, `files`, `words:text|json`. */
export function completionWord(value: ValueCompletion): string {
  return typeof value === "string" ? value : `words:${value.words.join("|")}`;
}

/** The kind of each positional argument as one word per argument; the last ends with `...` when it is variadic. */
export function argumentWords(command: CommandSpec): string[] {
  return command.arguments.map((argument) => `${completionWord(argument.value)}${argument.variadic ? "..." : ""}`);
}

/** A description on one line, for the shells that show them. */
export function oneLine(text: string): string {
  return text.replace(/\s+/g, " ").trim();
}
