/**
 * Logging with LogTape. Diagnostics (warnings by default, everything with --debug) go to stderr. The event log of
 * `apply` and `watch` (one record per line of their progress output) goes to stdout as human lines or JSON lines, and
 * optionally to a log file with size-based rotation (for the container), always as JSON lines. Each record carries
 * the run id, project and stage it belongs to when the line names them.
 */
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import {
  configure,
  dispose,
  getJsonLinesFormatter,
  getLogger,
  getTextFormatter,
  type Logger,
  type LogLevel,
  type LogRecord,
  type Sink,
} from "@logtape/logtape";
import { redact } from "./config/secrets.ts";
import { localTime, localTimesIn } from "./format/time.ts";

const diagnostics = getTextFormatter();

export type LogFormat = "text" | "json";
export const logFormats: LogFormat[] = ["text", "json"];

export interface EventLogOptions {
  format: LogFormat;
  /** Also write JSON lines to this file, rotated at `maxBytes` keeping `maxFiles` old files. */
  file?: string;
  maxBytes?: number;
  maxFiles?: number;
  /** Prefix human lines with the time (watch); apply's human output stays as it always was. */
  timestamps: boolean;
  /**
   * The zone human lines show times in (their prefix, and ISO UTC times in the line) with the offset; JSON lines and
   * the log file keep UTC. Default: UTC, as ISO times.
   */
  timeZone?: string;
  /** Where stdout lines go (the command's output). */
  stdout: (text: string) => void;
}

const stderrSink: Sink = (record: LogRecord) => process.stderr.write(diagnostics(record));

export async function setupLogging(debug: boolean): Promise<void> {
  await configure({
    reset: true,
    sinks: { stderr: stderrSink },
    loggers: [
      { category: ["backupctl"], sinks: ["stderr"], lowestLevel: debug ? "debug" : "warning" },
      { category: ["logtape", "meta"], sinks: ["stderr"], lowestLevel: "warning" },
    ],
  });
}

export function logger(...category: string[]): Logger {
  return getLogger(["backupctl", ...category]);
}

/** What a record says besides its message. */
export interface EventFields {
  run_id?: string;
  project?: string;
  stage?: string;
}

const jsonLines = getJsonLinesFormatter({ properties: "flatten" });

/**
 * Sets up the event log's sinks next to the diagnostics (call once per command) and returns the function that logs
 * one line; `close()` flushes the log file.
 */
export async function setupEventLog(
  options: EventLogOptions,
  debug = false,
): Promise<{ scope: () => (line: string) => void; close: () => Promise<void> }> {
  const human = (record: LogRecord) => {
    const zone = options.timeZone;
    const text = record.message.map(String).join("");
    const message = zone ? localTimesIn(text, zone) : text;
    // The line's prefix is one token (ISO 8601 with a T), so that tools splitting log lines at spaces still work.
    const time = zone
      ? localTime(new Date(record.timestamp), zone).replace(" ", "T")
      : new Date(record.timestamp).toISOString().replace(/\.\d{3}Z$/, "Z");
    return options.timestamps ? `${time} ${message}\n` : `${message}\n`;
  };
  const sinks: Record<string, Sink> = {
    stderr: stderrSink,
    stdout: (record: LogRecord) => options.stdout(options.format === "json" ? jsonLines(record) : human(record)),
  };
  const eventSinks = ["stdout"];
  if (options.file) {
    mkdirSync(dirname(options.file), { recursive: true });
    const { getRotatingFileSink } = await import("@logtape/file"); // only a run that logs to a file needs it
    sinks.file = getRotatingFileSink(options.file, {
      formatter: jsonLines,
      maxSize: options.maxBytes ?? 10 * 1024 * 1024,
      maxFiles: options.maxFiles ?? 5,
    });
    eventSinks.push("file");
  }
  await configure({
    reset: true,
    sinks,
    loggers: [
      { category: ["backupctl", "events"], sinks: eventSinks, lowestLevel: "debug", parentSinks: "override" },
      { category: ["backupctl"], sinks: ["stderr"], lowestLevel: debug ? "debug" : "warning" },
      { category: ["logtape", "meta"], sinks: ["stderr"], lowestLevel: "warning" },
    ],
  });
  const events = getLogger(["backupctl", "events"]);
  return {
    scope: () => {
      const context: EventFields = {};
      return (line: string) => {
        // A blank line is layout, not an event: human output keeps it; no record (JSON or in the log file) is made.
        if (line.trim() === "") {
          if (options.format === "text") options.stdout("\n");
          return;
        }
        const text = redact(line);
        const fields = fieldsOf(text, context);
        const level = levelOf(text);
        // The line is the message template: braces in it are literal, not placeholders.
        events[level === "warning" ? "warn" : level](text.replaceAll("{", "{{").replaceAll("}", "}}"), { ...fields });
      };
    },
    close: async () => {
      await dispose();
      await setupLogging(debug);
    },
  };
}

/**
 * The run, project and stage a line belongs to: a `Run ID (project P)` line opens a run for the lines after it, until
 * `Run ID succeeded|failed|interrupted`; the stage is the verb and subject a progress line starts with.
 */
export function fieldsOf(line: string, context: EventFields): EventFields {
  const opened = /^Run (\S+) \(project ([^)]+)\)/.exec(line);
  if (opened) {
    context.run_id = opened[1];
    context.project = opened[2];
    return { run_id: opened[1], project: opened[2] };
  }
  const fields: EventFields = { ...context };
  const closed = /^Run (\S+) (succeeded|failed|interrupted)\b/.exec(line);
  if (closed) {
    delete context.run_id;
    delete context.project;
    return fields;
  }
  const stage =
    /^\s*(?:[+~✗!-]|\.\.\.)\s+(?:HELD: )?(init|backup|copy|forget|prune|check|verify|recover|refresh)\b\s*([^\s:(]*)/
      .exec(line);
  if (stage) fields.stage = [stage[1], stage[2]].filter(Boolean).join(" ");
  const hook = /^\s*[~✗]\s+(before|after|onFailure) hook\b/.exec(line);
  if (hook) fields.stage = `${hook[1]} hook`;
  if (!fields.project) {
    const project = /^\s*(?:[+~✗!-]|\.\.\.)\s+(?:HELD: )?\w+ (?:\d+ snapshots? of )?([A-Za-z0-9][\w.-]*)\//.exec(line);
    if (project) fields.project = project[1];
  }
  return fields;
}

function levelOf(line: string): LogLevel {
  const trimmed = line.trimStart();
  if (trimmed.startsWith("✗") || trimmed.startsWith("error:")) return "error";
  if (trimmed.startsWith("!") || trimmed.startsWith("warning:")) return "warning";
  return "info";
}

/** `--log-format`: an allowed format, or undefined for the command's default. */
export function parseLogFormat(text: string | undefined): LogFormat | undefined {
  if (text === undefined) return undefined;
  if (!(logFormats as string[]).includes(text)) {
    throw new RangeError(`--log-format: expected text or json, got "${text}"`);
  }
  return text as LogFormat;
}
