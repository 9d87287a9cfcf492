/**
 * The audit fallback. When the state database cannot be written (locked past the busy timeout, read-only, full,
 * failing or corrupt), the store appends every write it could not make to `<state dir>/fallback.jsonl`: one JSON
 * object a line, synced to disk before the write returns, so no result is lost. The next `StateStore.open` claims
 * the file here and replays it into the database (replay.ts).
 *
 * A line names the store method and its arguments, when and by which process it was written; a `startStage` line
 * also carries the negative stage id the store handed out, which later `finishStage` lines of that process use:
 *
 *     {"v":1,"op":"finishRun","args":["20261121T030000Z-1a2b",{"status":"succeeded",…}],"at":"…","pid":4242,…}
 *
 * Files, all 0600 in the state folder:
 * - `fallback.jsonl`: appended by processes whose database writes fail;
 * - `fallback.replaying-<pid>.jsonl`: the file a starting process took for its replay. Renaming it away means appends
 *   made during the replay start a new `fallback.jsonl`; a replay that cannot commit puts its lines back in front of
 *   that file. Left behind by a replay that died, it is taken up by the next start once `<pid>` is gone;
 * - `fallback.rejected.jsonl`: lines that could not be replayed, each with its reason and its raw text;
 * - `fallback.lock`: held for the instant of an append, a claim or a give-back, so that no file is renamed or
 *   rewritten while another process appends to it.
 *
 * Delivery is at least once: a crash in the instant between two renames can leave a line in two files, and the
 * replay sees it twice (the store's replay is idempotent for most writes; a second `startRun` is rejected).
 */
import {
  closeSync,
  existsSync,
  fchmodSync,
  fstatSync,
  fsyncSync,
  linkSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { type core, z } from "zod";
import { currentProcessStart, processAlive } from "../runtime/process.ts";
import { type WriteArgs, type WriteOp, writeOperations } from "./writes.ts";
import type { Fence } from "./fleet.ts";

export const fallbackFileName = "fallback.jsonl";
export const rejectedFileName = "fallback.rejected.jsonl";
const lockFileName = "fallback.lock";
const replayingName = /^fallback\.replaying-(\d+)\.jsonl$/;

/** How long an append or a claim waits for another process's instant under the lock before giving up. */
const lockPatienceMs = 10_000;
/**
 * A replay takes seconds (a busy timeout, then one transaction). A replaying file older than this whose pid runs
 * belongs to a process that reused a dead replayer's pid, not to a replay in progress.
 */
const abandonedReplayMs = 15 * 60_000;

// Records: the shape of every line, checked with zod when a replay reads it (each operation's arguments: writes.ts).

const envelope = z.object({
  v: z.literal(1),
  op: z.string(),
  args: z.array(z.unknown()),
  at: z.string(),
  pid: z.number().int().positive(),
  /** The writer's start time (runtime/process.ts): a replayed run keeps the pid and start of the process that ran it. */
  processStart: z.string().nullable().optional(),
  /** On a startStage line: the (negative) id the store returned for the stage. */
  stageId: z.number().int().negative().optional(),
  /** A write made under fleet leases: the replay applies it only while every token is still current. */
  fence: z.object({
    instance: z.string(),
    leases: z.array(z.object({ key: z.string(), token: z.number().int() })),
  }).optional(),
});

/** A line as written and, once validated, as replayed. */
export type FallbackRecord =
  & { [Op in WriteOp]: { op: Op; args: WriteArgs<Op> } }[WriteOp]
  & { v: 1; at: string; pid: number; processStart: string | null; stageId?: number; fence?: Fence };

export interface FallbackLine {
  /** 1-based line number in the file read. */
  line: number;
  raw: string;
  record: FallbackRecord;
}

export interface RejectedLine {
  line: number;
  raw: string;
  reason: string;
}

// Writing.

/** Appends one write the database refused; the line is on disk when this returns. */
export function appendFallback(
  dir: string,
  write: { op: WriteOp; args: unknown[]; stageId?: number; fence?: Fence },
): void {
  const record = {
    v: 1,
    op: write.op,
    args: write.args,
    at: new Date().toISOString(),
    pid: process.pid,
    processStart: currentProcessStart(),
    ...(write.stageId === undefined ? {} : { stageId: write.stageId }),
    ...(write.fence === undefined ? {} : { fence: write.fence }),
  };
  withFallbackLock(dir, () => appendLine(join(dir, fallbackFileName), JSON.stringify(record)));
}

/** Appends lines a replay could not apply to fallback.rejected.jsonl, each with its reason and raw text. */
export function setAside(dir: string, rejected: RejectedLine[]): void {
  if (rejected.length === 0) return;
  const at = new Date().toISOString();
  const text = rejected
    .map(({ line, reason, raw }) => JSON.stringify({ at, file: fallbackFileName, line, reason, raw }))
    .join("\n");
  appendLine(join(dir, rejectedFileName), text);
}

/** Appends `text` and a newline to `path` (created 0600) and syncs it: file, and folder when the file is new. */
function appendLine(path: string, text: string): void {
  const created = !existsSync(path);
  const fd = openSync(path, "a+", 0o600);
  try {
    const { size, mode } = fstatSync(fd);
    if ((mode & 0o777) !== 0o600) fchmodSync(fd, 0o600);
    // A line cut short by a crash must not swallow this one: start on a line of its own.
    writeAll(fd, (size > 0 && !endsWithNewline(fd, size) ? "\n" : "") + text + "\n");
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  if (created) syncFolder(dirname(path));
}

function endsWithNewline(fd: number, size: number): boolean {
  const last = Buffer.alloc(1);
  readSync(fd, last, 0, 1, size - 1);
  return last[0] === 0x0a;
}

function writeAll(fd: number, text: string): void {
  const bytes = Buffer.from(text, "utf8");
  for (let done = 0; done < bytes.length;) done += writeSync(fd, bytes, done, bytes.length - done);
}

/** Makes renames, creations and removals in `dir` durable. */
function syncFolder(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

// Reading.

/**
 * Splits a fallback file into lines and validates each. A line that is not JSON, not a record, names an unknown
 * method or has arguments that method does not take is rejected with the reason; the others are returned in order.
 * The last line lacks its newline only when a crash cut it: rejected unless what remains is still a whole record.
 */
export function parseFallback(text: string): { lines: FallbackLine[]; rejected: RejectedLine[] } {
  const lines: FallbackLine[] = [];
  const rejected: RejectedLine[] = [];
  const raws = text.split("\n");
  const last = raws.length - 1;
  raws.forEach((raw, index) => {
    if (raw.trim() === "") return;
    const line = index + 1;
    const result = parseRecord(raw);
    if ("record" in result) lines.push({ line, raw, record: result.record });
    else {
      const reason = index === last ? `cut short (the last line has no newline): ${result.reason}` : result.reason;
      rejected.push({ line, raw, reason });
    }
  });
  return { lines, rejected };
}

function parseRecord(raw: string): { record: FallbackRecord } | { reason: string } {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (error) {
    return { reason: `not JSON: ${(error as Error).message}` };
  }
  const outer = envelope.safeParse(value);
  if (!outer.success) return { reason: `not a fallback record: ${describeIssues(outer.error.issues)}` };
  const { op, args, ...rest } = outer.data;
  if (!Object.hasOwn(writeOperations, op)) return { reason: `unknown operation ${JSON.stringify(op)}` };
  const parsed = writeOperations[op as WriteOp].args.safeParse(args);
  if (!parsed.success) return { reason: `invalid arguments for ${op}: ${describeIssues(parsed.error.issues, "args")}` };
  if (op === "startStage" && rest.stageId === undefined) return { reason: "startStage without its stageId" };
  return { record: { ...rest, processStart: rest.processStart ?? null, op, args: parsed.data } as FallbackRecord };
}

function describeIssues(issues: core.$ZodIssue[], root = ""): string {
  return issues.map((issue) => {
    const path = issue.path.map((key) => typeof key === "number" ? `[${key}]` : `.${String(key)}`).join("");
    const where = (root + path).replace(/^\./, "");
    return where ? `${where}: ${issue.message}` : issue.message;
  }).join("; ");
}

// Claiming for a replay.

/** A fallback file a replay took: its text, and what to do with it once the replay committed or failed. */
export interface FallbackClaim {
  readonly path: string;
  readonly text: string;
  /** The replay committed: the file goes (removed, folder synced). */
  done(): void;
  /** The replay could not commit: the lines go back in front of any appended since, for the next start. */
  giveBack(): void;
}

/** Claims held by this process: another store opening in the same process must neither take nor adopt them. */
const claimedHere = new Set<string>();

/**
 * Takes `fallback.jsonl`, with the lines of replays that died before committing in front of it, as
 * `fallback.replaying-<pid>.jsonl`. Null when there is nothing to replay, or while another process replays (it came
 * first: its lines are older, and a second replay must not apply newer lines before them).
 */
export function claimFallback(dir: string): FallbackClaim | null {
  const own = join(dir, `fallback.replaying-${process.pid}.jsonl`);
  if (claimedHere.has(own)) return null;
  const fallback = join(dir, fallbackFileName);
  // The common case, without the lock: nothing to replay.
  if (!readdirSync(dir).some((name) => name === fallbackFileName || replayingName.test(name))) return null;
  const taken = withFallbackLock(dir, () => {
    const leftovers: { path: string; mtimeMs: number }[] = [];
    for (const name of readdirSync(dir)) {
      const match = replayingName.exec(name);
      if (!match) continue;
      const path = join(dir, name);
      const stat = statSync(path, { throwIfNoEntry: false });
      if (!stat) continue;
      const pid = Number(match[1]);
      const abandoned = pid === process.pid || !processAlive(pid) || Date.now() - stat.ctimeMs > abandonedReplayMs;
      if (!abandoned) return false;
      leftovers.push({ path, mtimeMs: stat.mtimeMs });
    }
    // Each file was fallback.jsonl once, the older ones earlier: their last appends tell their order.
    const sources = leftovers.sort((a, b) => a.mtimeMs - b.mtimeMs).map((leftover) => leftover.path);
    if (existsSync(fallback)) sources.push(fallback);
    if (sources.length === 0) return false;
    if (sources.length === 1) renameSync(sources[0], own);
    else {
      const merged = join(dir, `fallback.merging-${process.pid}.tmp`);
      writeDurably(merged, sources.map((path) => asLines(readFileSync(path, "utf8"))).join(""));
      renameSync(merged, own);
      for (const path of sources) if (path !== own) rmSync(path, { force: true });
    }
    syncFolder(dir);
    return true;
  });
  if (!taken) return null;
  claimedHere.add(own);
  return {
    path: own,
    text: readFileSync(own, "utf8"),
    done() {
      rmSync(own, { force: true });
      syncFolder(dir);
      claimedHere.delete(own);
    },
    giveBack() {
      withFallbackLock(dir, () => {
        // Lines appended while the replay ran are newer: they go after the claimed ones.
        const newer = existsSync(fallback) ? readFileSync(fallback, "utf8") : "";
        if (newer !== "") {
          const claimed = readFileSync(own, "utf8");
          // With the newline a line cut short at the end of the claimed file lacks.
          writeDurably(own, asLines(claimed).slice(claimed.length) + newer, "a");
        }
        renameSync(own, fallback);
        syncFolder(dir);
      });
      claimedHere.delete(own);
    },
  };
}

/** `text` ending with a newline (empty stays empty), so that files put one after the other keep their lines apart. */
function asLines(text: string): string {
  return text === "" || text.endsWith("\n") ? text : `${text}\n`;
}

/** Writes (`"w"`) or appends (`"a"`) `text` and flushes it to disk before returning. */
function writeDurably(path: string, text: string, flag: "w" | "a" = "w"): void {
  const fd = openSync(path, flag, 0o600);
  try {
    writeAll(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

// The lock.

/**
 * Runs `body` (synchronous, an instant) holding `fallback.lock`. The lock file names its holder (pid and process
 * start); one whose holder is gone is removed. It is made whole in a temp file, then hard-linked to its name (`link`
 * fails when the name exists), so nobody ever reads it half-written.
 */
function withFallbackLock<T>(dir: string, body: () => T): T {
  const path = join(dir, lockFileName);
  const holder = `${process.pid} ${currentProcessStart() ?? "-"}\n`;
  const temporary = join(dir, `${lockFileName}.${process.pid}.tmp`);
  // Not synced: after a power loss, an empty or missing lock names nobody alive.
  writeFileSync(temporary, holder, { mode: 0o600 });
  try {
    const deadline = Date.now() + lockPatienceMs;
    for (;;) {
      try {
        linkSync(temporary, path);
        break;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      }
      if (removeIfStale(path)) continue;
      if (Date.now() > deadline) {
        throw new Error(
          `${path} has been held by process ${readLock(path)?.pid ?? "?"} for over ${lockPatienceMs / 1000} s: ` +
            "if no backupctl process runs, remove the file",
        );
      }
      sleepSync(2);
    }
  } finally {
    rmSync(temporary, { force: true });
  }
  try {
    return body();
  } finally {
    rmSync(path, { force: true });
  }
}

function readLock(path: string): { text: string; pid: number; start: string | null } | null {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return null;
  }
  const [pid, start] = text.trim().split(" ");
  return { text, pid: Number(pid), start: start === "-" ? null : start ?? null };
}

/**
 * Removes a lock whose holder is gone; true when the lock may be tried again. Bodies run synchronously, so a lock
 * naming this very process is a leftover of an earlier process that had the same pid.
 */
function removeIfStale(path: string): boolean {
  const lock = readLock(path);
  if (!lock) return true;
  if (lock.pid !== process.pid && processAlive(lock.pid, lock.start)) return false;
  // Moved aside first: of two processes removing the same stale lock, one gets it; the other must not remove the
  // lock the first then took.
  const aside = `${path}.stale-${process.pid}`;
  try {
    renameSync(path, aside);
  } catch {
    return true;
  }
  if (readFileSync(aside, "utf8") !== lock.text) {
    try {
      linkSync(aside, path);
    } catch {
      // A third process holds the name now.
    }
  }
  unlinkSync(aside);
  return true;
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));

function sleepSync(ms: number): void {
  Atomics.wait(sleeper, 0, 0, ms);
}
