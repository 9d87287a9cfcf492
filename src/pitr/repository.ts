/**
 * A pgbackrest() source's repository (pgBackRest's repo1) as the config file says it: a local folder, or a bucket of
 * an S3-compatible store with its keys resolved. It renders the `repo1-*` lines of config-file.ts, and names the
 * repository in plans and notes without any secret (`repositoryLabel`).
 */
import { resolveMaybeSecret, resolveSecret } from "../config/secrets.ts";
import type { PgBackRestRepository } from "../config/types.ts";

/** The repository's settings, secrets resolved. */
export type RepositorySettings =
  | { type: "local"; path: string }
  | {
    type: "s3";
    /** The endpoint's host name (no scheme, no port): pgBackRest checks the certificate against it. */
    host: string;
    port?: number;
    bucket: string;
    region: string;
    path: string;
    uriStyle: "path" | "host";
    accessKeyId: string;
    secretAccessKey: string;
    caFile?: string;
  };

/** The host and port of a validated endpoint, `https://host[:port]` or `host[:port]`. */
export function splitS3Endpoint(endpoint: string): { host: string; port?: number } {
  const [host, port] = endpoint.replace(/^https:\/\//, "").replace(/\/$/, "").split(":");
  return port === undefined ? { host } : { host, port: Number(port) };
}

/** The settings of a declared repository; `configDir` is where the backupctl config is (for file() secrets). */
export function repositorySettings(repository: PgBackRestRepository, configDir: string): RepositorySettings {
  if (repository.type !== "s3") return { type: "local", path: repository.path };
  return {
    type: "s3",
    ...splitS3Endpoint(repository.endpoint),
    bucket: repository.bucket,
    region: repository.region,
    path: repository.path,
    uriStyle: repository.uriStyle ?? "path",
    accessKeyId: resolveMaybeSecret(repository.accessKeyId, configDir),
    secretAccessKey: resolveSecret(repository.secretAccessKey, configDir),
    caFile: repository.caFile,
  };
}

/** The `repo1-*` settings of the config file's [global] section, in order. */
export function repositoryLines(repository: RepositorySettings): [string, string | number][] {
  if (repository.type === "local") return [["repo1-path", repository.path]];
  const lines: [string, string | number][] = [
    ["repo1-type", "s3"],
    ["repo1-path", repository.path],
    ["repo1-s3-endpoint", repository.host],
  ];
  if (repository.port !== undefined) lines.push(["repo1-storage-port", repository.port]);
  lines.push(
    ["repo1-s3-bucket", repository.bucket],
    ["repo1-s3-region", repository.region],
    ["repo1-s3-uri-style", repository.uriStyle],
    ["repo1-s3-key", repository.accessKeyId],
    ["repo1-s3-key-secret", repository.secretAccessKey],
  );
  if (repository.caFile !== undefined) lines.push(["repo1-storage-ca-file", repository.caFile]);
  return lines;
}

/** The repository as plans and notes name it: its folder, or `s3:<endpoint>/<bucket><path>` (no key). */
export function repositoryLabel(repository: PgBackRestRepository): string {
  if (repository.type !== "s3") return repository.path;
  const { host, port } = splitS3Endpoint(repository.endpoint);
  return `s3:https://${host}${port === undefined ? "" : `:${port}`}/${repository.bucket}${repository.path}`;
}
