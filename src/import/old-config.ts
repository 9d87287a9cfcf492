/**
 * Reads the older NestJS backupctl's `config/projects.yml` (and, optionally, the names in its `.env`) and maps it onto
 * this project's config model, ready for `write-config.ts` to render as a backup.config.ts.
 *
 * No secret value is ever carried over: `${VAR}` placeholders in secret fields become `env("VAR")`, and a secret
 * written literally in the YAML becomes `env("<PROJECT>_…")` with a warning naming the variable to export. Plain
 * settings the old tool read from its environment (`${VAR}` in a host, HETZNER_SSH_HOST, TIMEZONE, …) are read the
 * same way when the written config loads, through its `setting("VAR")` function. The `.env` only says which variables
 * exist; its values are never read into memory.
 *
 * The mapping is built in layers: map-values.ts (shared state, values and secrets), map-destinations.ts
 * (repositories, notifiers, the storage box), and here the projects and the whole config.
 */
import { describeValue, formatPath } from "../config/issues.ts";
import { ConfigError } from "../errors.ts";
import { DestinationMapper } from "./map-destinations.ts";
import type { ImportedConfig, ImportedProject, ImportedSource, Note, ProjectSlot } from "./model.ts";
import { knownKeys, type OldConfig, type OldProject } from "./old-format.ts";
import { envName, type MapOptions, namePattern, placeholder, variablePattern } from "./map-values.ts";

export { countTodos } from "./model.ts";
export { envFileNames, parseOldConfig } from "./old-format.ts";
export type { MapOptions };

/** Global variables of the old tool that have no place in the new config, and why. */
const retiredGlobals: Record<string, string> = {
  BACKUP_BASE_DIR: "dumps stream into restic, no local dump folder is kept",
  DAILY_SUMMARY_CRON: "there is a summary.daily event instead: add it to a notifier's events if you want a summary",
  NOTIFICATION_TYPE: "projects without a notification: section used it; give them notify: [...] by hand",
  ENCRYPTION_ENABLED: "projects without an encryption: section used it (with GPG_RECIPIENT); give them encrypt by hand",
  GPG_RECIPIENT: "see ENCRYPTION_ENABLED",
};

/** Maps a validated projects.yml onto the new model. Problems only the mapping can see are a ConfigError (exit 3). */
export function mapOldConfig(old: OldConfig, options: MapOptions): ImportedConfig {
  return new Mapper(old, options).map();
}

class Mapper extends DestinationMapper {
  map(): ImportedConfig {
    const notes: Note[] = [];
    const seen = new Map<string, number>();
    const projects = this.old.projects.map((project, index) => {
      const mapped = this.project(project, index);
      const first = seen.get(mapped.name);
      if (first !== undefined) {
        this.problems.push({
          path: formatPath(["projects", index, "name"]),
          message: `"${mapped.name}" is also the name of projects[${first}]: project names must be unique`,
        });
      }
      seen.set(mapped.name, index);
      return mapped;
    });
    if (this.problems.length > 0) throw new ConfigError(this.options.file, this.problems);

    const timezone = this.timezone(notes);
    const storageBox = this.storageBox();
    const retry = this.retry();
    for (const [name, why] of Object.entries(retiredGlobals)) {
      if (this.has(name)) this.warnings.push(`${this.options.envFile} sets ${name}: not imported (${why})`);
    }
    this.checkVariables();
    return {
      from: this.options.from,
      envFile: this.options.envFile,
      notes,
      storageBox,
      timezone,
      retry,
      repositories: [...this.repositories.values()].map(({ rawPassword: _, project: __, ...repository }) => repository),
      notifiers: [...this.notifiers.values()],
      projects,
      warnings: this.warnings,
      variables: [...this.variables.keys()].sort(),
    };
  }

  private project(old: OldProject, index: number): ImportedProject {
    const at = (...keys: PropertyKey[]) => formatPath(["projects", index, ...keys]);
    const name = this.projectName(old.name, at("name"));
    const notes: ImportedProject["notes"] = {};
    const note = (slot: ProjectSlot, text: string, todo = true) => {
      (notes[slot] ??= []).push({ todo, text });
      if (todo) this.warnings.push(`${name}: ${text}`);
    };
    this.unknownKeys(old, "project", [index], note);

    const sources: ImportedSource[] = [];
    if (old.database) {
      const database = old.database;
      this.unknownKeys(database, "database", [index, "database"], note);
      const where = (key: string) => at("database", key);
      sources.push({
        type: database.type,
        host: database.host === undefined ? undefined : this.text(database.host, where("host")),
        port: database.port === undefined ? undefined : this.port(database.port, where("port")),
        database: database.name === undefined ? undefined : this.text(database.name, where("name")),
        user: database.user === undefined ? undefined : this.text(database.user, where("user")),
        password: database.password === undefined
          ? undefined
          : this.secret(database.password, where("password"), `${envName(name)}_DB_PASSWORD`, "database password"),
      });
    }
    const paths = old.assets?.paths ?? [];
    if (paths.length > 0) {
      sources.push({ type: "files", paths: paths.map((path, i) => this.text(path, at("assets", "paths", i))) });
    }
    if (sources.length === 0) {
      this.problems.push({ path: at(), message: "needs a database: or assets.paths to back up" });
    }
    if (old.docker_network !== undefined) {
      note(
        "sources",
        `docker_network "${old.docker_network}": backupctl does not join Docker networks. Run it in a container ` +
          `attached to "${old.docker_network}" (compose: networks), or make the database reachable from where it runs.`,
      );
    }

    this.unknownKeys(old.restic, "restic", [index, "restic"], note);
    const repository = this.repository(old, index, name);
    if (old.compression !== undefined) {
      note(
        "repositories",
        "compression: the old tool never used it; restic compresses every repository itself (dumps are streamed " +
          "uncompressed so it can deduplicate). Nothing to set.",
      );
    }
    if (old.restic.snapshot_mode !== undefined) {
      note(
        "repositories",
        `restic.snapshot_mode "${old.restic.snapshot_mode}": each source is now its own snapshot, tagged ` +
          "project=NAME and source=NAME. Nothing to set.",
      );
    }

    this.unknownKeys(old.retention, "retention", [index, "retention"], note);
    const retention: ImportedProject["retention"] = {};
    if (old.retention.keep_daily) retention.daily = old.retention.keep_daily;
    if (old.retention.keep_weekly) retention.weekly = old.retention.keep_weekly;
    if (old.retention.keep_monthly) retention.monthly = old.retention.keep_monthly;
    if (Object.keys(retention).length === 0) {
      retention.within = "100y";
      note(
        "retention",
        "retention: no keep_daily/keep_weekly/keep_monthly above 0, so the old tool forgot nothing; this keeps " +
          "every snapshot for 100 years. Set a real policy.",
      );
    }
    if (old.retention.local_days !== undefined) {
      note(
        "retention",
        `retention.local_days ${old.retention.local_days}: no local dump files are kept any more (dumps stream ` +
          "into restic). Nothing to set.",
      );
    }

    let encrypt: ImportedProject["encrypt"];
    if (old.encryption) {
      this.unknownKeys(old.encryption, "encryption", [index, "encryption"], note);
      if (old.encryption.enabled === true) {
        if (old.encryption.recipient === undefined || old.encryption.recipient === "") {
          this.problems.push({ path: at("encryption", "recipient"), message: "required when encryption is enabled" });
        } else {
          encrypt = { recipient: this.text(old.encryption.recipient, at("encryption", "recipient")) };
          note(
            "encrypt",
            "gpg: the recipient's public key must be in the keyring of the user running backupctl (or give " +
              'keyFile: "keys/backup.pub.asc"); restores and drills need secretKey: env(…).',
            false,
          );
        }
      }
    }

    let hooks: ImportedProject["hooks"];
    if (old.hooks) {
      this.unknownKeys(old.hooks, "hooks", [index, "hooks"], note);
      for (const key of ["pre_backup", "post_backup"] as const) {
        // bash expands ${NAME} from backupctl's environment when the hook runs, as the old tool substituted it.
        for (const match of (old.hooks[key] ?? "").matchAll(placeholder)) {
          if (variablePattern.test(match[1])) this.variable(match[1], at("hooks", key));
        }
      }
      if (old.hooks.pre_backup || old.hooks.post_backup) {
        hooks = {
          ...(old.hooks.pre_backup ? { before: old.hooks.pre_backup } : {}),
          ...(old.hooks.post_backup ? { after: old.hooks.post_backup } : {}),
          timeout: "60s",
        };
      }
    }

    const notify: string[] = [];
    if (old.notification) {
      this.unknownKeys(old.notification, "notification", [index, "notification"], note);
      notify.push(this.notifier(old.notification, index, name));
    }
    if (old.monitor) {
      this.unknownKeys(old.monitor, "monitor", [index, "monitor"], note);
      notify.push(this.monitor(old.monitor.config.push_token, index, name));
    }
    if (old.verification?.enabled === true) {
      note(
        "end",
        "verification.enabled: the old check could not fail. A restore drill needs a scratch database to restore " +
          'into, never the project\'s own: add verify: { every: "7d", into: postgres({ database: "scratch" }), ' +
          'check: "SELECT count(*) FROM …" } (docs/restore.md).',
      );
    }

    const limits = [old.timeout_minutes, old.database?.dump_timeout_minutes].filter((m) => m !== undefined);
    const timeout = limits.length > 0 ? `${Math.max(...limits)}m` : undefined;
    if (old.timeout_minutes !== undefined || old.database?.dump_timeout_minutes !== undefined) {
      const said = [
        old.timeout_minutes === undefined ? "" : `timeout_minutes ${old.timeout_minutes} (the old tool only warned)`,
        old.database?.dump_timeout_minutes === undefined
          ? ""
          : `dump_timeout_minutes ${old.database.dump_timeout_minutes} (its limit for the dump)`,
      ].filter(Boolean).join(" and ");
      note("timeout", `The larger of ${said}; here the time limit of each backup attempt.`, false);
    }

    return {
      name,
      enabled: old.enabled ?? true,
      schedule: this.text(old.cron, at("cron")),
      sources,
      repository,
      retention,
      encrypt,
      hooks,
      notify,
      timeout,
      notes,
    };
  }

  private projectName(raw: string, where: string): string {
    if (namePattern.test(raw)) return raw;
    const name = raw.replace(/[^A-Za-z0-9_.-]+/g, "-").replace(/^[^A-Za-z0-9]+/, "").slice(0, 64) || "project";
    this.warnings.push(
      `${where}: ${
        describeValue(raw)
      } is not a valid name here (letters, digits, '.', '_', '-'); imported as "${name}"`,
    );
    return name;
  }

  /** Unknown keys are left out, said once on stderr and as a TODO at the project's top. */
  private unknownKeys(
    object: Record<string, unknown>,
    kind: string,
    path: PropertyKey[],
    note: (slot: ProjectSlot, text: string) => void,
  ): void {
    const unknown = Object.keys(object).filter((key) => !knownKeys[kind].includes(key));
    if (unknown.length === 0) return;
    note(
      "start",
      `${formatPath(["projects", ...path])}: ${unknown.map((key) => describeValue(key)).join(", ")} not known to the ` +
        "importer and not imported; port by hand if it mattered.",
    );
  }
}
