/**
 * The dashboard's access rules (src/web/security.ts): which addresses are loopback, when listening needs a token, how
 * the token is read (a file or the variable; too short refused), and how a request proves it (bearer, or basic
 * authentication's password; anything else refused).
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import type { IncomingMessage } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { UsageError } from "../../src/errors.ts";
import { authorized, isLoopback, listenProblem, readToken, tokenVariable } from "../../src/web/security.ts";

const token = "a-dashboard-token-of-32-characters";
const request = (authorization?: string) => ({ headers: { authorization } }) as unknown as IncomingMessage;

describe("the dashboard's access rules", () => {
  const dir = mkdtempSync(join(tmpdir(), "backupctl-security-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("knows loopback addresses, and needs a token for any other", () => {
    for (const host of ["127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost", "::ffff:127.0.0.1"]) {
      assert.equal(isLoopback(host), true, host);
      assert.equal(listenProblem(host, undefined), undefined, host);
    }
    for (const host of ["0.0.0.0", "::", "192.168.1.5", "10.0.0.1", "backup.example.org", "128.0.0.1"]) {
      assert.equal(isLoopback(host), false, host);
      assert.match(listenProblem(host, undefined) ?? "", new RegExp(`give a token in ${tokenVariable}`), host);
      assert.equal(listenProblem(host, token), undefined, host);
    }
  });

  it("reads the token from a file or the variable, and refuses one too short", () => {
    const file = join(dir, "token");
    writeFileSync(file, `${token}\n`);
    assert.equal(readToken({ tokenFile: file, env: {} }), token);
    assert.equal(readToken({ env: { [tokenVariable]: ` ${token} ` } }), token);
    assert.equal(readToken({ env: {} }), undefined);
    assert.equal(readToken({ env: { [tokenVariable]: "" } }), undefined);
    assert.throws(() => readToken({ env: { [tokenVariable]: "short" } }), (error: unknown) => {
      assert.ok(error instanceof UsageError);
      assert.match(error.message, /too short \(at least 16 characters\).*openssl rand -hex 24/);
      assert.ok(!error.message.includes('short"'), "the token itself is not repeated");
      return true;
    });
    assert.throws(() => readToken({ tokenFile: join(dir, "missing"), env: {} }), /--token-file .*cannot read it/);
  });

  it("lets a request in with the token as bearer or basic password, and nothing else", () => {
    const basic = (text: string) => `Basic ${Buffer.from(text).toString("base64")}`;
    assert.equal(authorized(request(), undefined), true, "no token set: open");
    assert.equal(authorized(request(`Bearer ${token}`), token), true);
    assert.equal(authorized(request(`bearer ${token}`), token), true);
    assert.equal(authorized(request(basic(`anyone:${token}`)), token), true);
    assert.equal(authorized(request(basic(`:${token}`)), token), true);
    for (
      const header of [
        undefined,
        "",
        `Bearer ${token}x`,
        `Bearer ${token.slice(1)}`,
        `Token ${token}`,
        basic(token), // no colon: a user name, no password
        basic(`${token}:wrong`),
        `Basic not-base64!`,
        `Bearer ${token} extra`,
      ]
    ) {
      assert.equal(authorized(request(header), token), false, String(header));
    }
  });
});
