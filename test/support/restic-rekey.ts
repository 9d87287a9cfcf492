/**
 * The test suite's restic speed-up: run right after a successful `restic init` (by the restic wrapper that
 * scripts/test.ts puts first on the suite's PATH), it re-encrypts the new local repository's master key under cheap
 * scrypt parameters (N=1024 instead of the ~32,768 restic calibrates to take half a second). Every later restic
 * command of the test then opens the repository in a millisecond instead of about 0.3 s of CPU: hundreds of restic
 * runs per suite, on a 2-core machine.
 *
 * The repository stays a real restic repository in every other way (same master key, data, packs and password;
 * `restic check` passes); only how long a password takes to try changes. backupctl itself never does this, and the
 * benchmarks run the real restic with its own parameters.
 *
 * Usage: restic-rekey.ts RESTIC_ARGS…  (the arguments restic init was given; its environment as restic had it)
 * It changes nothing, silently, unless the arguments are an init of a local repository with one key whose password
 * it can read (RESTIC_PASSWORD, RESTIC_PASSWORD_FILE or --password-file) and check against the key's MAC.
 *
 * A restic key file (restic's design doc): JSON with the scrypt parameters, a salt, and `data` = IV (16 bytes) ‖
 * AES-256-CTR(master key JSON) ‖ Poly1305-AES MAC (16 bytes) of the ciphertext; scrypt's 64 bytes are the AES key,
 * then the MAC key as k (AES key of the MAC's nonce) ‖ r. Its file name is the SHA-256 of its bytes.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes, scryptSync } from "node:crypto";
import { readdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";
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
}

function parse(args: string[]): Invocation {
  const options = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (!arg.startsWith("-")) return { command: arg, options };
    const equals = arg.indexOf("=");
    if (equals > 0) options.set(arg.slice(0, equals), arg.slice(equals + 1));
    else if (valued.has(arg)) options.set(arg, args[++i] ?? "");
  }
  return { options };
}

/** The local folder of the repository, or undefined for any other backend. */
function localRepository(options: Map<string, string>): string | undefined {
  let location = options.get("-r") ?? options.get("--repo") ?? process.env.RESTIC_REPOSITORY;
  const file = options.get("--repository-file") ?? process.env.RESTIC_REPOSITORY_FILE;
  if (location === undefined && file) location = readFileSync(file, "utf8").trim();
  if (!location) return undefined;
  if (location.startsWith("local:")) location = location.slice("local:".length);
  else if (/^[a-z0-9]+:/.test(location)) return undefined;
  return isAbsolute(location) ? location : resolve(location);
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
  const data = Buffer.from(file.data, "base64");
  const nonce = data.subarray(0, 16);
  const ciphertext = data.subarray(16, data.length - 16);
  const tag = data.subarray(data.length - 16);
  for (const password of candidates) {
    const old = derive(password, Buffer.from(file.salt, "base64"), file);
    if (!mac(ciphertext, nonce, old).equals(tag)) continue;
    const decipher = createDecipheriv("aes-256-ctr", old.encryption, nonce);
    const master = Buffer.concat([decipher.update(ciphertext), decipher.final()]);
    const salt = randomBytes(64);
    const fresh = derive(password, salt, cheap);
    const iv = randomBytes(16);
    const cipher = createCipheriv("aes-256-ctr", fresh.encryption, iv);
    const encrypted = Buffer.concat([cipher.update(master), cipher.final()]);
    const text = JSON.stringify({
      ...file,
      ...cheap,
      salt: salt.toString("base64"),
      data: Buffer.concat([iv, encrypted, mac(encrypted, iv, fresh)]).toString("base64"),
    });
    // The new key first, then the old one removed: a crash in between leaves two keys that both open it.
    writeFileSync(join(keys, createHash("sha256").update(text).digest("hex")), text, { mode: statSync(path).mode });
    unlinkSync(path);
    return;
  }
}

try {
  const { command, options } = parse(process.argv.slice(2));
  const repository = command === "init" ? localRepository(options) : undefined;
  if (repository) rekey(repository, passwords(options));
} catch {
  // A speed-up only: whatever goes wrong leaves the repository as restic made it.
}
