/**
 * The configuration schema of restic's typed options: bandwidth, compression and pack size (on a repository, or a
 * project's `restic`), the CPU and I/O priority of the programs a backup runs (`nice`, `ionice`), what a files source
 * leaves out, the guarded `extraArgs`, and S3 credentials. The repository, project and files schemas spread these
 * shapes in; restic-args.ts holds the extraArgs guard.
 */
import { z } from "zod";
import { describeValue } from "./issues.ts";
import { extraArgsProblems } from "./restic-args.ts";
import { maybeSecret, nonEmpty, secretRef, strict } from "./schema-values.ts";

/** An integer in [min, max], its every failure saying what to write. */
function bounded(what: string, min: number, max: number) {
  const error = (issue: { input?: unknown }) =>
    `expected ${what}, an integer ${min}–${max}, got ${describeValue(issue.input)}`;
  return z.number({ error }).int({ error }).min(min, { error }).max(max, { error });
}

/** Bandwidth, compression and pack size: on a repository, and in a project's `restic` (which wins). */
export const resticTuningShape = {
  limitUpload: bounded("KiB/s", 1, 10_000_000).optional().describe(
    "Upload limit in KiB/s (`--limit-upload`), e.g. `2048` for 2 MiB/s",
  ),
  limitDownload: bounded("KiB/s", 1, 10_000_000).optional().describe(
    "Download limit in KiB/s (`--limit-download`)",
  ),
  compression: z.enum(["auto", "max", "off"]).optional().describe(
    "restic compression mode (`--compression`; default restic's own, `auto`). Needs a repository of format version " +
      '2 (what `backupctl apply` creates): on a version 1 repository `"auto"` and `"max"` fail the backup, since ' +
      "restic 0.14 would ignore them silently",
  ),
  packSize: bounded("MiB", 4, 128).optional().describe(
    "Target size of the pack files restic writes, in MiB (`--pack-size`, 4–128; restic's default is 16)",
  ),
  readConcurrency: bounded("a number of files", 1, 256).optional().describe(
    "Files restic reads at once while backing up (`restic backup --read-concurrency`; restic 0.15 or later: " +
      "restic 0.14 fails the backup with a message saying so)",
  ),
};

const ioniceSchema = strict({
  class: z.enum(["idle", "best-effort"], {
    error: (issue) =>
      `expected "idle" (I/O only when the disk is otherwise idle) or "best-effort", got ${describeValue(issue.input)}` +
      (issue.input === "realtime" ? ": the realtime class can starve every other program of I/O" : ""),
  }).describe('The I/O scheduling class: `"idle"` or `"best-effort"` (`ionice -c 3` / `-c 2`)'),
  level: bounded("an I/O priority level", 0, 7).optional().describe(
    "Priority within `best-effort`, 0 (highest) to 7 (lowest) (`ionice -n`); the idle class has none",
  ),
}, 'an ionice setting such as { class: "idle" } or { class: "best-effort", level: 7 }').refine(
  (value) => value.class !== "idle" || value.level === undefined,
  { error: () => 'the idle class has no level: remove level, or use class: "best-effort"' },
);

/** CPU and I/O priority of `what` (`nice -n N ionice -c C -n L PROGRAM …`). */
export function priorityShape(what: string) {
  return {
    nice: bounded("a niceness", 0, 19).optional().describe(
      `CPU niceness of ${what}, 0–19 (19 yields the most), applied with \`nice -n\``,
    ),
    ionice: ioniceSchema.optional().describe(`I/O priority of ${what}, applied with \`ionice\` (util-linux)`),
  };
}

/** restic's extra arguments, each refused when it would leak or bypass (see restic-args.ts). */
export function extraArgs(what: string, example: string) {
  return z.array(
    z.string({
      error: (issue) =>
        typeof issue.input === "object" && issue.input !== null
          ? "extraArgs are plain words on restic's command line, which every user of the host can read: a secret " +
            "reference cannot go there (secrets go in env, or the typed settings such as s3)"
          : `expected a string, got ${describeValue(issue.input)}`,
    }),
  ).superRefine((args, ctx) => {
    for (const { index, message } of extraArgsProblems(args)) {
      ctx.addIssue({ code: "custom", path: [index], message });
    }
  }).optional().describe(
    `Extra arguments for ${what}, as they are, e.g. \`${example}\`. Visible on the ` +
      "command line, so never a secret; arguments that would leak or bypass are refused (`-r`/`--repo*`, " +
      "`-p`/`--password*`, `--key-hint`, `-o`/`--option`, `--no-lock`, `--insecure-tls`, `--tag`, `--host`, " +
      "`--time`, `--dry-run`, `--stdin*`, and the flags that have a typed setting)",
  );
}

/** What a files source leaves out, read by `restic backup` itself. */
export const filesResticShape = {
  excludeCaches: z.boolean().optional().describe(
    "Leave out folders marked as caches by a `CACHEDIR.TAG` file (`--exclude-caches`)",
  ),
  oneFileSystem: z.boolean().optional().describe(
    "Stay on the file system of each path: mounts below it are left out (`--one-file-system`)",
  ),
  excludeIfPresent: z.array(nonEmpty).min(1).optional().describe(
    'Leave out the contents of folders holding a file of this name (`--exclude-if-present`), e.g. `[".nobackup"]`; ' +
      "`NAME:HEADER` also checks the file's first bytes",
  ),
  excludeLargerThan: z.string().regex(/^\d+[kKmMgGtT]?$/, {
    error: (issue) =>
      `expected a size such as "500M" or "2G" (k, m, g, t; no unit = bytes), got ${describeValue(issue.input)}`,
  }).optional().describe('Leave out files larger than this (`--exclude-larger-than`), e.g. `"500M"`'),
  excludeFile: z.union([nonEmpty, z.array(nonEmpty).min(1)]).optional().describe(
    "Files of exclude patterns, one per line (`--exclude-file`); relative paths start at the config's folder. A " +
      "missing file fails the backup",
  ),
  extraArgs: extraArgs("this source's `restic backup`", '["--iexclude", "*.BAK"]'),
};

/** S3 credentials and addressing, for an `s3:` repository. */
export const s3Schema = strict({
  accessKeyId: maybeSecret.describe(
    "The access key id, given to restic as `AWS_ACCESS_KEY_ID` in its environment (a plain string or a secret " +
      "reference)",
  ),
  secretAccessKey: secretRef.describe("The secret access key, given to restic as `AWS_SECRET_ACCESS_KEY`"),
  sessionToken: secretRef.optional().describe(
    "A session token of temporary credentials, given to restic as `AWS_SESSION_TOKEN`",
  ),
  region: z.string().regex(/^[a-z0-9-]+$/, {
    error: (issue) => `expected a region name such as "eu-central-1", got ${describeValue(issue.input)}`,
  }).optional().describe('The bucket\'s region (`-o s3.region=…`), e.g. `"eu-central-1"`'),
  pathStyle: z.boolean().optional().describe(
    "Address the bucket in the path (`http://host/bucket/…`: `-o s3.bucket-lookup=path`), as MinIO and most " +
      "self-hosted servers need; `false` forces the DNS style (default: restic's `auto`)",
  ),
}, 's3 settings such as { accessKeyId: env("AWS_ACCESS_KEY_ID"), secretAccessKey: env("AWS_SECRET_ACCESS_KEY") }');
