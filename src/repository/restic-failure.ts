/**
 * The error of a failed restic command, for the operator: which repository and command failed, the line of restic's
 * output that names the cause, what to do (restic-advice.ts), and the lines before it. Classified from the exit code
 * and the whole of stderr (restic-errors.ts), not its last lines.
 */
import type { ResticRepository } from "../config/types.ts";
import type { RunResult } from "../exec/run.ts";
import { resticAdvice } from "./restic-advice.ts";
import { classifyResticFailure, ResticError } from "./restic-errors.ts";

/** The ResticError of `command` on the repository `name` (`spec`); `snapshotId` one it stored all the same. */
export function resticFailure(
  name: string,
  spec: ResticRepository,
  command: string,
  result: RunResult,
  snapshotId?: string,
): ResticError {
  const failure = classifyResticFailure(result.code, result.stderr);
  const advice = resticAdvice(failure.kind, spec, command);
  const cause = failure.cause ? `${advice ? "; restic said: " : ": "}${failure.cause}` : "";
  // restic's last lines, less the cause line when it ends them (it is in the message already): for a check, the
  // lines before it name what is damaged.
  const shown = failure.lines.endsWith(`Fatal: ${failure.cause}`)
    ? failure.lines.slice(0, -`Fatal: ${failure.cause}`.length).trimEnd()
    : failure.lines;
  const more = shown && shown !== failure.cause ? `\n${indent(shown)}` : "";
  return new ResticError(
    `restic ${command}`,
    result.code,
    failure,
    advice,
    `repository ${name}: restic ${command} failed (exit ${result.code ?? result.signal})${
      advice ? ` — ${advice}` : ""
    }${cause}${more}`,
    snapshotId,
  );
}

function indent(text: string): string {
  return text.split("\n").map((line) => `    ${line}`).join("\n");
}
