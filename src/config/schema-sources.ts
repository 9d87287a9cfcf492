/**
 * The configuration schema of a project's sources: postgres(), mysql(), mongodb(), sqlite(), files(), command(), and
 * pgbackrest() (point-in-time recovery through pgBackRest).
 */
import { z } from "zod";
import { describeValue } from "./issues.ts";
import { filesResticShape } from "./schema-restic.ts";
import {
  cron,
  describeTyped,
  duration,
  envMap,
  host,
  maybeSecret,
  name,
  namePattern,
  nameRule,
  nonEmpty,
  port,
  secretRef,
  strict,
  stringList,
} from "./schema-values.ts";

const dumpCommon = {
  name: name.optional().describe(
    "Unique name of the source within its project, used in snapshot tags and restore commands (default: see the helper)",
  ),
  allowEmpty: z.boolean().optional().describe(
    "Accept an empty dump as a valid backup that stores no snapshot (default `false`: an empty dump fails the backup)",
  ),
};
const databaseName = nonEmpty;

/** Where a database source's client programs run (see ContainerOptions in types.ts). */
const containerFields = {
  container: nonEmpty.optional().describe(
    "Run the dump (and restore) programs inside this running container, with `docker exec -i` or `podman exec -i`; " +
      "the password goes through the exec's environment, never its arguments",
  ),
  containerRuntime: z.enum(["docker", "podman"]).optional().describe(
    'The program that runs `container`: "docker" or "podman" (default: docker when installed, else podman)',
  ),
};

/**
 * `databases: "all"` and its `exclude`: every database of the server, listed when planning. In a source whose
 * `databases` is absent (one database) the key must stay absent: `z.undefined()` keeps the two shapes apart.
 */
const oneDatabase = {
  databases: z.undefined().optional().describe('`"all"`: see the all-databases form below'),
};
function allDatabases(systemNote: string) {
  return {
    databases: z.literal("all").describe(
      `Back up every database of the server, listed when planning; each becomes a source \`<name>-<database>\`${systemNote}`,
    ),
    exclude: stringList.optional().describe(
      'Database names left out, as glob patterns (`*` any characters, `?` one), e.g. `["template*", "scratch_*"]`',
    ),
  };
}
/** Picks the form by `databases`, so a source without it gets the one-database form's own messages. */
function oneOrAll<A extends z.ZodObject, B extends z.ZodObject>(one: A, all: B) {
  return z.discriminatedUnion("databases", [one, all], {
    error: (issue) =>
      issue.code === "invalid_union"
        ? `databases: expected "all" (or no databases key, with a database), got ${
          describeValue((issue.input as Record<string, unknown> | undefined)?.databases)
        }`
        : undefined,
  });
}

/** The keys of postgres() before `database` and after it (the reference lists them in this order). */
const postgresServer = {
  type: z.literal("postgres"),
  ...dumpCommon,
  host: host.optional().describe("Server host (default: libpq's, `PGHOST`, else the local socket)"),
  port: port.optional().describe("Server port (default: libpq's, `PGPORT`, else 5432)"),
};
const postgresConnection = {
  user: nonEmpty.optional().describe("User name (default: libpq's, `PGUSER`, else the OS user name)"),
  password: secretRef.optional().describe(
    "The user's password, given to pg_dump in a private pgpass file (in a container: the exec's `PGPASSWORD`), " +
      "never on the command line",
  ),
  options: stringList.optional().describe('Extra `pg_dump` arguments, e.g. `["--exclude-table=audit_log"]`'),
  globals: z.boolean().optional().describe(
    "Also back up roles and tablespaces (`pg_dumpall --globals-only`) as a second source `<name>-globals`",
  ),
  ...containerFields,
};

/** One PostgreSQL database; the drill's scratch database (`verify.into`) takes this form too. */
export const postgresSchema = strict({
  ...postgresServer,
  database: databaseName.describe("The database to dump (also the default source name)"),
  ...postgresConnection,
  ...oneDatabase,
}).describe("A PostgreSQL database, dumped with `pg_dump -Fc -Z0` (default name: `database`)");

const postgresServerSchema = strict({
  ...postgresServer,
  database: databaseName.optional().describe(
    'The database to connect to for the listing and the globals (default `"postgres"`)',
  ),
  ...postgresConnection,
  ...allDatabases("; databases that refuse connections (template0, template1) are never listed"),
}).describe('Every database of a PostgreSQL server (`databases: "all"`; default name: `"postgres"`)');

/** The keys of mysql() before `database` and after it (the reference lists them in this order). */
const mysqlServer = {
  type: z.literal("mysql"),
  ...dumpCommon,
  host: host.optional().describe("Server host (default: the client's, the local socket)"),
  port: port.optional().describe("Server port; setting it forces `--protocol=TCP`"),
};
const mysqlConnection = {
  user: nonEmpty.optional().describe("User name (default: the client's option files)"),
  password: secretRef.optional().describe(
    "The user's password, given to the client in a private option file (in a container: the exec's `MYSQL_PWD`), " +
      "never on the command line",
  ),
  options: stringList.optional().describe(
    'Extra `mariadb-dump`/`mysqldump` arguments, e.g. `["--ignore-table=wiki.cache"]`',
  ),
  ...containerFields,
};

/** One MySQL/MariaDB database; the drill's scratch database (`verify.into`) takes this form too. */
export const mysqlSchema = strict({
  ...mysqlServer,
  database: databaseName.describe("The database to dump (also the default source name)"),
  ...mysqlConnection,
  ...oneDatabase,
}).describe("A MySQL or MariaDB database, dumped with `mariadb-dump` or `mysqldump` (default name: `database`)");

const mysqlServerSchema = strict({
  ...mysqlServer,
  database: z.undefined({
    error: () => 'not with databases: "all", which backs up every database: remove database, or remove databases',
  }).optional().describe('Not with `databases: "all"`'),
  ...mysqlConnection,
  ...allDatabases(
    "; the system schemas information_schema, performance_schema, sys and mysql are never listed",
  ),
}).describe('Every database of a MySQL or MariaDB server (`databases: "all"`; default name: `"mysql"`)');

const mongodbSchema = strict({
  type: z.literal("mongodb"),
  ...dumpCommon,
  uri: maybeSecret.optional().describe(
    "A full connection string; it may embed credentials, so it may be a secret reference. With it, `host` and " +
      "`port` are left out",
  ),
  host: host.optional().describe("Server host"),
  port: port.optional().describe("Server port"),
  database: nonEmpty.optional().describe("The database to dump (default: every database the user can read)"),
  user: nonEmpty.optional().describe("User name"),
  password: secretRef.optional().describe(
    "The user's password, given to mongodump in a private config file, never on the command line",
  ),
  authenticationDatabase: nonEmpty.optional().describe("The database the user authenticates against"),
  options: stringList.optional().describe("Extra `mongodump` arguments"),
  ...containerFields,
}).describe('A MongoDB database, dumped with `mongodump --archive` (default name: `database`, else `"mongodb"`)');

export const sqliteSchema = strict({
  type: z.literal("sqlite"),
  ...dumpCommon,
  path: nonEmpty.describe("Path of the database file; relative paths start at the config's folder"),
}).describe("An SQLite database file, dumped with `sqlite3 .dump` (default name: the file's base name)");

const filesSchema = strict({
  type: z.literal("files"),
  name: name.optional().describe('Unique name of the source within its project (default `"files"`)'),
  paths: z.array(nonEmpty).min(1, { error: () => "needs at least one path to back up" }).describe(
    "Files and folders to back up; relative paths start at the config's folder. A missing path fails the backup",
  ),
  exclude: stringList.optional().describe("restic exclude patterns (`--exclude`)"),
  ...filesResticShape,
}).describe('Files and folders, read by restic itself (default name: `"files"`; no `allowEmpty`)');

/** Why `text` cannot be the name of a dump's file in a snapshot (restic stores it at the snapshot's top), if it cannot. */
function fileNameProblem(text: string): string | undefined {
  const fix = 'write a plain file name such as "dump.rdb"';
  if (text === "") return `expected a file name, got "": ${fix}`;
  if (text.includes("/")) return `expected a file name without '/', got ${describeValue(text)}: ${fix}`;
  if (text === "." || text === "..") {
    return `expected a file name, got ${describeValue(text)}, which names a folder: ${fix}`;
  }
  if (text.includes("\0")) return `expected a file name without a NUL character, got ${describeValue(text)}: ${fix}`;
  return undefined;
}

const commandSchema = strict({
  type: z.literal("command"),
  ...dumpCommon,
  name: z.string({ error: () => 'required: command() sources need a name, e.g. name: "redis"' }).regex(namePattern, {
    error: (issue) => `invalid name ${describeValue(issue.input)}: ${nameRule}`,
  }).meta({ title: "name" }).describe("Unique name of the source within its project (no default for `command()`)"),
  run: z.union([nonEmpty, z.array(nonEmpty).min(1)], {
    error: (issue) =>
      issue.input === undefined
        ? 'required: the command whose output is the dump, e.g. run: "redis-cli --rdb -"'
        : `expected a command line (string) or a program with arguments (list), got ${describeValue(issue.input)}`,
  }).describe(
    "The program and its arguments (a list runs without a shell), or a shell command line run with " +
      "`bash -o pipefail -c`",
  ),
  filename: z.string({ error: () => 'required: the file name the dump is stored as, e.g. filename: "dump.rdb"' })
    .refine((text) => fileNameProblem(text) === undefined, {
      error: (issue) => fileNameProblem(String(issue.input)),
    })
    .describe(
      'Name of the file the dump is stored as in the snapshot: one name, without `/`, not `.` or `..`, e.g. `"dump.rdb"`',
    ),
  env: envMap.optional().describe(
    "Environment variables for the command; values may be secret references. The command gets backupctl's " +
      "environment without the variables the config's `env()` references read, plus these",
  ),
}).describe("Any program whose standard output is the dump; it runs in backupctl's working folder");

/** An absolute path: pgBackRest resolves paths from its own working folder, never from the config's. */
const absolutePath = (what: string, example: string) =>
  z.string({
    error: (issue) =>
      issue.input === undefined
        ? `required: ${what}, an absolute path such as "${example}"`
        : `expected ${what}, an absolute path such as "${example}", got ${describeValue(issue.input)}`,
  }).refine((text) => text.startsWith("/") && !text.split("/").includes(".."), {
    error: (issue) =>
      `expected ${what} as an absolute path without "..", such as "${example}", got ${describeValue(issue.input)}: ` +
      "pgBackRest runs in its own folder, so a relative path would point elsewhere",
  });

/** pgBackRest stanza names become folder names in its repository and keys of its configuration's sections. */
export const stanzaPattern = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const stanza = z.string({
  error: (issue) =>
    issue.input === undefined
      ? 'required: the pgBackRest stanza, e.g. stanza: "main"'
      : `expected a stanza name, got ${describeValue(issue.input)}`,
}).regex(stanzaPattern, {
  error: (issue) =>
    `invalid stanza ${describeValue(issue.input)}: letters, digits, '.', '_' or '-' (at most 64, starting with a ` +
    'letter or digit), e.g. "main"',
});

/** An S3 endpoint as pgBackRest takes it: a host name or IPv4 address and a port, over HTTPS only. */
const s3EndpointPattern = /^(https:\/\/)?[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:\d{1,5})?\/?$/;
const s3Endpoint = z.string({
  error: () => 'required: the S3 endpoint, e.g. endpoint: "https://s3.eu-central-1.amazonaws.com" or "minio.lan:9000"',
}).refine((text) => s3EndpointPattern.test(text), {
  error: (issue) =>
    String(issue.input).startsWith("http://")
      ? `expected an https:// endpoint, got ${describeValue(issue.input)}: pgBackRest reaches S3 over HTTPS only ` +
        "(for a private CA, set caFile)"
      : `expected an endpoint "https://host[:port]" or "host[:port]" without a path (the bucket and path have ` +
        `their own keys), got ${describeValue(issue.input)}`,
});

/** The repository of a pgbackrest() source: a local folder, or a bucket of an S3-compatible store. */
const pgbackrestLocalRepository = strict({
  type: z.literal("local").optional().describe('`"local"` (the default): a folder on this machine'),
  path: absolutePath("the repository's folder", "/srv/pgbackrest").describe(
    "The repository's folder (pgBackRest's `repo1-path`)",
  ),
}, 'a repository { path: "/srv/pgbackrest" }').describe("A folder on this machine");

const pgbackrestS3Repository = strict({
  type: z.literal("s3").describe("Set by the s3() helper (`repo1-type=s3`)"),
  endpoint: s3Endpoint.describe(
    "`https://host[:port]` or `host[:port]` (`repo1-s3-endpoint`, `repo1-storage-port`); pgBackRest speaks HTTPS " +
      "only and checks the certificate against the host's DNS names, so name a host, not an IP address",
  ),
  bucket: z.string({ error: () => 'required: the bucket, e.g. bucket: "backups"' }).regex(
    /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/,
    { error: (issue) => `expected an S3 bucket name such as "backups", got ${describeValue(issue.input)}` },
  ).describe("The bucket (`repo1-s3-bucket`); it must exist"),
  region: z.string({
    error: () => `required: the bucket's region, e.g. region: "eu-central-1" (MinIO and s3rver take "us-east-1")`,
  }).regex(/^[a-z0-9-]+$/, {
    error: (issue) => `expected a region name such as "eu-central-1", got ${describeValue(issue.input)}`,
  }).describe('The bucket\'s region (`repo1-s3-region`), e.g. `"eu-central-1"`; MinIO takes `"us-east-1"`'),
  path: absolutePath("the repository's key prefix in the bucket", "/pgbackrest").describe(
    'The repository\'s key prefix in the bucket (`repo1-path`), e.g. `"/pgbackrest"`',
  ),
  uriStyle: z.enum(["path", "host"]).optional().describe(
    '`"path"` (the default: `https://host/bucket/key`, as MinIO and most self-hosted stores need) or `"host"` ' +
      "(`https://bucket.host/key`) (`repo1-s3-uri-style`)",
  ),
  accessKeyId: maybeSecret.describe(
    "The access key id (`repo1-s3-key`), a plain string or a secret reference: written only to the private 0600 " +
      "pgBackRest configuration",
  ),
  secretAccessKey: secretRef.describe(
    "The secret access key (`repo1-s3-key-secret`): written only to the private 0600 pgBackRest configuration, " +
      "never on a command line or in a child's environment",
  ),
  caFile: absolutePath("the CA's PEM file", "/etc/ssl/private-ca.pem").optional().describe(
    "A PEM file of the certificate authority that signed the store's certificate (`repo1-storage-ca-file`), for a " +
      "private CA; the cluster's OS user must be able to read it",
  ),
}, "an s3({ endpoint, bucket, region, path, accessKeyId, secretAccessKey })").describe(
  "A pgbackrest() repository in a bucket of an S3-compatible store (AWS S3, MinIO, …)",
);

const sftpRefusal = 'type "sftp": pgBackRest has SFTP repositories from version 2.46 on, and Debian\'s pgbackrest ' +
  "is 2.45: use a local path or s3({ … }) (docs/postgres-pitr.md)";

const pgbackrestRepository = z.discriminatedUnion("type", [pgbackrestLocalRepository, pgbackrestS3Repository], {
  error: (issue) => {
    if (issue.code !== "invalid_union") return undefined;
    const type = (issue.input as Record<string, unknown> | undefined)?.type;
    if (type === "sftp") return sftpRefusal;
    return `expected a repository { path: "/srv/pgbackrest" } or s3({ … }), got type ${describeValue(type)}`;
  },
}).describe(
  "Where pgBackRest keeps the backups and the archived WAL: a local folder, or a bucket (`s3({ … })`). SFTP repositories " +
    "need pgBackRest 2.46 (Debian has 2.45) and are refused",
);

const pgbackrestSchema = strict({
  type: z.literal("pgbackrest"),
  name: name.optional().describe("Unique name of the source within its project (default: the stanza)"),
  stanza: stanza.describe("The pgBackRest stanza: its folder in the repository and its section in the configuration"),
  cluster: strict({
    dataDirectory: absolutePath("the cluster's data directory", "/var/lib/postgresql/15/main").describe(
      "The cluster's data directory (pgBackRest's `pg1-path`)",
    ),
    host: host.optional().describe(
      "A socket folder (`/var/run/postgresql`) or a loopback host (default: libpq's, the local socket)",
    ),
    port: port.optional().describe("The cluster's port (default 5432)"),
    user: nonEmpty.optional().describe(
      "The user pgBackRest and backupctl's archive queries connect as (default: libpq's, the OS user name)",
    ),
    database: nonEmpty.optional().describe('The database backupctl\'s queries connect to (default `"postgres"`)'),
    password: secretRef.optional().describe(
      "The user's password, given in a private pgpass file, never on the command line",
    ),
  }, "a cluster { dataDirectory, host, port }").describe("How pgBackRest and backupctl reach the cluster"),
  repository: pgbackrestRepository,
  cipherPassphrase: secretRef.optional().describe(
    "Encrypts the repository (`repo1-cipher-type=aes-256-cbc`); written only to the private 0600 pgBackRest " +
      "configuration, never on a command line",
  ),
  processMax: z.number().int().min(1).max(999).optional().describe(
    "pgBackRest's `process-max`: processes compressing and transferring in parallel (default 1)",
  ),
  schedule: strict({
    full: cron.describe("When a full backup is due"),
    diff: cron.optional().describe("When a differential backup (changes since the last full) is due"),
    incr: cron.optional().describe("When an incremental backup (changes since the last backup) is due"),
  }, 'a schedule { full: "@weekly", incr: "@daily" }').describe(
    "When each type of backup is due, read in the project's time zone; a due full covers a diff or incr due at " +
      "the same time",
  ),
  rpo: duration.optional().describe(
    "The recovery point objective: when the last archived WAL is older than this (or archiving fails), " +
      '`archive.stale` is raised and `status` exits 1 (e.g. `"15m"`)',
  ),
  bin: nonEmpty.optional().describe('The pgbackrest program (default `"pgbackrest"`, found on PATH)'),
}).describe(
  "A PostgreSQL cluster backed up by pgBackRest for point-in-time recovery (default name: `stanza`); the " +
    "project's `retention` drives pgBackRest's (docs/postgres-pitr.md)",
);

const sourceKinds = "postgres(), mysql(), mongodb(), sqlite(), files(), command() or pgbackrest()";
export const sourceSchema = z.discriminatedUnion(
  "type",
  [
    oneOrAll(postgresSchema, postgresServerSchema),
    oneOrAll(mysqlSchema, mysqlServerSchema),
    mongodbSchema,
    sqliteSchema,
    filesSchema,
    commandSchema,
    pgbackrestSchema,
  ],
  {
    error: (issue) =>
      issue.code === "invalid_union" || issue.code === "invalid_type"
        ? `expected a source made by ${sourceKinds}, got ${describeTyped(issue.input)}`
        : undefined,
  },
);
