/** Turns schema issues into operator-facing problems: a config path and a message that says what to write instead. */
import { closest, distance } from "fastest-levenshtein";
import type { core } from "zod";
import type { ConfigProblem } from "../errors.ts";

/** Marks the message of an `unrecognized_keys` issue so the formatter can report one problem per key. */
const unknownKeysMark = "\u0000unknown-keys:";

export function encodeUnknownKeys(keys: readonly string[], known: readonly string[]): string {
  return unknownKeysMark + JSON.stringify({ keys, known });
}

/**
 * `projects.shop.sources[0].port`; keys that are not identifiers are quoted: `projects["my shop"]`. Keys longer than
 * 60 characters are cut (`projects.app.kkk…`): a path names a place, it does not echo a 5 MB key.
 */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const key of path) {
    const text = cut(String(key));
    if (typeof key === "number") out += `[${key}]`;
    else if (/^[A-Za-z_$][\w$]*…?$/.test(text)) out += out ? `.${text}` : text;
    else out += `[${JSON.stringify(text)}]`;
  }
  return out;
}

/** A text cut to `max` characters, with an ellipsis when it was longer. */
export function cut(text: string, max = 60): string {
  return text.length > max ? `${text.slice(0, max - 3)}…` : text;
}

/** A short, safe description of a value for "got …" (strings are cut; never used for secret fields). */
export function describeValue(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value === null) return "null";
  if (typeof value === "string") {
    return value.length > 60 ? `${JSON.stringify(value.slice(0, 57))}…` : JSON.stringify(value);
  }
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint") return String(value);
  if (Array.isArray(value)) return "a list";
  if (typeof value === "function") return "a function";
  return "an object";
}

const expectedNames: Record<string, string> = {
  string: "a string",
  number: "a number",
  int: "an integer",
  boolean: "true or false",
  array: "a list",
  object: "an object",
  record: "an object",
  map: "an object",
};

/** The fallback message for an issue no schema gave its own message to. */
export function defaultMessage(issue: core.$ZodRawIssue): string | undefined {
  switch (issue.code) {
    case "invalid_type": {
      const expected = expectedNames[issue.expected] ?? issue.expected;
      return issue.input === undefined
        ? `required: expected ${expected}`
        : `expected ${expected}, got ${describeValue(issue.input)}`;
    }
    case "too_small": {
      if (issue.origin === "array") {
        return `needs at least ${issue.minimum} item${Number(issue.minimum) === 1 ? "" : "s"}`;
      }
      if (issue.origin === "string") return "must not be empty";
      return `expected at least ${issue.minimum}, got ${describeValue(issue.input)}`;
    }
    case "too_big": {
      if (issue.origin === "array") return `allows at most ${issue.maximum} items`;
      if (issue.origin === "string") return `must be at most ${issue.maximum} characters`;
      return `expected at most ${issue.maximum}, got ${describeValue(issue.input)}`;
    }
    case "invalid_value":
      return `expected ${issue.values.map((v) => JSON.stringify(v)).join(" or ")}, got ${describeValue(issue.input)}`;
    case "invalid_key": {
      const inner = issue.issues[0]?.message ?? "not allowed";
      return inner.startsWith("invalid name") ? inner : `invalid name ${describeValue(issue.input)}: ${inner}`;
    }
    case "invalid_union":
      return issue.input === undefined ? "required" : `unexpected value ${describeValue(issue.input)}`;
    default:
      return undefined;
  }
}

/** Converts zod issues to problems, one per unknown key, with "did you mean" suggestions. */
export function toProblems(issues: readonly core.$ZodIssue[]): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  for (const issue of issues) {
    const inside = issue.code === "invalid_union" ? problemsInside(issue) : undefined;
    if (inside) {
      problems.push(...toProblems(inside.map((inner) => ({ ...inner, path: [...issue.path, ...inner.path] }))));
      continue;
    }
    let path = [...issue.path];
    // A failed discriminator is reported on the value itself, not on its `type`/`secret` key.
    if (issue.code === "invalid_union" && "discriminator" in issue && path.at(-1) === issue.discriminator) {
      path = path.slice(0, -1);
    }
    if (issue.message.startsWith(unknownKeysMark)) {
      const { keys, known } = JSON.parse(issue.message.slice(unknownKeysMark.length)) as {
        keys: string[];
        known: string[];
      };
      for (const key of keys) {
        problems.push({ path: formatPath([...path, key]), message: unknownKeyMessage(key, known) });
      }
      continue;
    }
    problems.push({ path: formatPath(path), message: issue.message });
  }
  return problems;
}

/**
 * A value of the right kind for exactly one branch of a union, wrong only inside it (`to: ["ops@x", 42]`, a secret
 * reference with a bad name): that branch's own problems, which name the item, instead of "expected A or B".
 */
function problemsInside(issue: core.$ZodIssueInvalidUnion): core.$ZodIssue[] | undefined {
  const inside = issue.errors.filter((branch) => branch.length > 0 && branch.every((inner) => inner.path.length > 0));
  return inside.length === 1 ? inside[0] : undefined;
}

function unknownKeyMessage(key: string, known: readonly string[]): string {
  const suggestion = suggest(key, known);
  const allowed = known.filter((k) => k !== "type");
  return suggestion
    ? `unknown key ${describeValue(key)}; did you mean "${suggestion}"?`
    : `unknown key ${describeValue(key)}; allowed keys are ${allowed.join(", ")}`;
}

/** The known name nearest to `name`, when it is near enough to be a likely typo. */
export function suggest(name: string, known: readonly string[]): string | undefined {
  if (known.length === 0) return undefined;
  const lower = name.toLowerCase();
  const byCase = known.find((k) => k.toLowerCase() === lower);
  if (byCase) return byCase;
  const best = closest(name, [...known]);
  return distance(name.toLowerCase(), best.toLowerCase()) <= Math.max(1, Math.floor(best.length / 3))
    ? best
    : undefined;
}
