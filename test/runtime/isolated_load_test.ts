/**
 * Loading a config in a child process (watch's reload): a config that exits, hangs, never returns or prints is a
 * ConfigError naming what it did, never an exit of the loader mistaken for something else.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { ConfigError } from "../../src/errors.ts";
import { loadConfigIsolated } from "../../src/runtime/isolated-load.ts";

const dir = mkdtempSync(join(tmpdir(), "backupctl-isolated-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const config = `import { defineConfig, env, restic, sqlite } from "backupctl";
export default defineConfig({
  repositories: { local: restic({ url: "/srv/restic", password: env("RESTIC_PASSWORD") }) },
  projects: {
    app: { schedule: "@daily", sources: [sqlite({ path: "app.db" })], repositories: ["local"], retention: { daily: 7 } },
  },
});
`;

function write(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

async function loadError(path: string, timeoutMs?: number): Promise<ConfigError> {
  try {
    await loadConfigIsolated(path, timeoutMs);
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${error}`);
    return error;
  }
  assert.fail("expected the load to fail");
}

describe("loadConfigIsolated", () => {
  it("loads a config that prints, whatever it printed", async () => {
    const path = write("prints.config.ts", `console.log('{"ok":false}'); console.info("from the config");\n${config}`);
    const loaded = await loadConfigIsolated(path);
    assert.deepEqual(Object.keys(loaded.config.projects), ["app"]);
  });

  it("reports a config that calls process.exit, with any code, as an invalid config naming the call", async () => {
    for (const code of [0, 1]) {
      const path = write(`exit-${code}.config.ts`, `process.exit(${code});\n${config}`);
      const error = await loadError(path);
      assert.equal(error.exitCode, 3);
      assert.match(error.message, new RegExp(`invalid configuration ${path.replaceAll(".", "\\.")} `));
      assert.match(
        error.problems[0].message,
        new RegExp(`^the config called process\\.exit\\(${code}\\) while loading: a config cannot end backupctl`),
      );
    }
  });

  it("gives up on a top-level await that never resolves after BACKUPCTL_CONFIG_TIMEOUT", async () => {
    const path = write("hangs.config.ts", `await new Promise(() => {});\n${config}`);
    const saved = process.env.BACKUPCTL_CONFIG_TIMEOUT;
    process.env.BACKUPCTL_CONFIG_TIMEOUT = "1s";
    try {
      const started = Date.now();
      const error = await loadError(path);
      assert.ok(Date.now() - started < 20_000, "waited for the 30 s default instead of 1 s");
      assert.match(
        error.problems[0].message,
        /^did not finish loading within 1s: a top-level await that never resolves\?/,
      );
    } finally {
      if (saved === undefined) delete process.env.BACKUPCTL_CONFIG_TIMEOUT;
      else process.env.BACKUPCTL_CONFIG_TIMEOUT = saved;
    }
  });

  it("kills a loader stuck in code that never returns, and says so", async () => {
    const path = write("spins.config.ts", `while (true) {}\n${config}`);
    const error = await loadError(path, 3_000);
    assert.match(error.problems[0].message, /^did not finish loading within 3s, and its loader was killed: /);
  });
});
