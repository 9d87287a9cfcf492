/**
 * The dashboard (issue 21): `/` for 1,000 projects (`--quick`: 100) over a state of 1,000,000 audit rows and 100,000
 * snapshots (bench/scale-state.ts), rendered server-side: the page function in this process, and a GET of / through
 * the dashboard's HTTP handler on loopback, each the median of 5 after a warm-up. Baseline, in the same run: reading
 * the rows the page shows with plain queries (each project's latest runs, the newest stage per group, the snapshot
 * counts).
 */
import { mkdirSync } from "node:fs";
import { createServer } from "node:http";
import { join } from "node:path";
import { loadConfig } from "../src/config/load.ts";
import { StateStore } from "../src/state/store.ts";
import { homePage } from "../src/web/pages/home.ts";
import { handleDashboard } from "../src/web/server.ts";
import { storeDb } from "../test/support/state-db.ts";
import { median, type Row, tempDir, time } from "./measure.ts";
import { auditRowsPerProject, fillScaleState, planNow, snapshotsPerProject, writeScaleConfig } from "./scale-state.ts";

const targetMs = 200;

export async function dashboardBench(options: { quick: boolean; log: (line: string) => void }): Promise<Row[]> {
  const projects = options.quick ? 100 : 1000;
  const scratch = tempDir("backupctl-bench-dashboard-");
  try {
    options.log(`dashboard: filling ${projects * auditRowsPerProject} audit rows`);
    mkdirSync(join(scratch.dir, ".backupctl"));
    const store = await StateStore.open(join(scratch.dir, ".backupctl"));
    try {
      await fillScaleState(storeDb(store), projects, "sqlite");
      const loaded = await loadConfig(writeScaleConfig(scratch.dir, projects));
      const now = new Date(planNow);
      const ctx = { loaded, store, host: "bench", now, zone: "UTC" };
      const baseline = async () => {
        const db = storeDb(store);
        await store.projectRuns();
        await db.selectFrom("latest_stages").selectAll().execute();
        await store.snapshotCounts();
      };
      const page = async () => {
        const result = await homePage(ctx);
        if (result.status !== 200) throw new Error(`/ answered ${result.status}`);
        return result.body.length;
      };
      const bytes = await page(); // warm-up: JIT, the database's pages
      await baseline();
      const pageMs = median(await time(5, page));
      const baseMs = median(await time(5, baseline));
      const source = { loaded: () => loaded, store, host: "bench", now: () => now };
      const server = createServer((request, response) => void handleDashboard(source, undefined, request, response));
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
      const address = server.address();
      const url = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}/`;
      let httpMs: number;
      try {
        const get = async () => {
          const response = await fetch(url);
          await response.text();
          if (response.status !== 200) throw new Error(`GET / answered ${response.status}`);
        };
        await get();
        httpMs = median(await time(5, get));
      } finally {
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      }
      const size = `${projects} projects, ${projects * auditRowsPerProject} audit rows, ` +
        `${projects * snapshotsPerProject} snapshots`;
      const baselineText = `reading the rows it shows (latest runs, newest stages, snapshot counts): ` +
        `${baseMs.toFixed(0)} ms`;
      return [
        {
          benchmark: "dashboard /",
          case: `SQLite: ${size}`,
          value: `${pageMs.toFixed(0)} ms`,
          baseline: baselineText,
          ratio: pageMs / baseMs,
          note: `the page rendered in this process (${(bytes / 1024).toFixed(0)} KiB of HTML); median of 5`,
          target: projects >= 1000
            ? {
              goal: "the dashboard's / for 1,000 projects with 1,000,000 audit rows rendered server-side under 200 ms",
              met: pageMs < targetMs,
              missed: `/ took ${pageMs.toFixed(0)} ms to render`,
            }
            : undefined,
        },
        {
          benchmark: "dashboard /",
          case: `SQLite, over HTTP on loopback: ${size}`,
          value: `${httpMs.toFixed(0)} ms`,
          baseline: baselineText,
          ratio: httpMs / baseMs,
          note: "GET / through the dashboard's handler, the body read whole; median of 5",
        },
      ];
    } finally {
      await store.close();
    }
  } finally {
    await scratch.remove();
  }
}
