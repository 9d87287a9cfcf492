/**
 * What to do about each kind of restic failure (repository/restic-errors.ts), for one repository: which secret to
 * check, which folder to free or remount. The words end up in the error's message and in plan warnings.
 */
import { describeSecret } from "../config/secrets.ts";
import type { ResticRepository } from "../config/types.ts";
import type { ResticFailureKind } from "./restic-errors.ts";

/**
 * What to do about a kind of failure of the repository `spec`, in a few words; empty when nothing is known. `command`
 * (restic's, e.g. "restore") tells a restore's full disk, which is where it writes, from a backup's.
 */
export function resticAdvice(kind: ResticFailureKind, spec: ResticRepository, command = ""): string {
  switch (kind) {
    case "wrong-password":
      return `the password does not open this repository: check ${describePassword(spec)}`;
    case "host-key":
      return "ssh does not trust the server's host key: put its known_hosts line (ssh-keyscan -p PORT HOST) in " +
        "ssh.knownHosts, or check that the server is the one you expect";
    case "refused":
      return spec.ssh
        ? `the sftp server refused the key: check that ${describeSecret(spec.ssh.key)} is the private ` +
          `key whose public half is in the server's authorized_keys${
            spec.ssh.passphrase ? ` and that ${describeSecret(spec.ssh.passphrase)} is its passphrase` : ""
          }`
        : `the backend refused the credentials: check ${describeUrlCredentials(spec)}`;
    case "unreachable":
      return "the backend cannot be reached: check that the server is up and the address is right";
    case "not-initialized":
      return "no repository there: run `backupctl apply` to initialize it, or check the url";
    case "read-only":
      return "the file system restic writes to is read-only (the path restic names): remount it read-write; a " +
        "repository must be writable even to be read, since restic writes a lock file there";
    case "permission-denied":
      return "restic may not access the path it names: give the user running backupctl read and write access to " +
        "the repository (the owner and mode of its folders and files)";
    case "no-space":
      return /^(restore|dump)\b/.test(command)
        ? "a disk is full where the restore writes (the path restic names; a drill's scratch folder is in the state " +
          "folder's tmp/): free space there or restore elsewhere, then try again"
        : "a disk is full: free space in restic's temporary folder (TMPDIR, /tmp by default) or where the " +
          "repository lives, then run apply again";
    case "locked":
      return "another restic process holds the repository lock; try again when it has finished, or run " +
        "`backupctl unlock` if no restic runs anywhere";
    case "unknown-flag":
      return "this restic does not know a flag backupctl passed it (`restic version` says which version runs): " +
        "`readConcurrency` needs restic 0.15 or later; an `extraArgs` flag may be misspelt or newer than this " +
        "restic. Upgrade restic, or remove the setting";
    case "other":
      return "";
  }
}

function describeUrlCredentials(spec: ResticRepository): string {
  const where = typeof spec.url === "string" ? "the url" : `the url in ${describeSecret(spec.url)}`;
  const env = Object.keys(spec.env ?? {});
  return env.length > 0 ? `${where} and the repository's env (${env.join(", ")})` : where;
}

function describePassword(spec: ResticRepository): string {
  return describeSecret(spec.password);
}
