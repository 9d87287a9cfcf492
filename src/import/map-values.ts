/**
 * The first layer of the mapping (old-config.ts): the state every part of it shares (problems, warnings, the
 * variables the written config reads) and how a value of projects.yml becomes a value of the new config: text with
 * `${NAME}` placeholders read from the environment when the config loads, ports, and secrets, which are never copied.
 */
import type { ConfigProblem } from "../errors.ts";
import type { Part, Value } from "./model.ts";
import type { OldConfig } from "./old-format.ts";

export interface MapOptions {
  /** projects.yml as the operator named it (for comments and messages). */
  from: string;
  /** Its absolute path, for ConfigError. */
  file: string;
  /** The .env as named, and the variable names it defines; without them no variable is known to exist. */
  envFile?: string;
  envNames?: Set<string>;
}

export const namePattern = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
export const variablePattern = /^[A-Za-z_][A-Za-z0-9_]*$/;
export const placeholder = /\$\{([^}]*)\}/g;

/** Variables the old tool read itself: never a name made up for a literal secret. */
const oldGlobals = [
  "RESTIC_PASSWORD",
  "SLACK_WEBHOOK_URL",
  "WEBHOOK_URL",
  "UPTIME_KUMA_BASE_URL",
  "TIMEZONE",
  "BACKUP_RETRY_COUNT",
  "BACKUP_RETRY_DELAY_MS",
  ...["HOST", "USER", "PORT", "KEY_PATH"].map((key) => `HETZNER_SSH_${key}`),
  ...["HOST", "PORT", "SECURE", "USER", "PASSWORD", "FROM", "TO"].map((key) => `SMTP_${key}`),
];

/** Shared state and value mapping; map-destinations.ts and old-config.ts build the rest on it. */
export class ValueMapper {
  protected readonly problems: ConfigProblem[] = [];
  protected readonly warnings: string[] = [];
  /** Variables the config reads → where first; `required` ones are warned about when the .env lacks them. */
  protected readonly variables = new Map<string, { where: string; required: boolean }>();
  /** Names taken: every placeholder and .env name, and every name made up for a literal secret. */
  protected readonly taken = new Set<string>();

  constructor(protected readonly old: OldConfig, protected readonly options: MapOptions) {
    collectPlaceholders(old, this.taken);
    for (const name of [...(options.envNames ?? []), ...oldGlobals]) this.taken.add(name);
  }

  /** True or false when a .env was given, undefined when nothing is known. */
  protected has(name: string): boolean | undefined {
    return this.options.envNames?.has(name);
  }

  protected checkVariables(): void {
    const envNames = this.options.envNames;
    if (!envNames) return;
    for (const [name, { where, required }] of this.variables) {
      if (required && !envNames.has(name)) {
        this.warnings.push(
          `${name} (${where}) is not defined in ${this.options.envFile}: export it before running backupctl`,
        );
      }
    }
  }

  /** Text with its placeholders split out (not yet recorded as read); one that is not a plain `${NAME}` is a problem. */
  protected split(raw: string, where: string): Part[] {
    const parts: Part[] = [];
    let last = 0;
    for (const match of raw.matchAll(placeholder)) {
      if (match.index > last) parts.push(raw.slice(last, match.index));
      const name = match[1];
      if (variablePattern.test(name)) {
        parts.push({ variable: name });
      } else {
        this.problems.push({
          path: where,
          message: `\${${name.slice(0, 40)}} is not a \${NAME} placeholder (letters, digits, _; no defaults)`,
        });
        parts.push(match[0]);
      }
      last = match.index + match[0].length;
    }
    if (last < raw.length) parts.push(raw.slice(last));
    return mergeParts(parts);
  }

  /** Text with its placeholders split out, each recorded as read when the config loads. */
  protected parts(raw: string, where: string): Part[] {
    return this.split(raw, where).map((part) => typeof part === "string" ? part : this.variable(part.variable, where));
  }

  /** Plain text: written as it is, or read from the environment when the config loads if it had placeholders. */
  protected text(raw: string, where: string): Value {
    const parts = this.parts(raw, where);
    return parts.every((part) => typeof part === "string") ? literal(parts.join("")) : { kind: "text", parts };
  }

  protected port(raw: string | number, where: string): Value {
    if (typeof raw === "number" || /^\d+$/.test(raw)) return literal(Number(raw));
    const parts = this.parts(raw, where);
    if (parts.length === 1 && typeof parts[0] !== "string") return { kind: "number", variable: parts[0].variable };
    this.problems.push({ path: where, message: "expected a port number or a ${NAME} placeholder" });
    return literal(0);
  }

  /**
   * A secret: `${VAR}` alone becomes env("VAR"); anything else (a literal, or text around a placeholder) is not
   * copied: the config reads env(<derived>) and a warning says to export it. The value is never repeated.
   */
  protected secret(raw: string, where: string, derived: string, what: string): Value {
    const parts = this.split(raw, where);
    if (parts.length === 1 && typeof parts[0] !== "string") return this.envRef(parts[0].variable, where);
    const name = this.derived(derived, where);
    this.warnings.push(
      `${where}: the ${what} is written in ${this.options.from}; it was not copied: export ${name} with it ` +
        `(the config reads env("${name}"))`,
    );
    return { kind: "env", name };
  }

  /** A secret from a variable of the old tool's environment. */
  protected envRef(name: string, where: string): Value {
    this.variable(name, where);
    return { kind: "env", name };
  }

  protected numberVariable(name: string, where: string, fallback?: string): Value {
    this.variable(name, where, fallback);
    return { kind: "number", variable: name, fallback };
  }

  /** Records that the config reads `name`; one with a fallback need not be set. */
  protected variable(name: string, where: string, fallback?: string): { variable: string; fallback?: string } {
    const seen = this.variables.get(name);
    if (!seen) this.variables.set(name, { where, required: fallback === undefined });
    else if (fallback === undefined) seen.required = true;
    this.taken.add(name);
    return fallback === undefined ? { variable: name } : { variable: name, fallback };
  }

  /** A variable name made up for a literal secret, unlike any other the config or the .env uses. */
  protected derived(base: string, where: string): string {
    let name = base;
    for (let n = 2; this.taken.has(name); n++) name = `${base}_${n}`;
    this.taken.add(name);
    this.variables.set(name, { where, required: false });
    return name;
  }
}

export function literal(value: string | number | boolean): Value {
  return { kind: "literal", value };
}

/** Adjacent literal parts joined. */
export function mergeParts(parts: Part[]): Part[] {
  const merged: Part[] = [];
  for (const part of parts) {
    const previous = merged.at(-1);
    if (typeof part === "string" && typeof previous === "string") merged[merged.length - 1] = previous + part;
    else if (part !== "") merged.push(part);
  }
  return merged;
}

/** `my-app` → `MY_APP`: the prefix of variable names made up for a project's literal secrets. */
export function envName(name: string): string {
  const upper = name.toUpperCase().replace(/[^A-Z0-9]+/g, "_").replace(/^_+|_+$/g, "");
  return /^[A-Z_]/.test(upper) ? upper : `P_${upper}`;
}

export function collectPlaceholders(value: unknown, into: Set<string>): void {
  if (typeof value === "string") {
    for (const match of value.matchAll(placeholder)) into.add(match[1]);
  } else if (Array.isArray(value)) {
    for (const item of value) collectPlaceholders(item, into);
  } else if (typeof value === "object" && value !== null) {
    for (const item of Object.values(value)) collectPlaceholders(item, into);
  }
}
