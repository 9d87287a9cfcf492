/**
 * What keeps the dashboard safe to expose: the response headers every answer carries (a Content-Security-Policy that
 * allows only this server's own files and no inline script, nosniff, no framing, no referrer, no caching of pages), and
 * access control. On a loopback address anyone on the machine may look; beyond it a token is required, read from a
 * secret reference (an environment variable or a file, never a command-line value), and checked in constant time.
 * A browser sends it as the password of HTTP basic authentication (its own login prompt), a script as a bearer token.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import type { IncomingMessage } from "node:http";
import { UsageError } from "../errors.ts";

/** The variable `serve` and `watch` read the dashboard token from by default. */
export const tokenVariable = "BACKUPCTL_DASHBOARD_TOKEN";
/** Shorter tokens are refused: a guessable token on a network is no protection. */
export const minTokenLength = 16;

export const securityHeaders: Record<string, string> = {
  "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "X-Content-Type-Options": "nosniff",
  "X-Frame-Options": "DENY",
  "Referrer-Policy": "no-referrer",
  "Cross-Origin-Opener-Policy": "same-origin",
  "Cross-Origin-Resource-Policy": "same-origin",
};

/** Whether a listening address is reachable from this machine only. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" || /^127(\.\d{1,3}){3}$/.test(h) || /^::ffff:127(\.\d{1,3}){3}$/.test(h);
}

/**
 * The dashboard token from `--token-file PATH` or the environment variable (default {@link tokenVariable}); undefined
 * when neither is set. A token shorter than {@link minTokenLength} characters is refused with the fix.
 */
export function readToken(
  options: { tokenFile?: string; env?: Record<string, string | undefined> },
): string | undefined {
  let token: string | undefined;
  let from: string;
  if (options.tokenFile) {
    from = `--token-file ${options.tokenFile}`;
    try {
      token = readFileSync(options.tokenFile, "utf8").trim();
    } catch (error) {
      throw new UsageError(`${from}: cannot read it (${(error as NodeJS.ErrnoException).code ?? error})`);
    }
  } else {
    from = tokenVariable;
    token = (options.env ?? process.env)[tokenVariable]?.trim() || undefined;
  }
  if (token !== undefined && token.length < minTokenLength) {
    throw new UsageError(
      `${from}: the dashboard token is too short (at least ${minTokenLength} characters); make one with ` +
        "`openssl rand -hex 24`",
    );
  }
  return token;
}

/**
 * Whether a listen address may serve the dashboard: on loopback always, beyond it only with a token. The error says
 * how to fix it.
 */
export function listenProblem(host: string, token: string | undefined): string | undefined {
  if (isLoopback(host) || token !== undefined) return undefined;
  return `the dashboard on ${host} would be open to the network: give a token in ${tokenVariable} (or --token-file ` +
    `PATH; at least ${minTokenLength} characters, e.g. from \`openssl rand -hex 24\`), or listen on 127.0.0.1`;
}

const digest = (text: string) => createHash("sha256").update(text).digest();

/** Whether the request carries the token (bearer, or the password of basic authentication); always true without one. */
export function authorized(request: IncomingMessage, token: string | undefined): boolean {
  if (token === undefined) return true;
  const header = request.headers.authorization ?? "";
  let given: string | undefined;
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(header);
  const basic = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (bearer) given = bearer[1];
  else if (basic) {
    const decoded = Buffer.from(basic[1], "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    given = colon >= 0 ? decoded.slice(colon + 1) : undefined;
  }
  if (given === undefined) return false;
  // Equal-length digests: the comparison takes the same time whatever was sent.
  return timingSafeEqual(digest(given), digest(token));
}
