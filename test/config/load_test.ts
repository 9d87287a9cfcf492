/**
 * The loader, in process: configs anywhere on disk importing "backupctl", factories, load failures, and configs that
 * print or never finish loading (configs that exit, or throw from a callback, are tested through the CLI, in
 * test/e2e/cli_test.ts: under a test runner, either would end or fail the runner itself before the fix).
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { configLoadTimeoutMs, loadConfig } from "../../src/config/load.ts";
import { ConfigError, UsageError } from "../../src/errors.ts";

const dir = mkdtempSync(join(tmpdir(), "backupctl-load-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const project =
  `{ schedule: "@daily", sources: [sqlite({ path: "app.db" })], repositories: ["local"], retention: { daily: 7 } }`;
const header = `import { defineConfig, env, restic, sqlite } from "backupctl";\n`;
const repositories = `{ local: restic({ url: "/srv/restic", password: env("RESTIC_PASSWORD") }) }`;

function write(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

/** Fails after `ms` instead of waiting forever for a load that never ends. */
function within<T>(ms: number, promise: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`still loading after ${ms} ms`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

async function loadError(path: string, options: { timeoutMs?: number } = {}): Promise<ConfigError> {
  try {
    await within(20_000, loadConfig(path, options));
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${error}`);
    return error;
  }
  assert.fail("expected the load to fail");
}

describe("loadConfig", () => {
  it("loads a config outside the repository that imports backupctl", async () => {
    const path = write(
      "plain.config.ts",
      `${header}export default defineConfig({ repositories: ${repositories}, projects: { app: ${project} } });\n`,
    );
    const loaded = await loadConfig(path);
    assert.equal(loaded.file, path);
    assert.equal(loaded.dir, dir);
    assert.equal(loaded.config.projects.app.sources[0].name, "app");
    assert.match(loaded.fingerprint, /^sha256:[0-9a-f]{64}$/);
  });

  it("loads a default-exported async factory and helper modules that import backupctl themselves", async () => {
    write(
      "shared.ts",
      `import { restic, env } from 'backupctl';\nexport const local = restic({ url: "/srv/restic", password: env("RESTIC_PASSWORD") });\n`,
    );
    const path = write(
      "factory.config.ts",
      `${header}import { local } from "./shared.ts";\nexport default async () => defineConfig({ repositories: { local }, projects: { app: ${project} } });\n`,
    );
    const loaded = await loadConfig(path);
    assert.deepEqual(Object.keys(loaded.config.repositories), ["local"]);
  });

  it("gives the same fingerprint for the same config written differently", async () => {
    const a = write(
      "a.config.ts",
      `${header}export default defineConfig({ repositories: ${repositories}, projects: { app: ${project} } });\n`,
    );
    const b = write(
      "b.config.ts",
      `${header}\n\nexport default defineConfig({\n  projects: { app: { retention: { daily: 7 }, repositories: ["local"], sources: [sqlite({ path: "app.db" })], schedule: "@daily" } },\n  repositories: ${repositories},\n});\n`,
    );
    assert.equal((await loadConfig(a)).fingerprint, (await loadConfig(b)).fingerprint);
  });

  it("reports a syntax error as a config error naming the file", async () => {
    const error = await loadError(
      write("syntax.config.ts", `${header}export default defineConfig({ projects: { ,, } });\n`),
    );
    assert.equal(error.exitCode, 3);
    assert.match(error.problems[0].message, /^cannot load the file: /);
  });

  it("reports an unknown helper import", async () => {
    const error = await loadError(
      write("helper.config.ts", `import { redis } from "backupctl";\nexport default { x: redis };\n`),
    );
    assert.match(error.problems[0].message, /cannot load the file: .*redis/);
  });

  it("reports a missing default export and a throwing factory", async () => {
    const none = await loadError(write("none.config.ts", `export const config = {};\n`));
    assert.match(none.problems[0].message, /no default export: end the file with `export default defineConfig/);
    const throwing = await loadError(
      write("throws.config.ts", `export default () => { throw new Error("no database host known"); };\n`),
    );
    assert.match(throwing.problems[0].message, /the exported config function threw: no database host known/);
  });

  it("says where a syntax error is, in one line (Bun reports several at once; the first is shown)", async () => {
    const path = write("stray.config.ts", `${header}export default defineConfig({ projects: {} }) @@ ;\n`);
    const error = await loadError(path);
    assert.match(error.problems[0].message, /^cannot load the file: .*\(line 2, column \d+\)/);
    assert.doesNotMatch(error.problems[0].message, /\n|AggregateError|errors building/);
  });

  it("says where an import-time error was thrown, and which module is missing", async () => {
    const thrown = await loadError(
      write("thrown.config.ts", `${header}\nthrow new Error("set BACKUP_HOST first");\n`),
    );
    assert.match(thrown.problems[0].message, /^cannot load the file: set BACKUP_HOST first \(line 3, column \d+\)$/);
    write("helper-missing.ts", `export { x } from "./no-such-module.ts";\n`);
    const missing = await loadError(
      write("import-missing.config.ts", `import { x } from "./helper-missing.ts";\nexport default x;\n`),
    );
    assert.match(missing.problems[0].message, /^cannot load the file: .*no-such-module\.ts/);
    assert.ok(!/\n/.test(missing.problems[0].message) && !missing.problems[0].message.includes("\u001b[0m"));
  });

  it("reports a rejected Promise exported as the default, and thrown values that are not errors", async () => {
    const rejected = await loadError(
      write("promise.config.ts", `export default Promise.reject(new Error("vault is sealed"));\n`),
    );
    assert.match(rejected.problems[0].message, /^the exported Promise failed: vault is sealed \(line 1, column \d+\)$/);
    const object = await loadError(
      write("object.config.ts", `export default () => Promise.reject({ code: "EVAULT", retry: false });\n`),
    );
    assert.equal(
      object.problems[0].message,
      'the exported config function threw: {"code":"EVAULT","retry":false}',
    );
  });

  it("reports a missing file", async () => {
    const error = await loadError(join(dir, "missing.config.ts"));
    assert.match(error.problems[0].message, /config file not found/);
  });

  it("sends what the config prints while loading to stderr, never to stdout", async () => {
    const path = write(
      "prints.config.ts",
      `${header}console.log("log from the config"); console.info("info from the config");\n` +
        `console.table([{ table: "from the config" }]); process.stdout.write("write from the config\\n");\n` +
        `export default async () => { console.log("log from the factory"); return defineConfig({ repositories: ` +
        `${repositories}, projects: { app: ${project} } }); };\n`,
    );
    const written = { stdout: "", stderr: "" };
    const original = { stdout: process.stdout.write, stderr: process.stderr.write };
    const capture = (stream: "stdout" | "stderr") => (chunk: string | Uint8Array, ...rest: unknown[]) => {
      written[stream] += typeof chunk === "string" ? chunk : new TextDecoder().decode(chunk);
      const callback = rest.find((arg) => typeof arg === "function") as (() => void) | undefined;
      callback?.();
      return true;
    };
    process.stdout.write = capture("stdout") as typeof process.stdout.write;
    process.stderr.write = capture("stderr") as typeof process.stderr.write;
    let loaded;
    try {
      loaded = await loadConfig(path);
    } finally {
      process.stdout.write = original.stdout;
      process.stderr.write = original.stderr;
    }
    assert.deepEqual(Object.keys(loaded.config.projects), ["app"]);
    for (const text of ["log from the config", "info from the config", "(index)", "write from the config"]) {
      assert.ok(written.stderr.includes(text), `stderr lacks ${JSON.stringify(text)}: ${written.stderr}`);
    }
    assert.ok(written.stderr.includes("log from the factory"), written.stderr);
    assert.equal(written.stdout, "");
    // Once loaded, the console is the program's own again.
    assert.notEqual(console.log.name, "bound log");
  });

  it("gives up on a config that does not finish loading, naming the likely cause and the setting", async () => {
    // It finishes after 2 s, long after the 500 ms allowed: an await that never resolves would leave a module
    // pending for good, which Deno's test runner reports once everything else is done.
    const path = write(
      "hangs.config.ts",
      `${header}await new Promise((resolve) => setTimeout(resolve, 2000));\nexport default {};\n`,
    );
    const started = Date.now();
    const error = await loadError(path, { timeoutMs: 500 });
    assert.ok(Date.now() - started < 10_000);
    assert.equal(error.exitCode, 3);
    assert.match(
      error.problems[0].message,
      /^did not finish loading within 500 ms: a top-level await that never resolves\? .*BACKUPCTL_CONFIG_TIMEOUT/,
    );
    const factory = write("hanging-factory.config.ts", `export default () => new Promise(() => {});\n`);
    assert.match((await loadError(factory, { timeoutMs: 300 })).problems[0].message, /^did not finish loading/);
  });

  it("reads the load timeout from BACKUPCTL_CONFIG_TIMEOUT: a duration or seconds, 30 s by default", () => {
    const saved = process.env.BACKUPCTL_CONFIG_TIMEOUT;
    try {
      delete process.env.BACKUPCTL_CONFIG_TIMEOUT;
      assert.equal(configLoadTimeoutMs(), 30_000);
      process.env.BACKUPCTL_CONFIG_TIMEOUT = "2m";
      assert.equal(configLoadTimeoutMs(), 120_000);
      process.env.BACKUPCTL_CONFIG_TIMEOUT = "90";
      assert.equal(configLoadTimeoutMs(), 90_000);
      for (const bad of ["soon", "0", "-5s"]) {
        process.env.BACKUPCTL_CONFIG_TIMEOUT = bad;
        assert.throws(() => configLoadTimeoutMs(), (error) => {
          assert.ok(error instanceof UsageError);
          assert.match(error.message, /^BACKUPCTL_CONFIG_TIMEOUT: expected how long a config may take to load/);
          return true;
        });
      }
    } finally {
      if (saved === undefined) delete process.env.BACKUPCTL_CONFIG_TIMEOUT;
      else process.env.BACKUPCTL_CONFIG_TIMEOUT = saved;
    }
  });
});
