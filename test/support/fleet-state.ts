/**
 * A config and a state (SQLite or PostgreSQL, test/support/state-backends.ts) for the commands that show a fleet
 * (status, history): the state is filled through the store's own fleet operations (register, acquire, startRun with
 * a runner), as runners would, and the commands run in this process against the same state.
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { StateStore } from "../../src/state/store.ts";
import { runMain } from "./in-process-cli.ts";
import type { CliResult } from "./cli.ts";
import { schemaFor, type StateBackend } from "./state-backends.ts";

/**
 * The variable the config's state.url reads on PostgreSQL: one per state, because the test files that use this run
 * in one `deno test` process, whose environment they share (each file has its own server).
 */
const urlVariablePrefix = "BACKUPCTL_FLEETVIEW_TEST_STATE_URL_";
/** The repository's password (never used: the repository is not opened). */
const passwordVariable = "BACKUPCTL_FLEETVIEW_TEST_PASSWORD";

export interface FleetState {
  dir: string;
  config: string;
  store: StateStore;
  /** Runs the CLI on this config and state. */
  cli(args: string[]): Promise<CliResult>;
  cleanup(): Promise<void>;
}

/**
 * A config with three projects: `shop` needs label `db`, `wiki` needs `gpu`, `blog` runs anywhere. Their repository
 * is never opened (status and history read the state only).
 */
export async function fleetState(backend: StateBackend): Promise<FleetState> {
  const dir = mkdtempSync(join(tmpdir(), "backupctl-fleetview-"));
  const stateDir = join(dir, ".backupctl");
  const postgres = await backend.postgresState(stateDir);
  const urlVariable = `${urlVariablePrefix}${randomBytes(6).toString("hex").toUpperCase()}`;
  if (postgres) process.env[urlVariable] = postgres.url;
  process.env[passwordVariable] = "not-a-real-secret-4711";
  mkdirSync(join(dir, "data"));
  const config = join(dir, "backup.config.ts");
  writeFileSync(
    config,
    `import { defineConfig, env, files, restic } from "backupctl";
export default defineConfig({
  timezone: "UTC",
  host: "status-host",
  ${postgres ? `state: { url: env("${urlVariable}"), schema: "${schemaFor(stateDir)}" },` : ""}
  repositories: { local: restic({ url: "repo", password: env("${passwordVariable}") }) },
  projects: {
    shop: { schedule: "0 3 * * *", sources: [files({ name: "f", paths: ["data"] })], repositories: ["local"],
      retention: { last: 3 }, runsOn: ["db"] },
    wiki: { schedule: "0 3 * * *", sources: [files({ name: "f", paths: ["data"] })], repositories: ["local"],
      retention: { last: 3 }, runsOn: ["gpu"] },
    blog: { schedule: "0 3 * * *", sources: [files({ name: "f", paths: ["data"] })], repositories: ["local"],
      retention: { last: 3 } },
  },
});
`,
  );
  const store = await backend.open(stateDir);
  return {
    dir,
    config,
    store,
    cli: (args) => runMain(["--config", config, ...args]),
    async cleanup() {
      await store.close();
      delete process.env[urlVariable];
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A runner's registration as `watch` makes it, with the given name, labels and config. */
export function registration(name: string, labels: string[], fingerprint: string) {
  return {
    name,
    instance: `${name}-instance`,
    host: `${name}.example`,
    pid: 4242,
    labels,
    version: "0.0.0-test",
    fingerprint,
    startedAt: new Date().toISOString(),
    ttlMs: 120_000,
  };
}

/** A finished run of `project`, made by `runner` (or outside a fleet without one). */
export async function finishedRun(
  store: StateStore,
  run: { id: string; project: string; startedAt: string; host: string; runner?: string; leaseToken?: number },
): Promise<void> {
  await store.startRun({ command: "watch", fingerprint: "sha256:f", ...run });
  await store.finishRun(run.id, {
    status: "succeeded",
    finishedAt: new Date(Date.parse(run.startedAt) + 1000).toISOString(),
    durationMs: 1000,
  });
}
