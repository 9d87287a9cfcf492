/** A throwaway copy of the demo: config, SQLite database and files in a temp folder outside the repository. */
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { repoRoot } from "./cli.ts";

export interface DemoDir {
  dir: string;
  config: string;
  database: string;
  repository: string;
  env: Record<string, string>;
  cleanup(): void;
}

export function makeDemo(password = "e2e-demo-password-4711"): DemoDir {
  const dir = mkdtempSync(join(tmpdir(), "backupctl-e2e-"));
  const config = join(dir, "backup.config.ts");
  copyFileSync(join(repoRoot, "backup.config.ts"), config);
  mkdirSync(join(dir, "demo", "uploads"), { recursive: true });
  const database = join(dir, "demo", "app.db");
  execFileSync("sqlite3", [database], {
    input: `CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT);
      WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500)
      INSERT INTO customers (name) SELECT 'customer ' || i FROM n;`,
  });
  writeFileSync(join(dir, "demo", "uploads", "invoice.txt"), "Invoice 42\n");
  writeFileSync(join(dir, "demo", "uploads", "scratch.tmp"), "excluded\n");
  return {
    dir,
    config,
    database,
    repository: join(dir, ".backupctl", "restic-demo"),
    env: { DEMO_RESTIC_PASSWORD: password },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
