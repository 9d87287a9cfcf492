/**
 * MongoDB: `mongodump --archive` streamed to restic. The password (and a URI, which may embed credentials) go
 * through a private YAML config file (`--config`), never argv. mongodump is not a Debian package: install the
 * MongoDB Database Tools. backupctl's tests run a stand-in `mongodump` that records its arguments (see docs).
 *
 * Inside a container (`container:`) a file of this host does not exist: the same YAML goes into the exec's
 * environment (BACKUPCTL_MONGODUMP_CONFIG, by name: sources/container.ts), and a POSIX shell in the container pipes it
 * to `mongodump --config=/dev/stdin` (mongodump reads nothing else from its standard input when it writes an archive
 * to its standard output), removing the variable from mongodump's own environment.
 */
import { resolveMaybeSecret, resolveSecret } from "../config/secrets.ts";
import type { MongodbSource } from "../config/types.ts";
import type { SourceContext, StreamInput } from "./types.ts";
import { writePrivateFile } from "../exec/private-file.ts";
import { containerArgv, containerPackage } from "./container.ts";

/** The variable that carries mongodump's config into a container. */
const configVariable = "BACKUPCTL_MONGODUMP_CONFIG";

/** A YAML double-quoted scalar. */
function yamlString(value: string): string {
  return JSON.stringify(value);
}

export function mongodbInput(source: MongodbSource & { name: string }, context: SourceContext): StreamInput {
  const settings: string[] = [];
  if (source.uri !== undefined) settings.push(`uri: ${yamlString(resolveMaybeSecret(source.uri, context.configDir))}`);
  if (source.password) settings.push(`password: ${yamlString(resolveSecret(source.password, context.configDir))}`);
  const yaml = settings.length > 0 ? `${settings.join("\n")}\n` : undefined;
  const inContainer = source.container !== undefined;
  const config = yaml !== undefined && !inContainer
    ? writePrivateFile(context.privateDir, "mongodump.yaml", yaml)
    : undefined;
  const argv = ["--archive", "--quiet"];
  if (config) argv.push(`--config=${config.path}`);
  if (source.uri === undefined) {
    if (source.host) argv.push(`--host=${source.host}`);
    if (source.port) argv.push(`--port=${source.port}`);
  }
  if (source.user) argv.push(`--username=${source.user}`);
  if (source.authenticationDatabase) argv.push(`--authenticationDatabase=${source.authenticationDatabase}`);
  if (source.database) argv.push(`--db=${source.database}`);
  argv.push(...(source.options ?? []));
  const env: Record<string, string> = {};
  let program = ["mongodump", ...argv];
  if (inContainer && yaml !== undefined) {
    env[configVariable] = yaml;
    const script =
      `printf '%s' "$${configVariable}" | { unset ${configVariable}; exec mongodump --config=/dev/stdin "$@"; }`;
    program = ["sh", "-c", script, "mongodump", ...argv];
  }
  return {
    kind: "stream",
    argv: containerArgv(source, program, env),
    env: inContainer ? env : undefined,
    filename: `${source.name}.archive`,
    allowEmpty: source.allowEmpty ?? false,
    package: containerPackage(source, "mongodb-database-tools (from MongoDB, not Debian)"),
    // The archive format starts with its magic number 0x8199e26d (little endian).
    check: (head) =>
      head.length >= 4 && head[0] === 0x6d && head[1] === 0xe2 && head[2] === 0x99 && head[3] === 0x81
        ? undefined
        : "it is not a mongodump archive (magic number missing)",
    cleanup: config?.remove,
  };
}
