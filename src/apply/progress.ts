/**
 * Progress of a long stage: on a terminal a line rewritten in place (bytes, rate, elapsed) on stderr; elsewhere a
 * plain line every 30 s (BACKUPCTL_PROGRESS_SECONDS changes it), so logs show a long dump is alive. The stages under
 * way in this process are also listed by {@link liveStages} (watch's dashboard shows their byte counts live).
 */
import { humanDuration } from "../format/time.ts";
import { formatBytes } from "../format/bytes.ts";

export interface Progress {
  /** Stops reporting and clears the terminal line. */
  stop(): void;
}

/** A stage under way in this process, as the dashboard shows it. */
export interface LiveStage {
  runId: string;
  project: string;
  label: string;
  bytes: number;
  startedAt: string;
  /** "1.2 GiB, 40 MiB/s, 31s": the figures of the progress line. */
  text: string;
}

const live = new Map<
  symbol,
  { runId: string; project: string; label: string; startedAt: string; figures(): string; bytes(): number }
>();

/** The stages reporting progress in this process now. */
export function liveStages(): LiveStage[] {
  return [...live.values()].map((stage) => ({
    runId: stage.runId,
    project: stage.project,
    label: stage.label,
    bytes: stage.bytes(),
    startedAt: stage.startedAt,
    text: stage.figures(),
  }));
}

export function startProgress(
  label: string,
  bytes: () => number,
  out: (line: string) => void,
  run?: { runId: string; project: string },
): Progress {
  const terminal = Boolean(process.stderr.isTTY);
  const seconds = Number(process.env.BACKUPCTL_PROGRESS_SECONDS) || 30;
  const started = Date.now();
  const figures = () => {
    const elapsed = Date.now() - started;
    const rate = elapsed > 0 ? (bytes() * 1000) / elapsed : 0;
    return `${formatBytes(bytes())}, ${formatBytes(Math.round(rate))}/s, ${humanDuration(elapsed)}`;
  };
  const describe = () => `${label}: ${figures()}`;
  const key = Symbol(label);
  if (run) live.set(key, { ...run, label, startedAt: new Date(started).toISOString(), figures, bytes });
  const timer = setInterval(() => {
    if (terminal) process.stderr.write(`\r\u001b[2K  … ${describe()}`);
    else out(`  … ${describe()}`);
  }, terminal ? 500 : seconds * 1000);
  return {
    stop() {
      clearInterval(timer);
      live.delete(key);
      if (terminal) process.stderr.write("\r\u001b[2K");
    },
  };
}
