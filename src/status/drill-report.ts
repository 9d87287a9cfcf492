/**
 * The evidence report of restore drills (`verify --report markdown|json [--since 90d]`): per project, every drill of
 * the period with its date, the snapshot restored, what was restored and checked, how long it took against the
 * project's recovery time objective, and the result; a project with a drill configured but none in the period is
 * listed as such (a gap an auditor must see). Read from the audit: the `verify` stages and their notes.
 */
import type { LoadedConfig } from "../config/load.ts";
import { compareTimes, humanDuration, isoSeconds, localTime } from "../format/time.ts";
import type { StateStore } from "../state/store.ts";
import { slowerThan } from "./report.ts";

export interface DrillEvidence {
  at: string;
  source: string | null;
  repository: string | null;
  snapshot: string | null;
  /** What was restored and checked (the stage's note), or why it failed. */
  restored_and_checked: string | null;
  duration_ms: number | null;
  result: string;
  error: string | null;
  /** null without an objective. */
  within_rto: boolean | null;
}

export interface DrillReport {
  generated_at: string;
  since: string;
  projects: { project: string; rto: string | null; drills: DrillEvidence[] }[];
}

/** Every drill since `since`, per project (declared projects with a drill first, then any other in the audit). */
export async function drillReport(
  loaded: LoadedConfig,
  store: StateStore,
  since: Date,
  now: Date,
): Promise<DrillReport> {
  const entries = await store.history({ kinds: ["verify"], since: since.toISOString(), limit: 1_000_000 });
  const byProject = new Map<string, DrillEvidence[]>();
  for (const entry of entries) {
    for (const stage of entry.stages) {
      if (stage.type !== "verify" || !stage.project || stage.status === "running") continue;
      const rto = loaded.config.projects[stage.project]?.verify?.rto;
      const durationMs = stage.duration_ms === null ? null : Number(stage.duration_ms);
      const list = byProject.get(stage.project) ?? [];
      list.push({
        at: stage.started_at,
        source: stage.source,
        repository: stage.repository,
        snapshot: stage.snapshot_id,
        restored_and_checked: stage.note,
        duration_ms: durationMs,
        result: stage.status,
        error: stage.error,
        within_rto: rto && stage.status === "succeeded" ? !slowerThan(durationMs, rto) : null,
      });
      byProject.set(stage.project, list);
    }
  }
  const declared = Object.values(loaded.config.projects).filter((p) => p.verify).map((p) => p.name);
  const names = [...new Set([...declared, ...[...byProject.keys()].sort()])];
  return {
    generated_at: isoSeconds(now),
    since: isoSeconds(since),
    projects: names.map((project) => ({
      project,
      rto: loaded.config.projects[project]?.verify?.rto ?? null,
      drills: (byProject.get(project) ?? []).sort((a, b) => compareTimes(a.at, b.at)),
    })),
  };
}

/** The report as markdown, times in `zone`: a section per project, a table of its drills. */
export function renderDrillReport(report: DrillReport, zone: string): string {
  const at = (iso: string) => localTime(new Date(iso), zone);
  const cell = (text: string) => text.replaceAll("|", "\\|").replaceAll("\n", " ");
  const out = [
    "# Restore drill evidence",
    "",
    `Drills from ${at(report.since)} to ${
      at(report.generated_at)
    }, from the backupctl audit. Each drill restored the ` +
    "snapshot named into a scratch database and ran the project's check query against it.",
    "",
  ];
  for (const { project, rto, drills } of report.projects) {
    out.push(`## ${project}`, "");
    const passed = drills.filter((d) => d.result === "succeeded").length;
    out.push(
      drills.length === 0
        ? "**No drill in this period.**"
        : `${drills.length} drill${drills.length === 1 ? "" : "s"}, ${passed} passed` +
          (rto
            ? `; recovery time objective ${rto}, missed ${drills.filter((d) => d.within_rto === false).length} times`
            : ""),
      "",
    );
    if (drills.length === 0) continue;
    out.push("| date | snapshot | restored and checked | duration | result |", "| --- | --- | --- | --- | --- |");
    for (const d of drills) {
      const result = d.result === "succeeded"
        ? d.within_rto === false ? "passed, over the RTO" : "passed"
        : `${d.result}: ${cell((d.error ?? "").split("\n")[0])}`;
      out.push(
        `| ${at(d.at)} | ${d.snapshot?.slice(0, 8) ?? "—"} | ${
          cell(d.restored_and_checked ?? `${d.source ?? "?"} from ${d.repository ?? "?"}`)
        } | ` +
          `${d.duration_ms === null ? "—" : humanDuration(d.duration_ms)} | ${result} |`,
      );
    }
    out.push("");
  }
  return out.join("\n");
}
