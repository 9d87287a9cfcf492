/**
 * `backupctl completion bash|zsh|fish` in the real shells, with the real backupctl answering `__complete` (the
 * runtime running the tests, through a `backupctl` on PATH):
 * - bash: the script is sourced, `complete -p` names its function, which is driven with COMP_WORDS/COMP_CWORD;
 * - zsh: an interactive zsh under zsh/zpty runs compinit, sources the script, and Tab is typed; compadd is wrapped to
 *   record what the completion system offered;
 * - fish: `complete -C "backupctl …"`.
 * Every command and every option of the program, read from commander here (not from the generator), must complete in
 * each shell; project, source, repository and channel names come from a test config whose secrets are not set, also
 * through `--config` on the line and BACKUPCTL_CONFIG; a broken, invalid, noisy or hanging config offers nothing and
 * prints nothing. `__complete` itself writes nothing and exits 0 whatever happens.
 * Runs under `deno test -A test/cli/completion_test.ts` and `bun --no-install test ./test/cli/completion_test.ts`.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Command } from "commander";
import { buildProgram } from "../../src/cli/program.ts";
import { cliArgv, runCli } from "../support/cli.ts";

const dir = mkdtempSync(join(tmpdir(), "backupctl-completion-"));
const binDir = join(dir, "bin");
const home = join(dir, "home");
const scripts: Record<string, string> = {};

const mainConfig = `import { defineConfig, env, file, files, postgres, restic, sqlite, webhook } from "backupctl";
export default defineConfig({
  repositories: {
    local: restic({ url: "./repo-local", password: env("COMPLETION_TEST_UNSET_PASSWORD") }),
    offsite: restic({ url: "./repo-offsite", password: file("./no-such-password-file") }),
    archive: restic({ url: "./repo-archive", password: env("COMPLETION_TEST_UNSET_PASSWORD") }),
  },
  notifiers: { ops: webhook({ url: env("COMPLETION_TEST_UNSET_WEBHOOK") }) },
  projects: {
    shop: {
      schedule: "0 3 * * *",
      sources: [
        postgres({ database: "shopdb", password: env("COMPLETION_TEST_UNSET_DB_PASSWORD"), globals: true }),
        files({ name: "uploads", paths: ["./uploads"] }),
      ],
      repositories: ["local", "offsite"],
      retention: { last: 3 },
    },
    blog: {
      schedule: "0 4 * * *",
      sources: [sqlite({ path: "./blog.db" })],
      repositories: ["archive"],
      retention: { last: 3 },
    },
  },
});
`;

const otherConfig = `import { defineConfig, env, files, restic } from "backupctl";
export default defineConfig({
  repositories: { nas: restic({ url: "./repo-nas", password: env("COMPLETION_TEST_UNSET_PASSWORD") }) },
  projects: {
    wiki: { schedule: "0 3 * * *", sources: [files({ paths: ["./wiki"] })], repositories: ["nas"], retention: { last: 1 } },
  },
});
`;

/** Configs that must offer no names and print nothing. */
const badConfigs: Record<string, string> = {
  "broken.config.ts": "export default defineConfig({ projects: \n",
  "invalid.config.ts": "export default { projects: 5 };\n",
  "noisy.config.ts": 'console.log("noise on stdout"); console.error("noise on stderr"); throw new Error("boom");\n',
  "hanging.config.ts": "await new Promise(() => {});\nexport default {};\n",
};

/** The environment of the shells: the test's `backupctl` first on PATH, a private HOME, no BACKUPCTL_CONFIG. */
function shellEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && key !== "BACKUPCTL_CONFIG" && !key.startsWith("XDG_")) env[key] = value;
  }
  return {
    ...env,
    PATH: `${binDir}:${process.env.PATH}`,
    HOME: home,
    XDG_CONFIG_HOME: join(home, ".config"),
    XDG_DATA_HOME: join(home, ".local/share"),
    XDG_CACHE_HOME: join(home, ".cache"),
    NO_COLOR: "1",
    ...extra,
  };
}

function run(
  program: string,
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      program,
      args,
      { cwd: dir, env, timeout: 240_000, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr });
      },
    );
  });
}

/** `### LINE` headers, each followed by the candidates offered for it: line → the set of candidates, sorted. */
function blocks(text: string, candidate: (line: string) => string = (line) => line): Map<string, string[]> {
  const result = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const line of text.split("\n")) {
    if (line.startsWith("### ")) result.set(line.slice(4), current = []);
    else if (current && line !== "") current.push(candidate(line).replace(/\/$/, ""));
  }
  for (const [line, found] of result) result.set(line, [...new Set(found)].sort());
  return result;
}

const quote = (text: string) => `'${text.replaceAll("'", `'\\''`)}'`;

/** The words bash hands a completion function for a line (it splits `--source=x` at "=", COMP_WORDBREAKS). */
function bashWords(line: string): string[] {
  return line.split(" ").flatMap((word) => {
    const option = /^(--[^=]+)=(.*)$/.exec(word);
    if (!option) return [word];
    return option[2] === "" ? [option[1], "="] : [option[1], "=", option[2]];
  });
}

async function completeInBash(lines: string[], extraEnv: Record<string, string> = {}) {
  const driver = [
    `source ${quote(scripts.bash)}`,
    // compopt only works while readline completes; here the function is called directly.
    "compopt() { :; }",
    'drive() { printf "### %s\\n" "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMPREPLY=(); ' +
    '_backupctl; printf "%s\\n" "${COMPREPLY[@]}"; }',
    ...lines.map((line) => `drive ${quote(line)} ${bashWords(line).map(quote).join(" ")}`),
  ].join("\n");
  const result = await run("bash", ["--norc", "--noprofile", "-c", driver], shellEnv(extraEnv));
  assert.equal(result.stderr, "", "bash printed errors while completing");
  assert.equal(result.code, 0);
  return blocks(result.stdout);
}

async function completeInFish(lines: string[], extraEnv: Record<string, string> = {}) {
  const driver = [
    `source ${fishQuote(scripts.fish)}`,
    ...lines.map((line) => `echo ${fishQuote(`### ${line}`)}; complete -C ${fishQuote(line)}`),
  ].join("\n");
  const result = await run("fish", ["--no-config", "-c", driver], shellEnv(extraEnv));
  assert.equal(result.stderr, "", "fish printed errors while completing");
  assert.equal(result.code, 0);
  // fish offers a value after `--source=` as the whole token, `--source=blog`: compared as the value alone.
  return blocks(result.stdout, (line) => line.split("\t")[0].replace(/^--[\w-]+=/, ""));
}

function fishQuote(text: string): string {
  return `'${text.replace(/[\\']/g, (c) => `\\${c}`)}'`;
}

/**
 * zsh completes only inside its line editor: an interactive `zsh -f` under zsh/zpty loads compinit and the script,
 * Tab is bound to a widget that completes the word and then prints a marker (so each line waits for its completion),
 * and compadd is wrapped to append what it offers to a capture file. A script named `_backupctl` is installed the
 * other way: its folder goes first in $fpath before compinit, which loads it at the first Tab.
 */
const zshHarness = `zmodload zsh/zpty
script=$1 capture=$2
shift 2
zpty z zsh -f -i
if [[ \${script:t} == _backupctl ]]; then
  zpty -w z "fpath=(\${(q)script:h} \$fpath); autoload -Uz compinit; compinit -u -D"
else
  zpty -w z "autoload -Uz compinit; compinit -u -D; source \${(q)script}"
fi
zpty -w z "PS1='' RPS1='' LISTMAX=100000 PROMPT_EOL_MARK=''"
zpty -w z "capture=\${(q)capture}"
zpty -w z 'compadd() { local -a found; if [[ \${@[1,(i)(-|--)]} == *-[OAD]\\ * ]]; then builtin compadd "$@"; return; fi; builtin compadd -O found "$@"; print -rl -- $found >> $capture; builtin compadd "$@"; }'
zpty -w z "tab-and-mark() { zle complete-word; print -n COMPLETION-''END; }; zle -N tab-and-mark; bindkey '^I' tab-and-mark; print SETUP-''DONE"
zpty -r z out '*SETUP-DONE*' || exit 1
for line in "$@"; do
  print -r -- "### $line" >> $capture
  zpty -w -n z "$line"$'\\t'
  zpty -r z out '*COMPLETION-END*' || { print "no completion for: $line" >&2; exit 1 }
  zpty -w z $'\\C-e\\C-u'"print LINE-''DONE"
  zpty -r z out '*LINE-DONE*' || { print "no prompt after: $line" >&2; exit 1 }
done
zpty -d z
`;

let zshRuns = 0;
async function completeInZsh(lines: string[], extraEnv: Record<string, string> = {}, script = scripts.zsh) {
  const harness = join(dir, "harness.zsh");
  writeFileSync(harness, zshHarness);
  const capture = join(dir, `zsh-capture-${zshRuns++}.txt`);
  writeFileSync(capture, "");
  const result = await run("zsh", ["-f", harness, script, capture, ...lines], shellEnv(extraEnv));
  assert.equal(result.stderr, "", "the zsh harness failed");
  assert.equal(result.code, 0);
  return blocks(readFileSync(capture, "utf8"));
}

const shells = {
  bash: completeInBash,
  zsh: completeInZsh,
  fish: completeInFish,
};

/** Every command of the program (commander's own view, as in --help) with the options offered after it. */
function programTree(program: Command) {
  const tree: { path: string[]; options: string[]; commands: string[] }[] = [];
  const globals = program.createHelp().visibleOptions(program).flatMap((option) => [option.short, option.long]);
  const walk = (command: Command, path: string[]) => {
    const help = command.createHelp();
    const own = help.visibleOptions(command).flatMap((option) => [option.short, option.long]);
    const inherited = path.length === 0 ? [] : globals.filter((name) => name !== "-V" && name !== "--version");
    tree.push({
      path,
      options: [...new Set([...own, ...inherited].filter((name): name is string => name !== undefined))].sort(),
      commands: help.visibleCommands(command).map((sub) => sub.name()).sort(),
    });
    for (const sub of help.visibleCommands(command)) walk(sub, [...path, sub.name()]);
  };
  walk(program, []);
  return tree;
}

/** Lines and what each must offer, exactly, from the configs of this folder. */
const nameCases: [string, string[]][] = [
  ["backupctl plan -p ", ["blog", "shop"]],
  ["backupctl plan --project s", ["shop"]],
  ["backupctl restore ", ["blog", "shop"]],
  ["backupctl restore shop --source ", ["shopdb", "shopdb-globals", "uploads"]],
  ["backupctl restore blog --source=", ["blog"]],
  ["backupctl backup shop blog -s ", ["blog", "shopdb", "shopdb-globals", "uploads"]],
  ["backupctl backup shop -r ", ["local", "offsite"]],
  ["backupctl snapshots ls shop --source u", ["uploads"]],
  ["backupctl snapshots -r ", ["archive", "local", "offsite"]],
  ["backupctl restic ", ["archive", "local", "offsite"]],
  ["backupctl restic local -- ", []],
  ["backupctl verify shop ", ["blog", "shop"]],
  ["backupctl notify test ", ["ops"]],
  ["backupctl --config other.config.ts plan -p ", ["wiki"]],
  ["backupctl plan -c other.config.ts --project ", ["wiki"]],
  ["backupctl restic --config=other.config.ts ", ["nas"]],
  ["backupctl --log-format ", ["json", "text"]],
  ["backupctl completion ", ["bash", "fish", "zsh"]],
  ["backupctl help sn", ["snapshots"]],
  ["backupctl state help ", ["pull", "push"]],
  ["backupctl restore shop --to restore-t", ["restore-target"]],
  ["backupctl -c oth", ["other.config.ts"]],
  ["backupctl init --project ", []],
  ...Object.keys(badConfigs).map((name): [string, string[]] => [`backupctl -c ${name} plan -p `, []]),
  ["backupctl -c missing.config.ts restore ", []],
];

before(async () => {
  mkdirSync(binDir);
  mkdirSync(home);
  mkdirSync(join(dir, "restore-target"));
  writeFileSync(join(dir, "backup.config.ts"), mainConfig);
  writeFileSync(join(dir, "other.config.ts"), otherConfig);
  for (const [name, text] of Object.entries(badConfigs)) writeFileSync(join(dir, name), text);
  // The backupctl a user has on PATH, running under the runtime of this test run.
  writeFileSync(join(binDir, "backupctl"), `#!/bin/sh\nexec ${cliArgv().map(quote).join(" ")} "$@"\n`);
  chmodSync(join(binDir, "backupctl"), 0o755);
  for (const shell of Object.keys(shells)) {
    const result = await runCli(["completion", shell]);
    assert.equal(result.code, 0, result.stderr);
    scripts[shell] = join(dir, `completion.${shell}`);
    writeFileSync(scripts[shell], result.stdout);
  }
});

after(() => rmSync(dir, { recursive: true, force: true }));

describe("backupctl completion", () => {
  it("refuses a shell it has no script for (exit 64)", async () => {
    const result = await runCli(["completion", "tcsh"]);
    assert.equal(result.code, 64);
    assert.match(result.stderr, /bash, zsh, fish/);
  });

  it("zsh: installed as _backupctl in a folder of $fpath, it completes from the first Tab", async () => {
    const folder = join(dir, "zsh-functions");
    mkdirSync(folder, { recursive: true });
    writeFileSync(join(folder, "_backupctl"), readFileSync(scripts.zsh, "utf8"));
    const offered = await completeInZsh(["backupctl resti", "backupctl plan -p "], {}, join(folder, "_backupctl"));
    assert.deepEqual(offered.get("backupctl resti"), ["restic"]);
    assert.deepEqual(offered.get("backupctl plan -p "), ["blog", "shop"]);
  });

  it("bash: sourcing the script registers its function for backupctl", async () => {
    const result = await run(
      "bash",
      ["--norc", "-c", `source ${quote(scripts.bash)}; complete -p backupctl`],
      shellEnv(),
    );
    assert.equal(result.stdout.trim(), "complete -F _backupctl backupctl");
  });
});

for (const [shell, complete] of Object.entries(shells)) {
  describe(`completion in ${shell}`, () => {
    it("offers every command, subcommand and option of the program", async () => {
      const program = await buildProgram({ stdout: () => {}, stderr: () => {} }, () => {});
      const tree = programTree(program);
      assert.ok(tree.length > 25, `only ${tree.length} commands`);
      const optionLines = tree.map(({ path }) => ["backupctl", ...path, "-"].join(" "));
      const commandLines = tree.filter(({ commands }) => commands.length > 0).map(({ path }) =>
        ["backupctl", ...path, ""].join(" ")
      );
      const offered = await complete([...optionLines, ...commandLines]);
      for (const { path, options, commands } of tree) {
        const optionLine = ["backupctl", ...path, "-"].join(" ");
        assert.deepEqual(offered.get(optionLine), options, `options after \`${optionLine}\``);
        if (commands.length > 0) {
          const commandLine = ["backupctl", ...path, ""].join(" ");
          assert.deepEqual(offered.get(commandLine), commands, `commands after \`${commandLine}\``);
        }
      }
    });

    it("offers project, source, repository and channel names from the config, files and choices", async () => {
      const offered = await complete(nameCases.map(([line]) => line));
      for (const [line, expected] of nameCases) assert.deepEqual(offered.get(line), expected, `after \`${line}\``);
    });

    it("reads the config named by BACKUPCTL_CONFIG when the line names none", async () => {
      const offered = await complete(["backupctl restic "], { BACKUPCTL_CONFIG: join(dir, "other.config.ts") });
      assert.deepEqual(offered.get("backupctl restic "), ["nas"]);
    });
  });
}

describe("backupctl __complete", () => {
  const complete = (args: string[], env: Record<string, string> = {}) =>
    run(join(binDir, "backupctl"), args, shellEnv(env));

  it("prints one name a line, resolving no secret and writing nothing", async () => {
    const before = readdirSync(dir).sort();
    const projects = await complete(["__complete", "projects"]);
    assert.deepEqual(projects, { code: 0, stdout: "shop\nblog\n", stderr: "" });
    const sources = await complete(["__complete", "sources", "shop"]);
    assert.deepEqual(sources, { code: 0, stdout: "shopdb\nshopdb-globals\nuploads\n", stderr: "" });
    const repositories = await complete(["__complete", "repositories", "blog", "nope"]);
    assert.deepEqual(repositories, { code: 0, stdout: "archive\n", stderr: "" });
    assert.deepEqual(readdirSync(dir).sort(), before, "__complete wrote into the config's folder");
  });

  it("prints nothing and exits 0 for a missing, broken, invalid or throwing config and an unknown kind", async () => {
    const cases = [
      ["--config", "missing.config.ts", "__complete", "projects"],
      ["--config", "broken.config.ts", "__complete", "projects"],
      ["--config", "invalid.config.ts", "__complete", "projects"],
      ["__complete", "snapshots"],
      ["__complete"],
    ];
    for (const args of cases) {
      assert.deepEqual(await complete(args), { code: 0, stdout: "", stderr: "" }, args.join(" "));
    }
    // What a config prints while it loads goes to stderr (never stdout, which the shell reads); the scripts drop it.
    const noisy = await complete(["--config", "noisy.config.ts", "__complete", "projects"]);
    assert.equal(noisy.code, 0);
    assert.equal(noisy.stdout, "");
  });

  it("gives up on a config that never finishes loading within seconds, not the load timeout of commands", async () => {
    const started = Date.now();
    const result = await complete(["--config", "hanging.config.ts", "__complete", "projects"], {
      BACKUPCTL_CONFIG_TIMEOUT: "10m",
    });
    assert.deepEqual(result, { code: 0, stdout: "", stderr: "" });
    assert.ok(Date.now() - started < 60_000, `took ${Date.now() - started} ms`);
  });
});
