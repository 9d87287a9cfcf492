/**
 * Database client programs run inside a container (`container:` on postgres(), mysql(), mongodb()): the program's
 * argv is prefixed with `docker exec -i` or `podman exec -i` and the container's name, so its standard output (the
 * dump) and standard input (a restore) pass through the runtime unchanged.
 *
 * Files on this host do not exist inside the container, so the private pgpass or option files of the host path
 * cannot be used there: the secret goes into the runtime's own environment and is named, without its value, by
 * `-e NAME` (docker and podman copy the value from their environment into the program's), so it is in no argv and
 * not in the container's configuration (`inspect` shows the environment the container was created with, not an
 * exec's).
 */
import type { ContainerOptions } from "../config/types.ts";
import { which } from "../exec/which.ts";

/** The program running the source's container: the configured one, else docker when installed, else podman. */
export function containerRuntime(source: ContainerOptions): "docker" | "podman" {
  if (source.containerRuntime) return source.containerRuntime;
  return which("docker") !== undefined || which("podman") === undefined ? "docker" : "podman";
}

/**
 * `argv` as run for the source: unchanged without a container; else `RUNTIME exec -i -e NAME… CONTAINER argv…`,
 * each variable of `env` passed by name (its value stays in the runtime's environment).
 */
export function containerArgv(source: ContainerOptions, argv: string[], env: Record<string, string> = {}): string[] {
  if (source.container === undefined) return argv;
  const names = Object.keys(env).flatMap((name) => ["-e", name]);
  return [containerRuntime(source), "exec", "-i", ...names, source.container, ...argv];
}

/** The Debian package to name when the program of `argv[0]` is missing: the runtime's, inside a container. */
export function containerPackage(source: ContainerOptions, hostPackage: string): string {
  if (source.container === undefined) return hostPackage;
  return containerRuntime(source) === "podman" ? "podman" : "docker.io";
}

/**
 * A program run by its MariaDB name when the container has it, else by its MySQL name (MariaDB 11 images have only
 * the first, MySQL images only the second), decided inside the container by a POSIX shell; `args` follow as "$@".
 */
export function mariadbOrMysql(mariadb: string, mysql: string, args: string[]): string[] {
  const script = `if command -v ${mariadb} >/dev/null 2>&1; then exec ${mariadb} "$@"; else exec ${mysql} "$@"; fi`;
  return ["sh", "-c", script, mariadb, ...args];
}
