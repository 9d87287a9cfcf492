/**
 * What `--print-commands` prints to reach a repository by hand: the shell lines that set it up (RESTIC_REPOSITORY, the
 * password, its env, an ssh-agent for its key) with every secret named by where it is, never by its value, and the
 * `restic` words with its options. Pure text: nothing here runs.
 */
import { collectSecretRefs, describeSecret, secretPath, shellSecret } from "../config/secrets.ts";
import type { ResticRepository } from "../config/types.ts";
import { parseSftpUrl } from "./ssh.ts";
import { globalFlags, resticOptions, resticVariables } from "./restic-flags.ts";

/** Any env variable restic reads that we must not inherit from the caller's environment. */
export const inheritedResticVariables = [
  "RESTIC_REPOSITORY",
  "RESTIC_REPOSITORY_FILE",
  "RESTIC_PASSWORD_FILE",
  "RESTIC_PASSWORD_COMMAND",
  "RESTIC_KEY_HINT",
];

/** What the manual commands of one repository are made from. */
export interface ManualSetting {
  name: string;
  spec: ResticRepository;
  configDir: string;
  /** The repository's URL as restic gets it (relative paths resolved). */
  url: string;
}

/**
 * The shell lines that set this repository up for a manual restic (for --print-commands): RESTIC_REPOSITORY, the
 * password and the repository's env, each secret named by where it is (`RESTIC_PASSWORD_FILE=PATH`, a variable's
 * `"$NAME"`), never by its value; an sftp repository's ssh settings become an ssh-agent and a known_hosts file.
 * Use the `restic` words of {@link manualRestic} in the commands that follow.
 */
export function manualEnvironment(setting: ManualSetting): string[] {
  const { spec, configDir } = setting;
  const lines: string[] = [];
  const referenced = new Set(
    collectSecretRefs(spec).flatMap(({ ref }) => ref.secret === "env" ? [ref.name] : []),
  );
  const set = new Set<string>();
  const url = spec.url;
  if (typeof url !== "string") {
    if (url.secret === "env") lines.push(`export RESTIC_REPOSITORY=${shellSecret(url, configDir)}`);
    else lines.push(`export RESTIC_REPOSITORY_FILE=${shellWord(secretPath(url, configDir))}`);
    set.add(url.secret === "env" ? "RESTIC_REPOSITORY" : "RESTIC_REPOSITORY_FILE");
  } else {
    const plain = setting.url;
    const credentials = /^([a-z][a-z0-9+.-]*:(?:[a-z][a-z0-9+.-]*:)?\/\/[^/\s:@]+:)([^@\s/]+)(@.*)$/i.exec(plain);
    if (credentials) {
      // The password is written in the config itself: the operator sets it by hand rather than see it printed.
      lines.push(
        "# The url's password is written in the config (better: make the url an env() secret); set",
        "# RESTIC_URL_PASSWORD to it, URL-encoded:",
        `export RESTIC_REPOSITORY=${shellWord(credentials[1])}"\${RESTIC_URL_PASSWORD:?set RESTIC_URL_PASSWORD first}"${
          shellWord(credentials[3])
        }`,
      );
    } else lines.push(`export RESTIC_REPOSITORY=${shellWord(plain)}`);
    set.add("RESTIC_REPOSITORY");
  }
  const password = spec.password;
  if (password.secret === "file") {
    lines.push(`export RESTIC_PASSWORD_FILE=${shellWord(secretPath(password, configDir))}`);
    set.add("RESTIC_PASSWORD_FILE");
  } else {
    lines.push(`export RESTIC_PASSWORD=${shellSecret(password, configDir)}`);
    set.add("RESTIC_PASSWORD");
  }
  for (const [key, value] of Object.entries(resticVariables(spec))) {
    lines.push(`export ${key}=${typeof value === "string" ? shellWord(value) : shellSecret(value, configDir)}`);
    set.add(key);
  }
  // A variable of the operator's shell must not pick another repository or password than these.
  const stray = [...inheritedResticVariables, "RESTIC_PASSWORD"].filter((key) => !set.has(key) && !referenced.has(key));
  lines.unshift(`unset ${stray.join(" ")}`);
  const ssh = spec.ssh;
  if (ssh && spec.options?.["sftp.command"] === undefined) {
    const passphrase = ssh.passphrase ? `   # ssh-add asks for its passphrase: ${describeSecret(ssh.passphrase)}` : "";
    if (ssh.key.secret === "env") {
      // A key in a variable goes to an ssh-agent of its own, never into a file.
      lines.push("# ssh logs in to the sftp server with the repository's key, held by an ssh-agent of its own:");
      lines.push('eval "$(ssh-agent -s)" >/dev/null');
      lines.push(`printf '%s\\n' ${shellSecret(ssh.key, configDir)} | ssh-add -q -${passphrase}`);
    } else if (passphrase) lines.push(`# ssh asks for the key's passphrase: ${describeSecret(ssh.passphrase!)}`);
    if (ssh.knownHosts !== undefined) {
      lines.push(
        `printf '%s\\n' ${[ssh.knownHosts].flat().map(shellWord).join(" ")} > ${
          shellWord(knownHostsFile(setting.name))
        }`,
      );
    }
  }
  return lines;
}

/**
 * `restic` and this repository's flags (`-o key=value`, an sftp.command for its ssh settings, bandwidth, compression,
 * extraArgs), as shell words.
 */
export function manualRestic(setting: ManualSetting): string {
  const { spec, configDir } = setting;
  const options = resticOptions(spec);
  const ssh = spec.ssh;
  const target = ssh && typeof spec.url === "string" ? parseSftpUrl(setting.url) : undefined;
  if (ssh && target && options["sftp.command"] === undefined) {
    const command = [
      "ssh",
      ...(ssh.key.secret === "file" ? [`-i ${secretPath(ssh.key, configDir)}`, "-o IdentitiesOnly=yes"] : []),
      "-o PasswordAuthentication=no",
      `-o StrictHostKeyChecking=${ssh.hostKeyChecking ?? "yes"}`,
      ...(ssh.knownHosts === undefined ? [] : [`-o UserKnownHostsFile=${knownHostsFile(setting.name)}`]),
      ...(target.port === undefined ? [] : [`-p ${target.port}`]),
      ...(target.user === undefined ? [] : [`-l ${target.user}`]),
      target.host,
      "-s sftp",
    ].join(" ");
    options["sftp.command"] = command;
  }
  // The same flags backupctl's own commands get, less --no-cache (a manual restic may use the user's cache).
  const flags = globalFlags(spec, configDir, options).filter((flag) => flag !== "--no-cache");
  return ["restic", ...flags.map(shellWord)].join(" ");
}

/** The known_hosts file the printed commands write for the repository's ssh settings. */
function knownHostsFile(name: string): string {
  return `known_hosts-${name.replace(/[^A-Za-z0-9_.-]/g, "_")}`;
}

/** A word for sh: left as it is when safe, else single-quoted. */
export function shellWord(value: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(value) ? value : `'${value.replaceAll("'", `'"'"'`)}'`;
}
