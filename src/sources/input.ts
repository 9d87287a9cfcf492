/**
 * What a source gives restic: either a stream from a producer program (dumps) or paths restic reads itself (files).
 * Pre-checks happen here, so a missing file fails with a clear message before any process starts.
 */
import type { NamedSource } from "../config/normalize.ts";
import { SourceError } from "../errors.ts";
import { commandInput } from "./command.ts";
import { filesInput } from "./files.ts";
import { mongodbInput } from "./mongodb.ts";
import { mysqlInput } from "./mysql.ts";
import { postgresGlobalsInput, postgresInput } from "./postgres.ts";
import { sqliteInput } from "./sqlite.ts";
import type { BackupInput, SourceContext } from "./types.ts";

export function backupInput(source: NamedSource, context: SourceContext): BackupInput {
  if (source.discovered?.unlisted !== undefined) {
    throw new SourceError(
      `source ${source.name}: the server's databases could not be listed when planning (${source.discovered.unlisted}); ` +
        "check that it runs and that the source's user may connect, then run the backup again",
    );
  }
  switch (source.type) {
    case "postgres":
      return source.part === "globals" ? postgresGlobalsInput(source, context) : postgresInput(source, context);
    case "mysql":
      return mysqlInput(source, context);
    case "sqlite":
      return sqliteInput(source, context.configDir);
    case "files":
      return filesInput(source, context.configDir);
    case "command":
      return commandInput(source, context);
    case "mongodb":
      return mongodbInput(source, context);
    default: {
      // Every declared type is handled above; this guards configs that bypassed validation.
      const unknown = source as { name: string; type: string };
      throw new SourceError(
        `source ${unknown.name}: ${unknown.type}() sources are declared but cannot be backed up by this version yet`,
      );
    }
  }
}
