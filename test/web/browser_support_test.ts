/**
 * The browser tests' support (test/support/browser.ts) checked against pages of a tiny loopback server whose faults are
 * known: a clean page reports nothing; a page that throws and loads a missing image reports both, and one whose inline
 * script a Content-Security-Policy refuses reports that; headers reach the server; screenshots are PNGs; dark mode and
 * the keyboard work as the dashboard's tests will rely on.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { startBrowser, type TestBrowser, visit } from "../support/browser.ts";

const token = "Bearer test-token-1";

const pages: Record<string, string> = {
  "/clean": `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>clean</title><link rel="icon" href="data:,">
<style>
  body { background: rgb(255, 255, 255); }
  @media (prefers-color-scheme: dark) { body { background: rgb(0, 0, 0); color: rgb(255, 255, 255); } }
  .tall { height: 2000px; }
</style></head>
<body>
  <h1>Projects</h1>
  <nav><a id="first" href="#one">One</a> <a id="second" href="#two">Two</a></nav>
  <table>
    <thead><tr><th>Project</th><th>Health</th></tr></thead>
    <tbody><tr><td>&lt;script&gt;alert(1)&lt;/script&gt;</td><td>ok</td></tr><tr><td>shop</td><td>failing</td></tr></tbody>
  </table>
  <div class="tall"></div>
</body></html>`,
  "/bad": `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>bad</title><link rel="icon" href="data:,"></head>
<body><p>Broken</p><img src="/nope.png" alt="missing"><script>throw new Error("boom from the page")</script></body></html>`,
  // Served with a Content-Security-Policy that forbids every script: its inline one is refused.
  "/strict": `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>strict</title><link rel="icon" href="data:,"></head>
<body><table><tr><td>kept</td></tr></table><script>document.title = "ran"</script></body></html>`,
  "/private": `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>private</title><link rel="icon" href="data:,"></head>
<body><p>Only with the token</p></body></html>`,
};

interface Site {
  url: string;
  /** The headers of every request, by path. */
  requests: { path: string; headers: IncomingHttpHeaders }[];
  stop(): Promise<void>;
}

async function startSite(): Promise<Site> {
  const requests: Site["requests"] = [];
  const server: Server = createServer((request, response) => {
    const path = new URL(request.url ?? "/", "http://localhost").pathname;
    requests.push({ path, headers: request.headers });
    const page = pages[path];
    if (page === undefined) {
      response.writeHead(404, { "content-type": "text/plain" }).end("not found");
    } else if (path === "/private" && request.headers.authorization !== token) {
      response.writeHead(401, { "content-type": "text/plain", "www-authenticate": "Bearer" }).end("token required");
    } else {
      const policy = path === "/strict" ? { "content-security-policy": "default-src 'none'; img-src data:" } : {};
      response.writeHead(200, {
        "content-type": "text/html; charset=utf-8",
        "x-content-type-options": "nosniff",
        ...policy,
      }).end(page);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    stop: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

describe("the browser tests' support", () => {
  let browser: TestBrowser;
  let site: Site;
  let folder: string;
  const desktop = { width: 1280, height: 800 };

  before(async () => {
    folder = mkdtempSync(join(tmpdir(), "backupctl-browser-"));
    site = await startSite();
    browser = await startBrowser();
  });
  after(async () => {
    await browser?.close();
    await site?.stop();
    rmSync(folder, { recursive: true, force: true });
  });

  it("reports nothing on a clean page, and reads its status, headers, text and tables", async () => {
    const page = await visit(browser, `${site.url}/clean`, desktop);
    try {
      assert.equal(page.status, 200);
      assert.equal(page.headers["x-content-type-options"], "nosniff");
      assert.deepEqual(page.consoleErrors, []);
      assert.deepEqual(page.failedRequests, []);
      assert.match(await page.text(), /^Projects\n/);
      assert.deepEqual(await page.tables(), [[["Project", "Health"], ["<script>alert(1)</script>", "ok"], [
        "shop",
        "failing",
      ]]]);
      assert.deepEqual(await page.texts("nav a"), ["One", "Two"]);
      // The DOM shows the name as text; the source the server sent has it escaped.
      assert.match(await page.source(), /<td>&lt;script&gt;alert\(1\)&lt;\/script&gt;<\/td>/);
      assert.match(await page.html(), /<h1>Projects<\/h1>/);
      assert.equal(await page.evaluate("innerWidth"), 1280);
    } finally {
      await page.close();
    }
  });

  it("reports an uncaught error, the console's error and the 404 of a missing image", async () => {
    const page = await visit(browser, `${site.url}/bad`, desktop);
    try {
      assert.equal(page.status, 200);
      assert.deepEqual(page.failedRequests, [`GET ${site.url}/nope.png: HTTP 404`]);
      assert.ok(page.consoleErrors.includes("uncaught Error: boom from the page"), page.consoleErrors.join("\n"));
      // Chromium says so on the console too: a test that checks only consoleErrors still sees the missing asset.
      assert.ok(page.consoleErrors.some((line) => line.includes("404")), page.consoleErrors.join("\n"));
    } finally {
      await page.close();
    }
  });

  it("reports a script the Content-Security-Policy refuses, and its readers still work under that policy", async () => {
    const page = await visit(browser, `${site.url}/strict`, desktop);
    try {
      assert.equal(page.consoleErrors.length, 1, page.consoleErrors.join("\n"));
      assert.match(page.consoleErrors[0], /^Executing inline script violates the following Content Security Policy/);
      assert.deepEqual(page.failedRequests, []);
      assert.equal(await page.evaluate("document.title"), "strict");
      assert.deepEqual(await page.tables(), [[["kept"]]]);
      await page.waitFor("document.readyState === 'complete'");
    } finally {
      await page.close();
    }
  });

  it("sends the extra headers with the page's requests, and reports a refused page", async () => {
    const refused = await visit(browser, `${site.url}/private`, desktop);
    try {
      assert.equal(refused.status, 401);
      assert.equal(refused.headers["www-authenticate"], "Bearer");
      assert.deepEqual(refused.failedRequests, [`GET ${site.url}/private: HTTP 401`]);
    } finally {
      await refused.close();
    }
    const page = await visit(browser, `${site.url}/private`, { ...desktop, headers: { Authorization: token } });
    try {
      assert.equal(page.status, 200);
      assert.deepEqual(page.failedRequests, []);
      assert.equal(await page.text(), "Only with the token");
      const seen = site.requests.filter((request) => request.path === "/private").map((r) => r.headers.authorization);
      assert.deepEqual(seen, [undefined, token]);
    } finally {
      await page.close();
    }
  });

  it("writes screenshots as PNG, the whole page with fullPage", async () => {
    const page = await visit(browser, `${site.url}/clean`, { width: 390, height: 844 });
    try {
      assert.equal(await page.evaluate("innerWidth"), 390);
      const viewport = join(folder, "viewport.png");
      const full = join(folder, "full.png");
      await page.screenshot(viewport);
      await page.screenshot(full, { fullPage: true });
      for (const path of [viewport, full]) {
        const bytes = readFileSync(path);
        assert.deepEqual([...bytes.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], path);
      }
      // The IHDR chunk's width and height (big-endian at bytes 16 and 20), in device pixels (scale factor 1).
      const size = (path: string) => {
        const bytes = readFileSync(path);
        return [bytes.readUInt32BE(16), bytes.readUInt32BE(20)];
      };
      assert.deepEqual(size(viewport), [390, 844]);
      const [width, height] = size(full);
      assert.equal(width, 390);
      assert.ok(height > 2000, `full page height ${height}`);
    } finally {
      await page.close();
    }
  });

  it("emulates prefers-color-scheme: dark (light by default) and a time zone", async () => {
    const light = await visit(browser, `${site.url}/clean`, desktop);
    const dark = await visit(browser, `${site.url}/clean`, { ...desktop, colorScheme: "dark", timeZone: "Asia/Tokyo" });
    try {
      assert.equal(await light.matchesMedia("(prefers-color-scheme: dark)"), false);
      assert.equal(await dark.matchesMedia("(prefers-color-scheme: dark)"), true);
      const background = "getComputedStyle(document.body).backgroundColor";
      assert.equal(await light.evaluate(background), "rgb(255, 255, 255)");
      assert.equal(await dark.evaluate(background), "rgb(0, 0, 0)");
      const hour = "new Date('2026-12-06T00:00:00Z').getHours()";
      assert.equal(await dark.evaluate(hour), 9);
    } finally {
      await light.close();
      await dark.close();
    }
  });

  it("moves the focus from link to link with Tab and back with Shift+Tab", async () => {
    const page = await visit(browser, `${site.url}/clean`, desktop);
    try {
      assert.equal(await page.focused(), null);
      assert.deepEqual(await page.press("Tab"), { tag: "a", id: "first", text: "One", href: "#one" });
      assert.equal((await page.press("Tab"))?.id, "second");
      assert.equal((await page.press("Shift+Tab"))?.id, "first");
      assert.equal((await page.press("Enter"))?.id, "first");
      assert.equal(await page.evaluate("location.hash"), "#one");
    } finally {
      await page.close();
    }
  });

  it("waits for a condition in the page", async () => {
    const page = await visit(browser, `${site.url}/clean`, desktop);
    try {
      await page.evaluate("setTimeout(() => { document.title = 'changed' }, 50), null");
      await page.waitFor("document.title === 'changed'", 5_000);
      await assert.rejects(page.waitFor("document.title === 'never'", 200), /timed out after 200 ms/);
    } finally {
      await page.close();
    }
  });
});
