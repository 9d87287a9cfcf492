/**
 * backupctl installed like a tool (docs/install.md): `npm pack` makes backupctl-<version>.tgz, `npm install -g
 * --prefix` installs it into a temporary prefix, and `<prefix>/bin/backupctl` then runs with only the package's own
 * Deno (PATH holds no deno): --version names version, revision and runtime; `init` in an empty folder outside the
 * checkout writes a config and a deno.json with which `deno check` passes (and fails on a type error); validate and
 * plan work there; SIGTERM to `watch` stops the runtime itself (the bin execs it: no orphan, the port closes);
 * BACKUPCTL_RUNTIME=bun runs the same package with Bun. One pack and one install for the whole file.
 */
import assert from "node:assert/strict";
import { execFile, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import pkg from "../../package.json" with { type: "json" };
import { repoRoot } from "../support/cli.ts";

interface Result {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

function run(program: string, args: string[], options: { cwd?: string; env?: Record<string, string> } = {}) {
  const started = performance.now();
  return new Promise<Result>((resolve) => {
    execFile(program, args, { cwd: options.cwd, env: options.env, maxBuffer: 16 * 1024 * 1024, timeout: 300_000 }, (
      error,
      stdout,
      stderr,
    ) => {
      const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr), ms: performance.now() - started });
    });
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/** Every process whose command line mentions `marker` (a temp folder only this test uses). */
function processesMentioning(marker: string): { pid: number; cmdline: string }[] {
  const found: { pid: number; cmdline: string }[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, "utf8").replaceAll("\0", " ");
      const environ = readFileSync(`/proc/${entry}/environ`, "utf8");
      if (cmdline.includes(marker) || environ.includes(marker)) found.push({ pid: Number(entry), cmdline });
    } catch { /* gone, or not ours */ }
  }
  return found;
}

describe("install: npm pack, npm install -g, the installed backupctl", () => {
  let work: string;
  let prefix: string;
  let bin: string;
  let packageDir: string;
  let packedRevision: string;
  /** PATH without any deno or bun: /usr/bin and /bin only (restic, sqlite3 and sh are Debian programs there). */
  let env: Record<string, string>;

  before(async () => {
    work = realpathSync(mkdtempSync(join(tmpdir(), "backupctl-install-")));
    prefix = join(work, "prefix");
    packedRevision = execFileSync("git", ["rev-parse", "--short=7", "HEAD"], { cwd: repoRoot, encoding: "utf8" })
      .trim();
    const pack = await run("npm", ["pack", "--pack-destination", work, "--loglevel=error"], {
      cwd: repoRoot,
      env: {
        ...process.env,
      } as Record<string, string>,
    });
    assert.equal(pack.code, 0, pack.stderr);
    const tarball = join(work, `backupctl-${pkg.version}.tgz`);
    assert.ok(existsSync(tarball), `npm pack made ${readdirSync(work).join(", ")}`);
    const install = await run("npm", [
      "install",
      "--global",
      "--prefix",
      prefix,
      "--prefer-offline",
      "--no-audit",
      "--no-fund",
      "--loglevel=error",
      tarball,
    ], { env: process.env as Record<string, string> });
    assert.equal(install.code, 0, install.stderr);
    bin = join(prefix, "bin", "backupctl");
    packageDir = join(prefix, "lib", "node_modules", "backupctl");
    env = {
      PATH: "/usr/bin:/bin",
      HOME: join(work, "home"),
      NO_COLOR: "1",
      RESTIC_PASSWORD: "install-test-restic",
    };
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  it("packs only what runs: bin, src, deno.json, README, LICENSE, CHANGELOG, REVISION and package.json", () => {
    const top = readdirSync(packageDir).filter((name) => name !== "node_modules").sort();
    assert.deepEqual(top, [
      "CHANGELOG.md",
      "LICENSE",
      "README.md",
      "REVISION",
      "bin",
      "deno.json",
      "package.json",
      "src",
    ]);
    assert.equal(existsSync(join(repoRoot, "REVISION")), false, "postpack removed the checkout's REVISION");
  });

  it("--version prints version, packed revision and runtime, with no deno on PATH", async () => {
    const result = await run(bin, ["--version"], { cwd: work, env });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, `backupctl ${pkg.version} (git ${packedRevision}, deno 2.9.6)\n`);
  });

  it("init in an empty folder outside the checkout: deno check passes, and fails on a type error", async () => {
    const folder = join(work, "ops-config");
    execFileSync("mkdir", ["-p", folder]);
    const repository = join(work, "restic-repo");
    const init = await run(bin, [
      "init",
      "--database",
      "sqlite",
      "--db-name",
      join(folder, "app.db"),
      "--repository",
      repository,
    ], {
      cwd: folder,
      env,
    });
    assert.equal(init.code, 0, init.stderr);
    const denoJson = JSON.parse(readFileSync(join(folder, "deno.json"), "utf8"));
    assert.equal(denoJson.imports.backupctl, `file://${packageDir}/src/mod.ts`, "points at the installed package");
    const deno = join(packageDir, "node_modules", "@deno", "linux-x64-glibc", "deno");
    const denoBinary = existsSync(deno) ? deno : join(packageDir, "node_modules", "deno", "deno");
    const checked = await run(denoBinary, ["check", "backup.config.ts"], { cwd: folder, env });
    assert.equal(checked.code, 0, checked.stdout + checked.stderr);
    const config = readFileSync(join(folder, "backup.config.ts"), "utf8");
    writeFileSync(join(folder, "typo.config.ts"), config.replace('schedule: "0 3 * * *"', "schedule: 3"));
    const typo = await run(denoBinary, ["check", "typo.config.ts"], { cwd: folder, env });
    assert.notEqual(typo.code, 0, "a number where a cron string belongs fails deno check");
    assert.match(typo.stdout + typo.stderr, /TS2322/);
  });

  it("validate and plan run there, each starting in well under the 1-1.7 s the npm task took", async () => {
    const folder = join(work, "ops-config");
    execFileSync("sqlite3", [join(folder, "app.db"), "create table t(x); insert into t values (1);"]);
    const valid = await run(bin, ["validate"], { cwd: folder, env });
    assert.equal(valid.code, 0, valid.stdout + valid.stderr);
    assert.match(valid.stdout, /Configuration valid: 1 project/);
    const plan = await run(bin, ["plan"], { cwd: folder, env });
    assert.equal(plan.code, 0, plan.stdout + plan.stderr);
    assert.match(plan.stdout, /init|backup/);
    const times: number[] = [];
    for (let i = 0; i < 3; i++) times.push((await run(bin, ["--version"], { cwd: folder, env })).ms);
    times.sort((a, b) => a - b);
    assert.ok(times[1] < 1000, `--version took ${times.map(Math.round).join(", ")} ms`);
  });

  it("SIGTERM to the installed `backupctl watch` stops the runtime: same process, no orphan, port closed", async () => {
    const folder = join(work, "ops-config");
    const port = await freePort();
    const marker = join(work, "home");
    const child = spawn(bin, ["watch", "--listen", `127.0.0.1:${port}`], {
      cwd: folder,
      env: { ...env, BACKUPCTL_LOG_FORMAT: "text" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (chunk) => (output += chunk));
    child.stderr.on("data", (chunk) => (output += chunk));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.once("exit", (code, signal) => resolve({ code, signal }))
    );
    const deadline = Date.now() + 60_000;
    while (!(await portOpen(port))) {
      assert.ok(Date.now() < deadline, `watch never served on ${port}:\n${output}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    // The bin execs the runtime: the pid we started is Deno itself, not a shell or a Node wrapper.
    const exe = realpathSync(`/proc/${child.pid}/exe`);
    assert.match(exe, /\/deno$/, `pid ${child.pid} runs ${exe}`);
    assert.ok(processesMentioning(marker).some((entry) => entry.pid === child.pid));
    child.kill("SIGTERM");
    const outcome = await exited;
    assert.ok(outcome.code === 143 || outcome.code === 0 || outcome.signal === "SIGTERM", JSON.stringify(outcome));
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.deepEqual(processesMentioning(marker), [], "nothing started by watch is left running");
    assert.equal(await portOpen(port), false, "the port is closed");
  });

  it("BACKUPCTL_RUNTIME=bun runs the installed package with Bun (BACKUPCTL_BUN, else bun on PATH)", async () => {
    const bun = join(repoRoot, "node_modules", "bun", "bin", "bun.exe");
    const folder = join(work, "ops-config");
    const missing = await run(bin, ["--version"], { cwd: folder, env: { ...env, BACKUPCTL_RUNTIME: "bun" } });
    assert.equal(missing.code, 127);
    assert.match(missing.stderr, /Bun is not installed: install it \(npm i -g bun\) or set BACKUPCTL_BUN/);
    const version = await run(bin, ["--version"], {
      cwd: folder,
      env: { ...env, BACKUPCTL_RUNTIME: "bun", BACKUPCTL_BUN: bun },
    });
    assert.equal(version.code, 0, version.stderr);
    assert.match(
      version.stdout,
      new RegExp(`^backupctl ${pkg.version} \\(git ${packedRevision}, bun \\d+\\.\\d+\\.\\d+\\)\\n$`),
    );
    const validWithBun = await run(bin, ["validate"], {
      cwd: folder,
      env: { ...env, BACKUPCTL_RUNTIME: "bun", BACKUPCTL_BUN: bun },
    });
    assert.equal(validWithBun.code, 0, validWithBun.stdout + validWithBun.stderr);
  });
});
