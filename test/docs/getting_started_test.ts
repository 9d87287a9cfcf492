/**
 * docs/getting-started.md followed as a new user would, from a clean machine (issue 18): in a temp folder outside the
 * checkout, with only restic, the PostgreSQL clients, sqlite3, git and curl in /usr/bin (no deno on PATH), and a fresh
 * HOME. The commands are the guide's own, taken from its ```sh blocks by their first words (a command the guide no
 * longer prints fails the test), with only placeholders replaced (db.internal, 5432, the repository URL, /etc and /tmp
 * paths, the password `'…'`), each placeholder required to be there; `sudo` is dropped and npm's global prefix is a
 * temp folder (npm_config_prefix). They run in bash, like a terminal:
 *   1. git clone the checkout, npm pack, npm install --global, backupctl --version (a clone: the code installed is
 *      the committed HEAD, as a user gets it; the guide is read from the working tree);
 *   2. backupctl init with the guide's flags against a real PostgreSQL (test/support/postgres.ts); the config it
 *      writes is the one the guide shows (comments and layout aside); the files source edited to a real folder;
 *   3. the password file with `install -D -m 0600`, the guide's file() reference, validate --secrets;
 *   4. validate, plan, apply, plan ("No changes"); restic snapshots --json with the password file lists both sources;
 *   5. status (exit 0), snapshots, restore --print-commands (no secret shown), and the rehearsal: restore
 *      --into-database a scratch database, compared row for row with the source;
 *   7. .gitignore, git init -b main, commit; 8. the workflow file copied, a branch shortening the retention:
 *      validate, `diff --against main` (flagged destructive), plan; 9. a `.backup` copy of the state, plan with
 *      --state-dir on it ("No changes"); 10. watch --listen, curl /healthz, SIGTERM, exit 0.
 * Under Bun the installed command runs with Bun (the guide's BACKUPCTL_RUNTIME=bun). Not covered: apt-get (the tools
 * are the machine's), the container, notifications (section 6) and GitHub itself (test/docs/pr_workflow_test.ts runs the
 * workflow's scripts).
 * Runs under `deno test -A test/docs/getting_started_test.ts` and
 * `bun --no-install test --timeout 300000 ./test/docs/getting_started_test.ts`.
 */
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { repoRoot, waitFor } from "../support/cli.ts";
import { freePort, type PostgresServer, startPostgres } from "../support/postgres.ts";

const slow = { timeout: 300_000 };
const isBun = "Bun" in globalThis;
const guide = readFileSync(join(repoRoot, "docs/getting-started.md"), "utf8");

/** The text of section `n` ("## n. …") of the guide. */
function section(n: number): string {
  const start = guide.indexOf(`\n## ${n}. `);
  assert.ok(start >= 0, `getting-started.md has a section ${n}`);
  const end = guide.indexOf("\n## ", start + 1);
  return guide.slice(start, end === -1 ? undefined : end);
}

/** The fenced blocks of one language in a section. */
function blocks(n: number, language: string): string[] {
  return [...section(n).matchAll(/^```(\w*)\n([\s\S]*?)^```$/gm)].filter((m) => m[1] === language).map((m) => m[2]);
}

/** The commands of a section's ```sh blocks, a line ending in `\` joined with the next (kept as bash reads it). */
function commands(n: number): string[] {
  const found: string[] = [];
  for (const block of blocks(n, "sh")) {
    let pending = "";
    for (const line of block.split("\n")) {
      if (line.trim() === "" && pending === "") continue;
      pending += pending ? `\n${line}` : line;
      if (!line.endsWith("\\")) {
        found.push(pending);
        pending = "";
      }
    }
  }
  return found;
}

/** The one command of section `n` that starts with `start`. */
function command(n: number, start: string): string {
  const matching = commands(n).filter((line) => line.startsWith(start));
  assert.equal(matching.length, 1, `section ${n} of getting-started.md has one command starting "${start}"`);
  return matching[0];
}

/** Replaces placeholders; each must be in the text, so a renamed one fails instead of running against the example. */
function fill(text: string, replacements: [string, string][]): string {
  for (const [from, to] of replacements) {
    assert.ok(text.includes(from), `"${from}" is in: ${text}`);
    text = text.replaceAll(from, () => to);
  }
  return text;
}

function withoutSudo(text: string): string {
  assert.match(text, /^sudo /);
  return text.slice("sudo ".length);
}

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command line of the guide in bash (errexit, pipefail), as typed at a terminal in `cwd`. */
function bash(script: string, cwd: string, env: Record<string, string>): Promise<Result> {
  return new Promise((resolve) => {
    execFile("bash", ["--noprofile", "--norc", "-eo", "pipefail", "-c", script], {
      cwd,
      env,
      maxBuffer: 64 * 1024 * 1024,
      timeout: 240_000,
    }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

function ok(result: Result, what: string): Result {
  assert.equal(result.code, 0, `${what} exited ${result.code}:\n${result.stdout}\n${result.stderr}`);
  return result;
}

/** A config's code, comments and layout aside: what init writes and what the guide shows must say the same. */
function code(ts: string): string {
  return ts.replace(/\/\/[^\n]*/g, "").replace(/\s+/g, "").replace(/,(?=[}\])])/g, "");
}

describe("getting-started.md, followed step by step on a clean machine", () => {
  let work: string;
  let prefix: string;
  let configDir: string;
  let repository: string;
  let uploads: string;
  let passwordFile: string;
  let pg: PostgresServer;
  let env: Record<string, string>;
  const dbPassword = "shop db pass 'quoted' $x";
  const resticPassword = "getting-started restic password";
  /** The guide's placeholders in sections 2-5 → this machine. */
  let placeholders: Record<string, string>;
  const replace = (text: string, ...names: string[]) =>
    fill(text, names.map((name) => [name, placeholders[name]] as [string, string]));

  before(async () => {
    work = realpathSync(mkdtempSync(join(tmpdir(), "backupctl-getting-started-")));
    prefix = join(work, "prefix");
    configDir = join(work, "shop-config");
    repository = join(work, "restic", "shop");
    uploads = join(work, "srv", "shop", "uploads");
    passwordFile = join(work, "etc", "backupctl", "restic_password");
    mkdirSync(configDir, { recursive: true });
    mkdirSync(join(work, "home"));
    mkdirSync(join(work, "tmp"));
    mkdirSync(uploads, { recursive: true });
    writeFileSync(join(uploads, "logo.png"), "not really a png\n");
    writeFileSync(join(uploads, "invoice-1.pdf"), "%PDF-1.4 invoice 1\n");
    pg = await startPostgres();
    await pg.createUser("backup", dbPassword);
    await pg.createDatabase("shop");
    await pg.psql(
      `CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, email text UNIQUE);
       CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id int REFERENCES customers, total numeric(10,2),
                            note text, placed_at timestamptz DEFAULT '2026-12-01 10:00+00');
       INSERT INTO customers (name, email)
         SELECT 'customer ' || i || ' ✓', 'c' || i || '@shop.example' FROM generate_series(1, 200) i;
       INSERT INTO orders (customer_id, total, note)
         SELECT 1 + i % 200, i * 1.25, CASE WHEN i % 7 = 0 THEN E'line one\\nline "two"' END
         FROM generate_series(1, 1500) i;
       GRANT SELECT ON ALL TABLES IN SCHEMA public TO backup;
       GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO backup;`,
      "shop",
    );
    placeholders = {
      "db.internal": pg.host,
      "5432": String(pg.port),
      "sftp:backup@storage.example:/srv/restic/shop": repository,
      "/etc/backupctl/": `${join(work, "etc", "backupctl")}/`,
      "'…'": `'${dbPassword.replaceAll("'", `'\\''`)}'`,
    };
    env = {
      PATH: `${prefix}/bin:/usr/bin:/bin`,
      HOME: join(work, "home"),
      LANG: "C.UTF-8",
      NO_COLOR: "1",
      GIT_AUTHOR_NAME: "New User",
      GIT_AUTHOR_EMAIL: "new.user@shop.example",
      GIT_COMMITTER_NAME: "New User",
      GIT_COMMITTER_EMAIL: "new.user@shop.example",
      GIT_CONFIG_NOSYSTEM: "1",
      // The guide: "`BACKUPCTL_RUNTIME=bun backupctl …` runs it under Bun (installed separately)".
      ...(isBun
        ? { BACKUPCTL_RUNTIME: "bun", BACKUPCTL_BUN: join(repoRoot, "node_modules", "bun", "bin", "bun.exe") }
        : {}),
    };
  });

  after(async () => {
    await pg?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it("1. install: git clone, npm pack, npm install --global, backupctl --version", slow, async () => {
    const clone = command(1, "git clone ");
    const pack = command(1, "npm pack");
    const install = command(1, "sudo npm install --global ");
    const apt = command(1, "sudo apt-get install ");
    for (const tool of apt.replace(/#.*/, "").trim().split(/\s+/).slice(3)) {
      ok(await bash(`command -v ${tool}`, work, env), `${tool} (the guide's apt-get install) on this machine`);
    }
    if (isBun) assert.ok(section(1).includes("`BACKUPCTL_RUNTIME=bun backupctl …` runs it under Bun"));
    // npm's own setup (its cache, the registry) stays the machine's; only the global prefix is a temp folder.
    const npmEnv = {
      ...process.env as Record<string, string>,
      npm_config_prefix: prefix,
      npm_config_prefer_offline: "true",
      npm_config_audit: "false",
      npm_config_fund: "false",
      npm_config_update_notifier: "false",
      npm_config_loglevel: "error",
    };
    const script = [fill(clone, [["<URL of the backupctl repository>", repoRoot]]), pack, withoutSudo(install)];
    ok(await bash(script.join("\n"), work, npmEnv), "the install commands");
    const version = JSON.parse(readFileSync(join(work, "backupctl", "package.json"), "utf8")).version as string;
    assert.match(
      pack,
      new RegExp(`# backupctl-${version.replaceAll(".", "\\.")}\\.tgz$`),
      "the guide names the tarball",
    );
    assert.ok(existsSync(join(prefix, "bin", "backupctl")), "npm install --global made the command");

    const versionLine = command(1, "backupctl --version");
    const shown = ok(await bash(versionLine, work, env), "backupctl --version").stdout;
    const revision = ok(await bash("git rev-parse --short=7 HEAD", join(work, "backupctl"), env), "git").stdout.trim();
    const runtime = isBun ? "bun \\d+\\.\\d+\\.\\d+" : "deno \\d+\\.\\d+\\.\\d+";
    assert.match(
      shown,
      new RegExp(`^backupctl ${version.replaceAll(".", "\\.")} \\(git ${revision}, ${runtime}\\)\\n$`),
    );
    assert.match(versionLine, /# backupctl \d+\.\d+\.\d+ \(git [0-9a-f]{7}, deno \d+\.\d+\.\d+\)$/, "shape as printed");
  });

  it("2. backupctl init with the guide's flags writes the config the guide shows", slow, async () => {
    const init = command(2, "backupctl init --project shop ");
    const result = ok(
      await bash(replace(init, "db.internal", "5432", "sftp:backup@storage.example:/srv/restic/shop"), configDir, env),
      "backupctl init",
    );
    assert.match(result.stdout, /Wrote .*backup\.config\.ts/);
    const written = readFileSync(join(configDir, "backup.config.ts"), "utf8");
    const [shown] = blocks(2, "ts");
    assert.equal(
      code(written),
      code(replace(shown, "db.internal", "5432", "sftp:backup@storage.example:/srv/restic/shop")),
      `init wrote:\n${written}`,
    );
    const denoJson = JSON.parse(readFileSync(join(configDir, "deno.json"), "utf8"));
    assert.match(denoJson.imports.backupctl, new RegExp(`^file://${prefix}/lib/node_modules/backupctl/src/mod\\.ts$`));
    // "edit: folders to back up": the real one.
    writeFileSync(join(configDir, "backup.config.ts"), fill(written, [["/srv/shop/uploads", uploads]]));
  });

  it("3. secrets: the password file, the file() reference, validate --secrets", slow, async () => {
    const install = command(3, "sudo install -D -m 0600 /dev/null /etc/backupctl/restic_password");
    ok(await bash(replace(withoutSudo(install), "/etc/backupctl/"), configDir, env), "install -D");
    assert.equal(readFileSync(passwordFile, "utf8"), "");
    writeFileSync(passwordFile, `${resticPassword}\n`); // "then write the password into it"

    // The guide's repository line, with file() imported as its snippet shows.
    const [snippet] = blocks(3, "ts");
    const importLine = /^import \{[^}]*\} from "backupctl";.*$/m.exec(snippet)?.[0];
    assert.ok(importLine, `section 3's snippet shows the import it needs:\n${snippet}`);
    const mainLine = /^\s*main: restic\(.*\),$/m.exec(snippet)?.[0].trim();
    assert.ok(mainLine);
    let config = readFileSync(join(configDir, "backup.config.ts"), "utf8");
    config = config.replace(/^import \{[^}]*\} from "backupctl";$/m, importLine);
    config = config.replace(
      /^(\s*)main: restic\(.*\),$/m,
      (_, indent) => indent + replace(mainLine, "/etc/backupctl/"),
    );
    config = fill(config, [["sftp:backup@storage.example:/srv/restic/shop", repository]]);
    assert.match(config, /password: file\(/);
    writeFileSync(join(configDir, "backup.config.ts"), config);

    const exported = command(3, "export SHOP_DB_PASSWORD=");
    const validate = command(3, "backupctl validate --secrets");
    const result = ok(await bash(`${replace(exported, "'…'")}\n${validate}`, configDir, env), "validate --secrets");
    assert.match(result.stdout, /valid/i);
    const missing = await bash(validate, configDir, env);
    assert.notEqual(missing.code, 0, "without the export, validate --secrets fails");
    assert.match(missing.stdout + missing.stderr, /SHOP_DB_PASSWORD/);
    env.SHOP_DB_PASSWORD = dbPassword; // exported for the rest of the session
  });

  it("4. validate, plan, apply, plan: both sources backed up, then no changes", slow, async () => {
    const [validate, plan, apply, replan] = commands(4);
    assert.match(validate, /^backupctl validate /);
    assert.match(plan, /^backupctl plan /);
    assert.match(apply, /^backupctl apply /);
    assert.match(replan, /^backupctl plan .*No changes\. Backups are up to date\./);
    ok(await bash(validate, configDir, env), "validate");
    const planned = ok(await bash(plan, configDir, env), "plan").stdout;
    assert.match(planned, /init/);
    assert.match(planned, /backup/);
    const applied = ok(await bash(apply, configDir, env), "apply").stdout;
    assert.match(applied, /Apply complete: \d+ succeeded, 0 failed\./);
    assert.match(ok(await bash(replan, configDir, env), "plan").stdout, /No changes\. Backups are up to date\./);

    const snapshots = ok(
      await bash("restic snapshots --json", configDir, {
        ...env,
        RESTIC_REPOSITORY: repository,
        RESTIC_PASSWORD_FILE: passwordFile,
      }),
      "restic snapshots",
    );
    const list = JSON.parse(snapshots.stdout) as { paths: string[] }[];
    assert.equal(list.length, 2, snapshots.stdout);
    assert.ok(list.some((s) => s.paths.includes(uploads)), "the uploads folder is in a snapshot");
  });

  it("5. status, snapshots, and the restore rehearsal: restored row for row", slow, async () => {
    const [status, snapshots, printCommands, rehearsal, ...rest] = commands(5);
    assert.deepEqual(rest, []);
    assert.match(status, /^backupctl status /);
    const shown = ok(await bash(status, configDir, env), "status").stdout;
    assert.match(shown, /shop/);
    assert.match(ok(await bash(snapshots, configDir, env), "snapshots").stdout, /shop/);
    assert.equal(printCommands, "backupctl restore shop --source shop --print-commands");
    const printed = ok(await bash(printCommands, configDir, env), "restore --print-commands").stdout;
    assert.match(printed, /restic .*dump /);
    assert.ok(!printed.includes(resticPassword) && !printed.includes(dbPassword), "no secret shown");

    // The scratch database, created beforehand as the guide says (a DBA's step: the superuser over the socket).
    assert.ok(section(5).includes("(`CREATE DATABASE shop_rehearsal OWNER backup;`)"));
    await pg.psql("CREATE DATABASE shop_rehearsal OWNER backup;");
    const result = ok(await bash(replace(rehearsal, "db.internal", "5432"), configDir, env), "the rehearsal");
    assert.match(result.stdout, /restored shop\/shop .* into postgres database shop_rehearsal/);
    assert.ok(!(result.stdout + result.stderr).includes(dbPassword));
    for (const table of ["customers", "orders"]) {
      const query = `SELECT * FROM ${table} ORDER BY id`;
      const original = await pg.psql(query, "shop");
      const restored = await pg.psql(query, "shop_rehearsal");
      assert.ok(original.split("\n").length > 200, `${table} has rows`);
      assert.equal(restored, original, `${table} restored row for row`);
    }
    const tables = "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1";
    assert.equal(await pg.psql(tables, "shop_rehearsal"), await pg.psql(tables, "shop"));
  });

  it("7. the config in git: .gitignore, git init -b main, commit", slow, async () => {
    for (const line of commands(7)) ok(await bash(line, configDir, env), line);
    const tracked = ok(await bash("git ls-files", configDir, env), "git ls-files").stdout.trim().split("\n");
    assert.deepEqual(tracked.sort(), [".gitignore", "backup.config.ts"]);
    const ignored = ok(await bash("git status --porcelain --ignored", configDir, env), "git status").stdout;
    assert.match(ignored, /^!! \.backupctl\/$/m, "the state folder is ignored");
  });

  it("8. a pull request: the workflow copied; on a branch, validate, diff --against main, plan", slow, async () => {
    const [mkdir, cp] = commands(8);
    assert.equal(mkdir, "mkdir -p .github/workflows");
    ok(await bash(mkdir, configDir, env), mkdir);
    ok(await bash(fill(cp, [["/opt/backupctl/", `${join(work, "backupctl")}/`]]), configDir, env), cp);
    assert.equal(
      readFileSync(join(configDir, ".github/workflows/backupctl-pr.yml"), "utf8"),
      readFileSync(join(work, "backupctl", "docs/examples/backupctl-pr.yml"), "utf8"),
    );
    // Section 7: "On a branch, `backupctl diff --against main` tells what your edit changes"; the workflow's steps.
    assert.ok(section(7).includes("`backupctl diff --against main`"));
    for (const step of ["`backupctl validate`", "`backupctl plan --format markdown`"]) {
      assert.ok(section(8).includes(step), step);
    }
    ok(await bash("git checkout -q -b shorter-retention", configDir, env), "git checkout -b");
    const path = join(configDir, "backup.config.ts");
    const config = readFileSync(path, "utf8");
    writeFileSync(path, fill(config, [["daily: 7", "daily: 2"]]));
    ok(await bash("backupctl validate", configDir, env), "validate");
    const diff = ok(await bash("backupctl diff --against main", configDir, env), "diff").stdout;
    assert.match(diff, /Diff: 0 added, 0 removed, 1 changed \(1 destructive\)\./);
    assert.match(diff, /daily 7 → 2/);
    const markdown = ok(await bash("backupctl plan --format markdown", configDir, env), "plan --format markdown");
    assert.match(markdown.stdout, /backupctl plan/i);
    writeFileSync(path, config);
    ok(await bash("git checkout -q main", configDir, env), "git checkout main");
  });

  it("9. plan against a copy of the state: sqlite3 .backup, --state-dir, no changes", slow, async () => {
    // The backup host's folders → this machine's, in one pass (the temp folder's own path has a /tmp/ in it).
    const local: Record<string, string> = {
      "/var/lib/backupctl": join(configDir, ".backupctl"),
      "/tmp/": `${join(work, "tmp")}/`,
      "scp backup-host:": "cp ",
    };
    const pattern = new RegExp(
      Object.keys(local).map((from) => from.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|"),
      "g",
    );
    const [block] = blocks(9, "sh");
    let planned = 0;
    for (const line of commands(9).filter((l) => block.includes(l) && !l.startsWith("#"))) {
      const filled = line.replace(pattern, (from) => local[from]);
      const result = ok(await bash(filled, configDir, env), filled);
      if (line.startsWith("backupctl --state-dir /tmp/prod-state plan")) {
        planned++;
        assert.match(result.stdout, /No changes/, `${line} read the copy:\n${result.stdout}`);
      }
    }
    assert.equal(planned, 2);
    assert.equal(existsSync(join(work, "tmp", "prod-state")), false, "the copy is thrown away");
  });

  it("10. watch --listen serves /healthz; SIGTERM stops it with exit 0", slow, async () => {
    const watch = command(10, "backupctl watch --listen 127.0.0.1:9464");
    const curl = command(10, "curl -fsS http://127.0.0.1:9464/healthz");
    const port = String(await freePort());
    const args = fill(watch, [["9464", port]]).replace(/\s+#.*$/, "").split(/\s+/).slice(1);
    const child = spawn(join(prefix, "bin", "backupctl"), args, {
      cwd: configDir,
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (chunk) => (output += chunk));
    child.stderr.on("data", (chunk) => (output += chunk));
    const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
      child.once("exit", (code, signal) => resolve({ code, signal }))
    );
    try {
      const health = await waitFor(`/healthz on ${port}`, async () => {
        const result = await bash(fill(curl, [["9464", port]]), configDir, env);
        return result.code === 0 ? result : undefined;
      }, 60_000);
      assert.ok(health.stdout.length > 0);
    } catch (error) {
      child.kill("SIGKILL");
      throw new Error(`${(error as Error).message}\n${output}`);
    }
    // process.kill, not child.kill: Deno's child_process reports any child it signalled as killed by that signal.
    process.kill(child.pid!, "SIGTERM");
    assert.deepEqual(await exited, { code: 0, signal: null }, output);
  });
});
