/**
 * Installs the npm dependencies (one package.json for Deno and Bun) when node_modules is missing or older than
 * package-lock.json. Uses only node: built-ins, so it runs before anything is installed.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const stamp = join(root, "node_modules", ".backupctl-lock-sha256");
const lockHash = createHash("sha256").update(readFileSync(join(root, "package-lock.json"))).digest("hex");

if (!existsSync(stamp) || readFileSync(stamp, "utf8") !== lockHash) {
  console.error("Installing npm dependencies (npm ci)…");
  const result = spawnSync("npm", ["ci", "--no-audit", "--no-fund", "--loglevel=error"], {
    cwd: root,
    stdio: "inherit",
  });
  if (result.status !== 0) {
    console.error("npm ci failed: check your network access to the npm registry, then run the task again.");
    process.exit(result.status ?? 1);
  }
  writeFileSync(stamp, lockHash);
}
