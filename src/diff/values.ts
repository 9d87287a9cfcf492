/**
 * How a config diff shows values and compares them: secret references by name, credentials as `(sensitive)`, lists
 * and counts in words. Shared by the config-wide and per-project comparisons.
 */
import { canonicalJson } from "../config/fingerprint.ts";
import { describeSecret, isSecretRef, redact } from "../config/secrets.ts";
import type { ConfigChange } from "./types.ts";

export const approval = "(needs approval on apply)";
export const keptNote = "they are kept, never deleted automatically";

/** Keys whose plain string values are credentials (the whole URL is the secret). */
const sensitiveKeys = new Set(["pingUrl", "pushUrl", "webhookUrl"]);
/** Records whose plain string values may be credentials. */
const sensitiveRecords = new Set(["env", "headers"]);

/** A value for humans: secret references by name, plain credentials hidden, undefined as "not set". */
export function showValue(value: unknown, sensitive = false): string {
  if (value === undefined) return "not set";
  if (isSecretRef(value)) return describeSecret(value);
  if (typeof value === "string") return sensitive ? "(sensitive)" : JSON.stringify(redact(value));
  if (Array.isArray(value)) return `[${value.map((item) => showValue(item, sensitive)).join(", ")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value).filter(([, item]) => item !== undefined);
    if (entries.length === 0) return "{}";
    return `{ ${
      entries.map(([key, item]) => `${key}: ${showValue(item, sensitive || sensitiveRecords.has(key))}`).join(", ")
    } }`;
  }
  return String(value);
}

/** A field of an object, hidden when its key says it carries a credential (`url` of a notifier included). */
export function showField(key: string, value: unknown, notifier = false): string {
  return showValue(value, sensitiveKeys.has(key) || sensitiveRecords.has(key) || (notifier && key === "url"));
}

export function same(a: unknown, b: unknown): boolean {
  return canonicalJson(a ?? null) === canonicalJson(b ?? null);
}

export function kindOf(before: unknown, after: unknown): ConfigChange["kind"] {
  if (before === undefined) return "added";
  if (after === undefined) return "removed";
  return "changed";
}

/** `key A → B` for every key that differs between two objects (top level only; nested values shown whole). */
export function fieldChanges(
  before: Record<string, unknown>,
  after: Record<string, unknown>,
  options: { skip?: string[]; notifier?: boolean } = {},
): string[] {
  const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])]
    .filter((key) => !(options.skip ?? []).includes(key));
  return keys
    .filter((key) => !same(before[key], after[key]))
    .map((key) =>
      `${key} ${showField(key, before[key], options.notifier)} → ${showField(key, after[key], options.notifier)}`
    );
}

/** `type key value, key value` for a newly declared object. */
export function describeFields(value: Record<string, unknown>, options: { skip?: string[]; notifier?: boolean } = {}) {
  const skip = ["type", ...(options.skip ?? [])];
  const fields = Object.entries(value)
    .filter(([key, item]) => !skip.includes(key) && item !== undefined)
    .map(([key, item]) => `${key} ${showField(key, item, options.notifier)}`);
  return [String(value.type ?? ""), fields.join(", ")].filter(Boolean).join(" ");
}

export function list(names: string[]): string {
  return names.length === 0 ? "none" : names.join(", ");
}

export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}
