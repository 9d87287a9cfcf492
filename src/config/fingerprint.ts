/** A stable identity of the desired state: sha256 over canonical JSON (sorted keys) of the normalized config. */
import { createHash } from "node:crypto";
import type { NormalizedConfig } from "./normalize.ts";

/** JSON with object keys sorted at every level; secret references are plain objects, so they appear by name only. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value)
      .filter(([, item]) => item !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonicalJson(item)}`).join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}

export function fingerprint(config: NormalizedConfig): string {
  // A project without pgbackrest() sources hashes as it did before they existed: saved plans stay valid across it.
  const projects = Object.fromEntries(
    Object.entries(config.projects).map(([name, { pitr, ...project }]) => [
      name,
      pitr.length > 0 ? { ...project, pitr } : project,
    ]),
  );
  return `sha256:${createHash("sha256").update(canonicalJson({ ...config, projects })).digest("hex")}`;
}

/** A fingerprint as people read it: "sha256:" and its first 12 hex digits, enough to tell configs apart. */
export function shortFingerprint(fingerprint: string): string {
  return fingerprint.slice(0, 19);
}
