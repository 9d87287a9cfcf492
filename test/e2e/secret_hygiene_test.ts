/**
 * Secret hygiene (issue 5, point 6). One config declares a distinctive random value for every kind of secret the
 * product knows: the PostgreSQL and MariaDB passwords, the restic passwords of a local, an SFTP and a REST repository,
 * the SFTP login key (a file) and its passphrase, the REST URL with `user:password`, an age identity, a gpg private key
 * and its passphrase, the SMTP password of an email() notifier, a Slack webhook URL, a webhook() URL and header, a
 * healthchecks ping URL, an Uptime Kuma push URL and the env secrets of command() sources. Every one is given as
 * env("…") or file("…"). The real CLI then runs validate (with --secrets), plan in every format and with --out,
 * apply (PostgreSQL, MariaDB, files and a command into the local repository, copied over SFTP and REST), status,
 * snapshots, apply of a saved plan, diff, and failing runs (a wrong PostgreSQL password, a command whose stderr quotes
 * its secret, a REST URL with a wrong password, an onFailure hook tracing its commands with `set -x`), some with
 * --debug. Meanwhile every process's command line is sampled from /proc and the state folder is read as it changes
 * (so state.db's -wal and -shm files are seen while a run writes them). Afterwards no secret value, no line of a
 * private key's body and no `user:password` pair may be found in: any stdout/stderr, the plan files, any file under
 * the state folder (raw bytes), any process's command line, the config folder's other files, or the repositories.
 *
 * Escaped forms (issue 16, point 6): one more secret holds a quote, a double quote, a backslash, a space, `&`, `+`, `/`
 * and non-ASCII characters. A failing `before` hook that declares it in its `env` prints it the way programs do: a
 * `bash -x` trace (`PGPASSWORD='…'\''…'`), `printf %q` in a UTF-8 and in the C locale (`$'…\303\274…'`), `declare -p`
 * (double-quoted), JSON (as is and with `\uXXXX`), URL-encoded (encodeURIComponent, form encoding with `+`, lower-case
 * hex) and base64 (on its own and behind 1, 2 and 3 bytes of a longer text, standard and URL-safe). The hook's stderr
 * tail is quoted in the output, the `--log-file`, state.db and the webhook notification of the failed run (sent to a
 * receiver on loopback): none of these forms may appear in any of them, nor anywhere else the scans below look.
 *
 * Not covered because the product does not have it (nothing is faked here):
 * - The Slack, email, healthchecks and Uptime Kuma channels point nowhere reachable: their secrets are resolved and
 *   the sends fail; only the webhook channel of the escaped-forms project reaches a server.
 * - There is no `restore`, `verify` (restore drills), `watch` or `restic` passthrough run here: the decryption secrets
 *   (age identity, gpg key and passphrase) are never handed to a child process.
 * - Hooks get only the secrets their `env` declares (the config's other env() variables are withheld from every
 *   child): the failing project's onFailure hook declares the webhook URL and header it posts. Its stderr (a
 *   `set -x` trace) shows them; they are redacted because the config names their variables.
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type CliResult, runCli } from "../support/cli.ts";
import { filesUnder, sampleCommandLines } from "../support/inspect.ts";
import { type MariadbServer, startMariadb } from "../support/mariadb.ts";
import { type PostgresServer, startPostgres } from "../support/postgres.ts";
import { type RestServer, startRestServer } from "../support/rclone.ts";
import { type HttpReceiver, startHttpReceiver } from "../support/receivers.ts";
import { freePort, requireProgram, type SftpServer, startSftp } from "../support/sshd.ts";

const day1 = "2026-11-21T10:00:00Z";

/** A secret value the test looks for, with the label used in messages in its place. */
interface Secret {
  label: string;
  value: string;
}

/** Where a secret was found: the label of the secret, never its value. */
interface Leak {
  secret: string;
  where: string;
}

const hex = (bytes = 8) => randomBytes(bytes).toString("hex");

/** The labels of the secrets a text holds. */
function secretsIn(text: string, secrets: Secret[]): string[] {
  return secrets.filter((secret) => text.includes(secret.value)).map((secret) => secret.label);
}

/** Replaces every secret value by its label, longest first, so a text can go into a failure message. */
function mask(text: string, secrets: Secret[]): string {
  let out = text;
  for (const secret of [...secrets].sort((a, b) => b.value.length - a.value.length)) {
    out = out.split(secret.value).join(`<${secret.label}>`);
  }
  return out;
}

/** Fails naming each place and secret found; the values themselves are never in the message. */
function assertNoLeaks(leaks: Leak[], what: string): void {
  const lines = [...new Set(leaks.map((leak) => `  - ${leak.secret} in ${leak.where}`))];
  assert.ok(lines.length === 0, `${what}: ${lines.length} secret leak(s) found:\n${lines.join("\n")}`);
}

/** Scans every file under a folder, as raw bytes. */
function scanFiles(dir: string, secrets: Secret[]): Leak[] {
  return filesUnder(dir).flatMap((file) =>
    secretsIn(file.bytes, secrets).map((secret) => ({ secret, where: `file ${file.path}` }))
  );
}

/**
 * The forms a value takes when programs print it, each labelled, as this test computes them (bash's own forms are
 * taken from bash). In a longer base64 text the value's characters depend on its offset in a 3-byte group: the forms
 * are the characters that depend on the value alone, at each offset.
 */
function escapedForms(value: string): { label: string; value: string }[] {
  const bash = (script: string, locale = "C.UTF-8") =>
    execFileSync("bash", ["-c", script], { env: { ...process.env, LC_ALL: locale, V: value } }).toString();
  const json = JSON.stringify(value).slice(1, -1);
  const component = encodeURIComponent(value);
  const forms = [
    { label: "bash -x single-quoted", value: value.replaceAll("'", `'\\''`) },
    { label: "printf %q", value: bash('printf %q "$V"') },
    { label: "printf %q in the C locale", value: bash('printf %q "$V"', "C").replace(/^\$'(.*)'$/s, "$1") },
    { label: "declare -p", value: bash("declare -p V").replace(/^declare -x V="(.*)"\n$/s, "$1") },
    { label: "JSON", value: json },
    {
      label: "JSON with \\u escapes",
      value: json.replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`),
    },
    { label: "URL encoding (encodeURIComponent)", value: component },
    { label: "URL form encoding", value: new URLSearchParams({ v: value }).toString().slice(2) },
    { label: "URL encoding, lower-case hex", value: component.replace(/%[0-9A-F]{2}/g, (e) => e.toLowerCase()) },
  ];
  const bytes = Buffer.from(value);
  forms.push({ label: "base64", value: bytes.toString("base64").replace(/=+$/, "") });
  for (let offset = 0; offset < 3; offset++) {
    const encoded = Buffer.concat([Buffer.alloc(offset), bytes]).toString("base64");
    const inner = encoded.slice(Math.ceil((8 * offset) / 6), Math.floor((8 * (offset + bytes.length)) / 6));
    forms.push({ label: `base64 at offset ${offset}`, value: inner });
    forms.push({
      label: `URL-safe base64 at offset ${offset}`,
      value: inner.replaceAll("+", "-").replaceAll("/", "_"),
    });
  }
  return forms;
}

/** Lines of a PEM/OpenSSH/armored private key's body that are long enough to be unmistakable. */
function keyBodyLines(text: string): string[] {
  return text.split(/\r?\n/).map((line) => line.trim())
    .filter((line) => line.length >= 40 && /^[A-Za-z0-9+/=]+$/.test(line));
}

describe("secret hygiene: no secret value in output, plan files, state, command lines or config folder", () => {
  let pg: PostgresServer | undefined;
  let maria: MariadbServer | undefined;
  let sftp: SftpServer | undefined;
  let rest: RestServer | undefined;
  let receiver: HttpReceiver | undefined;
  let work = "";
  let logFile = "";
  /** The hook that prints the escaped forms, and the file of forms it prints that bash cannot make itself. */
  let formsHook = "";
  let formsFile = "";
  let configDir = "";
  let secretsDir = "";
  let stateDir = "";
  let config = "";
  const env: Record<string, string> = {};
  const secrets: Secret[] = [];
  const outputs: { what: string; text: string }[] = [];
  const planFiles: string[] = [];
  /** Leaks seen in the state folder while a command ran (files as they were then: WAL, shm, journals). */
  const liveStateLeaks: Leak[] = [];
  const liveStateFiles = new Set<string>();
  let sampler: ReturnType<typeof sampleCommandLines> | undefined;
  let stateWatch: ReturnType<typeof setInterval> | undefined;

  const secret = (label: string, value: string) => {
    secrets.push({ label, value });
    return value;
  };

  /** Runs the CLI with every secret in its environment; keeps both streams for the scans. */
  const cli = async (args: string[], extraEnv: Record<string, string | undefined> = {}): Promise<CliResult> => {
    const result = await runCli(["--config", config, ...args], {
      env: { ...env, BACKUPCTL_CONFIG: undefined, BACKUPCTL_STATE_DIR: undefined, ...extraEnv },
      cwd: configDir,
      timeoutMs: 150_000,
    });
    const what = `backupctl ${args.join(" ")}`;
    outputs.push({ what: `stdout of ${what}`, text: result.stdout }, {
      what: `stderr of ${what}`,
      text: result.stderr,
    });
    return result;
  };
  /** assert.match, but a failure shows the text with every secret masked (assert.match would print it as it is). */
  const expectMatch = (text: string, pattern: RegExp) =>
    assert.ok(pattern.test(text), `expected ${pattern} in:\n${mask(text, secrets)}`);
  /** The output of a run for a failure message, with every secret masked. */
  const shown = (result: CliResult) => mask(`${result.stdout}\n${result.stderr}`, secrets);

  before(async () => {
    for (
      const [program, pkg] of [
        ["restic", "restic"],
        ["pg_dump", "postgresql-client"],
        ["mariadb-dump", "mariadb-client"],
        ["age", "age"],
        ["age-keygen", "age"],
        ["gpg", "gnupg"],
      ]
    ) {
      requireProgram(program, pkg);
    }
    pg = await startPostgres();
    maria = await startMariadb();
    sftp = await startSftp();
    rest = await startRestServer();
    receiver = await startHttpReceiver();
    work = mkdtempSync(join(tmpdir(), "backupctl-e2e-secrets-"));
    logFile = join(work, "apply.log.jsonl");
    configDir = join(work, "config");
    secretsDir = join(work, "secrets");
    stateDir = join(configDir, ".backupctl");
    config = join(configDir, "backup.config.ts");
    mkdirSync(join(configDir, "data", "uploads"), { recursive: true });
    mkdirSync(join(configDir, "plans"));
    mkdirSync(secretsDir, { mode: 0o700 });
    mkdirSync(join(configDir, "data", "notes"));
    writeFileSync(join(configDir, "data", "uploads", "invoice.txt"), "Invoice 42\n");
    writeFileSync(join(configDir, "data", "notes", "runbook.md"), "# Runbook\n");

    // Distinctive random values, each reaching backupctl through an env() or file() reference; the tokens and
    // user:password pairs inside some of them are looked for on their own too.
    env.PG_PASSWORD = secret("PostgreSQL password", `pg-secret-${hex()}`);
    env.PG_WRONG_PASSWORD = secret("wrong PostgreSQL password", `pg-wrong-${hex()}`);
    env.MARIADB_PASSWORD = secret("MariaDB password", `mdb-secret-${hex()}`);
    const localPassword = secret("local restic password", `local-restic-${hex()}`);
    writeFileSync(join(secretsDir, "local_restic_password"), `${localPassword}\n`, { mode: 0o600 });
    env.SFTP_RESTIC_PASSWORD = secret("SFTP restic password", `sftp-restic-${hex()}`);
    env.REST_RESTIC_PASSWORD = secret("REST restic password", `rest-restic-${hex()}`);
    env.SSH_KEY_PASSPHRASE = secret("SSH key passphrase", sftp.passphrase);
    keyBodyLines(readFileSync(sftp.lockedKeyFile, "utf8"))
      .forEach((line, index) => secret(`SSH private key body line ${index + 1}`, line));
    env.REST_URL = secret("REST URL with credentials", rest.url);
    secret("REST basic-auth password", rest.password);
    secret("REST user:password pair", `${rest.user}:${rest.password}`);
    const wrongRest = `rest-wrong-${hex()}`;
    env.REST_BAD_URL = secret(
      "wrong REST URL with credentials",
      `rest:http://${rest.user}:${wrongRest}@127.0.0.1:${rest.port}/bad/`,
    );
    secret("wrong REST basic-auth password", wrongRest);
    secret("wrong REST user:password pair", `${rest.user}:${wrongRest}`);

    const ageKey = execFileSync("age-keygen", { stdio: ["ignore", "pipe", "ignore"] }).toString();
    const ageRecipient = /public key: (age1[0-9a-z]+)/.exec(ageKey)![1];
    env.AGE_IDENTITY = secret("age identity", /AGE-SECRET-KEY-1[0-9A-Z]+/.exec(ageKey)![0]);

    // A gpg key with a passphrase (given on stdin, never argv): its public half encrypts, its private half and
    // passphrase are the decryption secrets.
    const gnupg = join(work, "gnupg");
    mkdirSync(gnupg, { mode: 0o700 });
    env.GPG_PASSPHRASE = secret("gpg passphrase", `gpg-pass-${hex()}`);
    const gpg = (args: string[], input?: string) =>
      execFileSync("gpg", ["--homedir", gnupg, "--batch", "--quiet", ...args], {
        input,
        stdio: ["pipe", "pipe", "ignore"],
      });
    const uid = "backupctl hygiene <hygiene@example.invalid>";
    try {
      gpg([
        "--pinentry-mode",
        "loopback",
        "--passphrase-fd",
        "0",
        "--quick-gen-key",
        uid,
        "default",
        "default",
        "never",
      ], env.GPG_PASSPHRASE);
      const publicKey = gpg(["--armor", "--export", uid]).toString();
      writeFileSync(join(configDir, "backup.pub.asc"), publicKey);
      const armored = gpg(
        ["--pinentry-mode", "loopback", "--passphrase-fd", "0", "--armor", "--export-secret-keys", uid],
        env.GPG_PASSPHRASE,
      ).toString();
      writeFileSync(join(secretsDir, "gpg-secret.asc"), armored, { mode: 0o600 });
      // The export holds the public key packets too: only the lines that are not in the public key are secret.
      const publicLines = new Set(keyBodyLines(publicKey));
      keyBodyLines(armored).filter((line) => !publicLines.has(line))
        .forEach((line, index) => secret(`gpg private key body line ${index + 1}`, line));
    } finally {
      execFileSync("gpgconf", ["--homedir", gnupg, "--kill", "gpg-agent"], { stdio: "ignore" });
    }

    env.SMTP_PASSWORD = secret("SMTP password", `smtp-secret-${hex()}`);
    const slackToken = secret("Slack webhook token", `slack-token-${hex(12)}`);
    env.SLACK_WEBHOOK_URL = secret(
      "Slack webhook URL",
      `https://hooks.slack.com/services/T0HYGIENE/B0HYGIENE/${slackToken}`,
    );
    // Nothing listens there: the failing project's onFailure hook posts to it and fails.
    const closedPort = await freePort();
    const webhookToken = secret("webhook URL token", `webhook-token-${hex(12)}`);
    env.WEBHOOK_URL = secret("webhook URL", `http://127.0.0.1:${closedPort}/hooks/${webhookToken}`);
    env.WEBHOOK_AUTH = secret("webhook header secret", `Bearer webhook-header-${hex(12)}`);
    const pingToken = secret("healthchecks ping token", `hc-token-${hex(12)}`);
    writeFileSync(join(secretsDir, "healthchecks_url"), `https://hc-ping.com/${pingToken}\n`, { mode: 0o600 });
    env.KUMA_PUSH_URL = secret("Uptime Kuma push URL", `https://kuma.example.invalid/api/push/kuma-token-${hex(12)}`);
    env.EXPORT_TOKEN = secret("command source env secret", `export-token-${hex()}`);
    const brokenToken = secret("failing command source env secret", `cmd-secret-${hex()}`);
    writeFileSync(join(secretsDir, "broken_token"), `${brokenToken}\n`, { mode: 0o600 });

    // The escaped forms' secret: a quote, a double quote, a backslash, a space, &, +, / and non-ASCII characters.
    env.DBPW = secret("escaped-forms secret", `S3cr3t'Q-456 a&b+c/d\\e"ü€-${hex(6)}`);
    for (const form of escapedForms(env.DBPW)) secret(`escaped-forms secret (${form.label})`, form.value);
    // What bash cannot print itself (JSON, URL encodings) the hook reads from a file outside the scanned folders.
    formsFile = join(secretsDir, "forms.txt");
    const others = escapedForms(env.DBPW).filter((form) => /JSON|URL/.test(form.label) && !/base64/.test(form.label));
    writeFileSync(formsFile, `${others.map((form) => form.value).join(" ")}\n`, { mode: 0o600 });
    formsHook = [
      "set -x",
      "PGPASSWORD=$DBPW psql --version >/dev/null",
      "{ set +x; } 2>/dev/null",
      `printf '%q %s\\n' "$DBPW" "$(export LC_ALL=C; printf '%q' "$DBPW")" >&2`,
      "declare -p DBPW >&2",
      'cat "$FORMS_FILE" >&2',
      `b64() { printf "$1" "$DBPW" | base64 -w0; printf ' '; }`,
      "{ b64 '%s'; b64 'u:%s:x'; b64 'us:%s:x'; b64 'use:%s:x'; echo; } >&2",
      "{ b64 '%s'; b64 'u:%s:x'; b64 'us:%s:x'; b64 'use:%s:x'; echo; } | tr '+/' '-_' >&2",
      "exit 1",
    ].join("\n");

    await pg.createUser("backup", env.PG_PASSWORD);
    await pg.createDatabase("shop", "backup");
    await pg.psql(
      `SET ROLE backup;
      CREATE TABLE orders (id integer PRIMARY KEY, note text);
      INSERT INTO orders SELECT i, 'order ' || i || repeat(' x', i % 40) FROM generate_series(1, 20000) AS i;`,
      "shop",
    );
    await maria.createDatabase("wiki");
    await maria.createUser("backup", env.MARIADB_PASSWORD, "wiki");
    await maria.sql(
      // Rows enough for mariadb-dump to run a few tenths of a second: the /proc sampler must see it to check it (a
      // 5,000-row dump was over before a sample on a loaded CI machine).
      `CREATE TABLE pages (id INT PRIMARY KEY, title VARCHAR(200));
      INSERT INTO pages SELECT seq, CONCAT('page ', seq, REPEAT(' wiki', 30)) FROM seq_1_to_150000;`,
      "wiki",
    );

    // The failing project's onFailure hook posts to the webhook itself (bash only, no program gets the values as
    // arguments), but it traces its commands (set -x): the values it expands go to stderr, which backupctl quotes
    // when the hook fails. Nothing listens on the port, so it does fail.
    const hookScript = [
      "set -x",
      `notify() { printf 'POST %s HTTP/1.0\\r\\nAuthorization: %s\\r\\n\\r\\n' "$1" "$2" > /dev/tcp/127.0.0.1/${closedPort}; }`,
      'notify "$WEBHOOK_URL" "$WEBHOOK_AUTH"',
    ].join("\n");
    const secretFile = (name: string) => JSON.stringify(join(secretsDir, name));
    const source = (sftpKnownHosts: string) =>
      `import {
  age, command, defineConfig, email, env, file, files, gpg, healthchecks, mysql, postgres, restic, slack, uptimeKuma,
  webhook,
} from "backupctl";

export default defineConfig({
  timezone: "UTC",
  repositories: {
    local: restic({ url: "repos/local", password: file(${secretFile("local_restic_password")}) }),
    sftp: restic({
      url: ${JSON.stringify(`sftp://root@127.0.0.1:${sftp!.port}/${sftp!.root}/repo`)},
      password: env("SFTP_RESTIC_PASSWORD"),
      ssh: {
        key: file(${JSON.stringify(sftp!.lockedKeyFile)}),
        passphrase: env("SSH_KEY_PASSPHRASE"),
        knownHosts: [${JSON.stringify(sftpKnownHosts)}],
      },
    }),
    rest: restic({ url: env("REST_URL"), password: env("REST_RESTIC_PASSWORD") }),
    restbad: restic({ url: env("REST_BAD_URL"), password: env("REST_RESTIC_PASSWORD") }),
  },
  notifiers: {
    chat: slack({ webhookUrl: env("SLACK_WEBHOOK_URL") }),
    mail: email({
      smtp: { host: "127.0.0.1", port: 2525, user: "backup", password: env("SMTP_PASSWORD") },
      from: "backup@example.invalid",
      to: "ops@example.invalid",
    }),
    hook: webhook({ url: env("WEBHOOK_URL"), headers: { Authorization: env("WEBHOOK_AUTH") } }),
    ping: healthchecks({ pingUrl: file(${secretFile("healthchecks_url")}) }),
    kuma: uptimeKuma({ pushUrl: env("KUMA_PUSH_URL") }),
    capture: webhook({ url: ${JSON.stringify(`${receiver!.url}/escaped`)} }),
  },
  projects: {
    shop: {
      schedule: "0 3 * * *",
      sources: [
        postgres({ host: "127.0.0.1", port: ${
        pg!.port
      }, database: "shop", user: "backup", password: env("PG_PASSWORD") }),
        mysql({ host: "127.0.0.1", port: ${
        maria!.port
      }, database: "wiki", user: "backup", password: env("MARIADB_PASSWORD") }),
        files({ name: "uploads", paths: ["data/uploads"] }),
        command({
          name: "export",
          run: '[ -n "$EXPORT_TOKEN" ] || exit 3; echo "export done"',
          filename: "export.txt",
          env: { EXPORT_TOKEN: env("EXPORT_TOKEN") },
        }),
      ],
      repositories: ["local", "sftp", "rest"],
      retention: { last: 10 },
      encrypt: age({ recipients: [${JSON.stringify(ageRecipient)}], identity: env("AGE_IDENTITY") }),
      notify: ["chat", "mail", "hook", "ping", "kuma"],
    },
    notes: {
      schedule: "0 3 * * *",
      sources: [files({ name: "notes", paths: ["data/notes"] })],
      repositories: ["rest"],
      retention: { last: 10 },
    },
    broken: {
      schedule: "0 3 * * *",
      sources: [
        postgres({
          name: "billing", host: "127.0.0.1", port: ${pg!.port}, database: "shop", user: "backup",
          password: env("PG_WRONG_PASSWORD"),
        }),
        command({
          name: "crm",
          run: 'echo "crm export failed: the API rejected token $CRM_TOKEN" >&2; exit 7',
          filename: "crm.json",
          env: { CRM_TOKEN: file(${secretFile("broken_token")}) },
        }),
      ],
      repositories: ["local", "restbad"],
      retention: { last: 10 },
      encrypt: gpg({
        keyFile: "backup.pub.asc",
        secretKey: file(${secretFile("gpg-secret.asc")}),
        passphrase: env("GPG_PASSPHRASE"),
      }),
      hooks: {
        env: { WEBHOOK_URL: env("WEBHOOK_URL"), WEBHOOK_AUTH: env("WEBHOOK_AUTH") },
        onFailure: ${JSON.stringify(hookScript)},
      },
      retry: { attempts: 1 },
      notify: ["hook"],
    },
    escaped: {
      schedule: "0 3 * * *",
      sources: [files({ name: "uploads", paths: ["data/uploads"] })],
      repositories: ["local"],
      retention: { last: 10 },
      hooks: {
        env: { DBPW: env("DBPW"), FORMS_FILE: ${JSON.stringify(formsFile)} },
        before: ${JSON.stringify(formsHook)},
      },
      notify: ["capture"],
    },
  },
});
`;
    writeFileSync(config, source(sftp.knownHostsLine));
    // The "before" side of `diff`: the same config with another host key line.
    writeFileSync(join(configDir, "backup.config.old.ts"), source(sftp.knownHostsLine.replace(/ \S+$/, " AAAAold")));

    sampler = sampleCommandLines();
    // The state folder as it is while commands run: WAL and shm exist only while the database is open. A stage's
    // private folder (tmp/) holds secrets for its program by design (pgpass, ssh key) and is checked once empty.
    const privateDir = join(stateDir, "tmp");
    stateWatch = setInterval(() => {
      if (!existsSync(stateDir)) return;
      try {
        for (const file of filesUnder(stateDir)) {
          if (file.path.startsWith(`${privateDir}/`)) continue;
          liveStateFiles.add(file.path);
          for (const label of secretsIn(file.bytes, secrets)) {
            liveStateLeaks.push({ secret: label, where: `file ${file.path} (while a command ran)` });
          }
        }
      } catch {
        // a file went away between listing and reading: the next round sees the folder again
      }
    }, 100);
  });

  after(async () => {
    sampler?.stop();
    if (stateWatch) clearInterval(stateWatch);
    const results = await Promise.allSettled([
      receiver?.stop(),
      rest?.stop(),
      sftp?.stop(),
      maria?.stop(),
      pg?.stop(),
    ]);
    if (work) rmSync(work, { recursive: true, force: true });
    const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed) throw failed.reason;
  });

  it("the scanners find a planted secret (the checks below can fail)", () => {
    assert.ok(secrets.length >= 20, `the test declares every kind of secret (${secrets.length} values)`);
    const scratch = join(work, "scratch");
    mkdirSync(join(scratch, "deep"), { recursive: true });
    const planted = secrets.find((s) => s.label === "SMTP password")!;
    writeFileSync(
      join(scratch, "deep", "state.db-wal"),
      Buffer.concat([randomBytes(64), Buffer.from(planted.value), randomBytes(64)]),
    );
    writeFileSync(join(scratch, "clean.txt"), "nothing here\n");
    const leaks = scanFiles(scratch, secrets);
    assert.deepEqual(leaks, [{ secret: "SMTP password", where: `file ${join(scratch, "deep", "state.db-wal")}` }]);
    assert.throws(
      () => assertNoLeaks(leaks, "scratch"),
      (error: Error) => error.message.includes("SMTP password in file") && !error.message.includes(planted.value),
    );
    const line = `restic backup --password ${env.REST_RESTIC_PASSWORD}`;
    assert.deepEqual(secretsIn(line, secrets), ["REST restic password"]);
    assert.equal(mask(line, secrets), "restic backup --password <REST restic password>");
    rmSync(scratch, { recursive: true });
  });

  it("the escaped-forms hook prints every escaped form of its secret (so the scans below can find each)", () => {
    const hook = spawnSync("bash", ["-o", "pipefail", "-c", formsHook], {
      env: { ...process.env, DBPW: env.DBPW, FORMS_FILE: formsFile },
      encoding: "utf8",
    });
    assert.equal(hook.status, 1, hook.stderr);
    const forms = secrets.filter((s) => s.label.startsWith("escaped-forms secret ("));
    assert.ok(forms.length >= 15, `${forms.length} forms`);
    assert.deepEqual(forms.filter((form) => !hook.stderr.includes(form.value)).map((form) => form.label), []);
    const lines = hook.stderr.trim().split("\n");
    assert.ok(lines.length <= 8 && hook.stderr.length < 2048, "all of it fits in the stderr tail errors quote");
    assert.match(lines[0], /^\+ PGPASSWORD='S3cr3t'\\''Q-456 a&b\+c\/d\\e"ü€-[0-9a-f]+'$/);
  });

  it("validate and validate --secrets resolve every reference and print none", async () => {
    const plain = await cli(["validate"]);
    assert.equal(plain.code, 0, shown(plain));
    const resolved = await cli(["validate", "--secrets"]);
    assert.equal(resolved.code, 0, shown(resolved));
    expectMatch(resolved.stdout, /all secrets resolved/);
  });

  it("plan in text, json and markdown, and saved with --out, while no repository exists yet", async () => {
    for (const format of ["text", "markdown"]) {
      const result = await cli(["plan", "--now", day1, "--format", format]);
      assert.equal(result.code, 0, shown(result));
      expectMatch(result.stdout, /restbad/);
    }
    const out = join(configDir, "plans", "day1.json");
    const saved = await cli(["plan", "--now", day1, "--format", "json", "--out", out]);
    assert.equal(saved.code, 0, shown(saved));
    assert.ok(existsSync(out), "plan --out wrote the file");
    planFiles.push(out);
    const plan = JSON.parse(readFileSync(out, "utf8")) as {
      actions: { type: string; repository: string }[];
      warnings: string[];
    };
    // restbad's server refuses the credentials: it cannot be opened, so it is reported, never planned for init.
    assert.ok(!plan.actions.some((a) => a.type === "init" && a.repository === "restbad"), "no init of restbad");
    assert.ok(
      plan.warnings.some((w) => /restbad cannot be opened[\s\S]*401 Unauthorized/.test(w)),
      plan.warnings.join("\n"),
    );
    assert.deepEqual(JSON.parse(saved.stdout).actions, plan.actions, "--format json prints the saved plan's actions");
  });

  it("apply backs up PostgreSQL, MariaDB, files and a command into local and copies them over SFTP and REST", async () => {
    const result = await cli(["apply", "--project", "shop", "--now", day1]);
    assert.equal(result.code, 0, shown(result));
    expectMatch(result.stdout, /\+ init sftp: created/);
    expectMatch(result.stdout, /\+ init rest: created \(url from env\("REST_URL"\)\)/);
    for (const source of ["shop", "wiki", "uploads", "export"]) {
      expectMatch(result.stdout, new RegExp(`\\+ backup shop/${source} → local: snapshot`));
      expectMatch(result.stdout, new RegExp(`\\+ copy shop/${source} local → sftp: 1 snapshot`));
      expectMatch(result.stdout, new RegExp(`\\+ copy shop/${source} local → rest: 1 snapshot`));
    }
    expectMatch(result.stdout, /Apply complete: \d+ succeeded, 0 failed\./);
  });

  it("status, status --json, snapshots and snapshots --json", async () => {
    for (const args of [["status", "--now", day1], ["status", "--json", "--now", day1], ["snapshots"]]) {
      const result = await cli(args);
      assert.equal(result.code, 0, shown(result));
    }
    const listed = await cli(["snapshots", "--json"]);
    assert.equal(listed.code, 0, shown(listed));
    const rows = JSON.parse(listed.stdout) as { repository: string }[];
    const count = (repository: string) => rows.filter((row) => row.repository === repository).length;
    assert.deepEqual([count("local"), count("sftp"), count("rest")], [4, 4, 4]);
  });

  it("a saved plan applies (the notes project, into the REST repository)", async () => {
    const out = join(configDir, "plans", "notes.json");
    const saved = await cli(["plan", "--project", "notes", "--now", day1, "--out", out]);
    assert.equal(saved.code, 0, shown(saved));
    planFiles.push(out);
    const applied = await cli(["apply", out, "--now", day1]);
    assert.equal(applied.code, 0, shown(applied));
    expectMatch(applied.stdout, /\+ backup notes\/notes → rest: snapshot/);
    expectMatch(applied.stdout, /Apply complete: 1 succeeded, 0 failed\./);
    const listed = await cli(["snapshots", "--json", "--repository", "rest"]);
    assert.equal((JSON.parse(listed.stdout) as unknown[]).length, 5);
  });

  it("diff against an older config, in text, markdown and json", async () => {
    for (const format of ["text", "markdown", "json"]) {
      const result = await cli(["diff", "--against", join(configDir, "backup.config.old.ts"), "--format", format]);
      assert.equal(result.code, 0, shown(result));
      expectMatch(result.stdout, /knownHosts|known_hosts|sftp/);
    }
  });

  it("a failing project: wrong database password, a command quoting its secret, refused REST credentials, a tracing hook", async () => {
    const result = await cli(["apply", "--project", "broken", "--now", day1]);
    assert.equal(result.code, 1, shown(result));
    expectMatch(result.stdout, /repository restbad cannot be opened[\s\S]*401 Unauthorized/);
    expectMatch(result.stdout, /✗ backup broken\/billing → local failed: [\s\S]*password authentication failed/);
    // The command's stderr tail is quoted, with its secret replaced: proof that redaction ran on that path.
    expectMatch(result.stdout, /the API rejected token \(sensitive\)/);
    // The hook's trace is quoted too: the webhook URL and header it expanded are replaced, though no notifier ever
    // resolved them (they are redacted because the config names their variables).
    expectMatch(
      result.stdout,
      /✗ onFailure hook failed: the onFailure hook exited with 1: [\s\S]*\+ notify \(sensitive\) '\(sensitive\)'\n/,
    );
    expectMatch(result.stderr, /Error: \d+ of \d+ actions failed/);
  });

  it("a hook printing its secret in escaped forms: none in the output, --log-file, state.db or webhook body", async () => {
    const result = await cli(["--log-file", logFile, "apply", "--project", "escaped", "--now", day1]);
    assert.equal(result.code, 1, shown(result));
    // The trace is quoted with the value replaced inside its quotes: proof that redaction ran on the shell form.
    expectMatch(
      result.stdout,
      /✗ before hook failed: the before hook exited with 1: \+ PGPASSWORD='\(sensitive\)'\n/,
    );
    expectMatch(result.stdout, /declare -x DBPW="\(sensitive\)"/);
    await receiver!.waitFor(1, 30_000);
    const bodies = receiver!.requests.map((request) => request.body).join("\n");
    expectMatch(bodies, /before hook/);
    expectMatch(bodies, /PGPASSWORD='\(sensitive\)'/);
    const log = readFileSync(logFile, "utf8");
    expectMatch(log, /before hook failed/);
    outputs.push({ what: "the webhook bodies", text: bodies }, { what: "the --log-file", text: log });
    assertNoLeaks(
      [
        ...secretsIn(bodies, secrets).map((label) => ({ secret: label, where: "a webhook body" })),
        ...secretsIn(log, secrets).map((label) => ({ secret: label, where: "the --log-file" })),
      ],
      "webhook bodies and log file",
    );
  });

  it("--debug on failing commands adds stack traces, still without secrets", async () => {
    const failed = await cli(["--debug", "apply", "--project", "broken", "--now", day1]);
    assert.equal(failed.code, 1, shown(failed));
    expectMatch(failed.stderr, /ActionsFailedError|at .*\.ts/);
    const missing = await cli(["--debug", "validate", "--secrets"], { EXPORT_TOKEN: undefined });
    assert.equal(missing.code, 3, shown(missing));
    expectMatch(missing.stderr, /env\("EXPORT_TOKEN"\) is not set/);
    const plan = await cli(["--debug", "plan", "--project", "broken", "--now", day1, "--format", "markdown"]);
    assert.equal(plan.code, 0, shown(plan));
    expectMatch(plan.stdout, /restbad/);
    const status = await cli(["status", "--json", "--now", day1]);
    assert.equal(status.code, 1, `"broken" is failing, so status exits 1: ${shown(status)}`);
    const broken = (JSON.parse(status.stdout) as { projects: { project: string; last_run: { error: string } }[] })
      .projects.find((p) => p.project === "broken")!;
    expectMatch(broken.last_run.error, /billing/);
  });

  it("no secret in any stdout or stderr", () => {
    assert.ok(outputs.length >= 40, `collected ${outputs.length} streams`);
    assertNoLeaks(
      outputs.flatMap(({ what, text }) => secretsIn(text, secrets).map((label) => ({ secret: label, where: what }))),
      "command output",
    );
  });

  it("no secret in the plan files", () => {
    assert.equal(planFiles.length, 2);
    assertNoLeaks(
      planFiles.flatMap((path) =>
        secretsIn(readFileSync(path, "latin1"), secrets).map((label) => ({ secret: label, where: `plan file ${path}` }))
      ),
      "plan files",
    );
  });

  it("no secret in the state folder: state.db, its -wal and -shm files, logs, as they were during and after the runs", () => {
    const privateDir = join(stateDir, "tmp");
    assert.deepEqual(existsSync(privateDir) ? readdirSync(privateDir) : [], [], "no private file stays behind");
    const files = filesUnder(stateDir).map((file) => file.path);
    assert.ok(files.includes(join(stateDir, "state.db")), `state.db is there (${files.join(", ")})`);
    assert.ok(
      [...liveStateFiles].some((path) => path.endsWith("state.db-wal")),
      `the WAL file was read while a command ran (seen: ${[...liveStateFiles].join(", ")})`,
    );
    assertNoLeaks([...liveStateLeaks, ...scanFiles(stateDir, secrets)], "state folder");
  });

  it("no secret in any process's command line", () => {
    const { commandLines, samples } = sampler!.stop();
    sampler = undefined;
    assert.ok(samples > 100, `sampled /proc ${samples} times`);
    for (const program of ["restic", "ssh", "pg_dump", "mariadb-dump"]) {
      assert.ok(
        commandLines.some((line) => line.split(" ").some((word) => word === program || word.endsWith(`/${program}`))),
        `saw ${program} running`,
      );
    }
    assertNoLeaks(
      commandLines.flatMap((line) =>
        secretsIn(line, secrets).map((label) => ({
          secret: label,
          where: `the command line ${JSON.stringify(mask(line, secrets).slice(0, 240))}`,
        }))
      ),
      "command lines",
    );
  });

  it("no secret in the config folder's other files or in the repositories' files", () => {
    const scanned = filesUnder(configDir).length;
    assert.ok(scanned > 20, `scanned ${scanned} files in the config folder (local repository included)`);
    assertNoLeaks(
      [
        ...scanFiles(configDir, secrets),
        ...scanFiles(sftp!.root, secrets),
        ...scanFiles(rest!.root, secrets),
      ],
      "config folder and repositories",
    );
  });
});
