/**
 * restic's typed options (issue 23, point 1), end to end with the real restic 0.14: `restic` and a command source are
 * wrappers first on PATH that record the argv they were given, their CPU niceness (/proc/$$/stat) and their I/O
 * priority (`ionice -p $$`), then exec the real program. Each option is checked by the argv restic received, and by
 * its effect where restic shows one: the files a snapshot lacks (a CACHEDIR.TAG folder, a folder with a marker file,
 * a large file, patterns of an exclude file, extraArgs' own exclude), the priority the processes ran at, a project's
 * settings winning over its repository's, and the errors restic 0.14 gives for what it cannot do (`--read-concurrency`
 * is restic 0.15; `--compression` on a version 1 repository is ignored silently, so backupctl refuses it).
 * `oneFileSystem` is checked by argv, and by its effect where a tmpfs can be mounted below the backed-up folder (root,
 * outside an unprivileged container): a file on it is left out.
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { runCli, runTool } from "../support/cli.ts";

const now = "2026-11-21T10:00:00Z";
const password = "options-test-password";

/** Whether a tmpfs can be mounted here: true, or why not (the reason a test is skipped for). */
function canMountTmpfs(): true | string {
  const probe = mkdtempSync(join(tmpdir(), "backupctl-mount-probe-"));
  try {
    const mounted = spawnSync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", probe], { encoding: "utf8" });
    if (mounted.status !== 0) return `no tmpfs can be mounted here: ${(mounted.stderr || mounted.error)?.toString()}`;
    spawnSync("umount", [probe]);
    return true;
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
}

/** One recorded start of a wrapped program. */
interface Call {
  argv: string[];
  nice: number;
  ionice: string;
  /** The repository restic was given (RESTIC_REPOSITORY). */
  repository: string;
}

describe("restic options: argv, priority and effect", () => {
  const mountable = canMountTmpfs();
  let mounted = "";
  let work = "";
  let calls = "";
  const config = () => join(work, "backup.config.ts");
  const cli = (args: string[]) =>
    runCli(["--config", config(), ...args], {
      env: { RESTIC_PW: password, PATH: `${join(work, "bin")}:${process.env.PATH}`, BACKUPCTL_STATE_DIR: undefined },
      cwd: work,
      timeoutMs: 180_000,
    });
  /** Every recorded start of `program`, in order. */
  const recorded = (program: string): Call[] =>
    readdirSync(calls).filter((name) => name.startsWith(`${program}.`)).sort().map((name) => {
      const [argv, nice, ionice, repository] = readFileSync(join(calls, name), "utf8").split("\n--\n");
      return {
        argv: argv.split("\0").slice(0, -1),
        nice: Number(nice.trim()),
        ionice: ionice.trim(),
        repository: repository.trim(),
      };
    });
  const backups = () => recorded("restic").filter((call) => call.argv[0] === "backup");
  /** The one recorded `restic backup` of a source. */
  const backupOf = (source: string) => {
    const found = backups().filter((call) => call.argv.includes(`source=${source}`));
    assert.equal(found.length, 1, `one restic backup of ${source}: ${JSON.stringify(backups().map((c) => c.argv))}`);
    return found[0];
  };
  /** The value after `flag` in an argv, every time it occurs. */
  const values = (argv: string[], flag: string) => argv.flatMap((arg, i) => (arg === flag ? [argv[i + 1]] : []));
  const restic = (repository: string, args: string[]) =>
    runTool("restic", ["--no-cache", ...args], {
      env: { RESTIC_REPOSITORY: join(work, repository), RESTIC_PASSWORD: password },
    });

  before(() => {
    work = mkdtempSync(join(tmpdir(), "backupctl-e2e-options-"));
    calls = join(work, "calls");
    const bin = join(work, "bin");
    mkdirSync(calls);
    mkdirSync(bin);
    // What a wrapped program records: its argv (NUL-separated), its niceness (field 19 of /proc/PID/stat: the
    // command name in field 2 has no spaces here) and what ionice says of it.
    const record = (name: string) =>
      `f="${calls}/${name}.$(date +%s%N).$$"; printf '%s\\0' "$@" > "$f"; ` +
      `printf '\\n--\\n%s\\n--\\n' "$(cut -d' ' -f19 /proc/$$/stat)" >> "$f"; ionice -p $$ >> "$f"; ` +
      `printf -- '--\\n%s\\n' "$RESTIC_REPOSITORY" >> "$f"`;
    const real = execFileSync("sh", ["-c", "command -v restic"]).toString().trim();
    writeFileSync(join(bin, "restic"), `#!/bin/sh\n${record("restic")}\nexec "${real}" "$@"\n`);
    chmodSync(join(bin, "restic"), 0o755);
    writeFileSync(join(bin, "export-data"), `#!/bin/sh\n${record("export")}\necho exported\n`);
    chmodSync(join(bin, "export-data"), 0o755);

    const data = join(work, "data");
    for (const folder of ["cache", "marked", "kept"]) mkdirSync(join(data, folder), { recursive: true });
    writeFileSync(join(data, "kept", "keep.txt"), "kept\n");
    writeFileSync(
      join(data, "cache", "CACHEDIR.TAG"),
      "Signature: 8a477f597d28d172789f06886806bc55\n# a cache directory tag\n",
    );
    writeFileSync(join(data, "cache", "blob.bin"), "cached\n");
    writeFileSync(join(data, "marked", ".nobackup"), "");
    writeFileSync(join(data, "marked", "private.txt"), "marked\n");
    writeFileSync(join(data, "big.bin"), Buffer.alloc(2 * 1024 * 1024, 7));
    writeFileSync(join(data, "small.bin"), Buffer.alloc(1024, 7));
    writeFileSync(join(data, "debug.log"), "log\n");
    writeFileSync(join(data, "old.BAK"), "backup copy\n");
    writeFileSync(join(work, "excludes.txt"), "# patterns\n*.log\n");
    if (mountable === true) {
      // Another file system below the backed-up folder: oneFileSystem leaves what is on it out.
      mkdirSync(join(data, "mounted"));
      execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", join(data, "mounted")]);
      mounted = join(data, "mounted");
      writeFileSync(join(mounted, "other-fs.txt"), "on another file system\n");
    }
    // A repository of format version 1, where restic 0.14 ignores --compression without a word.
    execFileSync("restic", ["--no-cache", "init", "--repository-version", "1"], {
      env: { ...process.env, RESTIC_REPOSITORY: join(work, "old-repo"), RESTIC_PASSWORD: password },
      stdio: "ignore",
    });
    writeFileSync(
      config(),
      `import { command, defineConfig, env, files, restic } from "backupctl";
const retention = { last: 3 };
export default defineConfig({
  repositories: {
    local: restic({
      url: "repo",
      password: env("RESTIC_PW"),
      limitUpload: 4096,
      limitDownload: 8192,
      packSize: 8,
      compression: "max",
      nice: 5,
      ionice: { class: "best-effort", level: 6 },
      extraArgs: ["--cleanup-cache"],
      prune: { maxUnused: "0", maxRepackSize: "1G" },
    }),
    second: restic({ url: "second-repo", password: env("RESTIC_PW"), limitUpload: 300 }),
    newer: restic({ url: "newer-repo", password: env("RESTIC_PW"), readConcurrency: 4 }),
    old: restic({ url: "old-repo", password: env("RESTIC_PW"), compression: "max" }),
  },
  projects: {
    app: {
      schedule: "0 3 * * *",
      repositories: ["local", "second"],
      retention,
      restic: { limitUpload: 1024 },
      nice: 7,
      ionice: { class: "idle" },
      sources: [
        files({
          paths: ["data"],
          excludeCaches: true,
          oneFileSystem: true,
          excludeIfPresent: [".nobackup"],
          excludeLargerThan: "1M",
          excludeFile: "excludes.txt",
          extraArgs: ["--iexclude", "*.bak"],
        }),
        command({ name: "export", run: ["export-data"], filename: "export.txt" }),
      ],
    },
    plain: {
      schedule: "0 3 * * *",
      repositories: ["local"],
      retention,
      sources: [command({ name: "plain", run: "echo plain", filename: "plain.txt" })],
    },
    concurrent: {
      schedule: "0 3 * * *",
      repositories: ["newer"],
      retention,
      retry: { attempts: 1 },
      sources: [command({ name: "c", run: "echo c", filename: "c.txt" })],
    },
    legacy: {
      schedule: "0 3 * * *",
      repositories: ["old"],
      retention,
      retry: { attempts: 1 },
      sources: [command({ name: "l", run: "echo l", filename: "l.txt" })],
    },
  },
});
`,
    );
  });

  after(() => {
    if (mounted) spawnSync("umount", [mounted]);
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it("applies the projects with typed options", async () => {
    const result = await cli(["apply", "--now", now, "--project", "app", "--project", "plain"]);
    assert.equal(result.code, 0, result.stdout + result.stderr);
  });

  it("gives every restic command of the repository its global flags", () => {
    const all = recorded("restic").filter((call) => call.repository === join(work, "repo"));
    assert.ok(all.length >= 3, `restic ran ${all.length} times`);
    for (const { argv } of all) {
      assert.deepEqual(values(argv, "--pack-size"), ["8"], argv.join(" "));
      assert.deepEqual(values(argv, "--compression"), ["max"]);
      assert.deepEqual(values(argv, "--limit-download"), ["8192"]);
      assert.ok(argv.includes("--cleanup-cache"), "the repository's extraArgs");
    }
  });

  it("the project's restic settings, nice and ionice win over the repository's; the others keep the repository's", () => {
    for (const app of [backupOf("files"), backupOf("export")]) {
      assert.deepEqual(values(app.argv, "--limit-upload"), ["1024"]);
      assert.equal(app.nice, 7, "a paths backup, and a stream's restic behind its gate");
      assert.equal(app.ionice, "idle");
    }
    const plain = backupOf("plain");
    assert.deepEqual(values(plain.argv, "--limit-upload"), ["4096"]);
    assert.equal(plain.nice, 5);
    assert.equal(plain.ionice, "best-effort: prio 6");
    const init = recorded("restic").find((call) => call.argv[0] === "init" && call.repository === join(work, "repo"));
    assert.equal(init?.nice, 5, "a repository command outside a project runs at the repository's priority");
  });

  it("a copy the project makes takes the project's settings; the copy repository's own init takes its own", () => {
    const copies = recorded("restic").filter((call) => call.argv[0] === "copy");
    assert.equal(copies.length, 2, "the files and export snapshots are copied into second");
    for (const copy of copies) {
      assert.deepEqual(values(copy.argv, "--limit-upload"), ["1024"], copy.argv.join(" "));
      assert.equal(copy.nice, 7);
    }
    const init = recorded("restic").find((call) => call.argv.includes("--copy-chunker-params"));
    assert.deepEqual(values(init?.argv ?? [], "--limit-upload"), ["300"]);
  });

  it("runs a dump program at the project's priority", () => {
    const [exported] = recorded("export");
    assert.equal(exported.nice, 7);
    assert.equal(exported.ionice, "idle");
  });

  it("passes the files source's options to restic backup", () => {
    const { argv } = backupOf("files");
    assert.ok(argv.includes("--exclude-caches"));
    assert.ok(argv.includes("--one-file-system"));
    assert.deepEqual(values(argv, "--exclude-if-present"), [".nobackup"]);
    assert.deepEqual(values(argv, "--exclude-larger-than"), ["1M"]);
    assert.deepEqual(values(argv, "--exclude-file"), [join(work, "excludes.txt")]);
    assert.deepEqual(values(argv, "--iexclude"), ["*.bak"]);
    assert.deepEqual(argv.slice(argv.indexOf("--") + 1), [join(work, "data")]);
  });

  /** The paths in the latest snapshot of the files source, relative to the backed-up folder. */
  const snapshotPaths = async () => {
    const listed = await restic("repo", ["ls", "--json", "latest", "--tag", "source=files"]);
    assert.equal(listed.code, 0, listed.stderr);
    return listed.stdout.split("\n").filter(Boolean).map((line) => JSON.parse(line) as { path?: string })
      .flatMap((node) => node.path === undefined ? [] : [node.path.slice(join(work, "data").length)]);
  };

  it("leaves out what the options exclude, and keeps the rest", async () => {
    const paths = await snapshotPaths();
    for (const kept of ["/kept/keep.txt", "/small.bin", "/cache", "/marked"]) {
      assert.ok(paths.includes(kept), `${kept} is in the snapshot: ${paths.join(" ")}`);
    }
    for (const left of ["/cache/blob.bin", "/marked/private.txt", "/big.bin", "/debug.log", "/old.BAK"]) {
      assert.ok(!paths.includes(left), `${left} is left out: ${paths.join(" ")}`);
    }
  });

  it("oneFileSystem: a file on another file system mounted below the path is left out", {
    skip: mountable === true ? false : mountable,
  }, async () => {
    const paths = await snapshotPaths();
    assert.ok(paths.includes("/kept/keep.txt"));
    assert.ok(!paths.includes("/mounted/other-fs.txt"), paths.join(" "));
  });

  it("readConcurrency: restic 0.14 does not know --read-concurrency, and the failure says what to do", async () => {
    const result = await cli(["apply", "--now", now, "--project", "concurrent"]);
    assert.equal(result.code, 1, result.stdout + result.stderr);
    const concurrent = backupOf("c");
    assert.deepEqual(values(concurrent.argv, "--read-concurrency"), ["4"]);
    assert.match(result.stdout + result.stderr, /unknown flag: --read-concurrency/);
    assert.match(result.stdout + result.stderr, /readConcurrency. needs restic 0\.15 or later/);
  });

  it('compression: "max" on a version 1 repository fails the backup instead of storing uncompressed data', async () => {
    const result = await cli(["apply", "--now", now, "--project", "legacy"]);
    assert.equal(result.code, 1, result.stdout + result.stderr);
    assert.match(
      result.stdout + result.stderr,
      /repository old: compression: "max" needs a repository of format version 2, and this one is version 1/,
    );
    assert.equal(backups().filter((call) => call.argv.includes("project=legacy")).length, 0, "no backup started");
    const listed = await restic("old-repo", ["snapshots", "--json"]);
    assert.deepEqual(JSON.parse(listed.stdout), []);
  });

  it("prunes with the repository's prune settings, and a repository without them with restic's defaults", async () => {
    const result = await cli(["forget", "app", "--prune"]);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.match(result.stdout, /~ prune local: done/);
    const prunes = recorded("restic").filter((call) => call.argv.includes("prune"));
    const of = (repository: string) => prunes.filter((call) => call.repository === join(work, repository));
    assert.equal(of("repo").length, 1, JSON.stringify(prunes.map((call) => call.argv)));
    assert.deepEqual(values(of("repo")[0].argv, "--max-unused"), ["0"]);
    assert.deepEqual(values(of("repo")[0].argv, "--max-repack-size"), ["1G"]);
    for (const call of of("second-repo")) {
      assert.ok(!call.argv.includes("--max-unused") && !call.argv.includes("--max-repack-size"), call.argv.join(" "));
    }
    // With nothing unused allowed, a second look finds nothing left to repack or delete.
    const again = await restic("repo", ["prune", "--dry-run", "--max-unused", "0"]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /unused size after prune:\s+0 B/);
  });
});
