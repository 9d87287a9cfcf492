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
let bunHookInstalled = false;

const specifier = /((?:\bfrom|\bimport)\s*\(?\s*)(["'])backupctl\2/g;

function installBunHook(): void {
  if (bunHookInstalled) return;
  bunHookInstalled = true;
  const bun = (globalThis as unknown as { Bun: BunPluginHost }).Bun;
  bun.plugin({
    name: "backupctl-config",
    setup(build) {
      build.onLoad({ filter: /^(?!.*\/node_modules\/).*\.[cm]?[jt]sx?$/ }, (args) => {
        const source = readFileSync(args.path, "utf8");
        const contents = source.replace(
          specifier,
          (_all, head: string, quote: string) => `${head}${quote}${modPath}${quote}`,
        );
        const loader = /x$/.test(args.path)
          ? (/tsx$/.test(args.path) ? "tsx" : "jsx")
          : /ts$/.test(args.path)
          ? "ts"
          : "js";
        return { contents, loader };
      });
    },
  });
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
