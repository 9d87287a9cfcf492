/**
 * The point-in-time-recovery source as the engine (src/pitr/) receives it: a `pgbackrest()` source of the config,
 * validated and normalised (its name defaulted to the stanza, its project attached). The config owns the schema
 * (src/config/schema-sources.ts); this is the shape everything after loading works with.
 */
import type { PgBackRestSource } from "../config/types.ts";

/** A validated pgbackrest() source with its name. */
export type PitrSource = PgBackRestSource & { name: string };

/** The backup types pgBackRest makes, each on its own schedule. */
export const pitrBackupTypes = ["full", "diff", "incr"] as const;
export type PitrBackupType = (typeof pitrBackupTypes)[number];
