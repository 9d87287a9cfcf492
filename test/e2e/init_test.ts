/**
 * `backupctl init`: the questions on a real terminal (a pseudo-terminal from util-linux `script`, answered prompt by
 * prompt), the same answers as flags for scripts, and the written file validating with the real loader.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { after, before, describe, it } from "node:test";
import { cliArgv, repoRoot, runCli } from "../support/cli.ts";

const quote = (arg: string) => `'${arg.replaceAll("'", `'\\''`)}'`;

/** Runs `init` in a pseudo-terminal and types each answer once its prompt (a regular expression) has appeared. */
function initOnTerminal(path: string, script: [RegExp, string][]): Promise<{ code: number | null; output: string }> {
  const command = [...cliArgv(), "--config", path, "init"].map(quote).join(" ");
  const child = spawn("script", ["-qec", command, "/dev/null"], {
    env: { ...process.env, NO_COLOR: "1" },
    stdio: ["pipe", "pipe", "pipe"],
  });
  let output = "";
  let step = 0;
  let seen = 0;
  const onData = (chunk: Buffer) => {
    output += chunk.toString("utf8");
    while (step < script.length) {
      const rest = output.slice(seen);
      const match = script[step][0].exec(rest);
      if (!match) break;
      seen += match.index + match[0].length;
      child.stdin.write(`${script[step][1]}\n`);
      step++;
    }
  };
  child.stdout.on("data", onData);
  child.stderr.on("data", onData);
  const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  return new Promise((resolve) =>
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    })
  );
}

describe("init", () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "backupctl-init-"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("asks on a terminal, re-asks an invalid answer, and writes a config that validates", async () => {
    const path = join(dir, "asked.config.ts");
    const result = await initOnTerminal(path, [
      [/Project name \[app\]: /, "bad name!"],
      [/Project name \[app\]: /, "shop"],
      [/Database \(postgres, mysql, sqlite, none\) \[postgres\]: /, "mysql"],
      [/Database host \(name or address, no port\) \[localhost\]: /, "db internal"],
      [/Database host \(name or address, no port\) \[localhost\]: /, "db.internal:3307"],
      [/Database port \[3307\]: /, ""],
      [/Database user \[backup\]: /, "dumper"],
      [/Database name \[shop\]: /, ""],
      [/Repository URL .*\[\/srv\/restic\/main\]: /, "sftp:backup@nas.internal:/srv/restic"],
    ]);
    assert.equal(result.code, 0, result.output);
    assert.match(result.output, /letters, digits, \. _ -/, "the invalid name was explained");
    assert.match(result.output, /"db internal" is not a host name or address/, "the invalid host was explained");
    assert.match(result.output, /the port is asked next: host db\.internal, port 3307/);
    const text = readFileSync(path, "utf8");
    assert.match(text, /import \{ defineConfig, env, files, mysql, restic \} from "backupctl";/);
    assert.match(
      text,
      /mysql\(\{ host: "db\.internal", port: 3307, database: "shop", user: "dumper", password: env\("SHOP_DB_PASSWORD"\) \}\)/,
    );
    assert.match(text, /url: "sftp:backup@nas\.internal:\/srv\/restic"/);
    const valid = await runCli(["--config", path, "validate"], {
      env: { SHOP_DB_PASSWORD: "x", RESTIC_PASSWORD: "y" },
    });
    assert.equal(valid.code, 0, valid.stdout + valid.stderr);
    assert.match(valid.stdout, /1 project, 2 sources, 1 repository/);
  });

  it("takes the same answers as flags off a terminal", async () => {
    const path = join(dir, "flags.config.ts");
    const result = await runCli([
      "--config",
      path,
      "init",
      "--project",
      "wiki",
      "--database",
      "postgres",
      "--db-host",
      "pg.internal",
      "--db-name",
      "wiki_prod",
      "--repository",
      "/srv/restic/wiki",
    ]);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    const text = readFileSync(path, "utf8");
    assert.match(
      text,
      /postgres\(\{ host: "pg\.internal", port: 5432, database: "wiki_prod", user: "backup", password: env\("WIKI_DB_PASSWORD"\) \}\)/,
    );
    assert.match(text, /^ {4}wiki: \{$/m);
    const valid = await runCli(["--config", path, "validate"], {
      env: { WIKI_DB_PASSWORD: "x", RESTIC_PASSWORD: "y" },
    });
    assert.equal(valid.code, 0, valid.stdout + valid.stderr);
  });

  it("without flags off a terminal writes the starter config; refuses an existing file without --force", async () => {
    const path = join(dir, "starter.config.ts");
    const first = await runCli(["--config", path, "init"]);
    assert.equal(first.code, 0, first.stderr);
    assert.match(readFileSync(path, "utf8"), /sqlite\(\{ path: "\/srv\/app\/app\.db" \}\)/);
    const again = await runCli(["--config", path, "init", "--database", "sqlite"]);
    assert.equal(again.code, 64);
    assert.match(again.stderr, /already exists; pass --force/);
    const invalid = await runCli(["--config", join(dir, "x.config.ts"), "init", "--database", "oracle"]);
    assert.equal(invalid.code, 64);
    assert.match(invalid.stderr, /--database: expected postgres, mysql, sqlite or none, got "oracle"/);
    assert.equal(existsSync(join(dir, "x.config.ts")), false);
  });

  it("refuses host:port in --db-host naming the two flags; --db-port and --db-user reach the config", async () => {
    const refused = await runCli([
      "--config",
      join(dir, "port.config.ts"),
      "init",
      "--database",
      "postgres",
      "--db-host",
      "127.0.0.1:31025",
    ]);
    assert.equal(refused.code, 64);
    assert.match(
      refused.stderr,
      /--db-host: "127\.0\.0\.1:31025" includes a port: pass --db-host 127\.0\.0\.1 --db-port 31025/,
    );
    assert.equal(existsSync(join(dir, "port.config.ts")), false);
    const path = join(dir, "port.config.ts");
    const written = await runCli([
      "--config",
      path,
      "init",
      "--database",
      "postgres",
      "--db-host",
      "127.0.0.1",
      "--db-port",
      "31025",
      "--db-user",
      "dumper",
    ]);
    assert.equal(written.code, 0, written.stderr);
    assert.match(readFileSync(path, "utf8"), /host: "127\.0\.0\.1", port: 31025, database: "app", user: "dumper"/);
    const badPort = await runCli([
      "--config",
      join(dir, "p.config.ts"),
      "init",
      "--database",
      "mysql",
      "--db-port",
      "0",
    ]);
    assert.equal(badPort.code, 64);
    assert.match(badPort.stderr, /--db-port: expected an integer 1–65535, got "0"/);
  });

  it("validate refuses a host with a port in a hand-written config: exit 3, the path and the fix", async () => {
    const path = join(dir, "hostport.config.ts");
    const text = readFileSync(join(dir, "port.config.ts"), "utf8")
      .replace('host: "127.0.0.1", port: 31025', 'host: "127.0.0.1:31025"');
    writeFileSync(path, text);
    const result = await runCli(["--config", path, "validate"], {
      env: { APP_DB_PASSWORD: "x", RESTIC_PASSWORD: "y" },
    });
    assert.equal(result.code, 3, result.stdout + result.stderr);
    assert.match(
      result.stderr,
      /projects\.app\.sources\[0\]\.host: "127\.0\.0\.1:31025" includes a port: write host: "127\.0\.0\.1" and port: 31025/,
    );
  });

  it("writes a deno.json mapping backupctl to this installation, and adds the mapping to one that lacks it", async () => {
    const own = mkdtempSync(join(tmpdir(), "backupctl-init-deno-"));
    try {
      const first = await runCli(["init"], { cwd: own });
      assert.equal(first.code, 0, first.stderr);
      const modUrl = pathToFileURL(realpathSync(join(repoRoot, "src/mod.ts"))).href;
      assert.deepEqual(JSON.parse(readFileSync(join(own, "deno.json"), "utf8")), { imports: { backupctl: modUrl } });
      assert.match(first.stdout, /Wrote .*deno\.json: `deno check backup\.config\.ts`/);
      writeFileSync(join(own, "deno.json"), JSON.stringify({ tasks: { x: "true" }, imports: { zod: "npm:zod" } }));
      const again = await runCli(["init", "--force"], { cwd: own });
      assert.equal(again.code, 0, again.stderr);
      assert.deepEqual(JSON.parse(readFileSync(join(own, "deno.json"), "utf8")), {
        tasks: { x: "true" },
        imports: { zod: "npm:zod", backupctl: modUrl },
      });
      assert.match(again.stdout, /Added "backupctl" to the imports of/);
    } finally {
      rmSync(own, { recursive: true, force: true });
    }
  });
});
