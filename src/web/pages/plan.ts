/** `/plan`: the pending plan (being built). */
import { html } from "../html.ts";
import { page } from "../layout.ts";
import type { DashboardContext, PageResult } from "../server.ts";

export function planPage(ctx: DashboardContext): Promise<PageResult> {
  return Promise.resolve({ status: 200, body: page(ctx, { title: "Plan", nav: "plan", body: html`<p>plan</p>` }) });
}
