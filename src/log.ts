/** Diagnostic logging (LogTape) to stderr: warnings by default, everything with --debug. Data goes to stdout. */
import { configure, getLogger, getTextFormatter, type Logger, type LogRecord } from "@logtape/logtape";

const format = getTextFormatter();

export async function setupLogging(debug: boolean): Promise<void> {
  await configure({
    reset: true,
    sinks: { stderr: (record: LogRecord) => process.stderr.write(format(record)) },
    loggers: [
      { category: ["backupctl"], sinks: ["stderr"], lowestLevel: debug ? "debug" : "warning" },
      { category: ["logtape", "meta"], sinks: ["stderr"], lowestLevel: "warning" },
    ],
  });
}

export function logger(...category: string[]): Logger {
  return getLogger(["backupctl", ...category]);
}
