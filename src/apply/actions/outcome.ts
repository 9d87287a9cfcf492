/** How a maintenance stage ended, as apply says it and counts it. */
import { humanDuration } from "../../format/time.ts";
import type { Outcome } from "./types.ts";

/** Says how a maintenance stage ended ("~ prune local: done (3s)"), and turns it into an outcome. */
export function said(
  outcome: { ok: true; durationMs: number } | { ok: false; error: string },
  out: (line: string) => void,
  label: string,
): Outcome {
  if (outcome.ok) {
    out(`~ ${label}: done (${humanDuration(outcome.durationMs)})`);
    return { status: "succeeded" };
  }
  out(`✗ ${label} failed: ${outcome.error}`);
  return { status: "failed", error: outcome.error };
}
