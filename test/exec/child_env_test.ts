/**
 * What a child program inherits (exec/child-env.ts): backupctl's environment without the variables the config's
 * `env()` references name, plus what the child is given. The end-to-end check with real restic, pg_dump, hooks and
 * command() sources is test/e2e/child_env_test.ts.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { rememberEnvSecrets } from "../../src/config/secrets.ts";
import { childEnvironment } from "../../src/exec/child-env.ts";

describe("childEnvironment", () => {
  // A config fragment naming two variables, one of them unset: both are withheld.
  rememberEnvSecrets({
    repositories: { local: { password: { secret: "env", name: "UNIT_CHILD_ENV_PASSWORD" } } },
    hooks: { env: { TOKEN: { secret: "env", name: "UNIT_CHILD_ENV_UNSET" } } },
    other: { secret: "file", path: "/run/secrets/x" },
  });
  const inherited = {
    PATH: "/usr/bin:/bin",
    HOME: "/home/backup",
    UNIT_CHILD_ENV_PASSWORD: "hunter2-unit",
    UNIT_CHILD_ENV_UNSET: "set after all",
    EMPTY: undefined,
  };

  it("withholds every variable an env() reference names, and keeps the rest", () => {
    assert.deepEqual(childEnvironment({}, inherited), { PATH: "/usr/bin:/bin", HOME: "/home/backup" });
  });

  it("adds what the child is given, even a withheld name; undefined removes a variable", () => {
    assert.deepEqual(
      childEnvironment({ UNIT_CHILD_ENV_PASSWORD: "given", HOME: undefined, RESTIC_PASSWORD: "r" }, inherited),
      { PATH: "/usr/bin:/bin", UNIT_CHILD_ENV_PASSWORD: "given", RESTIC_PASSWORD: "r" },
    );
  });

  it("starts from backupctl's own environment by default", () => {
    process.env.UNIT_CHILD_ENV_PASSWORD = "hunter2-unit";
    try {
      const env = childEnvironment();
      assert.equal(env.UNIT_CHILD_ENV_PASSWORD, undefined);
      assert.equal(env.PATH, process.env.PATH);
    } finally {
      delete process.env.UNIT_CHILD_ENV_PASSWORD;
    }
  });
});
