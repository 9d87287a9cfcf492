/** Human and machine renderings of a plan. The summary line's grammar is API: keep it stable. */
import pc from "picocolors";
import type { Plan, PlanAction } from "./types.ts";
import { humanDuration } from "./time.ts";

const symbols: Record<PlanAction["type"], string> = {
  init: "+",
  backup: "+",
  copy: "+",
  forget: "-",
  prune: "~",
  check: "~",
  verify: "~",
  recover: "~",
};

/** `Plan: N to back up, N to copy, N to initialize, N snapshots to forget, N checks.` */
export function summaryLine(plan: Plan): string {
  const s = plan.summary;
  return `Plan: ${s.backup} to back up, ${s.copy} to copy, ${s.init} to initialize, ` +
    `${s.forget} snapshots to forget, ${s.check + s.verify} checks.`;
}

function colour(symbol: string, text: string): string {
  if (symbol === "+") return pc.green(text);
  if (symbol === "-") return pc.red(text);
  return pc.yellow(text);
}

function describe(action: PlanAction): string {
  switch (action.type) {
    case "init":
      return `init ${action.repository}`;
    case "backup":
      return `backup ${action.project}/${action.source} → ${action.repository}`;
    default:
      return [
        action.type,
        action.project && `${action.project}${action.source ? `/${action.source}` : ""}`,
        action.repository,
      ]
        .filter(Boolean).join(" ");
  }
}

export function renderText(plan: Plan): string {
  const lines: string[] = [];
  for (const warning of plan.warnings) lines.push(pc.yellow(`! ${warning}`));
  if (plan.warnings.length > 0) lines.push("");
  if (plan.actions.length === 0) {
    lines.push(pc.green("No changes. Backups are up to date."));
    const next = [...plan.next_due].sort((a, b) => a.at.localeCompare(b.at))[0];
    if (next) {
      const wait = humanDuration(Date.parse(next.at) - Date.parse(plan.now));
      lines.push(`Next due: ${next.project} at ${next.at} (in ${wait}).`);
    }
    return lines.join("\n") + "\n";
  }
  const groups = new Map<string, PlanAction[]>();
  for (const action of plan.actions) {
    const group = action.project ? `Project ${action.project}` : "Repositories";
    groups.set(group, [...(groups.get(group) ?? []), action]);
  }
  for (const [group, actions] of groups) {
    lines.push(pc.bold(`${group}:`));
    for (const action of actions) {
      const symbol = symbols[action.type];
      lines.push(`  ${colour(symbol, `${symbol} ${describe(action)}`)}  ${pc.dim(action.reason)}`);
    }
    lines.push("");
  }
  lines.push(pc.bold(summaryLine(plan)));
  return lines.join("\n") + "\n";
}

export function renderJson(plan: Plan): string {
  return JSON.stringify(plan, null, 2) + "\n";
}
