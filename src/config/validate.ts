/** Validation: the schema's problems plus the checks that span several keys, all reported together. */
import { ConfigError, type ConfigProblem } from "../errors.ts";
import { namePattern } from "./names.ts";
import { defaultMessage, describeValue, formatPath, suggest, toProblems } from "./issues.ts";
import { normalizeConfig, type NormalizedConfig, sourceName } from "./normalize.ts";
import type { z } from "zod";
import { configSchema } from "./schema.ts";
import type { Config } from "./types.ts";

/** Validates a loaded config value; throws ConfigError listing every problem. */
export function validateConfig(raw: unknown, file: string): NormalizedConfig {
  const parsed = configSchema.safeParse(raw, { error: defaultMessage, reportInput: true });
  const problems = parsed.success ? [] : toProblems(parsed.error.issues);
  problems.push(...crossCheck(raw));
  if (problems.length > 0 || !parsed.success) throw new ConfigError(file, dedupe(problems));
  return normalizeConfig(parsed.data);
}

function dedupe(problems: ConfigProblem[]): ConfigProblem[] {
  const seen = new Set<string>();
  return problems.filter((p) => {
    const key = `${p.path}\u0000${p.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Checks that need more than one key: references, unique names, a non-empty project list. Tolerates bad shapes. */
function crossCheck(raw: unknown): ConfigProblem[] {
  if (!isRecord(raw)) return [];
  const problems: ConfigProblem[] = [];
  const repositories = isRecord(raw.repositories) ? Object.keys(raw.repositories) : [];
  const notifiers = isRecord(raw.notifiers) ? Object.keys(raw.notifiers) : [];
  if (isRecord(raw.projects) && Object.keys(raw.projects).length === 0) {
    problems.push({ path: "projects", message: "declare at least one project" });
  }
  // A config of pgbackrest() sources alone needs no restic repository: pgBackRest keeps its own.
  const pitrOnly = isRecord(raw.projects) &&
    Object.values(raw.projects).every((project) =>
      isRecord(project) && Array.isArray(project.sources) && project.sources.length > 0 &&
      project.sources.every((source) => isRecord(source) && source.type === "pgbackrest")
    );
  if (isRecord(raw.repositories) && repositories.length === 0 && !pitrOnly) {
    problems.push({ path: "repositories", message: "declare at least one repository, e.g. local: restic({ … })" });
  }
  for (const [name, repository] of Object.entries(isRecord(raw.repositories) ? raw.repositories : {})) {
    if (isRecord(repository)) {
      checkSsh(name, repository, problems);
      checkS3(name, repository, problems);
    }
  }
  const stanzas = new Map<string, string>();
  for (const [projectName, project] of Object.entries(isRecord(raw.projects) ? raw.projects : {})) {
    if (!isRecord(project)) continue;
    const at = (...rest: (string | number)[]) => formatPath(["projects", projectName, ...rest]);
    if (Array.isArray(project.sources)) checkSourceNames(project.sources, at, problems);
    if (Array.isArray(project.repositories) && project.repositories.length === 0) {
      // pgBackRest keeps its own repository: a project of pgbackrest() sources alone needs no restic one.
      const pitrOnly = Array.isArray(project.sources) && project.sources.length > 0 &&
        project.sources.every((source) => isRecord(source) && source.type === "pgbackrest");
      if (!pitrOnly) {
        problems.push({ path: at("repositories"), message: 'a project needs at least one repository, e.g. ["local"]' });
      }
    }
    if (Array.isArray(project.sources)) checkStanzas(projectName, project.sources, stanzas, at, problems);
    if (Array.isArray(project.repositories) && isRecord(raw.repositories)) {
      checkReferences(project.repositories, repositories, "repository", "repositories", at, problems);
    }
    if (Array.isArray(project.notify)) {
      checkReferences(project.notify, notifiers, "notifier", "notify", at, problems);
    }
    if (isRecord(project.verify) && Array.isArray(project.sources)) {
      checkVerify(project.verify, project.sources.filter(isRecord), at, problems);
    }
  }
  return problems;
}

const databaseTypes = new Set(["postgres", "mysql", "sqlite"]);

/**
 * A drill names a source it can restore: a database source needs `into` (of its kind), a files or command source
 * none; without `source`, `into` picks a database source of its kind, else the first files, else command source.
 */
function checkVerify(
  verify: Record<string, unknown>,
  sources: Record<string, unknown>[],
  at: (...rest: (string | number)[]) => string,
  problems: ConfigProblem[],
): void {
  const into = isRecord(verify.into) && typeof verify.into.type === "string" ? verify.into.type : undefined;
  const listed = sources.map((s) => `${sourceName(s) ?? "?"} (${String(s.type)})`).join(", ");
  // A pgbackrest() source is drilled into a scratch cluster of its own (src/pitr/drill.ts): named, or the only kind.
  const named = typeof verify.source === "string" ? sources.find((s) => sourceName(s) === verify.source) : undefined;
  const pitrDrill = named
    ? named.type === "pgbackrest"
    : verify.source === undefined && into === undefined && sources.length > 0 &&
      sources.every((s) => s.type === "pgbackrest");
  if (pitrDrill) {
    for (const key of ["into", "sample"] as const) {
      if (verify[key] !== undefined) {
        problems.push({
          path: at("verify", key),
          message: "not for the drill of a pgbackrest() source: it restores the stanza into a scratch cluster of " +
            "its own (check and expect query it)",
        });
      }
    }
    return;
  }
  let drilled: Record<string, unknown> | undefined;
  if (typeof verify.source === "string") {
    const named = verify.source;
    // A database of a `databases: "all"` server, by its source name `<server>-<database>`.
    drilled = sources.find((s) => sourceName(s) === named) ??
      sources.find((s) => s.databases === "all" && named.startsWith(`${sourceName(s)}-`));
    if (!drilled) {
      problems.push({
        path: at("verify", "source"),
        message: `no source named ${describeValue(verify.source)} in this project (its sources: ${listed})`,
      });
      return;
    }
  } else if (into !== undefined) {
    drilled = sources.find((s) => s.type === into && s.databases !== "all");
    const server = sources.find((s) => s.type === into && s.databases === "all");
    if (!drilled && server) {
      // Which of the server's databases to drill is not known before planning: the config must say.
      problems.push({
        path: at("verify", "source"),
        message: `required: the project's ${into} source ${sourceName(server)} backs up every database of its ` +
          `server; name the one to drill, e.g. source: "${sourceName(server)}-DATABASE"`,
      });
      return;
    }
    if (!drilled) {
      problems.push({
        path: at("verify", "into"),
        message: `a ${into} scratch database, but the project has no ${into} source to drill (its sources: ${listed})`,
      });
      return;
    }
  } else if (
    (verify.check !== undefined || verify.expect !== undefined) &&
    sources.some((s) => databaseTypes.has(String(s.type)))
  ) {
    // check and expect query a restored database: the drill meant is of a database source, whose target is missing.
    problems.push({
      path: at("verify", "into"),
      message: "required: check and expect query the restored database, so name the scratch database to restore " +
        "into, made by postgres(), mysql() or sqlite() (a files or command drill takes neither)",
    });
    return;
  } else {
    drilled = sources.find((s) => s.type === "files") ?? sources.find((s) => s.type === "command");
    if (!drilled) {
      problems.push({
        path: at("verify", "into"),
        message: `required: the project has no files() or command() source to drill (its sources: ${listed}), so ` +
          "name a scratch database to restore into, made by postgres(), mysql() or sqlite()",
      });
      return;
    }
  }
  const type = String(drilled.type);
  const label = `${sourceName(drilled) ?? "?"} (${type})`;
  if (databaseTypes.has(type)) {
    if (into === undefined) {
      problems.push({
        path: at("verify", "into"),
        message: `required: the drill of ${label} restores into a scratch ${type} database, made by ${type}()`,
      });
    } else if (into !== type) {
      problems.push({
        path: at("verify", "into"),
        message: `expected a ${type}() database to drill ${label}, got ${into}()`,
      });
    }
  } else if (type === "files" || type === "command") {
    for (const key of ["into", "check", "expect"] as const) {
      if (verify[key] !== undefined) {
        problems.push({
          path: at("verify", key),
          message: `only for a database drill; the drill of ${label} has none`,
        });
      }
    }
  } else {
    problems.push({
      path: at("verify", "source"),
      message: `${label}: drills restore database, files() and command() sources only`,
    });
  }
  if (verify.sample !== undefined && type !== "files") {
    problems.push({ path: at("verify", "sample"), message: `only for a files drill; the drill of ${label} has none` });
  }
}

/** `ssh` settings fit an sftp: URL (when the URL is written out) and replace a hand-written sftp.command. */
function checkSsh(name: string, repository: Record<string, unknown>, problems: ConfigProblem[]): void {
  if (!isRecord(repository.ssh)) return;
  const at = formatPath(["repositories", name, "ssh"]);
  if (typeof repository.url === "string" && !repository.url.startsWith("sftp:")) {
    problems.push({
      path: at,
      message: "ssh settings apply to sftp: repositories only; use a url such as sftp:backup@host:/srv/restic",
    });
  }
  if (isRecord(repository.options) && "sftp.command" in repository.options) {
    problems.push({
      path: at,
      message: 'ssh settings and options["sftp.command"] both say how to connect: keep one of them',
    });
  }
}

/** The variables and options `s3` sets, which the repository's `env` and `options` must not set too. */
const s3Variables = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"];
const s3Options = { region: "s3.region", pathStyle: "s3.bucket-lookup" } as const;

function checkS3(name: string, repository: Record<string, unknown>, problems: ConfigProblem[]): void {
  if (!isRecord(repository.s3)) return;
  const at = formatPath(["repositories", name, "s3"]);
  if (typeof repository.url === "string" && !repository.url.startsWith("s3:")) {
    problems.push({
      path: at,
      message:
        "s3 settings apply to s3: repositories only; use a url such as s3:https://s3.amazonaws.com/bucket/restic",
    });
  }
  const env = isRecord(repository.env) ? repository.env : {};
  for (const variable of s3Variables.filter((key) => key in env)) {
    problems.push({
      path: formatPath(["repositories", name, "env", variable]),
      message: `s3 sets ${variable} already: remove it from env`,
    });
  }
  const options = isRecord(repository.options) ? repository.options : {};
  for (const [key, option] of Object.entries(s3Options)) {
    if (repository.s3[key] !== undefined && option in options) {
      problems.push({
        path: formatPath(["repositories", name, "options", option]),
        message: `s3.${key} sets ${option} already: keep one of them`,
      });
    }
  }
}

function checkSourceNames(
  sources: unknown[],
  at: (...rest: (string | number)[]) => string,
  problems: ConfigProblem[],
): void {
  const firstIndex = new Map<string, number>();
  sources.forEach((source, index) => {
    if (!isRecord(source) || typeof source.type !== "string") return;
    const explicit = typeof source.name === "string";
    const name = sourceName(source);
    if (name === undefined || name === "") return; // an empty database or path is reported by the schema
    if (!explicit && !namePattern.test(name)) {
      problems.push({
        path: at("sources", index),
        message: `the default source name ${describeValue(name)} is not a valid name; set name: "…" ` +
          "(letters, digits, '.', '_' or '-')",
      });
      return;
    }
    const previous = firstIndex.get(name);
    if (previous === undefined) {
      firstIndex.set(name, index);
      if (source.type === "postgres" && source.globals === true) {
        const globals = `${name}-globals`;
        if (firstIndex.has(globals)) {
          problems.push({
            path: at("sources", index, "globals"),
            message: `globals: true adds a source named "${globals}", which sources[${
              firstIndex.get(globals)
            }] already uses`,
          });
        } else firstIndex.set(globals, index);
      }
      return;
    }
    problems.push({
      path: explicit ? at("sources", index, "name") : at("sources", index),
      message: `duplicate source name ${
        describeValue(name)
      } (also sources[${previous}]); give each source a distinct name: "…"`,
    });
  });
}

/**
 * A stanza is backed up by one source only: two sources writing the same stanza into the same repository would
 * expire each other's backups.
 */
function checkStanzas(
  projectName: string,
  sources: unknown[],
  seen: Map<string, string>,
  at: (...rest: (string | number)[]) => string,
  problems: ConfigProblem[],
): void {
  sources.forEach((source, index) => {
    if (!isRecord(source) || source.type !== "pgbackrest" || typeof source.stanza !== "string") return;
    const path = repositoryKey(source.repository);
    const key = `${path}\u0000${source.stanza}`;
    const here = `projects.${projectName}.sources[${index}]`;
    const previous = seen.get(key);
    if (previous === undefined) {
      seen.set(key, here);
      return;
    }
    problems.push({
      path: at("sources", index, "stanza"),
      message: `stanza ${describeValue(source.stanza)} in ${path} is already backed up by ${previous}: one ` +
        "source per stanza (each would expire the other's backups)",
    });
  });
}

/** Where a pgbackrest() source's repository is, as text: its folder, or `s3:<endpoint>/<bucket><path>`. */
function repositoryKey(repository: unknown): string {
  if (!isRecord(repository) || typeof repository.path !== "string") return "";
  if (repository.type !== "s3") return repository.path;
  const endpoint = String(repository.endpoint).replace(/^https:\/\//, "").replace(/\/$/, "");
  return `s3:https://${endpoint}/${String(repository.bucket)}${repository.path}`;
}

function checkReferences(
  references: unknown[],
  declared: string[],
  kind: string,
  key: string,
  at: (...rest: (string | number)[]) => string,
  problems: ConfigProblem[],
): void {
  const seen = new Set<string>();
  references.forEach((reference, index) => {
    if (typeof reference !== "string") return;
    if (seen.has(reference)) {
      problems.push({ path: at(key, index), message: `${describeValue(reference)} is listed twice` });
      return;
    }
    seen.add(reference);
    if (declared.includes(reference)) return;
    const near = suggest(reference, declared);
    const known = declared.length > 0 ? `declared: ${declared.join(", ")}` : `none is declared`;
    problems.push({
      path: at(key, index),
      message: `unknown ${kind} ${describeValue(reference)}${near ? `; did you mean "${near}"?` : ""} (${known})`,
    });
  });
}

/**
 * The schema's output type and the hand-written `Config` (types.ts, whose doc comments operators read in their
 * editor) must be the same type, readonly aside: a key, an optional mark or a value type that differs between the
 * two fails to compile here, so `validateConfig` returns what the schema checked without a cast.
 */
type Writable<T> = T extends readonly (infer U)[] ? Writable<U>[]
  : T extends object ? { -readonly [K in keyof T]: Writable<T[K]> }
  : T;
type Same<A, B> = (<T>() => T extends Writable<A> ? 1 : 2) extends (<T>() => T extends Writable<B> ? 1 : 2) ? true
  : false;
const schemaMatchesConfig: Same<z.output<typeof configSchema>, Config> = true;
void schemaMatchesConfig;
