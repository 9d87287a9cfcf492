/**
 * What `backupctl --version` prints: `backupctl 0.1.0 (git abc1234, deno 2.9.6)`. The revision comes from the
 * REVISION file that `npm pack` writes into the package (the prepack script), or from the checkout's .git folder,
 * read as files: no git process at start-up.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import pkg from "../../package.json" with { type: "json" };
import { runtimeName, runtimeVersion } from "../runtime/detect.ts";

const packageRoot = fileURLToPath(new URL("../..", import.meta.url));

export function versionLine(root: string = packageRoot): string {
  return `backupctl ${pkg.version} (git ${revision(root)}, ${runtimeName} ${runtimeVersion})`;
}

/** The short commit the package was packed from or the checkout is at; "unknown" when neither says. */
export function revision(root: string): string {
  try {
    const packed = join(root, "REVISION");
    if (existsSync(packed)) return readFileSync(packed, "utf8").trim() || "unknown";
    const commit = checkoutCommit(root);
    return commit ? commit.slice(0, 7) : "unknown";
  } catch {
    return "unknown";
  }
}

/** HEAD's commit from the files of `root/.git` (a folder, or a worktree's file naming it), loose or packed refs. */
function checkoutCommit(root: string): string | undefined {
  let gitDir = join(root, ".git");
  if (!existsSync(gitDir)) return undefined;
  if (!statSync(gitDir).isDirectory()) {
    const pointer = /^gitdir: (.+)$/m.exec(readFileSync(gitDir, "utf8"))?.[1]?.trim();
    if (!pointer) return undefined;
    gitDir = pointer.startsWith("/") ? pointer : join(root, pointer);
  }
  const head = readFileSync(join(gitDir, "HEAD"), "utf8").trim();
  const ref = /^ref: (.+)$/.exec(head)?.[1];
  if (!ref) return /^[0-9a-f]{40,64}$/.test(head) ? head : undefined;
  // A worktree keeps its own HEAD, but its branches live in the common folder.
  const commonFile = join(gitDir, "commondir");
  const common = existsSync(commonFile) ? join(gitDir, readFileSync(commonFile, "utf8").trim()) : gitDir;
  for (const dir of [gitDir, common]) {
    const loose = join(dir, ref);
    if (existsSync(loose)) return readFileSync(loose, "utf8").trim();
  }
  const packedRefs = join(common, "packed-refs");
  if (!existsSync(packedRefs)) return undefined;
  const line = readFileSync(packedRefs, "utf8").split("\n").find((entry) => entry.endsWith(` ${ref}`));
  return line?.split(" ")[0];
}
