/**
 * Makes sure the external programs a task needs are installed. On Debian/Ubuntu as root it installs missing ones
 * with apt-get; elsewhere it stops with one line naming the package. Usage: ensure-tools.ts restic sqlite3 …
 */
import { spawnSync } from "node:child_process";
import { existsSync, rmSync, writeFileSync } from "node:fs";

/** program → Debian package */
const packages: Record<string, string> = {
  restic: "restic",
  sqlite3: "sqlite3",
  gpg: "gnupg",
  age: "age",
  pg_dump: "postgresql",
  mariadbd: "mariadb-server",
  sshd: "openssh-server",
  rclone: "rclone",
  chromium: "chromium",
};

function installed(program: string): boolean {
  const found = spawnSync("sh", ["-c", `command -v ${program} || test -x /usr/sbin/${program}`], { stdio: "ignore" });
  return found.status === 0;
}

export function ensureTools(programs: string[]): void {
  const missing = programs.filter((program) => !installed(program));
  if (missing.length === 0) return;
  const names = [...new Set(missing.map((program) => packages[program] ?? program))];
  const canApt = process.getuid?.() === 0 && existsSync("/usr/bin/apt-get");
  if (!canApt) {
    console.error(
      `Missing: ${missing.join(", ")}. Install the package${names.length > 1 ? "s" : ""} ${
        names.join(" ")
      } (e.g. sudo apt-get install -y ${names.join(" ")}) and run the task again.`,
    );
    process.exit(1);
  }
  console.error(`Installing ${names.join(" ")} with apt-get…`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  // Services must not start at install time (tests start their own servers): policy-rc.d says so to invoke-rc.d.
  const policy = "/usr/sbin/policy-rc.d";
  const ownPolicy = !existsSync(policy);
  if (ownPolicy) writeFileSync(policy, "#!/bin/sh\nexit 101\n", { mode: 0o755 });
  const update = spawnSync("apt-get", ["update", "-qq"], { stdio: "inherit", env });
  const install = update.status === 0 &&
    spawnSync("apt-get", ["install", "-y", "-qq", "--no-install-recommends", ...names], { stdio: "inherit", env });
  if (ownPolicy) rmSync(policy, { force: true });
  if (!install || install.status !== 0 || programs.some((program) => !installed(program))) {
    console.error(`Could not install ${names.join(" ")} with apt-get; install them by hand and run the task again.`);
    process.exit(1);
  }
}

if (import.meta.main) ensureTools(process.argv.slice(2));
