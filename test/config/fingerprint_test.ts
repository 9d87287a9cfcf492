/**
 * Unit tests of the config fingerprint (src/config/fingerprint.ts) over validated, normalized configs.
 * Runs under `deno test -A test/config/` and `bun --no-install test test/config/`.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { env, files, postgres, restic, slack, sqlite } from "../../src/config/helpers.ts";
import { canonicalJson, fingerprint } from "../../src/config/fingerprint.ts";
import { validateConfig } from "../../src/config/validate.ts";

const FILE = "test.config.ts";

function fingerprintOf(config: unknown): string {
  return fingerprint(validateConfig(config, FILE));
}

function canonicalOf(config: unknown): string {
  return canonicalJson(validateConfig(config, FILE));
}

interface Variation {
  schedule?: string;
  daily?: number;
  passwordName?: string;
}

/** A config with several levels of nesting, keys written in the order the helpers and a human would use. */
function configInOrder(v: Variation = {}): unknown {
  return {
    timezone: "Europe/Berlin",
    host: "backup-host",
    repositories: {
      local: restic({ url: "/srv/restic", password: env(v.passwordName ?? "RESTIC_PASSWORD"), compression: "max" }),
      offsite: restic({
        url: "sftp:backup@storage.example:/restic",
        password: env("OFFSITE_PASSWORD"),
        env: { A_VAR: "a", B_VAR: env("B_SECRET") },
      }),
    },
    notifiers: {
      ops: slack({ webhookUrl: env("SLACK_URL"), events: ["run.failed", "run.recovered"] }),
    },
    defaults: { retry: { attempts: 3, baseDelay: "5s" }, timeout: "6h" },
    projects: {
      shop: {
        schedule: v.schedule ?? "0 3 * * *",
        jitter: "10m",
        sources: [
          postgres({ host: "db", port: 5432, database: "shop", user: "backup", password: env("SHOP_DB_PASSWORD") }),
          sqlite({ path: "/srv/shop/sessions.db" }),
          files({ paths: ["/srv/shop/uploads"], exclude: ["*.tmp"] }),
        ],
        repositories: ["local", "offsite"],
        retention: { daily: v.daily ?? 7, weekly: 4, within: "2d" },
        notify: ["ops"],
        hooks: { before: "true", timeout: "90s" },
      },
      blog: {
        schedule: "@hourly",
        sources: [sqlite({ path: "/srv/blog/blog.db" })],
        repositories: ["local"],
        retention: { hourly: 24 },
      },
    },
  };
}

/** The same config as `configInOrder()`, every object (root, records, projects, sources, secrets) in another order. */
function configShuffled(): unknown {
  return {
    projects: {
      blog: {
        retention: { hourly: 24 },
        repositories: ["local"],
        sources: [{ path: "/srv/blog/blog.db", type: "sqlite" }],
        schedule: "@hourly",
      },
      shop: {
        hooks: { timeout: "90s", before: "true" },
        notify: ["ops"],
        retention: { within: "2d", weekly: 4, daily: 7 },
        repositories: ["local", "offsite"],
        sources: [
          {
            password: { name: "SHOP_DB_PASSWORD", secret: "env" },
            user: "backup",
            database: "shop",
            port: 5432,
            host: "db",
            type: "postgres",
          },
          { path: "/srv/shop/sessions.db", type: "sqlite" },
          { exclude: ["*.tmp"], paths: ["/srv/shop/uploads"], type: "files" },
        ],
        jitter: "10m",
        schedule: "0 3 * * *",
      },
    },
    defaults: { timeout: "6h", retry: { baseDelay: "5s", attempts: 3 } },
    notifiers: {
      ops: { events: ["run.failed", "run.recovered"], webhookUrl: { name: "SLACK_URL", secret: "env" }, type: "slack" },
    },
    repositories: {
      offsite: {
        env: { B_VAR: { name: "B_SECRET", secret: "env" }, A_VAR: "a" },
        password: { name: "OFFSITE_PASSWORD", secret: "env" },
        url: "sftp:backup@storage.example:/restic",
        type: "restic",
      },
      local: {
        compression: "max",
        password: { name: "RESTIC_PASSWORD", secret: "env" },
        url: "/srv/restic",
        type: "restic",
      },
    },
    host: "backup-host",
    timezone: "Europe/Berlin",
  };
}

const FORMAT = /^sha256:[0-9a-f]{64}$/;

describe("fingerprint", () => {
  it("has the format sha256: followed by 64 lowercase hex characters", () => {
    const value = fingerprintOf(configInOrder());
    assert.match(value, FORMAT);
    assert.equal(value.length, "sha256:".length + 64);
  });

  it("is the same for the same config, built twice", () => {
    const a = fingerprintOf(configInOrder());
    const b = fingerprintOf(configInOrder());
    assert.match(a, FORMAT);
    assert.equal(a, b);
  });

  it("is the same when keys are written in another order at every level", () => {
    const ordered = configInOrder();
    const shuffled = configShuffled();
    // The two inputs really differ in key order (otherwise this test proves nothing)…
    assert.notEqual(JSON.stringify(ordered), JSON.stringify(shuffled));
    // …but describe the same config.
    assert.equal(canonicalOf(shuffled), canonicalOf(ordered));
    assert.equal(fingerprintOf(shuffled), fingerprintOf(ordered));
  });

  it("is the same when defaults are written out explicitly", () => {
    const implicit = configInOrder();
    const explicit = configInOrder() as { timezone?: string; projects: Record<string, Record<string, unknown>> };
    explicit.projects.blog.enabled = true;
    explicit.projects.blog.timezone = "Europe/Berlin";
    explicit.projects.blog.sources = [sqlite({ path: "/srv/blog/blog.db", name: "blog" })];
    assert.equal(fingerprintOf(explicit), fingerprintOf(implicit));
  });

  it("changes when the schedule changes", () => {
    assert.notEqual(fingerprintOf(configInOrder({ schedule: "0 4 * * *" })), fingerprintOf(configInOrder()));
  });

  it("changes when a retention count changes", () => {
    assert.notEqual(fingerprintOf(configInOrder({ daily: 8 })), fingerprintOf(configInOrder()));
  });

  it("changes when a secret reference names another variable", () => {
    assert.notEqual(
      fingerprintOf(configInOrder({ passwordName: "OTHER_RESTIC_PASSWORD" })),
      fingerprintOf(configInOrder()),
    );
  });

  it("changes when sources are reordered or a project is disabled", () => {
    const base = fingerprintOf(configInOrder());
    const reordered = configInOrder() as { projects: { shop: { sources: unknown[]; enabled?: boolean } } };
    reordered.projects.shop.sources.reverse();
    assert.notEqual(fingerprintOf(reordered), base);
    const disabled = configInOrder() as { projects: { shop: { enabled?: boolean } } };
    disabled.projects.shop.enabled = false;
    assert.notEqual(fingerprintOf(disabled), base);
  });

  it("never contains a secret's value, even when its environment variable is set", () => {
    const name = "BACKUPCTL_TEST_FINGERPRINT_SECRET";
    const value = `very-distinctive-secret-${Math.random().toString(36).slice(2)}-value`;
    const previous = process.env[name];
    process.env[name] = value;
    try {
      assert.equal(process.env[name], value);
      const config = configInOrder({ passwordName: name });
      const canonical = canonicalOf(config);
      const first = fingerprintOf(config);
      assert.ok(!canonical.includes(value), "canonical JSON contains the secret value");
      assert.ok(!first.includes(value), "fingerprint contains the secret value");
      assert.ok(canonical.includes(`"name":"${name}"`), `canonical JSON does not name ${name}`);
      assert.ok(canonical.includes(name));
      assert.match(first, FORMAT);
      // The value plays no part: changing it leaves the fingerprint as it is.
      process.env[name] = `${value}-rotated`;
      assert.equal(fingerprintOf(config), first);
    } finally {
      if (previous === undefined) delete process.env[name];
      else process.env[name] = previous;
    }
  });
});

describe("canonicalJson", () => {
  it("sorts object keys at every level and keeps array order", () => {
    assert.equal(
      canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: null } }),
      '{"a":{"c":null,"d":[3,{"y":2,"z":1}]},"b":1}',
    );
  });

  it("gives the same text for objects that differ only in key order", () => {
    assert.equal(canonicalJson({ x: 1, y: { p: "a", q: "b" } }), canonicalJson({ y: { q: "b", p: "a" }, x: 1 }));
    assert.notEqual(canonicalJson([1, 2]), canonicalJson([2, 1]));
  });

  it("leaves out undefined properties and is valid JSON", () => {
    const text = canonicalJson({ a: undefined, b: "two", c: [true, false] });
    assert.equal(text, '{"b":"two","c":[true,false]}');
    assert.deepEqual(JSON.parse(text), { b: "two", c: [true, false] });
  });

  it("shows a secret reference by name only", () => {
    assert.equal(canonicalJson({ password: env("DB_PASSWORD") }), '{"password":{"name":"DB_PASSWORD","secret":"env"}}');
  });
});
