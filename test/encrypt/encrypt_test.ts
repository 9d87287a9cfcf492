/**
 * Encryption filters: their command lines (never a secret in argv, compression off, the right recipient options),
 * clear errors before any process starts, and real round trips through gpg and age with 5 MB of data.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import {
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
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { SecretError } from "../../src/config/secrets.ts";
import type { AgeEncryption, Encryption, GpgEncryption } from "../../src/config/types.ts";
import { decryptionFilter, encryptionFilter } from "../../src/encrypt/filter.ts";
import type { FilterContext, StreamFilter } from "../../src/encrypt/types.ts";
import { SourceError } from "../../src/errors.ts";

const hasTool = (tool: string) => spawnSync(tool, ["--version"], { stdio: "ignore" }).status === 0;
// Never skipped: a suite that passes without gpg or age would pass without testing encryption (CI installs both).
describe("the encryption programs", () => {
  it("gpg, age and age-keygen are installed (apt-get install -y gnupg age)", () => {
    for (const tool of ["gpg", "age", "age-keygen"]) assert.ok(hasTool(tool), `${tool} is not installed`);
  });
});

const root = mkdtempSync(join(tmpdir(), "backupctl-encrypt-"));
/** Where the "config" lives: key files are given relative to it. */
const configDir = join(root, "config");
/** The state folder's private area, as the executor passes it: must be empty after every cleanup(). */
const privateDir = join(root, "state", "tmp");
const context: FilterContext = { configDir, privateDir };
mkdirSync(configDir, { recursive: true });

const passphrase = "correct horse battery staple 42";
const env = {
  gpgKey: "BACKUPCTL_TEST_GPG_SECRET_KEY",
  gpgProtectedKey: "BACKUPCTL_TEST_GPG_PROTECTED_KEY",
  gpgPassphrase: "BACKUPCTL_TEST_GPG_PASSPHRASE",
  gpgWrongPassphrase: "BACKUPCTL_TEST_GPG_WRONG_PASSPHRASE",
  gpgPublicOnly: "BACKUPCTL_TEST_GPG_PUBLIC_ONLY",
  ageIdentity: "BACKUPCTL_TEST_AGE_IDENTITY",
};
/** Every secret value the tests create: none may ever appear in a filter's argv or env. */
const secrets: string[] = [passphrase];
/** Every filter built, checked at the end of each test. */
const built: StreamFilter[] = [];
/** The homes of the generated keys (the "user's keyring" and the key generator's), whose agents are stopped at the end. */
const keyHomes: string[] = [];

let gpgHome = ""; // the generating keyring, also used as "the user's keyring"
let ageRecipient = "";

async function build(make: () => Promise<StreamFilter>): Promise<StreamFilter> {
  const filter = await make();
  built.push(filter);
  return filter;
}

async function encrypting(encrypt: Encryption): Promise<StreamFilter> {
  return await build(() => encryptionFilter(encrypt, context));
}

async function decrypting(encrypt: Encryption): Promise<StreamFilter> {
  return await build(() => decryptionFilter(encrypt, context));
}

function assertNoSecretIn(filter: StreamFilter): void {
  const text = [...filter.argv, ...Object.values(filter.env ?? {})].join("\n");
  for (const secret of secrets) assert.ok(!text.includes(secret), `a secret appears in ${filter.argv.join(" ")}`);
  for (const marker of ["PRIVATE KEY", "AGE-SECRET-KEY", passphrase]) {
    assert.ok(!text.includes(marker), `"${marker}" appears in the filter's argv or env`);
  }
}

function assertPrivateDirEmpty(): void {
  const left = existsSync(privateDir) ? readdirSync(privateDir) : [];
  assert.deepEqual(left, [], `private files left behind in ${privateDir}`);
}

/** Runs cleanup() on every filter, checks argv/env for secrets and that nothing private is left. */
async function finish(...filters: StreamFilter[]): Promise<void> {
  for (const filter of filters) {
    assertNoSecretIn(filter);
    for (const path of privatePaths(filter)) assert.ok(existsSync(path), `${path} exists until cleanup()`);
    await filter.cleanup?.();
    for (const path of privatePaths(filter)) assert.ok(!existsSync(path), `${path} is removed by cleanup()`);
  }
  assertPrivateDirEmpty();
}

function privatePaths(filter: StreamFilter): string[] {
  return [...filter.argv, ...Object.values(filter.env ?? {})].filter((value) => value.startsWith(privateDir));
}

async function expectError(
  make: () => unknown,
  kind: typeof SourceError | typeof SecretError,
  pattern: RegExp,
): Promise<Error> {
  let caught: unknown;
  try {
    await make();
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof kind, `expected a ${kind.name}, got ${caught}`);
  assert.match(caught.message, pattern);
  for (const secret of secrets) assert.ok(!caught.message.includes(secret), "a secret appears in the error");
  assertPrivateDirEmpty();
  return caught;
}

function gpgAt(home: string, args: string[]): string {
  const result = spawnSync("gpg", ["--batch", "--no-tty", ...args], {
    env: { ...process.env, GNUPGHOME: home },
    encoding: "utf8",
  });
  assert.equal(result.status, 0, `gpg ${args.join(" ")} failed: ${result.stderr}`);
  return result.stdout;
}

function optionValues(argv: string[], option: string): string[] {
  return argv.flatMap((arg, i) => (arg === option ? [argv[i + 1]] : []));
}

const marker = "BACKUPCTL-PLAINTEXT-MARKER";

/** 5 MiB: blocks of pseudo-random bytes alternating with repetitive text lines carrying a marker. */
function sampleData(): Buffer {
  const data = Buffer.alloc(5 * 1024 * 1024);
  let state = 0x9e3779b9;
  let offset = 0;
  let block = 0;
  while (offset < data.length) {
    if (block++ % 2 === 0) {
      for (let i = 0; i < 4096 && offset < data.length; i++) {
        state ^= state << 13;
        state ^= state >>> 17;
        state ^= state << 5;
        data[offset++] = state & 0xff;
      }
    } else {
      const text = `INSERT INTO t VALUES (${block}, '${marker}', 'the same line again');\n`.repeat(40);
      offset += data.write(text, offset, "latin1");
    }
  }
  return data;
}

/** Pipes `input` through a filter's program, as the pipeline does (argv, env added to the inherited one). */
function pipeThrough(
  filter: StreamFilter,
  input: Uint8Array,
): Promise<{ code: number | null; out: Buffer; err: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(filter.argv[0], filter.argv.slice(1), {
      env: { ...process.env, ...filter.env },
      stdio: ["pipe", "pipe", "pipe"],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (chunk: Buffer) => out.push(chunk));
    child.stderr.on("data", (chunk: Buffer) => err.push(chunk));
    child.stdin.on("error", () => {}); // a failing filter closes its stdin early; its exit code tells
    child.on("error", reject);
    child.on("close", (code) => resolvePromise({ code, out: Buffer.concat(out), err: Buffer.concat(err).toString() }));
    child.stdin.end(input);
  });
}

async function roundTrip(encrypt: Encryption, decrypt: Encryption = encrypt): Promise<Buffer> {
  const plain = sampleData();
  const encrypter = await encrypting(encrypt);
  const encrypted = await pipeThrough(encrypter, plain);
  assert.equal(encrypted.code, 0, `encryption failed: ${encrypted.err}`);
  assert.ok(encrypted.out.length > 0);
  assert.ok(!encrypted.out.equals(plain), "the output differs from the input");
  assert.equal(encrypted.out.indexOf(marker), -1, "the plaintext marker does not appear in the ciphertext");
  // No compression before restic: the ciphertext is at least as long as the (very compressible) input.
  assert.ok(encrypted.out.length >= plain.length, `${encrypted.out.length} < ${plain.length}: it was compressed`);

  const decrypter = await decrypting(decrypt);
  const decrypted = await pipeThrough(decrypter, encrypted.out);
  assert.equal(decrypted.code, 0, `decryption failed: ${decrypted.err}`);
  assert.equal(decrypted.out.length, plain.length);
  assert.ok(decrypted.out.equals(plain), "the decrypted bytes are identical to the input");
  await finish(encrypter, decrypter);
  return encrypted.out;
}

before(() => {
  {
    gpgHome = mkdtempSync(join(tmpdir(), "bk-gpg-"));
    keyHomes.push(gpgHome);
    const generate = (userId: string, pass: string) =>
      gpgAt(gpgHome, [
        "--pinentry-mode",
        "loopback",
        "--passphrase",
        pass,
        "--quick-generate-key",
        userId,
        "future-default",
        "default",
        "never",
      ]);
    generate("backup test <backup@example.com>", "");
    generate("protected test <protected@example.com>", passphrase);
    generate("second test <second@example.com>", "");
    writeFileSync(join(configDir, "backup.pub.asc"), gpgAt(gpgHome, ["--armor", "--export", "backup@example.com"]));
    writeFileSync(
      join(configDir, "protected.pub.asc"),
      gpgAt(gpgHome, ["--armor", "--export", "protected@example.com"]),
    );
    writeFileSync(
      join(configDir, "two.pub.asc"),
      gpgAt(gpgHome, ["--armor", "--export", "backup@example.com", "second@example.com"]),
    );
    const secretKey = gpgAt(gpgHome, ["--armor", "--export-secret-keys", "backup@example.com"]);
    const protectedKey = gpgAt(gpgHome, [
      "--pinentry-mode",
      "loopback",
      "--passphrase",
      passphrase,
      "--armor",
      "--export-secret-keys",
      "protected@example.com",
    ]);
    assert.match(secretKey, /PRIVATE KEY BLOCK/);
    assert.match(protectedKey, /PRIVATE KEY BLOCK/);
    secrets.push(secretKey, protectedKey);
    process.env[env.gpgKey] = secretKey;
    process.env[env.gpgProtectedKey] = protectedKey;
    process.env[env.gpgPassphrase] = passphrase;
    process.env[env.gpgWrongPassphrase] = "not the passphrase";
    process.env[env.gpgPublicOnly] = readFileSync(join(configDir, "backup.pub.asc"), "utf8");
  }
  {
    const keyFile = join(root, "age-key.txt");
    const made = spawnSync("age-keygen", ["-o", keyFile], { encoding: "utf8" });
    assert.equal(made.status, 0, made.stderr);
    const identity = readFileSync(keyFile, "utf8");
    ageRecipient = /public key: (age1\S+)/.exec(identity)![1];
    secrets.push(/AGE-SECRET-KEY-\S+/.exec(identity)![0]);
    process.env[env.ageIdentity] = identity;
    writeFileSync(join(configDir, "recipients.txt"), `# the backup key\n${ageRecipient}\n`);
  }
});

after(async () => {
  for (const filter of built) await filter.cleanup?.();
  for (const home of keyHomes) {
    spawnSync("gpgconf", ["--kill", "gpg-agent"], { env: { ...process.env, GNUPGHOME: home }, stdio: "ignore" });
  }
  for (const name of Object.values(env)) delete process.env[name];
  rmSync(root, { recursive: true, force: true });
  for (const home of keyHomes) rmSync(home, { recursive: true, force: true });
});

describe("age filters", () => {
  it("encrypts with -r for each recipient and -R for the recipients file (relative to the config)", async () => {
    const recipients = ["age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p", "ssh-ed25519 AAAAC3Nza test"];
    writeFileSync(join(configDir, "more-recipients.txt"), `${recipients[0]}\n`);
    const filter = await encrypting({ type: "age", recipients, recipientsFile: "more-recipients.txt" });
    assert.deepEqual(filter.argv, [
      "age",
      "--encrypt",
      "-r",
      recipients[0],
      "-r",
      recipients[1],
      "-R",
      join(configDir, "more-recipients.txt"),
    ]);
    assert.equal(filter.extension, ".age");
    assert.equal(filter.package, "age");
    await finish(filter);
  });

  it("fails clearly on a missing recipients file, a malformed recipient or a private key given as recipient", async () => {
    await expectError(
      () => encrypting({ type: "age", recipientsFile: "missing.txt" }),
      SourceError,
      /recipientsFile .*missing\.txt does not exist.*age-keygen -y/,
    );
    await expectError(
      () => encrypting({ type: "age", recipients: ["backup@example.com"] }),
      SourceError,
      /recipients\[0\] "backup@example.com" is not an age recipient/,
    );
    const identityAsRecipient = "AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ";
    secrets.push(identityAsRecipient);
    await expectError(
      () => encrypting({ type: "age", recipients: [identityAsRecipient] }),
      SourceError,
      /recipients\[0\] is an age identity \(a private key\), not a recipient/,
    );
  });

  it("decryption needs the identity, resolved from its secret reference", async () => {
    await expectError(() => decrypting({ type: "age", recipients: ["age1x"] }), SourceError, /needs the private key/);
    await expectError(
      () =>
        decrypting({ type: "age", recipients: ["age1x"], identity: { secret: "env", name: "BACKUPCTL_TEST_UNSET" } }),
      SecretError,
      /env\("BACKUPCTL_TEST_UNSET"\) is not set/,
    );
  });

  it("round-trips 5 MB through age (recipients), with the identity from the environment", async () => {
    const encrypt: AgeEncryption = {
      type: "age",
      recipients: [ageRecipient],
      identity: { secret: "env", name: env.ageIdentity },
    };
    const ciphertext = await roundTrip(encrypt);
    assert.equal(ciphertext.subarray(0, 21).toString(), "age-encryption.org/v1");
  });

  it("round-trips through age with a recipients file; the identity file is private until cleanup", async () => {
    const encrypt: AgeEncryption = {
      type: "age",
      recipientsFile: "recipients.txt",
      identity: { secret: "env", name: env.ageIdentity },
    };
    const decrypter = await decrypting(encrypt);
    const identityFile = optionValues(decrypter.argv, "-i")[0];
    assert.ok(identityFile.startsWith(privateDir));
    assert.equal(statSync(identityFile).mode & 0o777, 0o600);
    assert.equal(statSync(join(identityFile, "..")).mode & 0o777, 0o700);
    await finish(decrypter);
    await roundTrip(encrypt);
  });

  it("a wrong identity fails the decryption", async () => {
    const other = spawnSync("age-keygen", [], { encoding: "utf8" }).stdout;
    secrets.push(/AGE-SECRET-KEY-\S+/.exec(other)![0]);
    process.env.BACKUPCTL_TEST_AGE_OTHER = other;
    try {
      const encrypter = await encrypting({ type: "age", recipients: [ageRecipient] });
      const encrypted = await pipeThrough(encrypter, Buffer.from("secret data\n"));
      assert.equal(encrypted.code, 0);
      const decrypter = await decrypting({
        type: "age",
        recipients: [ageRecipient],
        identity: { secret: "env", name: "BACKUPCTL_TEST_AGE_OTHER" },
      });
      const decrypted = await pipeThrough(decrypter, encrypted.out);
      assert.notEqual(decrypted.code, 0);
      await finish(encrypter, decrypter);
    } finally {
      delete process.env.BACKUPCTL_TEST_AGE_OTHER;
    }
  });
});

describe("gpg filters", () => {
  it("with only a one-key keyFile: --recipient-file, compression off, a private GNUPGHOME removed by cleanup", async () => {
    const filter = await encrypting({ type: "gpg", keyFile: "backup.pub.asc" });
    assert.deepEqual(filter.argv.slice(0, 5), ["gpg", "--batch", "--yes", "--no-tty", "--quiet"]);
    assert.deepEqual(optionValues(filter.argv, "--compress-algo"), ["none"]);
    assert.deepEqual(optionValues(filter.argv, "--trust-model"), ["always"]);
    assert.deepEqual(optionValues(filter.argv, "--recipient-file"), [join(configDir, "backup.pub.asc")]);
    assert.deepEqual(optionValues(filter.argv, "--recipient"), []);
    assert.equal(filter.argv.at(-3), "--encrypt");
    assert.equal(filter.extension, ".gpg");
    assert.equal(filter.package, "gnupg");
    const home = filter.env?.GNUPGHOME ?? "";
    assert.ok(home.startsWith(privateDir), `GNUPGHOME ${home} is under the private folder`);
    assert.equal(statSync(home).mode & 0o777, 0o700);
    assert.equal(statSync(privateDir).mode & 0o777, 0o700);
    await finish(filter);
  });

  it("with a keyFile of several keys and no recipient: one --recipient per fingerprint", async () => {
    const filter = await encrypting({ type: "gpg", keyFile: join(configDir, "two.pub.asc") });
    const fingerprints = optionValues(filter.argv, "--recipient");
    assert.equal(fingerprints.length, 2);
    for (const fingerprint of fingerprints) assert.match(fingerprint, /^[0-9A-F]{40}$/);
    assert.deepEqual(optionValues(filter.argv, "--recipient-file"), []);
    await finish(filter);
  });

  it("with a keyFile and recipients: --recipient for each, checked against the file's keys", async () => {
    const filter = await encrypting({
      type: "gpg",
      keyFile: "two.pub.asc",
      recipient: ["backup@example.com", "second@example.com"],
    });
    assert.deepEqual(optionValues(filter.argv, "--recipient"), ["backup@example.com", "second@example.com"]);
    await finish(filter);
    await expectError(
      () => encrypting({ type: "gpg", keyFile: "backup.pub.asc", recipient: "second@example.com" }),
      SourceError,
      /recipient "second@example.com" is not among the keys in keyFile .*backup\.pub\.asc \(it holds: backup test <backup@example.com> [0-9A-F]{40}\): add its public key/,
    );
  });

  it("fails clearly on a missing keyFile or one that holds no key", async () => {
    await expectError(
      () => encrypting({ type: "gpg", keyFile: "keys/missing.asc", recipient: "backup@example.com" }),
      SourceError,
      /keyFile .*keys\/missing\.asc does not exist: export the recipients' public keys into it \(gpg --armor --export KEYID/,
    );
    writeFileSync(join(configDir, "not-a-key.asc"), "hello\n");
    await expectError(
      () => encrypting({ type: "gpg", keyFile: "not-a-key.asc" }),
      SourceError,
      /keyFile .*not-a-key\.asc holds no OpenPGP public key/,
    );
  });

  it("without keyFile: the user's keyring and --recipient; an unknown recipient is an error", async () => {
    const saved = process.env.GNUPGHOME;
    process.env.GNUPGHOME = gpgHome;
    try {
      const filter = await encrypting({ type: "gpg", recipient: "backup@example.com" });
      assert.deepEqual(optionValues(filter.argv, "--recipient"), ["backup@example.com"]);
      assert.equal(filter.env?.GNUPGHOME, undefined, "the user's own keyring");
      assert.equal(filter.cleanup, undefined);
      await finish(filter);
      await expectError(
        () => encrypting({ type: "gpg", recipient: ["backup@example.com", "nobody@example.com"] }),
        SourceError,
        /recipient "nobody@example.com" has no public key in the keyring of this user .*gpg --import/,
      );
    } finally {
      if (saved === undefined) delete process.env.GNUPGHOME;
      else process.env.GNUPGHOME = saved;
    }
  });

  it("decryption needs a private key: missing, unset or public-only secretKey are errors", async () => {
    await expectError(
      () => decrypting({ type: "gpg", keyFile: "backup.pub.asc" }),
      SourceError,
      /needs the private key/,
    );
    await expectError(
      () => decrypting({ type: "gpg", secretKey: { secret: "env", name: "BACKUPCTL_TEST_UNSET" } }),
      SecretError,
      /env\("BACKUPCTL_TEST_UNSET"\) is not set/,
    );
    await expectError(
      () => decrypting({ type: "gpg", secretKey: { secret: "env", name: env.gpgPublicOnly } }),
      SourceError,
      /secretKey env\("BACKUPCTL_TEST_GPG_PUBLIC_ONLY"\) holds no OpenPGP private key/,
    );
  });

  it("a protected key without its passphrase, or with a wrong one, is an error naming the references", async () => {
    await expectError(
      () => decrypting({ type: "gpg", secretKey: { secret: "env", name: env.gpgProtectedKey } }),
      SourceError,
      /protected by a passphrase, so set passphrase/,
    );
    await expectError(
      () =>
        decrypting({
          type: "gpg",
          secretKey: { secret: "env", name: env.gpgProtectedKey },
          passphrase: { secret: "env", name: env.gpgWrongPassphrase },
        }),
      SourceError,
      /passphrase env\("BACKUPCTL_TEST_GPG_WRONG_PASSPHRASE"\) does not unlock the private key in secretKey env\("BACKUPCTL_TEST_GPG_PROTECTED_KEY"\)/,
    );
  });

  it("the decryption filter reads the passphrase from a private file, never from argv or stdin", async () => {
    const filter = await decrypting({
      type: "gpg",
      secretKey: { secret: "env", name: env.gpgProtectedKey },
      passphrase: { secret: "env", name: env.gpgPassphrase },
    });
    assert.deepEqual(optionValues(filter.argv, "--pinentry-mode"), ["loopback"]);
    const [passphraseFile] = optionValues(filter.argv, "--passphrase-file");
    const home = filter.env?.GNUPGHOME ?? "";
    assert.ok(passphraseFile.startsWith(home) && home.startsWith(privateDir));
    assert.equal(statSync(passphraseFile).mode & 0o777, 0o600);
    assert.equal(readFileSync(passphraseFile, "utf8").trimEnd(), passphrase);
    assert.ok(!filter.argv.includes("--passphrase"), "no --passphrase VALUE");
    assert.ok(!filter.argv.includes("--passphrase-fd"), "stdin is the data stream");
    assert.equal(filter.argv.at(-1), "--decrypt");
    assert.deepEqual(readdirSync(home).filter((name) => name.endsWith(".asc")), [], "the key file is gone");
    await finish(filter);
  });

  it("round-trips 5 MB encrypted to a keyFile (--recipient-file), decrypted with secretKey from the environment", async () => {
    const ciphertext = await roundTrip({
      type: "gpg",
      keyFile: "backup.pub.asc",
      secretKey: { secret: "env", name: env.gpgKey },
    });
    assert.ok((ciphertext[0] & 0x80) !== 0, "an OpenPGP packet, not armored text");
  });

  it("round-trips with a passphrase-protected key", async () => {
    await roundTrip({
      type: "gpg",
      keyFile: "protected.pub.asc",
      recipient: "protected@example.com",
      secretKey: { secret: "env", name: env.gpgProtectedKey },
      passphrase: { secret: "env", name: env.gpgPassphrase },
    });
  });

  it("round-trips to several keys: each private key alone decrypts", async () => {
    const encrypt: GpgEncryption = { type: "gpg", keyFile: "two.pub.asc" };
    const second = gpgAt(gpgHome, ["--armor", "--export-secret-keys", "second@example.com"]);
    secrets.push(second);
    process.env.BACKUPCTL_TEST_GPG_SECOND_KEY = second;
    try {
      await roundTrip(encrypt, { ...encrypt, secretKey: { secret: "env", name: env.gpgKey } });
      await roundTrip(encrypt, { ...encrypt, secretKey: { secret: "env", name: "BACKUPCTL_TEST_GPG_SECOND_KEY" } });
    } finally {
      delete process.env.BACKUPCTL_TEST_GPG_SECOND_KEY;
    }
  });

  it("round-trips with the user's keyring (no keyFile)", async () => {
    const saved = process.env.GNUPGHOME;
    process.env.GNUPGHOME = gpgHome;
    try {
      await roundTrip({ type: "gpg", recipient: "backup@example.com", secretKey: { secret: "env", name: env.gpgKey } });
    } finally {
      if (saved === undefined) delete process.env.GNUPGHOME;
      else process.env.GNUPGHOME = saved;
    }
  });
});

describe("encryption filters", () => {
  it("never put a secret in argv or env, and left nothing in the private folder", () => {
    assert.ok(built.length > 0);
    for (const filter of built) assertNoSecretIn(filter);
    assertPrivateDirEmpty();
  });
});
