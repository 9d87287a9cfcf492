/** `/projects/NAME`: one project's history, charts, snapshots and pending plan (being built). */
import { markup } from "../html.ts";
import { page } from "../layout.ts";
import { type DashboardContext, notFound, type PageResult } from "../server.ts";

export function projectPage(ctx: DashboardContext, name: string, _query: URLSearchParams): Promise<PageResult> {
  if (!Object.hasOwn(ctx.loaded.config.projects, name)) {
    return Promise.resolve(notFound(ctx, `No project ${name} is declared in the config.`));
  }
  return Promise.resolve({ status: 200, body: page(ctx, { title: name, body: markup`<p>${name}</p>` }) });
}
