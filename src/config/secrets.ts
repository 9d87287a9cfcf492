/**
 * Secret references are resolved only when a child process needs them. Every resolved value is remembered so that
 * `redact` can scrub it, in every form a program may print it (secret-forms.ts), from any text that leaves the process
 * (errors, stderr tails, logs, the audit, notifications). The names of the variables `env()` references read are
 * remembered too: children do not inherit them (exec/child-env.ts).
 */
import { readFileSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import { BackupctlError } from "../errors.ts";
import { secretForms } from "./secret-forms.ts";
import type { FileSecret, MaybeSecret, SecretRef } from "./types.ts";

export class SecretError extends BackupctlError {
  constructor(message: string) {
    super(message);
    this.name = "SecretError";
  }
}

const resolvedValues = new Set<string>();
/** Every form of every remembered value, longest first; computed again only after a new value is remembered. */
let redactedForms: string[] | undefined;
/** The variables `env()` references name, set or not. */
const secretVariables = new Set<string>();

export function isSecretRef(value: unknown): value is SecretRef {
  return typeof value === "object" && value !== null && "secret" in value &&
    ((value as SecretRef).secret === "env" || (value as SecretRef).secret === "file");
}

/** How a reference is shown: by name, never by value. */
export function describeSecret(ref: SecretRef): string {
  return ref.secret === "env" ? `env("${ref.name}")` : `file("${ref.path}")`;
}

/** The absolute path of a file() secret. */
export function secretPath(ref: FileSecret, configDir: string): string {
  return isAbsolute(ref.path) ? ref.path : resolve(configDir, ref.path);
}

/**
 * A secret as a shell word that reads it where the config does, for printed commands (never its value): a variable's
 * `"${NAME:?…}"` (failing when unset), a file's `"$(cat PATH)"`.
 */
export function shellSecret(ref: SecretRef, configDir: string): string {
  if (ref.secret === "env") return `"\${${ref.name}:?set ${ref.name} first}"`;
  const path = secretPath(ref, configDir);
  const word = /^[A-Za-z0-9_@%+=:,./-]+$/.test(path) ? path : `'${path.replaceAll("'", `'"'"'`)}'`;
  return `"$(cat ${word})"`;
}

/** Reads a secret, or throws naming the reference (never a value) and how to provide it. */
export function resolveSecret(ref: SecretRef, configDir: string): string {
  const value = readSecret(ref, configDir);
  if (value === undefined) {
    throw new SecretError(
      ref.secret === "env"
        ? `secret ${describeSecret(ref)} is not set: export ${ref.name} in the environment of backupctl`
        : `secret ${describeSecret(ref)} cannot be read: create the file (mode 0600) holding the value`,
    );
  }
  return value;
}

/** A plain value stays as it is; a reference is resolved. */
export function resolveMaybeSecret(value: MaybeSecret, configDir: string): string {
  return typeof value === "string" ? value : resolveSecret(value, configDir);
}

/** Reads a secret, or returns undefined when it is missing (for `validate --secrets`). */
export function readSecret(ref: SecretRef, configDir: string): string | undefined {
  let value: string | undefined;
  if (ref.secret === "env") {
    secretVariables.add(ref.name);
    value = process.env[ref.name];
  } else {
    const path = secretPath(ref, configDir);
    try {
      value = readFileSync(path, "utf8").replace(/\r?\n$/, "");
    } catch {
      value = undefined;
    }
  }
  if (value === undefined || value === "") return undefined;
  rememberSecret(value);
  return value;
}

/** Marks a value as secret so `redact` removes it from any text. */
export function rememberSecret(value: string): void {
  if (value.length < 4 || resolvedValues.has(value)) return;
  resolvedValues.add(value);
  redactedForms = undefined;
}

/**
 * Remembers the names of the variables a config's `env()` references read, and their values, resolved or not. Children
 * do not inherit these variables (exec/child-env.ts), but a hook or command() source that declares one in its `env`
 * may print it (under `set -x`), maybe before backupctl ever resolved it for itself. `file()` references are not read
 * here: a secret file is read only when a child process needs it.
 */
export function rememberEnvSecrets(config: unknown): void {
  for (const { ref } of collectSecretRefs(config)) {
    if (ref.secret !== "env") continue;
    secretVariables.add(ref.name);
    const value = process.env[ref.name];
    if (value) rememberSecret(value);
  }
}

/** Marks an environment variable of backupctl's own as secret (BACKUPCTL_STATE_URL): children do not inherit it. */
export function withholdVariable(name: string): void {
  secretVariables.add(name);
}

/** The names of the environment variables the config's `env()` references read (what children do not inherit). */
export function secretVariableNames(): ReadonlySet<string> {
  return secretVariables;
}

/**
 * Removes every known secret value, in each of its printed forms (shell-quoted, JSON-escaped, URL-encoded, base64:
 * see secret-forms.ts), and URL credentials from a text.
 */
export function redact(text: string): string {
  redactedForms ??= [...new Set([...resolvedValues].flatMap(secretForms))].sort((a, b) => b.length - a.length);
  let out = text;
  for (const form of redactedForms) {
    if (out.includes(form)) out = out.split(form).join("(sensitive)");
  }
  return out.replace(/(\b[a-z][a-z0-9+.-]*:\/\/[^/\s:@]+:)[^@\s/]+@/gi, "$1(sensitive)@");
}

/** Every secret reference in a value, with the config path where it sits. */
export function collectSecretRefs(value: unknown, path = ""): { path: string; ref: SecretRef }[] {
  if (isSecretRef(value)) return [{ path, ref: value }];
  if (Array.isArray(value)) return value.flatMap((item, index) => collectSecretRefs(item, `${path}[${index}]`));
  if (typeof value === "object" && value !== null) {
    return Object.entries(value).flatMap(([key, item]) => collectSecretRefs(item, path ? `${path}.${key}` : key));
  }
  return [];
}
