/**
 * Where a child's stdout or stderr goes while it runs: kept up to a number of bytes (its newest part when longer, so a
 * multi-gigabyte dump never sits in memory and the end of stderr — where the cause is — survives), or dropped for a
 * caller that reads the stream live.
 */
import type { Readable } from "node:stream";

export class OutputSink {
  private chunks: Uint8Array[] = [];
  private bytes = 0;

  /** Keeps at most `cap` bytes (the newest); 0 keeps nothing. */
  constructor(private readonly cap: number) {}

  /**
   * Collects everything `stream` emits from now on. The stream flows even when nothing is kept: a child whose output
   * nobody read would block once the pipe is full.
   */
  attach(stream: Readable | null | undefined): void {
    stream?.on("data", (chunk: Uint8Array | string) => this.write(chunk));
  }

  write(chunk: Uint8Array | string): void {
    if (this.cap === 0) return;
    const bytes = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
    this.chunks.push(bytes);
    this.bytes += bytes.length;
    // Whole chunks go first; the last one kept may start before the cap (it is cut when read).
    while (this.chunks.length > 1 && this.bytes - this.chunks[0].length >= this.cap) {
      this.bytes -= this.chunks[0].length;
      this.chunks.shift();
    }
  }

  /** What was kept, as UTF-8 text: at most `cap` bytes, the newest. */
  text(): string {
    const all = Buffer.concat(this.chunks);
    return (all.length > this.cap ? all.subarray(all.length - this.cap) : all).toString("utf8");
  }
}
