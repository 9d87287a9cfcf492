/**
 * GnuPG: `gpg --encrypt` to public keys only, so the backup host holds no private key.
 *
 * With `keyFile`, gpg runs in a private GNUPGHOME (a 0700 folder under `privateDir`) where the file's keys are
 * imported, so neither the user's keyring nor their gpg.conf (`encrypt-to`, `default-recipient`, …) changes what is
 * encrypted to whom. A file holding exactly one key and no `recipient` is used with `--recipient-file`; with several
 * keys each fingerprint becomes a `--recipient` (gpg's `--recipient-file` would silently take only the first key).
 * Without `keyFile`, the recipients are looked up in the invoking user's keyring.
 *
 * Compression is off (`--compress-algo none`): restic compresses, and compressing before encrypting only costs CPU.
 * `--trust-model always` accepts the configured keys without a web of trust; `--no-auto-key-locate` keeps gpg from
 * fetching keys over the network (WKD) at backup time; `--no-autostart` keeps it from starting a gpg-agent.
 *
 * Decryption imports `secretKey` into its own private GNUPGHOME and reads `passphrase` from a private file
 * (`--pinentry-mode loopback --passphrase-file`): stdin is the data stream, and secrets never go into argv. The key
 * and passphrase are checked with a small round trip before the filter is returned, so a wrong passphrase is a
 * clear error instead of a failed restore.
 */
import { existsSync, rmSync, writeFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { isAbsolute, join, resolve } from "node:path";
import { describeSecret, redact, resolveSecret } from "../config/secrets.ts";
import type { GpgEncryption } from "../config/types.ts";
import { MissingToolError, SourceError } from "../errors.ts";
import { createPrivateFolder } from "../exec/private-file.ts";
import { run, type RunResult } from "../exec/run.ts";
import type { FilterContext, StreamFilter } from "./types.ts";

/** Options shared by every encrypting gpg command line. */
const encryptOptions = [
  "--batch",
  "--yes",
  "--no-tty",
  "--quiet",
  "--no-autostart",
  "--no-auto-key-locate",
  "--trust-model",
  "always",
  "--compress-algo",
  "none",
];

/** `gpg --encrypt` to `recipient`, or to every key of `keyFile` when no recipient is given. */
export async function gpgEncryptionFilter(encrypt: GpgEncryption, context: FilterContext): Promise<StreamFilter> {
  const recipients = encrypt.recipient === undefined ? [] : [encrypt.recipient].flat().map((r) => r.trim());
  if (encrypt.keyFile === undefined) {
    if (recipients.length === 0) {
      throw new SourceError("gpg() needs a recipient or a keyFile with the public key to encrypt to");
    }
    for (const recipient of recipients) await checkRecipient(recipient, undefined, undefined);
    return {
      argv: ["gpg", ...encryptOptions, "--encrypt", ...recipients.flatMap((r) => ["--recipient", r])],
      package: "gnupg",
      extension: ".gpg",
    };
  }

  const keyFile = isAbsolute(encrypt.keyFile) ? encrypt.keyFile : resolve(context.configDir, encrypt.keyFile);
  if (!existsSync(keyFile)) {
    throw new SourceError(
      `gpg(): keyFile ${keyFile} does not exist: export the recipients' public keys into it ` +
        `(gpg --armor --export KEYID > ${keyFile}) or fix the path (relative paths start at the config's folder ` +
        `${context.configDir})`,
    );
  }
  const home = privateHome(context.privateDir);
  try {
    const imported = await gpg(["--no-autostart", "--import", keyFile], home);
    const keys = imported.code === 0 ? await listKeys(home, [], false) : [];
    if (keys.length === 0) {
      throw new SourceError(
        `gpg(): keyFile ${keyFile} holds no OpenPGP public key: export one with ` +
          `gpg --armor --export KEYID > ${keyFile}${stderrOf(imported)}`,
      );
    }
    let recipientArgs: string[];
    if (recipients.length > 0) {
      for (const recipient of recipients) await checkRecipient(recipient, home, keyFile);
      recipientArgs = recipients.flatMap((r) => ["--recipient", r]);
    } else {
      for (const key of keys) {
        if (!key.canEncrypt) throw new SourceError(cannotEncrypt(key, `a key in keyFile ${keyFile}`));
      }
      recipientArgs = keys.length === 1
        ? ["--recipient-file", keyFile]
        : keys.flatMap((key) => ["--recipient", key.fingerprint]);
    }
    return {
      argv: ["gpg", ...encryptOptions, "--encrypt", ...recipientArgs],
      env: { GNUPGHOME: home },
      package: "gnupg",
      extension: ".gpg",
      cleanup: () => removeHome(home, false),
    };
  } catch (error) {
    await removeHome(home, false);
    throw error;
  }
}

/**
 * `gpg --decrypt` with `secretKey` imported into a private GNUPGHOME and `passphrase` in a private file;
 * `cleanup()` stops that home's gpg-agent and removes it.
 */
export async function gpgDecryptionFilter(encrypt: GpgEncryption, context: FilterContext): Promise<StreamFilter> {
  if (encrypt.secretKey === undefined) {
    throw new SourceError(
      'gpg(): decrypting (restore, drills) needs the private key: set secretKey: env("NAME") or file("PATH") ' +
        "holding the armored private key (gpg --armor --export-secret-keys KEYID), and passphrase if it has one",
    );
  }
  const keyName = describeSecret(encrypt.secretKey);
  const secretKey = resolveSecret(encrypt.secretKey, context.configDir);
  const passphrase = encrypt.passphrase === undefined
    ? undefined
    : resolveSecret(encrypt.passphrase, context.configDir);
  const home = privateHome(context.privateDir);
  try {
    const keyPath = writeSecret(home, "secret-key.asc", `${secretKey}\n`);
    const imported = await gpg(["--import", keyPath], home);
    rmSync(keyPath, { force: true });
    const keys = imported.code === 0 ? await listKeys(home, [], true) : [];
    if (keys.length === 0) {
      throw new SourceError(
        `gpg(): secretKey ${keyName} holds no OpenPGP private key: export it with ` +
          "gpg --armor --export-secret-keys KEYID (a public key is not enough to decrypt)",
      );
    }
    const passphraseArgs = passphrase === undefined
      ? []
      : ["--passphrase-file", writeSecret(home, "passphrase", `${passphrase}\n`)];
    const decryptArgs = ["--pinentry-mode", "loopback", ...passphraseArgs, "--decrypt"];
    await checkSecretKey(home, keys, decryptArgs, keyName, encrypt.passphrase && describeSecret(encrypt.passphrase));
    return {
      argv: ["gpg", "--batch", "--yes", "--no-tty", "--quiet", ...decryptArgs],
      env: { GNUPGHOME: home },
      package: "gnupg",
      extension: ".gpg",
      cleanup: () => removeHome(home, true),
    };
  } catch (error) {
    await removeHome(home, true);
    throw error;
  }
}

interface KeyInfo {
  fingerprint: string;
  userIds: string[];
  /** The key has a usable (valid, unexpired, unrevoked) encryption subkey. */
  canEncrypt: boolean;
}

/** Runs gpg (in GNUPGHOME `home` when given, else the user's); a missing gpg is a MissingToolError. */
async function gpg(args: string[], home: string | undefined, input?: string): Promise<RunResult> {
  const result = await run(["gpg", "--batch", "--no-tty", ...args], {
    env: home === undefined ? {} : { GNUPGHOME: home },
    input,
    timeoutMs: 60_000,
  });
  // 127: the shell that starts gpg found no such program.
  if (result.code === 127) throw new MissingToolError("gpg", "gnupg");
  if (result.timedOut) throw new SourceError(`gpg ${args[0]} did not finish within 60 s and was stopped`);
  return result;
}

/** Keys matching `patterns` (all keys when empty), from `gpg --with-colons`; [] when none match. */
async function listKeys(home: string | undefined, patterns: string[], secret: boolean): Promise<KeyInfo[]> {
  const list = secret ? "--list-secret-keys" : "--list-keys";
  const result = await gpg(["--no-autostart", "--with-colons", "--fixed-list-mode", list, "--", ...patterns], home);
  if (result.code !== 0) return [];
  const keys: KeyInfo[] = [];
  let current: KeyInfo | undefined;
  let wantFingerprint = false;
  for (const line of result.stdout.split("\n")) {
    const fields = line.split(":");
    if (fields[0] === "pub" || fields[0] === "sec") {
      current = { fingerprint: "", userIds: [], canEncrypt: (fields[11] ?? "").includes("E") };
      keys.push(current);
      wantFingerprint = true;
    } else if (fields[0] === "fpr" && current && wantFingerprint) {
      current.fingerprint = fields[9];
      wantFingerprint = false;
    } else if (fields[0] === "uid" && current) {
      current.userIds.push(fields[9].replace(/\\x([0-9a-f]{2})/gi, (_, hex) => String.fromCharCode(parseInt(hex, 16))));
    } else if (fields[0] === "sub" || fields[0] === "ssb") {
      wantFingerprint = false;
    }
  }
  return keys;
}

/** Throws unless `recipient` names at least one key able to encrypt, in `home` (keyFile's keys) or the user's keyring. */
async function checkRecipient(recipient: string, home: string | undefined, keyFile: string | undefined) {
  const keys = await listKeys(home, [recipient], false);
  if (keys.length === 0) {
    if (keyFile !== undefined) {
      const available = (await listKeys(home, [], false)).map(describeKey).join("; ");
      throw new SourceError(
        `gpg(): recipient "${recipient}" is not among the keys in keyFile ${keyFile} (it holds: ${available}): ` +
          `add its public key to the file (gpg --armor --export ${recipient} >> ${keyFile}) or fix the recipient`,
      );
    }
    throw new SourceError(
      `gpg(): recipient "${recipient}" has no public key in the keyring of this user ` +
        `(${process.env.GNUPGHOME ?? "~/.gnupg"}): import it (gpg --import KEYFILE), ` +
        "or set keyFile to a file holding the public key",
    );
  }
  if (!keys.some((key) => key.canEncrypt)) throw new SourceError(cannotEncrypt(keys[0], `recipient "${recipient}"`));
}

/** Encrypts a probe to the imported key (armored: text) and decrypts it with the configured passphrase. */
async function checkSecretKey(
  home: string,
  keys: KeyInfo[],
  decryptArgs: string[],
  keyName: string,
  passphraseName: string | undefined,
): Promise<void> {
  const probe = "backupctl key check\n";
  const encrypted = await gpg(
    [...encryptOptions, "--armor", "--encrypt", ...keys.flatMap((key) => ["--recipient", key.fingerprint])],
    home,
    probe,
  );
  if (encrypted.code !== 0) {
    throw new SourceError(
      `gpg(): the private key in secretKey ${keyName} cannot decrypt (no usable encryption subkey: expired, ` +
        `revoked or sign-only?)${stderrOf(encrypted)}`,
    );
  }
  const decrypted = await gpg(decryptArgs, home, encrypted.stdout);
  if (decrypted.code === 0 && decrypted.stdout === probe) return;
  throw new SourceError(
    passphraseName === undefined
      ? `gpg(): the private key in secretKey ${keyName} cannot be used: it is protected by a passphrase, so set ` +
        `passphrase: env("NAME") or file("PATH")${stderrOf(decrypted)}`
      : `gpg(): passphrase ${passphraseName} does not unlock the private key in secretKey ${keyName}` +
        stderrOf(decrypted),
  );
}

function describeKey(key: KeyInfo): string {
  return `${key.userIds[0] ?? "(no user id)"} ${key.fingerprint}`;
}

function cannotEncrypt(key: KeyInfo, what: string): string {
  return `gpg(): ${what} (${describeKey(key)}) cannot encrypt: it is expired, revoked or has no encryption subkey; ` +
    "extend or replace the key and export it again";
}

function stderrOf(result: RunResult): string {
  const text = redact(result.stderr).trim();
  return text ? `:\n    ${text.split("\n").slice(-5).join("\n    ")}` : "";
}

/** A fresh 0700 GNUPGHOME under `privateDir` (named like private files, so leftovers of a crash are recognizable). */
function privateHome(privateDir: string): string {
  return createPrivateFolder(privateDir, "gnupg");
}

function writeSecret(home: string, name: string, content: string): string {
  const path = join(home, name);
  writeFileSync(path, content, { mode: 0o600 });
  return path;
}

/** Removes a private GNUPGHOME, first stopping its gpg-agent (decryption starts one) when `agent` is set. */
async function removeHome(home: string, agent: boolean): Promise<void> {
  // Without gpgconf (exit 127) the agent exits by itself once its home is gone.
  if (agent && existsSync(home)) {
    await run(["gpgconf", "--kill", "gpg-agent"], { env: { GNUPGHOME: home }, timeoutMs: 10_000 });
  }
  // gpgconf returns before the agent has exited, and an exiting agent still writes into its home (random_seed): a
  // removal racing with it can fail or leave files behind, so it is retried until the folder is gone (up to 5 s).
  for (let attempt = 1;; attempt++) {
    try {
      rmSync(home, { recursive: true, force: true });
    } catch {
      // retried below
    }
    if (!existsSync(home) || attempt === 50) return;
    await sleep(100);
  }
}
