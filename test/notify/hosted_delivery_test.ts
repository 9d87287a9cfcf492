/**
 * The six hosted channels (Discord, Telegram, PagerDuty, Pushover, Teams, Matrix) through the outbox and the CLI: a
 * 5xx and then a throttling 429 are retried, the second after the wait the service asked for (in the header or the
 * body, as each documents it), with the same request each time; `backupctl notify test` reaches each; and no token
 * shows, in any printed form, in an error, a warning, the outbox or the CLI's output, even when a receiver echoes the
 * whole request back.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { deliver, DeliveryError } from "../../src/notify/channels/mod.ts";
import { enqueueFor } from "../../src/notify/events.ts";
import { exampleMessages } from "../../src/notify/examples.ts";
import { deliverOutbox, retryDelayMs } from "../../src/notify/outbox.ts";
import { runMain } from "../support/in-process-cli.ts";
import { loadedWithNotifiers } from "../support/plan-fixtures.ts";
import { type HttpReceiver, type ReceivedRequest, startHttpReceiver } from "../support/receivers.ts";
import {
  type HostedChannel,
  hostedChannels,
  printedForms,
  serviceReceiver,
  throttled,
} from "../support/service-receivers.ts";
import { sqliteBackend } from "../support/state-backends.ts";
import { storeDb } from "../support/state-db.ts";

const T0 = new Date("2026-12-01T03:00:00Z");
const plus = (ms: number) => new Date(T0.getTime() + ms);
const failed = exampleMessages["run.failed"];

/** A careless server: answers 500 quoting the whole request, URL, headers and body. */
const echo = (r: ReceivedRequest) =>
  `no route for ${r.method} ${r.path}?${r.query} ${JSON.stringify(r.headers)} ${r.body}`;

describe("hosted channels: retries, notify test, secrets", () => {
  let http: HttpReceiver;
  let channels: HostedChannel[];
  let dir: string;
  before(async () => {
    http = await startHttpReceiver();
    channels = hostedChannels(http.url);
    for (const channel of channels) Object.assign(process.env, channel.env);
    dir = mkdtempSync(join(tmpdir(), "backupctl-hosted-"));
  });
  after(async () => {
    await http.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  function assertClean(channel: HostedChannel, text: string, where: string): void {
    for (const secret of channel.secrets) {
      for (const form of printedForms(secret)) assert.ok(!text.includes(form), `${where} shows ${form}: ${text}`);
    }
  }

  for (const service of ["discord", "telegram", "pagerDuty", "pushover", "teams", "matrix"] as const) {
    it(`${service}: a 503, then a 429 whose wait is honoured, then the same request delivered`, async () => {
      const channel = channels.find((c) => c.service === service);
      assert.ok(channel);
      const stateDir = join(dir, `state-${channel.name}`);
      const store = await sqliteBackend.open(stateDir, { warn: () => {} });
      const warnings: string[] = [];
      try {
        http.requests.length = 0;
        const config = loadedWithNotifiers({ [channel.name]: channel.notifier }, {}, dir);
        await store.enqueueNotifications(enqueueFor(config, ["shop"], failed, { now: T0 }));
        const pass = (at: number) =>
          deliverOutbox(store, config, { now: () => plus(at), warn: (l) => warnings.push(l) });
        const row = async () => (await storeDb(store).selectFrom("outbox").selectAll().execute())[0];

        http.respondWith({ status: 503, body: "upstream unavailable" });
        assert.deepEqual(await pass(1), { delivered: 0, failed: 1, givenUp: 0 });
        assert.equal((await row()).next_attempt_at, plus(1 + retryDelayMs(1)).toISOString(), "the backoff's 30 s");

        http.respondWith({ answer: () => throttled(channel.service, 120) });
        assert.deepEqual(await pass(30_001), { delivered: 0, failed: 1, givenUp: 0 });
        const throttledRow = await row();
        assert.match(throttledRow.last_error ?? "", /HTTP 429/);
        // The backoff says 60 s; the service asked for 120 s.
        assert.equal(throttledRow.next_attempt_at, plus(30_001 + 120_000).toISOString());
        assert.deepEqual(await pass(100_000), { delivered: 0, failed: 0, givenUp: 0 }, "not before the asked wait");

        const receiver = serviceReceiver(channel.service, channel.expected);
        http.respondWith({ answer: receiver.answer });
        assert.deepEqual(await pass(150_001), { delivered: 1, failed: 0, givenUp: 0 });
        assert.deepEqual(receiver.checked, [[]], "the delivered request has the documented shape");
        assert.equal(http.requests.length, 3);
        const [first, ...retries] = http.requests.map((r) => `${r.method} ${r.path}?${r.query}\n${r.body}`);
        for (const retry of retries) assert.equal(retry, first, "each attempt sends the same request");
        for (const text of [...warnings, throttledRow.last_error ?? ""]) assertClean(channel, text, "a warning");
      } finally {
        await store.close();
        http.respondWith({});
      }
    });
  }

  it("waits at most an hour, whatever a service asks for", async () => {
    const channel = channels[0];
    const store = await sqliteBackend.open(join(dir, "state-cap"), { warn: () => {} });
    try {
      const config = loadedWithNotifiers({ [channel.name]: channel.notifier }, {}, dir);
      await store.enqueueNotifications(enqueueFor(config, ["shop"], failed, { now: T0 }));
      http.respondWith({ status: 429, headers: { "Retry-After": "86400" }, body: "come back tomorrow" });
      assert.equal((await deliverOutbox(store, config, { now: () => plus(1) })).failed, 1);
      const [row] = await storeDb(store).selectFrom("outbox").selectAll().execute();
      assert.equal(row.next_attempt_at, plus(1 + 3_600_000).toISOString());
    } finally {
      await store.close();
      http.respondWith({});
    }
  });

  it("never shows a token in a delivery error: an echoing server, a refused connection, a timeout", async () => {
    for (const channel of channels) {
      http.respondWith({ status: 500, body: echo });
      const errors: string[] = [];
      const attempt = async (timeoutMs = 5_000) => {
        try {
          await deliver(channel.notifier, failed, { configDir: dir, timeoutMs });
          assert.fail(`${channel.name}: the delivery succeeded`);
        } catch (error) {
          assert.ok(error instanceof DeliveryError, String(error));
          errors.push(error.message);
        }
      };
      await attempt();
      assert.match(errors[0], /HTTP 500: no route for/, "the echo is quoted");
      assert.match(errors[0], /\((sensitive|url)\)/, "with what it echoed of the credentials taken out");
      http.respondWith({ delayMs: 1_000 });
      await attempt(100);
      await http.down();
      try {
        await attempt();
      } finally {
        await http.up();
      }
      assert.match(errors[1], /timed out/);
      assert.match(errors[2], /connection refused/);
      for (const message of errors) {
        assertClean(channel, message, `${channel.name}'s error`);
        assert.ok(!message.includes(http.url), `${channel.name}'s error shows the URL: ${message}`);
      }
    }
    http.respondWith({});
  });

  it("notify test reaches each channel, and reports a refusal without a token", async () => {
    const config = join(dir, "backup.config.ts");
    const notifiers = Object.fromEntries(channels.map((channel) => [channel.name, channel.notifier]));
    writeFileSync(
      config,
      `export default ${
        JSON.stringify({
          repositories: { local: { type: "restic", url: "/srv/restic", password: { secret: "env", name: "RP" } } },
          notifiers,
          projects: {
            shop: {
              schedule: "0 3 * * *",
              sources: [{ type: "sqlite", path: "/srv/app.db" }],
              repositories: ["local"],
              retention: { daily: 7 },
              notify: Object.keys(notifiers),
            },
          },
        })
      };\n`,
    );
    for (const channel of channels) {
      const receiver = serviceReceiver(channel.service, channel.expected);
      http.respondWith({ answer: receiver.answer });
      const ok = await runMain(["--config", config, "notify", "test", channel.name]);
      assert.equal(ok.code, 0, `${ok.stdout}${ok.stderr}`);
      const type = channel.notifier.type;
      assert.equal(ok.stdout, `✓ ${channel.name} (${type}): sent an example run.failed message\n`);
      assert.deepEqual(receiver.checked, [[]]);
      if (channel.service === "pagerDuty") {
        const resolve = await runMain(["--config", config, "notify", "test", channel.name, "--event", "run.succeeded"]);
        assert.equal(resolve.stdout, "✓ pd (pagerDuty): sent an example run.succeeded message\n");
        const started = await runMain(["--config", config, "notify", "test", channel.name, "--event", "run.started"]);
        assert.equal(started.stdout, "✓ pd (pagerDuty): nothing to send for run.started, an event this kind ignores\n");
        assert.deepEqual(receiver.checked, [[], []], "the resolve arrived, and nothing for run.started");
      }

      http.respondWith({ status: 500, body: echo });
      const refused = await runMain(["--config", config, "notify", "test", channel.name]);
      assert.equal(refused.code, 1, `${refused.stdout}${refused.stderr}`);
      assert.match(refused.stderr, new RegExp(`^✗ ${channel.name} \\(${type}\\): ${type} delivery failed: HTTP 500: `));
      for (const text of [ok.stdout, ok.stderr, refused.stdout, refused.stderr]) {
        assertClean(channel, text, "notify test's output");
      }
    }
    http.respondWith({});
  });
});
