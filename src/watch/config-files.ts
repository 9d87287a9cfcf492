/**
 * Which files make up a config, and whether they changed. The config file's relative imports are followed (static,
 * dynamic, re-exports, JSON), so an edit to `projects/shop.ts` is seen as well as one to `backup.config.ts`. The
 * digest is over the files' contents, not their times: an edit within the same second, a file replaced by rename
 * (editors, `kubectl` config maps, `git checkout`) and a bind mount whose events do not reach the container are all
 * seen the same way, by polling, under Deno and Bun alike.
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";

/** `from "./x"`, `import("./x")`, `import "./x"` with a relative specifier. */
const relativeImport = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(["'])(\.{1,2}\/[^"'\n]+)\1/g;
const extensions = ["", ".ts", ".mts", ".js", ".mjs", ".json", "/index.ts", "/index.js"];

function resolveImport(from: string, specifier: string): string | undefined {
  const base = resolve(dirname(from), specifier);
  for (const extension of extensions) {
    const candidate = base + extension;
    if (existsSync(candidate) && statSync(candidate).isFile()) return candidate;
  }
  return undefined;
}

/** The config file and every file it imports by a relative path, transitively; files that cannot be read are skipped. */
export function configFiles(entry: string): string[] {
  const seen = new Set<string>();
  const queue = [resolve(entry)];
  while (queue.length > 0) {
    const file = queue.shift()!;
    if (seen.has(file)) continue;
    seen.add(file);
    if (file.endsWith(".json")) continue;
    let source: string;
    try {
      source = readFileSync(file, "utf8");
    } catch {
      continue;
    }
    for (const match of source.matchAll(relativeImport)) {
      const target = resolveImport(file, match[2]);
      if (target && !seen.has(target)) queue.push(target);
    }
  }
  return [...seen].sort();
}

/** sha256 over the names and contents of the config's files (a missing file counts as missing). */
export function configDigest(entry: string): string {
  const hash = createHash("sha256");
  for (const file of configFiles(entry)) {
    hash.update(`${file}\0`);
    try {
      hash.update(readFileSync(file));
    } catch {
      hash.update("(missing)");
    }
    hash.update("\0");
  }
  return hash.digest("hex");
}
