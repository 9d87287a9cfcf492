/**
 * A fleet's config for tests and the fleet benchmark: projects of one `command()` source each, one local restic
 * repository (`restic-main` beside the config, its password in FLEET_RESTIC_PASSWORD), the state from the environment.
 */
import { writeFileSync } from "node:fs";

export interface FleetProject {
  /** The dump's shell command. */
  run: string;
  runsOn?: string[];
}

export function writeFleetConfig(
  path: string,
  projects: Record<string, FleetProject>,
  options: { keep?: number; schedule?: string } = {},
): void {
  const entries = Object.entries(projects).map(([name, p]) =>
    `    ${JSON.stringify(name)}: { schedule: ${JSON.stringify(options.schedule ?? "0 3 * * *")}, sources: [` +
    `command({ name: "dump", run: ${JSON.stringify(p.run)}, filename: "dump.txt" })], repositories: ["main"], ` +
    `retention: { last: ${options.keep ?? 20} }${p.runsOn ? `, runsOn: ${JSON.stringify(p.runsOn)}` : ""} },`
  );
  writeFileSync(
    path,
    `import { command, defineConfig, env, restic } from "backupctl";
export default defineConfig({
  timezone: "UTC",
  repositories: { main: restic({ url: "restic-main", password: env("FLEET_RESTIC_PASSWORD") }) },
  projects: {
${entries.join("\n")}
  },
});
`,
  );
}
