/**
 * `/plan`: the plan the next apply would make now, as a pull request shows it (plan/render.ts's markdown): the
 * headline, the summary line, deletions that need approval, overdue projects and warnings first, then one table per
 * action type and what is not managed, with the full text plan folded below. Made offline, from the state as
 * recorded (no restic started, nothing written), as `status` makes it. `?format=markdown` answers the markdown itself.
 */
import { preparePlan } from "../../apply/prepare.ts";
import { localTimesIn } from "../../format/time.ts";
import type { PlanAction } from "../../plan/document.ts";
import {
  actionTypeOrder,
  colours,
  deletionBanners,
  describeAction,
  planHeadline,
  renderMarkdown,
  renderText,
  summaryLine,
} from "../../plan/render.ts";
import { markup, segment } from "../html.ts";
import { badge, page, when } from "../layout.ts";
import type { DashboardContext, PageResult } from "../server.ts";

/** The plan as the dashboard makes it: offline, every project (see the top of this file). */
export async function currentPlan(ctx: DashboardContext, projects?: string[]) {
  const { plan } = await preparePlan(ctx.loaded, ctx.store, { now: ctx.now, host: ctx.host, projects, offline: true });
  return plan;
}

export async function planPage(ctx: DashboardContext, query?: URLSearchParams): Promise<PageResult> {
  const plan = await currentPlan(ctx);
  if (query?.get("format") === "markdown") {
    return { status: 200, body: renderMarkdown(plan, ctx.zone), type: "text/markdown; charset=utf-8" };
  }
  const local = (text: string) => localTimesIn(text, ctx.zone);
  const alerts = [
    ...deletionBanners(plan).map((banner) => markup`<li><strong>${banner}</strong></li>`),
    ...plan.overdue.map((o) =>
      markup`<li>project ${o.project} is overdue: last success ${when(ctx, o.last_success)}</li>`
    ),
    ...plan.warnings.map((warning) => markup`<li>${local(warning)}</li>`),
  ];
  const tables = actionTypeOrder.flatMap((type) => {
    const actions = plan.actions.filter((a) => a.type === type);
    if (actions.length === 0) return [];
    const rows = actions.map((a) => {
      const held = a.type === "forget" && a.approval === "required";
      const badge = held ? markup` <span class="badge warn">held</span>` : "";
      const cells = markup`<td>${projectLink(a)}</td><td>${describeAction(a)}${badge}</td><td>${local(a.reason)}</td>`;
      return markup`<tr${held ? markup` class="held"` : ""}>${cells}</tr>\n`;
    });
    const head = markup`<tr><th scope="col">Project</th><th scope="col">Action</th><th scope="col">Reason</th></tr>`;
    const table = markup`<table><thead>${head}</thead><tbody>${rows}</tbody></table>`;
    return [markup`<h2 id="${type}">${type} (${actions.length})</h2>\n<div class="table-wrap">${table}</div>\n`];
  });
  const notManaged = plan.not_managed.length === 0 ? markup`` : markup`<h2>Not managed (reported, never deleted)</h2>
<ul>${plan.not_managed.map((item) => markup`<li>${item.subject}: ${item.detail}</li>`)}</ul>`;
  const alert = alerts.length > 0 ? markup`<div class="alert" role="alert"><ul>${alerts}</ul></div>` : "";
  const fingerprint = plan.config_fingerprint.slice(0, 19);
  // The headline's words in a badge (its emoji needs a font a server may not have).
  const banners = deletionBanners(plan).length;
  const tone = banners > 0 ? "bad" : plan.summary.forget > 0 ? "warn" : plan.actions.length > 0 ? "info" : "ok";
  const headline = badge(planHeadline(plan).replace(/^\S+\s+/, ""), tone);
  const body = markup`<p class="headline">${headline}</p>
<p><strong>${plan.actions.length === 0 ? "No changes. Backups are up to date." : summaryLine(plan)}</strong></p>
${alert}
${tables}
${notManaged}
<details><summary>Full plan</summary><pre>${renderText(plan, colours(false), ctx.zone)}</pre></details>
<p class="muted">As of ${
    when(ctx, plan.now, { age: false })
  } · config ${fingerprint}… · state serial ${plan.state.serial} ·
<a href="/plan?format=markdown">as markdown</a></p>`;
  return { status: 200, body: page(ctx, { title: "Plan", nav: "plan", body }) };
}

function projectLink(action: PlanAction) {
  return "project" in action ? markup`<a href="/projects/${segment(action.project)}">${action.project}</a>` : markup`—`;
}
