/**
 * One question on the terminal (apply's approval of deletions, unlock --force, restore --clean). While it waits the
 * terminal is in raw mode, so Ctrl-C reaches readline, not the process: it is taken as "stop", and the question
 * resolves to undefined. Without that, Deno's readline goes on waiting for a line that never comes.
 */
import { createInterface } from "node:readline/promises";

/** The answer typed, trimmed; undefined when Ctrl-C (or the end of input) stopped the question. */
export async function ask(question: string): Promise<string | undefined> {
  const prompt = createInterface({ input: process.stdin, output: process.stdout });
  const stop = new AbortController();
  prompt.on("SIGINT", () => stop.abort());
  prompt.on("close", () => stop.abort());
  try {
    return (await prompt.question(question, { signal: stop.signal })).trim();
  } catch (error) {
    if (stop.signal.aborted) return undefined;
    throw error;
  } finally {
    prompt.close();
  }
}
