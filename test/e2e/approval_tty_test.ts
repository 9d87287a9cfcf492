/**
 * The destroy guard's prompt on a real terminal: `apply` runs inside a pseudo-terminal (util-linux `script`), so
 * stdin and stdout are TTYs. Only "yes" accepts; anything else holds the deletions, exactly as off a terminal.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { cliArgv, runCli, runTool, waitFor } from "../support/cli.ts";
import { type DemoDir, makeDemo } from "../support/demo.ts";

const dayAt = (n: number) => new Date(Date.UTC(2026, 10, 1 + n, 10)).toISOString().replace(".000Z", "Z");
const quote = (arg: string) => `'${arg.replaceAll("'", `'\\''`)}'`;

function writeConfig(demo: DemoDir, daily: number): void {
  writeFileSync(
    demo.config,
    `import { defineConfig, env, restic, sqlite } from "backupctl";
export default defineConfig({
  repositories: { local: restic({ url: ".backupctl/restic-demo", password: env("DEMO_RESTIC_PASSWORD") }) },
  projects: { demo: { schedule: "0 3 * * *", sources: [sqlite({ path: "demo/app.db" })], repositories: ["local"], retention: { daily: ${daily} } } },
});
`,
  );
}

/** Runs `backupctl apply` in a pseudo-terminal, typing `answer` at the prompt. */
function applyOnTerminal(demo: DemoDir, now: string, answer: string) {
  const command = [...cliArgv(), "--config", demo.config, "apply", "--now", now].map(quote).join(" ");
  return spawnSync("script", ["-qec", command, "/dev/null"], {
    input: `${answer}\n`,
    env: { ...process.env, ...demo.env, NO_COLOR: "1" },
    encoding: "utf8",
    timeout: 120_000,
  });
}

describe("apply asks on a terminal before deletions that need approval", () => {
  let demo: DemoDir;
  const count = async () => {
    const listed = await runTool("restic", ["--no-cache", "snapshots", "--json"], {
      env: { RESTIC_REPOSITORY: demo.repository, RESTIC_PASSWORD: demo.env.DEMO_RESTIC_PASSWORD },
    });
    return (JSON.parse(listed.stdout) as unknown[]).length;
  };

  before(async () => {
    demo = makeDemo();
    writeConfig(demo, 5);
    for (let day = 1; day <= 3; day++) {
      const result = await runCli(["--config", demo.config, "apply", "--now", dayAt(day)], { env: demo.env });
      assert.equal(result.code, 0, result.stdout + result.stderr);
    }
    writeConfig(demo, 1);
  });
  after(() => demo.cleanup());

  it("holds the deletions when the answer is not exactly yes", async () => {
    const result = applyOnTerminal(demo, dayAt(3), "y");
    assert.equal(result.status, 0, result.stdout);
    assert.match(result.stdout, /Forget these snapshots\? Only 'yes' will be accepted:/);
    assert.match(result.stdout, /! HELD: forget 2 snapshots of demo\/app in local needs approval/);
    assert.equal(await count(), 3);
  });

  it("stops at Ctrl-C on the prompt: exit 130, nothing applied", async () => {
    const command = [...cliArgv(), "--config", demo.config, "apply", "--now", dayAt(3)].map(quote).join(" ");
    const child = spawn("script", ["-qec", command, "/dev/null"], {
      env: { ...process.env, ...demo.env, NO_COLOR: "1" },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let output = "";
    child.stdout!.on("data", (chunk) => (output += chunk));
    const code = new Promise<number | null>((resolve) => child.once("close", (exit) => resolve(exit)));
    await waitFor("the prompt", () => output.includes("Only 'yes' will be accepted: "), 60_000);
    child.stdin!.write("\x03");
    // A prompt that ignored Ctrl-C would wait forever (Deno's readline did): killed, it fails the test instead.
    const hung = setTimeout(() => child.kill("SIGKILL"), 30_000);
    const exit = await code;
    clearTimeout(hung);
    child.stdin!.destroy();
    assert.equal(exit, 130, output);
    assert.match(output, /nothing applied: stopped at the prompt \(Ctrl-C\)/);
    assert.equal(await count(), 3, "nothing forgotten");
  });

  it("forgets them when the answer is yes", async () => {
    const result = applyOnTerminal(demo, dayAt(3), "yes");
    assert.equal(result.status, 0, result.stdout);
    assert.match(result.stdout, /- forget 2 snapshots of demo\/app in local: done/);
    assert.equal(await count(), 1);
  });
});
