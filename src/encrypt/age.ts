/**
 * age: `age --encrypt -r RECIPIENT… -R FILE` encrypts to public keys only (no private material on the backup host);
 * `age --decrypt -i FILE` decrypts with the identity, written to a private file (0600 in a 0700 folder) for the time of
 * the stage. The identity never appears in argv or in messages.
 */
import { existsSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import { describeSecret, resolveSecret } from "../config/secrets.ts";
import type { AgeEncryption } from "../config/types.ts";
import { SourceError } from "../errors.ts";
import { writePrivateFile } from "../exec/private-file.ts";
import type { FilterContext, StreamFilter } from "./types.ts";

/** Recipient kinds age 1.x understands: native (and plugin) keys, SSH ed25519 and RSA public keys. */
const recipientPattern = /^(age1[0-9a-z]+|ssh-ed25519 \S+|ssh-rsa \S+)/;

/** `age --encrypt` to `recipients` and every recipient in `recipientsFile`. */
export function ageEncryptionFilter(encrypt: AgeEncryption, context: FilterContext): StreamFilter {
  const argv = ["age", "--encrypt"];
  (encrypt.recipients ?? []).forEach((recipient, index) => {
    const value = recipient.trim();
    if (/^AGE-SECRET-KEY-/i.test(value)) {
      // Never repeat it: it is a private key put where a public one belongs.
      throw new SourceError(
        `age(): recipients[${index}] is an age identity (a private key), not a recipient: use its public key ` +
          "(`age-keygen -y KEYFILE` prints it), and keep the identity secret (identity: env(…) or file(…))",
      );
    }
    if (!recipientPattern.test(value)) {
      throw new SourceError(
        `age(): recipients[${index}] "${value}" is not an age recipient: expected a public key "age1…" ` +
          "(`age-keygen -y KEYFILE`) or an SSH public key (ssh-ed25519 … or ssh-rsa …)",
      );
    }
    argv.push("-r", value);
  });
  if (encrypt.recipientsFile !== undefined) {
    const path = absolute(encrypt.recipientsFile, context.configDir);
    if (!existsSync(path)) {
      throw new SourceError(
        `age(): recipientsFile ${path} does not exist: create it with one recipient per line ` +
          "(age1… public keys from `age-keygen -y`, or SSH public keys), or fix the path " +
          `(relative paths start at the config's folder ${context.configDir})`,
      );
    }
    argv.push("-R", path);
  }
  if (argv.length === 2) {
    throw new SourceError("age() needs recipients or a recipientsFile to encrypt to");
  }
  return { argv, package: "age", extension: ".age" };
}

/** `age --decrypt -i FILE`, FILE a private copy of `identity`; `cleanup()` removes it. */
export function ageDecryptionFilter(encrypt: AgeEncryption, context: FilterContext): StreamFilter {
  if (encrypt.identity === undefined) {
    throw new SourceError(
      'age(): decrypting (restore, drills) needs the private key: set identity: env("NAME") or file("PATH") ' +
        "holding the identity file made by `age-keygen -o FILE` (an AGE-SECRET-KEY-1… line)",
    );
  }
  const identity = resolveSecret(encrypt.identity, context.configDir);
  if (identity.includes("age-encryption.org/v1")) {
    throw new SourceError(
      `age(): identity ${describeSecret(encrypt.identity)} is a passphrase-encrypted identity file, which needs a ` +
        "terminal to open: give the plain identity (keep it in a secret store instead)",
    );
  }
  if (!identity.includes("AGE-SECRET-KEY-") && !identity.includes("PRIVATE KEY")) {
    throw new SourceError(
      `age(): identity ${describeSecret(encrypt.identity)} holds no age identity (AGE-SECRET-KEY-1…, made by ` +
        "`age-keygen -o FILE`) nor an SSH private key",
    );
  }
  const file = writePrivateFile(context.privateDir, "age-identity.txt", `${identity}\n`);
  return { argv: ["age", "--decrypt", "-i", file.path], package: "age", extension: ".age", cleanup: file.remove };
}

function absolute(path: string, configDir: string): string {
  return isAbsolute(path) ? path : resolve(configDir, path);
}
