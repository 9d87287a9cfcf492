/**
 * Whether a failed program's own output names a cause that goes away by waiting: a server that refused or dropped the
 * connection, a name that did not resolve, an overloaded server. Read once, where the program's stderr is at hand, to
 * set an error's `transient` field; restic's failures are classified by repository/restic-errors.ts instead. A wrong
 * password, a missing file, a read-only or full disk, a permission would fail the same way again.
 */

const transientText = new RegExp(
  [
    "connection refused",
    "connection reset",
    "connection timed out",
    "i/o timeout",
    "no route to host",
    "network is unreachable",
    "temporary failure in name resolution",
    // Not "unable to create lock": restic 0.14 ends with it whatever kept it from writing its lock (a read-only file
    // system, a permission): only a lock another restic holds goes away by waiting.
    "repository is already locked",
    "server closed the connection unexpectedly",
    "could not connect to server",
    "too many connections",
    "\\b(502|503|504)\\b",
    "ssh command exited",
  ].join("|"),
  "i",
);
const permanentText =
  /wrong password|no key found|password authentication failed|access denied|\b(401|403)\b|unauthori[sz]ed|read-only file system|permission denied|operation not permitted|no space left on device|disk quota exceeded/i;

/** Whether a program that failed with this stderr may succeed if run again later. */
export function transientOutput(stderr: string): boolean {
  return transientText.test(stderr) && !permanentText.test(stderr);
}
