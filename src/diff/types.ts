/**
 * The result of a config diff: one semantic change, and the counts of a diff. Shared by the comparison
 * (diff/config-diff.ts and its parts) and its renderings (diff/render.ts).
 */

/** One semantic change between the `--against` config (before) and the current one (after). */
export interface ConfigChange {
  kind: "added" | "removed" | "changed";
  /** What changed, e.g. `project shop`, `source shop/db`, `repository offsite`, `retention of shop`. */
  subject: string;
  /** The change itself, e.g. `daily 30 → 7`. */
  detail: string;
  /** What it means for backups, in words. */
  consequence: string;
  /** True when the change can lose backups or stops managing them (see docs/cli.md "diff"). */
  destructive: boolean;
  /** The project the change belongs to; absent for config-wide changes (repositories, notifiers, settings). */
  project?: string;
}

/** Counts of a diff, as in the summary line. */
export interface DiffSummary {
  added: number;
  removed: number;
  changed: number;
  destructive: number;
}
