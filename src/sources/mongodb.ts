/**
 * MongoDB: `mongodump --archive` streamed to restic. The password (and a URI, which may embed credentials) go
 * through a private YAML config file (`--config`), never argv. mongodump is not a Debian package: install the
 * MongoDB Database Tools. backupctl's tests run a stand-in `mongodump` that records its arguments (see docs).
 */
import { resolveMaybeSecret, resolveSecret } from "../config/secrets.ts";
import type { MongodbSource } from "../config/types.ts";
import type { SourceContext, StreamInput } from "./types.ts";
import { writePrivateFile } from "../exec/private-file.ts";

/** A YAML double-quoted scalar. */
function yamlString(value: string): string {
  return JSON.stringify(value);
}

export function mongodbInput(source: MongodbSource & { name: string }, context: SourceContext): StreamInput {
  const settings: string[] = [];
  if (source.uri !== undefined) settings.push(`uri: ${yamlString(resolveMaybeSecret(source.uri, context.configDir))}`);
  if (source.password) settings.push(`password: ${yamlString(resolveSecret(source.password, context.configDir))}`);
  const config = settings.length > 0
    ? writePrivateFile(context.privateDir, "mongodump.yaml", `${settings.join("\n")}\n`)
    : undefined;
  const argv = ["mongodump", "--archive", "--quiet"];
  if (config) argv.push(`--config=${config.path}`);
  if (source.uri === undefined) {
    if (source.host) argv.push(`--host=${source.host}`);
    if (source.port) argv.push(`--port=${source.port}`);
  }
  if (source.user) argv.push(`--username=${source.user}`);
  if (source.authenticationDatabase) argv.push(`--authenticationDatabase=${source.authenticationDatabase}`);
  if (source.database) argv.push(`--db=${source.database}`);
  argv.push(...(source.options ?? []));
  return {
    kind: "stream",
    argv,
    filename: `${source.name}.archive`,
    allowEmpty: source.allowEmpty ?? false,
    package: "mongodb-database-tools (from MongoDB, not Debian)",
    // The archive format starts with its magic number 0x8199e26d (little endian).
    check: (head) =>
      head.length >= 4 && head[0] === 0x6d && head[1] === 0xe2 && head[2] === 0x99 && head[3] === 0x81
        ? undefined
        : "it is not a mongodump archive (magic number missing)",
    cleanup: config?.remove,
  };
}
