/**
 * Encryption of dump streams before restic, and decryption on restore: `encrypt: gpg(…)` or `age(…)` becomes a
 * {@link StreamFilter}, a program between the producer and `restic backup --stdin` (see apply/pipeline.ts). Only dump
 * sources pass through it; files sources rely on restic's own repository encryption.
 *
 * Building a filter checks what can be checked before any process starts (key files exist, recipients have usable
 * keys, a private key opens with its passphrase) and throws a {@link SourceError} saying what to do. Keys and
 * passphrases never appear in argv: they live in private files under `privateDir`, removed by `cleanup()`.
 */
import type { Encryption } from "../config/types.ts";
import { SourceError } from "../errors.ts";
import { ageDecryptionFilter, ageEncryptionFilter } from "./age.ts";
import { gpgDecryptionFilter, gpgEncryptionFilter } from "./gpg.ts";
import type { FilterContext, StreamFilter } from "./types.ts";

/** The filter that encrypts a dump for the recipients of `encrypt`; call its `cleanup()` when the stage ends. */
export async function encryptionFilter(encrypt: Encryption, context: FilterContext): Promise<StreamFilter> {
  switch (encrypt.type) {
    case "gpg":
      return await gpgEncryptionFilter(encrypt, context);
    case "age":
      return ageEncryptionFilter(encrypt, context);
    default:
      return unknownType(encrypt);
  }
}

/**
 * The filter that decrypts a dump encrypted with `encrypt`, for restores and drills: needs the private key
 * (`secretKey` and perhaps `passphrase` for gpg, `identity` for age). Call its `cleanup()` when done.
 */
export async function decryptionFilter(encrypt: Encryption, context: FilterContext): Promise<StreamFilter> {
  switch (encrypt.type) {
    case "gpg":
      return await gpgDecryptionFilter(encrypt, context);
    case "age":
      return ageDecryptionFilter(encrypt, context);
    default:
      return unknownType(encrypt);
  }
}

function unknownType(encrypt: never): never {
  throw new SourceError(`unknown encryption type ${JSON.stringify((encrypt as { type?: unknown }).type)}`);
}
