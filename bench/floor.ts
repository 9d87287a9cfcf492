/**
 * The least an apply does before it can start restic, and nothing else: Deno with its Node layer, the TypeScript
 * config (which imports backupctl's helpers), a validation with zod, the state database through Kysely and
 * node:sqlite, a schedule through cron-parser, one child process. bench/startup.ts times it as the floor under the
 * fixed-cost rows (bench/pipeline.ts): what no apply on this runtime, with these libraries, can go below.
 * Usage: floor.ts CONFIG STATE_DB
 */
import { spawn } from "node:child_process";
import { Kysely, sql } from "kysely";
import { CronExpressionParser } from "cron-parser";
import { z } from "zod";
import { nodeSqliteDialect } from "../src/runtime/sqlite-node.ts";

const [configPath, statePath] = process.argv.slice(2);
const config = (await import(configPath)).default;
z.object({ projects: z.record(z.string(), z.object({ schedule: z.string() }).passthrough()) }).passthrough()
  .parse(config);
const db = new Kysely<Record<string, never>>({ dialect: nodeSqliteDialect(statePath, "read-only") });
await sql`SELECT count(*) FROM runs`.execute(db);
CronExpressionParser.parse("0 3 * * *", { tz: "UTC", currentDate: new Date() }).prev();
spawn("true", { stdio: "ignore" }).on("exit", (code) => process.exit(code ?? 1));
