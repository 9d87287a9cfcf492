/**
 * Children get only the secrets they need (issue 16, point 6b). backupctl's environment holds five secrets, each named
 * by an env() reference of the config: the PostgreSQL password, the restic password, a hook's database password, a
 * command() source's token and a Slack URL no child needs. `restic` and `pg_dump` are wrappers first on PATH that save
 * the environment they were started with (/proc/$$/environ, exactly what backupctl gave them) and exec the real
 * program; the hooks and the command source save theirs the same way. Each child must hold the secret it needs, in the
 * variable it reads it from, and no other secret value under any name; a variable the config does not name is still
 * inherited.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { runCli } from "../support/cli.ts";
import { type PostgresServer, startPostgres } from "../support/postgres.ts";

const now = "2026-11-21T10:00:00Z";

/** The environment a saved /proc/PID/environ held. */
function parseEnviron(bytes: Buffer): Map<string, string> {
  const env = new Map<string, string>();
  for (const entry of bytes.toString("utf8").split("\0").filter(Boolean)) {
    const at = entry.indexOf("=");
    env.set(entry.slice(0, at), entry.slice(at + 1));
  }
  return env;
}

describe("child environments: each child gets the secrets it needs and no other", () => {
  let pg: PostgresServer | undefined;
  let work = "";
  let dumps = "";
  const secrets = {
    PG_PW: `pg-${randomBytes(8).toString("hex")}`,
    RESTIC_PW: `restic-${randomBytes(8).toString("hex")}`,
    DBPW: `hook-${randomBytes(8).toString("hex")}`,
    CMD_TOKEN: `cmd-${randomBytes(8).toString("hex")}`,
    SLACK_URL: `https://hooks.slack.com/services/T0/B0/${randomBytes(8).toString("hex")}`,
  };
  type Name = keyof typeof secrets;
  const unrelated = `not-a-secret-${randomBytes(4).toString("hex")}`;
  /** Every environment a child of a given kind was started with, in the order they ran. */
  const environments = (kind: string) =>
    readdirSync(dumps).filter((name) => name.startsWith(`${kind}.`)).sort()
      .map((name) => parseEnviron(readFileSync(join(dumps, name))));
  /** The secrets whose value `env` holds, under any name, other than `allowed`. */
  const leaked = (env: Map<string, string>, allowed: Name[]) =>
    (Object.keys(secrets) as Name[]).filter((name) =>
      !allowed.includes(name) && [...env.values()].some((value) => value.includes(secrets[name]))
    );

  before(async () => {
    pg = await startPostgres();
    await pg.createUser("backup", secrets.PG_PW);
    await pg.createDatabase("shop", "backup");
    work = mkdtempSync(join(tmpdir(), "backupctl-e2e-child-env-"));
    dumps = join(work, "environments");
    const bin = join(work, "bin");
    mkdirSync(dumps);
    mkdirSync(bin);
    for (const program of ["restic", "pg_dump"]) {
      const real = execFileSync("sh", ["-c", `command -v ${program}`]).toString().trim();
      const wrapper = join(bin, program);
      writeFileSync(
        wrapper,
        `#!/bin/sh\ncat /proc/$$/environ > "${dumps}/${program}.$(date +%s%N).$$"\nexec "${real}" "$@"\n`,
      );
      chmodSync(wrapper, 0o755);
    }
    const save = (kind: string) => `cat /proc/$$/environ > "${dumps}/${kind}.$(date +%s%N).$$"`;
    writeFileSync(
      join(work, "backup.config.ts"),
      `import { command, defineConfig, env, postgres, restic, slack } from "backupctl";
export default defineConfig({
  repositories: { local: restic({ url: "repo", password: env("RESTIC_PW") }) },
  notifiers: { chat: slack({ webhookUrl: env("SLACK_URL") }) },
  projects: {
    declared: {
      schedule: "0 3 * * *",
      sources: [
        postgres({ host: "127.0.0.1", port: ${pg.port}, database: "shop", user: "backup", password: env("PG_PW") }),
        command({
          name: "export",
          filename: "export.txt",
          run: ${JSON.stringify(`${save("command")}; echo exported`)},
          env: { CMD_TOKEN: env("CMD_TOKEN") },
        }),
      ],
      repositories: ["local"],
      retention: { last: 3 },
      hooks: { env: { DBPW: env("DBPW") }, before: ${JSON.stringify(save("hook-declared"))} },
    },
    plain: {
      schedule: "0 3 * * *",
      sources: [command({ name: "plain", filename: "plain.txt", run: "echo plain" })],
      repositories: ["local"],
      retention: { last: 3 },
      hooks: { before: ${JSON.stringify(save("hook-plain"))} },
    },
  },
});
`,
    );
    const result = await runCli(["--config", join(work, "backup.config.ts"), "apply", "--now", now], {
      env: {
        ...secrets,
        UNRELATED_SETTING: unrelated,
        PATH: `${bin}:${process.env.PATH}`,
        BACKUPCTL_CONFIG: undefined,
        BACKUPCTL_STATE_DIR: undefined,
      },
      cwd: work,
      timeoutMs: 120_000,
    });
    assert.equal(result.code, 0, result.stdout + result.stderr);
  });

  after(async () => {
    await pg?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it("restic gets its repository password as RESTIC_PASSWORD, and no other secret", () => {
    const runs = environments("restic");
    assert.ok(runs.length >= 4, `restic ran ${runs.length} times (init, backups, inventory)`);
    for (const env of runs) {
      assert.equal(env.get("RESTIC_PASSWORD"), secrets.RESTIC_PW);
      assert.equal(env.has("RESTIC_PW"), false, "the variable the reference names is withheld");
      assert.deepEqual(leaked(env, ["RESTIC_PW"]), []);
      assert.equal(env.get("UNRELATED_SETTING"), unrelated, "a variable the config does not name is inherited");
    }
  });

  it("pg_dump gets its pgpass file, and no secret in its environment", () => {
    const runs = environments("pg_dump");
    assert.equal(runs.length, 1);
    const [env] = runs;
    assert.match(env.get("PGPASSFILE") ?? "", /\/tmp\/secret-\d+-\w+\/pgpass$/);
    assert.equal(env.get("PGPASSWORD"), "", "an inherited PGPASSWORD cannot win over the pgpass file");
    assert.deepEqual(leaked(env, []), []);
    assert.equal(env.get("UNRELATED_SETTING"), unrelated);
  });

  it("a hook gets what its hooks.env declares, and nothing else", () => {
    const [declared] = environments("hook-declared");
    assert.equal(declared.get("DBPW"), secrets.DBPW);
    assert.equal(declared.get("BACKUPCTL_PROJECT"), "declared");
    assert.deepEqual(leaked(declared, ["DBPW"]), []);
    const [plain] = environments("hook-plain");
    assert.equal(plain.has("DBPW"), false, "a hook that declares nothing does not inherit the config's variables");
    assert.deepEqual(leaked(plain, []), []);
    assert.equal(plain.get("UNRELATED_SETTING"), unrelated);
  });

  it("a command() source gets what its env declares, and nothing else", () => {
    const [env] = environments("command");
    assert.equal(env.get("CMD_TOKEN"), secrets.CMD_TOKEN);
    assert.deepEqual(leaked(env, ["CMD_TOKEN"]), []);
    assert.equal(env.get("UNRELATED_SETTING"), unrelated);
  });
});
