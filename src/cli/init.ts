/** `backupctl init`: write a commented starter backup.config.ts. */
import { existsSync, writeFileSync } from "node:fs";
import type { Command } from "commander";
import { ExitCode, UsageError } from "../errors.ts";
import { configPath, type GlobalOptions, type Output } from "./context.ts";

export const description = "Write a commented starter backup.config.ts (never overwrites without --force)";

interface Options extends GlobalOptions {
  force?: boolean;
}

export const starterConfig =
  `// backupctl configuration: review changes to this file like code. Reference: docs/configuration.md
import { defineConfig, env, files, restic, sqlite } from "backupctl";

export default defineConfig({
  // Time zone the schedules are read in (IANA name); a project may set its own.
  timezone: "UTC",

  // Named restic repositories. Secrets are references: env("NAME") or file(PATH), never values.
  repositories: {
    local: restic({ url: "/srv/restic/main", password: env("RESTIC_PASSWORD") }),
  },

  projects: {
    app: {
      schedule: "0 3 * * *", // every day at 03:00
      sources: [
        sqlite({ path: "/srv/app/app.db" }), // consistent copy while the app runs
        files({ paths: ["/srv/app/uploads"], exclude: ["*.tmp"] }),
      ],
      repositories: ["local"], // the first receives the backup; later ones get copies
      retention: { last: 3, daily: 7, weekly: 4, monthly: 12 },
    },
  },
});
`;

export function define(program: Command, output: Output, done: (code: number) => void): void {
  program.command("init").description(description)
    .option("--force", "overwrite an existing file")
    .action((_options, command: Command) => done(run(command.optsWithGlobals<Options>(), output)));
}

export function run(options: Options, output: Output): number {
  const path = configPath(options);
  if (existsSync(path) && !options.force) {
    throw new UsageError(`${path} already exists; pass --force to overwrite it`);
  }
  writeFileSync(path, starterConfig, { mode: 0o644 });
  output.stdout(`Wrote ${path}. Edit it, then run \`backupctl validate\` and \`backupctl plan\`.\n`);
  return ExitCode.ok;
}
