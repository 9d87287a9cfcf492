/**
 * The private files of database dumps (issue 16, point 6c): the pgpass file of pg_dump and the option file of
 * mariadb-dump hold a password while their stage runs. Where they live and that they go away on every path is what
 * docs/operations.md promises: `<state dir>/tmp/secret-<pid>-XXXXXX/` (0700), the file 0600; removed when the stage
 * succeeds, fails, runs out of time or is stopped by SIGTERM (also when a second SIGTERM makes backupctl exit at once);
 * a `kill -9` leaves it, and the next start deletes it (a `recover` action).
 *
 * `pg_dump` and `mariadb-dump` are wrappers first on PATH: each records the file it was given (path, its mode and its
 * folder's mode), then either execs the real program or, when the test asks, hangs (writing its pid so the test
 * knows the stage is running), and on SIGTERM either ends or (when asked) ignores it.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { runCli, spawnCli, waitFor } from "../support/cli.ts";
import { type MariadbServer, startMariadb } from "../support/mariadb.ts";
import { type PostgresServer, startPostgres } from "../support/postgres.ts";

const dayAt = (n: number) => new Date(Date.UTC(2026, 10, 1 + n, 10)).toISOString().replace(".000Z", "Z");

/** What a wrapper recorded about the private file it was given. */
interface Given {
  path: string;
  mode: string;
  folderMode: string;
}

describe("private files of database dumps: 0600 in a 0700 folder under <state dir>/tmp, removed on every path", () => {
  let pg: PostgresServer | undefined;
  let maria: MariadbServer | undefined;
  let work = "";
  let control = "";
  let env: Record<string, string | undefined> = {};
  const stateDir = () => join(work, ".backupctl");
  const privateDir = () => join(stateDir(), "tmp");
  const leftovers = () => existsSync(privateDir()) ? readdirSync(privateDir()) : [];
  const cli = (args: string[]) =>
    runCli(["--config", join(work, "backup.config.ts"), ...args], { env, cwd: work, timeoutMs: 120_000 });
  const background = (args: string[]) => spawnCli(["--config", join(work, "backup.config.ts"), ...args], { env });
  /** The files a wrapper was given since the last call. */
  const given = (program: string): Given[] => {
    const log = join(control, `${program}.given`);
    if (!existsSync(log)) return [];
    const lines = readFileSync(log, "utf8").trim().split("\n").filter(Boolean);
    rmSync(log);
    return lines.map((line) => {
      const [mode, folderMode, path] = line.split(" ");
      return { path, mode, folderMode };
    });
  };
  /** Asserts the one file `program` was given lived where the docs say, private, and is gone now. */
  const assertGivenAndGone = (program: string, name: string) => {
    const files = given(program);
    assert.equal(files.length, 1, `${program} ran once: ${JSON.stringify(files)}`);
    const [file] = files;
    assert.ok(file.path.startsWith(`${privateDir()}/secret-`), `${file.path} is in ${privateDir()}`);
    assert.match(file.path, new RegExp(`/secret-\\d+-\\w{6}/${name}$`));
    assert.equal(file.mode, "600");
    assert.equal(file.folderMode, "700");
    assert.equal(existsSync(file.path), false, `${file.path} was removed`);
    assert.deepEqual(leftovers(), [], "no private folder is left");
    return file;
  };
  const hang = (program: string, options: { ignoreTerm?: boolean } = {}) => {
    writeFileSync(join(control, `hang-${program}`), options.ignoreTerm ? "ignore-term" : "");
  };
  const release = () => {
    for (const name of readdirSync(control)) {
      if (name.startsWith("hang-") || name === "hanging") rmSync(join(control, name));
    }
  };
  /** The pid of the wrapper that hangs, once it does. */
  const hanging = () =>
    waitFor(
      "the dump to hang",
      () => existsSync(join(control, "hanging")) && Number(readFileSync(join(control, "hanging"), "utf8")),
    );
  const killQuietly = (pid: number) => {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // gone
    }
  };
  const hung: number[] = [];

  before(async () => {
    [pg, maria] = await Promise.all([startPostgres(), startMariadb()]);
    await pg.createUser("backup", "pg-password-0600");
    await pg.createDatabase("shop", "backup");
    await maria.createDatabase("wiki");
    await maria.createUser("backup", "maria-password-0600", "wiki");
    work = mkdtempSync(join(tmpdir(), "backupctl-e2e-private-files-"));
    control = join(work, "control");
    const bin = join(work, "bin");
    mkdirSync(control);
    mkdirSync(bin);
    // Records "MODE FOLDERMODE PATH" of the private file, then hangs or runs the real program.
    const wrapper = (program: string, pathOf: string) => {
      const real = execFileSync("sh", ["-c", `command -v ${program}`]).toString().trim();
      writeFileSync(
        join(bin, program),
        `#!/bin/bash
${pathOf}
printf '%s %s %s\\n' "$(stat -c %a "$f")" "$(stat -c %a "\${f%/*}")" "$f" >> "${control}/${program}.given"
if [ -e "${control}/hang-${program}" ]; then
  if [ -s "${control}/hang-${program}" ]; then trap 'echo term >> "${control}/terms"' TERM; fi
  echo $$ > "${control}/hanging.tmp" && mv "${control}/hanging.tmp" "${control}/hanging"
  while :; do sleep 0.2; done
fi
exec "${real}" "$@"
`,
      );
      chmodSync(join(bin, program), 0o755);
    };
    wrapper("pg_dump", 'f="$PGPASSFILE"');
    wrapper("mariadb-dump", 'f="${1#--defaults-extra-file=}"');
    const project = (name: string, sources: string, extra = "") =>
      `${name}: { schedule: "0 3 * * *", repositories: ["local"], retention: { last: 10 }, retry: { attempts: 1 }, ` +
      `sources: [${sources}]${extra} },`;
    const postgres = (password: string) =>
      `postgres({ host: "127.0.0.1", port: ${
        pg!.port
      }, database: "shop", user: "backup", password: env("${password}") })`;
    const mysql = (password: string) =>
      `mysql({ host: "127.0.0.1", port: ${
        maria!.port
      }, database: "wiki", user: "backup", password: env("${password}") })`;
    writeFileSync(
      join(work, "backup.config.ts"),
      `import { defineConfig, env, mysql, postgres, restic } from "backupctl";
export default defineConfig({
  repositories: { local: restic({ url: "repo", password: env("RESTIC_PW") }) },
  projects: {
    ${project("good", `${postgres("PG_PW")}, ${mysql("MARIA_PW")}`)}
    ${project("wrong", `${postgres("WRONG_PW")}, ${mysql("WRONG_PW")}`)}
    ${project("slow", `${postgres("PG_PW")}, ${mysql("MARIA_PW")}`, ', timeout: "3s"')}
    ${project("stopped", postgres("PG_PW"))}
  },
});
`,
    );
    env = {
      RESTIC_PW: "restic-password-0600",
      PG_PW: "pg-password-0600",
      MARIA_PW: "maria-password-0600",
      WRONG_PW: "wrong-password-0600",
      PATH: `${bin}:${process.env.PATH}`,
      BACKUPCTL_CONFIG: undefined,
      BACKUPCTL_STATE_DIR: undefined,
    };
  });

  after(async () => {
    release();
    hung.forEach(killQuietly);
    await Promise.allSettled([pg?.stop(), maria?.stop()]);
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it("success: both files were private while the dumps ran, and are gone", async () => {
    const result = await cli(["apply", "--project", "good", "--now", dayAt(1)]);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assertGivenAndGone("pg_dump", "pgpass");
    assertGivenAndGone("mariadb-dump", "my.cnf");
  });

  it("failure (a wrong password): both are gone", async () => {
    const result = await cli(["apply", "--project", "wrong", "--now", dayAt(1)]);
    assert.equal(result.code, 1, result.stdout + result.stderr);
    assert.match(result.stdout, /backup wrong\/shop → local failed/);
    assert.match(result.stdout, /backup wrong\/wiki → local failed/);
    assertGivenAndGone("pg_dump", "pgpass");
    assertGivenAndGone("mariadb-dump", "my.cnf");
  });

  it("timeout: a dump that hangs is stopped after the stage's time, and its file is gone", async () => {
    hang("pg_dump");
    hang("mariadb-dump");
    const result = await cli(["apply", "--project", "slow", "--now", dayAt(1)]);
    release();
    assert.equal(result.code, 1, result.stdout + result.stderr);
    assert.match(result.stdout, /backup slow\/shop → local failed: [^\n]*(time|3s)/);
    assertGivenAndGone("pg_dump", "pgpass");
    assertGivenAndGone("mariadb-dump", "my.cnf");
  });

  it("SIGTERM while the dump runs: exit 143, the file is gone", async () => {
    hang("pg_dump");
    const apply = background(["apply", "--project", "stopped", "--now", dayAt(2)]);
    hung.push(await hanging());
    const [file] = given("pg_dump");
    assert.equal(existsSync(file.path), true, "the file exists while the stage runs (the check below can fail)");
    process.kill(apply.pid, "SIGTERM");
    const done = await apply.done;
    release();
    assert.equal(done.code, 143, apply.output());
    assert.equal(existsSync(dirname(file.path)), false, "its folder was removed");
    assert.deepEqual(leftovers(), []);
  });

  it("a second SIGTERM (backupctl exits at once, the dump still running): the file is gone", async () => {
    hang("pg_dump", { ignoreTerm: true });
    const apply = background(["apply", "--project", "stopped", "--now", dayAt(3)]);
    hung.push(await hanging());
    const [file] = given("pg_dump");
    process.kill(apply.pid, "SIGTERM");
    // The dump ignores it: the stage is still running when the second signal comes.
    await waitFor("the dump to get SIGTERM", () => existsSync(join(control, "terms")));
    assert.equal(existsSync(file.path), true, "the stage still runs, its file with it");
    process.kill(apply.pid, "SIGTERM");
    const done = await apply.done;
    release();
    assert.equal(done.code, 143, apply.output());
    assert.equal(existsSync(dirname(file.path)), false, "the exit handler removed the private folder");
    // The stream's FIFO folder (no secret in it) is left to startup recovery like after a kill -9.
    assert.deepEqual(leftovers().filter((name) => !name.includes("-fifo-")), []);
  });

  it("kill -9 leaves the file to startup recovery, which deletes it", async () => {
    hang("pg_dump");
    const apply = background(["apply", "--project", "stopped", "--now", dayAt(4)]);
    const dump = await hanging();
    hung.push(dump);
    const [file] = given("pg_dump");
    process.kill(apply.pid, "SIGKILL");
    await apply.done;
    killQuietly(dump);
    release();
    assert.equal(existsSync(file.path), true, "kill -9 leaves the pgpass file");
    const planned = await cli(["plan", "--project", "stopped", "--now", dayAt(4)]);
    assert.match(planned.stdout, /recover: delete \d+ leftover private folders?/);
    const next = await cli(["apply", "--project", "stopped", "--now", dayAt(4)]);
    assert.equal(next.code, 0, next.stdout + next.stderr);
    assert.equal(existsSync(file.path), false, "startup recovery deleted it");
    assertGivenAndGone("pg_dump", "pgpass");
  });
});
