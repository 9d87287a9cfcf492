/**
 * The container path, without a Docker engine (none runs on the development machines or in CI):
 * (a) compose.yaml parsed and checked: services, secrets, volumes, mounted files, watch, health checks, stop grace;
 * (b) the Dockerfile parsed and checked: its apt packages (each one known to this machine's apt), ENV paths against
 *     compose's mounts, the entrypoint against bin/backupctl;
 * (c) the image's start steps run here: the demo config copied outside the checkout with the image's environment
 *     (validate, status, then watch probed with the image's HEALTHCHECK command and stopped by SIGTERM);
 * (d) docker/sftp/entrypoint.sh and docker/make-secrets.sh: syntax, the sshd config the entrypoint writes, and the
 *     secrets the script makes (files, modes, key pairs, known_hosts line, kept on a second run).
 * These run in both suites and on machines without podman; test/container/podman.ts builds the image and runs
 * compose.yaml for real (init.sql included).
 */
import assert from "node:assert/strict";
import { type ChildProcess, execFile, spawn, spawnSync } from "node:child_process";
import {
  accessSync,
  chmodSync,
  constants,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, posix, relative } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import { freePort } from "../support/postgres.ts";
import { denoV8Flags } from "../support/cli.ts";

const root = fileURLToPath(new URL("../..", import.meta.url)).replace(/\/$/, "");
const read = (path: string) => readFileSync(join(root, path), "utf8");

/** Long CLI and server steps: more than `bun test`'s 5 s default when the file is run on its own. */
const slow = { timeout: 180_000 };

// --- Reading compose.yaml ---------------------------------------------------------------------------------------

interface Mount {
  type: "bind" | "volume";
  source: string;
  target: string;
  readOnly: boolean;
}

type Service = Record<string, unknown> & {
  build?: string | { context: string };
  image?: string;
  command?: unknown;
  secrets?: (string | { source: string; target?: string })[];
  volumes?: (string | Record<string, unknown>)[];
  environment?: Record<string, string> | string[];
  healthcheck?: { test?: string | string[]; interval?: string; start_period?: string };
  depends_on?: Record<string, { condition?: string }> | string[];
  ports?: (string | Record<string, unknown>)[];
  stop_grace_period?: string;
  env_file?: string;
  read_only?: boolean;
};

interface Compose {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
  secrets?: Record<string, { file?: string }>;
}

const compose = parse(read("compose.yaml")) as Compose;
const services = compose.services ?? {};

function mounts(service: Service): Mount[] {
  return (service.volumes ?? []).map((entry) => {
    if (typeof entry === "string") {
      const [source, target, mode] = entry.split(":");
      const type = source.startsWith(".") || source.startsWith("/") ? "bind" : "volume";
      return { type, source, target, readOnly: mode === "ro" };
    }
    return {
      type: entry.type === "bind" ? "bind" : "volume",
      source: String(entry.source),
      target: String(entry.target),
      readOnly: entry.read_only === true,
    };
  });
}

function secretNames(service: Service): { source: string; path: string }[] {
  return (service.secrets ?? []).map((entry) => {
    const source = typeof entry === "string" ? entry : entry.source;
    const target = typeof entry === "string" ? undefined : entry.target;
    return { source, path: target?.startsWith("/") ? target : `/run/secrets/${target ?? source}` };
  });
}

function healthTest(service: Service): string {
  const test = service.healthcheck?.test;
  return Array.isArray(test) ? test.join(" ") : String(test ?? "");
}

/** Compose durations ("90s", "1m30s", "2m") in seconds; NaN when unreadable. */
function seconds(text: string | undefined): number {
  if (!text || !/^(\d+(h|m|s|ms|us))+$/.test(text)) return NaN;
  const unit: Record<string, number> = { h: 3600, m: 60, s: 1, ms: 0.001, us: 0.000001 };
  return [...text.matchAll(/(\d+)(h|ms|us|m|s)/g)].reduce((sum, [, n, u]) => sum + Number(n) * unit[u], 0);
}

// --- Reading the Dockerfile -------------------------------------------------------------------------------------

interface Instruction {
  keyword: string;
  args: string;
}

/** Instructions with continuation lines joined and comment lines dropped (as Docker does). */
function parseDockerfile(text: string): Instruction[] {
  const instructions: Instruction[] = [];
  let pending = "";
  for (const line of text.split("\n")) {
    if (/^\s*#/.test(line)) continue;
    if (pending === "" && line.trim() === "") continue;
    const continued = /\\\s*$/.test(line);
    pending += `${continued ? line.replace(/\\\s*$/, "") : line} `;
    if (continued) continue;
    const match = /^\s*(\w+)\s+([\s\S]*?)\s*$/.exec(pending);
    if (match) instructions.push({ keyword: match[1].toUpperCase(), args: match[2].replace(/\s+/g, " ") });
    pending = "";
  }
  return instructions;
}

const dockerfile = parseDockerfile(read("Dockerfile"));
const lastFrom = dockerfile.map((i) => i.keyword).lastIndexOf("FROM");
/** The runtime stage: everything after the last FROM. */
const image = dockerfile.slice(lastFrom + 1);
const one = (keyword: string) => {
  const found = image.filter((i) => i.keyword === keyword);
  assert.equal(found.length, 1, `expected one ${keyword} in the Dockerfile's last stage, found ${found.length}`);
  return found[0].args;
};

/** ENV of the last stage (KEY=VALUE pairs, unquoted). */
function imageEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const { args } of image.filter((i) => i.keyword === "ENV")) {
    for (const pair of args.split(" ")) {
      const at = pair.indexOf("=");
      assert.ok(at > 0, `ENV ${args}: expected KEY=VALUE pairs`);
      env[pair.slice(0, at)] = pair.slice(at + 1);
    }
  }
  return env;
}

/** The package names of the first `apt-get install` of the last stage (options dropped). */
function aptPackages(): string[] {
  const run = image.filter((i) => i.keyword === "RUN").map((i) => i.args).find((a) => a.includes("apt-get install"));
  assert.ok(run, "no RUN apt-get install in the Dockerfile's last stage");
  const words = /apt-get install((?:\s+[^\s&;|]+)+)/.exec(run)![1].trim().split(" ");
  return words.filter((w) => !w.startsWith("-"));
}

/** Where COPY puts the repository's files in the image: container path → repository path. */
function copiedPaths(): Map<string, string> {
  const map = new Map<string, string>();
  let workdir = "/";
  for (const { keyword, args } of image) {
    if (keyword === "WORKDIR") workdir = posix.resolve(workdir, args);
    if (keyword !== "COPY" || args.startsWith("--from")) continue;
    const words = args.split(" ").filter((w) => !w.startsWith("--"));
    const destination = posix.resolve(workdir, words.pop()!);
    for (const source of words) {
      const target = words.length > 1 || args.trim().endsWith("/") ? posix.join(destination, source) : destination;
      map.set(target, source);
    }
  }
  return map;
}

/** The repository file a container path comes from, through the COPY instructions. */
function repoPathFor(containerPath: string): string | undefined {
  for (const [target, source] of copiedPaths()) {
    if (containerPath === target) return source;
    if (containerPath.startsWith(`${target}/`)) return join(source, containerPath.slice(target.length + 1));
  }
  return undefined;
}

// --- Processes --------------------------------------------------------------------------------------------------

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function run(
  program: string,
  args: string[],
  options: { env?: Record<string, string>; cwd?: string; timeoutMs?: number } = {},
): Promise<Result> {
  return new Promise((resolve) => {
    execFile(
      program,
      args,
      {
        env: options.env ?? cleanEnv(),
        cwd: options.cwd,
        timeout: options.timeoutMs ?? 120_000,
        killSignal: "SIGKILL",
      },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : -1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
  });
}

/**
 * This process's environment without backupctl's own variables (BACKUPCTL_RUNTIME=bun would pick Bun, which the
 * image does not have). Under Deno, the running deno goes first on PATH, so bin/backupctl uses it.
 */
function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !key.startsWith("BACKUPCTL_")) env[key] = value;
  }
  if ("Deno" in globalThis) env.PATH = `${dirname(process.execPath)}:${env.PATH ?? ""}`;
  return { ...env, NO_COLOR: "1", ...extra };
}

// --- The secrets make-secrets.sh makes (used by (a), (c) and (d)) -----------------------------------------------

let scratchDir: string | undefined;
/** This file's temp folder, made on first use: a run that filters every test out leaves nothing behind. */
function scratch(): string {
  return (scratchDir ??= mkdtempSync(join(tmpdir(), "backupctl-container-")));
}
after(() => {
  if (scratchDir) rmSync(scratchDir, { recursive: true, force: true });
});

const expectedSecrets = [
  "backupctl.env",
  "postgres_password",
  "restic_password",
  "sftp_host_ed25519_key",
  "sftp_host_ed25519_key.pub",
  "sftp_known_hosts",
  "ssh_key",
  "ssh_key.pub",
];
let made: Result | undefined;
/** make-secrets.sh run once into a temp folder, on first use; the sections below read what it made. */
function madeSecrets(): Result {
  made ??= (() => {
    const result = spawnSync("sh", [join(root, "docker/make-secrets.sh"), secretsDir()], { encoding: "utf8" });
    return { code: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
  })();
  return made;
}
const secretsDir = () => join(scratch(), "secrets");
/** A file make-secrets.sh made (or its folder), making them first if needed. */
function secretFile(name = ""): string {
  madeSecrets();
  return join(secretsDir(), name);
}

/** A repository path compose mounts exists, or is one of the files make-secrets.sh writes into docker/secrets. */
function existsOrGenerated(source: string): boolean {
  const path = posix.normalize(source);
  if (path.startsWith("docker/secrets/")) return existsSync(secretFile(path.slice("docker/secrets/".length)));
  return existsSync(join(root, path));
}

// --- (a) compose.yaml -------------------------------------------------------------------------------------------

describe("compose.yaml", () => {
  it("declares the services backupctl, postgres and sftp", () => {
    assert.deepEqual(Object.keys(services).sort(), ["backupctl", "postgres", "sftp"]);
  });

  it("builds backupctl from this Dockerfile and runs watch, with the state in a named volume", () => {
    const backupctl = services.backupctl;
    const context = typeof backupctl.build === "string" ? backupctl.build : backupctl.build?.context;
    assert.equal(context, ".");
    assert.ok(existsSync(join(root, "Dockerfile")));
    assert.deepEqual(backupctl.command, ["watch"]);
    const state = mounts(backupctl).find((m) => m.target === "/var/lib/backupctl");
    assert.equal(state?.type, "volume", "the state folder must be a named volume");
  });

  it("mounts the container demo config read-only at /config/backup.config.ts", () => {
    const config = mounts(services.backupctl).find((m) => m.target === "/config/backup.config.ts");
    assert.ok(config, "no mount at /config/backup.config.ts");
    assert.equal(posix.normalize(config.source), "docker/backup.config.ts");
    assert.ok(config.readOnly, "the config mount must be read-only");
    assert.ok(existsSync(join(root, "docker/backup.config.ts")));
  });

  it("declares every secret a service uses, and uses every declared secret", () => {
    const declared = Object.keys(compose.secrets ?? {}).sort();
    const used = new Set<string>();
    for (const [name, service] of Object.entries(services)) {
      for (const { source } of secretNames(service)) {
        assert.ok(declared.includes(source), `service ${name} uses the undeclared secret ${source}`);
        used.add(source);
      }
    }
    assert.deepEqual([...used].sort(), declared, "a declared secret no service uses");
  });

  it("declares every named volume a service mounts, and mounts every declared volume", () => {
    const declared = Object.keys(compose.volumes ?? {}).sort();
    const used = new Set<string>();
    for (const [name, service] of Object.entries(services)) {
      for (const mount of mounts(service).filter((m) => m.type === "volume")) {
        assert.ok(declared.includes(mount.source), `service ${name} mounts the undeclared volume ${mount.source}`);
        used.add(mount.source);
      }
    }
    assert.deepEqual([...used].sort(), declared, "a declared volume no service mounts");
  });

  it("mounts only files that are in the repository or made by docker/make-secrets.sh", () => {
    assert.equal(madeSecrets().code, 0, `make-secrets.sh failed:\n${madeSecrets().stderr}`);
    for (const [name, service] of Object.entries(services)) {
      for (const mount of mounts(service).filter((m) => m.type === "bind")) {
        assert.ok(existsOrGenerated(mount.source), `service ${name} mounts ${mount.source}, which nothing provides`);
        assert.ok(mount.readOnly, `${mount.source} is mounted read-only`);
      }
    }
    for (const [name, secret] of Object.entries(compose.secrets ?? {})) {
      assert.ok(secret.file, `secret ${name} has no file`);
      assert.ok(existsOrGenerated(secret.file), `secret ${name}: ${secret.file} is neither in the repo nor generated`);
    }
  });

  it('gives backupctl the secrets its config reads with file("/run/secrets/…")', () => {
    const config = read("docker/backup.config.ts");
    const wanted = [...config.matchAll(/file\("(\/run\/secrets\/[^"]+)"\)/g)].map((m) => m[1]);
    assert.ok(wanted.length >= 3, "the config should read the restic password, the db password and the ssh key");
    const given = secretNames(services.backupctl).map((s) => s.path);
    for (const path of wanted) assert.ok(given.includes(path), `${path} is not a secret of the backupctl service`);
  });

  it("gives the sftp service the secrets its entrypoint reads", () => {
    const entrypoint = read("docker/sftp/entrypoint.sh");
    const wanted = [...entrypoint.matchAll(/(\/run\/secrets\/[\w.-]+)/g)].map((m) => m[1]);
    assert.equal(wanted.length, 2);
    const given = secretNames(services.sftp).map((s) => s.path);
    for (const path of wanted) assert.ok(given.includes(path), `${path} is not a secret of the sftp service`);
    const build = services.sftp.build;
    const context = typeof build === "string" ? build : build?.context;
    assert.equal(context, "./docker/sftp");
    assert.ok(existsSync(join(root, "docker/sftp/Dockerfile")));
  });

  it("points the config's sftp repository at the sftp service, pinned by make-secrets.sh's known_hosts line", () => {
    const config = read("docker/backup.config.ts");
    const url = /url: "sftp:(\w+)@([\w.-]+):(\/[^"]*)"/.exec(config);
    assert.ok(url, "no sftp: url in docker/backup.config.ts");
    assert.ok(url[2] in services, `the url's host ${url[2]} is not a compose service`);
    const home = url[3].split("/").slice(0, 3).join("/");
    assert.match(read("docker/sftp/Dockerfile"), new RegExp(`usermod --home ${home} .*\\b${url[1]}\\b`));
    assert.ok(mounts(services[url[2]]).some((m) => m.target === home && m.type === "volume"), `${home}: no volume`);
    const knownHosts = mounts(services.backupctl).find((m) => m.target === "/config/sftp_known_hosts");
    assert.equal(knownHosts?.source, "./docker/secrets/sftp_known_hosts");
    const line = readFileSync(secretFile("sftp_known_hosts"), "utf8");
    assert.equal(line.split(" ")[0], url[2], "the known_hosts line names another host than the url");
  });

  it("runs PostgreSQL 15 (the image's pg_dump) with the password from a secret, init.sql and pg_isready", () => {
    const postgres = services.postgres;
    assert.equal(postgres.image, "postgres:15-bookworm");
    const env = postgres.environment as Record<string, string>;
    assert.ok(secretNames(postgres).some((s) => s.path === env.POSTGRES_PASSWORD_FILE));
    const init = mounts(postgres).find((m) => m.target.startsWith("/docker-entrypoint-initdb.d/"));
    assert.equal(init?.source, "./docker/init.sql");
    assert.match(healthTest(postgres), /pg_isready/);
  });

  it("starts backupctl after a healthy postgres and a started sftp", () => {
    const dependsOn = services.backupctl.depends_on as Record<string, { condition?: string }>;
    assert.equal(dependsOn.postgres?.condition, "service_healthy");
    assert.equal(dependsOn.sftp?.condition, "service_started");
  });

  it("checks /healthz, publishes it on loopback and waits longer than watch's grace on stop", () => {
    const backupctl = services.backupctl;
    assert.match(healthTest(backupctl), /curl -f\S* .*http:\/\/127\.0\.0\.1:9464\/healthz/);
    assert.ok(
      backupctl.ports?.includes("127.0.0.1:${BACKUPCTL_PORT:-9464}:9464"),
      "port 9464 must be published on 127.0.0.1 only",
    );
    const command = backupctl.command as string[];
    const grace = command.includes("--grace") ? seconds(command[command.indexOf("--grace") + 1]) : 60;
    const stop = seconds(backupctl.stop_grace_period);
    assert.ok(stop > grace, `stop_grace_period ${backupctl.stop_grace_period} must exceed watch's --grace (${grace}s)`);
    // Short syntax (podman-compose 1.0.3 knows no other), a file make-secrets.sh creates.
    assert.equal(backupctl.env_file, "./docker/secrets/backupctl.env");
    assert.ok(expectedSecrets.includes("backupctl.env"));
    assert.equal(backupctl.read_only, true, "only the state volume is writable");
    const settings = read("compose.yaml").split("\n").filter((line) => !line.trim().startsWith("#")).join("\n");
    assert.doesNotMatch(settings, /create_host_path|required: false/, "podman-compose 1.0.3 rejects these");
  });
});

// --- (b) the Dockerfile -----------------------------------------------------------------------------------------

const expectedPackages = [
  "age",
  "ca-certificates",
  "curl",
  "gnupg",
  "mariadb-client",
  "openssh-client",
  "postgresql-client",
  "restic",
  "sqlite3",
];

const aptSkip = (() => {
  if (spawnSync("apt-cache", ["--version"], { stdio: "ignore" }).status !== 0) {
    return "apt-cache is not installed here (not a Debian/Ubuntu machine): the package names are not checked";
  }
  const lists = existsSync("/var/lib/apt/lists") ? readdirSync("/var/lib/apt/lists") : [];
  if (!lists.some((name) => name.includes("_Packages"))) {
    return "apt's package lists are empty (run apt-get update): the package names are not checked";
  }
  return false;
})();

describe("Dockerfile", () => {
  it("installs exactly the expected Debian packages", () => {
    assert.deepEqual(aptPackages().sort(), expectedPackages);
  });

  it("asks for packages this machine's apt knows", { skip: aptSkip }, () => {
    // One apt-cache call (each loads the whole cache); it exits 0 when any name is found, so each is looked for.
    const names = aptPackages();
    const result = spawnSync("apt-cache", ["show", "--no-all-versions", ...names], { encoding: "utf8" });
    const found = new Set([...result.stdout.matchAll(/^Package: (\S+)$/gm)].map((m) => m[1]));
    const unknown = names.filter((name) => !found.has(name));
    assert.deepEqual(unknown, [], `apt-cache show does not know ${unknown.join(", ")}: ${result.stderr}`);
  });

  it("adds MongoDB's tools only from a .deb URL given as a build argument (empty by default)", () => {
    assert.ok(image.some((i) => i.keyword === "ARG" && i.args === "MONGODB_TOOLS_DEB="));
    const install = image.find((i) => i.keyword === "RUN" && i.args.includes("MONGODB_TOOLS_DEB"));
    assert.match(install?.args ?? "", /if \[ -n "\$MONGODB_TOOLS_DEB" \]; then/);
  });

  it("installs the npm dependencies and caches the sources at build time", () => {
    const deps = dockerfile.slice(0, lastFrom);
    assert.ok(deps.some((i) => i.keyword === "RUN" && /npm ci --omit=dev\b/.test(i.args)));
    assert.ok(image.some((i) => i.keyword === "COPY" && i.args.startsWith("--from=deps /app/node_modules ")));
    assert.ok(image.some((i) => i.keyword === "RUN" && /deno cache --config deno.json src\/main.ts/.test(i.args)));
    assert.equal(dockerfile[lastFrom].args, "debian:bookworm-slim");
    assert.ok(dockerfile.some((i) => i.keyword === "FROM" && i.args === "denoland/deno:bin-${DENO_VERSION} AS deno"));
    assert.ok(image.some((i) => i.keyword === "COPY" && i.args === "--from=deno /deno /usr/local/bin/deno"));
    assert.ok(dockerfile.some((i) => i.keyword === "ARG" && /^DENO_VERSION=\d+\.\d+\.\d+$/.test(i.args)));
  });

  it("copies only files that exist in the repository", () => {
    const copied = copiedPaths();
    assert.ok(copied.size >= 5);
    for (const source of copied.values()) assert.ok(existsSync(join(root, source)), `COPY ${source}: missing`);
  });

  it("has ENV paths that match compose's mounts, EXPOSE and VOLUME", () => {
    const env = imageEnv();
    assert.equal(env.BACKUPCTL_CONFIG, "/config/backup.config.ts");
    assert.equal(env.BACKUPCTL_STATE_DIR, "/var/lib/backupctl");
    assert.equal(env.BACKUPCTL_LISTEN, "0.0.0.0:9464");
    const targets = mounts(services.backupctl);
    assert.ok(targets.some((m) => m.target === env.BACKUPCTL_CONFIG), "compose mounts no config at BACKUPCTL_CONFIG");
    assert.ok(
      targets.some((m) => m.target === env.BACKUPCTL_STATE_DIR && m.type === "volume"),
      "compose mounts no volume at BACKUPCTL_STATE_DIR",
    );
    assert.deepEqual(JSON.parse(one("VOLUME")), [env.BACKUPCTL_STATE_DIR]);
    const port = env.BACKUPCTL_LISTEN.split(":").pop()!;
    assert.equal(one("EXPOSE"), port);
    assert.ok(services.backupctl.ports?.some((p) => String(p).endsWith(`:${port}`)), "compose does not publish it");
    assert.ok(!services.backupctl.environment, "compose should not override the image's paths");
  });

  it("runs as uid 10001 with a HEALTHCHECK on /healthz and SIGTERM as the stop signal", () => {
    assert.equal(one("USER"), "10001:10001");
    assert.ok(image.some((i) => i.keyword === "RUN" && /useradd .*--uid 10001\b/.test(i.args)));
    const healthcheck = one("HEALTHCHECK");
    assert.match(healthcheck, /--interval=1m\b/);
    assert.match(healthcheck, /--start-period=2m\b/);
    assert.match(healthcheck, / CMD curl -f\S* .*\/healthz/);
    assert.equal(one("STOPSIGNAL"), "SIGTERM");
    assert.deepEqual(JSON.parse(one("CMD")), ["watch"]);
  });

  it("enters through bin/backupctl, which exists and is executable", () => {
    const entrypoint = JSON.parse(one("ENTRYPOINT")) as string[];
    assert.deepEqual(entrypoint, ["/app/bin/backupctl"]);
    const source = repoPathFor(entrypoint[0]);
    assert.equal(source, "bin/backupctl", `${entrypoint[0]} is not copied from bin/backupctl`);
    accessSync(join(root, source), constants.X_OK);
    // The wrapper runs <its folder>/../src/main.ts with <its folder>/../deno.json: both must be in the image.
    assert.equal(repoPathFor("/app/deno.json"), "deno.json");
    assert.equal(repoPathFor("/app/src/main.ts"), "src/main.ts");
    assert.match(read("bin/backupctl"), /--config "\$root\/deno\.json" "\$root\/src\/main\.ts"/);
    // The suite and the benchmarks launch Deno as the wrapper does, V8 flags included (test/support/cli.ts).
    assert.ok(read("bin/backupctl").includes(`run --allow-all --quiet --no-lock ${denoV8Flags} --config`));
  });
});

// --- (c) the image's start steps, here --------------------------------------------------------------------------

describe("the image's start steps, outside Docker", () => {
  let fakeRoot: string;
  let env: Record<string, string>;
  let watch: ChildProcess | undefined;

  before(() => {
    fakeRoot = join(scratch(), "image");
    // /config and /var/lib/backupctl of the image, under a temp folder outside the checkout.
    const imageEnvironment = imageEnv();
    const inside = (path: string) => join(fakeRoot, path);
    mkdirSync(dirname(inside(imageEnvironment.BACKUPCTL_CONFIG)), { recursive: true });
    copyFileSync(join(root, "docker/backup.config.ts"), inside(imageEnvironment.BACKUPCTL_CONFIG));
    // compose mounts the known_hosts line next to the config.
    if (existsSync(secretFile("sftp_known_hosts"))) {
      copyFileSync(secretFile("sftp_known_hosts"), inside("/config/sftp_known_hosts"));
    }
    const dummies: Record<string, string> = {};
    for (const [, name] of read("docker/backup.config.ts").matchAll(/env\("([A-Za-z_][A-Za-z0-9_]*)"\)/g)) {
      dummies[name] = `dummy-${name.toLowerCase()}`;
    }
    env = cleanEnv({
      ...dummies,
      DENO_NO_UPDATE_CHECK: "1",
      BACKUPCTL_CONFIG: inside(imageEnvironment.BACKUPCTL_CONFIG),
      BACKUPCTL_STATE_DIR: inside(imageEnvironment.BACKUPCTL_STATE_DIR),
    });
  });

  after(() => {
    if (watch && watch.exitCode === null && watch.signalCode === null) watch.kill("SIGKILL");
  });

  it('a config outside the checkout importing "backupctl" validates through bin/backupctl', slow, async () => {
    assert.ok(relative(root, env.BACKUPCTL_CONFIG).startsWith(".."), "the config must live outside the checkout");
    const result = await run(join(root, "bin/backupctl"), ["validate"], { env, cwd: fakeRoot });
    assert.equal(result.code, 0, `validate failed:\n${result.stdout}${result.stderr}`);
    assert.match(result.stdout, /^Configuration valid: 1 project, 1 source, 1 repository\.$/m);
  });

  it("validate --secrets names each Docker secret the config reads, missing here", slow, async () => {
    const wanted = [...read("docker/backup.config.ts").matchAll(/file\("([^"]+)"\)/g)].map((m) => m[1]);
    const missing = wanted.filter((path) => !existsSync(path));
    const result = await run(join(root, "bin/backupctl"), ["validate", "--secrets"], { env, cwd: fakeRoot });
    if (missing.length === 0) {
      assert.equal(result.code, 0, result.stderr);
      return;
    }
    assert.equal(result.code, 3, `expected exit 3 (invalid):\n${result.stdout}${result.stderr}`);
    for (const path of missing) assert.ok(result.stderr.includes(`file("${path}") is missing`), result.stderr);
  });

  it("status opens the state database in BACKUPCTL_STATE_DIR", slow, async () => {
    const result = await run(join(root, "bin/backupctl"), ["status", "--json"], { env, cwd: fakeRoot });
    assert.equal(result.code, 0, `status failed:\n${result.stdout}${result.stderr}`);
    const projects = (JSON.parse(result.stdout) as { projects: { project: string }[] }).projects;
    assert.deepEqual(projects.map((p) => p.project), ["shop"]);
    assert.ok(existsSync(join(env.BACKUPCTL_STATE_DIR, "state.db")), "no state.db in BACKUPCTL_STATE_DIR");
  });

  it("watch (the image's CMD) passes the image's HEALTHCHECK command and exits 0 on SIGTERM", slow, async () => {
    const port = await freePort();
    // The image listens on 0.0.0.0:9464; here loopback and a free port, which the HEALTHCHECK command follows.
    const watchEnv = { ...env, BACKUPCTL_LISTEN: `127.0.0.1:${port}` };
    const check = one("HEALTHCHECK").replace(/^.*? CMD /, "");
    let output = "";
    const started = spawn(join(root, "bin/backupctl"), JSON.parse(one("CMD")), { env: watchEnv, cwd: fakeRoot });
    watch = started;
    started.stdout!.on("data", (chunk) => (output += chunk));
    started.stderr!.on("data", (chunk) => (output += chunk));
    const exited = new Promise<string>((resolve) =>
      started.once("exit", (code, signal) => resolve(signal ? `signal ${signal}` : `exit ${code}`))
    );

    let healthy: Result | undefined;
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && started.exitCode === null) {
      const attempt = await run("sh", ["-c", check], { env: watchEnv, timeoutMs: 15_000 });
      if (attempt.code === 0) {
        healthy = attempt;
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    assert.ok(healthy, `the HEALTHCHECK command never passed; watch said:\n${output}`);
    const body = await run("curl", ["-sS", `http://127.0.0.1:${port}/healthz`], { env: watchEnv });
    assert.match(JSON.parse(body.stdout).status, /^(ok|degraded)$/);

    // process.kill, not started.kill: Deno's child_process then reports the signal instead of the real exit code.
    process.kill(started.pid!, "SIGTERM");
    const timeout = new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), 60_000));
    const code = await Promise.race([exited, timeout]);
    assert.equal(code, "exit 0", `watch did not exit 0 after SIGTERM:\n${output}`);
    assert.match(output, /watch: started \(config .*backup\.config\.ts/);
  });
});

// --- (d) the shell scripts --------------------------------------------------------------------------------------

describe("docker/sftp/entrypoint.sh and docker/make-secrets.sh", () => {
  it("are valid sh and executable", async () => {
    for (const script of ["docker/sftp/entrypoint.sh", "docker/make-secrets.sh"]) {
      const result = await run("sh", ["-n", join(root, script)]);
      assert.equal(result.code, 0, `sh -n ${script}: ${result.stderr}`);
      accessSync(join(root, script), constants.X_OK);
      assert.match(read(script), /^#!\/bin\/sh\n/);
    }
  });

  const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
  const noSshd = !existsSync("/usr/sbin/sshd")
    ? "sshd is not installed (apt-get install openssh-server): the sftp config is not checked"
    : !existsSync("/run/sshd") && !isRoot
    ? "sshd -t needs /run/sshd, which only root can create"
    : false;

  it("the entrypoint writes an sshd config that sshd accepts", { skip: noSshd }, async () => {
    const text = read("docker/sftp/entrypoint.sh");
    const config = /<<'CONFIG'\n([\s\S]*?)\nCONFIG\n/.exec(text)?.[1];
    assert.ok(config, "no <<'CONFIG' … CONFIG block in the entrypoint");
    for (const line of ["ForceCommand internal-sftp", "PasswordAuthentication no", "AllowUsers backup"]) {
      assert.ok(config.split("\n").includes(line), `the sshd config lacks "${line}"`);
    }
    const dir = join(scratch(), "sshd");
    mkdirSync(dir);
    const hostKey = join(dir, "host_key");
    assert.equal((await run("ssh-keygen", ["-q", "-N", "", "-t", "ed25519", "-f", hostKey])).code, 0);
    writeFileSync(join(dir, "sshd_config"), config.replace(/^HostKey .*$/m, `HostKey ${hostKey}`));
    mkdirSync("/run/sshd", { recursive: true }); // as test/support/sshd.ts: sshd's privilege separation folder
    const result = await run("/usr/sbin/sshd", ["-t", "-f", join(dir, "sshd_config")]);
    assert.equal(result.code, 0, `sshd -t: ${result.stderr}`);
  });

  it("make-secrets.sh writes the secrets: a 0700 folder of 0644 files (the env file, read by compose only, 0600)", () => {
    assert.equal(madeSecrets().code, 0, `make-secrets.sh failed:\n${madeSecrets().stderr}`);
    assert.equal(statSync(secretFile()).mode & 0o777, 0o700);
    assert.deepEqual(readdirSync(secretFile()).sort(), expectedSecrets);
    for (const name of expectedSecrets) {
      const mode = (statSync(secretFile(name)).mode & 0o777).toString(8);
      assert.equal(mode, name === "backupctl.env" ? "600" : "644", `${name} has mode ${mode}`);
    }
  });

  it("make-secrets.sh makes distinct random passwords and matching key pairs without passphrase", async () => {
    const restic = readFileSync(secretFile("restic_password"), "utf8");
    const postgres = readFileSync(secretFile("postgres_password"), "utf8");
    assert.match(restic, /^[0-9a-f]{64}$/);
    assert.match(postgres, /^[0-9a-f]{64}$/);
    assert.notEqual(restic, postgres);
    for (const key of ["ssh_key", "sftp_host_ed25519_key"]) {
      // ssh-keygen reads only a private key no one else can: a 0600 copy (backupctl and sshd make one too).
      const copy = join(scratch(), `${key}.0600`);
      copyFileSync(secretFile(key), copy);
      chmodSync(copy, 0o600);
      const derived = await run("ssh-keygen", ["-y", "-P", "", "-f", copy]);
      assert.equal(derived.code, 0, `${key}: ${derived.stderr}`);
      const pub = readFileSync(secretFile(`${key}.pub`), "utf8").split(" ").slice(0, 2).join(" ");
      assert.equal(derived.stdout.trim().split(" ").slice(0, 2).join(" "), pub);
      assert.match(pub, /^ssh-ed25519 /);
    }
    const hostKey = readFileSync(secretFile("sftp_host_ed25519_key.pub"), "utf8").split(" ").slice(0, 2);
    assert.equal(readFileSync(secretFile("sftp_known_hosts"), "utf8"), `sftp ${hostKey.join(" ")}\n`);
  });

  it("make-secrets.sh keeps existing secrets on a second run", async () => {
    const before = Object.fromEntries(expectedSecrets.map((n) => [n, readFileSync(secretFile(n), "utf8")]));
    const again = await run("sh", [join(root, "docker/make-secrets.sh"), secretFile()]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /kept\s+\S+restic_password/);
    for (const name of expectedSecrets) {
      assert.equal(readFileSync(secretFile(name), "utf8"), before[name], `${name} changed on the second run`);
    }
  });
});
