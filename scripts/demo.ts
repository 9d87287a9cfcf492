/**
 * The demo: creates a small SQLite database and a folder of files under demo/ (when absent), then runs
 * `backupctl plan`, `backupctl apply` and `backupctl plan` again with backup.config.ts, printing each.
 * The repository password comes from DEMO_RESTIC_PASSWORD (default "backupctl-demo").
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ensureTools } from "./ensure-tools.ts";
import { denoBinary, root } from "./runtimes.ts";

ensureTools(["restic", "sqlite3"]);

const demo = join(root, "demo");
const database = join(demo, "app.db");
const uploads = join(demo, "uploads");
mkdirSync(uploads, { recursive: true });
if (!existsSync(database)) {
  const sql = `
    CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL);
    CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers(id), total_cents INTEGER, created_at TEXT);
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200)
      INSERT INTO customers (name, email) SELECT 'customer ' || i, 'customer' || i || '@example.com' FROM n;
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
      INSERT INTO orders (customer_id, total_cents, created_at)
      SELECT 1 + (i % 200), (i * 37) % 10000, datetime('2026-01-01', '+' || i || ' hours') FROM n;`;
  const created = spawnSync("sqlite3", [database], { input: sql, stdio: ["pipe", "inherit", "inherit"] });
  if (created.status !== 0) process.exit(1);
}
for (
  const [name, text] of [["invoice-0001.txt", "Invoice 0001\nTotal: 12.50 EUR\n"], [
    "logo.svg",
    "<svg xmlns='http://www.w3.org/2000/svg'/>\n",
  ], ["upload.tmp", "excluded by the config\n"]]
) {
  const path = join(uploads, name);
  if (!existsSync(path)) writeFileSync(path, text);
}

const env = { ...process.env, DEMO_RESTIC_PASSWORD: process.env.DEMO_RESTIC_PASSWORD || "backupctl-demo" };
const steps: [string, string[]][] = [
  ["1. What is due? (backupctl plan)", ["plan"]],
  ["2. Do it (backupctl apply)", ["apply"]],
  ["3. And now? (backupctl plan)", ["plan"]],
];
for (const [title, args] of steps) {
  console.log(`\n\x1b[1m${title}\x1b[0m\n`);
  const result = spawnSync(
    denoBinary(),
    ["run", "-A", "--quiet", join(root, "src/main.ts"), "--config", join(root, "backup.config.ts"), ...args],
    { cwd: root, env, stdio: "inherit" },
  );
  if (result.status !== 0) {
    console.error(`\nbackupctl ${args.join(" ")} exited with ${result.status}`);
    process.exit(result.status ?? 1);
  }
}
console.log("\nNext: `npx -y deno task backupctl snapshots` lists the inventory, `… status` shows each project.");
