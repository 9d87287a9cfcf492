/** Where the runtimes are: Bun from node_modules (an npm devDependency) or PATH; Deno is the one running us, or PATH. */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";

export const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

function works(binary: string): boolean {
  return spawnSync(binary, ["--version"], { stdio: "ignore" }).status === 0;
}

export function bunBinary(): string {
  for (const candidate of [join(root, "node_modules/bun/bin/bun.exe"), "bun"]) {
    if ((candidate === "bun" || existsSync(candidate)) && works(candidate)) return candidate;
  }
  throw new Error("Bun is not installed: run `npm ci` in the project folder (bun is a devDependency)");
}

export function denoBinary(): string {
  if ("Deno" in globalThis) return process.execPath;
  if (works("deno")) return "deno";
  throw new Error("Deno is not on PATH: run the task with `npx -y deno task …` or install Deno");
}
