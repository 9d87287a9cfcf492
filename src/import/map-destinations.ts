/**
 * The second layer of the mapping (old-config.ts): what projects share in the new config. Repositories (one per
 * distinct repository_path on the old tool's storage box), notifiers (one per distinct channel), the storage box
 * itself, and the time zone and retry policy the old .env set.
 */
import { formatPath } from "../config/issues.ts";
import type {
  EmailImport,
  ImportedConfig,
  ImportedNotifier,
  ImportedRepository,
  Note,
  Part,
  StorageBox,
  Value,
} from "./model.ts";
import type { OldProject } from "./old-format.ts";
import { envName, literal, mergeParts, namePattern, ValueMapper } from "./map-values.ts";

/** The keys of each old notification type's `config:` the importer maps; others are reported, not imported. */
const notificationKeys: Record<string, string[]> = {
  slack: ["webhook_url"],
  webhook: ["url", "webhook_url"],
  email: ["smtp_host", "smtp_port", "smtp_secure", "smtp_user", "user", "password", "smtp_password", "to", "from"],
};

/** The mapping's second layer: the repositories and notifiers met so far, each once, named uniquely. */
export class DestinationMapper extends ValueMapper {
  protected readonly repositories = new Map<string, ImportedRepository & { rawPassword?: string; project: string }>();
  protected readonly notifiers = new Map<string, ImportedNotifier>();

  /** One repository per distinct repository_path on the storage box the HETZNER_SSH_* variables name. */
  protected repository(old: OldProject, index: number, project: string): string {
    const path = old.restic.repository_path;
    const rawPassword = old.restic.password;
    const existing = this.repositories.get(path);
    if (existing) {
      if (existing.rawPassword !== rawPassword) {
        this.warnings.push(
          `${formatPath(["projects", index, "restic", "password"])}: ${project} shares repository_path with ` +
            `${existing.project} but not its password; the repository "${existing.name}" uses ${existing.project}'s`,
        );
      }
      return existing.name;
    }

    const pathParts = this.parts(path, formatPath(["projects", index, "restic", "repository_path"]));
    const password = rawPassword === undefined
      ? this.envRef("RESTIC_PASSWORD", formatPath(["projects", index, "restic", "password"]))
      : this.secret(
        rawPassword,
        formatPath(["projects", index, "restic", "password"]),
        `${envName(project)}_RESTIC_PASSWORD`,
        "restic password",
      );
    const name = this.uniqueRepositoryName(repositoryName(path, project));
    this.repositories.set(path, { name, path: pathParts, password, rawPassword, project });
    return name;
  }

  protected uniqueRepositoryName(base: string): string {
    const taken = new Set([...this.repositories.values()].map((r) => r.name));
    let name = base;
    for (let n = 2; taken.has(name); n++) name = `${base}-${n}`;
    return name;
  }

  /** A notifier per distinct (type, config), shared by every project that had the same. Returns its name. */
  protected notifier(notification: NonNullable<OldProject["notification"]>, index: number, project: string): string {
    const config = notification.config ?? {};
    const key = JSON.stringify([notification.type, Object.entries(config).sort(([a], [b]) => a.localeCompare(b))]);
    const existing = this.notifiers.get(key);
    if (existing) return existing.name;

    const at = (setting: string) => formatPath(["projects", index, "notification", "config", setting]);
    const name = this.uniqueNotifierName(notification.type, project);
    const notes: Note[] = [];
    const unknown = Object.keys(config).filter((k) => !notificationKeys[notification.type].includes(k));
    if (unknown.length > 0) {
      const text = `notification.config ${unknown.join(", ")} (from ${project}): not known to the importer, not ` +
        "imported; port by hand if needed (docs/configuration.md#notifiers).";
      notes.push({ todo: true, text });
      this.warnings.push(`notifier ${name}: ${text}`);
    }
    const given = (setting: string): string | undefined => {
      const value = config[setting];
      return value === undefined ? undefined : String(value);
    };
    let notifier: ImportedNotifier;
    switch (notification.type) {
      case "slack": {
        const url = given("webhook_url");
        notifier = {
          name,
          notes,
          type: "slack",
          webhookUrl: url === undefined
            ? this.envRef("SLACK_WEBHOOK_URL", at("webhook_url"))
            : this.secret(url, at("webhook_url"), `${envName(project)}_SLACK_WEBHOOK_URL`, "Slack webhook URL"),
        };
        break;
      }
      case "webhook": {
        const setting = given("url") !== undefined ? "url" : "webhook_url";
        const url = given(setting);
        notifier = {
          name,
          notes,
          type: "webhook",
          url: url === undefined
            ? this.envRef("WEBHOOK_URL", at(setting))
            : this.secret(url, at(setting), `${envName(project)}_WEBHOOK_URL`, "webhook URL"),
        };
        break;
      }
      case "email":
        notifier = { name, notes, ...this.email(config, at, name, project, notes) };
        break;
    }
    this.notifiers.set(key, notifier);
    return name;
  }

  /** The old tool's SMTP settings: the project's notification.config first, else its SMTP_* variables. */
  protected email(
    config: Record<string, string | number | boolean>,
    at: (setting: string) => string,
    name: string,
    project: string,
    notes: Note[],
  ): Omit<EmailImport, "name" | "notes"> {
    const given = (setting: string) => config[setting] === undefined ? undefined : String(config[setting]);
    const where = `notifiers.${name}`;
    /** A plain setting from the config, else from an SMTP_* variable (with the old default when there was one). */
    const plain = (setting: string, variable: string, fallback?: string): Value | undefined => {
      const value = given(setting);
      if (value !== undefined) return this.text(value, at(setting));
      if (this.has(variable) === false) return fallback === undefined ? undefined : literal(fallback);
      return { kind: "text", parts: [this.variable(variable, where, fallback)] };
    };
    const host = plain("smtp_host", "SMTP_HOST") ?? { kind: "text", parts: [this.variable("SMTP_HOST", where)] };
    let port: Value | undefined;
    const rawPort = config.smtp_port;
    if (rawPort !== undefined) {
      port = this.port(typeof rawPort === "number" ? rawPort : String(rawPort), at("smtp_port"));
    } else if (this.has("SMTP_PORT") !== false) port = this.numberVariable("SMTP_PORT", where, "587");
    let secure: Value | undefined;
    if (typeof config.smtp_secure === "boolean") secure = literal(config.smtp_secure);
    else if (config.smtp_secure !== undefined) {
      const parts = this.parts(String(config.smtp_secure), at("smtp_secure"));
      secure = parts.length === 1 && typeof parts[0] !== "string"
        ? { kind: "flag", variable: parts[0].variable }
        : literal(String(config.smtp_secure) === "true");
    } else if (this.has("SMTP_SECURE") !== false) {
      this.variable("SMTP_SECURE", where, "false");
      secure = { kind: "flag", variable: "SMTP_SECURE", fallback: "false" };
    }
    // Login settings are optional: without a .env saying the old tool had them, they are left out (and said).
    const userSetting = given("smtp_user") !== undefined ? "smtp_user" : "user";
    const user = given(userSetting) !== undefined
      ? this.text(given(userSetting)!, at(userSetting))
      : this.has("SMTP_USER")
      ? { kind: "text" as const, parts: [this.variable("SMTP_USER", where)] }
      : undefined;
    const passwordSetting = given("password") !== undefined ? "password" : "smtp_password";
    const rawPassword = given(passwordSetting);
    const password = rawPassword !== undefined
      ? this.secret(rawPassword, at(passwordSetting), `${envName(project)}_SMTP_PASSWORD`, "SMTP password")
      : this.has("SMTP_PASSWORD")
      ? this.envRef("SMTP_PASSWORD", where)
      : undefined;
    const unsure = [
      ...(user === undefined && this.has("SMTP_USER") === undefined
        ? [["SMTP_USER", 'user: setting("SMTP_USER")']]
        : []),
      ...(password === undefined && this.has("SMTP_PASSWORD") === undefined
        ? [["SMTP_PASSWORD", 'password: env("SMTP_PASSWORD")']]
        : []),
    ];
    if (unsure.length > 0) {
      const text = `no --env: if the old .env set ${unsure.map(([variable]) => variable).join(" and ")}, add ` +
        `${unsure.map(([, code]) => code).join(" and ")} to smtp.`;
      notes.push({ todo: true, text });
      this.warnings.push(`notifier ${name}: ${text}`);
    }
    const from = plain("from", "SMTP_FROM", "backupctl@localhost")!;
    const rawTo = given("to");
    const to = rawTo !== undefined
      ? rawTo.split(",").map((address) => address.trim()).filter(Boolean).map((address) => this.text(address, at("to")))
      : [{ kind: "text" as const, parts: [this.variable("SMTP_TO", where)] }];
    return {
      type: "email",
      smtp: {
        host,
        ...(port ? { port } : {}),
        ...(secure ? { secure } : {}),
        ...(user ? { user } : {}),
        ...(password ? { password } : {}),
      },
      from,
      to,
    };
  }

  /** An Uptime Kuma push monitor per distinct token: pushUrl is the whole URL, from a variable the operator sets. */
  protected monitor(token: string, index: number, project: string): string {
    const key = JSON.stringify(["uptime-kuma", token]);
    const existing = this.notifiers.get(key);
    if (existing) return existing.name;
    const where = formatPath(["projects", index, "monitor", "config", "push_token"]);
    const name = this.uniqueNotifierName("kuma", project);
    const variable = this.derived(`${envName(project)}_KUMA_PUSH_URL`, where);
    const parts = this.split(token, where);
    const tokenSaid = parts.length === 1 && typeof parts[0] !== "string"
      ? `the value of ${parts[0].variable}`
      : `the push_token of ${project} in ${this.options.from}`;
    const text =
      `pushUrl is the monitor's whole push URL: export ${variable}=<UPTIME_KUMA_BASE_URL>/api/push/<token> ` +
      `with ${tokenSaid} (the old tool joined them; status, msg and ping are added when pushing).`;
    this.warnings.push(
      `notifier ${name}: export ${variable} with the whole push URL (the old tool joined ` +
        `UPTIME_KUMA_BASE_URL and ${
          parts.length === 1 && typeof parts[0] !== "string" ? parts[0].variable : "the token"
        })`,
    );
    this.notifiers.set(key, {
      name,
      type: "uptimeKuma",
      pushUrl: { kind: "env", name: variable },
      notes: [{ todo: true, text }],
    });
    return name;
  }

  protected uniqueNotifierName(base: string, project: string): string {
    const taken = new Set([...this.notifiers.values()].map((n) => n.name));
    if (!taken.has(base) && base !== "kuma") return base;
    let name = `${base}-${project}`.slice(0, 64);
    for (let n = 2; taken.has(name); n++) name = `${base}-${project}-${n}`.slice(0, 64);
    return name;
  }

  /** The old tool's one SFTP server, from its HETZNER_SSH_* variables, read when the config loads as it did. */
  protected storageBox(): StorageBox {
    const where = "storageBox";
    const user = this.variable("HETZNER_SSH_USER", where);
    const host = this.variable("HETZNER_SSH_HOST", where);
    const knownPort = this.has("HETZNER_SSH_PORT");
    const port = knownPort ? this.variable("HETZNER_SSH_PORT", where) : undefined;
    const key = this.variable("HETZNER_SSH_KEY_PATH", where);
    // sftp://user@host:port/ + /absolute/path (a path without the leading / is relative to the login's home).
    const url: Part[] = port ? ["sftp://", user, "@", host, ":", port, "/"] : ["sftp:", user, "@", host, ":"];
    const text = "The old tool's storage box: HETZNER_SSH_USER, HETZNER_SSH_HOST" + (port ? ", HETZNER_SSH_PORT" : "") +
      " and HETZNER_SSH_KEY_PATH are read when this file loads, as the old tool did: export them or write their " +
      "values here" +
      (knownPort === undefined
        ? " (if the old .env set HETZNER_SSH_PORT, the url must name it: sftp://USER@HOST:PORT/ before each path; " +
          "or import again with --env .env)"
        : "") +
      ". Then pin its host key: add knownHosts: [what `ssh-keyscan -p PORT HOST` prints] and drop hostKeyChecking " +
      '"accept-new" (trust on first use, as the old tool did).';
    this.warnings.push("the storage box's host key is trusted on first use, as before: pin it with ssh knownHosts");
    return {
      url: mergeParts(url),
      ssh: { key: { kind: "file", path: { kind: "text", parts: [key] } }, hostKeyChecking: "accept-new" },
      notes: [{ todo: true, text }],
    };
  }

  /** TIMEZONE from the .env, read when the config loads. */
  protected timezone(notes: Note[]): Value | undefined {
    const known = this.has("TIMEZONE");
    if (known === true) {
      notes.push({ todo: false, text: "The old .env's TIMEZONE: the time zone the schedules are read in." });
      return { kind: "text", parts: [this.variable("TIMEZONE", "timezone")] };
    }
    if (known === false) {
      notes.push({
        todo: false,
        text:
          `${this.options.envFile} sets no TIMEZONE: schedules are read in UTC (timezone: "Europe/Berlin" to change).`,
      });
      return undefined;
    }
    const text = "schedules are read in UTC. If the old .env set TIMEZONE, set timezone to it here (or import again " +
      "with --env .env).";
    notes.push({ todo: true, text });
    this.warnings.push(`no --env given: ${text}`);
    return undefined;
  }

  /** BACKUP_RETRY_COUNT and BACKUP_RETRY_DELAY_MS, when the .env sets them. */
  protected retry(): ImportedConfig["retry"] {
    const retry: NonNullable<ImportedConfig["retry"]> = {};
    if (this.has("BACKUP_RETRY_COUNT")) retry.attempts = this.numberVariable("BACKUP_RETRY_COUNT", "defaults.retry");
    if (this.has("BACKUP_RETRY_DELAY_MS")) {
      retry.baseDelay = { kind: "text", parts: [this.variable("BACKUP_RETRY_DELAY_MS", "defaults.retry"), "ms"] };
    }
    return Object.keys(retry).length > 0 ? retry : undefined;
  }
}

/** `/backups/vinsware` → `vinsware`; the project's name when the path's last part is no valid name. */
function repositoryName(path: string, project: string): string {
  const last = path.replace(/\/+$/, "").split("/").at(-1) ?? "";
  return namePattern.test(last) && !last.includes("${") ? last : project;
}
