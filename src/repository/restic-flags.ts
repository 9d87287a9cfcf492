/**
 * What restic is given besides its command: the global flags of every command on a repository (bandwidth,
 * compression, pack size, a CA file, `-o` options, the guarded extraArgs), the flags only a backup takes, the
 * variables of its environment that `env` and `s3` declare, and a project's own settings laid over the repository's.
 * Pure: restic.ts runs what this builds.
 */
import { isAbsolute, resolve } from "node:path";
import type { NormalizedProject } from "../config/normalize.ts";
import type { MaybeSecret, ResticRepository } from "../config/types.ts";

/**
 * The repository as one project's commands see it: the project's `restic` settings, `nice` and `ionice` win over the
 * repository's, each on its own (a project setting only limitUpload keeps the repository's compression).
 */
export function forProject(spec: ResticRepository, project: Pick<NormalizedProject, "restic" | "nice" | "ionice">) {
  const merged: ResticRepository = { ...spec };
  for (const [key, value] of Object.entries(project.restic ?? {})) {
    if (value !== undefined) Object.assign(merged, { [key]: value });
  }
  if (project.nice !== undefined) merged.nice = project.nice;
  if (project.ionice !== undefined) merged.ionice = project.ionice;
  return merged;
}

/** The `-o key=value` options: the repository's own, and what `s3` says of region and bucket lookup. */
export function resticOptions(spec: ResticRepository): Record<string, string> {
  const options: Record<string, string> = { ...(spec.options ?? {}) };
  if (spec.s3?.region !== undefined) options["s3.region"] = spec.s3.region;
  if (spec.s3?.pathStyle !== undefined) options["s3.bucket-lookup"] = spec.s3.pathStyle ? "path" : "dns";
  return options;
}

/**
 * The variables restic gets besides its repository and password: the repository's `env`, and the S3 credentials
 * (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), still as written (secret references unresolved).
 */
export function resticVariables(spec: ResticRepository): Record<string, MaybeSecret> {
  const variables: Record<string, MaybeSecret> = { ...(spec.env ?? {}) };
  if (spec.s3) {
    variables.AWS_ACCESS_KEY_ID = spec.s3.accessKeyId;
    variables.AWS_SECRET_ACCESS_KEY = spec.s3.secretAccessKey;
    if (spec.s3.sessionToken) variables.AWS_SESSION_TOKEN = spec.s3.sessionToken;
  }
  return variables;
}

/**
 * The flags every restic command on the repository takes, after the command's name. `options` defaults to the
 * repository's; a copy passes both repositories' (restic applies `-o` to either).
 */
export function globalFlags(
  spec: ResticRepository,
  configDir: string,
  options: Record<string, string> = resticOptions(spec),
): string[] {
  const flags = ["--no-cache"];
  if (spec.compression) flags.push("--compression", spec.compression);
  if (spec.packSize !== undefined) flags.push("--pack-size", String(spec.packSize));
  if (spec.limitUpload !== undefined) flags.push("--limit-upload", String(spec.limitUpload));
  if (spec.limitDownload !== undefined) flags.push("--limit-download", String(spec.limitDownload));
  if (spec.cacert !== undefined) {
    flags.push("--cacert", isAbsolute(spec.cacert) ? spec.cacert : resolve(configDir, spec.cacert));
  }
  for (const [key, value] of Object.entries(options)) flags.push("-o", `${key}=${value}`);
  flags.push(...(spec.extraArgs ?? []));
  return flags;
}

/** The flags only `restic backup` takes (`--read-concurrency`). */
export function backupOnlyFlags(spec: ResticRepository): string[] {
  return spec.readConcurrency === undefined ? [] : ["--read-concurrency", String(spec.readConcurrency)];
}
