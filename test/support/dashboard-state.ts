/**
 * A state for the dashboard's tests and screenshots, made by real commands as an operator would: three applies on
 * three days (a SQLite database and a folder of files backed up, a command source that fails, a project backed up on
 * the first day only, which is overdue by the third), a restore drill, and a retention tightened afterwards, so the
 * plan holds two deletions for approval. Viewed at {@link viewNow}.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type BackgroundCli, type CliResult, runCli, spawnCli, waitFor } from "./cli.ts";

/** The clock the dashboard is looked at with: the third day, after its backups and drill. */
export const viewNow = "2026-11-03T10:00:00Z";

/** What the failing command prints: markup that must show as text wherever the error appears. */
export const hostileError = "<script>alert('owned')</script> <b>not bold</b>";

export interface DashboardState {
  dir: string;
  config: string;
  env: Record<string, string>;
  /** Runs the CLI on this state (config and environment set). */
  cli(args: string[]): Promise<CliResult>;
  cleanup(): void;
}

function writeConfig(path: string, shopLast: number): void {
  writeFileSync(
    path,
    `import { command, defineConfig, env, files, restic, sqlite } from "backupctl";

export default defineConfig({
  timezone: "Europe/Berlin",
  repositories: {
    local: restic({ url: ".backupctl/restic", password: env("DASHBOARD_RESTIC_PASSWORD") }),
  },
  projects: {
    shop: {
      schedule: "0 3 * * *",
      sources: [sqlite({ path: "data/shop.db" }), files({ name: "uploads", paths: ["data/uploads"] })],
      repositories: ["local"],
      retention: { last: ${shopLast} },
      verify: {
        every: "7d",
        into: sqlite({ path: "scratch/shop-drill.db" }),
        check: "SELECT count(*) FROM customers",
      },
    },
    broken: {
      schedule: "0 3 * * *",
      sources: [command({ name: "export", filename: "export.txt", run: ${
      JSON.stringify(`echo "${hostileError}" >&2; exit 3`)
    } })],
      repositories: ["local"],
      retention: { last: 3 },
    },
    late: {
      schedule: "0 3 * * *",
      maxAge: "1d",
      sources: [command({ name: "report", filename: "report.txt", run: "echo monthly report" })],
      repositories: ["local"],
      retention: { last: 3 },
    },
  },
});
`,
  );
}

export async function makeDashboardState(): Promise<DashboardState> {
  const dir = mkdtempSync(join(tmpdir(), "backupctl-dashboard-"));
  const config = join(dir, "backup.config.ts");
  mkdirSync(join(dir, "data", "uploads"), { recursive: true });
  mkdirSync(join(dir, "scratch"));
  execFileSync("sqlite3", [join(dir, "data", "shop.db")], {
    input: `CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT);
      WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300)
      INSERT INTO customers (name) SELECT 'customer ' || i FROM n;`,
  });
  writeFileSync(join(dir, "data", "uploads", "invoice-1.txt"), "Invoice 1\n");
  const env = { DASHBOARD_RESTIC_PASSWORD: "dashboard-restic-password-4711" };
  const cli = (args: string[]) => runCli(["--config", config, ...args], { env, timeoutMs: 120_000 });
  writeConfig(config, 3);
  for (const [day, projects] of [[1, []], [2, ["shop", "broken"]], [3, ["shop", "broken"]]] as const) {
    writeFileSync(join(dir, "data", "uploads", `invoice-${day}.txt`), `Invoice ${day}\n`);
    const applied = await cli([
      "apply",
      "--now",
      `2026-11-0${day}T02:00:30Z`,
      ...projects.flatMap((p) => ["-p", p]),
    ]);
    // broken fails every day: exit 1, the others succeed.
    assert.equal(applied.code, 1, applied.stdout + applied.stderr);
    assert.match(applied.stdout, /broken/);
  }
  // A tighter retention after the fact: its two deletions wait for approval.
  writeConfig(config, 1);
  return { dir, config, env, cli, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A dashboard being served by a backupctl process (serve, or watch --listen). */
export interface Served {
  url: string;
  cli: BackgroundCli;
  /** SIGTERM, and the process must end with exit 0. */
  stop(): Promise<void>;
}

/** Waits until `cli` prints the address `pattern` captures (its first group), or fails with what it printed. */
export async function served(cli: BackgroundCli, pattern: RegExp): Promise<Served> {
  const url = await waitFor("the dashboard listening", () => {
    const match = pattern.exec(cli.output())?.[1];
    if (!match && /\berror\b/i.test(cli.output())) throw new Error(cli.output());
    return match;
  }, 90_000);
  return {
    url,
    cli,
    stop: async () => {
      process.kill(cli.pid, "SIGTERM");
      const done = await cli.done;
      assert.equal(done.code, 0, done.stdout + done.stderr);
    },
  };
}

/** The real `backupctl serve` on this state, on a free loopback port, at {@link viewNow}. */
export function serveDashboard(state: DashboardState, env: Record<string, string> = {}): Promise<Served> {
  const cli = spawnCli(["--config", state.config, "serve", "--listen", "127.0.0.1:0", "--now", viewNow], {
    env: { ...state.env, ...env },
  });
  return served(cli, /the dashboard is on (http:\/\/127\.0\.0\.1:\d+)\//);
}
