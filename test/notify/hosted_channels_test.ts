/**
 * Discord, Telegram, PagerDuty, Pushover, Microsoft Teams and Matrix against loopback stand-ins that check each
 * request against the service's documented shape and limits and answer as the service does
 * (test/support/service-receivers.ts): what each sends for a failure, a recovery and a summary, that very long
 * messages stay within the limits, PagerDuty's trigger and resolve under one dedup key, Matrix's idempotent
 * transaction ids.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { enqueueFor, runFinished } from "../../src/notify/events.ts";
import {
  deliver,
  type DeliveryOptions,
  type DiscordPayload,
  type MatrixMessage,
  type PagerDutyEvent,
  type TeamsPayload,
  type TelegramPayload,
} from "../../src/notify/channels/mod.ts";
import { exampleMessages } from "../../src/notify/examples.ts";
import { eventsFor, type Message } from "../../src/notify/message.ts";
import { loadedWithNotifiers } from "../support/plan-fixtures.ts";
import { type HttpReceiver, startHttpReceiver } from "../support/receivers.ts";
import {
  type HostedChannel,
  hostedChannels,
  type ServiceName,
  serviceReceiver,
  telegramHtmlProblems,
} from "../support/service-receivers.ts";

const options: DeliveryOptions = { configDir: "/nonexistent", timeoutMs: 5_000 };
const failed = exampleMessages["run.failed"];
const recovered = exampleMessages["run.recovered"];
const summary = exampleMessages["summary.daily"];

/** A message at every limit: a long title, an error of 10,000 characters full of markup, 300 projects. */
const huge: Message = {
  ...summary,
  title: `shop_db: ${"<b>&amp; *bold* `tick` ".repeat(30)}`,
  error: `${"pg_dump: <error> & ```fence``` *x* _y_ @everyone\n".repeat(200)}`,
  projects: Array.from({ length: 300 }, (_, i) => ({
    project: `project_${i}_<&>`,
    health: i % 3 === 0 ? "failing" : "ok",
    lastSuccessAt: "2025-03-01T03:04:12Z",
    lastSuccessBytes: 1_000_000 * i,
    lastSuccessDurationMs: 60_000,
    runs: { succeeded: 1, failed: i % 3 === 0 ? 1 : 0, interrupted: 0 },
  })),
};

describe("hosted notification channels", () => {
  let http: HttpReceiver;
  let channels: HostedChannel[];
  before(async () => {
    http = await startHttpReceiver();
    channels = hostedChannels(http.url);
    for (const channel of channels) Object.assign(process.env, channel.env);
  });
  after(async () => {
    await http.stop();
  });

  /** The channel of a service, with a fresh stand-in answering for it. */
  function use(service: ServiceName) {
    const channel = channels.find((c) => c.service === service);
    assert.ok(channel);
    const receiver = serviceReceiver(service, channel.expected);
    http.requests.length = 0;
    http.respondWith({ answer: receiver.answer });
    const body = <T>(i = 0): T => JSON.parse(http.requests[i].body) as T;
    return { channel, receiver, body, send: (message: Message) => deliver(channel.notifier, message, options) };
  }

  for (const service of ["discord", "telegram", "pagerDuty", "pushover", "teams", "matrix"] as const) {
    it(`${service}: a failure, a recovery, a summary and a message past every limit have the documented shape`, async () => {
      const { send, receiver } = use(service);
      for (const message of [failed, recovered, summary, huge]) await send(message);
      assert.deepEqual(receiver.checked, receiver.checked.map(() => []), "the stand-in found no problem");
      // PagerDuty sends nothing for a summary (a pager is not a report).
      assert.equal(http.requests.length, service === "pagerDuty" ? 2 : 4);
    });
  }

  it("the stand-ins refuse what the services refuse (so the tests above can fail)", async () => {
    const discord = use("discord");
    await assert.rejects(
      deliver({ type: "webhook", url: `${http.url}${discord.channel.expected.path}` }, failed, options),
      /HTTP 400: .*content or embeds is required/,
    );
    assert.deepEqual(telegramHtmlProblems("<b>a & b</b>"), ["can't parse entities: unsupported entity at offset 5"]);
    assert.deepEqual(telegramHtmlProblems("<b>x</i>"), ['can\'t parse entities: unmatched end tag "i"']);
    assert.deepEqual(telegramHtmlProblems("<h1>x</h1>"), ['can\'t parse entities: unsupported start tag "h1"']);
    assert.deepEqual(telegramHtmlProblems("x".repeat(4097)), ["message is too long: 4097 characters"]);
    const pagerDuty = use("pagerDuty");
    process.env.TEST_PD_WRONG_KEY = "WrongKey0123456789abcdefABCDEF01";
    const wrongKey = { ...pagerDuty.channel.notifier, routingKey: { secret: "env", name: "TEST_PD_WRONG_KEY" } };
    await assert.rejects(deliver(wrongKey as never, failed, options), /HTTP 400: .*routing_key is not a valid/);
  });

  describe("discord", () => {
    it("sends an embed: red bar, title, inline fields, the error in a code block, host and time, no mentions", async () => {
      const { send, body } = use("discord");
      await send({ ...failed, error: "@everyone <@123> `quoted` **bold**" });
      const payload = body<DiscordPayload>();
      assert.equal(http.requests[0].method, "POST");
      assert.equal(http.requests[0].headers["content-type"], "application/json");
      assert.deepEqual(payload.allowed_mentions, { parse: [] });
      const [embed] = payload.embeds;
      assert.equal(embed.color, 0xa30200);
      assert.equal(embed.title, failed.title);
      assert.deepEqual(embed.fields.slice(0, 2), [
        { name: "Project", value: "shop", inline: true },
        { name: "Repositories", value: "local, offsite", inline: true },
      ]);
      assert.ok(!embed.fields.some((f) => f.name === "Host" || f.name === "At"));
      assert.equal(embed.footer.text, "backup-1");
      assert.equal(embed.timestamp, failed.at);
      assert.equal(
        embed.description,
        "```\n@everyone <@123> `quoted` **bold**\n```\n\n**Next:** " + failed.next.replaceAll("`", "\\`"),
      );
    });

    it("escapes markdown outside code blocks and lists the summary's projects", async () => {
      const { send, body } = use("discord");
      await send(summary);
      const [embed] = body<DiscordPayload>().embeds;
      assert.equal(embed.color, 0xdaa038);
      assert.match(embed.description, /^✔ \*\*shop\*\*: ok, last success 4h 55m ago/);
      assert.match(embed.description, /\n✘ \*\*wiki\*\*: failing/);
      await send({ ...failed, project: "my_shop", title: "my_shop: *failed*" });
      const [second] = body<DiscordPayload>(1).embeds;
      assert.equal(second.title, "my\\_shop: \\*failed\\*");
      assert.equal(second.fields[0].value, "my\\_shop");
    });

    it("keeps a huge message within the embed's limits: whole project lines, the error's end, the next step", async () => {
      const { send, body } = use("discord");
      await send({ ...huge, projects: huge.projects?.slice(0, 5) });
      await send(huge);
      const [some] = body<DiscordPayload>(0).embeds;
      assert.match(some.description, /\n```\n…[^]*@everyone\n\n```\n\n\*\*Next:\*\* Look at/, "the error's last lines");
      const [all] = body<DiscordPayload>(1).embeds;
      assert.match(all.description, /\\_\\<&\\>\*\*: [^\n]*\n… and \d+ more\n\n\*\*Next:\*\* Look at/);
    });
  });

  describe("telegram", () => {
    it("posts sendMessage to the bot's path: HTML with the title bold, facts, the error in <pre>, escaped", async () => {
      const { send, body, channel } = use("telegram");
      await send({ ...failed, error: 'relation "a<b" & more' });
      assert.equal(http.requests[0].path, `/bot${channel.expected.token}/sendMessage`);
      const payload = body<TelegramPayload>();
      assert.equal(payload.chat_id, -1001234567890);
      assert.equal(payload.parse_mode, "HTML");
      assert.deepEqual(payload.link_preview_options, { is_disabled: true });
      assert.match(
        payload.text,
        /^<b>shop: backup failed at backup db \(attempt 3\/3\)<\/b>\n\n<b>Project:<\/b> shop\n/,
      );
      assert.match(payload.text, /\n<pre>relation &quot;a&lt;b&quot; &amp; more<\/pre>\n/);
      assert.match(payload.text, /\n<b>Next:<\/b> Fix the cause/);
    });

    it("keeps a long message under 4096 shown characters: the last projects and the error's first lines go", async () => {
      const { send, body } = use("telegram");
      await send(huge);
      const text = body<TelegramPayload>().text;
      assert.match(text, /<i>… and \d+ more<\/i>/);
      assert.match(text, /\n<b>Next:<\/b> /, "the next step is always there");
    });
  });

  describe("pagerDuty", () => {
    it("triggers on a failure with the documented payload, under the project's dedup key", async () => {
      const { send, body, channel } = use("pagerDuty");
      await send(failed);
      assert.equal(http.requests[0].path, "/v2/enqueue");
      const event = body<PagerDutyEvent>();
      assert.equal(event.routing_key, channel.expected.token);
      assert.equal(event.event_action, "trigger");
      assert.equal(event.dedup_key, "backupctl/project/shop/backup");
      assert.equal(event.client, "backupctl");
      assert.deepEqual({ ...event.payload, custom_details: undefined }, {
        summary: failed.title,
        source: "backup-1",
        severity: "error",
        timestamp: failed.at,
        component: "shop",
        group: "local, offsite",
        class: "run.failed",
        custom_details: undefined,
      });
      assert.equal(event.payload?.custom_details["Stage"], "backup db");
      assert.match(event.payload?.custom_details["Error (last lines)"] ?? "", /^pg_dump: error:/);
      assert.equal(event.payload?.custom_details["Next"], failed.next);
    });

    it("an overdue backup shares the failure's alert; the next success, plain or a recovery, resolves it", async () => {
      const { send, body } = use("pagerDuty");
      await send(exampleMessages["backup.overdue"]);
      await send(exampleMessages["run.succeeded"]);
      await send(recovered);
      const events = http.requests.map((_, i) => body<PagerDutyEvent>(i));
      assert.deepEqual(events.map((e) => [e.event_action, e.dedup_key]), [
        ["trigger", "backupctl/project/shop/backup"],
        ["resolve", "backupctl/project/shop/backup"],
        ["resolve", "backupctl/project/shop/backup"],
      ]);
      assert.equal(events[1].payload, undefined, "a resolve carries only the key");
    });

    it("wires recovery: by default a project's failure triggers and its next run's success resolves", () => {
      const config = loadedWithNotifiers({ pd: channels.find((c) => c.service === "pagerDuty")?.notifier });
      assert.deepEqual(eventsFor(config.config.notifiers.pd), [
        "run.failed",
        "backup.overdue",
        "archive.stale",
        "run.succeeded",
        "run.recovered",
      ]);
      const common = { host: "h", project: "shop", repositories: ["local"], durationMs: 1000 };
      const at = new Date("2025-03-02T03:00:00Z");
      const fail = runFinished({ ...common, at, runId: "r1", status: "failed", failuresBefore: 0 });
      const again = runFinished({ ...common, at, runId: "r2", status: "succeeded", failuresBefore: 1 });
      const plain = runFinished({ ...common, at, runId: "r3", status: "succeeded", failuresBefore: 0 });
      for (const message of [fail, again, plain]) {
        assert.deepEqual(enqueueFor(config, ["shop"], message, { now: at }).map((row) => row.channel), ["pd"]);
      }
      assert.equal(again.event, "run.recovered");
    });

    it("sends nothing for a start or a summary; other events trigger under their own keys", async () => {
      const { send, body } = use("pagerDuty");
      await send(exampleMessages["run.started"]);
      await send(summary);
      assert.equal(http.requests.length, 0);
      for (const event of ["check.failed", "verify.failed", "runner.lost", "config.invalid"] as const) {
        await send(exampleMessages[event]);
      }
      assert.deepEqual(http.requests.map((_, i) => body<PagerDutyEvent>(i).dedup_key), [
        "backupctl/repository/offsite/check.failed",
        "backupctl/project/shop/verify.failed",
        "backupctl/runner/db-eu-2/runner.lost",
        "backupctl/config/config.invalid",
      ]);
    });
  });

  describe("pushover", () => {
    it("posts a form: title, the text without it, priority 1 for a failure and 0 otherwise, the event's time", async () => {
      const { send, channel } = use("pushover");
      await send(failed);
      await send(recovered);
      await send(exampleMessages["deletions.held"]);
      const forms = http.requests.map((r) => new URLSearchParams(r.body));
      assert.equal(http.requests[0].headers["content-type"], "application/x-www-form-urlencoded");
      assert.equal(forms[0].get("token"), channel.expected.token);
      assert.equal(forms[0].get("user"), channel.expected.user);
      assert.equal(forms[0].get("title"), failed.title);
      assert.match(forms[0].get("message") ?? "", /^Project: +shop\n/);
      assert.equal(forms[0].get("timestamp"), String(Date.parse(failed.at) / 1000));
      assert.deepEqual(forms.map((f) => f.get("priority")), ["1", "0", "0"]);
      assert.ok(forms.every((f) => !f.has("device") && !f.has("retry")));
    });

    it("cuts a long text before the next step, which always arrives", async () => {
      const { send } = use("pushover");
      await send(huge);
      const message = new URLSearchParams(http.requests[0].body).get("message") ?? "";
      assert.ok(message.length <= 1024, `${message.length}`);
      assert.match(message, /…\n\nNext: Look at/);
    });
  });

  describe("teams", () => {
    it("posts an adaptive card 1.4: the title in a container styled by severity, the facts, text runs", async () => {
      const { send, body } = use("teams");
      await send({ ...failed, error: "**not bold** [link](https://evil.example)" });
      const payload = body<TeamsPayload>();
      const [attachment] = payload.attachments;
      assert.equal(attachment.contentType, "application/vnd.microsoft.card.adaptive");
      assert.equal(attachment.content.version, "1.4");
      assert.equal(attachment.content.$schema, "http://adaptivecards.io/schemas/adaptive-card.json");
      const [title, factSet, ...rest] = attachment.content.body;
      assert.deepEqual(title, {
        type: "Container",
        style: "attention",
        bleed: true,
        items: [{
          type: "RichTextBlock",
          inlines: [{ type: "TextRun", text: failed.title, weight: "Bolder", size: "Medium" }],
        }],
      });
      assert.equal(factSet.type, "FactSet");
      assert.deepEqual(factSet.type === "FactSet" ? factSet.facts[0] : undefined, { title: "Project", value: "shop" });
      const runs = rest.flatMap((element) => element.type === "RichTextBlock" ? element.inlines : []);
      assert.ok(runs.some((run) => run.text === "**not bold** [link](https://evil.example)" && run.fontType));
      assert.deepEqual(runs.slice(-2).map((run) => run.text), ["Next: ", failed.next]);
      await send(recovered);
      const good = body<TeamsPayload>(1).attachments[0].content.body[0];
      assert.equal(good.type === "Container" ? good.style : undefined, "good");
    });
  });

  describe("matrix", () => {
    it("puts an m.text message with its HTML form into the room, the token in the header only", async () => {
      const { send, body, channel, receiver } = use("matrix");
      await send({ ...failed, error: "<script>x</script> & more" });
      const request = http.requests[0];
      assert.equal(request.method, "PUT");
      assert.match(
        request.path,
        /^\/_matrix\/client\/v3\/rooms\/!backupRoom42%3Aexample\.org\/send\/m\.room\.message\/backupctl-[0-9a-f]{32}$/,
      );
      assert.equal(request.headers.authorization, `Bearer ${channel.expected.token}`);
      assert.equal([...request.query].length, 0);
      const message = body<MatrixMessage>();
      assert.equal(message.msgtype, "m.text");
      assert.match(message.body, /^shop: backup failed at backup db \(attempt 3\/3\)\n\nProject: +shop\n/);
      assert.equal(message.format, "org.matrix.custom.html");
      assert.match(message.formatted_body, /^<h4><font data-mx-color="#a30200" color="#a30200">■<\/font> shop: /);
      assert.match(message.formatted_body, /<pre><code>&lt;script&gt;x&lt;\/script&gt; &amp; more<\/code><\/pre>/);
      assert.equal(receiver.stored.length, 1);
    });

    it("sends one stored message twice under one transaction id, another message under another", async () => {
      const { send, receiver } = use("matrix");
      const stored = JSON.parse(JSON.stringify(failed)) as Message;
      await send(stored);
      await send(JSON.parse(JSON.stringify(failed)) as Message);
      await send(recovered);
      const txns = http.requests.map((r) => r.path.split("/").pop());
      assert.equal(txns[0], txns[1]);
      assert.notEqual(txns[0], txns[2]);
      assert.equal(receiver.stored.length, 2, "the homeserver stored the repeated transaction once");
    });
  });
});
