/**
 * A process that runs one PITR drill (src/pitr/drill.ts) and is stopped by the test that started it, as `backupctl
 * verify` is by an operator's Ctrl-C: stop signals handled as the CLI handles them. Argument: the JSON of
 * `{ source, configPath, runAs, dir }`; exit 130 when stopped.
 */
import { pitrDrill } from "../../src/pitr/drill.ts";
import { PgBackRest } from "../../src/pitr/pgbackrest.ts";
import type { PgBackRestSource } from "../../src/pitr/types.ts";
import type { OsUser } from "../../src/pitr/run-as.ts";
import { handleStopSignals, signalExitCode, stopRequested } from "../../src/runtime/shutdown.ts";

const { source, configPath, runAs, dir } = JSON.parse(process.argv[process.argv.length - 1]) as {
  source: PgBackRestSource;
  configPath: string;
  runAs?: OsUser;
  dir: string;
};
handleStopSignals();
try {
  const pgbackrest = new PgBackRest({ bin: source.bin, configPath, stanza: source.stanza, runAs });
  await pitrDrill(source, { pgbackrest, context: { configDir: dir, privateDir: `${dir}/private` } });
  process.exit(0);
} catch (error) {
  const signal = stopRequested();
  if (signal) process.exit(signalExitCode(signal));
  console.error(error);
  process.exit(1);
}
