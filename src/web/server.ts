/**
 * The dashboard's request handling, shared by `backupctl serve` and `watch --listen`: GET only, every answer with the
 * security headers (web/security.ts), the token checked when one is set, then the route. Pages are rendered from the
 * state at request time (read-only: nothing here writes, so there is nothing to forge a request for).
 *
 * Routes: `/` (every project), `/projects/NAME`, `/runs/ID`, `/plan`, `/live.json` (the stages under way in this
 * process, for the live byte counts), `/assets/NAME`.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { liveStages } from "../apply/progress.ts";
import type { LoadedConfig } from "../config/load.ts";
import { redact } from "../config/secrets.ts";
import { machineTimeZone } from "../format/time.ts";
import type { StateStore } from "../state/store.ts";
import { asset } from "./assets.ts";
import { markup } from "./html.ts";
import { page, type PageContext } from "./layout.ts";
import { homePage } from "./pages/home.ts";
import { planPage } from "./pages/plan.ts";
import { projectPage } from "./pages/project.ts";
import { runPage } from "./pages/run.ts";
import { authorized, securityHeaders } from "./security.ts";

/** Where the pages' data comes from: a config (watch reloads it) and a state, read at request time. */
export interface DashboardSource {
  loaded(): LoadedConfig;
  store: StateStore;
  /** This backupctl's host name (plan's leftovers judge processes of this host only). */
  host: string;
  now(): Date;
}

/** What a page renders with: the source's config and state now, in the display zone. */
export interface DashboardContext extends PageContext {
  loaded: LoadedConfig;
  store: StateStore;
  host: string;
}

/** A page's answer: a document, or not found (with the page saying what). */
export type PageResult = { status: 200 | 404; body: string; type?: string };

export function contextOf(source: DashboardSource): DashboardContext {
  const loaded = source.loaded();
  return {
    loaded,
    store: source.store,
    host: source.host,
    now: source.now(),
    zone: loaded.displayTimeZone ?? machineTimeZone(),
  };
}

/** A not-found page in the dashboard's frame. */
export function notFound(ctx: PageContext, what: string): PageResult {
  return {
    status: 404,
    body: page(ctx, {
      title: "Not found",
      body: markup`
        <p>${what}</p>
        <p><a href="/">All projects</a></p>
      `,
    }),
  };
}

/**
 * Answers one request for the dashboard; `token` set means every request must carry it. Never throws: an error is a
 * 500 page with its first line, redacted.
 */
export async function handleDashboard(
  source: DashboardSource,
  token: string | undefined,
  request: IncomingMessage,
  response: ServerResponse,
): Promise<void> {
  const send = (status: number, type: string, body: string, headers: Record<string, string> = {}) => {
    response.writeHead(status, {
      ...securityHeaders,
      "Content-Type": type,
      "Cache-Control": "no-store",
      ...headers,
    });
    response.end(request.method === "HEAD" ? undefined : body);
  };
  if (request.method !== "GET" && request.method !== "HEAD") {
    return send(405, "text/plain; charset=utf-8", "the dashboard is read-only: GET only\n", { Allow: "GET, HEAD" });
  }
  if (!authorized(request, token)) {
    return send(401, "text/plain; charset=utf-8", "the dashboard needs its token\n", {
      "WWW-Authenticate": 'Basic realm="backupctl", charset="UTF-8"',
    });
  }
  const url = new URL(request.url ?? "/", "http://dashboard.invalid");
  const path = url.pathname;
  try {
    if (path.startsWith("/assets/")) {
      const found = asset(path.slice("/assets/".length));
      if (!found) return send(404, "text/plain; charset=utf-8", "no such asset\n");
      return send(200, found.type, found.body, { "Cache-Control": "public, max-age=31536000, immutable" });
    }
    if (path === "/live.json") {
      const runs = liveStages().map((stage) => ({
        run_id: stage.runId,
        project: stage.project,
        stage: stage.label,
        bytes: stage.bytes,
        started_at: stage.startedAt,
        text: stage.text,
      }));
      return send(200, "application/json", `${JSON.stringify({ runs })}\n`);
    }
    const ctx = contextOf(source);
    let result: PageResult;
    const project = /^\/projects\/([^/]+)\/?$/.exec(path);
    const run = /^\/runs\/([^/]+)\/?$/.exec(path);
    if (path === "/") result = await homePage(ctx);
    else if (path === "/plan") result = await planPage(ctx, url.searchParams);
    else if (project) result = await projectPage(ctx, decodeURIComponent(project[1]), url.searchParams);
    else if (run) result = await runPage(ctx, decodeURIComponent(run[1]));
    else result = notFound(ctx, `Nothing at ${path}.`);
    send(result.status, result.type ?? "text/html; charset=utf-8", result.body);
  } catch (error) {
    const message = error instanceof Error ? error.message.split("\n")[0] : String(error);
    if (!response.headersSent) send(500, "text/plain; charset=utf-8", `error: ${redact(message)}\n`);
  }
}
