/** The configuration schema of repositories (restic()) and of the encryption of dumps (gpg(), age()). */
import { z } from "zod";
import { extraArgs, priorityShape, resticTuningShape, s3Schema } from "./schema-restic.ts";
import { describeTyped, envMap, maybeSecret, nonEmpty, secretRef, strict } from "./schema-values.ts";

const resticSchema = strict({
  type: z.literal("restic"),
  url: maybeSecret.describe(
    "Any restic repository URL (`local:`, `sftp:`, `rest:`, `s3:`, `b2:`, `azure:`, `gs:`, `swift:`, `rclone:`); " +
      "anything else is a path, relative to the config's folder. May be a secret reference",
  ),
  password: secretRef.describe("The repository password"),
  env: envMap.optional().describe(
    "Extra environment for restic (`AWS_ACCESS_KEY_ID`, `B2_ACCOUNT_KEY`, …); values may be secret references",
  ),
  ...resticTuningShape,
  ...priorityShape(
    "every restic command on this repository (a project's own wins for its backups, copies and forgets)",
  ),
  extraArgs: extraArgs(
    "every restic command on this repository (global flags only)",
    '["--tls-client-cert", "client.pem"]',
  ),
  cacert: nonEmpty.optional().describe(
    "A PEM file of the certificate authority that signed the server's certificate (`--cacert`), for a private " +
      "S3 or REST server; relative paths start at the config's folder",
  ),
  s3: s3Schema.optional().describe(
    "Credentials and addressing of an `s3:` repository: the keys reach restic only in its environment, never argv",
  ),
  prune: strict({
    maxUnused: z.string().regex(/^(\d+(\.\d+)?%|\d+[KMGT]?|unlimited)$/, {
      error: () => 'expected a share such as "5%", a size such as "2G", or "unlimited"',
    }).optional().describe(
      "How much unused space a prune may leave in the repository (`restic prune --max-unused`; restic's default " +
        '`"5%"`): `"0"` repacks until nothing unused is left, `"unlimited"` repacks only what is needed',
    ),
    maxRepackSize: z.string().regex(/^\d+[KMGT]?$/, {
      error: () => 'expected a size such as "500M" or "2G"',
    }).optional().describe(
      'The most a prune repacks in one run (`restic prune --max-repack-size`, e.g. `"2G"`): a long prune in ' +
        "shorter steps; what is left is repacked by the next prunes",
    ),
  }).optional().describe(
    "How prunes of this repository free space (when it is pruned is each project's `prune.every` and its forgets)",
  ),
  options: z.record(nonEmpty, z.string()).optional().describe(
    'Extra restic options (`-o key=value`), e.g. `{ "sftp.command": "ssh -p 2222 backup@host -s sftp" }`; plain ' +
      "strings on restic's command line: never a secret",
  ),
  ssh: strict({
    key: secretRef.describe(
      'The private key in OpenSSH format (its text, not a path), e.g. `file("/run/secrets/backup_ssh_key")` or ' +
        '`env("BACKUP_SSH_KEY")`',
    ),
    passphrase: secretRef.optional().describe("The key's passphrase, when it has one"),
    knownHosts: z.union([nonEmpty, z.array(nonEmpty).min(1)]).optional().describe(
      "The server's known_hosts lines (as `ssh-keyscan -p PORT host` prints them); only these keys are trusted. " +
        "Without them the system's and the user's known_hosts files are used",
    ),
    hostKeyChecking: z.enum(["yes", "accept-new", "no"]).optional().describe(
      'ssh\'s `StrictHostKeyChecking` (default `"yes"`: an unknown or changed host key fails)',
    ),
  }).optional().describe("SSH access for an `sftp:` repository: the key (and its passphrase) as secret references"),
}).describe("A restic repository: where backups go, and how to reach it");
export const repositorySchema = z.discriminatedUnion("type", [resticSchema], {
  error: (issue) => `expected a repository made by restic(), got ${describeTyped(issue.input)}`,
});

const gpgSchema = strict({
  type: z.literal("gpg"),
  recipient: z.union([nonEmpty, z.array(nonEmpty).min(1)]).optional().describe(
    "Key ids, fingerprints or emails of the recipients (public keys must be in the keyring or in `keyFile`)",
  ),
  keyFile: nonEmpty.optional().describe(
    "A file holding the recipients' public keys (armored or binary); relative paths start at the config's folder. " +
      "Without `recipient`, every key in it is used",
  ),
  secretKey: secretRef.optional().describe("The armored private key used to decrypt on restore and in drills"),
  passphrase: secretRef.optional().describe("Passphrase of the private key"),
}).refine((value) => value.recipient !== undefined || value.keyFile !== undefined, {
  error: () => "gpg() needs a recipient or a keyFile with the public key to encrypt to",
}).describe("Encrypts each dump with gpg; needs `recipient` or `keyFile`");
const ageSchema = strict({
  type: z.literal("age"),
  recipients: z.array(nonEmpty).min(1).optional().describe(
    "age recipients (`age1…` public keys or SSH public keys)",
  ),
  recipientsFile: nonEmpty.optional().describe(
    "A file with one recipient per line (`#` comments allowed); relative paths start at the config's folder",
  ),
  identity: secretRef.optional().describe("The identity (private key) used to decrypt on restore and in drills"),
}).refine((value) => value.recipients !== undefined || value.recipientsFile !== undefined, {
  error: () => "age() needs recipients or a recipientsFile to encrypt to",
}).describe("Encrypts each dump with age; needs `recipients` or `recipientsFile`");
export const encryptionSchema = z.discriminatedUnion("type", [gpgSchema, ageSchema], {
  error: (issue) => `expected encryption made by gpg() or age(), got ${describeTyped(issue.input)}`,
});
