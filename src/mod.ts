/**
 * backupctl's public configuration API: what a `backup.config.ts` imports as `"backupctl"`.
 *
 * @example
 * ```ts
 * import { defineConfig, env, files, restic, sqlite } from "backupctl";
 *
 * export default defineConfig({
 *   repositories: { local: restic({ url: "/srv/restic", password: env("RESTIC_PASSWORD") }) },
 *   projects: {
 *     app: {
 *       schedule: "0 3 * * *",
 *       sources: [sqlite({ path: "/srv/app/app.db" }), files({ paths: ["/srv/app/uploads"] })],
 *       repositories: ["local"],
 *       retention: { daily: 7, weekly: 4 },
 *     },
 *   },
 * });
 * ```
 * @module
 */
export {
  age,
  command,
  defineConfig,
  discord,
  email,
  env,
  file,
  files,
  gpg,
  healthchecks,
  matrix,
  mongodb,
  mysql,
  ntfy,
  pagerDuty,
  pgbackrest,
  postgres,
  pushover,
  restic,
  s3,
  slack,
  sqlite,
  teams,
  telegram,
  uptimeKuma,
  webhook,
} from "./config/helpers.ts";
export type * from "./config/types.ts";
