/**
 * Drills of files and command sources (the database drill is drill.ts). A files drill restores a sample of the
 * snapshot's files (`verify.sample`: N files, default 20, or a share of the bytes; always the largest and the newest)
 * into a private scratch folder and compares each with the live file where the live file is unchanged since the
 * snapshot (same size, same mtime to the millisecond): matched, changed since (not compared), mismatched (same size and mtime, other
 * content: the drill fails) or missing live. A command drill restores the dump to a private scratch file and compares
 * its size and SHA-256 with what the backup stage recorded (the producer's count and checksum, before encryption).
 * The scratch folder is removed on every path (a crash leaves it to the private folders' recovery).
 */
import { createHash } from "node:crypto";
import { createReadStream, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { noteChecksum } from "../apply/pipeline.ts";
import { SourceError } from "../errors.ts";
import { createPrivateFolder } from "../exec/private-file.ts";
import { parseLs, type TreeNode } from "../repository/restic-browse.ts";
import type { StateStore } from "../state/store.ts";
import type { Located, RestoreContext } from "./restore.ts";
import { streamDump } from "./stream.ts";

/** How many files a files drill restores when `verify.sample` does not say. */
export const defaultSampleFiles = 20;

export interface SampleSpec {
  /** How many files to restore (at least the largest and the newest). */
  files?: number;
  /** A share of the snapshot's bytes to restore instead, e.g. "5%". */
  share?: string;
}

/** What a files drill found. */
export interface FilesCheck {
  /** Files restored (the sample). */
  restored: number;
  /** Files in the snapshot. */
  total: number;
  matched: number;
  /** Live file with another size or mtime than the snapshot's: changed since, not compared. */
  changedSince: number;
  /** Unchanged live files whose content differs from the restored one. */
  mismatched: string[];
  /** Sampled files no longer on disk. */
  missingLive: number;
}

/** The files of a snapshot's tree a drill restores: the largest, the newest, then others at random. */
export function chooseSample(nodes: TreeNode[], spec: SampleSpec | undefined): TreeNode[] {
  const files = nodes.filter((node) => node.type === "file");
  if (files.length === 0) return [];
  const largest = files.reduce((a, b) => (b.size > a.size ? b : a));
  const newest = files.reduce((a, b) => (mtimeNs(b.mtime) > mtimeNs(a.mtime) ? b : a));
  const chosen = new Set([largest, newest]);
  const rest = files.filter((node) => !chosen.has(node));
  for (let i = rest.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [rest[i], rest[j]] = [rest[j], rest[i]];
  }
  const bytesOf = () => [...chosen].reduce((sum, node) => sum + node.size, 0);
  if (spec?.share !== undefined) {
    const total = files.reduce((sum, node) => sum + node.size, 0);
    const wanted = Math.ceil(total * Number(spec.share.replace("%", "")) / 100);
    for (const node of rest) {
      if (bytesOf() >= wanted) break;
      chosen.add(node);
    }
  } else {
    const count = spec?.files ?? defaultSampleFiles;
    for (const node of rest) {
      if (chosen.size >= count) break;
      chosen.add(node);
    }
  }
  return [...chosen];
}

/**
 * An mtime as restic writes it (RFC 3339 with up to nanoseconds and an offset) in nanoseconds since the epoch,
 * exactly (a Date would round it, and a file modified within the same millisecond would seem the same).
 */
export function mtimeNs(text: string): bigint {
  const match = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(text);
  if (!match) return -1n;
  const seconds = Date.parse(`${match[1]}${match[3]}`) / 1000;
  const fraction = (match[2] ?? "").padEnd(9, "0").slice(0, 9);
  return BigInt(seconds) * 1_000_000_000n + BigInt(fraction);
}

async function sha256(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Uint8Array);
  return hash.digest("hex");
}

/** Restores a sample of a files snapshot to a scratch folder and compares it with the live files. */
export async function filesDrill(
  located: Located,
  spec: SampleSpec | undefined,
  ctx: RestoreContext,
): Promise<{ bytes: number; restoreMs: number; check: FilesCheck }> {
  const repository = ctx.repositoryFor(located.repository);
  const nodes = parseLs(await repository.browse("ls", [located.snapshot.id]));
  const sample = chooseSample(nodes, spec);
  const short = located.snapshot.short_id;
  if (sample.length === 0) {
    throw new SourceError(`snapshot ${short} of ${located.source.name} holds no file: there is nothing to drill`);
  }
  const scratch = createPrivateFolder(ctx.privateDir, "drill");
  try {
    const started = Date.now();
    await repository.restoreIncluding(located.snapshot.id, scratch, sample.map((node) => node.path));
    const restoreMs = Date.now() - started;
    const check: FilesCheck = {
      restored: sample.length,
      total: nodes.filter((node) => node.type === "file").length,
      matched: 0,
      changedSince: 0,
      mismatched: [],
      missingLive: 0,
    };
    let bytes = 0;
    for (const node of sample) {
      const restoredPath = join(scratch, node.path);
      const restored = statSync(restoredPath, { throwIfNoEntry: false });
      if (!restored || restored.size !== node.size) {
        throw new SourceError(
          `restic restored ${node.path} of snapshot ${short} ${
            restored ? `with ${restored.size} bytes instead of ${node.size}` : "not at all"
          }: the snapshot does not restore whole`,
        );
      }
      bytes += restored.size;
      const live = statSync(node.path, { bigint: true, throwIfNoEntry: false });
      if (!live) {
        check.missingLive++;
        continue;
      }
      // Compared to the millisecond: Deno's stat gives no finer mtime, whatever the file system holds.
      if (live.size !== BigInt(node.size) || live.mtimeNs / 1_000_000n !== mtimeNs(node.mtime) / 1_000_000n) {
        check.changedSince++;
        continue;
      }
      if ((await sha256(restoredPath)) === (await sha256(node.path))) check.matched++;
      else check.mismatched.push(node.path);
    }
    if (check.mismatched.length > 0) {
      throw new SourceError(
        `${check.mismatched.length} restored file${check.mismatched.length === 1 ? "" : "s"} of snapshot ${short} ` +
          `differ${check.mismatched.length === 1 ? "s" : ""} from the live file, unchanged since the backup (same ` +
          `size and mtime): ${check.mismatched.join(", ")}`,
      );
    }
    return { bytes, restoreMs, check };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/**
 * The bytes the backup stage that made the snapshot recorded (the producer's count, before encryption); undefined
 * for a snapshot no backup of this state made (adopted from the repository).
 */
async function recorded(store: StateStore, located: Located): Promise<{ bytes?: number; sha256?: string }> {
  const runId = located.snapshot.run_id;
  if (runId === null) return {};
  const stages = (await store.runWithStages(runId))?.stages ?? [];
  const id = located.snapshot.id;
  const stage = stages.find((s) =>
    s.type === "backup" && s.status === "succeeded" && s.source === located.source.name && s.snapshot_id !== null &&
    (id.startsWith(s.snapshot_id) || s.snapshot_id.startsWith(id))
  );
  return { bytes: stage?.bytes ?? undefined, sha256: noteChecksum(stage?.note ?? null) };
}

/** What a command drill found. */
export interface DumpCheck {
  /** The bytes the backup recorded, when a backup of this state made the snapshot. */
  recordedBytes?: number;
  /** The SHA-256 the backup's tap computed of the stream, when it could (exec/fifo.ts). */
  recordedSha256?: string;
  sha256: string;
}

/**
 * Restores a command source's dump to a scratch file and checks its size and SHA-256 against the backup's record
 * (each when recorded: an adopted snapshot has neither, a host without Digest::SHA records no checksum).
 */
export async function commandDrill(
  located: Located,
  ctx: RestoreContext,
): Promise<{ bytes: number; restoreMs: number; check: DumpCheck }> {
  const record = await recorded(ctx.store, located);
  const scratch = createPrivateFolder(ctx.privateDir, "drill");
  try {
    const file = join(scratch, "dump");
    const outcome = await streamDump(located, { file }, ctx);
    const what = `the restored dump of ${located.source.name} (snapshot ${located.snapshot.short_id})`;
    if (record.bytes !== undefined && outcome.bytes !== record.bytes) {
      throw new SourceError(
        `${what} is ${outcome.bytes} bytes, but its backup recorded ${record.bytes}: the snapshot does not restore ` +
          "what was backed up",
      );
    }
    const digest = await sha256(file);
    if (record.sha256 !== undefined && digest !== record.sha256) {
      throw new SourceError(
        `${what} has SHA-256 ${digest.slice(0, 16)}…, but its backup recorded ${record.sha256.slice(0, 16)}…: the ` +
          "snapshot does not restore what was backed up",
      );
    }
    return {
      bytes: outcome.bytes,
      restoreMs: outcome.durationMs,
      check: { recordedBytes: record.bytes, recordedSha256: record.sha256, sha256: digest },
    };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
