/**
 * SSH access for `sftp:` repositories whose key is a secret reference (`ssh: { key, passphrase?, knownHosts? }`).
 *
 * restic 0.14 starts `ssh [-p port] [-l user] host -s sftp` by name from PATH. For each restic command that opens such
 * a repository, a private 0700 folder under the state folder gets the key (0600), an ssh_config with one `Match`
 * block per repository (IdentityFile, IdentitiesOnly, host key checking) and an `ssh` wrapper that runs the real ssh
 * with that config; the wrapper's folder goes first on restic's PATH. Because the blocks match on host and user,
 * `restic copy` between two sftp servers with different keys works, which one `-o sftp.command` could not do.
 * A passphrase reaches ssh through an askpass script that prints a variable of restic's environment: never argv,
 * never a file. Everything is removed when the command ends.
 */
import { accessSync, constants, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { delimiter, join } from "node:path";
import { BackupctlError, MissingToolError } from "../errors.ts";
import { resolveSecret } from "../config/secrets.ts";
import type { ResticSsh } from "../config/types.ts";
import { createPrivateFolder } from "../exec/private-file.ts";

/** Where an sftp repository's server is, as restic reads the URL. */
export interface SftpTarget {
  host: string;
  user?: string;
  port?: number;
}

/**
 * Reads `sftp:user@host:/path`, `sftp:host:path` and `sftp://user@host:port//path` (restic's two forms).
 * Returns undefined for any other URL.
 */
export function parseSftpUrl(url: string): SftpTarget | undefined {
  if (url.startsWith("sftp://")) {
    const authority = url.slice("sftp://".length).split("/")[0];
    const at = authority.lastIndexOf("@");
    const user = at >= 0 ? decodeURIComponent(authority.slice(0, at)) : undefined;
    const hostPort = authority.slice(at + 1);
    const match = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(hostPort);
    if (!match) return undefined;
    return { host: match[1].replace(/^\[|\]$/g, ""), user, port: match[2] ? Number(match[2]) : undefined };
  }
  if (!url.startsWith("sftp:")) return undefined;
  const rest = url.slice("sftp:".length);
  const match = /^(?:([^@/]+)@)?(\[[^\]]+\]|[^:/]+):/.exec(rest);
  if (!match) return undefined;
  return { host: match[2].replace(/^\[|\]$/g, ""), user: match[1] };
}

/** One repository's part of an ssh setup. */
export interface SshRepository {
  /** The repository's name, for messages. */
  name: string;
  /** The resolved URL. */
  url: string;
  ssh: ResticSsh;
  configDir: string;
}

export interface SshSession {
  /** Variables to add to restic's environment (PATH, askpass, passphrases). */
  env: Record<string, string>;
  /** Removes the private folder; safe to call twice. */
  remove(): void;
}

const none: SshSession = { env: {}, remove: () => {} };

/** Host names and users that can go into an ssh_config `Match` line unquoted and unambiguous. */
const safeToken = /^[A-Za-z0-9._:%-]+$/;

/**
 * Writes the key files, config and wrapper for the repositories that have `ssh` settings. Synchronous, so a streamed
 * backup can start its restic without waiting.
 */
export function openSsh(repositories: SshRepository[], privateDir: string | undefined): SshSession {
  const withSsh = repositories.filter((repository) => repository.ssh);
  if (withSsh.length === 0) return none;
  if (!privateDir) throw new Error("an sftp repository with ssh settings needs a private folder for its key");
  const realSsh = findProgram("ssh");
  if (!realSsh) throw new MissingToolError("ssh", "openssh-client");

  const dir = createPrivateFolder(privateDir, "ssh");
  try {
    const env: Record<string, string> = {};
    const blocks: string[] = [];
    const askpassCases: string[] = [];
    withSsh.forEach((repository, index) => {
      const target = parseSftpUrl(repository.url);
      if (!target) {
        throw new BackupctlError(
          `repository ${repository.name}: ssh settings apply to sftp: repositories only ` +
            "(sftp:user@host:/path or sftp://user@host:port//path)",
        );
      }
      for (const [what, value] of [["host", target.host], ["user", target.user]] as const) {
        if (value !== undefined && !safeToken.test(value)) {
          throw new BackupctlError(
            `repository ${repository.name}: the sftp ${what} in the url has characters ssh_config cannot match on`,
          );
        }
      }
      const keyFile = join(dir, `key-${index}`);
      const key = resolveSecret(repository.ssh.key, repository.configDir).replace(/\r\n/g, "\n");
      writeFileSync(keyFile, key.endsWith("\n") ? key : `${key}\n`, { mode: 0o600 });
      // The port is matched too (ssh passes it as %p, 22 by default), so two servers on one host stay apart.
      const lines = [
        `Match host ${target.host}${target.user ? ` user ${target.user}` : ""} exec "test %p = ${target.port ?? 22}"`,
        `  IdentityFile "${keyFile}"`,
        "  IdentitiesOnly yes",
        "  PasswordAuthentication no",
        "  KbdInteractiveAuthentication no",
        `  StrictHostKeyChecking ${repository.ssh.hostKeyChecking ?? "yes"}`,
      ];
      if (repository.ssh.knownHosts !== undefined) {
        const knownHostsFile = join(dir, `known_hosts-${index}`);
        const entries = [repository.ssh.knownHosts].flat().join("\n");
        writeFileSync(knownHostsFile, `${entries}\n`, { mode: 0o600 });
        lines.push(`  UserKnownHostsFile "${knownHostsFile}"`, "  GlobalKnownHostsFile none");
      }
      if (repository.ssh.passphrase) {
        const variable = `BACKUPCTL_SSH_PASSPHRASE_${index}`;
        env[variable] = resolveSecret(repository.ssh.passphrase, repository.configDir);
        askpassCases.push(`  *"${keyFile}"*) printf '%s\\n' "$${variable}" ;;`);
      }
      blocks.push(lines.join("\n"));
    });

    const configFile = join(dir, "ssh_config");
    // The operator's own settings (ProxyJump, ciphers, …) still apply, after ours: ssh keeps the first value it reads.
    // Without a passphrase to give, ssh must never ask anything (a terminal prompt would hang an apply); with one,
    // every question goes to the askpass script, which answers only the passphrase question.
    const config = [
      ...blocks,
      "Match all",
      ...(askpassCases.length === 0 ? ["  BatchMode yes"] : []),
      "  Include ~/.ssh/config",
      "  Include /etc/ssh/ssh_config",
      "",
    ];
    writeFileSync(configFile, config.join("\n"), { mode: 0o600 });

    const bin = join(dir, "bin");
    mkdirSync(bin, { mode: 0o700 });
    writeFileSync(join(bin, "ssh"), `#!/bin/sh\nexec '${realSsh}' -F '${configFile}' "$@"\n`, { mode: 0o700 });
    env.PATH = `${bin}${delimiter}${process.env.PATH ?? ""}`;

    if (askpassCases.length > 0) {
      const askpass = join(dir, "askpass");
      // ssh asks "Enter passphrase for key '<file>': "; anything else (a password, a host key question) gets nothing.
      const script = ["#!/bin/sh", 'case "$1" in', ...askpassCases, "  *) exit 1 ;;", "esac", ""].join("\n");
      writeFileSync(askpass, script, { mode: 0o700 });
      env.SSH_ASKPASS = askpass;
      env.SSH_ASKPASS_REQUIRE = "force";
    }
    let removed = false;
    return {
      env,
      remove: () => {
        if (removed) return;
        removed = true;
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

/** The first executable of that name on PATH. */
function findProgram(program: string): string | undefined {
  for (const folder of (process.env.PATH ?? "").split(delimiter)) {
    if (!folder) continue;
    const candidate = join(folder, program);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}
