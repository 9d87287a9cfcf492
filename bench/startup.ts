/**
 * Start-up: whole-process wall time of `backupctl --version`, `validate` and `plan` on a throwaway copy of the demo
 * (backed up once, so plan reads a real state database and repository), under Deno and Bun. Baseline, in the same
 * run: the runtime starting and evaluating `1` (`deno eval 1`, `bun -e 1`).
 */
import { join } from "node:path";
import { denoV8Flags, repoRoot } from "../test/support/cli.ts";
import { makeDemo } from "../test/support/demo.ts";
import { bunBinary, denoBinary } from "../scripts/runtimes.ts";
import { deferCleanup, measure, median, type Row, seconds } from "./measure.ts";

const main = join(repoRoot, "src", "main.ts");

function runtimes(): { name: string; cli: string[]; eval: string[] }[] {
  const deno = denoBinary();
  const found = [{
    name: "Deno",
    cli: [deno, "run", "--allow-all", "--quiet", denoV8Flags, "--config", join(repoRoot, "deno.json"), main],
    eval: [deno, "eval", "1"],
  }];
  try {
    const bun = bunBinary();
    found.push({ name: "Bun", cli: [bun, "--no-install", main], eval: [bun, "-e", "1"] });
  } catch {
    // no Bun: Deno only (the note says so)
  }
  return found;
}

export async function startupBench(options: { quick: boolean; log: (line: string) => void }): Promise<Row[]> {
  const runs = options.quick ? 3 : 5;
  const demo = makeDemo();
  const removeDemo = deferCleanup(() => demo.cleanup());
  try {
    const env = { ...demo.env, NO_COLOR: "1", BACKUPCTL_CONFIG: undefined, BACKUPCTL_STATE_DIR: undefined };
    const found = runtimes();
    // One apply first: the state database and the repository exist, as on any machine that has run backupctl.
    await measure([...found[0].cli, "--config", demo.config, "apply"], { env, cwd: demo.dir });
    const commands: { label: string; args: string[] }[] = [
      { label: "--version", args: ["--version"] },
      { label: "validate", args: ["--config", demo.config, "validate"] },
      { label: "plan", args: ["--config", demo.config, "plan"] },
    ];
    const rows: Row[] = [];
    for (const runtime of found) {
      options.log(`start-up: ${runtime.name}`);
      const times: Record<string, number[]> = { eval: [] };
      for (const command of commands) times[command.label] = [];
      // A warm-up of each (module and transpile caches), then `runs` rounds, each running all four once.
      for (let round = -1; round < runs; round++) {
        const base = await measure(runtime.eval, { cwd: demo.dir });
        if (round >= 0) times.eval.push(base.wallMs);
        for (const command of commands) {
          const result = await measure([...runtime.cli, ...command.args], { env, cwd: demo.dir });
          if (round >= 0) times[command.label].push(result.wallMs);
        }
      }
      const baseMs = median(times.eval);
      const versionMs = median(times["--version"]);
      const evalText = runtime.name === "Deno" ? "deno eval 1" : "bun -e 1";
      for (const command of commands) {
        const ms = median(times[command.label]);
        const isPlan = command.label === "plan";
        rows.push({
          benchmark: "start-up",
          case: `${runtime.name}: backupctl ${command.label}${command.label === "--version" ? "" : " (demo config)"}`,
          value: seconds(ms),
          baseline: `${evalText}: ${seconds(baseMs)}`,
          ratio: ms / baseMs,
          note: `whole process, median of ${runs} after a warm-up run${
            found.length === 1 && runtime.name === "Deno" ? "; Bun not installed" : ""
          }`,
          target: isPlan
            ? {
              goal: `plan under 0.5 s (${runtime.name})`,
              met: ms < 500,
              missed: `plan took ${seconds(ms)}: the bare runtime ${seconds(baseMs)}, \`--version\` (the command ` +
                `line parser only: src/cli/program.ts imports a command's module when it runs) ${
                  seconds(versionMs - baseMs)
                } more, plan's own modules and work (zod and the config schema, loading the TypeScript config, ` +
                `kysely and the state database, planning, rendering) the remaining ${seconds(ms - versionMs)}. ` +
                "What would lower it: fewer modules loaded per command (lazy imports of what a command does not use).",
            }
            : undefined,
        });
      }
    }
    // The floor under every command's start-up (bench/floor.ts), from the same demo: Deno only (the launcher's runtime).
    options.log("start-up: the floor of an apply");
    const deno = found[0];
    const floorArgv = [
      ...deno.cli.slice(0, -1),
      join(repoRoot, "bench", "floor.ts"),
      demo.config,
      join(demo.dir, ".backupctl", "state.db"),
    ];
    const floor: number[] = [];
    const floorBase: number[] = [];
    for (let round = -1; round < runs; round++) {
      const base = await measure(deno.eval, { cwd: demo.dir });
      const result = await measure(floorArgv, { env, cwd: demo.dir });
      if (round >= 0) {
        floor.push(result.wallMs);
        floorBase.push(base.wallMs);
      }
    }
    rows.push({
      benchmark: "start-up",
      case: "Deno: the floor of an apply (bench/floor.ts: the Node layer, the TypeScript config, zod, Kysely with " +
        "node:sqlite, cron-parser, one child process)",
      value: seconds(median(floor)),
      baseline: `deno eval 1: ${seconds(median(floorBase))}`,
      ratio: median(floor) / median(floorBase),
      note: `whole process, median of ${runs} after a warm-up run; the least any apply spends before restic starts ` +
        "(compare the fixed-cost rows)",
    });
    return rows;
  } finally {
    await removeDemo();
  }
}
