/**
 * The test suite's `restic init` (the restic wrapper that scripts/test.ts puts first on the suite's PATH runs it for
 * every `init`): restic's own init spends about a second of CPU calibrating scrypt and deriving the key (N=32768,
 * p=6 here), and every later command of the repository pays about half of that again to open it. The suite inits
 * a hundred repositories and runs restic thousands of times per runtime, on a 2-core machine.
 *
 * A plain init of a new repository in a folder of this machine (a local path; an SFTP path on the suite's loopback
 * sshd; a folder the suite's `rclone serve restic` serves, registered by port in BACKUPCTL_TEST_REST_FOLDERS, once
 * the server took the credentials) is therefore made here, in restic 0.14's format (its design document): a random
 * master key, the `config` (version 2, a random id, the chunker polynomial the suite's real `restic init` chose at
 * start, given in BACKUPCTL_TEST_CHUNKER_POLYNOMIAL, or with `--copy-chunker-params` the source repository's, read
 * through its cheap key) encrypted under it, and one key file holding the master key under scrypt N=1024, in the
 * folders and modes restic makes. The folder is built beside the target and renamed into place, so a repository is
 * either whole or absent. Any other init (an S3 bucket, an existing folder, a password only a command gives, a source
 * it cannot open…) runs the real restic; after a successful real init of a repository in a folder here, its key is
 * re-encrypted under the same cheap parameters, checked against the key's MAC first (anything unexpected leaves the
 * repository as restic made it).
 *
 * The repositories stay real restic repositories (restic reads, writes, checks and prunes them); only trying a
 * password is cheap, and repositories made here share one chunker polynomial. backupctl never does this, and the
 * benchmarks run the real restic with its own parameters.
 *
 * Usage: restic-init.ts REAL_RESTIC RESTIC_ARGS…  (the arguments restic was given; its environment as restic had it).
 * Exits as restic would: 0 when the repository was made.
 *
 * A restic key file: JSON with the scrypt parameters, a salt, and `data` = IV (16 bytes) ‖ AES-256-CTR(master key
 * JSON) ‖ Poly1305-AES MAC (16 bytes) of the ciphertext; scrypt's 64 bytes are the AES key, then the MAC key as k
 * (AES key of the MAC's nonce) ‖ r. Its file name is the SHA-256 of its bytes. The config file is the same
 * IV ‖ ciphertext ‖ MAC under the master key, never compressed.
 */
import { spawnSync } from "node:child_process";
import { createCipheriv, createDecipheriv, createHash, randomBytes, scryptSync } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { hostname, userInfo } from "node:os";
import { dirname, isAbsolute, join, resolve } from "node:path";
import process from "node:process";

/** What the suite's repositories are re-keyed with: scrypt's cost parameters. */
const cheap = { N: 1024, r: 8, p: 1 };

/** restic 0.14's global options that take a value (the first word that is not an option is the command). */
const valued = new Set([
  "--cacert",
  "--cache-dir",
  "--compression",
  "--key-hint",
  "--limit-download",
  "--limit-upload",
  "-o",
  "--option",
  "--pack-size",
  "--password-command",
  "-p",
  "--password-file",
  "-r",
  "--repo",
  "--repository-file",
  "--tls-client-cert",
]);

interface Invocation {
  command?: string;
  options: Map<string, string>;
  /** Words after the command that are not options. */
  operands: string[];
}

/** restic's command line: options may come before and after the command. */
function parse(args: string[]): Invocation {
  const options = new Map<string, string>();
  const words: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (!arg.startsWith("-")) {
      words.push(arg);
      continue;
    }
    const equals = arg.indexOf("=");
    const [name, value] = equals > 0
      ? [arg.slice(0, equals), arg.slice(equals + 1)]
      : [arg, valued.has(arg) ? args[++i] ?? "" : ""];
    // An option given twice (`-o a -o b`) is marked as such: nothing here reads more than one value.
    options.set(name, options.has(name) ? "\u0000repeated" : value);
  }
  return { command: words[0], options, operands: words.slice(1) };
}

/** The local folder of the repository, or undefined for any other backend. */
function localRepository(options: Map<string, string>): string | undefined {
  let location = options.get("-r") ?? options.get("--repo") ?? process.env.RESTIC_REPOSITORY;
  const file = options.get("--repository-file") ?? process.env.RESTIC_REPOSITORY_FILE;
  if (location === undefined && file) location = readFileSync(file, "utf8").trim();
  return location ? folderOf(location) : undefined;
}

/** The folder on this machine a repository location names, or undefined. */
function folderOf(location: string): string | undefined {
  if (location.startsWith("local:")) location = location.slice("local:".length);
  else if (location.startsWith("sftp:")) return loopbackSftpFolder(location);
  else if (location.startsWith("rest:")) return loopbackRestFolder(location);
  else if (/^[a-z0-9]+:/.test(location)) return undefined;
  return isAbsolute(location) ? location : resolve(location);
}

/**
 * The folder of a REST repository served by the suite's own `rclone serve restic` (test/support/rclone.ts registers
 * each server's folder by port in BACKUPCTL_TEST_REST_FOLDERS while it runs): the served folder, or a folder in it.
 */
function loopbackRestFolder(location: string): string | undefined {
  const registry = process.env.BACKUPCTL_TEST_REST_FOLDERS;
  const match = /^rest:https?:\/\/(?:[^@/]*@)?127\.0\.0\.1:(\d+)(\/.*)?$/.exec(location);
  if (!registry || !match) return undefined;
  const entry = join(registry, match[1]);
  if (!existsSync(entry)) return undefined;
  const root = readFileSync(entry, "utf8");
  // Only while the server's folder exists: a stale entry must not make a repository nobody serves.
  if (!isAbsolute(root) || !existsSync(root)) return undefined;
  const path = decodeURIComponent(match[2] ?? "/").replace(/\/+$/, "");
  if (path.split("/").includes("..")) return undefined;
  return join(root, path);
}

/**
 * The folder of an SFTP repository on this machine's own sshd (a loopback host, an absolute path, as this user):
 * the suite's sshd (test/support/sshd.ts) serves this file system, so the folder is the repository.
 */
function loopbackSftpFolder(location: string): string | undefined {
  const match = /^sftp:(?:\/\/)?(?:([^@/]+)@)?(127\.0\.0\.1|localhost|\[::1\])(?::\d+)?(?::|\/)(\/.*)$/.exec(location);
  if (!match) return undefined;
  const [, user, , path] = match;
  if (user !== undefined && user !== userInfo().username) return undefined;
  return isAbsolute(path) ? path : undefined;
}

/** The passwords restic could have read (a file's content with and without its line end). */
function passwords(options: Map<string, string>): string[] {
  if (process.env.RESTIC_PASSWORD !== undefined) return [process.env.RESTIC_PASSWORD];
  const file = options.get("-p") ?? options.get("--password-file") ?? process.env.RESTIC_PASSWORD_FILE;
  if (!file) return [];
  const text = readFileSync(file, "utf8");
  return [...new Set([text, text.replace(/\r?\n$/, ""), text.trim()])];
}

/** Little-endian bytes as a number. */
function littleEndian(bytes: Uint8Array): bigint {
  let value = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) value = (value << 8n) | BigInt(bytes[i]);
  return value;
}

/** Poly1305 (RFC 8439) of `message` under the one-time key r ‖ s. */
function poly1305(message: Uint8Array, r: Uint8Array, s: Uint8Array): Buffer {
  const clamped = Buffer.from(r);
  for (const i of [3, 7, 11, 15]) clamped[i] &= 15;
  for (const i of [4, 8, 12]) clamped[i] &= 252;
  const prime = (1n << 130n) - 5n;
  const rValue = littleEndian(clamped);
  let accumulator = 0n;
  for (let i = 0; i < message.length; i += 16) {
    const block = message.subarray(i, i + 16);
    accumulator = ((accumulator + littleEndian(block) + (1n << BigInt(8 * block.length))) * rValue) % prime;
  }
  let tag = (accumulator + littleEndian(s)) % (1n << 128n);
  const out = Buffer.alloc(16);
  for (let i = 0; i < 16; i++) {
    out[i] = Number(tag & 255n);
    tag >>= 8n;
  }
  return out;
}

interface DerivedKey {
  encryption: Buffer;
  macK: Buffer;
  macR: Buffer;
}

/** restic's Poly1305-AES: the one-time s is the nonce encrypted with AES-128 under k. */
function mac(ciphertext: Uint8Array, nonce: Uint8Array, key: DerivedKey): Buffer {
  const aes = createCipheriv("aes-128-ecb", key.macK, null).setAutoPadding(false);
  return poly1305(ciphertext, key.macR, Buffer.concat([aes.update(nonce), aes.final()]));
}

function derive(password: string, salt: Buffer, params: { N: number; r: number; p: number }): DerivedKey {
  const bytes = scryptSync(password, salt, 64, { ...params, maxmem: 512 * 1024 * 1024 });
  return { encryption: bytes.subarray(0, 32), macK: bytes.subarray(32, 48), macR: bytes.subarray(48, 64) };
}

interface KeyFile {
  N: number;
  r: number;
  p: number;
  salt: string;
  data: string;
  [field: string]: unknown;
}

function rekey(repository: string, candidates: string[]): void {
  const keys = join(repository, "keys");
  const names = readdirSync(keys);
  if (names.length !== 1) return;
  const path = join(keys, names[0]);
  const file = JSON.parse(readFileSync(path, "utf8")) as KeyFile;
  if (file.N <= cheap.N) return;
  for (const password of candidates) {
    const master = open(Buffer.from(file.data, "base64"), derive(password, Buffer.from(file.salt, "base64"), file));
    if (!master) continue;
    const salt = randomBytes(64);
    const text = JSON.stringify({
      ...file,
      ...cheap,
      salt: salt.toString("base64"),
      data: seal(master, derive(password, salt, cheap)).toString("base64"),
    });
    // The new key first, then the old one removed: a crash in between leaves two keys that both open it.
    writeFileSync(join(keys, createHash("sha256").update(text).digest("hex")), text, { mode: statSync(path).mode });
    unlinkSync(path);
    return;
  }
}

/** IV ‖ AES-256-CTR(plain) ‖ Poly1305-AES(ciphertext): restic's encryption of a key's data and of every file. */
function seal(plain: Uint8Array, key: DerivedKey): Buffer {
  const iv = randomBytes(16);
  const cipher = createCipheriv("aes-256-ctr", key.encryption, iv);
  const encrypted = Buffer.concat([cipher.update(plain), cipher.final()]);
  return Buffer.concat([iv, encrypted, mac(encrypted, iv, key)]);
}

/** A key file holding the master key under `password` with the cheap parameters, and its name. */
function keyFile(password: string, master: Buffer): { name: string; text: string } {
  const salt = randomBytes(64);
  let username = "";
  try {
    username = userInfo().username;
  } catch {
    // no passwd entry: restic leaves it empty too
  }
  const text = JSON.stringify({
    created: new Date().toISOString(),
    username,
    hostname: hostname(),
    kdf: "scrypt",
    ...cheap,
    salt: salt.toString("base64"),
    data: seal(master, derive(password, salt, cheap)).toString("base64"),
  });
  return { name: createHash("sha256").update(text).digest("hex"), text };
}

/**
 * The password restic would use, when it comes from exactly one place: RESTIC_PASSWORD, or a password file (whose
 * content restic trims of white space).
 */
function onePassword(options: Map<string, string>): string | undefined {
  const file = options.get("-p") ?? options.get("--password-file") ?? process.env.RESTIC_PASSWORD_FILE;
  const fromEnv = process.env.RESTIC_PASSWORD;
  if (file !== undefined && fromEnv !== undefined) return undefined;
  if (file === undefined) return fromEnv;
  const text = readFileSync(file, "utf8");
  return /^[\x20-\x7e]*\s*$/.test(text) ? text.trim() : undefined;
}

/**
 * For a REST repository: whether the server takes these credentials and has no repository there yet (its answer to
 * the config, 404), as restic's init would find. Anything else (401, a server gone) is for the real restic to report.
 */
async function serverWouldCreate(options: Map<string, string>): Promise<boolean> {
  const location = options.get("-r") ?? options.get("--repo") ?? process.env.RESTIC_REPOSITORY ?? "";
  if (!location.startsWith("rest:")) return true;
  const url = new URL(location.slice("rest:".length));
  const headers: Record<string, string> = {};
  if (url.username) {
    const credentials = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
    headers.Authorization = `Basic ${Buffer.from(credentials).toString("base64")}`;
  }
  const config = new URL(`${url.pathname.replace(/\/?$/, "/")}config`, `${url.protocol}//${url.host}`);
  try {
    const response = await fetch(config, { headers, signal: AbortSignal.timeout(5_000) });
    await response.body?.cancel();
    return response.status === 404;
  } catch {
    return false;
  }
}

/** restic's decryption of a file (IV ‖ ciphertext ‖ MAC) under `key`, or undefined when the MAC does not match. */
function open(data: Buffer, key: DerivedKey): Buffer | undefined {
  const nonce = data.subarray(0, 16);
  const ciphertext = data.subarray(16, data.length - 16);
  if (!mac(ciphertext, nonce, key).equals(data.subarray(data.length - 16))) return undefined;
  const decipher = createDecipheriv("aes-256-ctr", key.encryption, nonce);
  return Buffer.concat([decipher.update(ciphertext), decipher.final()]);
}

/**
 * The chunker polynomial of the repository in `folder`, read with `password` through a cheap key (one made here):
 * what `init --copy-chunker-params` copies. Undefined for anything else (the real restic then copies it).
 */
function polynomialOf(folder: string, password: string): string | undefined {
  for (const name of readdirSync(join(folder, "keys"))) {
    const file = JSON.parse(readFileSync(join(folder, "keys", name), "utf8")) as KeyFile;
    if (file.N > cheap.N) continue;
    const master = open(Buffer.from(file.data, "base64"), derive(password, Buffer.from(file.salt, "base64"), file));
    if (!master) continue;
    const json = JSON.parse(master.toString("utf8")) as { encrypt: string; mac: { k: string; r: string } };
    const key: DerivedKey = {
      encryption: Buffer.from(json.encrypt, "base64"),
      macK: Buffer.from(json.mac.k, "base64"),
      macR: Buffer.from(json.mac.r, "base64"),
    };
    const config = open(readFileSync(join(folder, "config")), key);
    const polynomial = config ? (JSON.parse(config.toString("utf8")) as { chunker_polynomial?: string }) : undefined;
    return polynomial?.chunker_polynomial;
  }
  return undefined;
}

/**
 * The polynomial a new repository gets: the suite's, or with `--copy-chunker-params` the one of the repository
 * RESTIC_FROM_REPOSITORY names (opened with RESTIC_FROM_PASSWORD), when this machine holds it with a cheap key.
 */
function polynomialFor(options: Map<string, string>): string | undefined {
  if (!options.has("--copy-chunker-params")) return process.env.BACKUPCTL_TEST_CHUNKER_POLYNOMIAL;
  const from = process.env.RESTIC_FROM_REPOSITORY;
  const password = process.env.RESTIC_FROM_PASSWORD;
  if (options.has("--from-repo") || !from || !password || process.env.RESTIC_FROM_PASSWORD_FILE) return undefined;
  if (process.env.RESTIC_FROM_PASSWORD_COMMAND || process.env.RESTIC_FROM_REPOSITORY_FILE) return undefined;
  const folder = folderOf(from);
  return folder && existsSync(join(folder, "config")) ? polynomialOf(folder, password) : undefined;
}

/** The global options a plain init may carry and still be made here (the rest go to the real restic). */
const plainInit = new Set([
  "-r",
  "--repo",
  "--password-file",
  "-p",
  "--no-cache",
  "--quiet",
  "-q",
  "--json",
  "--copy-chunker-params",
]);

/** `-o` settings that only say how to reach the backend, which a repository made here does not need. */
function reachOnly(options: Map<string, string>): boolean {
  const extended = options.get("-o") ?? options.get("--option");
  return extended === undefined || extended.startsWith("sftp.command=");
}

/**
 * Makes a plain init of a new local repository; returns false (having made nothing) when it is not one: then the
 * real restic runs.
 */
async function create(args: string[]): Promise<boolean> {
  const { command, options, operands } = parse(args);
  if (command !== "init" || operands.length > 0) return false;
  if ([...options.keys()].some((option) => !plainInit.has(option) && option !== "-o" && option !== "--option")) {
    return false;
  }
  if (!reachOnly(options) || process.env.RESTIC_PASSWORD_COMMAND) return false;
  const polynomial = polynomialFor(options);
  if (!polynomial || !/^[0-9a-f]{1,16}$/.test(polynomial)) return false;
  const repository = localRepository(options);
  const password = onePassword(options);
  if (!repository || !password) return false;
  if (existsSync(repository) && readdirSync(repository).length > 0) return false;
  if (!await serverWouldCreate(options)) return false;
  const parent = dirname(repository);
  mkdirSync(parent, { recursive: true });
  const building = `${repository}.init-${process.pid}`;
  try {
    mkdirSync(building, { mode: 0o700 });
    for (const folder of ["data", "index", "keys", "locks", "snapshots"]) {
      mkdirSync(join(building, folder), { mode: 0o700 });
    }
    for (let i = 0; i < 256; i++) mkdirSync(join(building, "data", i.toString(16).padStart(2, "0")), { mode: 0o700 });
    const masterKey: DerivedKey = { encryption: randomBytes(32), macK: randomBytes(16), macR: randomBytes(16) };
    const master = Buffer.from(JSON.stringify({
      mac: { k: masterKey.macK.toString("base64"), r: masterKey.macR.toString("base64") },
      encrypt: masterKey.encryption.toString("base64"),
    }));
    const id = randomBytes(32).toString("hex");
    const config = JSON.stringify({ version: 2, id, chunker_polynomial: polynomial });
    writeFileSync(join(building, "config"), seal(Buffer.from(config), masterKey), { mode: 0o400 });
    const key = keyFile(password, master);
    writeFileSync(join(building, "keys", key.name), key.text, { mode: 0o400 });
    if (existsSync(repository)) rmSync(repository, { recursive: true }); // the empty folder it replaces
    renameSync(building, repository);
    if (!options.has("--quiet") && !options.has("-q")) {
      console.log(`created restic repository ${id.slice(0, 10)} at ${repository}\n`);
      console.log(
        "Please note that knowledge of your password is required to access\nthe repository. " +
          "Losing your password means that your data is\nirrecoverably lost.",
      );
    }
    return true;
  } catch {
    rmSync(building, { recursive: true, force: true });
    return false;
  }
}

const [real, ...args] = process.argv.slice(2);
let made = false;
try {
  made = await create(args);
} catch {
  // anything unexpected: the real restic decides
}
if (made) process.exit(0);
const result = spawnSync(real, args, { stdio: "inherit" });
if (result.status === 0) {
  try {
    const { command, options } = parse(args);
    const repository = command === "init" ? localRepository(options) : undefined;
    if (repository) rekey(repository, passwords(options));
  } catch {
    // A speed-up only: whatever goes wrong leaves the repository as restic made it.
  }
}
process.exit(result.status ?? 1);
