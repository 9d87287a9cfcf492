/**
 * The typed restic options in the config (issue 23, points 1 and 2): bounds, the extraArgs guard (each refused flag
 * named at its path with the fix, exit 3), s3 settings and their clashes with env and options; and what they become
 * on restic's command line and in its environment (repository/restic-flags.ts), a project's settings winning, and the
 * priority wrapper (exec/priority.ts).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { env, files, restic, sqlite } from "../../src/config/helpers.ts";
import { validateConfig } from "../../src/config/validate.ts";
import { ConfigError, type ConfigProblem, ExitCode } from "../../src/errors.ts";
import { forProject, globalFlags, resticVariables } from "../../src/repository/restic-flags.ts";
import { withPriority } from "../../src/exec/priority.ts";
import { extraArgsProblems } from "../../src/config/restic-args.ts";
import type { ResticRepository } from "../../src/config/types.ts";

type Raw = Record<string, unknown>;

function config(repository: Raw, project: Raw = {}, source: object = files({ paths: ["data"] })): Raw {
  return {
    repositories: { main: { ...restic({ url: "/srv/restic", password: env("RESTIC_PASSWORD") }), ...repository } },
    projects: {
      app: { schedule: "0 3 * * *", sources: [source], repositories: ["main"], retention: { daily: 7 }, ...project },
    },
  };
}

function problems(raw: Raw): ConfigProblem[] {
  try {
    validateConfig(raw, "test.config.ts");
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    assert.equal(error.exitCode, ExitCode.invalidConfig);
    return error.problems;
  }
  return [];
}

function problemAt(raw: Raw, path: string): string {
  const found = problems(raw).filter((problem) => problem.path === path);
  assert.equal(found.length, 1, `one problem at ${path}: ${JSON.stringify(problems(raw))}`);
  return found[0].message;
}

describe("typed restic options: validation", () => {
  it("accepts every option in range", () => {
    const valid = config(
      {
        limitUpload: 2048,
        limitDownload: 4096,
        compression: "max",
        packSize: 64,
        readConcurrency: 4,
        nice: 19,
        ionice: { class: "best-effort", level: 7 },
        extraArgs: ["--cleanup-cache", "--tls-client-cert", "client.pem"],
        cacert: "ca.pem",
      },
      { restic: { limitUpload: 512, compression: "off" }, nice: 10, ionice: { class: "idle" } },
      files({
        paths: ["data"],
        excludeCaches: true,
        oneFileSystem: true,
        excludeIfPresent: [".nobackup", "CACHEDIR.TAG:Signature: 8a477f597d28d172789f06886806bc55"],
        excludeLargerThan: "500M",
        excludeFile: ["excludes.txt"],
        extraArgs: ["--exclude", "*.tmp", "-x", "-e*.php"],
      }),
    );
    assert.deepEqual(problems(valid), []);
  });

  it("refuses values out of range, each at its path with what to write", () => {
    assert.match(problemAt(config({ packSize: 256 }), "repositories.main.packSize"), /MiB, an integer 4–128, got 256/);
    assert.match(problemAt(config({ limitUpload: 0 }), "repositories.main.limitUpload"), /KiB\/s, an integer/);
    assert.match(problemAt(config({ nice: -5 }), "repositories.main.nice"), /niceness, an integer 0–19/);
    assert.match(
      problemAt(config({ ionice: { class: "realtime" } }), "repositories.main.ionice.class"),
      /realtime class can starve/,
    );
    assert.match(
      problemAt(config({ ionice: { class: "idle", level: 3 } }), "repositories.main.ionice"),
      /idle class has no level/,
    );
    assert.match(
      problemAt(
        config({}, {}, files({ paths: ["d"], excludeLargerThan: "1 GB" })),
        "projects.app.sources[0]" +
          ".excludeLargerThan",
      ),
      /a size such as "500M"/,
    );
    assert.match(
      problemAt(config({}, { restic: { packSize: 2 } }), "projects.app.restic.packSize"),
      /an integer 4–128/,
    );
  });

  it("refuses extraArgs that would leak a secret or bypass backupctl, naming the flag and the fix", () => {
    const refused: [string[], number, RegExp][] = [
      [["--password-file=/run/pw"], 0, /"--password-file" is refused.*password itself/],
      [["--password-command", "pass show x"], 0, /"--password-command" is refused/],
      [["--cleanup-cache", "-p", "/run/pw"], 1, /"-p" is refused in extraArgs \(it is -p\)/],
      [["-qr", "/elsewhere"], 0, /it is -r\).*repository and its password itself/],
      [["--repo", "/elsewhere"], 0, /"--repo" is refused/],
      [["--repository-file=/x"], 0, /"--repository-file" is refused/],
      [["--key-hint", "abc"], 0, /"--key-hint" is refused/],
      [["-o", "s3.region=x"], 0, /it is -o\).*options: \{ "key": "value" \}/],
      [["--option=sftp.command=ssh evil"], 0, /"--option" is refused/],
      [["--no-lock"], 0, /"--no-lock" is refused.*restic's locks/],
      [["--insecure-tls"], 0, /"--insecure-tls" is refused.*cacert/],
      [["--tag", "x"], 0, /"--tag" is refused/],
      [["--host=other"], 0, /"--host" is refused/],
      [["--dry-run"], 0, /a dry run stores nothing/],
      [["--", "/etc"], 0, /a "--" in extraArgs/],
      [["--limit-upload", "10"], 0, /typed setting/],
      [["--from-password-file", "x"], 0, /copies get their source from the config/],
    ];
    for (const [args, index, message] of refused) {
      const at = problemAt(config({ extraArgs: args }), `repositories.main.extraArgs[${index}]`);
      assert.match(at, message, JSON.stringify(args));
      const inSource = problemAt(
        config({}, {}, files({ paths: ["d"], extraArgs: args })),
        `projects.app.sources[0].extraArgs[${index}]`,
      );
      assert.match(inSource, message);
    }
  });

  it("reads one-letter groups as restic does: a letter taking a value ends the group", () => {
    assert.deepEqual(extraArgsProblems(["-x", "-e*.php", "-epattern", "-Hx"]).map((p) => p.index), [3]);
    assert.deepEqual(extraArgsProblems(["-xp"]).map((p) => p.index), [0]);
  });

  it("refuses a secret reference in extraArgs, without its value", () => {
    const message = problemAt(
      config({ extraArgs: ["--tls-client-cert", env("CLIENT_CERT")] }),
      "repositories.main.extraArgs[1]",
    );
    assert.match(message, /a secret reference cannot go there/);
    assert.doesNotMatch(message, /CLIENT_CERT/);
  });

  it("s3: only on s3: urls, and not together with env or options that set the same", () => {
    const s3 = {
      accessKeyId: env("AWS_KEY_ID"),
      secretAccessKey: env("AWS_SECRET"),
      region: "eu-west-1",
      pathStyle: true,
    };
    assert.deepEqual(problems(config({ url: "s3:https://s3.example/bucket/restic", s3 })), []);
    assert.match(problemAt(config({ s3 }), "repositories.main.s3"), /s3 settings apply to s3: repositories only/);
    assert.match(
      problemAt(
        config({ url: "s3:https://s3.example/b", s3, env: { AWS_SECRET_ACCESS_KEY: env("X") } }),
        "repositories.main.env.AWS_SECRET_ACCESS_KEY",
      ),
      /s3 sets AWS_SECRET_ACCESS_KEY already/,
    );
    assert.match(
      problemAt(
        config({ url: "s3:https://s3.example/b", s3, options: { "s3.bucket-lookup": "dns" } }),
        'repositories.main.options["s3.bucket-lookup"]',
      ),
      /s3.pathStyle sets s3.bucket-lookup already/,
    );
    assert.match(
      problemAt(
        config({ url: "s3:https://s3.example/b", s3: { ...s3, secretAccessKey: "plain" } }),
        "repositories.main.s3.secretAccessKey",
      ),
      /expected env\("NAME"\) or file\(PATH\), got a plain string/,
    );
  });

  it("a project's restic object is strict", () => {
    assert.match(
      problemAt(config({}, { restic: { limitUplaod: 5 } }), "projects.app.restic.limitUplaod"),
      /did you mean "limitUpload"/,
    );
  });

  it("sqlite sources take no files options", () => {
    assert.ok(problems(config({}, {}, { ...sqlite({ path: "a.db" }), excludeCaches: true })).length > 0);
  });
});

describe("typed restic options: flags, environment, precedence, priority", () => {
  const spec: ResticRepository = {
    type: "restic",
    url: "s3:https://s3.example/bucket/restic",
    password: env("RESTIC_PASSWORD"),
    limitUpload: 4096,
    limitDownload: 8192,
    compression: "max",
    packSize: 32,
    readConcurrency: 2,
    nice: 5,
    cacert: "ca.pem",
    options: { "s3.connections": "3" },
    extraArgs: ["--cleanup-cache"],
    s3: {
      accessKeyId: "AKIAEXAMPLE",
      secretAccessKey: env("AWS_SECRET"),
      sessionToken: env("AWS_TOKEN"),
      region: "eu-west-1",
      pathStyle: true,
    },
  };

  it("global flags: typed flags, the CA file from the config's folder, -o options with s3's, extraArgs last", () => {
    assert.deepEqual(globalFlags(spec, "/etc/backupctl"), [
      "--no-cache",
      "--compression",
      "max",
      "--pack-size",
      "32",
      "--limit-upload",
      "4096",
      "--limit-download",
      "8192",
      "--cacert",
      "/etc/backupctl/ca.pem",
      "-o",
      "s3.connections=3",
      "-o",
      "s3.region=eu-west-1",
      "-o",
      "s3.bucket-lookup=path",
      "--cleanup-cache",
    ]);
  });

  it("s3 credentials are environment variables (references unresolved here), never flags", () => {
    assert.deepEqual(resticVariables(spec), {
      AWS_ACCESS_KEY_ID: "AKIAEXAMPLE",
      AWS_SECRET_ACCESS_KEY: env("AWS_SECRET"),
      AWS_SESSION_TOKEN: env("AWS_TOKEN"),
    });
    assert.ok(!globalFlags(spec, "/").some((flag) => flag.includes("AWS") || flag.includes("AKIA")));
  });

  it("a project's settings win one by one; the rest stay the repository's", () => {
    const merged = forProject(spec, {
      restic: { limitUpload: 100, compression: undefined },
      ionice: { class: "idle" },
    });
    assert.equal(merged.limitUpload, 100);
    assert.equal(merged.compression, "max", "an undefined project value keeps the repository's");
    assert.equal(merged.limitDownload, 8192);
    assert.equal(merged.nice, 5);
    assert.deepEqual(merged.ionice, { class: "idle" });
    assert.equal(spec.limitUpload, 4096, "the repository's spec is not changed");
  });

  it("priority: nice outside, ionice inside, the program last; nothing when none is asked", () => {
    assert.deepEqual(withPriority(["restic", "backup"], { nice: 10, ionice: { class: "best-effort", level: 7 } }), [
      "nice",
      "-n",
      "10",
      "ionice",
      "-c",
      "2",
      "-n",
      "7",
      "restic",
      "backup",
    ]);
    assert.deepEqual(withPriority(["pg_dump"], { ionice: { class: "idle" } }), ["ionice", "-c", "3", "pg_dump"]);
    assert.deepEqual(withPriority(["pg_dump"], {}), ["pg_dump"]);
    assert.deepEqual(withPriority(["pg_dump"], undefined), ["pg_dump"]);
  });
});
