/**
 * `redact` removes a secret in every form programs print it (config/secret-forms.ts). The expected texts are what
 * bash 5, Python 3, `base64` and the JavaScript encoders printed for one value holding a quote, a double quote, a
 * backslash, a space, `&`, `+`, `/`, `~` and a non-ASCII letter: copied here, not computed, so the test does not share
 * the code it checks.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { secretForms } from "../../src/config/secret-forms.ts";
import { redact, rememberSecret } from "../../src/config/secrets.ts";

const value = `S3cr3t'Q-456 a&b+c/d\\e"é~`;

describe("redact: the escaped forms of a secret", () => {
  rememberSecret(value);

  const cases: [what: string, printed: string, redacted: string][] = [
    ["the value itself", `password: ${value}`, "password: (sensitive)"],
    ["bash -x", `+ PGPASSWORD='S3cr3t'\\''Q-456 a&b+c/d\\e"é~'`, "+ PGPASSWORD='(sensitive)'"],
    ["shlex.quote", `'S3cr3t'"'"'Q-456 a&b+c/d\\e"é~'`, "'(sensitive)'"],
    ["printf %q", `S3cr3t\\'Q-456\\ a\\&b+c/d\\\\e\\"é~`, "(sensitive)"],
    ["printf %q in the C locale", `$'S3cr3t\\'Q-456 a&b+c/d\\\\e"\\303\\251~'`, "$'(sensitive)'"],
    ["declare -p", `declare -x V="S3cr3t'Q-456 a&b+c/d\\\\e\\"é~"`, 'declare -x V="(sensitive)"'],
    ["JSON", `{"error":"S3cr3t'Q-456 a&b+c/d\\\\e\\"é~"}`, '{"error":"(sensitive)"}'],
    ["JSON with \\u escapes (Python)", `"S3cr3t'Q-456 a&b+c/d\\\\e\\"\\u00e9~"`, '"(sensitive)"'],
    ["JSON in JSON", `"{\\"e\\":\\"S3cr3t'Q-456 a&b+c/d\\\\\\\\e\\\\\\"é~\\"}"`, '"{\\"e\\":\\"(sensitive)\\"}"'],
    ["encodeURIComponent", "?p=S3cr3t'Q-456%20a%26b%2Bc%2Fd%5Ce%22%C3%A9~&x=1", "?p=(sensitive)&x=1"],
    ["URLSearchParams", "p=S3cr3t%27Q-456+a%26b%2Bc%2Fd%5Ce%22%C3%A9%7E", "p=(sensitive)"],
    ["urllib quote", "S3cr3t%27Q-456%20a%26b%2Bc%2Fd%5Ce%22%C3%A9~", "(sensitive)"],
    ["urllib quote_plus", "S3cr3t%27Q-456+a%26b%2Bc%2Fd%5Ce%22%C3%A9~", "(sensitive)"],
    ["lower-case percent escapes", "S3cr3t%27Q-456%20a%26b%2bc%2fd%5ce%22%c3%a9~", "(sensitive)"],
    ["base64", "UzNjcjN0J1EtNDU2IGEmYitjL2RcZSLDqX4=", "(sensitive)="],
    // In a longer base64 text, the one character at each end that mixes in a neighbouring byte stays.
    ["base64 at offset 2 (u:…:x)", "Basic dTpTM2NyM3QnUS00NTYgYSZiK2MvZFxlIsOpfjp4", "Basic dTp(sensitive)jp4"],
    ["base64 at offset 0 (us:…:x)", "dXM6UzNjcjN0J1EtNDU2IGEmYitjL2RcZSLDqX46eA==", "dXM6(sensitive)6eA=="],
    ["base64 at offset 1 (use:…:x)", "dXNlOlMzY3IzdCdRLTQ1NiBhJmIrYy9kXGUiw6l+Ong=", "dXNlOl(sensitive)Ong="],
    ["URL-safe base64 at offset 1", "dXNlOlMzY3IzdCdRLTQ1NiBhJmIrYy9kXGUiw6l-Ong=", "dXNlOl(sensitive)Ong="],
  ];
  for (const [what, printed, redacted] of cases) {
    it(what, () => assert.equal(redact(printed), redacted));
  }

  it("a value of plain characters has few forms: itself and its base64 ones", () => {
    const forms = secretForms("plain-secret-4711");
    assert.ok(forms.includes("plain-secret-4711"));
    assert.ok(forms.includes("cGxhaW4tc2VjcmV0LTQ3MTE"));
    assert.ok(forms.length <= 8, forms.join(" "));
  });

  it("forms shorter than 4 characters are not looked for (they would match ordinary text)", () => {
    assert.ok(secretForms("abcd").every((form) => form.length >= 4));
  });
});
