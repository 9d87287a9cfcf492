/**
 * Run as a child process by isolated-load.ts: loads and validates one config in a fresh runtime, whose module cache
 * has never seen it or any file it imports, and prints the outcome as one JSON line on stdout.
 */
import { loadConfig } from "../config/load.ts";
import { ConfigError } from "../errors.ts";

const path = process.argv[2];
try {
  const loaded = await loadConfig(path);
  process.stdout.write(`${JSON.stringify({ ok: true, loaded })}\n`);
} catch (error) {
  const problems = error instanceof ConfigError
    ? error.problems
    : [{ path: "", message: error instanceof Error ? error.message : String(error) }];
  process.stdout.write(`${JSON.stringify({ ok: false, file: path, problems })}\n`);
}
process.exit(0);
