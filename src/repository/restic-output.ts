/**
 * What `restic backup --json` reports: its summary line read into a {@link BackupResult} (the snapshot id, the bytes
 * read and added), whatever progress lines come before it.
 */

export interface BackupResult {
  snapshotId: string | undefined;
  /** Bytes restic read (the stream's size, or the files' total). */
  bytesProcessed: number;
  /** Bytes restic added to the repository after deduplication and compression. */
  bytesAdded: number;
}

/** Reads the summary message of `restic backup --json` (one JSON object per line). */
export function parseSummary(stdout: string): BackupResult {
  const result: BackupResult = { snapshotId: undefined, bytesProcessed: 0, bytesAdded: 0 };
  for (const line of stdout.split("\n")) {
    if (!line.includes('"summary"')) continue;
    try {
      const message = JSON.parse(line) as {
        message_type?: string;
        snapshot_id?: string;
        total_bytes_processed?: number;
        data_added?: number;
      };
      if (message.message_type !== "summary") continue;
      result.snapshotId = message.snapshot_id;
      result.bytesProcessed = message.total_bytes_processed ?? 0;
      result.bytesAdded = message.data_added ?? 0;
    } catch {
      // a progress line cut in the middle: not the summary
    }
  }
  return result;
}
