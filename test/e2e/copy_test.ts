/**
 * Dump once, send to many: a project with two repositories gets its backups copied into the second (initialized
 * with the first one's chunker parameters), and its dumps encrypted with age in the stream.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { runCli, runTool } from "../support/cli.ts";
import { type DemoDir, makeDemo } from "../support/demo.ts";

const dayAt = (n: number) => new Date(Date.UTC(2026, 10, 1 + n, 10)).toISOString().replace(".000Z", "Z");

describe("copies to a second repository, with age encryption", () => {
  let demo: DemoDir;
  let identity: string;
  const second = () => join(demo.dir, "second-repo");
  const cli = (args: string[]) => runCli(["--config", demo.config, ...args], { env: demo.env });
  const restic = (repository: string, args: string[]) =>
    runTool("restic", ["--no-cache", ...args], {
      env: { RESTIC_REPOSITORY: repository, RESTIC_PASSWORD: demo.env.DEMO_RESTIC_PASSWORD },
    });
  const snapshots = async (repository: string) =>
    JSON.parse((await restic(repository, ["snapshots", "--json"])).stdout) as {
      id: string;
      original?: string;
      tags: string[];
      paths: string[];
    }[];

  before(() => {
    demo = makeDemo();
    const keyFile = join(demo.dir, "age.key");
    execFileSync("age-keygen", ["-o", keyFile], { stdio: "ignore" });
    identity = readFileSync(keyFile, "utf8");
    const recipient = /public key: (age1\w+)/.exec(identity)![1];
    writeFileSync(
      demo.config,
      `import { age, defineConfig, env, files, restic, sqlite } from "backupctl";
export default defineConfig({
  repositories: {
    local: restic({ url: ".backupctl/restic-demo", password: env("DEMO_RESTIC_PASSWORD") }),
    second: restic({ url: "second-repo", password: env("DEMO_RESTIC_PASSWORD") }),
  },
  projects: {
    demo: {
      schedule: "0 3 * * *",
      sources: [sqlite({ path: "demo/app.db" }), files({ name: "uploads", paths: ["demo/uploads"] })],
      repositories: ["local", "second"],
      retention: { daily: 7 },
      encrypt: age({ recipients: ["${recipient}"] }),
    },
  },
});
`,
    );
  });
  after(() => demo.cleanup());

  it("plans both inits (the second with the first's chunker parameters), the backups and their copies", async () => {
    const result = await cli(["plan", "--now", dayAt(1), "--json"]);
    assert.equal(result.code, 0, result.stderr);
    const plan = JSON.parse(result.stdout) as { actions: Record<string, unknown>[]; summary: Record<string, number> };
    assert.deepEqual(plan.actions.map((a) => [a.type, a.repository, a.source ?? a.chunker_from ?? null, a.reason]), [
      ["init", "local", null, "repository not initialized"],
      ["init", "second", "local", "repository not initialized (chunker parameters of local)"],
      ["backup", "local", "app", "never backed up"],
      ["backup", "local", "uploads", "never backed up"],
      ["copy", "second", "app", "copy the new backup from local"],
      ["copy", "second", "uploads", "copy the new backup from local"],
    ]);
    assert.equal(plan.summary.copy, 2);
  });

  it("applies: the second repository holds copies of exactly the new snapshots, with the same chunker", async () => {
    const result = await cli(["apply", "--now", dayAt(1)]);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.match(result.stdout, /\+ copy demo\/app local → second: 1 snapshot/);
    const primary = await snapshots(demo.repository);
    const copies = await snapshots(second());
    assert.equal(copies.length, 2);
    assert.deepEqual(copies.map((c) => c.original).sort(), primary.map((p) => p.id).sort());
    assert.ok(copies.every((c) => c.tags.includes("project=demo")), "tags travel with the copy");
    const config = async (repository: string) =>
      (JSON.parse((await restic(repository, ["cat", "config"])).stdout) as { chunker_polynomial: string })
        .chunker_polynomial;
    assert.equal(await config(second()), await config(demo.repository));
    const again = JSON.parse((await cli(["plan", "--now", dayAt(1), "--json"])).stdout) as { actions: unknown[] };
    assert.deepEqual(again.actions, [], "nothing left to copy");
  });

  it("encrypts the dump with age in the stream; the identity decrypts it to the database's dump", async () => {
    const [app] = (await snapshots(demo.repository)).filter((s) => s.tags.includes("source=app"));
    assert.deepEqual(app.paths, ["/app.sql.age"]);
    const stored = execFileSync("restic", ["--no-cache", "dump", app.id, "/app.sql.age"], {
      env: { ...process.env, RESTIC_REPOSITORY: demo.repository, RESTIC_PASSWORD: demo.env.DEMO_RESTIC_PASSWORD },
    });
    assert.ok(!stored.toString("latin1").includes("CREATE TABLE"), "no plaintext in the repository");
    const identityFile = join(demo.dir, "identity.txt");
    writeFileSync(identityFile, identity, { mode: 0o600 });
    const plain = execFileSync("age", ["--decrypt", "-i", identityFile], { input: stored }).toString();
    assert.equal(plain, execFileSync("sqlite3", [demo.database, ".dump"]).toString());
  });

  it("copies what the second repository lacks: apply first reloads the inventories from restic", async () => {
    const [copy] = (await snapshots(second())).filter((s) => s.tags.includes("source=uploads"));
    assert.equal((await restic(second(), ["forget", copy.id])).code, 0);
    const stale = JSON.parse((await cli(["plan", "--now", dayAt(1), "--json"])).stdout) as { actions: unknown[] };
    assert.deepEqual(stale.actions, [], "plan reads the state database: the removal is not seen yet");
    const refreshed = JSON.parse((await cli(["plan", "--now", dayAt(1), "--refresh", "--json"])).stdout) as {
      actions: { type: string; source?: string; snapshots?: string[]; reason: string }[];
    };
    assert.deepEqual(refreshed.actions.map((a) => [a.type, a.source, a.reason, a.snapshots?.length]), [
      ["copy", "uploads", "copy 1 snapshot it lacks from local", 1],
    ]);
    const applied = await cli(["apply", "--now", dayAt(1)]);
    assert.equal(applied.code, 0, applied.stdout + applied.stderr);
    assert.match(applied.stdout, /\+ copy demo\/uploads local → second: 1 snapshot/);
    assert.equal((await snapshots(second())).length, 2);
  });
});
