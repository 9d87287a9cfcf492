/**
 * Imports a user's config module so that its `import … from "backupctl"` resolves to this project's `src/mod.ts`,
 * wherever the config lives. Deno: the project's import map (deno.json "imports") applies to dynamic imports.
 * Bun: bare names never reach runtime onResolve hooks, so an onLoad hook rewrites the "backupctl" specifier in
 * modules outside node_modules to the absolute path of mod.ts; auto-install stays off (bunfig.toml, --no-install).
 */
import { readFileSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import { runtimeName } from "./detect.ts";

const modPath = fileURLToPath(new URL("../mod.ts", import.meta.url));
const projectRoot = fileURLToPath(new URL("../..", import.meta.url));
let bunHookInstalled = false;

/**
 * Import and export statements naming "backupctl" (static, multi-line, side-effect, or a dynamic import call).
 * Statements only: the same text inside a string or a regular expression is left alone.
 */
const specifier =
  /((?:^|[\n;])\s*(?:(?:import|export)\b[^;'"]*?\bfrom\s*|import\s*\(\s*|import\s+)|\bawait\s+import\s*\(\s*)(["'])backupctl\2/g;

/** The project's own code never imports "backupctl" by name and is never rewritten. */
const ownCode = ["src", "test", "scripts", "bench"].map((folder) => `${projectRoot}${folder}/`);

function installBunHook(): void {
  if (bunHookInstalled) return;
  bunHookInstalled = true;
  const bun = (globalThis as unknown as { Bun: BunPluginHost }).Bun;
  bun.plugin({
    name: "backupctl-config",
    setup(build) {
      build.onLoad({ filter: /^(?!.*\/node_modules\/).*\.[cm]?[jt]sx?$/ }, (args) => {
        const source = readFileSync(args.path, "utf8");
        if (ownCode.some((folder) => args.path.startsWith(folder)) || !source.includes("backupctl")) {
          return { contents: source, loader: loaderFor(args.path) };
        }
        return { contents: rewriteImports(source, modPath), loader: loaderFor(args.path) };
      });
    },
  });
}

/** Points every import/export statement of "backupctl" in `source` at `target` (the absolute path of mod.ts). */
export function rewriteImports(source: string, target: string): string {
  return source.replace(specifier, (_all, head: string, quote: string) => `${head}${quote}${target}${quote}`);
}

function loaderFor(path: string): string {
  if (/x$/.test(path)) return /tsx$/.test(path) ? "tsx" : "jsx";
  return /ts$/.test(path) ? "ts" : "js";
}

interface BunPluginHost {
  plugin(plugin: {
    name: string;
    setup(build: {
      onLoad(
        constraints: { filter: RegExp },
        callback: (args: { path: string }) => { contents: string; loader: string },
      ): void;
    }): void;
  }): void;
}

/** Imports the module at an absolute path. `fresh` bypasses the module cache (config reload). */
export async function importConfigModule(path: string, fresh = false): Promise<Record<string, unknown>> {
  if (runtimeName === "bun") installBunHook();
  const url = pathToFileURL(path);
  if (fresh) url.searchParams.set("reload", String(Date.now()));
  return await import(url.href);
}
