/**
 * Every channel against a real receiver on loopback: what arrives (method, path, headers, body, mail parts), and how
 * a refusal, a slow or missing receiver and a bad login become a DeliveryError that never quotes a credential.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type {
  EmailNotifier,
  HealthchecksNotifier,
  NtfyNotifier,
  SecretRef,
  SlackNotifier,
  UptimeKumaNotifier,
  WebhookNotifier,
} from "../../src/config/types.ts";
import { deliver, DeliveryError, type DeliveryOptions, type SlackPayload } from "../../src/notify/channels/mod.ts";
import { retryAfterMs } from "../../src/notify/channels/http.ts";
import { exampleMessages } from "../../src/notify/examples.ts";
import type { Message } from "../../src/notify/message.ts";
import {
  type HttpReceiver,
  type ReceivedRequest,
  type SmtpReceiver,
  startHttpReceiver,
  startSmtpReceiver,
} from "../support/receivers.ts";

const options: DeliveryOptions = { configDir: "/nonexistent", timeoutMs: 5_000 };
const failed = exampleMessages["run.failed"];
const succeeded = exampleMessages["run.succeeded"];
const recovered = exampleMessages["run.recovered"];
const started = exampleMessages["run.started"];
const summary = exampleMessages["summary.daily"];
const quietSummary: Message = {
  ...summary,
  severity: "info",
  title: "Daily summary: nothing ran",
  projects: [{ project: "shop", health: "ok", runs: { succeeded: 0, failed: 0, interrupted: 0 } }],
};

/** Sets environment variables for secret references; returns the reference. */
function envSecret(name: string, value: string): SecretRef {
  process.env[name] = value;
  return { secret: "env", name };
}

/** Runs a delivery that must fail and returns its DeliveryError. */
async function deliveryError(promise: Promise<void>): Promise<DeliveryError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof DeliveryError, `expected a DeliveryError, got ${error}`);
    return error;
  }
  assert.fail("the delivery succeeded but should have failed");
}

describe("notification channels", () => {
  let http: HttpReceiver;
  before(async () => {
    http = await startHttpReceiver();
  });
  after(async () => {
    await http.stop();
  });
  /** Each test starts with no recorded request and a receiver answering 200 at once. */
  function fresh(): void {
    http.requests.length = 0;
    http.respondWith({});
  }

  describe("slack", () => {
    const notifier = (): SlackNotifier => ({
      type: "slack",
      webhookUrl: envSecret("TEST_SLACK_URL", `${http.url}/services/T000/B000/slack-token-123`),
    });
    const received = (): SlackPayload => JSON.parse(http.requests[0].body);

    it("posts a failure as Block Kit: red bar, header, fields, the error in a code block, the next step", async () => {
      fresh();
      await deliver(notifier(), failed, options);
      assert.equal(http.requests.length, 1);
      const request = http.requests[0];
      assert.equal(request.method, "POST");
      assert.equal(request.path, "/services/T000/B000/slack-token-123");
      assert.equal(request.headers["content-type"], "application/json");
      assert.match(String(request.headers["user-agent"]), /^backupctl\/\d+\.\d+\.\d+/);
      const payload = received();
      assert.equal(payload.text, failed.title);
      assert.equal(payload.attachments[0].color, "#a30200");
      const [header, fields, error, context] = payload.attachments[0].blocks;
      assert.deepEqual(header, { type: "header", text: { type: "plain_text", text: failed.title } });
      assert.equal(fields.type, "section");
      const texts = fields.type === "section" ? (fields.fields ?? []).map((field) => field.text) : [];
      assert.deepEqual(texts, [
        "*Project*\nshop",
        "*Repositories*\nlocal, offsite",
        "*Run*\n20250301T030000Z-4f2a9c",
        "*Stage*\nbackup db",
        "*Attempt*\n3 of 3",
        "*Duration*\n6m 41s",
      ]);
      assert.equal(error.type, "section");
      const code = error.type === "section" ? error.text?.text ?? "" : "";
      assert.ok(code.startsWith("```\npg_dump: error:"), code);
      assert.ok(code.endsWith("the incomplete snapshot 7d3e0b1c was discarded\n```"), code);
      assert.equal(context.type, "context");
      const elements = context.type === "context" ? context.elements.map((element) => element.text) : [];
      assert.equal(elements[0], `*Next:* ${failed.next}`);
      assert.match(
        elements[1],
        /^backup-1 · <!date\^1740798401\^\{date_short_pretty\} \{time\}\|2025-03-01T03:06:41Z>$/,
      );
    });

    it("colours a recovery green, says how many runs failed before and shows the size", async () => {
      fresh();
      await deliver(notifier(), recovered, options);
      const payload = received();
      assert.equal(payload.attachments[0].color, "#2eb886");
      const body = JSON.stringify(payload.attachments[0].blocks);
      assert.match(body, /\*Failed runs before\*\\n2/);
      assert.match(body, /\*Read\*\\n1\.2 GiB/);
      assert.match(body, /\*Added\*\\n49\.0 MiB new in the repositories/);
      assert.match(body, /\*Duration\*\\n4m 55s/);
    });

    it("lists each project of a daily summary with its health, last success, size, duration and runs", async () => {
      fresh();
      await deliver(notifier(), summary, options);
      const payload = received();
      assert.equal(payload.attachments[0].color, "#daa038");
      const sections = payload.attachments[0].blocks.filter((block) => block.type === "section");
      const list = sections.map((block) => block.type === "section" ? block.text?.text ?? "" : "").join("\n");
      assert.match(
        list,
        /:white_check_mark: \*shop\*: ok, last success 4h 55m ago \(1\.2 GiB in 4m 55s\), runs: 1 succeeded/,
      );
      assert.match(list, /:x: \*wiki\*: failing, last success 2d 5h ago \(46\.0 MiB in 41s\), runs: 2 failed/);
      assert.match(list, /\*metrics\*: .*runs: 4 succeeded, 1 interrupted/);
      assert.doesNotMatch(list, /No backup ran/);
    });

    it("says plainly when nothing ran in the summary's period", async () => {
      fresh();
      await deliver(notifier(), quietSummary, options);
      const text = JSON.stringify(received());
      assert.match(text, /\*No backup ran between 2025-03-01T08:00:00Z and 2025-03-02T08:00:00Z\.\*/);
      assert.match(text, /\*shop\*: ok, no run in the period/);
      assert.equal(received().attachments[0].color, "#439fe0");
    });

    it("escapes Slack markup in what it quotes", async () => {
      fresh();
      await deliver(notifier(), { ...failed, error: "<!channel> & <https://evil.example|click>" }, options);
      const body = http.requests[0].body;
      assert.ok(body.includes("&lt;!channel&gt; &amp; &lt;https://evil.example|click&gt;"), body);
      assert.ok(!body.includes("<!channel>"));
    });
  });

  describe("webhook", () => {
    it("sends the message JSON as it is, with its version, the method and the resolved headers", async () => {
      fresh();
      const notifier: WebhookNotifier = {
        type: "webhook",
        url: envSecret("TEST_WEBHOOK_URL", `${http.url}/hooks/backup?team=ops`),
        method: "PUT",
        headers: { Authorization: envSecret("TEST_WEBHOOK_AUTH", "Bearer hook-token-456"), "X-Team": "ops" },
      };
      await deliver(notifier, failed, options);
      const request = http.requests[0];
      assert.equal(request.method, "PUT");
      assert.equal(request.path, "/hooks/backup");
      assert.equal(request.query.get("team"), "ops");
      assert.equal(request.headers["authorization"], "Bearer hook-token-456");
      assert.equal(request.headers["x-team"], "ops");
      assert.equal(request.headers["content-type"], "application/json");
      const body = JSON.parse(request.body);
      assert.deepEqual(body, failed);
      assert.equal(body.version, 1);
    });

    it("posts by default, with the user agent", async () => {
      fresh();
      await deliver({ type: "webhook", url: `${http.url}/plain` }, succeeded, options);
      assert.equal(http.requests[0].method, "POST");
      assert.match(String(http.requests[0].headers["user-agent"]), /^backupctl\//);
      assert.equal(JSON.parse(http.requests[0].body).event, "run.succeeded");
    });
  });

  describe("healthchecks", () => {
    const notifier = (): HealthchecksNotifier => ({
      type: "healthchecks",
      pingUrl: envSecret("TEST_HC_URL", `${http.url}/ping/0b5c1f0e-hc-check?create=1`),
    });

    it("pings /start, the URL itself on success and /fail on failure, with the same rid for one run", async () => {
      fresh();
      await deliver(notifier(), started, options);
      await deliver(notifier(), succeeded, options);
      await deliver(notifier(), failed, options);
      assert.deepEqual(http.requests.map((r) => [r.method, r.path]), [
        ["POST", "/ping/0b5c1f0e-hc-check/start"],
        ["POST", "/ping/0b5c1f0e-hc-check"],
        ["POST", "/ping/0b5c1f0e-hc-check/fail"],
      ]);
      const rids = http.requests.map((r) => r.query.get("rid"));
      assert.match(rids[0] ?? "", /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      assert.equal(new Set(rids).size, 1, "the three examples share a run id, so one rid");
      assert.ok(http.requests.every((r) => r.query.get("create") === "1"), "the ping URL's own query is kept");
      const failure = http.requests[2].body;
      assert.match(failure, /^shop: backup failed at backup db \(attempt 3\/3\)\nDuration: 6m 41s\n/);
      assert.match(failure, /password authentication failed/);
      assert.match(failure, /\nNext: Fix the cause in the error above, then run `backupctl apply --project shop`/);
    });

    it("gives another run another rid, pings success on a recovery and /log for other events", async () => {
      fresh();
      await deliver(notifier(), recovered, options);
      await deliver(notifier(), exampleMessages["deletions.held"], options);
      await deliver(notifier(), summary, options);
      assert.deepEqual(http.requests.map((r) => r.path), [
        "/ping/0b5c1f0e-hc-check",
        "/ping/0b5c1f0e-hc-check/log",
        "/ping/0b5c1f0e-hc-check/log",
      ]);
      assert.ok(http.requests[0].query.get("rid"));
      assert.notEqual(http.requests[0].query.get("rid"), http.requests[1].query.get("rid"));
      assert.equal(http.requests[2].query.get("rid"), null, "a summary belongs to no run");
    });

    it("pings /fail for an overdue backup and failed checks", async () => {
      fresh();
      for (const event of ["backup.overdue", "check.failed", "verify.failed"] as const) {
        await deliver(notifier(), exampleMessages[event], options);
      }
      assert.deepEqual(http.requests.map((r) => r.path), Array(3).fill("/ping/0b5c1f0e-hc-check/fail"));
    });
  });

  describe("uptime kuma", () => {
    const notifier = (): UptimeKumaNotifier => ({
      type: "uptimeKuma",
      pushUrl: envSecret("TEST_KUMA_URL", `${http.url}/api/push/kuma-token-789?status=up&msg=OK&ping=`),
    });

    it("pushes up with the title and duration after a success, replacing the URL's own values", async () => {
      fresh();
      await deliver(notifier(), succeeded, options);
      const request = http.requests[0];
      assert.equal(request.method, "GET");
      assert.equal(request.path, "/api/push/kuma-token-789");
      assert.deepEqual([...request.query], [["status", "up"], ["msg", succeeded.title], ["ping", "252000"]]);
    });

    it("pushes down after a failure and when overdue (no ping without a duration)", async () => {
      fresh();
      await deliver(notifier(), failed, options);
      await deliver(notifier(), exampleMessages["backup.overdue"], options);
      assert.deepEqual(Object.fromEntries(http.requests[0].query), {
        status: "down",
        msg: failed.title,
        ping: "401000",
      });
      assert.deepEqual(Object.fromEntries(http.requests[1].query), {
        status: "down",
        msg: exampleMessages["backup.overdue"].title,
      });
    });

    it("sends nothing for run.started: Kuma has no start signal", async () => {
      fresh();
      await deliver(notifier(), started, options);
      await deliver(notifier(), summary, options);
      await deliver(notifier(), recovered, options);
      assert.equal(http.requests.length, 1);
      assert.equal(http.requests[0].query.get("status"), "up");
    });
  });

  describe("ntfy", () => {
    it("posts the plain text with title, priority, tags and the access token", async () => {
      fresh();
      const notifier: NtfyNotifier = {
        type: "ntfy",
        topicUrl: `${http.url}/backups-7f3k`,
        token: envSecret("TEST_NTFY_TOKEN", "tk_ntfytoken0123"),
      };
      await deliver(notifier, failed, options);
      const request = http.requests[0];
      assert.equal(request.method, "POST");
      assert.equal(request.path, "/backups-7f3k");
      assert.equal(request.headers["title"], failed.title);
      assert.equal(request.headers["priority"], "4");
      assert.equal(request.headers["tags"], "rotating_light,shop");
      assert.equal(request.headers["authorization"], "Bearer tk_ntfytoken0123");
      assert.match(request.body, /^Project: +shop\n/, "the title is in its header, not repeated in the body");
      assert.match(request.body, /Error \(last lines\):\n {4}pg_dump: error:/);
      assert.match(request.body, /\nNext: Fix the cause in the error above/);
    });

    it("sends a success quieter, no Authorization without a token, and a non-ASCII title encoded", async () => {
      fresh();
      const notifier: NtfyNotifier = { type: "ntfy", topicUrl: `${http.url}/backups-7f3k` };
      await deliver(notifier, succeeded, options);
      await deliver(notifier, { ...succeeded, title: "café: backup succeeded ✔" }, options);
      assert.equal(http.requests[0].headers["priority"], "3");
      assert.equal(http.requests[0].headers["tags"], "white_check_mark,shop");
      assert.equal(http.requests[0].headers["authorization"], undefined);
      const encoded = String(http.requests[1].headers["title"]);
      const match = /^=\?UTF-8\?B\?([A-Za-z0-9+/=]+)\?=$/.exec(encoded);
      assert.ok(match, encoded);
      assert.equal(Buffer.from(match[1], "base64").toString("utf8"), "café: backup succeeded ✔");
    });

    it("sends the summary's project lines and says when nothing ran", async () => {
      fresh();
      const notifier: NtfyNotifier = { type: "ntfy", topicUrl: `${http.url}/backups-7f3k` };
      await deliver(notifier, summary, options);
      await deliver(notifier, quietSummary, options);
      assert.match(http.requests[0].body, /✔ shop +ok, last success 4h 55m ago/);
      assert.match(http.requests[0].body, /✘ wiki +failing/);
      assert.match(http.requests[1].body, /No backup ran between 2025-03-01T08:00:00Z and 2025-03-02T08:00:00Z\./);
    });
  });

  describe("failures", () => {
    const webhook = (path = "/hook"): WebhookNotifier => ({ type: "webhook", url: `${http.url}${path}` });

    it("turns HTTP 500 into a DeliveryError naming the status and the start of the body", async () => {
      fresh();
      http.respondWith({ status: 500, body: `internal error: database is locked ${"x".repeat(500)}` });
      const error = await deliveryError(deliver(webhook(), failed, options));
      assert.equal(error.status, 500);
      assert.match(error.message, /^webhook delivery failed: HTTP 500: internal error: database is locked x+$/);
      assert.ok(error.message.length < 300, "the body is cut to 200 characters");
    });

    it("gives up after timeoutMs when the receiver is slower, and says it timed out", async () => {
      fresh();
      http.respondWith({ delayMs: 3_000 });
      const start = Date.now();
      const error = await deliveryError(deliver(webhook(), failed, { ...options, timeoutMs: 300 }));
      const elapsed = Date.now() - start;
      assert.equal(error.message, "webhook delivery failed: timed out after 300ms");
      // The error says it timed out (the receiver answers after 3 s); no upper bound on wall time: benchmarks measure.
      assert.ok(elapsed >= 250, `returned after ${elapsed} ms`);
      assert.equal(http.requests.length, 1, "the request did arrive");
    });

    it("reports a receiver that is down as connection refused, and delivers once it is up again", async () => {
      fresh();
      await http.down();
      try {
        const error = await deliveryError(deliver(webhook(), failed, options));
        assert.equal(error.message, "webhook delivery failed: connection refused");
      } finally {
        await http.up();
      }
      await deliver(webhook(), failed, options);
      assert.equal(http.requests.length, 1);
    });

    it("reads the wait a throttled service asks for: Retry-After in seconds or as a date, else the body's hint", () => {
      const now = Date.parse("2026-12-01T03:00:00Z");
      const answer = (headers: Record<string, string> = {}) => new Response(null, { status: 429, headers });
      assert.equal(retryAfterMs(answer({ "Retry-After": "120" }), "", now), 120_000);
      assert.equal(retryAfterMs(answer({ "Retry-After": "Tue, 01 Dec 2026 03:05:00 GMT" }), "", now), 300_000);
      assert.equal(retryAfterMs(answer(), '{"errcode":"M_LIMIT_EXCEEDED","retry_after_ms":2500}', now), 2_500);
      assert.equal(retryAfterMs(answer(), '{"retry_after":1.25,"global":false}', now), 1_250);
      assert.equal(retryAfterMs(answer(), '{"ok":false,"parameters":{"retry_after":7}}', now), 7_000);
      assert.equal(retryAfterMs(answer(), "slow down", now), undefined);
      assert.equal(retryAfterMs(answer({ "Retry-After": "soon" }), "{}", now), undefined);
    });

    it("gives a 429's wait to the error, and none to a 500's", async () => {
      fresh();
      http.respondWith({ status: 429, headers: { "Retry-After": "90" }, body: "slow down" });
      assert.equal((await deliveryError(deliver(webhook(), failed, options))).retryAfterMs, 90_000);
      http.respondWith({ status: 500, headers: { "Retry-After": "90" }, body: "broken" });
      assert.equal((await deliveryError(deliver(webhook(), failed, options))).retryAfterMs, undefined);
    });

    it("reports an invalid URL without quoting it", async () => {
      const error = await deliveryError(deliver({ type: "webhook", url: "not a url secret-abc" }, failed, options));
      assert.equal(
        error.message,
        "webhook delivery failed: the URL is not a valid absolute URL: check the notifier's settings",
      );
      const ftp = await deliveryError(deliver({ type: "ntfy", topicUrl: "ftp://127.0.0.1/topic-9" }, failed, options));
      assert.match(ftp.message, /must start with http:\/\/ or https:\/\//);
      assert.doesNotMatch(ftp.message, /topic-9/);
    });
  });

  describe("secrets in errors", () => {
    const tokens = [
      "slack-secret-a1b2",
      "hook-secret-c3d4",
      "auth-secret-e5f6",
      "ping-secret-g7h8",
      "ntfy-secret-i9j0",
    ];
    /** The receiver echoes everything it got, as a careless server would. */
    const echo = {
      status: 500,
      body: (r: ReceivedRequest) => `no route for ${r.method} ${r.path}?${r.query} ${JSON.stringify(r.headers)}`,
    };

    function assertClean(error: DeliveryError): void {
      for (const token of tokens) assert.ok(!error.message.includes(token), `${token} leaked: ${error.message}`);
      assert.ok(!error.message.includes(http.url), `the URL leaked: ${error.message}`);
    }

    it("never shows a token of the URL or the headers, even when the server echoes them", async () => {
      fresh();
      http.respondWith(echo);
      const notifiers = [
        { type: "slack", webhookUrl: envSecret("TEST_SECRET_SLACK", `${http.url}/services/${tokens[0]}`) },
        {
          type: "webhook",
          url: envSecret("TEST_SECRET_HOOK", `${http.url}/hook?key=${tokens[1]}`),
          headers: { Authorization: envSecret("TEST_SECRET_AUTH", `Bearer ${tokens[2]}`) },
        },
        { type: "healthchecks", pingUrl: envSecret("TEST_SECRET_HC", `${http.url}/ping/${tokens[3]}`) },
        {
          type: "ntfy",
          topicUrl: `${http.url}/topic`,
          token: envSecret("TEST_SECRET_NTFY", tokens[4]),
        },
      ] as const;
      for (const notifier of notifiers) {
        const error = await deliveryError(deliver(notifier, failed, options));
        assert.match(error.message, /HTTP 500/);
        assertClean(error);
      }
      assert.equal(http.requests.length, notifiers.length);
      assert.ok(http.requests[1].body.length > 0 && http.requests[0].path.includes(tokens[0]), "the tokens were sent");
    });

    it("never shows a plain-string URL's token when the receiver is down or slow", async () => {
      fresh();
      const kuma: UptimeKumaNotifier = { type: "uptimeKuma", pushUrl: `${http.url}/api/push/${tokens[3]}?status=up` };
      http.respondWith({ delayMs: 2_000 });
      assertClean(await deliveryError(deliver(kuma, failed, { ...options, timeoutMs: 200 })));
      await http.down();
      try {
        const error = await deliveryError(deliver(kuma, failed, options));
        // Refused, or reset: a connection kept alive from the request before may meet the receiver going down.
        assert.match(error.message, /connection (refused|reset)/);
        assertClean(error);
      } finally {
        await http.up();
      }
    });
  });
});

describe("email", () => {
  let tls: SmtpReceiver;
  let plain: SmtpReceiver;
  const password = "smtp-pass-Zq81x";
  before(async () => {
    [tls, plain] = await Promise.all([
      startSmtpReceiver({ tls: true, user: "backup", password }),
      startSmtpReceiver({ tls: false }),
    ]);
  });
  after(async () => {
    await Promise.all([tls.stop(), plain.stop()]);
  });

  const base: Omit<EmailNotifier, "smtp"> = {
    type: "email",
    from: "backup@example.com",
    to: ["ops@example.com", "dba@example.com"],
  };
  const viaTls = (overrides: Partial<EmailNotifier["smtp"]> = {}): EmailNotifier => ({
    ...base,
    smtp: {
      host: "127.0.0.1",
      port: tls.port,
      ca: tls.caFile,
      user: "backup",
      password: envSecret("TEST_SMTP_PASSWORD", password),
      ...overrides,
    },
  });

  it("sends a failure over STARTTLS trusting the ca file: subject, recipients, text and HTML", async () => {
    tls.messages.length = 0;
    await deliver(viaTls(), failed, options);
    assert.equal(tls.messages.length, 1);
    const mail = tls.messages[0];
    assert.equal(mail.secure, true, "the session was upgraded with STARTTLS");
    assert.equal(mail.user, "backup");
    assert.equal(mail.from, "backup@example.com");
    assert.deepEqual(mail.to, ["ops@example.com", "dba@example.com"]);
    assert.equal(mail.subject, "[backupctl] shop: backup failed at backup db (attempt 3/3)");
    assert.equal(mail.headers.get("x-backupctl-event"), "run.failed");
    assert.match(
      mail.text,
      /^shop: backup failed at backup db \(attempt 3\/3\)\n\nProject: +shop\nRepositories: +local, offsite\n/,
    );
    assert.match(mail.text, /Attempt: +3 of 3\n/);
    assert.match(
      mail.text,
      /\n {4}pg_dump: error: connection to server at "db\.internal" \(10\.0\.4\.12\), port 5432 failed/,
    );
    assert.match(
      mail.text,
      /\nNext: Fix the cause in the error above, then run `backupctl apply --project shop`; the backup stays due/,
    );
    assert.match(mail.html, /border-left:4px solid #a30200/);
    assert.match(mail.html, /<h2[^>]*>shop: backup failed at backup db \(attempt 3\/3\)<\/h2>/);
    assert.match(mail.html, /<th[^>]*>Stage<\/th><td[^>]*>backup db<\/td>/);
    assert.match(mail.html, /<pre[^>]*>pg_dump: error: connection to server at &quot;db\.internal&quot;/);
  });

  it("sends in clear text when the server has no STARTTLS: a recovery and a summary, to one recipient", async () => {
    plain.messages.length = 0;
    const notifier: EmailNotifier = { ...base, to: "ops@example.com", smtp: { host: "127.0.0.1", port: plain.port } };
    await deliver(notifier, recovered, options);
    await deliver(notifier, summary, options);
    assert.equal(plain.messages.length, 2);
    const [recovery, daily] = plain.messages;
    assert.equal(recovery.secure, false);
    assert.deepEqual(recovery.to, ["ops@example.com"]);
    assert.equal(recovery.subject, "[backupctl] shop: backup succeeded again after 2 failed runs");
    assert.match(recovery.text, /Failed runs before: 2\n/);
    assert.match(recovery.html, /solid #2eb886/);
    assert.match(daily.text, /✔ shop +ok, last success 4h 55m ago \(1\.2 GiB in 4m 55s\), runs: 1 succeeded\n/);
    assert.match(daily.text, /✘ wiki +failing/);
    assert.match(daily.html, /<li>✔ <strong>shop<\/strong>: ok, last success/);
  });

  it("escapes HTML and encodes a non-ASCII subject", async () => {
    plain.messages.length = 0;
    const notifier: EmailNotifier = { ...base, smtp: { host: "127.0.0.1", port: plain.port } };
    await deliver(
      notifier,
      { ...failed, title: "café: backup failed ✘", error: `<script>alert("x")</script> & more` },
      options,
    );
    const mail = plain.messages[0];
    assert.match(mail.raw, /^Subject: =\?UTF-8\?/m, "the subject went out encoded");
    assert.equal(mail.subject, "[backupctl] café: backup failed ✘");
    assert.ok(mail.html.includes("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; more"), mail.html);
    assert.ok(!mail.html.includes("<script>"));
    assert.ok(mail.text.includes(`<script>alert("x")</script> & more`), "the text body is not escaped");
  });

  it("refuses to send in clear text with requireTls when the server offers no STARTTLS", async () => {
    plain.messages.length = 0;
    const notifier: EmailNotifier = { ...base, smtp: { host: "127.0.0.1", port: plain.port, requireTls: true } };
    const error = await deliveryError(deliver(notifier, failed, options));
    assert.match(error.message, /^email delivery failed: smtp\.requireTls is set but 127\.0\.0\.1 did not upgrade/);
    assert.equal(plain.messages.length, 0);
  });

  it("does not trust the server's certificate without the ca file", async () => {
    tls.messages.length = 0;
    const error = await deliveryError(deliver(viaTls({ ca: undefined }), failed, options));
    assert.match(error.message, /TLS certificate of 127\.0\.0\.1 is not trusted .*set smtp\.ca/);
    assert.equal(tls.messages.length, 0);
  });

  it("reports a wrong password without showing it", async () => {
    tls.messages.length = 0;
    const wrong = "wrong-pass-Yk29c";
    const error = await deliveryError(
      deliver(viaTls({ password: envSecret("TEST_SMTP_WRONG", wrong) }), failed, options),
    );
    assert.match(error.message, /rejected the login.*535/);
    assert.ok(!error.message.includes(wrong) && !error.message.includes(password), error.message);
    assert.equal(tls.messages.length, 0);
  });

  it("reports a refused message (451 on DATA) with the server's answer and no password", async () => {
    tls.messages.length = 0;
    tls.failDataWith({ code: 451, message: `temporary failure for ${password}` });
    try {
      const error = await deliveryError(deliver(viaTls(), failed, options));
      assert.match(error.message, /451/);
      assert.ok(!error.message.includes(password), error.message);
      assert.match(error.message, /temporary failure for \(sensitive\)/);
    } finally {
      tls.failDataWith(undefined);
    }
    assert.equal(tls.messages.length, 0);
  });

  it("reports a server that is not there", async () => {
    const closed = await startSmtpReceiver({ tls: false });
    const port = closed.port;
    await closed.stop();
    const error = await deliveryError(deliver({ ...base, smtp: { host: "127.0.0.1", port } }, failed, options));
    assert.match(error.message, /^email delivery failed: connection refused by 127\.0\.0\.1/);
  });
});
