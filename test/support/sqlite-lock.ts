/** Holding a state database's write lock from another process, as a busy neighbour would. */
import { spawn } from "node:child_process";

/**
 * A `sqlite3` process in a write transaction on `database` (`BEGIN EXCLUSIVE`, stdin kept open) until released.
 * In WAL mode other connections still read; their writes wait the busy timeout, then fail with SQLITE_BUSY.
 */
export async function holdWriteLock(database: string): Promise<{ release(): Promise<void> }> {
  const child = spawn("sqlite3", [database], { stdio: ["pipe", "pipe", "pipe"] });
  let output = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
  const exited = new Promise<void>((resolve, reject) => {
    child.once("error", (error) => reject(new Error(`cannot run sqlite3 (Debian package sqlite3): ${error.message}`)));
    child.once("exit", () => resolve());
  });
  child.stdin.write("BEGIN EXCLUSIVE;\nSELECT 'lock held';\n");
  const deadline = Date.now() + 10_000;
  while (!output.includes("lock held")) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill();
      await exited;
      throw new Error(`sqlite3 did not take the write lock: ${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return {
    async release() {
      child.stdin.end();
      await exited;
    },
  };
}
