/**
 * Real receivers on loopback for the notification channels: an HTTP server that records every request (Slack,
 * webhooks, healthchecks, Uptime Kuma, ntfy all speak HTTP) and an SMTP server (smtp-server) with optional STARTTLS
 * under a throwaway certificate authority. Both can be told to fail, to be slow, or (HTTP) to go down and come back.
 * The HTTP server can also answer as a particular service does (service-receivers.ts).
 */
import { Buffer } from "node:buffer";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SMTPServer } from "smtp-server";

export interface ReceivedRequest {
  method: string;
  /** The path without the query string. */
  path: string;
  query: URLSearchParams;
  /** Lower-case names, as node:http gives them. */
  headers: IncomingHttpHeaders;
  body: string;
}

export interface HttpAnswer {
  status: number;
  body: string;
  headers?: Record<string, string>;
}

export interface HttpResponsePlan {
  /** Default 200. */
  status?: number;
  /** Default "ok"; a function answers from the request (to echo what it received). */
  body?: string | ((request: ReceivedRequest) => string);
  /** Response headers besides the default `Content-Type: text/plain` (a 429's Retry-After). */
  headers?: Record<string, string>;
  /** Answers from the request as a service would (test/support/service-receivers.ts); replaces status and body. */
  answer?: (request: ReceivedRequest) => HttpAnswer;
  /** Wait this long after the request's body arrived before answering. */
  delayMs?: number;
}

export interface HttpReceiver {
  /** http://127.0.0.1:PORT, no trailing slash. */
  url: string;
  port: number;
  requests: ReceivedRequest[];
  /** How the following requests are answered. */
  respondWith(plan: HttpResponsePlan): void;
  /** Stops listening and drops open connections: connections are refused until `up()`. */
  down(): Promise<void>;
  /** Listens again on the same port. */
  up(): Promise<void>;
  /** Resolves once `n` requests have arrived; rejects after `timeoutMs` (default 5 s). */
  waitFor(n: number, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export async function startHttpReceiver(initial: HttpResponsePlan = {}): Promise<HttpReceiver> {
  let plan = initial;
  let server: Server | undefined;
  const sockets = new Set<Socket>();
  const timers = new Set<ReturnType<typeof setTimeout>>();
  const requests: ReceivedRequest[] = [];

  function listen(port: number): Promise<number> {
    const created = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on("data", (chunk: Buffer) => chunks.push(chunk));
      request.on("end", () => {
        const url = new URL(request.url ?? "/", "http://127.0.0.1");
        const received: ReceivedRequest = {
          method: request.method ?? "",
          path: url.pathname,
          query: url.searchParams,
          headers: request.headers,
          body: Buffer.concat(chunks).toString("utf8"),
        };
        requests.push(received);
        const { status = 200, body = "ok", delayMs = 0 } = plan;
        const planned: HttpAnswer = plan.answer?.(received) ??
          { status, body: typeof body === "function" ? body(received) : body, headers: plan.headers };
        const answer = () => {
          if (response.destroyed) return;
          response.writeHead(planned.status, { "Content-Type": "text/plain", ...planned.headers }).end(planned.body);
        };
        if (delayMs <= 0) return answer();
        const timer = setTimeout(() => {
          timers.delete(timer);
          answer();
        }, delayMs);
        timers.add(timer);
      });
    });
    created.on("connection", (socket: Socket) => {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
    });
    server = created;
    return new Promise((resolve, reject) => {
      created.once("error", reject);
      created.listen(port, "127.0.0.1", () => {
        const address = created.address();
        resolve(typeof address === "object" && address ? address.port : port);
      });
    });
  }

  async function close(): Promise<void> {
    for (const timer of timers) clearTimeout(timer);
    timers.clear();
    const closing = server;
    server = undefined;
    if (!closing) return;
    const closed = new Promise<void>((resolve) => closing.close(() => resolve()));
    for (const socket of sockets) socket.destroy();
    sockets.clear();
    await closed;
  }

  const port = await listen(0);
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    respondWith: (next) => {
      plan = next;
    },
    down: close,
    up: async () => {
      if (!server) await listen(port);
    },
    waitFor: (n, timeoutMs = 5_000) => waitUntil(() => requests.length >= n, timeoutMs, `${n} HTTP requests`),
    stop: close,
  };
}

export interface ReceivedMail {
  /** The envelope sender and recipients (MAIL FROM, RCPT TO). */
  from: string;
  to: string[];
  /** Whether the session was TLS (upgraded with STARTTLS) when the message was sent. */
  secure: boolean;
  /** The user that logged in, if any. */
  user?: string;
  raw: string;
  /** Header names in lower case, values unfolded and decoded. */
  headers: Map<string, string>;
  subject: string;
  text: string;
  html: string;
}

export interface SmtpReceiverOptions {
  /** Offer STARTTLS with a certificate for 127.0.0.1 and localhost signed by a throwaway CA (`caFile`). */
  tls: boolean;
  /** Require this login (AUTH PLAIN or LOGIN); without it, authentication is optional. */
  user?: string;
  password?: string;
}

export interface SmtpReceiver {
  host: "127.0.0.1";
  port: number;
  /** The CA certificate (PEM) that signed the server's certificate, when `tls`. */
  caFile?: string;
  messages: ReceivedMail[];
  /** Answer DATA with this reply (e.g. 451) instead of accepting; undefined accepts again. */
  failDataWith(reply: { code: number; message: string } | undefined): void;
  waitFor(n: number, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export async function startSmtpReceiver(options: SmtpReceiverOptions): Promise<SmtpReceiver> {
  const dir = mkdtempSync(join(tmpdir(), "backupctl-smtp-"));
  const messages: ReceivedMail[] = [];
  let dataFailure: { code: number; message: string } | undefined;
  let certificate: { key: string; cert: string; caFile: string } | undefined;
  try {
    if (options.tls) certificate = makeCertificate(dir);
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }

  const server = new SMTPServer({
    logger: false,
    disableReverseLookup: true,
    disabledCommands: options.tls ? [] : ["STARTTLS"],
    ...(certificate ? { key: certificate.key, cert: certificate.cert } : {}),
    authOptional: options.user === undefined,
    // Clear-text login is what the "tls: false" server is for; checking it against TLS is the client's job.
    allowInsecureAuth: true,
    closeTimeout: 100,
    onAuth(auth, _session, callback) {
      const accepted = options.user === undefined ||
        (auth.username === options.user && auth.password === options.password);
      if (!accepted) return callback(replyError(535, "Authentication credentials invalid"));
      callback(null, { user: auth.username });
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      stream.on("end", () => {
        if (dataFailure) return callback(replyError(dataFailure.code, dataFailure.message));
        const raw = Buffer.concat(chunks).toString("utf8");
        const parsed = parseMail(raw);
        const { mailFrom, rcptTo } = session.envelope;
        messages.push({
          from: mailFrom ? mailFrom.address : "",
          to: rcptTo.map((address) => address.address),
          secure: session.secure,
          user: typeof session.user === "string" ? session.user : undefined,
          raw,
          ...parsed,
        });
        callback(null, "queued");
      });
    },
  });

  const port = await new Promise<number>((resolve, reject) => {
    server.once("error", reject);
    const listener = server.listen(0, "127.0.0.1", () => {
      const address = listener.address();
      resolve(typeof address === "object" && address ? address.port : 0);
    });
  });
  // A client dropping the connection mid-session is expected in the failure tests.
  server.on("error", () => {});

  return {
    host: "127.0.0.1",
    port,
    caFile: certificate?.caFile,
    messages,
    failDataWith: (reply) => {
      dataFailure = reply;
    },
    waitFor: (n, timeoutMs = 5_000) => waitUntil(() => messages.length >= n, timeoutMs, `${n} mails`),
    stop: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function replyError(code: number, message: string): Error {
  return Object.assign(new Error(message), { responseCode: code });
}

/** A CA and a server certificate for 127.0.0.1 and localhost, made with the openssl CLI (P-256 keys: fast). */
export function makeCertificate(dir: string): { key: string; cert: string; caFile: string } {
  const path = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => execFileSync("openssl", args, { stdio: ["ignore", "ignore", "pipe"] });
  const ecKey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  openssl(
    "req",
    "-x509",
    ...ecKey,
    "-keyout",
    path("ca.key"),
    "-out",
    path("ca.pem"),
    "-days",
    "2",
    "-subj",
    "/CN=backupctl test CA",
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  );
  openssl("req", "-new", ...ecKey, "-keyout", path("server.key"), "-out", path("server.csr"), "-subj", "/CN=localhost");
  writeFileSync(
    path("server.ext"),
    "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n" +
      "extendedKeyUsage=serverAuth\n",
  );
  openssl(
    "x509",
    "-req",
    "-in",
    path("server.csr"),
    "-CA",
    path("ca.pem"),
    "-CAkey",
    path("ca.key"),
    "-CAcreateserial",
    "-out",
    path("server.pem"),
    "-days",
    "2",
    "-extfile",
    path("server.ext"),
  );
  return {
    key: readFileSync(path("server.key"), "utf8"),
    cert: readFileSync(path("server.pem"), "utf8"),
    caFile: path("ca.pem"),
  };
}

async function waitUntil(done: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

// A MIME reader for what nodemailer writes: headers with encoded words, multipart (alternative, mixed) bodies, and
// 7bit, 8bit, quoted-printable or base64 parts. Not a general parser: enough to assert on what was sent.

interface MimePart {
  headers: Map<string, string>;
  body: string;
}

export function parseMail(raw: string): { headers: Map<string, string>; subject: string; text: string; html: string } {
  const root = splitPart(raw);
  const leaves = flatten(root);
  const find = (type: string) => leaves.find((part) => contentType(part).type === type);
  const text = find("text/plain");
  const html = find("text/html");
  return {
    headers: root.headers,
    subject: root.headers.get("subject") ?? "",
    text: text ? decodeBody(text) : "",
    html: html ? decodeBody(html) : "",
  };
}

function splitPart(raw: string): MimePart {
  const normalized = raw.replace(/\r\n/g, "\n");
  const end = normalized.indexOf("\n\n");
  const head = end < 0 ? normalized : normalized.slice(0, end);
  const body = end < 0 ? "" : normalized.slice(end + 2);
  const headers = new Map<string, string>();
  for (const line of head.replace(/\n[ \t]+/g, " ").split("\n")) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    if (!headers.has(name)) headers.set(name, decodeWords(line.slice(colon + 1).trim()));
  }
  return { headers, body };
}

function contentType(part: MimePart): { type: string; params: Map<string, string> } {
  const [type, ...rest] = (part.headers.get("content-type") ?? "text/plain").split(";");
  const params = new Map<string, string>();
  for (const param of rest) {
    const eq = param.indexOf("=");
    if (eq > 0) params.set(param.slice(0, eq).trim().toLowerCase(), param.slice(eq + 1).trim().replace(/^"|"$/g, ""));
  }
  return { type: type.trim().toLowerCase(), params };
}

function flatten(part: MimePart): MimePart[] {
  const { type, params } = contentType(part);
  const boundary = params.get("boundary");
  if (!type.startsWith("multipart/") || !boundary) return [part];
  const delimiter = `--${boundary}`;
  const closing = part.body.indexOf(`\n${delimiter}--`);
  const body = closing < 0 ? part.body : part.body.slice(0, closing + 1);
  return body.split(`${delimiter}\n`).slice(1)
    .map((chunk) => splitPart(chunk.replace(/\n$/, "")))
    .flatMap(flatten);
}

function decodeBody(part: MimePart): string {
  const encoding = (part.headers.get("content-transfer-encoding") ?? "7bit").toLowerCase();
  if (encoding === "base64") return Buffer.from(part.body.replace(/\s+/g, ""), "base64").toString("utf8");
  if (encoding === "quoted-printable") return decodeQuotedPrintable(part.body);
  return part.body;
}

function decodeQuotedPrintable(text: string): string {
  const soft = text.replace(/=\n/g, "");
  const bytes: number[] = [];
  for (let i = 0; i < soft.length; i++) {
    if (soft[i] === "=" && /^[0-9A-Fa-f]{2}$/.test(soft.slice(i + 1, i + 3))) {
      bytes.push(parseInt(soft.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(soft[i], "utf8"));
    }
  }
  return Buffer.from(bytes).toString("utf8");
}

/** RFC 2047: `=?UTF-8?Q?…?=` and `=?UTF-8?B?…?=`; whitespace between two encoded words is dropped. */
function decodeWords(value: string): string {
  return value
    .replace(/(\?=)\s+(=\?)/g, "$1$2")
    .replace(
      /=\?([^?]+)\?([QqBb])\?([^?]*)\?=/g,
      (_match, _charset: string, kind: string, data: string) =>
        kind.toUpperCase() === "B"
          ? Buffer.from(data, "base64").toString("utf8")
          : decodeQuotedPrintable(data.replace(/_/g, " ")),
    );
}
