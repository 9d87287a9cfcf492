/**
 * `backupctl import`: a realistic projects.yml of the old NestJS backupctl and its .env become a backup.config.ts that
 * this project's loader accepts, key by key, with a TODO for everything that cannot be carried over and no secret
 * value anywhere. In process through `run()`, and through the real CLI once the command is registered.
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { run } from "../../src/cli/import.ts";
import { buildProgram } from "../../src/cli/program.ts";
import { loadConfig } from "../../src/config/load.ts";
import type { NormalizedConfig } from "../../src/config/normalize.ts";
import { ConfigError, ExitCode, UsageError } from "../../src/errors.ts";
import { envFileNames } from "../../src/import/old-config.ts";
import { runCli } from "../support/cli.ts";

const projectsYml = `# config/projects.yml of the old backupctl
projects:
  - name: vinsware
    enabled: true
    cron: '0 0 * * *'
    timeout_minutes: 30
    docker_network: vinsware_net
    database:
      type: postgres
      host: postgres-vinsware
      port: 5432
      name: vinsware_db
      user: backup_user
      password: \${VINSWARE_DB_PASSWORD}
      dump_timeout_minutes: 45
    compression:
      enabled: true
    restic:
      repository_path: /backups/vinsware
      password: \${VINSWARE_RESTIC_PASSWORD}
      snapshot_mode: combined
    retention:
      local_days: 7
      keep_daily: 7
      keep_weekly: 4
      keep_monthly: 0
    encryption:
      enabled: true
      type: gpg
      recipient: ops@vinsware.example
    hooks:
      pre_backup: 'curl -s http://vinsware-app:3000/maintenance/on'
      post_backup: 'curl -s http://vinsware-app:3000/maintenance/off'
    verification:
      enabled: true
    notification:
      type: slack
      config:
        webhook_url: \${SLACK_WEBHOOK_URL}
    monitor:
      type: uptime-kuma
      config:
        push_token: \${VINSWARE_PUSH_TOKEN}

  - name: project-x
    cron: '30 1 * * *'
    database:
      type: mysql
      host: \${PROJECTX_DB_HOST}
      port: 3306
      name: projectx_db
      user: backup_user
      password: Sup3r-Secret-Literal!
    assets:
      paths:
        - /data/projectx/storage
        - /data/projectx/uploads
    restic:
      repository_path: /backups/project-x
      snapshot_mode: separate
    retention:
      local_days: 14
      keep_daily: 14
      keep_weekly: 8
    notification:
      type: email
      config:
        smtp_host: smtp.example.com
        smtp_port: 587
        smtp_secure: false
        to: devops@example.com, oncall@example.com
        from: backup@example.com
        password: \${EMAIL_PASSWORD}

  - name: events
    cron: '15 */6 * * *'
    database:
      type: mongodb
      host: mongo-events
      port: \${EVENTS_MONGO_PORT}
      name: events
      user: \${EVENTS_MONGO_USER}
      password: \${EVENTS_MONGO_PASSWORD}
    restic:
      repository_path: /backups/events
      password: \${EVENTS_RESTIC_PASSWORD}
    retention:
      keep_daily: 3
      keep_weekly: 2
      keep_monthly: 6
    notification:
      type: webhook
      config:
        url: \${OPS_WEBHOOK_URL}
    monitor:
      type: uptime-kuma
      config:
        push_token: literal-kuma-token-4711

  - name: legacy-wiki
    enabled: false
    cron: '0 4 * * 0'
    database:
      type: postgres
      host: wiki-db
      name: wiki
      user: wiki
      password: \${WIKI_DB_PASSWORD}
    assets:
      paths: []
    restic:
      repository_path: /backups/vinsware
      password: \${VINSWARE_RESTIC_PASSWORD}
    retention:
      local_days: 3
      keep_daily: 7
    notification:
      type: slack
      config:
        webhook_url: \${SLACK_WEBHOOK_URL}
`;

/** The old .env: its values must never reach the output (a quoted PEM block spans lines). */
const dotEnv = `# .env of the old backupctl
TIMEZONE=Europe/Berlin
HETZNER_SSH_HOST=u123456.your-storagebox.de
HETZNER_SSH_USER=u123456
HETZNER_SSH_PORT=23
export HETZNER_SSH_KEY_PATH=/home/node/.ssh/id_ed25519
RESTIC_PASSWORD=restic-global-secret
VINSWARE_DB_PASSWORD=pg-secret-value-1
VINSWARE_RESTIC_PASSWORD=restic-secret-value-2
VINSWARE_PUSH_TOKEN=kuma-token-from-env
SLACK_WEBHOOK_URL="https://hooks.slack.com/services/T000/B000/XXXXSECRET"
EMAIL_PASSWORD='smtp secret value'
PROJECTX_DB_HOST=mysql-projectx
EVENTS_MONGO_USER=events
EVENTS_MONGO_PASSWORD=mongo-secret-value
EVENTS_RESTIC_PASSWORD=restic-secret-value-3
UPTIME_KUMA_BASE_URL=https://kuma.example.com
BACKUP_RETRY_COUNT=4
BACKUP_RETRY_DELAY_MS=5000
BACKUP_BASE_DIR=/data/backups
GPG_PRIVATE_KEY="-----BEGIN PGP PRIVATE KEY BLOCK-----
NOT_A_NAME=inside the quoted value
-----END PGP PRIVATE KEY BLOCK-----"
`;

/** Secret values of projects.yml and the .env, none of which may appear in the written file or the output. */
const secrets = [
  "Sup3r-Secret-Literal!",
  "literal-kuma-token-4711",
  "restic-global-secret",
  "pg-secret-value-1",
  "restic-secret-value-2",
  "kuma-token-from-env",
  "XXXXSECRET",
  "smtp secret value",
  "mongo-secret-value",
  "restic-secret-value-3",
  "BEGIN PGP PRIVATE KEY",
  // Plain .env values are not copied either: they are read when the config loads.
  "u123456",
  "/home/node/.ssh",
  "kuma.example.com",
];

/** What the written config reads when it loads (plain settings), with dummy values. */
const settings: Record<string, string> = {
  TIMEZONE: "Europe/Berlin",
  HETZNER_SSH_HOST: "box.example",
  HETZNER_SSH_USER: "backup",
  HETZNER_SSH_PORT: "23",
  HETZNER_SSH_KEY_PATH: "/run/secrets/box_key",
  BACKUP_RETRY_COUNT: "4",
  BACKUP_RETRY_DELAY_MS: "5000",
  PROJECTX_DB_HOST: "mysql-projectx",
  EVENTS_MONGO_PORT: "27017",
  EVENTS_MONGO_USER: "events",
};

const dir = mkdtempSync(join(tmpdir(), "backupctl-import-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function write(name: string, text: string): string {
  const path = join(dir, name);
  mkdirSync(join(path, ".."), { recursive: true });
  writeFileSync(path, text);
  return path;
}

const yml = write("config/projects.yml", projectsYml);
const envFile = write("config/.env", dotEnv);

interface Captured {
  code: number;
  stdout: string;
  stderr: string;
}

function runImport(file: string, options: { env?: string; out: string; force?: boolean }): Captured {
  let stdout = "";
  let stderr = "";
  const code = run(file, options, { stdout: (text) => (stdout += text), stderr: (text) => (stderr += text) });
  return { code, stdout, stderr };
}

function thrown(action: () => unknown): Error {
  try {
    action();
  } catch (error) {
    return error as Error;
  }
  assert.fail("expected an error");
}

/** Loads a written config with the settings it reads set, restoring the environment afterwards. */
async function load(path: string, values: Record<string, string> = settings): Promise<NormalizedConfig> {
  const saved = Object.fromEntries(Object.keys(values).map((name) => [name, process.env[name]]));
  Object.assign(process.env, values);
  try {
    return (await loadConfig(path, { fresh: true })).config;
  } finally {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  }
}

const out = join(dir, "backup.config.ts");
const result = runImport(yml, { env: envFile, out });
const written = readFileSync(out, "utf8");

describe("backupctl import (in process)", () => {
  it("writes the config and says what it holds", () => {
    assert.equal(result.code, ExitCode.ok);
    const todos = written.match(/\/\/ TODO:/g)?.length ?? 0;
    assert.ok(todos >= 9, `${todos} TODOs`);
    assert.equal(
      result.stdout.split("\n")[0],
      `Wrote ${out}: 4 projects, 3 repositories, 5 notifiers; ${todos} TODOs to review`,
    );
    assert.match(written, /^\/\/ backupctl configuration imported from .*config\/projects\.yml/);
    assert.match(
      written,
      /^import \{\n {2}defineConfig,\n {2}email,\n {2}env,\n {2}file,\n {2}files,\n {2}gpg,\n {2}mongodb,\n {2}mysql,\n {2}postgres,\n {2}restic,\n {2}slack,\n {2}uptimeKuma,\n {2}webhook,\n\} from "backupctl";$/m,
    );
    for (const line of written.split("\n")) {
      assert.ok(!/^\t/.test(line), "indented with spaces");
      assert.ok(line.length <= 120, `line too long: ${line}`);
    }
  });

  it("loads and validates with the project's loader, mapped key by key", async () => {
    const config = await load(out);
    assert.equal(config.timezone, "Europe/Berlin");
    assert.deepEqual(config.defaults, { retry: { attempts: 4, baseDelay: "5000ms" } });

    // One repository per distinct repository_path (legacy-wiki shares vinsware's), on the storage box.
    assert.deepEqual(Object.keys(config.repositories), ["vinsware", "project-x", "events"]);
    assert.deepEqual(config.repositories.vinsware, {
      type: "restic",
      url: "sftp://backup@box.example:23//backups/vinsware",
      password: { secret: "env", name: "VINSWARE_RESTIC_PASSWORD" },
      ssh: { key: { secret: "file", path: "/run/secrets/box_key" }, hostKeyChecking: "accept-new" },
    });
    assert.deepEqual(config.repositories["project-x"].password, { secret: "env", name: "RESTIC_PASSWORD" });
    assert.equal(config.repositories.events.url, "sftp://backup@box.example:23//backups/events");

    const { vinsware, events } = config.projects;
    const projectX = config.projects["project-x"];
    const wiki = config.projects["legacy-wiki"];
    assert.deepEqual(
      Object.values(config.projects).map((p) => [p.name, p.schedule, p.enabled]),
      [
        ["vinsware", "0 0 * * *", true],
        ["project-x", "30 1 * * *", true],
        ["events", "15 */6 * * *", true],
        ["legacy-wiki", "0 4 * * 0", false],
      ],
    );

    assert.deepEqual(vinsware.sources, [{
      type: "postgres",
      name: "vinsware_db",
      host: "postgres-vinsware",
      port: 5432,
      database: "vinsware_db",
      user: "backup_user",
      password: { secret: "env", name: "VINSWARE_DB_PASSWORD" },
    }]);
    assert.deepEqual(projectX.sources, [
      {
        type: "mysql",
        name: "projectx_db",
        host: "mysql-projectx",
        port: 3306,
        database: "projectx_db",
        user: "backup_user",
        password: { secret: "env", name: "PROJECT_X_DB_PASSWORD" },
      },
      { type: "files", name: "files", paths: ["/data/projectx/storage", "/data/projectx/uploads"] },
    ]);
    assert.deepEqual(events.sources, [{
      type: "mongodb",
      name: "events",
      host: "mongo-events",
      port: 27017,
      database: "events",
      user: "events",
      password: { secret: "env", name: "EVENTS_MONGO_PASSWORD" },
    }]);
    assert.deepEqual(wiki.sources.map((s) => s.type), ["postgres"], "an empty assets.paths adds no files source");

    assert.deepEqual(
      Object.values(config.projects).map((p) => [p.repositories, p.retention]),
      [
        [["vinsware"], { daily: 7, weekly: 4 }],
        [["project-x"], { daily: 14, weekly: 8 }],
        [["events"], { daily: 3, weekly: 2, monthly: 6 }],
        [["vinsware"], { daily: 7 }],
      ],
    );
    assert.deepEqual(vinsware.encrypt, { type: "gpg", recipient: "ops@vinsware.example" });
    assert.equal(projectX.encrypt, undefined);
    assert.deepEqual(vinsware.hooks, {
      before: "curl -s http://vinsware-app:3000/maintenance/on",
      after: "curl -s http://vinsware-app:3000/maintenance/off",
      timeout: "60s",
    });
    assert.equal(vinsware.timeout, "45m", "the larger of timeout_minutes and dump_timeout_minutes");
    assert.equal(projectX.timeout, undefined);

    // Notifiers: one per distinct (type, config); vinsware and legacy-wiki share the Slack channel.
    assert.deepEqual(
      Object.values(config.projects).map((p) => p.notify),
      [["slack", "kuma-vinsware"], ["email"], ["webhook", "kuma-events"], ["slack"]],
    );
    assert.deepEqual(config.notifiers, {
      slack: { type: "slack", webhookUrl: { secret: "env", name: "SLACK_WEBHOOK_URL" } },
      "kuma-vinsware": { type: "uptimeKuma", pushUrl: { secret: "env", name: "VINSWARE_KUMA_PUSH_URL" } },
      email: {
        type: "email",
        smtp: {
          host: "smtp.example.com",
          port: 587,
          secure: false,
          password: { secret: "env", name: "EMAIL_PASSWORD" },
        },
        from: "backup@example.com",
        to: ["devops@example.com", "oncall@example.com"],
      },
      webhook: { type: "webhook", url: { secret: "env", name: "OPS_WEBHOOK_URL" } },
      "kuma-events": { type: "uptimeKuma", pushUrl: { secret: "env", name: "EVENTS_KUMA_PUSH_URL" } },
    });
  });

  it("stops the load naming a plain setting that is not exported", async () => {
    const { HETZNER_SSH_USER: _, ...rest } = settings;
    const saved = process.env.HETZNER_SSH_USER;
    delete process.env.HETZNER_SSH_USER;
    try {
      // A file of its own: a module already imported may be cached by path.
      const copy = write("unset.config.ts", written);
      await assert.rejects(load(copy, rest), (error: Error) => {
        assert.ok(error instanceof ConfigError);
        assert.match(error.message, /HETZNER_SSH_USER is not set: export it/);
        return true;
      });
    } finally {
      if (saved !== undefined) process.env.HETZNER_SSH_USER = saved;
    }
  });

  it("leaves a TODO where each unmappable key was, and a warning for each", () => {
    const project = (name: string) => {
      const start = written.indexOf(`    ${/^[a-z]+$/.test(name) ? name : JSON.stringify(name)}: {\n      schedule:`);
      assert.ok(start > 0, name);
      return written.slice(start, written.indexOf("\n    },\n", start));
    };
    const vinsware = project("vinsware");
    const before = (text: string, key: string) => {
      const todo = text.indexOf(text.match(new RegExp(`// TODO: ${key}`))?.[0] ?? "\u0000");
      assert.ok(todo > 0, `a TODO for ${key}`);
      return todo;
    };
    assert.ok(before(vinsware, 'docker_network "vinsware_net"') < vinsware.indexOf("sources:"));
    assert.ok(before(vinsware, "compression") < vinsware.indexOf("repositories:"));
    assert.ok(before(vinsware, 'restic.snapshot_mode "combined"') < vinsware.indexOf("repositories:"));
    assert.ok(before(vinsware, "retention.local_days 7") < vinsware.indexOf("retention:"));
    assert.ok(before(vinsware, "verification.enabled") > vinsware.indexOf("notify:"));
    const projectX = project("project-x");
    before(projectX, 'restic.snapshot_mode "separate"');
    before(projectX, "retention.local_days 14");
    assert.doesNotMatch(project("events"), /TODO/);
    assert.match(written, /\/\/ TODO: pushUrl is the monitor's whole push URL: export\n.*VINSWARE_KUMA_PUSH_URL=/);
    assert.match(written, /\/\/ TODO: The old tool's storage box: HETZNER_SSH_USER/);

    for (const key of ["docker_network", "compression", "snapshot_mode", "local_days", "verification.enabled"]) {
      assert.match(result.stderr, new RegExp(`^warning: vinsware: .*${key}`, "m"), key);
    }
    assert.match(result.stderr, /^warning: projects\[1\]\.database\.password: .* export PROJECT_X_DB_PASSWORD/m);
    assert.match(result.stderr, /^warning: notifier kuma-events: export EVENTS_KUMA_PUSH_URL/m);
    assert.match(result.stderr, /^warning: \S*\.env sets BACKUP_BASE_DIR: not imported/m);
    // Placeholders the .env does not define are named; those it defines are not.
    assert.match(result.stderr, /^warning: EVENTS_MONGO_PORT \(projects\[2\]\.database\.port\) is not defined/m);
    assert.match(result.stderr, /^warning: WIKI_DB_PASSWORD .* is not defined/m);
    assert.doesNotMatch(result.stderr, /VINSWARE_DB_PASSWORD .*is not defined/);
  });

  it("never writes or prints a secret value from projects.yml or the .env", () => {
    for (const secret of secrets) {
      assert.ok(!written.includes(secret), `the config holds ${secret}`);
      assert.ok(!result.stdout.includes(secret), `stdout holds ${secret}`);
      assert.ok(!result.stderr.includes(secret), `stderr holds ${secret}`);
    }
    assert.match(written, /password: env\("PROJECT_X_DB_PASSWORD"\)/);
    assert.match(written, /pushUrl: env\("EVENTS_KUMA_PUSH_URL"\)/);
  });

  it("without --env: schedules in UTC with a TODO, and the SMTP login left for review", async () => {
    const plain = join(dir, "plain.config.ts");
    const { stdout, stderr } = runImport(yml, { out: plain });
    const text = readFileSync(plain, "utf8");
    assert.match(stdout, /^Wrote .*plain\.config\.ts: 4 projects, 3 repositories, 5 notifiers; \d+ TODOs to review$/m);
    assert.match(text, /\/\/ TODO: schedules are read in UTC/);
    assert.match(
      text,
      /const storage = `sftp:\$\{setting\("HETZNER_SSH_USER"\)\}@\$\{setting\("HETZNER_SSH_HOST"\)\}:`;/,
    );
    assert.match(text, /TODO: no --env: if the old .env set SMTP_USER, add user: setting\("SMTP_USER"\)/);
    assert.doesNotMatch(text, /defaults:/);
    assert.match(stderr, /^warning: no --env given: schedules are read in UTC/m);
    const config = await load(plain);
    assert.equal(config.timezone, "UTC");
    assert.equal(config.repositories.vinsware.url, "sftp:backup@box.example:/backups/vinsware");
  });

  it("declares in hooks.env the secret variables a hook expands (children do not inherit them)", async () => {
    const hooked = write(
      "hooked/projects.yml",
      `projects:
  - name: app
    cron: '0 3 * * *'
    database:
      type: postgres
      host: db
      name: app
      user: backup
      password: \${APP_DB_PASSWORD}
    restic:
      repository_path: /backups/app
      password: \${RESTIC_PASSWORD}
    retention:
      keep_daily: 7
    hooks:
      pre_backup: 'PGPASSWORD=\${APP_DB_PASSWORD} psql -h db -U backup -c "SELECT 1" app && curl -s "$STATUS_URL"'
`,
    );
    const target = join(dir, "hooked.config.ts");
    assert.equal(runImport(hooked, { env: envFile, out: target }).code, ExitCode.ok);
    const config = await load(target);
    assert.deepEqual(config.projects.app.hooks?.env, { APP_DB_PASSWORD: { secret: "env", name: "APP_DB_PASSWORD" } });
  });

  it("reads only the names of a .env, skipping quoted values over several lines", () => {
    assert.deepEqual(
      [...envFileNames(dotEnv)].filter((name) =>
        name.startsWith("GPG") || name.startsWith("NOT") || name === "TIMEZONE"
      ),
      ["TIMEZONE", "GPG_PRIVATE_KEY"],
    );
    assert.ok(envFileNames(dotEnv).has("HETZNER_SSH_KEY_PATH"), "export NAME=… counts");
    assert.deepEqual([...envFileNames('A=\'x\\\nB=1\'\n# C=2\nD="a\\"b\nF=1"\nE=3')], ["A", "D", "E"]);
  });

  it("refuses to overwrite an existing file without --force (exit 64)", () => {
    const existing = write("existing.config.ts", "// mine\n");
    const error = thrown(() => runImport(yml, { env: envFile, out: existing }));
    assert.ok(error instanceof UsageError);
    assert.equal(error.exitCode, ExitCode.usage);
    assert.match(error.message, /already exists; pass --force to overwrite it/);
    assert.equal(readFileSync(existing, "utf8"), "// mine\n");
    assert.equal(runImport(yml, { env: envFile, out: existing, force: true }).code, ExitCode.ok);
    assert.match(readFileSync(existing, "utf8"), /imported from/);
  });

  it("rejects malformed YAML with exit 3, naming the line and never quoting it", () => {
    const broken = write(
      "broken.yml",
      "projects:\n  - name: shop\n    database:\n      password: s3cret-on-a-bad-line: x\n",
    );
    const target = join(dir, "never.config.ts");
    const error = thrown(() => runImport(broken, { out: target }));
    assert.ok(error instanceof ConfigError);
    assert.equal(error.exitCode, ExitCode.invalidConfig);
    assert.match(error.message, /broken\.yml/);
    assert.match(error.message, /line 4, column \d+: YAML: /);
    assert.ok(!error.message.includes("s3cret-on-a-bad-line"), error.message);
    assert.equal(existsSync(target), false);
  });

  it("rejects a wrong type with exit 3, naming its path", () => {
    const wrong = write(
      "wrong.yml",
      projectsYml.replace("type: mongodb", "type: oracle").replace("keep_daily: 14", "keep_daily: fourteen")
        .replace("password: Sup3r-Secret-Literal!", "password: [Sup3r-Secret-Literal!]"),
    );
    const error = thrown(() => runImport(wrong, { out: join(dir, "never.config.ts") }));
    assert.ok(error instanceof ConfigError);
    assert.equal(error.exitCode, ExitCode.invalidConfig);
    assert.match(
      error.message,
      /^ {2}projects\[2\]\.database\.type: expected postgres, mysql or mongodb, got "oracle"$/m,
    );
    assert.match(error.message, /^ {2}projects\[1\]\.retention\.keep_daily: expected a number, got a string$/m);
    assert.match(error.message, /^ {2}projects\[1\]\.database\.password: expected a string, got a list$/m);
    assert.ok(!error.message.includes("Sup3r"), error.message);

    const empty = thrown(() => runImport(write("empty.yml", "# nothing\n"), { out: join(dir, "never.config.ts") }));
    assert.match(empty.message, /the file is empty: expected a top-level projects: list/);
    const twice = write("twice.yml", projectsYml.replace("name: events", "name: vinsware"));
    const duplicate = thrown(() => runImport(twice, { out: join(dir, "never.config.ts") }));
    assert.ok(duplicate instanceof ConfigError);
    assert.match(duplicate.message, /projects\[2\]\.name: "vinsware" is also the name of projects\[0\]/);
  });
});

const registered = (await buildProgram({ stdout: () => {}, stderr: () => {} }, () => {})).commands
  .some((command) => command.name() === "import");
const skip = registered ? false : "`import` is not registered in src/cli/program.ts yet";

describe("backupctl import (the CLI)", () => {
  const cwd = join(dir, "cli");
  mkdirSync(cwd, { recursive: true });
  write("cli/projects.yml", projectsYml);
  write("cli/.env", dotEnv);

  it("writes backup.config.ts, prints the summary, warns on stderr, never a secret", { skip }, async () => {
    const done = await runCli(["import", "projects.yml", "--env", ".env"], { cwd });
    assert.equal(done.code, 0, done.stderr);
    assert.match(
      done.stdout,
      /^Wrote backup\.config\.ts: 4 projects, 3 repositories, 5 notifiers; \d+ TODOs to review$/m,
    );
    assert.match(done.stderr, /^warning: vinsware: docker_network "vinsware_net"/m);
    const text = readFileSync(join(cwd, "backup.config.ts"), "utf8");
    const todos = text.match(/\/\/ TODO:/g)?.length;
    assert.match(done.stdout, new RegExp(`; ${todos} TODOs to review`));
    for (const secret of secrets) {
      assert.ok(!`${done.stdout}${done.stderr}${text}`.includes(secret), secret);
    }
    const config = await load(join(cwd, "backup.config.ts"));
    assert.deepEqual(Object.keys(config.projects), ["vinsware", "project-x", "events", "legacy-wiki"]);
  });

  it("exits 64 when the output exists and --force is not given", { skip }, async () => {
    write("cli/taken.config.ts", "// mine\n");
    const done = await runCli(["import", "projects.yml", "--out", "taken.config.ts"], { cwd });
    assert.equal(done.code, 64);
    assert.match(done.stderr, /taken\.config\.ts already exists; pass --force to overwrite it/);
    assert.equal(readFileSync(join(cwd, "taken.config.ts"), "utf8"), "// mine\n");
    const forced = await runCli(["import", "projects.yml", "--out", "taken.config.ts", "--force"], { cwd });
    assert.equal(forced.code, 0, forced.stderr);
  });

  it("exits 3 on malformed YAML and on a wrong type, naming where", { skip }, async () => {
    write("cli/broken.yml", "projects:\n  - name: [shop\n");
    const broken = await runCli(["import", "broken.yml", "--out", "a.config.ts"], { cwd });
    assert.equal(broken.code, 3);
    assert.match(broken.stderr, /invalid configuration .*broken\.yml/);
    assert.match(broken.stderr, /line \d+, column \d+: YAML: /);
    write("cli/wrong.yml", projectsYml.replace("type: mongodb", "type: oracle"));
    const wrong = await runCli(["import", "wrong.yml", "--out", "b.config.ts"], { cwd });
    assert.equal(wrong.code, 3);
    assert.match(wrong.stderr, /projects\[2\]\.database\.type: expected postgres, mysql or mongodb/);
    assert.equal(existsSync(join(cwd, "a.config.ts")) || existsSync(join(cwd, "b.config.ts")), false);
  });
});
