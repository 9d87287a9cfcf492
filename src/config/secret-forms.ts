/**
 * The forms a secret value takes when a program prints it, so `redact` (secrets.ts) can remove each of them and not
 * only the value as it was read. A hook under `bash -x` prints `PGPASSWORD='S3cr3t'\''Q-456'`, a log line or an
 * error serialized as JSON escapes quotes and backslashes, a URL carries the value percent-encoded, and an HTTP Basic
 * `Authorization` header carries it base64-encoded behind `user:`. Every form is computed once, when the value is
 * remembered; redacting then only searches plain strings.
 *
 * Limits: the forms are those of bash (its `-x` trace, `printf %q`, `declare -p`, `$'…'`), POSIX-shell single quoting
 * in both common spellings, JSON (also with non-ASCII as `\uXXXX`, `/` as `\/`, and escaped twice), the usual URL
 * encoders (encodeURIComponent, form encoding with `+`, everything-but-unreserved), in upper and lower case hex, and
 * base64 (standard and URL-safe). In a longer base64 text the value's characters depend on where its bytes fall in a
 * 3-byte group: for each of the three offsets, the characters that depend on the value alone are removed, so the
 * character at each end that mixes in a neighbouring byte stays visible (it holds at most 4 bits of the value's first
 * or last byte). Other encodings (hex, quoted-printable, a cipher) are not recognized.
 */

/** The shortest form worth looking for: shorter ones would match ordinary text. */
const minimumLength = 4;

/** Every form of a secret value, the value itself included, without duplicates. */
export function secretForms(value: string): string[] {
  const forms = new Set<string>([value]);
  for (const form of shellForms(value)) forms.add(form);
  for (const form of jsonForms(value)) forms.add(form);
  for (const form of urlForms(value)) forms.add(form);
  for (const form of base64Forms(value)) forms.add(form);
  return [...forms].filter((form) => form.length >= minimumLength);
}

// ---------------------------------------------------------------------------------------------------------------
// Shell quoting. Each form is what stands between the quotes, so it is found whether or not the value is a whole word.

function shellForms(value: string): string[] {
  return [
    // 'S3cr3t'\''Q-456': bash and zsh (-x traces, ${var@Q}); 'S3cr3t'"'"'Q-456': Python's shlex.quote, some scripts.
    value.replaceAll("'", `'\\''`),
    value.replaceAll("'", `'"'"'`),
    // "S3cr3t'Q\\456": bash's declare -p and set, or any double-quoted word.
    value.replace(/[\\"$`]/g, (c) => `\\${c}`),
    // S3cr3t\'Q-456: printf %q when every character is printable.
    backslashQuoted(value, true),
    backslashQuoted(value, false),
    // $'S3cr3t\'Q\303\251': printf %q (and -x traces) with control characters, or non-ASCII in the C locale.
    ansiCQuoted(value, true),
    ansiCQuoted(value, false),
  ];
}

/** The characters bash's printf %q escapes with a backslash anywhere in a word (lib/sh/shquote.c). */
const backslashed = new Set(" \t\n'\"\\|&;()<>!{}*[?]^$`,");

/** printf %q's backslash quoting; `wordStart`: the value starts the word (a leading `~` or `#` is escaped too). */
function backslashQuoted(value: string, wordStart: boolean): string {
  let out = "";
  let previous = wordStart ? "" : "x";
  for (const c of value) {
    if (backslashed.has(c)) out += `\\${c}`;
    else if (c === "~" && (previous === "" || previous === "=" || previous === ":")) out += "\\~";
    else if (c === "#" && previous === "") out += "\\#";
    else out += c;
    previous = c;
  }
  return out;
}

const ansiCEscapes: Record<string, string> = {
  "\x07": "\\a",
  "\b": "\\b",
  "\t": "\\t",
  "\n": "\\n",
  "\v": "\\v",
  "\f": "\\f",
  "\r": "\\r",
  "\x1b": "\\E",
  "'": "\\'",
  "\\": "\\\\",
};

/**
 * bash's `$'…'` quoting (ansic_quote): `utf8` true is a UTF-8 locale (non-ASCII characters stay as they are), false
 * the C locale (each of their UTF-8 bytes as a 3-digit octal escape, like control characters).
 */
function ansiCQuoted(value: string, utf8: boolean): string {
  let out = "";
  for (const c of value) {
    const code = c.codePointAt(0)!;
    if (ansiCEscapes[c] !== undefined) out += ansiCEscapes[c];
    else if (code < 0x20 || code === 0x7f) out += octal(code);
    else if (code < 0x80 || utf8) out += c;
    else for (const byte of new TextEncoder().encode(c)) out += octal(byte);
  }
  return out;
}

const octal = (byte: number) => `\\${byte.toString(8).padStart(3, "0")}`;

// ---------------------------------------------------------------------------------------------------------------
// JSON: the text between the quotes of a JSON string.

function jsonForms(value: string): string[] {
  const json = JSON.stringify(value).slice(1, -1);
  const ascii = json.replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
  return [
    json,
    ascii, // Python's json.dumps, jq -a
    ascii.replace(/\\u([0-9a-f]{4})/g, (_, hex: string) => `\\u${hex.toUpperCase()}`),
    json.replaceAll("/", "\\/"), // PHP's json_encode
    JSON.stringify(json).slice(1, -1), // a JSON document inside a JSON string (a payload, a log line)
  ];
}

// ---------------------------------------------------------------------------------------------------------------
// URL encoding.

function urlForms(value: string): string[] {
  const component = encodeURIComponent(value); // leaves A-Z a-z 0-9 - _ . ! ~ * ' ( )
  const strict = percentEncode(value, /[A-Za-z0-9\-._~]/); // RFC 3986 unreserved only (Python's quote(v, safe=""))
  const form = new URLSearchParams({ v: value }).toString().slice(2); // application/x-www-form-urlencoded
  const forms = [component, component.replaceAll("%20", "+"), strict, strict.replaceAll("%20", "+"), form];
  return [...forms, ...forms.map((encoded) => encoded.replace(/%[0-9A-F]{2}/g, (escape) => escape.toLowerCase()))];
}

/** Percent-encodes the UTF-8 bytes of every character `keep` does not match (upper-case hex). */
function percentEncode(value: string, keep: RegExp): string {
  let out = "";
  for (const c of value) {
    if (keep.test(c)) out += c;
    else for (const byte of new TextEncoder().encode(c)) out += `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// base64.

/**
 * The value's base64 on its own (without padding: a padded text contains it), and for each of the three offsets its
 * bytes can have in a longer encoded text (`user:password` in an Authorization header), the characters that depend on
 * the value's bytes only; each in the standard and the URL-safe alphabet.
 */
function base64Forms(value: string): string[] {
  const bytes = new TextEncoder().encode(value);
  const forms: string[] = [];
  for (let offset = 0; offset < 3; offset++) {
    const shifted = new Uint8Array(offset + bytes.length);
    shifted.set(bytes, offset);
    const encoded = base64(shifted);
    // Character i covers bits [6i, 6i + 6) of the shifted bytes; the value holds bits [8 offset, 8 (offset + length)).
    const first = Math.ceil((8 * offset) / 6);
    const end = Math.floor((8 * (offset + bytes.length)) / 6);
    forms.push(encoded.slice(first, end));
  }
  forms.unshift(base64(bytes).replace(/=+$/, ""));
  return [...forms, ...forms.map((form) => form.replaceAll("+", "-").replaceAll("/", "_"))];
}

function base64(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}
