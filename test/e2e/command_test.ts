/**
 * command() and mongodb() sources end to end with real restic: a producer that succeeds, one that fails after
 * printing (the partial snapshot must not survive), pipefail, empty dumps, and a stand-in mongodump on PATH that
 * records its arguments and config file (MongoDB has no Debian package, so the real one cannot run here).
 */
import assert from "node:assert/strict";
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { runCli, runTool } from "../support/cli.ts";
import { type DemoDir, makeDemo } from "../support/demo.ts";

const dayAt = (n: number) => new Date(Date.UTC(2026, 10, 1 + n, 10)).toISOString().replace(".000Z", "Z");
const mongoPassword = "mongo-secret-Zq81x";

describe("command and mongodb sources", () => {
  let demo: DemoDir;
  let bin: string;
  const env = () => ({ ...demo.env, PATH: `${bin}:${process.env.PATH}`, MONGO_PASSWORD: mongoPassword });
  const cli = (args: string[]) => runCli(["--config", demo.config, ...args], { env: env() });
  const snapshots = async (source: string) => {
    const result = await runTool("restic", ["--no-cache", "snapshots", "--json", "--tag", `source=${source}`], {
      env: { RESTIC_REPOSITORY: demo.repository, RESTIC_PASSWORD: demo.env.DEMO_RESTIC_PASSWORD },
    });
    return JSON.parse(result.stdout) as { id: string; paths: string[] }[];
  };
  const dump = (source: string, file: string) =>
    runTool("restic", ["--no-cache", "dump", "latest", `/${file}`, "--tag", `source=${source}`], {
      env: { RESTIC_REPOSITORY: demo.repository, RESTIC_PASSWORD: demo.env.DEMO_RESTIC_PASSWORD },
    });
  function writeConfig(sources: string): void {
    writeFileSync(
      demo.config,
      `import { command, defineConfig, env, mongodb, restic } from "backupctl";
export default defineConfig({
  repositories: { local: restic({ url: ".backupctl/restic-demo", password: env("DEMO_RESTIC_PASSWORD") }) },
  projects: { app: { schedule: "0 3 * * *", sources: [${sources}], repositories: ["local"], retention: { daily: 7 } } },
});
`,
    );
  }

  before(() => {
    demo = makeDemo();
    bin = join(demo.dir, "bin");
    mkdirSync(bin);
    // The stand-in mongodump: records argv and its --config file, then writes an archive-looking stream.
    writeFileSync(
      join(bin, "mongodump"),
      `#!/bin/sh
log="${demo.dir}/mongodump.log"
printf '%s\\n' "$@" > "$log"
for arg in "$@"; do case "$arg" in --config=*) cat "\${arg#--config=}" > "$log.config"; stat -c %a "\${arg#--config=}" > "$log.mode";; esac; done
printf '\\155\\342\\231\\201'
head -c 20000 /dev/urandom | base64
`,
    );
    chmodSync(join(bin, "mongodump"), 0o755);
  });
  after(() => demo.cleanup());

  it("backs up a command's output and restores it byte for byte", async () => {
    writeConfig(`command({ name: "report", run: "seq 1 50000 | sed 's/^/line /'", filename: "report.txt" })`);
    const result = await cli(["apply", "--now", dayAt(1)]);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    const restored = await dump("report", "report.txt");
    const expected = Array.from({ length: 50000 }, (_, i) => `line ${i + 1}\n`).join("");
    assert.equal(restored.stdout, expected);
  });

  it("a command that prints and then fails leaves no snapshot and keeps the source due", async () => {
    writeConfig(
      `command({ name: "flaky", run: "seq 1 100000; echo 'lost the connection' >&2; exit 1", filename: "flaky.txt" })`,
    );
    const result = await cli(["apply", "--now", dayAt(1)]);
    assert.equal(result.code, 1);
    assert.match(
      result.stdout,
      /✗ backup app\/flaky → local failed: bash \(the dump\) failed \(exit 1\) after \d+ bytes:\n\s+lost the connection\n\s*restic was stopped before the end of the stream: no snapshot was stored/,
    );
    assert.deepEqual(await snapshots("flaky"), []);
    const plan = JSON.parse((await cli(["plan", "--now", dayAt(1), "--json"])).stdout) as {
      actions: { type: string; reason: string }[];
    };
    // restic, stopped as it was taking its lock, may leave that lock: the plan then also recovers it (a recover
    // action comes first), which is the planner's job; the backup is what this test is about.
    const backup = plan.actions.find((action) => action.type === "backup");
    assert.match(backup?.reason ?? "", /^never backed up; last attempt failed at /);
  });

  it("a failure inside a shell pipeline fails the source (pipefail)", async () => {
    writeConfig(`command({ name: "piped", run: "false | cat", filename: "piped.txt", allowEmpty: true })`);
    const result = await cli(["apply", "--now", dayAt(1)]);
    assert.equal(result.code, 1);
    assert.match(result.stdout, /backup app\/piped → local failed: bash \(the dump\) failed \(exit 1\)/);
    assert.deepEqual(await snapshots("piped"), []);
  });

  it("an empty dump is an error, unless the source allows it", async () => {
    writeConfig(`command({ name: "empty", run: ["true"], filename: "empty.txt" })`);
    const refused = await cli(["apply", "--now", dayAt(2)]);
    assert.equal(refused.code, 1);
    assert.match(refused.stdout, /true produced an empty dump; set allowEmpty: true on the source if that is expected/);
    assert.deepEqual(await snapshots("empty"), []);
    writeConfig(`command({ name: "empty", run: ["true"], filename: "empty.txt", allowEmpty: true })`);
    const allowed = await cli(["apply", "--now", dayAt(2)]);
    assert.equal(allowed.code, 0, allowed.stdout + allowed.stderr);
    assert.match(
      allowed.stdout,
      /\+ backup app\/empty → local: the dump was empty \(allowed by allowEmpty\), no snapshot stored/,
    );
    // restic 0.14 stores no empty snapshot; the backup still counts as done.
    assert.deepEqual(await snapshots("empty"), []);
    const plan = JSON.parse((await cli(["plan", "--now", dayAt(2), "--json"])).stdout) as { actions: unknown[] };
    assert.deepEqual(plan.actions, []);
  });

  it("mongodb: mongodump gets the password through a private config file, never argv", async () => {
    writeConfig(
      `mongodb({ host: "127.0.0.1", port: 27017, database: "events", user: "backup", password: env("MONGO_PASSWORD"), authenticationDatabase: "admin" })`,
    );
    const result = await cli(["apply", "--now", dayAt(3)]);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    const argv = readFileSync(join(demo.dir, "mongodump.log"), "utf8").trim().split("\n");
    assert.deepEqual(argv.filter((a) => !a.startsWith("--config=")), [
      "--archive",
      "--quiet",
      "--host=127.0.0.1",
      "--port=27017",
      "--username=backup",
      "--authenticationDatabase=admin",
      "--db=events",
    ]);
    assert.ok(!argv.join(" ").includes(mongoPassword), "no password in argv");
    assert.equal(readFileSync(join(demo.dir, "mongodump.log.config"), "utf8"), `password: "${mongoPassword}"\n`);
    assert.equal(readFileSync(join(demo.dir, "mongodump.log.mode"), "utf8").trim(), "600");
    const configPath = argv.find((a) => a.startsWith("--config="))!.slice("--config=".length);
    assert.throws(() => readFileSync(configPath), "the private config file is removed after the stage");
    const [snapshot] = await snapshots("events");
    assert.deepEqual(snapshot.paths, ["/events.archive"]);
  });
});
