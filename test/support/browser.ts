/**
 * A real browser for the dashboard's tests: Debian's `chromium` (apt) driven by `playwright-core` (npm) through
 * `executablePath`. Nothing is downloaded: playwright-core has no install step and never fetches a browser; the
 * browser is the one apt installed (`.ci/run` and `scripts/ensure-tools.ts` install it).
 *
 * One browser per test file (`startBrowser()` in `before`, `close()` in `after`: starting Chromium costs a few hundred
 * milliseconds, a page far less); each `visit()` opens a fresh browser context, so viewport, headers and colour scheme
 * never leak from one visit to the next. A visit records what a page must not do (console errors, uncaught errors,
 * failed requests) from before its first request, and offers readers that need no DOM types: `deno check` type-checks
 * test/ without the DOM library (adding it would let `document` slip into src/ unnoticed), so the code that runs in
 * the page is written against the small `Page…` interfaces below and its results are parsed with zod.
 *
 * Runtime-neutral: the same file runs under Deno and Bun.
 */
import { existsSync } from "node:fs";
import { type Browser, chromium, type Page, type Response } from "playwright-core";
import { z } from "zod";

/** Debian's launcher script; BACKUPCTL_TEST_CHROMIUM names another Chromium (e.g. on a developer's non-Debian host). */
const chromiumPath = process.env.BACKUPCTL_TEST_CHROMIUM ?? "/usr/bin/chromium";

export interface TestBrowser {
  /** Chromium's version, e.g. "156.0.8078.114". */
  version: string;
  /** Closes every page and ends the browser process. */
  close(): Promise<void>;
  /** The driver's handle, for `visit()`. */
  readonly driver: Browser;
}

/** Starts headless Chromium. Fails naming the package when it is not installed. */
export async function startBrowser(): Promise<TestBrowser> {
  if (!existsSync(chromiumPath)) {
    throw new Error(
      `${chromiumPath} not found: the browser tests need Debian's chromium (apt-get install chromium), ` +
        `or BACKUPCTL_TEST_CHROMIUM naming another Chromium binary`,
    );
  }
  const driver = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    // The sandbox needs user namespaces as a non-root user, and refuses to run as root (CI runs as root in a
    // container). The pages are the test's own, served on loopback: the sandbox protects nothing here.
    // /dev/shm is often 64 MB in containers, too small for full-page screenshots: Chromium uses /tmp instead.
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
    // Only what Chromium needs: a test's environment can hold secrets (repository passwords, tokens).
    env: pickEnv(["PATH", "HOME", "TMPDIR", "LANG", "TZ"]),
    timeout: 60_000,
  });
  return { version: driver.version(), close: () => driver.close(), driver };
}

function pickEnv(names: string[]): Record<string, string> {
  const picked: Record<string, string> = {};
  for (const name of names) {
    const value = process.env[name];
    if (value !== undefined) picked[name] = value;
  }
  return picked;
}

export interface VisitOptions {
  /** The viewport in CSS pixels: e.g. 1280 × 800 for a desktop, 390 × 844 for a phone. */
  width: number;
  height: number;
  /** Sent with every request of the visit (the page and its assets), e.g. `{ Authorization: "Bearer …" }`. */
  headers?: Record<string, string>;
  /** What `prefers-color-scheme` says. Default "light". */
  colorScheme?: "light" | "dark";
  /** The browser's time zone (IANA name), for pages that render times in the browser. Default: the host's. */
  timeZone?: string;
}

/** The element that has the keyboard focus. */
export interface Focused {
  /** Lower-case tag name: "a", "button", "input", … */
  tag: string;
  id: string;
  /** Its visible text, trimmed. */
  text: string;
  /** The `href` attribute as written in the page, or null. */
  href: string | null;
}

export interface Visit {
  /** The HTTP status of the main response. */
  status: number;
  /** The main response's headers, names in lower case. */
  headers: Record<string, string>;
  /**
   * Console messages of type error (Chromium's own among them: a resource that failed to load, a Content-Security-Policy
   * violation) and uncaught errors, in the order they came; they keep coming after load.
   */
  consoleErrors: string[];
  /** Requests that failed (network error, blocked) or got a status >= 400: "GET URL: reason". */
  failedRequests: string[];
  /** The visible text of the body, as a user would copy it. */
  text(): Promise<string>;
  /** The current DOM serialized (after scripts ran). */
  html(): Promise<string>;
  /** The main response's body as the server sent it (to check escaping: what the DOM shows is already parsed). */
  source(): Promise<string>;
  /** The visible text of every element matching a CSS selector. */
  texts(selector: string): Promise<string[]>;
  /** Every `<table>` matching the selector (default all), each as rows of cell texts (header rows included). */
  tables(selector?: string): Promise<string[][][]>;
  /** Whether a media query matches, e.g. "(prefers-color-scheme: dark)". */
  matchesMedia(query: string): Promise<boolean>;
  /** The focused element, or null when nothing (or the body) has focus. */
  focused(): Promise<Focused | null>;
  /** Presses a key ("Tab", "Shift+Tab", "Enter", …) and says what has the focus afterwards. */
  press(key: string): Promise<Focused | null>;
  /**
   * Evaluates a JavaScript expression in the page and returns its (JSON-serializable) value: unknown, to be checked by
   * the caller. A string rather than a function: a function's body would need the DOM types that test/ does without.
   */
  evaluate(expression: string): Promise<unknown>;
  /** Waits until a JavaScript expression is truthy in the page (e.g. a live byte count changed); default 10 s. */
  waitFor(expression: string, timeoutMs?: number): Promise<void>;
  /** A PNG of the viewport, or of the whole page with `fullPage`. */
  screenshot(path: string, options?: { fullPage?: boolean }): Promise<void>;
  /** Closes the page and its context. */
  close(): Promise<void>;
}

/** Opens `url` in a fresh context and waits for its load event. Rejects when the page cannot be reached at all. */
export async function visit(browser: TestBrowser, url: string, options: VisitOptions): Promise<Visit> {
  const context = await browser.driver.newContext({
    viewport: { width: options.width, height: options.height },
    extraHTTPHeaders: options.headers,
    colorScheme: options.colorScheme ?? "light",
    timezoneId: options.timeZone,
    // Fixed, so that what the browser formats (dates, numbers) and screenshots do not depend on the host's settings.
    locale: "en-US",
  });
  try {
    const page = await context.newPage();
    const consoleErrors: string[] = [];
    const failedRequests: string[] = [];
    page.on("console", (message) => {
      if (message.type() !== "error") return;
      const { url, lineNumber } = message.location();
      consoleErrors.push(url ? `${message.text()} (${url}:${lineNumber})` : message.text());
    });
    page.on("pageerror", (error) => consoleErrors.push(`uncaught ${error.name}: ${error.message}`));
    page.on("requestfailed", (request) => {
      failedRequests.push(`${request.method()} ${request.url()}: ${request.failure()?.errorText ?? "failed"}`);
    });
    page.on("response", (response) => {
      const request = response.request();
      if (response.status() >= 400) {
        failedRequests.push(`${request.method()} ${response.url()}: HTTP ${response.status()}`);
      }
    });
    const response = await page.goto(url, { waitUntil: "load", timeout: 30_000 });
    if (!response) throw new Error(`${url}: no response (goto gives none for about:blank and same-document moves)`);
    return await openVisit(page, response, consoleErrors, failedRequests);
  } catch (error) {
    await context.close();
    throw error;
  }
}

async function openVisit(
  page: Page,
  response: Response,
  consoleErrors: string[],
  failedRequests: string[],
): Promise<Visit> {
  const evaluate = (expression: string): Promise<unknown> => page.evaluate(expression);
  const focused = async () => focusedShape.parse(await evaluate(`(${describeFocus})(document)`));
  return {
    status: response.status(),
    headers: await response.allHeaders(),
    consoleErrors,
    failedRequests,
    text: () => page.locator("body").innerText(),
    html: () => page.content(),
    source: () => response.text(),
    texts: (selector) => page.locator(selector).allInnerTexts(),
    tables: async (selector = "table") =>
      tablesShape.parse(await evaluate(`(${readTables})(document, ${JSON.stringify(selector)})`)),
    matchesMedia: async (query) => z.boolean().parse(await evaluate(`matchMedia(${JSON.stringify(query)}).matches`)),
    focused,
    press: async (key) => {
      await page.keyboard.press(key);
      return focused();
    },
    evaluate,
    waitFor: async (expression, timeoutMs = 10_000) => {
      // Polled with evaluate (the DevTools protocol's, which a Content-Security-Policy without 'unsafe-eval' allows;
      // waitForFunction evaluates a string inside the page, which such a policy refuses).
      const deadline = Date.now() + timeoutMs;
      while (!(await page.evaluate(expression))) {
        if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${expression}`);
        await page.waitForTimeout(50);
      }
    },
    screenshot: async (path, options = {}) => {
      // No blinking caret or half-run transition in a picture meant to be compared and committed.
      await page.screenshot({ path, fullPage: options.fullPage ?? false, animations: "disabled", caret: "hide" });
    },
    close: () => page.context().close(),
  };
}

// What the page-side functions below use of the DOM. They run in the browser (passed as source text), so they may use
// nothing from this module: only their parameters and the page's own globals.

interface PageElement {
  readonly tagName: string;
  readonly id: string;
  readonly innerText: string;
  getAttribute(name: string): string | null;
  /** Only on `<table>`: its rows, of its own sections only (not those of a nested table). */
  readonly rows?: ArrayLike<{ readonly cells: ArrayLike<PageElement> }>;
}

interface PageDocument {
  readonly activeElement: PageElement | null;
  readonly body: PageElement | null;
  querySelectorAll(selector: string): ArrayLike<PageElement>;
}

function readTables(document: PageDocument, selector: string): string[][][] {
  return Array.from(
    document.querySelectorAll(selector),
    (table) => Array.from(table.rows ?? [], (row) => Array.from(row.cells, (cell) => cell.innerText.trim())),
  );
}

function describeFocus(document: PageDocument): Focused | null {
  const element = document.activeElement;
  if (element === null || element === document.body) return null;
  return {
    tag: element.tagName.toLowerCase(),
    id: element.id,
    text: element.innerText.trim(),
    href: element.getAttribute("href"),
  };
}

const tablesShape = z.array(z.array(z.array(z.string())));
const focusedShape = z.object({ tag: z.string(), id: z.string(), text: z.string(), href: z.string().nullable() })
  .nullable();
