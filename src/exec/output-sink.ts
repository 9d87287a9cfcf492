/**
 * Where a child's stdout or stderr goes while it runs: the chunks zx collects (passed to zx as its `store`, a typed
 * option of `$`), trimmed here to the newest `cap` bytes as they arrive, so a multi-gigabyte dump never sits in
 * memory and the end of stderr — where the cause is — survives; a cap of 0 keeps nothing, for a caller that reads the
 * stream live. zx's own arrays are plain arrays: this module owns the cap, zx only appends.
 */
import type { Readable } from "node:stream";

export class OutputSink {
  /** The chunks kept, oldest first: zx appends to this array, `added` drops what lies beyond the cap. */
  readonly chunks: (string | Buffer)[] = [];
  /** The bytes in `chunks`, counted as chunks arrive and leave (a program may print millions of small lines). */
  private bytes = 0;

  /** Keeps at most `cap` bytes (the newest); 0 keeps nothing. */
  constructor(private readonly cap: number) {}

  /**
   * Trims after every chunk `stream` emits (zx, whose listener comes first, has appended it to `chunks`). The stream
   * flows even when nothing is kept: a child whose output nobody read would block once the pipe is full.
   */
  follow(stream: Readable | null | undefined): void {
    stream?.on("data", (chunk: string | Buffer) => this.added(chunk));
  }

  /** Appends a chunk and trims (for output that does not come through zx). */
  write(chunk: string | Buffer): void {
    this.chunks.push(chunk);
    this.added(chunk);
  }

  /** What was kept, as UTF-8 text: at most `cap` bytes, the newest. */
  text(): string {
    const all = Buffer.concat(this.chunks.map((chunk) => typeof chunk === "string" ? Buffer.from(chunk) : chunk));
    return (all.length > this.cap ? all.subarray(all.length - this.cap) : all).toString("utf8");
  }

  /** Counts `chunk`, just appended, and drops whole chunks from the front while the rest still holds `cap` bytes. */
  private added(chunk: string | Buffer): void {
    if (this.cap === 0) {
      this.chunks.length = 0;
      this.bytes = 0;
      return;
    }
    this.bytes += size(chunk);
    while (this.chunks.length > 1 && this.bytes - size(this.chunks[0]) >= this.cap) {
      this.bytes -= size(this.chunks[0]);
      this.chunks.shift();
    }
  }
}

function size(chunk: string | Buffer): number {
  return typeof chunk === "string" ? Buffer.byteLength(chunk) : chunk.length;
}
