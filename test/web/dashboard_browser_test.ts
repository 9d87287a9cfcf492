/**
 * The dashboard in a real browser (Debian's Chromium through playwright-core, test/support/browser.ts), served by the
 * real `backupctl serve` — and by `watch --listen` for a backup's live byte count — from a state made by real applies
 * (a project that succeeds with a drill, one that fails, one overdue, deletions held for approval). Each page loads with
 * no console error and no failed request at desktop and phone widths; what it shows agrees with `status --json`; what
 * a failing program printed shows as text; the keyboard reaches the content; dark mode follows the system; the token
 * is asked for when set.
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { startBrowser, type TestBrowser, visit } from "../support/browser.ts";
import { repoRoot, spawnCli, waitFor } from "../support/cli.ts";
import {
  type DashboardState,
  hostileError,
  makeDashboardState,
  type Served,
  served as listening,
  serveDashboard,
  viewNow,
} from "../support/dashboard-state.ts";
import { outline, picturedPages, type PicturesManifest, stylesheetVersion } from "../support/dashboard-pages.ts";

const token = "browser-token-0123456789abcdef";
const desktop = { width: 1280, height: 800 };
const phone = { width: 390, height: 844 };

describe("the dashboard in a browser", () => {
  let state: DashboardState;
  let served: Served;
  let browser: TestBrowser;
  let status: { project: string; health: string; last_run: { id: string; status: string } | null }[];
  before(async () => {
    [state, browser] = await Promise.all([makeDashboardState(), startBrowser()]);
    served = await serveDashboard(state);
    const printed = await state.cli(["status", "--json", "--now", viewNow]);
    status = JSON.parse(printed.stdout).projects;
  });
  after(async () => {
    await served?.stop();
    await browser?.close();
    state?.cleanup();
  });

  it("loads every page with no console error and no failed request, on a desktop and a phone", async () => {
    const run = status.find((p) => p.project === "shop")!.last_run!.id;
    const failedRun = status.find((p) => p.project === "broken")!.last_run!.id;
    const paths = ["/", "/plan", "/projects/shop", "/projects/broken", "/projects/late", `/runs/${run}`];
    for (const path of [...paths, `/runs/${failedRun}`]) {
      for (const viewport of [desktop, phone]) {
        const page = await visit(browser, served.url + path, viewport);
        try {
          assert.equal(page.status, 200, path);
          assert.deepEqual(page.consoleErrors, [], `${path} at ${viewport.width}px`);
          assert.deepEqual(page.failedRequests, [], `${path} at ${viewport.width}px`);
          assert.ok((await page.texts("h1")).length === 1, `${path}: one heading`);
          // Nothing wider than the screen but the tables' own scrolling boxes.
          const overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth");
          assert.ok(typeof overflow === "number" && overflow <= 1, `${path} at ${viewport.width}px scrolls sideways`);
        } finally {
          await page.close();
        }
      }
    }
  });

  it("is pictured in docs/images as it is now (else: deno task screenshots)", async () => {
    const fix =
      "the dashboard changed since its pictures were taken: run `deno task screenshots` and commit docs/images";
    const images = join(repoRoot, "docs", "images");
    const manifest = JSON.parse(readFileSync(join(images, "dashboard.json"), "utf8")) as PicturesManifest;
    assert.equal(manifest.stylesheet, stylesheetVersion(), fix);
    const run = status.find((p) => p.project === "shop")!.last_run!.id;
    const now = [];
    for (const pictured of picturedPages) {
      assert.ok(existsSync(join(images, pictured.file)), `${pictured.file} missing: ${fix}`);
      const page = await visit(browser, served.url + pictured.path.replace("{run}", run), pictured);
      try {
        now.push(await outline(page, pictured));
      } finally {
        await page.close();
      }
    }
    assert.deepEqual(now, manifest.pages, fix);
  });

  it("shows on / what status --json says, as words", async () => {
    const page = await visit(browser, served.url + "/", desktop);
    try {
      const [table] = await page.tables("#projects");
      const [header, ...rows] = table;
      // Shown in capitals by the stylesheet; the words are the cells'.
      assert.deepEqual(header.slice(0, 4).map((cell) => cell.toLowerCase()), [
        "health",
        "project",
        "last success",
        "last run",
      ]);
      const shown = new Map(rows.map((row) => [row[1], row]));
      assert.equal(rows.length, status.length);
      for (const project of status) {
        const row = shown.get(project.project);
        assert.ok(row, project.project);
        assert.equal(row[0], project.health, `${project.project}'s health`);
        if (project.last_run) assert.match(row[3], new RegExp(`^${project.last_run.status}`));
      }
      assert.match(shown.get("shop")![7], /^succeeded .*RTO \d/s, "the drill with the time it took");
      // serve's clock starts at --now and runs on: 2d 7h 59m after the run when it starts, 2d 8h half a minute later
      // on a loaded machine.
      assert.match(shown.get("late")![2], /2026-11-01 03:00:\d\d\+01:00 \(2d [78]h ago\)/);
    } finally {
      await page.close();
    }
  });

  it("shows what a failing program printed as text, never as markup", async () => {
    const page = await visit(browser, served.url + "/", desktop);
    try {
      assert.ok((await page.text()).includes(hostileError), "the error's text is shown as it was printed");
      assert.equal(await page.evaluate("document.scripts.length"), 1, "only the dashboard's own script");
      assert.equal(await page.evaluate("document.querySelectorAll('.error b').length"), 0);
    } finally {
      await page.close();
    }
  });

  it("shows the pending plan with the held deletions marked", async () => {
    const page = await visit(browser, served.url + "/plan", desktop);
    try {
      const text = await page.text();
      assert.match(text, /Deletions need approval/);
      const held = await page.texts("tr.held");
      assert.equal(held.length, 2, held.join("\n"));
      for (const row of held) assert.match(row, /needs approval\)\s*held/);
    } finally {
      await page.close();
    }
  });

  it("is reachable by keyboard: a skip link first, then the navigation", async () => {
    const page = await visit(browser, served.url + "/", desktop);
    try {
      assert.equal((await page.press("Tab"))?.text, "Skip to content");
      const main = await page.press("Enter");
      assert.equal(main?.id, "main", "Enter on the skip link moves the focus to the content");
      const next = await page.press("Tab");
      assert.ok(next?.tag === "a", "the next stop is a link in the content");
    } finally {
      await page.close();
    }
  });

  it("follows the system's dark mode", async () => {
    const background = "getComputedStyle(document.body).backgroundColor";
    const light = await visit(browser, served.url + "/", { ...desktop, colorScheme: "light" });
    const dark = await visit(browser, served.url + "/", { ...desktop, colorScheme: "dark" });
    try {
      assert.equal(await dark.matchesMedia("(prefers-color-scheme: dark)"), true);
      assert.notEqual(await light.evaluate(background), await dark.evaluate(background));
      assert.deepEqual(dark.consoleErrors, []);
    } finally {
      await light.close();
      await dark.close();
    }
  });

  it("asks for the token when one is set", async () => {
    const guarded = await serveDashboard(state, { BACKUPCTL_DASHBOARD_TOKEN: token });
    try {
      // Without it the browser gets 401 and its login prompt, which a headless browser cannot answer.
      await assert.rejects(visit(browser, guarded.url + "/", desktop), /ERR_INVALID_AUTH_CREDENTIALS/);
      const page = await visit(browser, guarded.url + "/", {
        ...desktop,
        headers: { Authorization: `Bearer ${token}` },
      });
      try {
        assert.equal(page.status, 200);
        assert.deepEqual(page.failedRequests, [], "its assets load with the token too");
        assert.ok(!(await page.source()).includes(token));
      } finally {
        await page.close();
      }
    } finally {
      await guarded.stop();
    }
  });

  it("counts a running backup's bytes live on watch's dashboard", async () => {
    const dir = mkdtempSync(join(tmpdir(), "backupctl-dashboard-live-"));
    try {
      mkdirSync(join(dir, "data"));
      const config = join(dir, "backup.config.ts");
      // A dump that streams 64 KiB every 100 ms for a minute: long enough to be watched.
      writeFileSync(
        config,
        `import { command, defineConfig, env, restic } from ${JSON.stringify(join(repoRoot, "src", "mod.ts"))};
export default defineConfig({
  repositories: { local: restic({ url: ".backupctl/restic", password: env("LIVE_RESTIC_PASSWORD") }) },
  projects: {
    stream: {
      schedule: "0 3 * * *",
      sources: [command({ name: "feed", filename: "feed.bin",
        run: "for i in $(seq 1 600); do head -c 65536 /dev/urandom; sleep 0.1; done" })],
      repositories: ["local"],
      retention: { last: 3 },
    },
  },
});
`,
      );
      const watch = spawnCli(["--config", config, "watch", "--listen", "127.0.0.1:0", "--grace", "1s"], {
        env: { LIVE_RESTIC_PASSWORD: "live-restic-password-4711" },
      });
      const live = await listening(
        watch,
        /serving the dashboard, \/healthz and \/metrics on (http:\/\/127\.0\.0\.1:\d+)/,
      );
      try {
        // Under way, and past its first counted bytes (the count starts at 0 B).
        await waitFor("the backup under way", async () => {
          const body = await (await fetch(`${live.url}/live.json`)).json() as { runs: { bytes: number }[] };
          return body.runs.some((run) => run.bytes > 0);
        }, 60_000);
        const page = await visit(browser, live.url + "/", desktop);
        try {
          const cell = "document.querySelector('[data-live-run]')?.textContent ?? ''";
          const first = String(await page.evaluate(cell));
          const bytes = /^[\d.]+ (?:B|KiB|MiB)/.exec(first)?.[0];
          assert.ok(bytes && bytes !== "0 B", `a byte count, got "${first}"`);
          // The script updates the count from /live.json without a reload (the elapsed time alone changes too).
          await page.waitFor(`!(${cell}).startsWith(${JSON.stringify(`${bytes},`)})`, 15_000);
          const later = String(await page.evaluate(cell));
          assert.match(later, /^[\d.]+ (KiB|MiB), /, `first ${first}, then ${later}`);
          assert.deepEqual(page.consoleErrors, []);
        } finally {
          await page.close();
        }
      } finally {
        process.kill(watch.pid, "SIGTERM");
        await watch.done;
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
