/**
 * test/support/restic-init.ts, the suite's `restic init`: the repository it makes itself must be one the real restic
 * opens, writes, checks and refuses a wrong password for, with a cheap key; an init it does not make must reach the
 * real restic. The real restic is called by its path (/usr/bin/restic, else the first on PATH), never the suite's
 * wrapper.
 * Runs under `deno test -A test/scripts/restic_init_test.ts` and
 * `bun --no-install test --timeout 300000 ./test/scripts/restic_init_test.ts`.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { repoRoot } from "../support/cli.ts";

const dir = mkdtempSync(join(tmpdir(), "backupctl-restic-init-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const realRestic = existsSync("/usr/bin/restic")
  ? "/usr/bin/restic"
  : spawnSync("sh", ["-c", "command -v restic"], { encoding: "utf8" }).stdout.trim();
const polynomial = "2103d3d913072f";

function suiteInit(args: string[], env: Record<string, string | undefined>) {
  const runtime = "Bun" in globalThis ? [process.execPath] : [process.execPath, "run", "--quiet", "--no-lock", "-A"];
  return spawnSync(runtime[0], [
    ...runtime.slice(1),
    join(repoRoot, "test/support/restic-init.ts"),
    realRestic,
    ...args,
  ], {
    env: { ...process.env, RESTIC_PASSWORD: undefined, BACKUPCTL_TEST_CHUNKER_POLYNOMIAL: polynomial, ...env },
    encoding: "utf8",
  });
}

function restic(repository: string, password: string, args: string[]) {
  return spawnSync(realRestic, ["-r", repository, "--no-cache", ...args], {
    env: { ...process.env, RESTIC_PASSWORD: password },
    encoding: "utf8",
  });
}

function keyOf(repository: string): { N: number; name: string } {
  const names = readdirSync(join(repository, "keys"));
  assert.equal(names.length, 1, "one key");
  return { ...JSON.parse(readFileSync(join(repository, "keys", names[0]), "utf8")), name: names[0] };
}

describe("the suite's restic init", () => {
  it("makes a new local repository restic opens, backs up into, checks, and refuses a wrong password for", () => {
    const repository = join(dir, "made", "repo");
    const made = suiteInit(["init", "--no-cache", "-r", repository], { RESTIC_PASSWORD: "s3cret" });
    assert.equal(made.status, 0, made.stderr);
    assert.match(made.stdout, /^created restic repository [0-9a-f]{10} at /);
    assert.equal(keyOf(repository).N, 1024, "a cheap key");
    assert.equal(statSync(repository).mode & 0o777, 0o700);
    assert.equal(statSync(join(repository, "config")).mode & 0o777, 0o400);
    assert.equal(readdirSync(join(repository, "data")).length, 256);
    const config = restic(repository, "s3cret", ["cat", "config"]);
    assert.equal(config.status, 0, config.stderr);
    assert.deepEqual(
      { ...JSON.parse(config.stdout), id: "" },
      { version: 2, id: "", chunker_polynomial: polynomial },
    );
    const source = join(dir, "data");
    mkdirSync(source);
    writeFileSync(join(source, "file.txt"), "x".repeat(100_000));
    const backup = restic(repository, "s3cret", ["backup", "--json", source]);
    assert.equal(backup.status, 0, backup.stderr);
    const check = restic(repository, "s3cret", ["check", "--read-data"]);
    assert.equal(check.status, 0, check.stderr);
    assert.match(check.stdout, /no errors were found/);
    const wrong = restic(repository, "wrong", ["snapshots"]);
    assert.equal(wrong.status, 1);
    assert.match(wrong.stderr, /wrong password/);
    // Two repositories made here are two repositories: their ids differ.
    const other = join(dir, "made", "other");
    assert.equal(suiteInit(["-r", other, "init"], { RESTIC_PASSWORD: "s3cret" }).status, 0);
    assert.notEqual(JSON.parse(restic(other, "s3cret", ["cat", "config"]).stdout).id, JSON.parse(config.stdout).id);
  });

  it("reads the password from a password file as restic does (trimmed)", () => {
    const repository = join(dir, "file", "repo");
    const passwordFile = join(dir, "password");
    writeFileSync(passwordFile, "from-file\n");
    assert.equal(suiteInit(["--password-file", passwordFile, "-r", repository, "init"], {}).status, 0);
    assert.equal(keyOf(repository).N, 1024);
    assert.equal(restic(repository, "from-file", ["snapshots"]).status, 0);
  });

  it("copies the chunker polynomial of a repository it can open (init --copy-chunker-params)", () => {
    // Another polynomial restic chose on this machine: the copy must take the source's, not the suite's.
    const source = join(dir, "copy", "source");
    const other = "28cb30d238354f";
    assert.equal(
      suiteInit(["init", "-r", source], { RESTIC_PASSWORD: "a", BACKUPCTL_TEST_CHUNKER_POLYNOMIAL: other }).status,
      0,
    );
    const target = join(dir, "copy", "target");
    const made = suiteInit(["init", "--copy-chunker-params", "-r", target], {
      RESTIC_PASSWORD: "b",
      RESTIC_FROM_REPOSITORY: source,
      RESTIC_FROM_PASSWORD: "a",
    });
    assert.equal(made.status, 0, made.stderr);
    assert.equal(keyOf(target).N, 1024);
    assert.equal(JSON.parse(restic(target, "b", ["cat", "config"]).stdout).chunker_polynomial, other);
    // A wrong password for the source: the real restic answers (and fails as it would).
    const refused = suiteInit(["init", "--copy-chunker-params", "-r", join(dir, "copy", "refused")], {
      RESTIC_PASSWORD: "b",
      RESTIC_FROM_REPOSITORY: source,
      RESTIC_FROM_PASSWORD: "wrong",
    });
    assert.equal(refused.status, 1);
    assert.match(refused.stderr, /wrong password/);
  });

  it("leaves any other init to the real restic, and re-keys what it made", () => {
    // A folder that already holds a file is not a new repository: the real restic inits it (it allows that).
    const repository = join(dir, "existing");
    mkdirSync(repository);
    writeFileSync(join(repository, "README"), "kept");
    const made = suiteInit(["init", "-r", repository], { RESTIC_PASSWORD: "pw" });
    assert.equal(made.status, 0, made.stderr);
    assert.equal(readFileSync(join(repository, "README"), "utf8"), "kept");
    assert.equal(keyOf(repository).N, 1024, "re-keyed after the real init");
    assert.equal(restic(repository, "pw", ["snapshots"]).status, 0);
    // An init restic refuses stays refused, with restic's exit code: here, a second init of the same repository.
    const again = suiteInit(["init", "-r", repository], { RESTIC_PASSWORD: "pw" });
    assert.equal(again.status, 1);
    assert.match(again.stderr, /already (exists|initialized)/);
  });
});
