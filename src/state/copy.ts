/**
 * Moving a state between databases (`backupctl state push` / `state pull`): every table copied row for row, in one
 * transaction on the target that either commits a complete, verified copy or leaves the target as it was.
 */
import type { Kysely } from "kysely";
import { sql } from "kysely";
import type { StateDialect } from "./dialect.ts";
import type { Database } from "./schema.ts";

/** Every table of the state, parents before the tables that refer to them (stages → runs), with its key. */
export const stateTables: { table: keyof Database; key: string[] }[] = [
  // Before stages: its rows are copied first, then the target's triggers keep it as stages arrive (an upsert).
  { table: "latest_stages", key: ["type", "status", "project", "source", "repository"] },
  { table: "meta", key: ["key"] },
  { table: "runs", key: ["id"] },
  { table: "stages", key: ["id"] },
  { table: "snapshots", key: ["repository", "id"] },
  { table: "repositories", key: ["name"] },
  { table: "outbox", key: ["id"] },
  { table: "retention_policies", key: ["project", "source", "repository"] },
  { table: "applied_plans", key: ["plan_id"] },
  { table: "runners", key: ["name"] },
  { table: "config_seen", key: ["fingerprint"] },
  { table: "leases", key: ["key"] },
  { table: "fenced_writes", key: ["id"] },
];

/** The tables whose ids the database generates. */
const identities = [
  { table: "stages", column: "id" },
  { table: "outbox", column: "id" },
  { table: "fenced_writes", column: "id" },
];

/** Rows read and written at a time: a state of a million audit rows is never held in memory at once. */
const pageSize = 500;

/** One side of a copy: an open state database and its dialect. */
export interface CopyEnd {
  db: Kysely<Database>;
  dialect: StateDialect;
}

/** Rows per table, as copied and as counted in the target afterwards. */
export type RowCounts = Record<string, number>;

/** Why a target is not empty: what it holds beyond a fresh state's own meta rows, or undefined when it is empty. */
export async function targetContents(db: Kysely<Database>): Promise<string | undefined> {
  const counts = await countRows(db);
  // meta holds a fresh state's own rows; latest_stages only repeats what stages hold.
  const held = Object.entries(counts).filter(([table, n]) => table !== "meta" && table !== "latest_stages" && n > 0)
    .map(([table, n]) => `${n} ${table}`);
  const serial = await db.selectFrom("meta").select("value").where("key", "=", "serial").executeTakeFirst();
  if (serial && serial.value !== "0") held.push(`serial ${serial.value}`);
  return held.length > 0 ? held.join(", ") : undefined;
}

/**
 * Copies every row of `from` into `to`, replacing what `to` holds, in one write transaction on `to`; `from` is read in
 * one consistent snapshot. After the inserts the target's rows are counted in the same transaction: a count that
 * differs from the source's throws, and the target is rolled back to what it was.
 */
export async function copyState(from: CopyEnd, to: CopyEnd): Promise<RowCounts> {
  return await from.dialect.readTransaction(from.db, async (source) => {
    const expected = await countRows(source);
    return await to.dialect.writeTransaction(to.db, async (target) => {
      for (const { table } of [...stateTables].reverse()) await sql`DELETE FROM ${sql.table(table)}`.execute(target);
      for (const { table, key } of stateTables) {
        for (let offset = 0;; offset += pageSize) {
          const rows = await sql<Record<string, unknown>>`SELECT * FROM ${sql.table(table)}
            ORDER BY ${sql.join(key.map((column) => sql.ref(column)))} LIMIT ${pageSize} OFFSET ${offset}`
            .execute(source);
          if (rows.rows.length === 0) break;
          // Plain objects, whatever the source's driver made of its rows.
          await target.insertInto(table).values(rows.rows.map((row) => ({ ...row })) as never).execute();
          if (rows.rows.length < pageSize) break;
        }
      }
      await to.dialect.restartIdentities(target, identities);
      const copied = await countRows(target);
      const differ = stateTables.filter(({ table }) => copied[table] !== expected[table]);
      if (differ.length > 0) {
        throw new Error(
          `the copy is incomplete, nothing was changed: ${
            differ.map(({ table }) => `${table} ${copied[table]} of ${expected[table]} rows`).join(", ")
          }`,
        );
      }
      return copied;
    });
  });
}

/** Rows per table of the state. */
export async function countRows(db: Kysely<Database>): Promise<RowCounts> {
  const counts: RowCounts = {};
  for (const { table } of stateTables) {
    const row = await sql<{ n: number | string }>`SELECT count(*) AS n FROM ${sql.table(table)}`.execute(db);
    counts[table] = Number(row.rows[0]?.n ?? 0);
  }
  return counts;
}
