/**
 * The environment a child program starts with, on least privilege: backupctl's own environment minus every variable
 * an `env()` reference of the config names, plus what this child is given explicitly. A secret held in the
 * environment thus reaches only the children the config hands it to: restic its repository's password (as
 * `RESTIC_PASSWORD`) and `env`, pg_dump its pgpass file, a hook or `command()` source the variables of its own `env`
 * (`env: { DBPW: env("DBPW") }`). Everything else (PATH, HOME, LANG, TMPDIR, proxies, …) is inherited as before.
 */
import { secretVariableNames } from "../config/secrets.ts";

/**
 * The environment for one child: `inherited` (backupctl's, by default) without the config's secret variables, then
 * `extra` on top (a value undefined removes the variable).
 */
export function childEnvironment(
  extra: Record<string, string | undefined> = {},
  inherited: Record<string, string | undefined> = process.env,
): Record<string, string> {
  const withheld = secretVariableNames();
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(inherited)) {
    if (value !== undefined && !withheld.has(key)) env[key] = value;
  }
  for (const [key, value] of Object.entries(extra)) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  return env;
}
