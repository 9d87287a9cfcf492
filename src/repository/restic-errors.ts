/**
 * What a failed restic command means, read from its exit code and its whole stderr, not from its last lines: restic
 * 0.14 exits 1 for every failure and often ends with a Go stack trace and "unable to create lock in backend", whatever
 * the cause (a read-only file system, a wrong password, a held lock). restic 0.17 and later also say it by exit code:
 * 10 the repository does not exist, 11 a lock could not be taken, 12 a wrong password.
 *
 * The line that names the cause ("open /srv/restic/locks/…: read-only file system") is kept for the message, and only
 * a lock another restic holds, or a backend that cannot be reached, is worth trying again.
 */
import { ExecError } from "../errors.ts";

export type ResticFailureKind =
  /** The password opens no key of the repository. */
  | "wrong-password"
  /** No config file where the repository should be: it was never initialized (or the url is wrong). */
  | "not-initialized"
  /** Another restic process holds a conflicting lock. */
  | "locked"
  | "read-only"
  | "permission-denied"
  | "no-space"
  /** ssh does not trust the server's host key. */
  | "host-key"
  /** A login the server refused: an SSH key or password, HTTP 401/403, cloud credentials. */
  | "refused"
  /** The backend cannot be reached (connection refused, no route, DNS, a timeout, an overloaded server). */
  | "unreachable"
  /** This restic does not know a flag it was given (a setting newer than it, or an extraArgs typo). */
  | "unknown-flag"
  | "other";

export interface ResticFailure {
  kind: ResticFailureKind;
  /** restic's line that names the cause, without "Fatal: " (else its last meaningful line; empty when it said nothing). */
  cause: string;
  /** Whether the same command may succeed later without anyone fixing anything: a held lock, an unreachable backend. */
  transient: boolean;
  /** restic's last lines without Go stack frames and its "retrying after" notes, for the message. */
  lines: string;
}

/** A failed restic command, classified. The message names the repository, the command, the cause and what to do. */
export class ResticError extends ExecError {
  constructor(
    command: string,
    code: number | null,
    readonly failure: ResticFailure,
    /** What to do about it, in a few words ("check env(\"RESTIC_PASSWORD\")"); empty when nothing is known. */
    readonly advice: string,
    message: string,
    /** A snapshot restic stored although it failed (a files backup that could not read some files: exit 3). */
    readonly snapshotId?: string,
  ) {
    super(command, code, failure.lines, message, failure.transient);
    this.name = "ResticError";
  }

  /** The cause and what to do, on one line: "wrong password or no key found — the password does not open …". */
  get summary(): string {
    return [this.failure.cause, this.advice].filter(Boolean).join(" — ");
  }
}

/** Each kind with the words restic (or the backend, or ssh) uses for it, most specific first. */
const kinds: { kind: ResticFailureKind; pattern: RegExp; transient?: boolean }[] = [
  { kind: "wrong-password", pattern: /wrong password|no key found/i },
  { kind: "host-key", pattern: /host key verification failed|remote host identification has changed/i },
  { kind: "read-only", pattern: /read-only file system/i },
  { kind: "no-space", pattern: /no space left on device|disk quota exceeded/i },
  {
    kind: "refused",
    pattern:
      /permission denied \((publickey|password|keyboard-interactive)|incorrect passphrase|HTTP response \((401|403)\)|unauthori[sz]ed|forbidden|access denied|invalid ?access ?key|signature.*does not match/i,
  },
  { kind: "permission-denied", pattern: /permission denied|operation not permitted/i },
  // "unable to start the sftp session" alone (ssh's own line lost when restic's pipe from it closed first): a refusal
  // or a host key problem would have been named above, so the server did not answer.
  {
    kind: "unreachable",
    pattern:
      /unable to start the sftp session|connection refused|no route to host|i\/o timeout|connection reset|connection timed out|no such host|network is unreachable|temporary failure in name resolution|ssh command exited|HTTP response \((502|503|504)\)|bad gateway|service unavailable|gateway timeout/i,
    transient: true,
  },
  { kind: "locked", pattern: /repository is already locked/i, transient: true },
  { kind: "unknown-flag", pattern: /^unknown (shorthand )?flag:/i },
];

/** restic's words when the repository's config file is missing: the line, then what says it does not exist. */
const missingConfig = /unable to open config file|repository does not exist/i;
const notThere = /no such file or directory|does not exist|doesn't exist|not found|\b404\b|NoSuchKey/i;

/** restic ≥ 0.17's exit codes. */
const exitCodes: Record<number, ResticFailureKind> = { 10: "not-initialized", 11: "locked", 12: "wrong-password" };

/**
 * Classifies a failed restic command by its exit code and its stderr (as much of it as was kept: give the whole of it,
 * not the last lines).
 */
export function classifyResticFailure(code: number | null, stderr: string): ResticFailure {
  const all = withoutStackFrames(stderr);
  // restic's notes that it will try again ("Save(<lock/…>) returned error, retrying after 1.2s: …") name the cause
  // too, but ten of them say less than the error that follows: searched, not shown.
  const shown = all.filter((line) => !/returned error, retrying after/.test(line));
  const lines = (shown.length > 0 ? shown : all).slice(-8).join("\n");
  const last = (pattern: RegExp) =>
    shown.findLast((line) => pattern.test(line)) ?? all.findLast((line) => pattern.test(line));
  const result = (kind: ResticFailureKind, cause: string | undefined, transient = false): ResticFailure => ({
    kind,
    cause: (cause ?? shown.at(-1) ?? all.at(-1) ?? "").replace(/^Fatal: /, ""),
    transient,
    lines,
  });
  for (const { kind, pattern, transient } of kinds) {
    const line = last(pattern);
    // A lock that could not be taken because of one of the causes above is that cause, not a lock held by another.
    if (line !== undefined) return result(kind, line, transient);
  }
  const missing = last(missingConfig);
  if (missing !== undefined && notThere.test(missing)) return result("not-initialized", missing);
  const byCode = code === null ? undefined : exitCodes[code];
  if (byCode === "locked") return result("locked", last(/lock/i), true);
  if (byCode) return result(byCode, missing ?? last(/fatal/i));
  return result("other", last(/^Fatal: /));
}

/** stderr's non-empty lines without Go stack frames (a function's line, then its tab-indented file:line). */
function withoutStackFrames(stderr: string): string[] {
  const raw = stderr.split("\n").map((line) => line.trimEnd());
  return raw.filter((line, i) =>
    line.trim() !== "" && !line.startsWith("\t") && !(/^\S+$/.test(line) && raw[i + 1]?.startsWith("\t"))
  );
}
