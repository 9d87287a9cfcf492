/**
 * `backupctl init`: write a commented starter backup.config.ts. On a terminal it asks for the first project's name,
 * database (host, port, user) and repository; flags answer the same questions for scripts (and `--yes` asks nothing).
 * Beside the config it writes a deno.json whose import map points "backupctl" at this installation's src/mod.ts, so
 * `deno check backup.config.ts` and the editor type-check the config in any folder.
 */
import { existsSync, readFileSync, realpathSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline/promises";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { Command } from "commander";
import { hostProblem } from "../config/schema.ts";
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
  /** Host of a PostgreSQL or MySQL server, without a port. */
  host: string;
  /** The server's port (PostgreSQL, MySQL). */
  port?: number;
  /** The user backupctl connects as (PostgreSQL, MySQL). */
  user?: string;
  /** The database name (PostgreSQL, MySQL) or path (SQLite). */
  name: string;
  repository: string;
}

interface InitFlags extends Options {
  project?: string;
  database?: string;
  dbHost?: string;
  dbPort?: string;
  dbUser?: string;
  dbName?: string;
  repository?: string;
  yes?: boolean;
}

const databases = ["postgres", "mysql", "sqlite", "none"] as const;
const defaultPorts = { postgres: 5432, mysql: 3306 } as const;
const projectName = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export function define(program: Command, output: Output, done: (code: number) => void): void {
  program.command("init").description(description)
    .option("--force", "overwrite an existing file")
    .option("--project <name>", "the first project's name (asked on a terminal; default app)")
    .option("--database <type>", "its database: postgres, mysql, sqlite or none (asked on a terminal)")
    .option("--db-host <host>", "the database server's host, without a port (postgres, mysql)")
    .option("--db-port <port>", "the database server's port (default 5432 postgres, 3306 mysql)")
    .option("--db-user <user>", "the user backupctl connects as (postgres, mysql; default backup)")
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
  const given = Boolean(
    options.project || options.database || options.dbHost || options.dbPort || options.dbUser || options.dbName ||
      options.repository,
  );
  let text = starterConfig;
  if (given || (!options.yes && process.stdin.isTTY && process.stdout.isTTY)) {
    const answers = options.yes || !process.stdin.isTTY || !process.stdout.isTTY
      ? answersFrom(options)
      : await ask(options, output);
    text = configFor(answers);
  }
  writeFileSync(path, text, { mode: 0o644 });
  output.stdout(`Wrote ${path}. Edit it, then run \`backupctl validate\` and \`backupctl plan\`.\n`);
  output.stdout(writeDenoJson(dirname(path)));
  return ExitCode.ok;
}

/** This installation's public config API, symlinks resolved (the npm bin runs Deno through a link in a cache). */
export function modUrl(): string {
  return pathToFileURL(realpathSync(fileURLToPath(new URL("../mod.ts", import.meta.url)))).href;
}

/**
 * Writes `dir/deno.json` mapping "backupctl" to this installation, or adds the mapping to a deno.json that lacks
 * it; returns the line to print. backupctl itself does not need the file (it runs with its own import map): it is
 * for `deno check` and the editor.
 */
export function writeDenoJson(dir: string): string {
  const path = join(dir, "deno.json");
  const target = modUrl();
  const manual = `add "imports": { "backupctl": ${JSON.stringify(target)} } to it for \`deno check\` and your editor`;
  if (existsSync(join(dir, "deno.jsonc"))) return `${join(dir, "deno.jsonc")} exists: ${manual}.\n`;
  if (!existsSync(path)) {
    writeFileSync(path, `${JSON.stringify({ imports: { backupctl: target } }, null, 2)}\n`, { mode: 0o644 });
    return `Wrote ${path}: \`deno check backup.config.ts\` and editors with Deno's extension type-check it.\n`;
  }
  let json: { imports?: Record<string, unknown> } & Record<string, unknown>;
  try {
    json = JSON.parse(readFileSync(path, "utf8"));
    if (typeof json !== "object" || json === null || Array.isArray(json)) throw new Error("not an object");
  } catch {
    return `${path} exists and is not plain JSON: ${manual}.\n`;
  }
  const current = json.imports?.backupctl;
  if (current === target) return "";
  if (current !== undefined) {
    return `${path} maps "backupctl" to ${JSON.stringify(current)}, not this installation's ${target}: ` +
      "change it if you moved or reinstalled backupctl.\n";
  }
  json.imports = { ...json.imports, backupctl: target };
  writeFileSync(path, `${JSON.stringify(json, null, 2)}\n`);
  return `Added "backupctl" to the imports of ${path}.\n`;
}

/** "db:5432" for a host: the fix, naming the flags (scripts) or the answers (terminal). */
function checkHost(host: string, asFlags: boolean): void {
  const problem = hostProblem(host);
  if (!problem) return;
  const split = /^\[?([^\]]*?)\]?:(\d+)$/.exec(host);
  if (asFlags && split && hostProblem(split[1]) === undefined) {
    throw new UsageError(`--db-host: "${host}" includes a port: pass --db-host ${split[1]} --db-port ${split[2]}`);
  }
  throw new UsageError(`--db-host: ${problem}`);
}

function parsePort(text: string): number | undefined {
  return /^\d{1,5}$/.test(text) && Number(text) >= 1 && Number(text) <= 65535 ? Number(text) : undefined;
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
  const server = database === "postgres" || database === "mysql";
  const host = flags.dbHost ?? defaults.host;
  if (server) checkHost(host, true);
  let port: number | undefined;
  if (server) {
    port = flags.dbPort === undefined ? defaultPorts[database] : parsePort(flags.dbPort);
    if (port === undefined) throw new UsageError(`--db-port: expected an integer 1–65535, got "${flags.dbPort}"`);
  }
  const user = server ? flags.dbUser ?? "backup" : undefined;
  if (user === "") throw new UsageError("--db-user: expected a user name, got an empty one");
  return {
    project,
    database,
    host,
    port,
    user,
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
    const server = database === "postgres" || database === "mysql";
    const defaults = answersFrom({ ...flags, project, database, dbHost: undefined, dbPort: undefined });
    let host = "";
    let port: number | undefined;
    let user: string | undefined;
    if (server) {
      let portDefault = flags.dbPort ?? String(defaultPorts[database]);
      const answer = await question("Database host (name or address, no port)", flags.dbHost ?? defaults.host, (a) => {
        const split = /^\[?([^\]]*?)\]?:(\d+)$/.exec(a);
        if (split && hostProblem(split[1]) === undefined && parsePort(split[2]) !== undefined) return undefined;
        return hostProblem(a);
      });
      const split = hostProblem(answer) ? /^\[?([^\]]*?)\]?:(\d+)$/.exec(answer) : null;
      host = split ? split[1] : answer;
      if (split) {
        portDefault = split[2];
        output.stdout(`  the port is asked next: host ${host}, port ${portDefault}\n`);
      }
      port = Number(
        await question("Database port", portDefault, (a) => parsePort(a) ? undefined : "an integer 1–65535"),
      );
      user = await question("Database user", flags.dbUser ?? "backup", (a) => a ? undefined : "required");
    }
    const name = database === "none"
      ? ""
      : await question(database === "sqlite" ? "SQLite file" : "Database name", defaults.name, (a) =>
        a ? undefined : "required");
    const repository = await question(
      "Repository URL (a path, sftp:user@host:/path, rest:https://…, s3:…)",
      defaults.repository,
      (a) => a ? undefined : "required",
    );
    return { project, database, host, port, user, name, repository };
  } finally {
    prompt.close();
  }
}

/** A commented config for the answers; secrets as env() references the operator exports. */
export function configFor(answers: InitAnswers): string {
  const upper = answers.project.toUpperCase().replace(/[^A-Z0-9]/g, "_");
  const server = answers.database === "postgres" || answers.database === "mysql"
    ? `host: ${JSON.stringify(answers.host)}, port: ${answers.port ?? defaultPorts[answers.database]}, ` +
      `database: ${JSON.stringify(answers.name)}, user: ${JSON.stringify(answers.user ?? "backup")}, ` +
      `password: env("${upper}_DB_PASSWORD")`
    : "";
  const source = {
    postgres: `postgres({ ${server} }), // pg_dump -Fc, streamed`,
    mysql: `mysql({ ${server} }), // mariadb-dump --single-transaction, streamed`,
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
