/**
 * A semantic diff of two validated configurations, for pull-request review where the production state is not
 * available (`backupctl diff`). Pure: two NormalizedConfigs in, a list of changes out (rendered by diff/render.ts).
 * Config-wide changes come from diff/config-wide.ts, per-project ones from diff/project.ts. Secret references appear
 * only by name (`env("NAME")`, `file("PATH")`); plain values that carry credentials (notifier URLs, `env` and
 * `headers` values) are shown as `(sensitive)`, and URL credentials are scrubbed (diff/values.ts).
 */
import { canonicalJson } from "../config/fingerprint.ts";
import type { NormalizedConfig } from "../config/normalize.ts";
import { diffNotifiers, diffRepositories, diffSettings } from "./config-wide.ts";
import { diffProject, projectAdded, projectRemoved } from "./project.ts";
import type { ConfigChange } from "./types.ts";

/**
 * Compares two configs and lists every change that matters for backups, config-wide changes first, then per
 * project in the order of the current config (removed projects last). Returns [] exactly when both configs have
 * the same canonical JSON (and so the same fingerprint).
 *
 * @example
 * ```ts
 * const changes = diffConfigs(before.config, after.config);
 * process.stdout.write(renderDiffText(changes));
 * ```
 */
export function diffConfigs(before: NormalizedConfig, after: NormalizedConfig): ConfigChange[] {
  if (canonicalJson(before) === canonicalJson(after)) return [];
  const changes: ConfigChange[] = [
    ...diffRepositories(before, after),
    ...diffNotifiers(before, after),
    ...diffSettings(before, after),
  ];
  for (const [name, project] of Object.entries(after.projects)) {
    const old = before.projects[name];
    changes.push(...(old ? diffProject(old, project) : [projectAdded(project)]));
  }
  for (const [name, project] of Object.entries(before.projects)) {
    if (!(name in after.projects)) changes.push(projectRemoved(project));
  }
  if (changes.length === 0) {
    changes.push({
      kind: "changed",
      subject: "configuration",
      detail: "values reordered or written differently",
      consequence: "no effect on backups",
      destructive: false,
    });
  }
  return changes;
}
