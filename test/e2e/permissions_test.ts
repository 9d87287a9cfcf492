/**
 * File modes of everything backupctl writes, observed from inside a running backup: a stand-in `mongodump` on PATH
 * (MongoDB has no Debian package here) records the modes of its private config file and folder, of the state
 * folder's tmp and locks folders and of the project's lock file while the stage runs. Afterwards the state folder is
 * 0700 and every file in it 0600, and no private file is left.
 */
import assert from "node:assert/strict";
import { chmodSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { runCli } from "../support/cli.ts";
import { type DemoDir, makeDemo } from "../support/demo.ts";

function modesUnder(dir: string): { path: string; mode: string }[] {
  const out: { path: string; mode: string }[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const stat = statSync(path);
    out.push({ path, mode: (stat.mode & 0o777).toString(8) });
    if (stat.isDirectory()) out.push(...modesUnder(path));
  }
  return out;
}

describe("permissions of the state folder, locks and private files", () => {
  let demo: DemoDir;
  const state = () => join(demo.dir, ".backupctl");
  const log = () => join(demo.dir, "modes.log");

  before(() => {
    demo = makeDemo();
    const bin = join(demo.dir, "bin");
    mkdirSync(bin);
    writeFileSync(
      join(bin, "mongodump"),
      `#!/bin/sh
for arg in "$@"; do case "$arg" in --config=*) config="\${arg#--config=}";; esac; done
{
  echo "config $(stat -c %a "$config")"
  echo "config-folder $(stat -c %a "$(dirname "$config")")"
  echo "tmp $(stat -c %a "${demo.dir}/.backupctl/tmp")"
  echo "locks $(stat -c %a "${demo.dir}/.backupctl/locks")"
  echo "lock $(stat -c %a "${demo.dir}/.backupctl/locks/shop.lock")"
  echo "state $(stat -c %a "${demo.dir}/.backupctl")"
} > "${log()}"
printf '\\155\\342\\231\\201'
head -c 5000 /dev/urandom | base64
`,
    );
    chmodSync(join(bin, "mongodump"), 0o755);
    writeFileSync(
      demo.config,
      `import { defineConfig, env, mongodb, restic } from "backupctl";
export default defineConfig({
  repositories: { local: restic({ url: ".backupctl/restic-demo", password: env("DEMO_RESTIC_PASSWORD") }) },
  projects: {
    shop: {
      schedule: "0 3 * * *", repositories: ["local"], retention: { last: 3 },
      sources: [mongodb({ host: "127.0.0.1", database: "shop", user: "backup", password: env("MONGO_PASSWORD") })],
    },
  },
});
`,
    );
  });
  after(() => demo.cleanup());

  it("while a stage runs: private file 0600 in a 0700 folder, tmp and locks 0700, the lock 0600", async () => {
    const result = await runCli(["--config", demo.config, "apply", "--now", "2026-11-21T10:00:00Z"], {
      env: { ...demo.env, MONGO_PASSWORD: "mongo-password-0600", PATH: `${join(demo.dir, "bin")}:${process.env.PATH}` },
    });
    assert.equal(result.code, 0, result.stdout + result.stderr);
    const modes = Object.fromEntries(
      readFileSync(log(), "utf8").trim().split("\n").map((line) => line.split(" ") as [string, string]),
    );
    assert.deepEqual(modes, {
      "config": "600",
      "config-folder": "700",
      "tmp": "700",
      "locks": "700",
      "lock": "600",
      "state": "700",
    });
  });

  it("afterwards: the state folder 0700, its files 0600, no private file or lock left", () => {
    assert.equal((statSync(state()).mode & 0o777).toString(8), "700");
    const entries = modesUnder(state()).filter((entry) => !entry.path.includes("restic-demo"));
    const files = entries.filter((entry) => statSync(entry.path).isFile());
    assert.ok(files.some((file) => file.path.endsWith("state.db")), JSON.stringify(entries));
    for (const file of files) assert.equal(file.mode, "600", `${file.path} is ${file.mode}`);
    for (const folder of entries.filter((entry) => statSync(entry.path).isDirectory())) {
      assert.equal(folder.mode, "700", `${folder.path} is ${folder.mode}`);
    }
    assert.deepEqual(readdirSync(join(state(), "tmp")), []);
    assert.deepEqual(readdirSync(join(state(), "locks")), []);
  });
});
