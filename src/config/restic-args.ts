/**
 * The guard of `extraArgs`, restic's escape hatch: arguments the config passes to restic as they are. An argument
 * that would hand restic another repository or password, read a secret, bypass a lock or TLS verification, or undo
 * what backupctl relies on (its tags, host and time, its JSON output, a real backup) is refused with the reason and
 * the typed setting to use instead. Pure: the schema (schema-restic.ts) calls it.
 */

/** A refused flag: the long name (or names) it goes by, and why, ending with what to write instead. */
interface Refusal {
  /** Long flags without their `--`; a name ending in `*` also covers every flag starting with it. */
  long: string[];
  /** The one-letter forms (`-p`, `-r`). */
  short?: string[];
  why: string;
}

const credentials = "backupctl gives restic the repository and its password itself (url, password)";
const refusals: Refusal[] = [
  { long: ["password*"], short: ["p"], why: `${credentials}; remove it` },
  { long: ["repo*", "repository-file"], short: ["r"], why: `${credentials}; remove it` },
  {
    long: ["from-repo*", "from-password*", "from-key-hint"],
    why: `copies get their source from the config; remove it`,
  },
  {
    long: ["key-hint"],
    why: "a key hint goes with a password backupctl does not manage; remove it (restic tries every key)",
  },
  {
    long: ["option"],
    short: ["o"],
    why: 'extended options go in `options: { "key": "value" }` (s3 settings in `s3`), where backupctl can check them',
  },
  {
    long: ["no-lock"],
    why: "backupctl relies on restic's locks to keep a prune from deleting what a backup is writing; remove it",
  },
  {
    long: ["insecure-tls"],
    why: "it would send the repository's credentials to any server that answers; give the server's certificate " +
      "authority in `cacert` instead",
  },
  {
    long: ["tag", "host", "time"],
    short: ["H"],
    why: "backupctl sets the snapshot's tags, host and time itself (retention groups and restores rely on them); " +
      "remove it",
  },
  { long: ["dry-run"], short: ["n"], why: "a dry run stores nothing, yet would count as a backup; remove it" },
  { long: ["help"], short: ["h"], why: "restic would print its help instead of running; remove it" },
  {
    long: ["stdin*", "files-from*"],
    why: "what to back up is the source's (its paths or its dump); use the source's settings instead",
  },
  {
    long: ["compression", "pack-size", "limit-upload", "limit-download", "read-concurrency", "cacert", "no-cache"],
    why: "it has a typed setting (compression, packSize, limitUpload, limitDownload, readConcurrency, cacert): " +
      "use that, so that precedence and checks apply",
  },
];

/** Why `flag` (a long name without `--`) is refused, if it is. */
function longRefusal(flag: string): string | undefined {
  for (const refusal of refusals) {
    const matches = refusal.long.some((name) =>
      name.endsWith("*") ? flag.startsWith(name.slice(0, -1)) : flag === name
    );
    if (matches) return refusal.why;
  }
  return undefined;
}

/** The one-letter flags of restic 0.14 that take a value: what follows them in the same argument is that value. */
const takesValue = new Set(["e", "H", "o", "p", "r"]);

/** Why a one-letter flag is refused, if it is. */
function shortRefusal(letter: string): string | undefined {
  return refusals.find((refusal) => refusal.short?.includes(letter))?.why;
}

/**
 * The problem with one of `args` (restic's extra arguments), as `{ index, message }`, or none. Long flags are read
 * with or without `=value`; a group of one-letter flags (`-qr`) is read letter by letter, as restic does. A value
 * that follows a flag is not a flag: only arguments starting with `-` are judged.
 */
export function extraArgsProblems(args: readonly string[]): { index: number; message: string }[] {
  const problems: { index: number; message: string }[] = [];
  args.forEach((arg, index) => {
    const shown = JSON.stringify(arg.length > 40 ? `${arg.slice(0, 40)}…` : arg);
    if (arg.startsWith("--") && arg.length > 2) {
      const flag = arg.slice(2).split("=")[0];
      const why = longRefusal(flag);
      if (why) problems.push({ index, message: `${JSON.stringify(`--${flag}`)} is refused in extraArgs: ${why}` });
    } else if (arg === "--") {
      problems.push({
        index,
        message: 'a "--" in extraArgs would make what follows paths to back up; list paths in the source instead',
      });
    } else if (arg.startsWith("-") && arg.length > 1 && !/^-\d/.test(arg)) {
      // restic (pflag) reads `-pFILE` as -p FILE and `-qr` as -q -r: every letter up to one taking a value counts.
      for (const letter of arg.slice(1)) {
        const why = shortRefusal(letter);
        if (why) {
          problems.push({ index, message: `${shown} is refused in extraArgs (it is -${letter}): ${why}` });
          break;
        }
        if (takesValue.has(letter) || !/[A-Za-z]/.test(letter)) break;
      }
    }
  });
  return problems;
}
