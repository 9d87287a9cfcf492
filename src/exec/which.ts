/**
 * Finds a program on PATH the way a shell does (`command -v`): the first executable file of that name in PATH's
 * folders. A few `stat`s instead of a child process, so code that must decide synchronously (which MySQL client
 * names are installed) neither blocks on a child nor starts one that shutdown cannot see.
 */
import { accessSync, constants, statSync } from "node:fs";
import { delimiter, join } from "node:path";

/** The path of `program` on PATH (or `program` itself when it names a file with a slash), else undefined. */
export function which(program: string, path = process.env.PATH ?? ""): string | undefined {
  const candidates = program.includes("/")
    ? [program]
    : path.split(delimiter).map((dir) => join(dir === "" ? "." : dir, program));
  return candidates.find((candidate) => {
    try {
      accessSync(candidate, constants.X_OK);
      return statSync(candidate).isFile();
    } catch {
      return false;
    }
  });
}
