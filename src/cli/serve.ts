/**
 * `backupctl serve`: the dashboard (web/) from a state, running nothing — for a laptop looking at a shared PostgreSQL
 * state, or a host whose backups run from cron. Read-only like `status`. Listens on 127.0.0.1:9465 by default; an
 * address beyond loopback is refused unless a token is given (BACKUPCTL_DASHBOARD_TOKEN or --token-file). Stops on
 * SIGTERM or SIGINT, exit 0.
 */
import { createServer } from "node:http";
import type { Command } from "commander";
import { Option } from "commander";
import { ExitCode, UsageError } from "../errors.ts";
import { parseListen } from "../watch/http.ts";
import { handleDashboard } from "../web/server.ts";
import { listenProblem, readToken, tokenVariable } from "../web/security.ts";
import { fromInvocationDir, type GlobalOptions, hostFor, load, openStore, type Output, parseNow } from "./context.ts";

export const description = "Serve the read-only dashboard (projects, runs, snapshots, drills, the pending plan)";

export const defaultServeListen = "127.0.0.1:9465";

interface Options extends GlobalOptions {
  listen: string;
  tokenFile?: string;
  now?: string;
}

export function define(program: Command, output: Output, done: (code: number) => void): void {
  program.command("serve").description(description)
    .addOption(
      new Option("--listen <addr>", "HOST:PORT to serve on; beyond loopback a token is required")
        .default(defaultServeListen).env("BACKUPCTL_LISTEN"),
    )
    .option("--token-file <path>", `the token the dashboard asks for, from a file (default: ${tokenVariable})`)
    .option("--now <iso>", "show the state as if the clock read this time (it then runs at normal speed)")
    .action(async (_options, command: Command) => done(await run(command.optsWithGlobals<Options>(), output)));
}

export async function run(options: Options, output: Output): Promise<number> {
  let listen: { host: string; port: number };
  try {
    listen = parseListen(options.listen);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const token = readToken({ tokenFile: options.tokenFile ? fromInvocationDir(options.tokenFile) : undefined });
  const problem = listenProblem(listen.host, token);
  if (problem) throw new UsageError(`--listen ${options.listen}: ${problem}`);
  const start = parseNow(options.now);
  const offset = start ? start.getTime() - Date.now() : 0;
  const loaded = await load(options);
  const store = await openStore(options, loaded, "read");
  const source = { loaded: () => loaded, store, host: hostFor(loaded), now: () => new Date(Date.now() + offset) };
  const server = createServer((request, response) => void handleDashboard(source, token, request, response));
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(listen.port, listen.host, () => resolve());
    });
    const address = server.address();
    const port = typeof address === "object" && address ? address.port : listen.port;
    const host = listen.host.includes(":") ? `[${listen.host}]` : listen.host;
    output.stdout(`serve: the dashboard is on http://${host}:${port}/${token ? " (token required)" : ""}\n`);
    await new Promise<void>((resolve) => {
      process.once("SIGTERM", () => resolve());
      process.once("SIGINT", () => resolve());
    });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "EADDRINUSE" || code === "EACCES" || code === "EADDRNOTAVAIL") {
      throw new UsageError(`--listen ${options.listen}: cannot listen there (${code})`);
    }
    throw error;
  } finally {
    server.closeAllConnections?.();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await store.close();
  }
  return ExitCode.ok;
}
