/**
 * Unit tests of the pgbackrest() source in the config: its schema (stanza names, schedules, rpo, absolute paths),
 * S3 repositories and the refusal of SFTP ones (pgBackRest 2.45), the cross-checks (one source per stanza and
 * repository, a project of pgbackrest() sources alone needs no restic repository) and its normalised shape (name
 * defaulted to the stanza, kept apart from the restic sources).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { env, pgbackrest, restic, sqlite } from "../../src/config/helpers.ts";
import { validateConfig } from "../../src/config/validate.ts";
import { ConfigError } from "../../src/errors.ts";

type Raw = Record<string, unknown>;

function source(overrides: Raw = {}): Raw {
  return {
    ...pgbackrest({
      stanza: "main",
      cluster: { dataDirectory: "/var/lib/postgresql/15/main", host: "/var/run/postgresql", port: 5432 },
      repository: { path: "/srv/pgbackrest" },
      cipherPassphrase: env("PGBR_CIPHER"),
      schedule: { full: "@weekly", incr: "0 1 * * *" },
      rpo: "15m",
    }),
    ...overrides,
  };
}

const s3Repository = {
  type: "s3",
  endpoint: "https://minio.lan:9000",
  bucket: "backups",
  region: "us-east-1",
  path: "/pgbackrest",
  accessKeyId: env("PGBR_S3_KEY"),
  secretAccessKey: env("PGBR_S3_SECRET"),
};

function config(sources: object[], project: Raw = {}): Raw {
  return {
    repositories: { local: restic({ url: "/srv/restic", password: env("RESTIC_PASSWORD") }) },
    projects: { db: { schedule: "@daily", sources, repositories: [], retention: { weekly: 4 }, ...project } },
  };
}

function problems(raw: Raw): { path: string; message: string }[] {
  try {
    validateConfig(raw, "test.config.ts");
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

describe("pgbackrest() source", () => {
  it("validates, defaults its name to the stanza and stays out of the restic sources", () => {
    const normalized = validateConfig(config([source()]), "test.config.ts");
    const project = normalized.projects.db;
    assert.deepEqual(project.sources, []);
    assert.equal(project.pitr.length, 1);
    assert.equal(project.pitr[0].name, "main");
    assert.equal(project.pitr[0].stanza, "main");
    assert.deepEqual(project.repositories, []);
  });

  it("keeps restic sources and pgbackrest sources apart in a mixed project", () => {
    const raw = config([sqlite({ path: "app.db" }), source({ name: "pitr" })], { repositories: ["local"] });
    const project = validateConfig(raw, "test.config.ts").projects.db;
    assert.deepEqual(project.sources.map((s) => s.name), ["app"]);
    assert.deepEqual(project.pitr.map((s) => s.name), ["pitr"]);
  });

  it("still needs a repository when a project has restic sources", () => {
    const found = problems(config([sqlite({ path: "app.db" }), source()]));
    assert.deepEqual(found.map((p) => p.path), ["projects.db.repositories"]);
    assert.match(found[0].message, /at least one repository/);
  });

  const cases: { name: string; overrides: Raw; path: string; message: RegExp }[] = [
    { name: "a stanza with a slash", overrides: { stanza: "a/b" }, path: "stanza", message: /invalid stanza "a\/b"/ },
    {
      name: "a relative repository path",
      overrides: { repository: { path: "backups" } },
      path: "repository.path",
      message: /absolute path/,
    },
    {
      name: "a relative data directory",
      overrides: { cluster: { dataDirectory: "main" } },
      path: "cluster.dataDirectory",
      message: /absolute path/,
    },
    {
      name: "a bad schedule",
      overrides: { schedule: { full: "weekly-ish" } },
      path: "schedule.full",
      message: /cron expression/,
    },
    { name: "a bad rpo", overrides: { rpo: "soon" }, path: "rpo", message: /duration/ },
    {
      name: "a literal passphrase",
      overrides: { cipherPassphrase: "hunter2" },
      path: "cipherPassphrase",
      message: /env\(|secret/,
    },
    { name: "an unknown key", overrides: { retention: 3 }, path: "retention", message: /unknown key "retention"/ },
    {
      name: "an SFTP repository (pgBackRest 2.46 or newer)",
      overrides: { repository: { type: "sftp", host: "backup.lan", path: "/srv/pgbackrest" } },
      path: "repository",
      message: /type "sftp": pgBackRest has SFTP repositories from version 2\.46 on, and Debian's pgbackrest is 2\.45/,
    },
    {
      name: "an S3 endpoint over plain HTTP",
      overrides: { repository: { ...s3Repository, endpoint: "http://minio.lan:9000" } },
      path: "repository.endpoint",
      message: /https:\/\/ endpoint.*HTTPS only/,
    },
    {
      name: "an S3 endpoint with a path",
      overrides: { repository: { ...s3Repository, endpoint: "https://minio.lan:9000/backups" } },
      path: "repository.endpoint",
      message: /without a path/,
    },
    {
      name: "an S3 repository without a region",
      overrides: { repository: { ...s3Repository, region: undefined } },
      path: "repository.region",
      message: /required: the bucket's region/,
    },
    {
      name: "a literal S3 secret key",
      overrides: { repository: { ...s3Repository, secretAccessKey: "hunter2" } },
      path: "repository.secretAccessKey",
      message: /env\(|secret/,
    },
    {
      name: "a relative CA file",
      overrides: { repository: { ...s3Repository, caFile: "ca.pem" } },
      path: "repository.caFile",
      message: /absolute path/,
    },
    {
      name: "an unknown repository type",
      overrides: { repository: { type: "gcs", path: "/x" } },
      path: "repository",
      message: /expected a repository \{ path: "\/srv\/pgbackrest" \} or s3\(\{ … \}\), got type "gcs"/,
    },
  ];
  for (const c of cases) {
    it(`reports ${c.name} at its path`, () => {
      const found = problems(config([source(c.overrides)]));
      const at = `projects.db.sources[0]${c.path ? `.${c.path}` : ""}`;
      const match = found.find((p) => p.path === at);
      assert.ok(match, `expected a problem at ${at}, got ${JSON.stringify(found)}`);
      assert.match(match.message, c.message);
      assert.ok(!JSON.stringify(found).includes("hunter2"), "a secret field never echoes its value");
    });
  }

  it("takes an S3 repository, and tells stanzas of the same name apart by bucket and path", () => {
    const other = { ...s3Repository, path: "/other" };
    const raw = config([
      source({ repository: s3Repository }),
      source({ name: "local" }),
      source({ name: "other", repository: other }),
    ]);
    const pitr = validateConfig(raw, "test.config.ts").projects.db.pitr;
    assert.deepEqual(pitr[0].repository, s3Repository);
    const found = problems(
      config([source({ repository: s3Repository }), source({ name: "again", repository: s3Repository })]),
    );
    assert.deepEqual(found.map((p) => p.path), ["projects.db.sources[1].stanza"]);
    assert.match(found[0].message, /stanza "main" in s3:https:\/\/minio\.lan:9000\/backups\/pgbackrest is already/);
  });

  it("refuses two sources of the same stanza in the same repository", () => {
    const raw = config([source(), source({ name: "again" })]);
    const found = problems(raw);
    assert.deepEqual(found.map((p) => p.path), ["projects.db.sources[1].stanza"]);
    assert.match(found[0].message, /already backed up by projects\.db\.sources\[0\]/);
  });
});
