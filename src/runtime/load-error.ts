/**
 * Why a config module could not be loaded, in the words of the runtime that tried: each runtime shapes its load errors
 * differently — Deno writes the location into the message or the stack ("at file:///…:1:24") and names syntax errors
 * `SyntaxError`; Bun puts it in `position`, names them `BuildMessage`/`ResolveMessage` and reports a file's syntax
 * errors together as one AggregateError. This turns either into one line without a stack.
 */
import { dirname, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { stripVTControlCharacters } from "node:util";
import { cut } from "../config/issues.ts";
import { redact } from "../config/secrets.ts";

/** This program's own sources: a location there says nothing about the user's file. */
const ownCode = fileURLToPath(new URL("..", import.meta.url));

/**
 * Why the config could not be loaded, in one line without a stack: the error's first line and, when the runtime
 * says, where in the config's folder (Deno writes it into the message or the stack, Bun into `position`; Bun reports
 * a file's syntax errors together as one AggregateError). Thrown values that are not errors are shown as JSON.
 */
export function describeLoadError(error: unknown, file: string): string {
  const errors = (error as { errors?: unknown })?.errors;
  if (Array.isArray(errors) && errors.length > 0) {
    const more = errors.length > 1 ? ` (and ${errors.length - 1} more)` : "";
    return `${describeLoadError(errors[0], file)}${more}`;
  }
  if (typeof error !== "object" || error === null || typeof (error as Error).message !== "string") {
    return redact(cut(typeof error === "string" ? error : jsonOf(error), 300));
  }
  const { name, message, stack } = error as Error & { position?: unknown };
  const head = stripVTControlCharacters(message).split("\n").map((line) => line.trim()).find((line) => line !== "") ??
    "";
  const label = name === "BuildMessage" ? "SyntaxError" : name === "Error" || name === "ResolveMessage" ? "" : name;
  const text = label && !/^\w*Error: /.test(head) ? `${label}: ${head}` : head;
  const where = locationIn(error, `${stripVTControlCharacters(message)}\n${stack ?? ""}`, file);
  // Deno ends some messages with "at file:///…:1:24"; the location is said once, in the same words as elsewhere.
  const said = where ? text.replace(/\s+at \S+:\d+:\d+$/, "") : text;
  return redact(cut(said, 300) + (where ? ` (${where})` : ""));
}

function jsonOf(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** `line 2, column 19` (in the config) or `shared.ts line 1, column 7` (another file in its folder). */
function locationIn(error: object, text: string, file: string): string | undefined {
  const dir = dirname(file);
  const at = (path: string, line: number | string, column: number | string) =>
    `${path === file ? "" : `${relative(dir, path)} `}line ${line}, column ${column}`;
  const position = (error as { position?: { file?: unknown; line?: unknown; column?: unknown } }).position;
  if (position && typeof position.file === "string" && typeof position.line === "number") {
    return at(position.file, position.line, Number(position.column));
  }
  for (const match of text.matchAll(/(file:\/\/\/[^\s:()"'`]+|\/[^\s:()"'`]+):(\d+):(\d+)/g)) {
    const path = match[1].startsWith("file:") ? fileURLToPath(match[1]) : match[1];
    if (path.startsWith(`${dir}/`) && !path.startsWith(ownCode) && !path.includes("/node_modules/")) {
      return at(path, match[2], match[3]);
    }
  }
  return undefined;
}
