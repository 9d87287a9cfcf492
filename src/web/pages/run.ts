/** `/runs/ID`: one run's stages (being built). */
import { markup } from "../html.ts";
import { page } from "../layout.ts";
import type { DashboardContext, PageResult } from "../server.ts";

export function runPage(ctx: DashboardContext, id: string): Promise<PageResult> {
  return Promise.resolve({ status: 200, body: page(ctx, { title: `Run ${id}`, body: markup`<p>${id}</p>` }) });
}
