/**
 * The state store's own database connection, which src/ keeps private (callers go through the store's methods).
 * Tests look at rows and connection settings (PRAGMAs) through it, and shape a state the methods cannot make.
 */
import type { Kysely } from "kysely";
import type { Database } from "../../src/state/schema.ts";
import type { StateStore } from "../../src/state/store.ts";

export function storeDb(store: StateStore): Kysely<Database> {
  // TypeScript's `private` yields to an index access: the one place tests reach past the store's interface.
  return store["db"];
}
