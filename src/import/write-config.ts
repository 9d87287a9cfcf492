/**
 * Renders an imported config (model.ts, made by old-config.ts) as a commented backup.config.ts: the helpers it uses imported from
 * "backupctl", 2-space indentation, JSON-quoted strings, lines kept within 120 columns where the code allows, and every
 * TODO as a `// TODO:` comment where it applies.
 */
import type {
  ImportedConfig,
  ImportedNotifier,
  ImportedProject,
  ImportedRepository,
  ImportedSource,
  Note,
  Part,
  ProjectSlot,
  Value,
} from "./model.ts";

const width = 120;

/** Code to print: an expression already written, an object, a list, or a helper called with one object. */
type Code =
  | { kind: "raw"; text: string }
  | { kind: "object"; entries: Entry[] }
  | { kind: "array"; items: Code[] }
  | { kind: "call"; helper: string; argument: Code };

/** A key and its value, with comment lines before it; an entry without a key holds comments only. */
interface Entry {
  key?: string;
  value?: Code;
  comments?: string[];
}

export function renderConfig(config: ImportedConfig): string {
  return new Renderer(config).render();
}

class Renderer {
  private readonly helpers = new Set<string>(["defineConfig"]);
  private usesSetting = false;
  private secretNames: Set<string> | undefined;

  constructor(private readonly config: ImportedConfig) {}

  render(): string {
    const body = this.print(this.configCode(), 0);
    const storageBox = this.storageBox();
    const imports = [...this.helpers].sort((a, b) => a.localeCompare(b));
    const lines = [
      ...comment(
        `backupctl configuration imported from ${this.config.from}` +
          (this.config.envFile ? ` (variable names from ${this.config.envFile})` : "") +
          " by `backupctl import`.",
      ),
      ...comment(
        'Review every "TODO:" below, then run `backupctl validate --secrets` and `backupctl plan`. ' +
          "Reference: docs/configuration.md; what changed: docs/migration.md.",
      ),
      ...comment(
        'Secrets are references (env("NAME")): no value was copied from the old files. ' +
          (this.config.variables.length > 0
            ? `It reads these environment variables: ${this.config.variables.join(", ")}.`
            : ""),
      ),
      ...importLine(imports),
    ];
    if (this.usesSetting) {
      lines.push(
        'import process from "node:process";',
        "",
        ...comment(
          "A plain (not secret) setting the old tool read from its environment, read the same way when this file " +
            "loads. Replace a call with its value to pin it; without a fallback, an unset variable stops the load.",
        ),
        "function setting(name: string, fallback?: string): string {",
        "  const value = process.env[name] ?? fallback;",
        "  if (value === undefined) {",
        "    throw new Error(`${name} is not set: export it (the old tool read it from its .env), or write its value here`);",
        "  }",
        "  return value;",
        "}",
      );
    }
    lines.push("", ...storageBox, "", `export default defineConfig(${body});`, "");
    return lines.join("\n");
  }

  private configCode(): Code {
    const { config } = this;
    const entries: Entry[] = [];
    const top = notes(config.notes);
    if (config.timezone) {
      entries.push({ key: "timezone", value: this.value(config.timezone), comments: top });
    } else if (top.length > 0) {
      entries.push({ comments: top });
    }
    if (config.retry) {
      const retry: Entry[] = [];
      if (config.retry.attempts) retry.push({ key: "attempts", value: this.value(config.retry.attempts) });
      if (config.retry.baseDelay) retry.push({ key: "baseDelay", value: this.value(config.retry.baseDelay) });
      entries.push({
        key: "defaults",
        value: object([{ key: "retry", value: object(retry) }]),
        comments: ["From BACKUP_RETRY_COUNT (attempts, the first included) and BACKUP_RETRY_DELAY_MS."],
      });
    }
    entries.push({
      key: "repositories",
      value: object(config.repositories.map((repository) => this.repository(repository))),
      comments: ["One restic repository per repository_path of the old projects.yml, on the storage box above."],
    });
    if (config.notifiers.length > 0) {
      entries.push({
        key: "notifiers",
        value: object(config.notifiers.map((notifier) => this.notifier(notifier))),
        comments: ["One channel per distinct notification and monitor; projects list theirs in notify."],
      });
    }
    entries.push({ key: "projects", value: object(config.projects.map((project) => this.project(project))) });
    return object(entries);
  }

  private repository(repository: ImportedRepository): Entry {
    const inside = repository.path.map((part) =>
      typeof part === "string" ? escapeTemplate(part) : this.interpolate(part)
    );
    return {
      key: repository.name,
      value: this.call(
        "restic",
        object([
          { key: "url", value: raw(`\`\${storage}${inside.join("")}\``) },
          { key: "password", value: this.value(repository.password) },
          { key: "ssh", value: raw("storageSsh") },
        ]),
      ),
    };
  }

  /** The storage box's url and ssh settings, as constants every repository uses. */
  private storageBox(): string[] {
    const box = this.config.storageBox;
    const ssh = object([
      { key: "key", value: this.value(box.ssh.key) },
      { key: "hostKeyChecking", value: raw(JSON.stringify(box.ssh.hostKeyChecking)) },
    ]);
    return [
      ...notes(box.notes).flatMap((text) => wrapComment(text, width)),
      `const storage = ${this.parts(box.url)};`,
      `const storageSsh = ${this.print(ssh, 0)} as const;`,
    ];
  }

  private notifier(notifier: ImportedNotifier): Entry {
    let code: Code;
    switch (notifier.type) {
      case "slack":
        code = this.call("slack", object([{ key: "webhookUrl", value: this.value(notifier.webhookUrl) }]));
        break;
      case "webhook":
        code = this.call("webhook", object([{ key: "url", value: this.value(notifier.url) }]));
        break;
      case "uptimeKuma":
        code = this.call("uptimeKuma", object([{ key: "pushUrl", value: this.value(notifier.pushUrl) }]));
        break;
      case "email": {
        const smtp: Entry[] = [{ key: "host", value: this.value(notifier.smtp.host) }];
        for (const key of ["port", "secure", "user", "password"] as const) {
          const value = notifier.smtp[key];
          if (value) smtp.push({ key, value: this.value(value) });
        }
        code = this.call(
          "email",
          object([
            { key: "smtp", value: object(smtp) },
            { key: "from", value: this.value(notifier.from) },
            {
              key: "to",
              value: notifier.to.length === 1
                ? this.value(notifier.to[0])
                : { kind: "array", items: notifier.to.map((to) => this.value(to)) },
            },
          ]),
        );
        break;
      }
    }
    return { key: notifier.name, value: code, comments: notes(notifier.notes) };
  }

  private project(project: ImportedProject): Entry {
    const slot = (name: ProjectSlot) => notes(project.notes[name] ?? []);
    const entries: Entry[] = [];
    const start = slot("start");
    entries.push({ key: "schedule", value: this.value(project.schedule), comments: start });
    if (!project.enabled) {
      entries.push({ key: "enabled", value: raw("false"), comments: ["Disabled in the old projects.yml."] });
    }
    entries.push({
      key: "sources",
      value: { kind: "array", items: project.sources.map((source) => this.source(source)) },
      comments: slot("sources"),
    });
    entries.push({
      key: "repositories",
      value: { kind: "array", items: [raw(JSON.stringify(project.repository))] },
      comments: slot("repositories"),
    });
    entries.push({
      key: "retention",
      value: object(
        Object.entries(project.retention).map(([key, value]) => ({ key, value: raw(JSON.stringify(value)) })),
      ),
      comments: slot("retention"),
    });
    if (project.encrypt) {
      entries.push({
        key: "encrypt",
        value: this.call("gpg", object([{ key: "recipient", value: this.value(project.encrypt.recipient) }])),
        comments: slot("encrypt"),
      });
    }
    if (project.hooks) {
      const hooks: Entry[] = [];
      if (project.hooks.before !== undefined) {
        hooks.push({ key: "before", value: raw(JSON.stringify(project.hooks.before)) });
      }
      if (project.hooks.after !== undefined) {
        hooks.push({ key: "after", value: raw(JSON.stringify(project.hooks.after)) });
      }
      hooks.push({ key: "timeout", value: raw(JSON.stringify(project.hooks.timeout)) });
      // A hook does not inherit the variables the config's env() references read (exec/child-env.ts): one its text
      // expands (\${NAME} or $NAME) must be declared, as the old tool's hooks saw its whole environment.
      const needed = [project.hooks.before, project.hooks.after]
        .flatMap((text) => [...(text ?? "").matchAll(/\$\{?([A-Za-z_][A-Za-z0-9_]*)/g)].map((match) => match[1]))
        .filter((name, index, all) => this.secretVariables().has(name) && all.indexOf(name) === index);
      if (needed.length > 0) {
        this.helpers.add("env");
        const declared = needed.map((name) => ({ key: name, value: raw(`env(${JSON.stringify(name)})`) }));
        hooks.push({ key: "env", value: object(declared) });
      }
      entries.push({ key: "hooks", value: object(hooks), comments: slot("hooks") });
    }
    if (project.notify.length > 0) {
      entries.push({
        key: "notify",
        value: { kind: "array", items: project.notify.map((name) => raw(JSON.stringify(name))) },
        comments: slot("notify"),
      });
    }
    if (project.timeout) {
      entries.push({ key: "timeout", value: raw(JSON.stringify(project.timeout)), comments: slot("timeout") });
    }
    const end = slot("end");
    if (end.length > 0) entries.push({ comments: end });
    return { key: project.name, value: object(entries) };
  }

  private source(source: ImportedSource): Code {
    if (source.type === "files") {
      return this.call(
        "files",
        object([{ key: "paths", value: { kind: "array", items: source.paths.map((p) => this.value(p)) } }]),
      );
    }
    const entries: Entry[] = [];
    for (const key of ["host", "port", "database", "user", "password"] as const) {
      const value = key === "database" ? source.database : source[key];
      if (value) entries.push({ key, value: this.value(value) });
    }
    return this.call(source.type, object(entries));
  }

  /** The variables the written config reads through env() references, wherever they are. */
  private secretVariables(): Set<string> {
    if (this.secretNames) return this.secretNames;
    const names = new Set<string>();
    const walk = (value: unknown): void => {
      if (Array.isArray(value)) value.forEach(walk);
      else if (typeof value === "object" && value !== null) {
        const { kind, name } = value as { kind?: unknown; name?: unknown };
        if (kind === "env" && typeof name === "string") names.add(name);
        else Object.values(value).forEach(walk);
      }
    };
    walk(this.config);
    return (this.secretNames = names);
  }

  private call(helper: string, argument: Code): Code {
    this.helpers.add(helper);
    return { kind: "call", helper, argument };
  }

  private value(value: Value): Code {
    switch (value.kind) {
      case "literal":
        return raw(JSON.stringify(value.value));
      case "env":
        this.helpers.add("env");
        return raw(`env(${JSON.stringify(value.name)})`);
      case "file":
        this.helpers.add("file");
        return raw(`file(${this.text(this.value(value.path))})`);
      case "number":
        return raw(`Number(${this.setting(value)})`);
      case "flag":
        return raw(`${this.setting(value)} === "true"`);
      case "text":
        return raw(this.parts(value.parts));
    }
  }

  private parts(parts: Part[]): string {
    if (parts.every((part) => typeof part === "string")) return JSON.stringify(parts.join(""));
    if (parts.length === 1 && typeof parts[0] !== "string") return this.setting(parts[0]);
    const inside = parts.map((part) => typeof part === "string" ? escapeTemplate(part) : this.interpolate(part));
    return `\`${inside.join("")}\``;
  }

  private interpolate(part: { variable: string; fallback?: string }): string {
    return `\${${this.setting(part)}}`;
  }

  private setting(part: { variable: string; fallback?: string }): string {
    this.usesSetting = true;
    const fallback = part.fallback === undefined ? "" : `, ${JSON.stringify(part.fallback)}`;
    return `setting(${JSON.stringify(part.variable)}${fallback})`;
  }

  private text(code: Code): string {
    return code.kind === "raw" ? code.text : this.print(code, 0);
  }

  // Printing ---------------------------------------------------------------------------------------------------------

  /** The code at `indent` columns, on one line when it fits and holds no comment. */
  private print(code: Code, indent: number): string {
    const inline = this.inline(code);
    if (inline !== undefined && indent + inline.length <= width) return inline;
    return this.multiline(code, indent);
  }

  private inline(code: Code): string | undefined {
    switch (code.kind) {
      case "raw":
        return code.text;
      case "array": {
        const items = code.items.map((item) => this.inline(item));
        return items.some((item) => item === undefined) ? undefined : `[${items.join(", ")}]`;
      }
      case "object": {
        if (code.entries.some((entry) => (entry.comments?.length ?? 0) > 0 || entry.key === undefined)) {
          return undefined;
        }
        const entries = code.entries.map((entry) => {
          const value = this.inline(entry.value!);
          return value === undefined ? undefined : `${key(entry.key!)}: ${value}`;
        });
        if (entries.some((entry) => entry === undefined)) return undefined;
        return entries.length === 0 ? "{}" : `{ ${entries.join(", ")} }`;
      }
      case "call": {
        const argument = this.inline(code.argument);
        return argument === undefined ? undefined : `${code.helper}(${argument})`;
      }
    }
  }

  private multiline(code: Code, indent: number): string {
    const pad = " ".repeat(indent + 2);
    switch (code.kind) {
      case "raw":
        return code.text;
      case "call":
        return `${code.helper}(${this.multiline(code.argument, indent)})`;
      case "array": {
        const items = code.items.map((item) => `${pad}${this.print(item, indent + 2)},`);
        return `[\n${items.join("\n")}\n${" ".repeat(indent)}]`;
      }
      case "object": {
        const lines: string[] = [];
        for (const entry of code.entries) {
          for (const line of entry.comments ?? []) {
            for (const wrapped of wrapComment(line, width - indent - 2)) lines.push(`${pad}${wrapped}`);
          }
          if (entry.key === undefined || entry.value === undefined) continue;
          const head = `${key(entry.key)}: `;
          lines.push(`${pad}${head}${this.printAfter(entry.value, indent + 2, head.length)},`);
        }
        return `{\n${lines.join("\n")}\n${" ".repeat(indent)}}`;
      }
    }
  }

  /** A value that follows `key: ` on its line: inline when the whole line fits. */
  private printAfter(code: Code, indent: number, used: number): string {
    const inline = this.inline(code);
    if (inline !== undefined && indent + used + inline.length + 1 <= width) return inline;
    return this.multiline(code, indent);
  }
}

/** Text as it reads inside a template literal. */
function escapeTemplate(text: string): string {
  return text.replace(/[\\`]/g, "\\$&").replace(/\$\{/g, "\\${");
}

/** The import of the helpers used, on one line when it fits. */
function importLine(names: string[]): string[] {
  const line = `import { ${names.join(", ")} } from "backupctl";`;
  return line.length <= width ? [line] : ["import {", ...names.map((name) => `  ${name},`), '} from "backupctl";'];
}

function raw(text: string): Code {
  return { kind: "raw", text };
}

function object(entries: Entry[]): Code {
  return { kind: "object", entries };
}

function key(name: string): string {
  return /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(name) ? name : JSON.stringify(name);
}

/** Notes as comment texts (without `//`): TODOs marked so. */
function notes(list: Note[]): string[] {
  return list.map((note) => note.todo ? `TODO: ${note.text}` : note.text);
}

/** A `//` comment of any length, wrapped to the width. */
function comment(text: string): string[] {
  return text ? wrapComment(text, width) : [];
}

/** `// text` lines no wider than `columns` (a longer word stays whole); a TODO's later lines are indented under it. */
function wrapComment(text: string, columns: number): string[] {
  const continuation = text.startsWith("TODO: ") ? "//  " : "//";
  const lines: string[] = [];
  let line = "//";
  let empty = true;
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (!empty && line.length + 1 + word.length > columns) {
      lines.push(line);
      line = continuation;
    }
    line += ` ${word}`;
    empty = false;
  }
  lines.push(line);
  return lines;
}
