/**
 * Progress of a long stage: on a terminal a line rewritten in place (bytes, rate, elapsed) on stderr; elsewhere a
 * plain line every 30 s (BACKUPCTL_PROGRESS_SECONDS changes it), so logs show a long dump is alive.
 */
import { humanDuration } from "../format/time.ts";
import { formatBytes } from "../format/bytes.ts";

export interface Progress {
  /** Stops reporting and clears the terminal line. */
  stop(): void;
}

export function startProgress(label: string, bytes: () => number, out: (line: string) => void): Progress {
  const terminal = Boolean(process.stderr.isTTY);
  const seconds = Number(process.env.BACKUPCTL_PROGRESS_SECONDS) || 30;
  const started = Date.now();
  const describe = () => {
    const elapsed = Date.now() - started;
    const rate = elapsed > 0 ? (bytes() * 1000) / elapsed : 0;
    return `${label}: ${formatBytes(bytes())}, ${formatBytes(Math.round(rate))}/s, ${humanDuration(elapsed)}`;
  };
  const timer = setInterval(() => {
    if (terminal) process.stderr.write(`\r\u001b[2K  … ${describe()}`);
    else out(`  … ${describe()}`);
  }, terminal ? 500 : seconds * 1000);
  return {
    stop() {
      clearInterval(timer);
      if (terminal) process.stderr.write("\r\u001b[2K");
    },
  };
}
