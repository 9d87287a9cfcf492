/**
 * A generated corpus of malformed backup.config.ts files, for test/config/malformed_corpus_test.ts.
 *
 * Most cases are one edit of a valid baseline that uses every kind of field (all source helpers, both encryptions,
 * every notifier, restic with `ssh`, hooks, retries, verify, check, prune): the edit is a config path and the value
 * written there, and the path is also where the problem must be reported. The rest are whole files (default exports,
 * syntax errors, imports, exceptions) with the cause the message must give.
 */

/** TypeScript source written into the config as it is: a helper call, `"x".repeat(…)`, a variable. */
class Expr {
  constructor(readonly text: string) {}
}

/** A helper call such as `postgres({ … })`; its options stay reachable by config path. */
class Call {
  constructor(readonly helper: string, readonly options: Record<string, Node>) {}
}

type Node = string | number | boolean | null | Expr | Call | Node[] | { [key: string]: Node };
type Container = Node[] | { [key: string]: Node };

const expr = (text: string): Expr => new Expr(text);
const call = (helper: string) => (options: Record<string, Node>): Call => new Call(helper, options);
const env = (name: string) => expr(`env(${JSON.stringify(name)})`);
const file = (path: string) => expr(`file(${JSON.stringify(path)})`);
const [postgres, mysql, mongodb, sqlite, files, command, restic] = [
  "postgres",
  "mysql",
  "mongodb",
  "sqlite",
  "files",
  "command",
  "restic",
].map(call);
const [gpg, age, slack, email, webhook, healthchecks, uptimeKuma] = [
  "gpg",
  "age",
  "slack",
  "email",
  "webhook",
  "healthchecks",
  "uptimeKuma",
].map(call);

/** Deletes the key at a path instead of setting it. */
const REMOVE = Symbol("remove");

export const categories = [
  "wrong type",
  "missing key",
  "unknown key",
  "bad value",
  "bad cron",
  "bad time zone",
  "bad duration",
  "plain secret",
  "undeclared reference",
  "duplicate source",
  "unknown helper",
  "cyclic",
  "huge",
  "default export",
  "syntax error",
  "throws at import",
  "missing module",
] as const;
export type Category = (typeof categories)[number];

export interface MalformedConfig {
  name: string;
  category: Category;
  /** Files to write into an empty folder (relative path → text); the config is `backup.config.ts`. */
  files: Record<string, string>;
  /** Config paths that must each start a problem line on stderr (`  projects.app.schedule: …`). */
  paths: string[];
  /** What stderr must also say: the cause of a load failure, the gist of a problem. */
  says: RegExp[];
  /** Texts that must never be printed (secret values written as plain strings). */
  neverPrinted: string[];
}

export const configFile = "backup.config.ts";

const helperNames = [
  "age",
  "command",
  "defineConfig",
  "email",
  "env",
  "file",
  "files",
  "gpg",
  "healthchecks",
  "mongodb",
  "mysql",
  "postgres",
  "restic",
  "slack",
  "sqlite",
  "uptimeKuma",
  "webhook",
];
export const header = `import { ${helperNames.join(", ")} } from "backupctl";\n`;

/** The valid baseline: every kind of field the config API has, with plausible values. */
export function baseline(): { [key: string]: Node } {
  return {
    timezone: "Europe/Berlin",
    host: "backup-host",
    defaults: { retry: { attempts: 3, baseDelay: "30s", maxDelay: "10m" }, timeout: "2h" },
    repositories: {
      local: restic({
        url: "/srv/restic/main",
        password: env("RESTIC_PASSWORD"),
        compression: "max",
        env: { AWS_REGION: "eu-central-1" },
        options: { "sftp.connections": "5" },
      }),
      offsite: restic({
        url: "sftp:backup@storage.example:/restic",
        password: env("RESTIC_PASSWORD"),
        ssh: {
          key: file("/run/secrets/backup_ssh_key"),
          passphrase: env("SSH_KEY_PASSPHRASE"),
          knownHosts:
            "storage.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
          hostKeyChecking: "yes",
        },
      }),
    },
    notifiers: {
      ops: slack({ webhookUrl: env("SLACK_WEBHOOK_URL"), events: ["run.failed"] }),
      mail: email({
        smtp: { host: "smtp.example.com", port: 587, secure: false, user: "backup", password: env("SMTP_PASSWORD") },
        from: "backup@example.com",
        to: ["ops@example.com"],
      }),
      hook: webhook({
        url: env("OPS_WEBHOOK_URL"),
        method: "POST",
        headers: { Authorization: env("OPS_WEBHOOK_AUTH") },
      }),
      hc: healthchecks({ pingUrl: env("HC_PING_URL") }),
      kuma: uptimeKuma({ pushUrl: env("KUMA_PUSH_URL") }),
    },
    projects: {
      app: {
        schedule: "0 3 * * *",
        timezone: "UTC",
        jitter: "5m",
        enabled: true,
        sources: [
          postgres({
            name: "shop",
            host: "db",
            port: 5432,
            database: "shop",
            user: "backup",
            password: env("SHOP_DB_PASSWORD"),
            options: ["--exclude-table=audit_log"],
            globals: true,
            allowEmpty: false,
          }),
          mysql({
            host: "mariadb",
            port: 3306,
            database: "wiki",
            user: "backup",
            password: env("WIKI_DB_PASSWORD"),
            options: ["--skip-lock-tables"],
          }),
          mongodb({
            uri: env("EVENTS_MONGO_URI"),
            database: "events",
            password: env("EVENTS_MONGO_PASSWORD"),
            authenticationDatabase: "admin",
            options: ["--gzip"],
          }),
          sqlite({ path: "data/sessions.db" }),
          files({ name: "uploads", paths: ["/srv/app/uploads"], exclude: ["*.tmp"] }),
          command({
            name: "redis",
            run: "redis-cli --rdb -",
            filename: "dump.rdb",
            env: { REDISCLI_AUTH: env("REDIS_PASSWORD") },
          }),
        ],
        repositories: ["local", "offsite"],
        retention: { last: 3, daily: 7, weekly: 4, monthly: 12, yearly: 2, within: "2d", minSnapshots: 3 },
        encrypt: gpg({ recipient: "backup@example.com", keyFile: "keys/backup.pub.asc", passphrase: env("GPG_PASS") }),
        hooks: {
          before: "systemctl stop app-worker",
          after: ["systemctl", "start", "app-worker"],
          onFailure: "logger backup failed",
          timeout: "5m",
        },
        notify: ["ops", "mail", "hook", "hc", "kuma"],
        verify: {
          every: "7d",
          into: postgres({
            host: "scratch-db",
            database: "shop_drill",
            user: "drill",
            password: env("DRILL_PASSWORD"),
          }),
          check: "SELECT count(*) FROM orders",
          expect: { minRows: 1 },
        },
        maxAge: "26h",
        retry: { attempts: 5, baseDelay: "1m", maxDelay: "30m" },
        timeout: "3h",
        prune: { every: "7d" },
        check: { every: "7d", readDataSubset: "5%" },
      },
      site: {
        schedule: "@hourly",
        sources: [files({ paths: ["/srv/site"] })],
        repositories: ["local"],
        retention: { hourly: 24, daily: 7 },
        encrypt: age({
          recipients: ["age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"],
          identity: file("/run/secrets/age_identity"),
        }),
        notify: ["ops"],
      },
    },
  };
}

// ── paths ───────────────────────────────────────────────────────────────────────────────────────────────────────

type Path = (string | number)[];

/** `projects.app.sources[0].port`, `repositories.local.options["sftp.connections"]` → its segments. */
function parsePath(text: string): Path {
  const path: Path = [];
  const segment = /\.?([A-Za-z_$][\w$]*)|\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]/y;
  while (segment.lastIndex < text.length) {
    const at = segment.lastIndex;
    const match = segment.exec(text);
    if (!match) throw new Error(`bad path ${text} at ${at}`);
    path.push(match[1] ?? (match[2] !== undefined ? Number(match[2]) : JSON.parse(match[3]) as string));
  }
  return path;
}

/** The path as the CLI prints it (the inverse of parsePath). */
function showPath(path: Path): string {
  return path.map((key, index) => {
    if (typeof key === "number") return `[${key}]`;
    if (/^[A-Za-z_$][\w$]*$/.test(key)) return index === 0 ? key : `.${key}`;
    return `[${JSON.stringify(key)}]`;
  }).join("");
}

function childrenOf(node: Node): Container | undefined {
  if (node instanceof Call) return node.options;
  if (node instanceof Expr || node === null || typeof node !== "object") return undefined;
  return node;
}

function clone(node: Node): Node {
  if (node instanceof Call) return new Call(node.helper, clone(node.options) as Record<string, Node>);
  if (Array.isArray(node)) return node.map(clone);
  if (node instanceof Expr || node === null || typeof node !== "object") return node;
  return Object.fromEntries(Object.entries(node).map(([key, value]) => [key, clone(value)]));
}

/** A copy of the baseline with the value at `path` replaced (or removed). */
function edit(path: Path, value: Node | typeof REMOVE): { [key: string]: Node } {
  const root = clone(baseline()) as { [key: string]: Node };
  let container: Container = root;
  for (const key of path.slice(0, -1)) {
    const next = childrenOf((container as Record<string | number, Node>)[key]);
    if (!next) throw new Error(`no container at ${String(key)} in ${showPath(path)}`);
    container = next;
  }
  const last = path[path.length - 1];
  if (value === REMOVE) delete (container as Record<string | number, Node>)[last];
  else (container as Record<string | number, Node>)[last] = value;
  return root;
}

// ── rendering ───────────────────────────────────────────────────────────────────────────────────────────────────

function render(node: Node, indent = ""): string {
  if (node instanceof Expr) return node.text;
  if (node instanceof Call) return `${node.helper}(${render(node.options, indent)})`;
  if (typeof node === "string" || typeof node === "number" || typeof node === "boolean" || node === null) {
    return JSON.stringify(node);
  }
  const inner = `${indent}  `;
  if (Array.isArray(node)) {
    if (node.every((item) => typeof item !== "object" || item === null || item instanceof Expr)) {
      return `[${node.map((item) => render(item)).join(", ")}]`;
    }
    return `[\n${node.map((item) => `${inner}${render(item, inner)},\n`).join("")}${indent}]`;
  }
  const entries = Object.entries(node);
  if (entries.length === 0) return "{}";
  const key = (name: string) => /^[A-Za-z_$][\w$]*$/.test(name) ? name : JSON.stringify(name);
  return `{\n${entries.map(([name, value]) => `${inner}${key(name)}: ${render(value, inner)},\n`).join("")}${indent}}`;
}

/** A config file: `config` holds the (edited) baseline; `after` may change it before it is exported. */
function configText(tree: { [key: string]: Node }, after = ""): string {
  return `${header}\nconst config = defineConfig(${render(tree)});\n${after}${
    after ? "\n" : ""
  }export default config;\n`;
}

/** The baseline as a config file (a control: it must validate). */
export function baselineFile(): Record<string, string> {
  return { [configFile]: configText(baseline()) };
}

// ── the tables ──────────────────────────────────────────────────────────────────────────────────────────────────

/** Fields checked by the same rule as another one: their wrong types are one case. */
const sameKind: Record<string, string> = {
  ...Object.fromEntries(
    ["mysql", "mongodb"].flatMap((helper) =>
      ["host", "port", "database", "user", "password", "options"].map((key) => [`${helper}.${key}`, `postgres.${key}`])
    ),
  ),
  ...Object.fromEntries(["daily", "weekly", "monthly", "yearly"].map((key) => [`retention.${key}`, "retention.last"])),
};

/** Objects whose keys are names the operator chooses. */
const records = new Set(["projects", "repositories", "notifiers", "env", "options", "headers"]);

/**
 * A value of the wrong type for every field of the baseline: numbers for strings and secret references, strings for
 * numbers, "yes" for booleans, an object for lists, a list for objects, the helper's name as a string for a helper
 * call. A field is edited once per kind of object holding it (`postgres.port` once, not again under verify.into;
 * `retry.attempts` once, not again under defaults; the first item of a list, unless items are different helpers).
 */
function wrongTypes(): [string, Node][] {
  const cases: [string, Node][] = [];
  const seen = new Set<string>();
  const visit = (node: Node, path: Path, kind: string) => {
    if (seen.has(kind)) return;
    seen.add(kind);
    if (path.length > 0) cases.push([showPath(path), wrongValueFor(node)]);
    const children = childrenOf(node);
    if (!children) return;
    const last = String(path.findLast((key) => typeof key === "string") ?? "config");
    if (Array.isArray(children)) {
      children.forEach((item, index) =>
        visit(item, [...path, index], item instanceof Call ? `${kind}[]:${item.helper}` : `${kind}[]`)
      );
    } else {
      const shape = node instanceof Call ? node.helper : path.at(-2) === "projects" ? "project" : last;
      for (const [key, value] of Object.entries(children)) {
        const field = !(node instanceof Call) && records.has(last) ? `${shape}.*` : `${shape}.${key}`;
        const fieldKind = sameKind[field] ?? field;
        visit(value, [...path, key], value instanceof Call ? `${fieldKind}:${value.helper}` : fieldKind);
      }
    }
  };
  visit(baseline(), [], "config");
  return cases;
}

function wrongValueFor(node: Node): Node {
  if (node instanceof Call) return node.helper;
  if (node instanceof Expr || typeof node === "string") return 42;
  if (typeof node === "number") return String(node);
  if (typeof node === "boolean") return "yes";
  if (Array.isArray(node)) return {};
  return [];
}

/** Keys to delete; the problem is reported at the key. */
const missingKeys: string[] = [
  "repositories",
  "projects",
  "projects.app.schedule",
  "projects.app.sources",
  "projects.app.repositories",
  "projects.app.retention",
  "projects.app.sources[0].database",
  "projects.app.sources[1].database",
  "projects.app.sources[3].path",
  "projects.app.sources[4].paths",
  "projects.app.sources[5].name",
  "projects.app.sources[5].run",
  "projects.app.sources[5].filename",
  "repositories.local.url",
  "repositories.local.password",
  "repositories.offsite.ssh.key",
  "notifiers.ops.webhookUrl",
  "notifiers.mail.smtp",
  "notifiers.mail.smtp.host",
  "notifiers.mail.from",
  "notifiers.mail.to",
  "notifiers.hook.url",
  "notifiers.hc.pingUrl",
  "notifiers.kuma.pushUrl",
  "projects.app.verify.every",
  "projects.app.verify.into",
  "projects.app.verify.into.database",
  "projects.site.sources[0].paths",
];

/** Values that leave something required empty: [path, value, path reported]. */
const emptyValues: [string, Node, string][] = [
  ["projects", {}, "projects"],
  ["repositories", {}, "repositories"],
  ["projects.app.sources", [], "projects.app.sources"],
  ["projects.app.repositories", [], "projects.app.repositories"],
  ["projects.app.retention", {}, "projects.app.retention"],
  ["projects.app.retention", { daily: 0, weekly: 0 }, "projects.app.retention"],
  ["projects.site.sources[0].paths", [], "projects.site.sources[0].paths"],
  ["projects.app.encrypt", gpg({}), "projects.app.encrypt"],
  ["projects.site.encrypt", age({ identity: file("/run/secrets/age_identity") }), "projects.site.encrypt"],
  ["projects.app.sources[3].path", "", "projects.app.sources[3].path"],
  ["notifiers.mail.to", [], "notifiers.mail.to"],
];

/** Unknown keys (mostly typos of known ones): [object path, key]. */
const unknownKeys: [string, string][] = [
  ["", "timezon"],
  ["", "statedir"],
  ["", "repository"],
  ["defaults", "retries"],
  ["repositories.local", "passwd"],
  ["repositories.offsite.ssh", "knownHost"],
  ["repositories.offsite.ssh", "strictHostKeyChecking"],
  ["notifiers.ops", "webhook"],
  ["notifiers.mail.smtp", "secured"],
  ["notifiers.hook", "header"],
  ["notifiers.hc", "url"],
  ["notifiers.kuma", "pushURL"],
  ["projects.app", "shedule"],
  ["projects.app", "retension"],
  ["projects.app", "notifiers"],
  ["projects.app.sources[0]", "databse"],
  ["projects.app.sources[0]", "pasword"],
  ["projects.app.sources[1]", "usr"],
  ["projects.app.sources[2]", "url"],
  ["projects.app.sources[3]", "file"],
  ["projects.app.sources[4]", "excludes"],
  ["projects.app.sources[5]", "cmd"],
  ["projects.app.sources[5]", "fileName"],
  ["projects.app.retention", "keepDaily"],
  ["projects.app.retry", "delay"],
  ["projects.app.hooks", "pre"],
  ["projects.app.verify", "interval"],
  ["projects.app.verify.expect", "rows"],
  ["projects.app.encrypt", "recipients"],
  ["projects.site.encrypt", "recipient"],
];

/** Values of the right type that are still wrong: ranges, enums, names, kinds. [path, value, path reported]. */
const badValues: [string, Node, string?][] = [
  ["projects.app.sources[0].port", 0],
  ["projects.app.sources[0].port", 70000],
  ["projects.app.sources[1].port", 3306.5],
  ["notifiers.mail.smtp.port", -25],
  ["repositories.local.compression", "fast"],
  ["repositories.offsite.ssh.hostKeyChecking", "maybe"],
  ["repositories.offsite.ssh.knownHosts", []],
  ["notifiers.hook.method", "GET"],
  ["notifiers.ops.events[0]", "run.exploded"],
  ["defaults.retry.attempts", 0],
  ["projects.app.retry.attempts", 101],
  ["projects.app.retention.daily", -1],
  ["projects.app.retention.weekly", 1.5],
  ["projects.app.sources[4].name", "../etc"],
  ["projects.app.sources[5].filename", "dumps/dump.rdb"],
  ["projects.app.sources[5].run", []],
  ["projects.app.check.readDataSubset", "5 percent"],
  ["repositories.local.env", { "lower-case!": "x" }, 'repositories.local.env["lower-case!"]'],
  ["projects.app.sources[0]", { type: "redis", host: "cache" }],
  ["repositories.local", { type: "borg", url: "/srv/borg" }],
  ["notifiers.ops", { type: "irc", url: "ircs://irc.example/backups" }],
  ["projects.app.encrypt", { type: "pgp", recipient: "x@example.com" }],
  ["projects.app.verify.into", files({ paths: ["/tmp/drill"] })],
  ["stateDir", ""],
  ["repositories.local.url", ""],
  ["repositories.local.options", { "": "x" }, 'repositories.local.options[""]'],
  ["repositories.local.ssh", { key: file("/run/secrets/key") }, "repositories.local.ssh"],
  [
    "repositories.offsite.options",
    { "sftp.command": "ssh -i key backup@storage.example -s sftp" },
    "repositories.offsite.ssh",
  ],
  ["projects.app.verify.expect.minRows", -5],
  ["notifiers.mail.smtp.secure", null],
];

/** Both projects get each of these schedules in turn (the first half app, the rest site). */
const badCrons = [
  "0 25 * * *",
  "60 * * * *",
  "0 3 * *",
  "0 0 3 * * *",
  "@fortnightly",
  "every day at 3",
  "",
  "H 3 * * *",
  "0 3 * * 9",
  "0 0 30 2 *",
  "*/0 * * * *",
  "0 3 * FOO *",
];

const badTimezones: [string, string][] = [
  ["timezone", "Mars/Olympus_Mons"],
  ["timezone", "Europe/Berlinn"],
  ["timezone", ""],
  ["projects.app.timezone", "GMT+25"],
  ["projects.app.timezone", "America/New York"],
  ["projects.app.timezone", "Local"],
];

const badDurations: [string, string][] = [
  ["projects.app.jitter", "5 minutes"],
  ["projects.app.timeout", "3 hours"],
  ["projects.app.maxAge", "1.5h"],
  ["projects.app.retry.baseDelay", "-1s"],
  ["projects.app.retry.maxDelay", "10"],
  ["projects.app.hooks.timeout", "5M"],
  ["projects.app.verify.every", "weekly"],
  ["projects.app.check.every", ""],
  ["projects.app.prune.every", "7days"],
  ["defaults.timeout", "2hrs"],
  ["defaults.retry.baseDelay", "1m30"],
  ["projects.app.retention.within", "2 days"],
  ["projects.app.retention.withinDaily", "7w"],
  ["projects.site.retention.withinHourly", "48"],
];

/** Fields that need env()/file() and get the secret itself instead. */
const secretFields = [
  "repositories.local.password",
  "repositories.offsite.password",
  "repositories.offsite.ssh.key",
  "repositories.offsite.ssh.passphrase",
  "projects.app.sources[0].password",
  "projects.app.sources[1].password",
  "projects.app.sources[2].password",
  "projects.app.verify.into.password",
  "projects.app.encrypt.passphrase",
  "projects.app.encrypt.secretKey",
  "projects.site.encrypt.identity",
  "notifiers.ops.webhookUrl",
  "notifiers.mail.smtp.password",
];

/** Secret references that are not quite references. */
const badSecretRefs: [string, Node, string][] = [
  ["repositories.local.password", { secret: "vault", name: "RESTIC_PASSWORD" }, "repositories.local.password"],
  ["repositories.local.password", expr(`env("restic-password")`), "repositories.local.password.name"],
  ["notifiers.mail.smtp.password", expr(`file("")`), "notifiers.mail.smtp.password.path"],
  [
    "projects.app.sources[0].password",
    { secret: "env", name: "PGPASSWORD", value: "hunter2" },
    "projects.app.sources[0].password.value",
  ],
  ["projects.app.sources[2].uri", { secret: "env", name: "1NVALID" }, "projects.app.sources[2].uri.name"],
];

const references: [string, Node, string[]][] = [
  ["projects.app.repositories", ["local", "ofsite"], ["projects.app.repositories[1]"]],
  ["projects.site.repositories", ["backup"], ["projects.site.repositories[0]"]],
  ["projects.app.repositories", ["local", "local"], ["projects.app.repositories[1]"]],
  ["projects.app.notify", ["ops", "slak"], ["projects.app.notify[1]"]],
  ["projects.site.notify", ["ops", "pager", "ops"], ["projects.site.notify[1]", "projects.site.notify[2]"]],
];

// ── whole files ─────────────────────────────────────────────────────────────────────────────────────────────────

const minimal = `defineConfig({
  repositories: { local: restic({ url: "/srv/restic", password: env("RESTIC_PASSWORD") }) },
  projects: {
    app: { schedule: "0 3 * * *", sources: [sqlite({ path: "app.db" })], repositories: ["local"], retention: { daily: 7 } },
  },
})`;

interface WholeFile {
  name: string;
  category: Category;
  files: Record<string, string>;
  says: RegExp[];
}

const loadFailure = /cannot load the file: /;

function wholeFiles(): WholeFile[] {
  const one = (name: string, category: Category, text: string, says: RegExp[]): WholeFile => ({
    name,
    category,
    files: { [configFile]: text },
    says,
  });
  return [
    // default exports
    one("no default export", "default export", `${header}export const config = ${minimal};\n`, [/no default export/]),
    one("export default undefined", "default export", `${header}export default undefined;\n`, [/no default export/]),
    one("export default null", "default export", `export default null;\n`, [
      /^ {2}expected the configuration .*got null$/m,
    ]),
    one("export default 42", "default export", `export default 42;\n`, [/^ {2}expected the configuration .*got 42$/m]),
    one("export default a string", "default export", `export default "backup.config";\n`, [/got "backup\.config"$/m]),
    one("export default a list", "default export", `${header}export default [${minimal}];\n`, [/got a list$/m]),
    one(
      "a default function that throws",
      "default export",
      `export default () => { throw new Error("no database host known"); };\n`,
      [/the exported config function threw: no database host known/],
    ),
    one(
      "an async factory that throws",
      "default export",
      `export default async () => { await Promise.resolve(); throw new TypeError("cannot read the inventory"); };\n`,
      [/the exported config function threw: TypeError: cannot read the inventory/],
    ),
    one(
      "a factory returning a rejected Promise",
      "default export",
      `export default () => Promise.reject(new Error("vault unreachable"));\n`,
      [/the exported config function threw: vault unreachable/],
    ),
    one(
      "a factory rejecting with a plain object",
      "default export",
      `export default () => Promise.reject({ code: "EVAULT", reason: "sealed" });\n`,
      [/the exported config function threw: .*EVAULT.*sealed/],
    ),
    one("a factory returning null", "default export", `export default () => null;\n`, [/got null$/m]),
    one("a factory returning a number", "default export", `export default async () => 7;\n`, [/got 7$/m]),
    one(
      "a class as the default export",
      "default export",
      `export default class Config {}\n`,
      [/the exported config function threw: TypeError: .*Config/],
    ),
    one(
      "a default export that is a rejected Promise",
      "default export",
      `export default Promise.reject(new Error("secrets backend down"));\n`,
      [/the exported Promise failed: secrets backend down/],
    ),
    // syntax errors
    one(
      "unclosed brace",
      "syntax error",
      `${header}export default defineConfig({\n  projects: { app: { schedule: "0 3 * * *" },\n`,
      [loadFailure, /line 3|end of file|<eof>/i],
    ),
    one(
      "stray token",
      "syntax error",
      `${header}export default ${minimal} @@;\n`,
      [loadFailure, /line 7/],
    ),
    one(
      "unterminated string",
      "syntax error",
      `${header}export default defineConfig({ timezone: "UTC, projects: {} });\n`,
      [loadFailure, /line 2/],
    ),
    one(
      "missing comma between keys",
      "syntax error",
      `${header}export default defineConfig({ timezone: "UTC" projects: {} });\n`,
      [loadFailure, /line 2/],
    ),
    one(
      "a JSON document instead of a module",
      "syntax error",
      `{ "repositories": { "local": { "type": "restic" } }, "projects": {} }\n`,
      [loadFailure, /line 1/],
    ),
    // exceptions while the module runs
    one(
      "throws at import time",
      "throws at import",
      `${header}if (!process.env.BACKUP_SITE_NEVER_SET) throw new Error("BACKUP_SITE_NEVER_SET is not set");\nexport default ${minimal};\n`,
      [loadFailure, /BACKUP_SITE_NEVER_SET is not set \(line 2, column \d+\)/],
    ),
    one(
      "a rejected top-level await",
      "throws at import",
      `${header}const hosts = await Promise.reject(new Error("inventory service refused"));\nexport default hosts;\n`,
      [loadFailure, /inventory service refused/],
    ),
    one(
      "a TypeError at import time",
      "throws at import",
      `${header}const host = (process.env.BACKUP_HOST_NEVER_SET as string).trim();\nexport default ${minimal};\n`,
      [loadFailure, /TypeError/],
    ),
    one(
      "a thrown string at import time",
      "throws at import",
      `throw "configuration is disabled on this host";\n`,
      [loadFailure, /configuration is disabled on this host/],
    ),
    one(
      "invalid JSON parsed at import time",
      "throws at import",
      `${header}const extra = JSON.parse("{ retention: 7 }");\nexport default { ...${minimal}, ...extra };\n`,
      [loadFailure, /SyntaxError/],
    ),
    // unknown helpers
    one(
      "calling a helper that does not exist",
      "unknown helper",
      `${header}export default defineConfig({ ...${minimal}, projects: { app: { schedule: "@daily", sources: [redis({ host: "cache" })], repositories: ["local"], retention: { daily: 7 } } } });\n`,
      [loadFailure, /redis is not defined/],
    ),
    one(
      "importing a name backupctl does not export",
      "unknown helper",
      `import { defineConfig, redis } from "backupctl";\nexport default defineConfig({ projects: { app: { sources: [redis({})] } } } as never);\n`,
      [loadFailure, /redis/],
    ),
    one(
      "importing a default export backupctl does not have",
      "unknown helper",
      `import backupctl from "backupctl";\nexport default backupctl.defineConfig({});\n`,
      [loadFailure, /default/],
    ),
    one(
      "calling a method on a helper",
      "unknown helper",
      `${header}export default defineConfig({ ...${minimal}, repositories: { s3: (restic as any).s3({ bucket: "b" }) } });\n`,
      [loadFailure, /TypeError: .*s3/],
    ),
    one(
      "a misspelt helper",
      "unknown helper",
      `${header}export default defineConfig({ ...${minimal}, projects: { app: { schedule: "@daily", sources: [postgress({ database: "shop" })], repositories: ["local"], retention: { daily: 7 } } } });\n`,
      [loadFailure, /postgress is not defined/],
    ),
    // imports
    {
      name: "importing a missing relative module",
      category: "missing module",
      files: {
        [configFile]:
          `${header}import { repositories } from "./shared/repositories.ts";\nexport default repositories;\n`,
      },
      says: [loadFailure, /shared\/repositories\.ts/],
    },
    {
      name: "a side-effect import of a missing module",
      category: "missing module",
      files: { [configFile]: `import "./setup-env.ts";\n${header}export default ${minimal};\n` },
      says: [loadFailure, /setup-env\.ts/],
    },
    {
      name: "a helper module importing a missing module",
      category: "missing module",
      files: {
        [configFile]: `${header}import { local } from "./shared.ts";\nexport default ${minimal};\nvoid local;\n`,
        "shared.ts": `import { secrets } from "./vault-client.ts";\nexport const local = secrets;\n`,
      },
      says: [loadFailure, /vault-client\.ts/],
    },
    {
      name: "a helper module that throws",
      category: "missing module",
      files: {
        [configFile]: `${header}import { local } from "./shared.ts";\nexport default ${minimal};\nvoid local;\n`,
        "shared.ts": `export const local = (() => { throw new Error("shared settings are incomplete"); })();\n`,
      },
      says: [loadFailure, /shared settings are incomplete/],
    },
    {
      name: "importing a package that is not installed",
      category: "missing module",
      files: { [configFile]: `${header}import { load } from "backupctl-vault-plugin";\nexport default load();\n` },
      says: [loadFailure, /backupctl-vault-plugin/],
    },
  ];
}

/** Edits that add statements after the config object: cycles, and huge values built at run time. */
const statementEdits: { name: string; category: Category; after: string; paths: string[]; says?: RegExp[] }[] = [
  { name: "the config contains itself", category: "cyclic", after: `(config as any).self = config;`, paths: ["self"] },
  {
    name: "a retention policy contains itself",
    category: "cyclic",
    after: `(config.projects.app.retention as any).again = config.projects.app.retention;`,
    paths: ["projects.app.retention.again"],
  },
  {
    name: "a source list contains itself",
    category: "cyclic",
    after: `(config.projects.site.sources as any[]).push(config.projects.site.sources);`,
    paths: ["projects.site.sources[1]"],
  },
  {
    name: "a project is the projects object",
    category: "cyclic",
    after: `(config.projects as any).loop = config.projects;`,
    paths: ["projects.loop.app", "projects.loop.schedule"],
  },
  {
    name: "a secret reference contains itself",
    category: "cyclic",
    after: `(config.repositories.local.password as any).self = config.repositories.local.password;`,
    paths: ["repositories.local.password.self"],
  },
  {
    name: "a hook list contains the hooks",
    category: "cyclic",
    after: `(config.projects.app.hooks as any).after = [config.projects.app.hooks];`,
    paths: ["projects.app.hooks.after[0]"],
  },
  {
    name: "100 000 non-sources",
    category: "huge",
    after: `(config.projects.site as any).sources = Array(100_000).fill(42);`,
    paths: ["projects.site.sources[0]", "projects.site.sources[49]"],
    says: [/^ {2}… and 99950 more \(fix these first, then run validate again\)$/m],
  },
  {
    name: "100 000 paths with one number at the end",
    category: "huge",
    after: `(config.projects.site.sources[0] as any).paths = [...Array(100_000).keys()].map((i) => "/srv/site/" + i)` +
      `.concat([42]);`,
    paths: ["projects.site.sources[0].paths[100000]"],
  },
  {
    name: "objects nested 100 000 deep",
    category: "huge",
    after:
      `let deep: any = {};\nfor (let i = 0; i < 100_000; i++) deep = { deep };\n(config.projects.app.hooks as any).deep = deep;`,
    paths: ["projects.app.hooks.deep"],
  },
  {
    name: "objects nested 100 000 deep where a string is expected",
    category: "huge",
    after: `let deep: any = "x";\nfor (let i = 0; i < 100_000; i++) deep = { deep };\n(config as any).host = deep;`,
    paths: ["host"],
  },
];

const fiveMegabytes = 5_000_000;

/** Huge values written at one path: [name, path, value, path reported]. */
const hugeValues: [string, string, Node, string][] = [
  ["a 5 MB schedule", "projects.app.schedule", expr(`"x".repeat(${fiveMegabytes})`), "projects.app.schedule"],
  [
    "a 5 MB schedule with five fields",
    "projects.app.schedule",
    expr(`"1".repeat(${fiveMegabytes}) + " * * * *"`),
    "projects.app.schedule",
  ],
  ["a 5 MB time zone", "timezone", expr(`"Europe/" + "x".repeat(${fiveMegabytes})`), "timezone"],
  [
    "a 5 MB source name",
    "projects.app.sources[4].name",
    expr(`"n".repeat(${fiveMegabytes})`),
    "projects.app.sources[4].name",
  ],
  [
    "a 5 MB sqlite path (the default source name)",
    "projects.app.sources[3].path",
    expr(`"/srv/" + "s".repeat(${fiveMegabytes}) + " .db"`),
    "projects.app.sources[3]",
  ],
  [
    "a 5 MB repository reference",
    "projects.site.repositories",
    expr(`["r".repeat(${fiveMegabytes})]`),
    "projects.site.repositories[0]",
  ],
  ["a 5 MB duration", "projects.app.timeout", expr(`"9".repeat(${fiveMegabytes}) + "x"`), "projects.app.timeout"],
  ["a 5 MB port", "projects.app.sources[0].port", expr(`"5".repeat(${fiveMegabytes})`), "projects.app.sources[0].port"],
];

/** The 5 MB plain-text secret is written literally into the file. */
const hugeSecret = "s3cr3t-".repeat(Math.ceil(fiveMegabytes / 7)).slice(0, fiveMegabytes);

// ── the corpus ──────────────────────────────────────────────────────────────────────────────────────────────────

/** Every malformed config, with the path or cause its message must name. */
export function malformedConfigs(): MalformedConfig[] {
  const corpus: MalformedConfig[] = [];
  const add = (
    name: string,
    category: Category,
    tree: { [key: string]: Node },
    paths: string[],
    options: { says?: RegExp[]; neverPrinted?: string[]; after?: string } = {},
  ) =>
    corpus.push({
      name,
      category,
      files: { [configFile]: configText(tree, options.after) },
      paths,
      says: options.says ?? [],
      neverPrinted: options.neverPrinted ?? [],
    });
  const at = (text: string, value: Node | typeof REMOVE) => edit(parsePath(text), value);

  for (const [path, value] of wrongTypes()) {
    add(`${path} is ${describe(value)}`, "wrong type", at(path, value), [path]);
  }
  for (const path of missingKeys) {
    add(`${path} is missing`, "missing key", at(path, REMOVE), [path], { says: [/required|needs|at least/] });
  }
  for (const [path, value, reported] of emptyValues) {
    add(`${path} is ${describe(value)}`, "missing key", at(path, value), [reported]);
  }
  for (const [objectPath, key] of unknownKeys) {
    const path = showPath([...parsePath(objectPath), key]);
    add(`unknown key ${path}`, "unknown key", at(path, "x"), [path], { says: [new RegExp(`unknown key "${key}"`)] });
  }
  for (const [path, value, reported] of badValues) {
    add(`${path} is ${describe(value)}`, "bad value", at(path, value), [reported ?? path]);
  }
  badCrons.forEach((cron, index) => {
    const path = index < badCrons.length / 2 ? "projects.app.schedule" : "projects.site.schedule";
    add(`schedule ${JSON.stringify(cron)}`, "bad cron", at(path, cron), [path]);
  });
  for (const [path, zone] of badTimezones) {
    add(`${path} ${JSON.stringify(zone)}`, "bad time zone", at(path, zone), [path]);
  }
  for (const [path, duration] of badDurations) {
    add(`${path} ${JSON.stringify(duration)}`, "bad duration", at(path, duration), [path]);
  }
  secretFields.forEach((path, index) => {
    const secret = `plain-secret-${index}-Tr0ub4dor&3`;
    add(`${path} is a plain string`, "plain secret", at(path, secret), [path], {
      says: [/a plain string/],
      neverPrinted: [secret],
    });
  });
  for (const [path, value, reported] of badSecretRefs) {
    add(`${path} is ${describe(value)}`, "plain secret", at(path, value), [reported], { neverPrinted: ["hunter2"] });
  }
  add("a 5 MB plain-text password", "plain secret", at("repositories.local.password", hugeSecret), [
    "repositories.local.password",
  ], { neverPrinted: [hugeSecret.slice(0, 70)] });
  for (const [path, value, reported] of references) {
    add(`${path} is ${render(value)}`, "undeclared reference", at(path, value), reported);
  }
  add(
    "notify without any notifiers declared",
    "undeclared reference",
    at("notifiers", REMOVE),
    ["projects.app.notify[0]", "projects.site.notify[0]"],
    { says: [/unknown notifier "ops" \(none is declared\)/] },
  );
  const duplicates: [string, Node, string][] = [
    ["projects.site.sources", [files({ paths: ["/a"] }), files({ paths: ["/b"] })], "projects.site.sources[1]"],
    [
      "projects.site.sources",
      [sqlite({ path: "a/app.db" }), sqlite({ path: "b/app.sqlite" })],
      "projects.site.sources[1]",
    ],
    [
      "projects.site.sources",
      [files({ name: "www", paths: ["/a"] }), sqlite({ name: "www", path: "www.db" })],
      "projects.site.sources[1].name",
    ],
    [
      "projects.site.sources",
      [postgres({ database: "shop", globals: true }), command({ name: "shop-globals", run: "x", filename: "x" })],
      "projects.site.sources[1].name",
    ],
    ["projects.site.sources", [sqlite({ path: "data/my sessions.db" })], "projects.site.sources[0]"],
  ];
  for (const [path, value, reported] of duplicates) {
    add(`sources ${render(value).replace(/\s+/g, " ")}`, "duplicate source", at(path, value), [reported]);
  }
  for (const edit of statementEdits) {
    add(edit.name, edit.category, baseline(), edit.paths, { after: edit.after, says: edit.says });
  }
  for (const [name, path, value, reported] of hugeValues) {
    add(name, "huge", at(path, value), [reported]);
  }
  add("a 5 MB string literal in the file", "huge", at("projects.app.jitter", "9".repeat(fiveMegabytes) + "y"), [
    "projects.app.jitter",
  ]);
  add("a 5 MB project name", "huge", at("projects", { ["p".repeat(fiveMegabytes)]: 1 }), [], {
    says: [/^ {2}projects\.p{57}…: invalid name "p{57}"…/m],
  });
  add("a 5 MB unknown key", "huge", baseline(), [], {
    says: [/^ {2}projects\.app\.k{57}…: unknown key "k{57}"…; allowed keys are /m],
    after: `(config.projects.app as any)["k".repeat(${fiveMegabytes})] = 1;`,
  });
  // Deeper literals crash Deno's parser itself (a native stack overflow, from about 1500 levels).
  add("a literal object nested 1000 deep", "huge", at("host", expr(`${"{ a: ".repeat(1000)}1${" }".repeat(1000)}`)), [
    "host",
  ]);

  for (const whole of wholeFiles()) {
    corpus.push({
      name: whole.name,
      category: whole.category,
      files: whole.files,
      paths: [],
      says: whole.says,
      neverPrinted: [],
    });
  }
  return corpus;
}

function describe(value: Node): string {
  if (value instanceof Expr) return value.text.length > 40 ? `${value.text.slice(0, 37)}…` : value.text;
  if (value instanceof Call) return `${value.helper}(…)`;
  const text = render(value).replace(/\s+/g, " ");
  return text.length > 40 ? `${text.slice(0, 37)}…` : text;
}
