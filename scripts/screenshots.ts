/**
 * `deno task screenshots`: pictures of the dashboard for docs/dashboard.md. Builds the browser tests' state (real
 * applies: test/support/dashboard-state.ts), serves it on 127.0.0.1 with the clock stopped at the state's "now",
 * photographs each page of test/support/dashboard-pages.ts in headless Chromium (full page, light mode), and writes
 * docs/images/dashboard-*.png with docs/images/dashboard.json, the outline the browser test checks them against.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { join } from "node:path";
import { loadConfig } from "../src/config/load.ts";
import { StateStore } from "../src/state/store.ts";
import { handleDashboard } from "../src/web/server.ts";
import { startBrowser, visit } from "../test/support/browser.ts";
import { makeDashboardState, viewNow } from "../test/support/dashboard-state.ts";
import { outline, picturedPages, type PicturesManifest, stylesheetVersion } from "../test/support/dashboard-pages.ts";
import { root } from "./runtimes.ts";

const images = join(root, "docs", "images");
mkdirSync(images, { recursive: true });
const state = await makeDashboardState();
Object.assign(process.env, state.env);
const store = await StateStore.open(join(state.dir, ".backupctl"));
const browser = await startBrowser();
const server = createServer((request, response) => {
  const source = { loaded: () => loaded, store, host: "screenshots", now: () => new Date(viewNow) };
  void handleDashboard(source, undefined, request, response);
});
const loaded = await loadConfig(state.config);
try {
  const status = JSON.parse((await state.cli(["status", "--json", "--now", viewNow])).stdout) as {
    projects: { project: string; last_run: { id: string } | null }[];
  };
  const run = status.projects.find((p) => p.project === "shop")?.last_run?.id ?? "";
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const address = server.address();
  const base = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
  const manifest: PicturesManifest = { stylesheet: stylesheetVersion(), pages: [] };
  for (const pictured of picturedPages) {
    const page = await visit(browser, base + pictured.path.replace("{run}", run), pictured);
    try {
      if (page.status !== 200 || page.consoleErrors.length + page.failedRequests.length > 0) {
        throw new Error(`${pictured.path}: ${page.status} ${[...page.consoleErrors, ...page.failedRequests]}`);
      }
      await page.screenshot(join(images, pictured.file), { fullPage: true });
      manifest.pages.push(await outline(page, pictured));
      console.log(`wrote docs/images/${pictured.file}`);
    } finally {
      await page.close();
    }
  }
  writeFileSync(join(images, "dashboard.json"), JSON.stringify(manifest, null, 2) + "\n");
  console.log("wrote docs/images/dashboard.json");
} finally {
  server.closeAllConnections();
  server.close();
  await browser.close();
  await store.close();
  state.cleanup();
}
