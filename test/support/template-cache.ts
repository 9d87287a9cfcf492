/**
 * Templates for tests: what costs the same for every test file or runtime is made once per machine and version, and
 * each test starts from a copy of it. `initdb` and `mariadb-install-db` for the database servers (postgres.ts,
 * mariadb.ts), the repository of restic snapshots test/plan/retention_oracle_test.ts asks restic about.
 *
 * The cache lives in os.tmpdir()/backupctl-test-cache-<uid>/, one folder per kind, version and set of build
 * arguments. A template is built in a private temporary folder and renamed into place, so a reader sees a complete
 * template or none: the Deno and Bun suites running side by side may both build one, the first rename wins and the
 * other copy is thrown away.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Where the templates are kept; one folder per user, so
 * that runs as root and as another user on one machine never share files. */
export function templateCacheDir(): string {
  const uid = typeof process.getuid === "function" ? process.getuid() : "user";
  return join(tmpdir(), `backupctl-test-cache-${uid}`);
}

/** A build interrupted this long ago is abandoned (its process died before renaming it): its folder is removed. */
const abandonedAfterMs = 60 * 60 * 1000;
/** Another template of the same kind (an older version, or the oracle's histories of another hour) made this long ago. */
const outdatedAfterMs = 24 * 60 * 60 * 1000;

/**
 * The folder of a finished template named by `name`, `version` and `args` (everything the build depends on), built
 * by `build(folder)` when missing.
 * `build` fills the empty folder it is given; the returned folder must be copied (copyTemplate), never used in place.
 */
export async function cachedTemplate(
  name: string,
  version: string,
  args: readonly string[],
  build: (folder: string) => Promise<void>,
): Promise<string> {
  const cache = templateCacheDir();
  // Readable by all: when tests run as root, initdb runs as `postgres` and must reach its folder in here.
  mkdirSync(cache, { recursive: true, mode: 0o755 });
  const key = createHash("sha256").update(JSON.stringify([version, args])).digest("hex").slice(0, 16);
  const template = join(cache, `${name}-${key}`);
  if (exists(template)) return template;
  removeStale(cache, name, template);
  const building = mkdtempSync(join(cache, `.building-${name}-`));
  try {
    await build(building);
    renameSync(building, template);
  } catch (error) {
    rmSync(building, { recursive: true, force: true });
    // Another runner renamed its template into place first: use that one.
    if (exists(template)) return template;
    throw error;
  }
  return template;
}

/** Copies a template's `from` folder to `to`, keeping owners and modes (initdb's folder belongs to `postgres`). */
export function copyTemplate(from: string, to: string): Promise<void> {
  return new Promise((resolve, reject) => {
    // --sparse=always: MariaDB's redo log is mostly zeros and need not take disk space in every copy.
    execFile("cp", ["-a", "--sparse=always", "--", from, to], (error, _stdout, stderr) => {
      if (error) reject(new Error(`cp -a ${from} ${to} failed: ${String(stderr).trim() || error.message}`));
      else resolve();
    });
  });
}

function exists(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Removes abandoned builds, and the templates of kind `name` other than `current` that are a day old. */
function removeStale(cache: string, name: string, current: string): void {
  for (const entry of readdirSync(cache)) {
    const path = join(cache, entry);
    const age = entry.startsWith(".building-")
      ? abandonedAfterMs
      : entry.startsWith(`${name}-`) && path !== current
      ? outdatedAfterMs
      : undefined;
    if (age === undefined) continue;
    try {
      if (Date.now() - statSync(path).mtimeMs > age) rmSync(path, { recursive: true, force: true });
    } catch {
      // Another runner removed or renamed it meanwhile.
    }
  }
}
