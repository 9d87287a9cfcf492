/**
 * `backupctl init`: write a commented starter backup.config.ts. On a terminal it asks for the first project's name,
 * database and repository; flags answer the same questions for scripts (and `--yes` asks nothing).
 */
import { existsSync, writeFileSync } from "node:fs";
import { createInterface } from "node:readline/promises";
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

/** What `init` asks (or takes from flags): one project, its database and where its backups go. */
export interface InitAnswers {
  project: string;
  database: "postgres" | "mysql" | "sqlite" | "none";
  /** Host of a PostgreSQL or MySQL server; the file of an SQLite database. */
  host: string;
  /** The database name (PostgreSQL, MySQL) or path (SQLite). */
  name: string;
  repository: string;
}

interface InitFlags extends Options {
  project?: string;
  database?: string;
  dbHost?: string;
  dbName?: string;
  repository?: string;
  yes?: boolean;
}

const databases = ["postgres", "mysql", "sqlite", "none"] as const;
const projectName = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export function define(program: Command, output: Output, done: (code: number) => void): void {
  program.command("init").description(description)
    .option("--force", "overwrite an existing file")
    .option("--project <name>", "the first project's name (asked on a terminal; default app)")
    .option("--database <type>", "its database: postgres, mysql, sqlite or none (asked on a terminal)")
    .option("--db-host <host>", "the database server's host (postgres, mysql)")
    .option("--db-name <name>", "the database name (postgres, mysql) or the SQLite file's path")
    .option("--repository <url>", "where backups go: a path, sftp:user@host:/path, rest:https://…, s3:…")
    .option("-y, --yes", "ask nothing: take the flags and defaults (also when stdin is not a terminal)")
    .action(async (_options, command: Command) => done(await run(command.optsWithGlobals<InitFlags>(), output)));
}

export async function run(options: InitFlags, output: Output): Promise<number> {
  const path = configPath(options);
  if (existsSync(path) && !options.force) {
    throw new UsageError(`${path} already exists; pass --force to overwrite it`);
  }
  const given = Boolean(options.project || options.database || options.dbHost || options.dbName || options.repository);
  let text = starterConfig;
  if (given || (!options.yes && process.stdin.isTTY && process.stdout.isTTY)) {
    const answers = options.yes || !process.stdin.isTTY || !process.stdout.isTTY
      ? answersFrom(options)
      : await ask(options, output);
    text = configFor(answers);
  }
  writeFileSync(path, text, { mode: 0o644 });
  output.stdout(`Wrote ${path}. Edit it, then run \`backupctl validate\` and \`backupctl plan\`.\n`);
  return ExitCode.ok;
}

/** The answers from flags and defaults, checked. */
export function answersFrom(flags: Partial<InitFlags>): InitAnswers {
  const database = (flags.database ?? "sqlite") as InitAnswers["database"];
  if (!databases.includes(database)) {
    throw new UsageError(`--database: expected postgres, mysql, sqlite or none, got "${flags.database}"`);
  }
  const project = flags.project ?? "app";
  if (!projectName.test(project)) {
    throw new UsageError(`--project: "${project}" is not a valid name (letters, digits, . _ -, at most 64)`);
  }
  const defaults = {
    postgres: { host: "localhost", name: project },
    mysql: { host: "localhost", name: project },
    sqlite: { host: "", name: `/srv/${project}/${project}.db` },
    none: { host: "", name: "" },
  }[database];
  return {
    project,
    database,
    host: flags.dbHost ?? defaults.host,
    name: flags.dbName ?? defaults.name,
    repository: flags.repository ?? "/srv/restic/main",
  };
}

/** Asks on the terminal, offering the flags (or defaults) as the answers to accept with Enter. */
async function ask(flags: InitFlags, output: Output): Promise<InitAnswers> {
  const prompt = createInterface({ input: process.stdin, output: process.stdout });
  try {
    const question = async (text: string, fallback: string, valid: (answer: string) => string | undefined) => {
      for (;;) {
        const answer = (await prompt.question(`${text} [${fallback}]: `)).trim() || fallback;
        const problem = valid(answer);
        if (!problem) return answer;
        output.stdout(`  ${problem}\n`);
      }
    };
    const project = await question(
      "Project name",
      flags.project ?? "app",
      (a) => projectName.test(a) ? undefined : "letters, digits, . _ - (at most 64), starting with a letter or digit",
    );
    const database = await question(
      "Database (postgres, mysql, sqlite, none)",
      flags.database ?? "postgres",
      (a) => (databases as readonly string[]).includes(a) ? undefined : "one of postgres, mysql, sqlite, none",
    ) as InitAnswers["database"];
    const defaults = answersFrom({ ...flags, project, database });
    const host = database === "postgres" || database === "mysql"
      ? await question("Database host", defaults.host, () => undefined)
      : "";
    const name = database === "none"
      ? ""
      : await question(database === "sqlite" ? "SQLite file" : "Database name", defaults.name, (a) =>
        a ? undefined : "required");
    const repository = await question(
      "Repository URL (a path, sftp:user@host:/path, rest:https://…, s3:…)",
      defaults.repository,
      (a) => a ? undefined : "required",
    );
    return { project, database, host, name, repository };
  } finally {
    prompt.close();
  }
}

/** A commented config for the answers; secrets as env() references the operator exports. */
export function configFor(answers: InitAnswers): string {
  const upper = answers.project.toUpperCase().replace(/[^A-Z0-9]/g, "_");
  const source = {
    postgres: `postgres({ host: ${JSON.stringify(answers.host)}, database: ${JSON.stringify(answers.name)}, ` +
      `user: "backup", password: env("${upper}_DB_PASSWORD") }), // pg_dump -Fc, streamed`,
    mysql: `mysql({ host: ${JSON.stringify(answers.host)}, database: ${JSON.stringify(answers.name)}, ` +
      `user: "backup", password: env("${upper}_DB_PASSWORD") }), // mariadb-dump --single-transaction, streamed`,
    sqlite: `sqlite({ path: ${JSON.stringify(answers.name)} }), // a consistent copy while the app runs`,
    none: "",
  }[answers.database];
  const helpers = ["defineConfig", "env", "files", "restic", ...(answers.database === "none" ? [] : [answers.database])]
    .sort();
  return `// backupctl configuration: review changes to this file like code. Reference: docs/configuration.md
import { ${helpers.join(", ")} } from "backupctl";

export default defineConfig({
  // Time zone the schedules are read in (IANA name); a project may set its own.
  timezone: "UTC",

  // Named restic repositories. Secrets are references: env("NAME") or file(PATH), never values.
  repositories: {
    main: restic({ url: ${JSON.stringify(answers.repository)}, password: env("RESTIC_PASSWORD") }),
  },

  projects: {
    ${/^[A-Za-z_$][\w$]*$/.test(answers.project) ? answers.project : JSON.stringify(answers.project)}: {
      schedule: "0 3 * * *", // every day at 03:00
      sources: [
${
    source
      ? `        ${source}
`
      : ""
  }        files({ paths: ["/srv/${answers.project}/uploads"] }), // edit: folders to back up, or remove
      ],
      repositories: ["main"], // the first receives the backup; later ones get copies
      retention: { last: 3, daily: 7, weekly: 4, monthly: 12 },
    },
  },
});
`;
}
