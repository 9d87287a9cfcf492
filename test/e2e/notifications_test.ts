/**
 * Notifications end to end: the real CLI and restic, with real HTTP and SMTP receivers on loopback. Every channel
 * kind delivers what its defaults say (monitors: each run's start and end; chat, mail, webhooks, ntfy: what needs a
 * human); failing, slow and down receivers never fail a backup and are retried from the outbox until they answer or
 * the notification expires; held deletions, overdue backups, failed checks and the daily summary are sent once per
 * episode or day; and no credential of a channel ends up in any output, state file or stored payload.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type CliResult, runCli, runTool } from "../support/cli.ts";
import { type DemoDir, makeDemo } from "../support/demo.ts";
import { filesUnder } from "../support/inspect.ts";
import {
  type HttpReceiver,
  type ReceivedRequest,
  type SmtpReceiver,
  startHttpReceiver,
  startSmtpReceiver,
} from "../support/receivers.ts";

/** A time as status shows it (the display zone, with its offset), as a RegExp source. */
const shownTime = String.raw`\d{4}-\d\d-\d\d \d\d:\d\d:\d\d[+-]\d\d:\d\d`;

/** 2026-11-DD at HH:MM UTC, as --now takes it. */
const at = (day: number, hour = 10, minute = 0) =>
  new Date(Date.UTC(2026, 10, day, hour, minute)).toISOString().replace(".000Z", "Z");

/** The run id apply printed for a project. */
function runIdOf(result: CliResult, project = "app"): string {
  const match = result.stdout.match(new RegExp(`^Run (\\S+) \\(project ${project}\\)$`, "m"));
  assert.ok(match, `no run id in:\n${result.stdout}`);
  return match[1];
}

/** The snapshot ids (short) apply printed for its backups. */
function snapshotsOf(result: CliResult): string[] {
  return [...result.stdout.matchAll(/\+ backup \S+ → \S+: snapshot ([0-9a-f]{8})/g)].map((m) => m[1]);
}

/** The healthchecks `rid` of a run, derived independently of the product: SHA-256 as an RFC 9562 v8 UUID. */
function ridOf(runId: string): string {
  const bytes = createHash("sha256").update(runId).digest().subarray(0, 16);
  bytes[6] = (bytes[6] & 0x0f) | 0x80;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = bytes.toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

const json = (request: ReceivedRequest) => JSON.parse(request.body);
const show = (result: CliResult) => `exit ${result.code}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`;

/** An apply whose run failed (exit 1 for that reason, not for any other). */
function assertRunFailed(result: CliResult): void {
  assert.equal(result.code, 1, show(result));
  assert.match(result.stdout, /^Run \S+ failed in /m, show(result));
}

/** The bytes of every file of the state folder (state.db and its -wal, locks, private files), not the repositories. */
function stateFiles(dir: string): { path: string; bytes: string }[] {
  return filesUnder(dir).filter((file) => !file.path.startsWith(join(dir, "restic-")));
}

/**
 * Reads state.db and its -wal and -shm files every 20 ms while a command runs (the -wal file is gone once the
 * command closes the database), handing their bytes to `scan`. Returns how many reads saw a -wal file.
 */
function watchStateFiles(dir: string, scan: (where: string, bytes: string) => void): { stop(): number } {
  let walReads = 0;
  const read = () => {
    let names: string[];
    try {
      names = readdirSync(dir).filter((name) => name.startsWith("state.db"));
    } catch {
      return;
    }
    for (const name of names) {
      try {
        const bytes = readFileSync(join(dir, name)).toString("latin1");
        if (name.endsWith("-wal") && bytes.length > 0) walReads++;
        scan(`${name} while a command ran`, bytes);
      } catch {
        // checkpointed and removed meanwhile
      }
    }
  };
  const timer = setInterval(read, 20);
  return {
    stop() {
      clearInterval(timer);
      read();
      return walReads;
    },
  };
}

describe("notifications: every channel", () => {
  let demo: DemoDir;
  let http: HttpReceiver;
  let tls: SmtpReceiver;
  let plain: SmtpReceiver;
  const outputs: { what: string; result: CliResult }[] = [];
  const secrets = {
    hookToken: "hook-token-5f3a9c1e7b2d4608",
    smtpPassword: "smtp-pw-c0ffee-91b7e2d4a6f8",
    slackToken: "slackpath0d6e4b2a9c7f1e35",
    ntfyToken: "tk_ntfy7e1c9a3f5b2d8046",
  };
  const slackPath = `/slack/services/T0001/B0002/${secrets.slackToken}`;
  const hcPath = "/hc/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0";
  const kumaPath = "/kuma/api/push/kumaPushTok";
  const recipients = ["ops@example.com", "oncall@example.com"];
  const fatal = "FATAL: relation shop_orders_e2e does not exist";
  /** Where a secret was found: "label in place", never the value. */
  const leaks = new Set<string>();
  const scan = (where: string, text: string) => {
    for (const [label, value] of Object.entries(secrets)) if (text.includes(value)) leaks.add(`${label} in ${where}`);
  };
  let walReads = 0;
  const cli = async (what: string, args: string[]) => {
    const watcher = watchStateFiles(join(demo.dir, ".backupctl"), scan);
    const result = await runCli(["--config", demo.config, ...args], {
      env: {
        ...demo.env,
        HOOK_TOKEN: secrets.hookToken,
        SMTP_PASSWORD: secrets.smtpPassword,
        SLACK_WEBHOOK_URL: `${http.url}${slackPath}`,
        NTFY_TOKEN: secrets.ntfyToken,
      },
    });
    walReads += watcher.stop();
    outputs.push({ what, result });
    return result;
  };
  /** The requests that arrived since `mark`, for one channel (by path prefix). */
  const to = (prefix: string, mark: number) => http.requests.slice(mark).filter((r) => r.path.startsWith(prefix));

  /** `run`: the source's shell command; it gets the webhook token as $TOKEN, as a dump tool would get a password. */
  function writeConfig(run: string, retention = "{ daily: 7 }"): void {
    writeFileSync(
      demo.config,
      `import { command, defineConfig, email, env, healthchecks, ntfy, restic, slack, uptimeKuma, webhook } from "backupctl";
export default defineConfig({
  repositories: { local: restic({ url: ".backupctl/restic-demo", password: env("DEMO_RESTIC_PASSWORD") }) },
  notifiers: {
    chat: slack({ webhookUrl: env("SLACK_WEBHOOK_URL") }),
    mail: email({
      smtp: { host: "127.0.0.1", port: ${tls.port}, requireTls: true, ca: ${JSON.stringify(tls.caFile)},
        user: "backup", password: env("SMTP_PASSWORD") },
      from: "backupctl@example.com",
      to: ${JSON.stringify(recipients)},
    }),
    relay: email({ smtp: { host: "127.0.0.1", port: ${plain.port} }, from: "backupctl@example.com", to: "root@example.com" }),
    hook: webhook({ url: "${http.url}/hook", method: "PUT", headers: { "X-Backup-Token": env("HOOK_TOKEN") } }),
    hc: healthchecks({ pingUrl: "${http.url}${hcPath}" }),
    kuma: uptimeKuma({ pushUrl: "${http.url}${kumaPath}?status=up&msg=OK&ping=" }),
    phone: ntfy({ topicUrl: "${http.url}/ntfy/backups", token: env("NTFY_TOKEN") }),
  },
  projects: {
    app: {
      schedule: "0 3 * * *",
      repositories: ["local"],
      retention: ${retention},
      notify: ["chat", "mail", "relay", "hook", "hc", "kuma", "phone"],
      sources: [command({ name: "db", filename: "db.txt", env: { TOKEN: env("HOOK_TOKEN") }, run: ${
        JSON.stringify(run)
      } })],
    },
  },
});
`,
    );
  }
  const succeeding = "seq 1 2000";
  // The dump tool's stderr quotes its credential: the error tail sent out must not.
  const failing = `echo "pg_dump: connecting with token $TOKEN" >&2; echo "${fatal}" >&2; exit 1`;

  let failedRun = "";
  const snapshots: string[] = [];

  before(async () => {
    demo = makeDemo();
    http = await startHttpReceiver();
    tls = await startSmtpReceiver({ tls: true, user: "backup", password: secrets.smtpPassword });
    plain = await startSmtpReceiver({ tls: false });
  });
  after(async () => {
    await http?.stop();
    await tls?.stop();
    await plain?.stop();
    demo?.cleanup();
  });

  it("a successful run pings healthchecks (start, then success, same rid) and Uptime Kuma (up), nothing else", async () => {
    writeConfig(succeeding);
    const result = await cli("apply day 1", ["apply", "--now", at(1)]);
    assert.equal(result.code, 0, show(result));
    snapshots.push(...snapshotsOf(result));
    const runId = runIdOf(result);
    // hc: start and success; Kuma: only the success (it has no start signal, so run.started is not its default).
    assert.match(result.stdout, /^Notifications: 3 sent\.$/m);

    const hc = to("/hc/", 0);
    assert.deepEqual(hc.map((r) => [r.method, r.path]), [["POST", `${hcPath}/start`], ["POST", hcPath]]);
    assert.equal(hc[0].query.get("rid"), ridOf(runId));
    assert.equal(hc[1].query.get("rid"), ridOf(runId), "start and success pair up by rid");
    assert.match(hc[0].body, /^app: backup started \(db\)/);
    assert.match(hc[1].body, /^app: backup succeeded in /);

    const kuma = to("/kuma/", 0);
    assert.equal(kuma.length, 1, "Kuma has no start signal: one push, at the end");
    assert.equal(kuma[0].method, "GET");
    assert.equal(kuma[0].path, kumaPath);
    assert.equal(kuma[0].query.get("status"), "up");
    assert.match(kuma[0].query.get("msg")!, /^app: backup succeeded in /);
    assert.match(kuma[0].query.get("ping")!, /^\d+$/);

    assert.deepEqual(to("/slack/", 0), []);
    assert.deepEqual(to("/hook", 0), []);
    assert.deepEqual(to("/ntfy/", 0), []);
    assert.equal(tls.messages.length + plain.messages.length, 0, "no mail for a routine success");
  });

  it("a failed run reaches every channel with the stage, the attempt and the error's last lines", async () => {
    writeConfig(failing);
    const mark = http.requests.length;
    const result = await cli("apply day 2 (failing)", ["apply", "--now", at(2)]);
    assertRunFailed(result);
    failedRun = runIdOf(result);
    // hc: start and fail; Kuma: down; Slack, the webhook, ntfy and 2 mails.
    assert.match(result.stdout, /^Notifications: 8 sent\.$/m, result.stdout);
    assert.match(result.stdout, /^ {4}pg_dump: connecting with token \(sensitive\)$/m);
    const title = "app: backup failed at backup db (attempt 1/3)";

    const [chat] = to("/slack/", mark);
    assert.equal(chat.path, slackPath);
    assert.equal(chat.method, "POST");
    const slackBody = json(chat);
    assert.equal(slackBody.text, title);
    assert.equal(slackBody.attachments[0].color, "#a30200");
    const blocks = JSON.stringify(slackBody.attachments[0].blocks);
    assert.match(blocks, /"type":"header".*app: backup failed at backup db \(attempt 1\/3\)/);
    assert.ok(blocks.includes("*Stage*\\nbackup db"), blocks);
    assert.ok(blocks.includes(fatal), "the error tail is in a code block");

    await tls.waitFor(1);
    const mail = tls.messages[0];
    assert.equal(mail.secure, true, "STARTTLS against the private CA");
    assert.equal(mail.user, "backup");
    assert.deepEqual(mail.to, recipients);
    assert.equal(mail.from, "backupctl@example.com");
    assert.equal(mail.subject, `[backupctl] ${title}`);
    assert.match(mail.text, new RegExp(`^${title.replace(/[()/]/g, "\\$&")}\n`));
    assert.match(mail.text, /Stage: +backup db/);
    assert.match(mail.text, /Error \(last lines\):\n(.*\n)*? +FATAL: relation shop_orders_e2e does not exist\n/);
    assert.ok(mail.html.includes(`<pre`) && mail.html.includes(fatal), mail.html);
    assert.ok(mail.html.includes("#a30200"));

    await plain.waitFor(1);
    assert.equal(plain.messages[0].secure, false, "the relay offers no TLS: sent in clear text");
    assert.deepEqual(plain.messages[0].to, ["root@example.com"]);
    assert.equal(plain.messages[0].subject, `[backupctl] ${title}`);
    assert.ok(plain.messages[0].text.includes(fatal));

    const [hook] = to("/hook", mark);
    assert.equal(hook.method, "PUT");
    assert.equal(hook.headers["x-backup-token"], secrets.hookToken);
    assert.match(String(hook.headers["content-type"]), /^application\/json/);
    const payload = json(hook);
    assert.equal(payload.version, 1);
    assert.equal(payload.event, "run.failed");
    assert.equal(payload.severity, "bad");
    assert.equal(payload.project, "app");
    assert.equal(payload.runId, failedRun);
    assert.equal(payload.stage, "backup db");
    assert.deepEqual(payload.attempt, { n: 1, of: 3 });
    assert.deepEqual(payload.repositories, ["local"]);
    assert.ok(payload.error.includes(fatal), payload.error);
    assert.match(payload.next, /backupctl apply --project app/);

    const [phone] = to("/ntfy/", mark);
    assert.equal(phone.path, "/ntfy/backups");
    assert.equal(phone.headers.title, title);
    assert.equal(phone.headers.priority, "4");
    assert.equal(phone.headers.tags, "rotating_light,app");
    assert.equal(phone.headers.authorization, `Bearer ${secrets.ntfyToken}`);
    assert.ok(phone.body.includes(fatal));

    const hc = to("/hc/", mark);
    assert.deepEqual(hc.map((r) => r.path), [`${hcPath}/start`, `${hcPath}/fail`]);
    assert.deepEqual(hc.map((r) => r.query.get("rid")), [ridOf(failedRun), ridOf(failedRun)]);
    assert.ok(hc[1].body.includes(fatal));

    const kuma = to("/kuma/", mark);
    assert.equal(kuma.length, 1);
    assert.equal(kuma[0].query.get("status"), "down");
    assert.equal(kuma[0].query.get("msg"), title);
  });

  it("the next successful run is a recovery on every channel, counting the failures before it", async () => {
    writeConfig(succeeding);
    const mark = http.requests.length;
    const result = await cli("apply day 3 (fixed)", ["apply", "--now", at(3)]);
    assert.equal(result.code, 0, show(result));
    snapshots.push(...snapshotsOf(result));
    const runId = runIdOf(result);
    assert.notEqual(runId, failedRun);
    const title = "app: backup succeeded again after 1 failed run";

    const slackBody = json(to("/slack/", mark)[0]);
    assert.equal(slackBody.text, title);
    assert.equal(slackBody.attachments[0].color, "#2eb886");
    const payload = json(to("/hook", mark)[0]);
    assert.equal(payload.event, "run.recovered");
    assert.equal(payload.failuresBefore, 1);
    assert.equal(payload.runId, runId);
    assert.equal(to("/ntfy/", mark)[0].headers.title, title);
    await tls.waitFor(2);
    await plain.waitFor(2);
    assert.equal(tls.messages[1].subject, `[backupctl] ${title}`);
    assert.match(tls.messages[1].text, /Failed runs before: +1/);
    assert.equal(plain.messages[1].subject, `[backupctl] ${title}`);
    const hc = to("/hc/", mark);
    assert.deepEqual(hc.map((r) => r.path), [`${hcPath}/start`, hcPath]);
    assert.deepEqual(hc.map((r) => r.query.get("rid")), [ridOf(runId), ridOf(runId)]);
    const kuma = to("/kuma/", mark);
    assert.deepEqual(kuma.map((r) => r.query.get("status")), ["up"]);
    assert.equal(kuma[0].query.get("msg"), title);
  });

  it("deletions held for approval (retention changed, no terminal) send deletions.held with the snapshot ids", async () => {
    assert.equal(snapshots.length, 2, "day 1 and day 3 made a snapshot each");
    writeConfig(succeeding, "{ last: 1 }");
    const mark = http.requests.length;
    const mails = tls.messages.length;
    const result = await cli("apply day 4 (retention changed)", ["apply", "--now", at(4)]);
    assert.equal(result.code, 0, show(result));
    assert.match(result.stdout, /^! HELD: forget 1 snapshot of app\/db in local needs approval: retention changed/m);
    assert.match(result.stderr, /WARNING: 1 deletion was held back/);

    const held = to("/hook", mark).map(json).filter((p) => p.event === "deletions.held");
    assert.equal(held.length, 1);
    assert.equal(held[0].project, "app");
    assert.equal(held[0].stage, "forget db");
    assert.deepEqual(held[0].repositories, ["local"]);
    assert.equal(held[0].snapshots.length, 1, JSON.stringify(held[0]));
    assert.ok(held[0].snapshots[0].startsWith(snapshots[0]), "the day-1 snapshot is the one held");
    assert.match(held[0].title, /^app: 1 snapshot of db in local not forgotten: needs approval: retention changed/);
    assert.match(held[0].next, /--auto-approve/);

    const slackBody = json(to("/slack/", mark)[0]);
    assert.equal(slackBody.attachments[0].color, "#daa038");
    assert.ok(JSON.stringify(slackBody).includes(held[0].snapshots[0]), "Slack lists the snapshot id");
    await tls.waitFor(mails + 1);
    assert.ok(tls.messages[mails].text.includes(held[0].snapshots[0]));
    // The title has "→" in it: ntfy gets it RFC 2047-encoded, as header values must be ASCII.
    const title = to("/ntfy/", mark)[0].headers.title;
    assert.equal(title, `=?UTF-8?B?${Buffer.from(held[0].title).toString("base64")}?=`);
    // Monitors only hear about runs: start and success, no deletions.
    assert.deepEqual(to("/hc/", mark).map((r) => r.path), [`${hcPath}/start`, hcPath]);
  });

  it("notify test sends an example message straight to a channel and says so", async () => {
    const mark = http.requests.length;
    const ok = await cli("notify test hook", ["notify", "test", "hook", "--event", "backup.overdue"]);
    assert.equal(ok.code, 0, show(ok));
    assert.match(ok.stdout, /^✓ hook \(webhook\): sent an example backup\.overdue message$/m);
    const [hook] = to("/hook", mark);
    assert.equal(hook.headers["x-backup-token"], secrets.hookToken);
    const payload = json(hook);
    assert.equal(payload.event, "backup.overdue");
    assert.match(payload.title, /^\[test\] /);

    http.respondWith({ status: 403, body: "invalid_token" });
    try {
      const refused = await cli("notify test chat (refused)", ["notify", "test", "chat"]);
      assert.equal(refused.code, 1, show(refused));
      assert.match(refused.stderr, /^✗ chat \(slack\): slack delivery failed: HTTP 403: invalid_token$/m);
    } finally {
      http.respondWith({});
    }
  });

  it("no secret (webhook header, SMTP password, Slack URL token, ntfy token) leaks into output, state or outbox", async () => {
    const status = await cli("status", ["status", "--now", at(4, 12)]);
    assert.equal(status.code, 0, show(status));
    const statusJson = await cli("status --json", ["status", "--json", "--now", at(4, 12)]);
    assert.equal(statusJson.code, 0, show(statusJson));
    const send = await cli("notify send", ["notify", "send", "--now", at(4, 12)]);
    assert.equal(send.code, 0, show(send));

    assert.ok(walReads > 0, "state.db-wal was read while commands ran");
    for (const { what, result } of outputs) scan(`output of ${what}`, result.stdout + result.stderr);

    const stateDir = join(demo.dir, ".backupctl");
    const files = stateFiles(stateDir);
    assert.ok(files.some((f) => f.path.endsWith("state.db")), files.map((f) => f.path).join(", "));
    for (const file of files) scan(`file ${file.path}`, file.bytes);

    const outbox = await runTool("sqlite3", [
      join(stateDir, "state.db"),
      "SELECT channel || ' ' || event || ' ' || payload || ' ' || coalesce(last_error, '') FROM outbox",
    ]);
    assert.equal(outbox.code, 0, outbox.stderr);
    const rows = outbox.stdout.trim().split("\n");
    assert.ok(rows.length >= 20, `the outbox holds what was sent (${rows.length} rows)`);
    assert.ok(rows.some((row) => row.startsWith("hook run.failed ") && row.includes(fatal)));
    scan("the outbox", outbox.stdout);

    // What went out carries each credential only where it belongs (the channel's own URL or header).
    for (const request of http.requests) scan(`a ${request.path.split("/")[1]} request body`, request.body);
    for (const mail of [...tls.messages, ...plain.messages]) scan(`a mail to ${mail.to.join(",")}`, mail.raw);
    const [failedPayload] = http.requests.filter((r) => r.path === "/hook").map(json)
      .filter((p) => p.event === "run.failed");
    assert.match(failedPayload.error, /pg_dump: connecting with token \S+/, "the quoted line is kept, redacted");

    assert.deepEqual([...leaks], []);
  });
});

describe("notifications: receivers that fail", () => {
  let demo: DemoDir;
  let down: HttpReceiver;
  let slow: HttpReceiver;
  let broken: HttpReceiver;
  const cli = (args: string[]) => runCli(["--config", demo.config, ...args], { env: demo.env });

  before(async () => {
    demo = makeDemo();
    down = await startHttpReceiver();
    slow = await startHttpReceiver({ delayMs: 30_000 });
    broken = await startHttpReceiver({ status: 500, body: "internal error: queue full" });
    const channel = (receiver: HttpReceiver) =>
      `webhook({ url: "${receiver.url}/hook", events: ["run.started", "run.succeeded"] })`;
    writeFileSync(
      demo.config,
      `import { command, defineConfig, env, restic, webhook } from "backupctl";
export default defineConfig({
  repositories: { local: restic({ url: ".backupctl/restic-demo", password: env("DEMO_RESTIC_PASSWORD") }) },
  notifiers: { down: ${channel(down)}, slow: ${channel(slow)}, broken: ${channel(broken)} },
  notifications: { timeout: "1s", expireAfter: "2m" },
  projects: {
    app: {
      schedule: "0 3 * * *", repositories: ["local"], retention: { daily: 7 }, notify: ["down", "slow", "broken"],
      sources: [command({ name: "db", filename: "db.txt", run: "seq 1 500" })],
    },
  },
});
`,
    );
    await down.down();
  });
  after(async () => {
    await down?.stop();
    await slow?.stop();
    await broken?.stop();
    demo?.cleanup();
  });

  it("a down, a slow and a failing receiver do not fail or hold up the backup; status shows them pending", async () => {
    const result = await cli(["apply", "--now", at(1)]);
    assert.equal(result.code, 0, show(result));
    assert.match(result.stdout, /Run \S+ succeeded in /);
    assert.match(result.stdout, /^Apply complete: 2 succeeded, 0 failed\.$/m);
    // Every channel's run.started failed once; its run.succeeded waits behind it (a channel's messages go in order),
    // so exactly 3 attempts failed and none was sent.
    const failed = result.stdout.match(/^Notifications: (\d+) failed \(retried at the next apply or watch tick\)\.$/m);
    assert.equal(failed?.[1], "3", result.stdout);
    const warning = (channel: string, error: string) =>
      new RegExp(
        `^warning: notification run\\.started of app to ${channel} failed \\(attempt 1\\), retrying after ` +
          `\\S+: webhook delivery failed: ${error}$`,
        "m",
      );
    assert.match(result.stderr, warning("down", "connection refused"));
    assert.match(result.stderr, warning("slow", "timed out after 1s"));
    assert.match(result.stderr, warning("broken", "HTTP 500: internal error: queue full"));
    assert.ok(slow.requests.length >= 1, "the slow receiver got the request, and was not waited for");
    assert.ok(broken.requests.length >= 1);
    // The slow receiver answers after 30 s; a 1 s time-out per pass on top of the run itself is all the apply spends.
    assert.ok(result.ms < 15_000, `apply took ${result.ms} ms`);

    const status = await cli(["status", "--now", at(1, 10, 1)]);
    assert.equal(status.code, 0, show(status));
    assert.match(status.stdout, /^notifications: 6 waiting to be sent, [36] of them failed before$/m);
    const line = (channel: string, error: string) =>
      new RegExp(
        `^ {2}run\\.started of app to ${channel}: 1 attempt, next at ${shownTime}; last error: webhook delivery failed: ${error}$`,
        "m",
      );
    assert.match(status.stdout, line("down", "connection refused"));
    assert.match(status.stdout, line("slow", "timed out after 1s"));
    assert.match(status.stdout, line("broken", "HTTP 500: internal error: queue full"));

    const statusJson = await cli(["status", "--json", "--now", at(1, 10, 1)]);
    assert.equal(statusJson.code, 0, show(statusJson));
    const { notifications } = JSON.parse(statusJson.stdout);
    assert.deepEqual(notifications.undeliverable, []);
    assert.deepEqual(
      notifications.pending.map((n: { channel: string; event: string }) => `${n.channel} ${n.event}`).sort(),
      [
        "broken run.started",
        "broken run.succeeded",
        "down run.started",
        "down run.succeeded",
        "slow run.started",
        "slow run.succeeded",
      ],
    );
    const errors = {
      down: "connection refused",
      slow: "timed out after 1s",
      broken: "HTTP 500: internal error: queue full",
    };
    for (const pending of notifications.pending) {
      assert.equal(pending.project, "app");
      if (pending.event === "run.succeeded" && pending.attempts === 0) continue;
      assert.equal(pending.attempts, 1, JSON.stringify(pending));
      assert.ok(pending.next_attempt_at > pending.created_at, JSON.stringify(pending));
      assert.equal(pending.last_error, `webhook delivery failed: ${errors[pending.channel as keyof typeof errors]}`);
    }
    assert.ok(notifications.pending.filter((n: { attempts: number }) => n.attempts === 1).length >= 3);
  });

  it("once the receivers recover, notify send after the retry time delivers everything, in order", async () => {
    await down.up();
    slow.respondWith({});
    broken.respondWith({});
    const before = { slow: slow.requests.length, broken: broken.requests.length };

    const early = await cli(["notify", "send", "--now", at(1, 10, 0)]);
    assert.equal(early.code, 0, show(early));
    assert.match(early.stdout, /^Notifications: nothing to send\.$/m, "nothing is due before the retry time");
    assert.equal(down.requests.length, 0);

    const send = await cli(["notify", "send", "--now", at(1, 10, 1)]);
    assert.equal(send.code, 0, show(send));
    assert.match(send.stdout, /^Notifications: 6 sent\.$/m);
    assert.equal(send.stderr, "");
    for (const requests of [down.requests, slow.requests.slice(before.slow), broken.requests.slice(before.broken)]) {
      const events = requests.map(json);
      assert.deepEqual(
        events.map((p) => p.event),
        ["run.started", "run.succeeded"],
        "a channel gets its rows in order",
      );
      assert.equal(events[0].runId, events[1].runId);
      // What the run's backups read, and what restic added to the repository after deduplication (none of it more).
      assert.ok(events[1].bytes > 0 && events[1].bytesAdded > 0, JSON.stringify(events[1]));
      assert.ok(events[1].bytesAdded <= events[1].bytes + 65_536, JSON.stringify(events[1]));
    }

    const status = await cli(["status", "--json", "--now", at(1, 10, 2)]);
    assert.deepEqual(JSON.parse(status.stdout).notifications, { pending: [], undeliverable: [] });
    const text = await cli(["status", "--now", at(1, 10, 2)]);
    assert.doesNotMatch(text.stdout, /notifications/i);
  });

  it("a notification not delivered within expireAfter is given up and shown as UNDELIVERABLE", async () => {
    await down.down();
    const result = await cli(["apply", "--now", at(2)]);
    assert.equal(result.code, 0, show(result));
    // The down channel's start failed; its end waits behind it (in order), so one failure.
    assert.match(result.stdout, /^Notifications: 4 sent, 1 failed /m);

    await down.up(); // reachable again, but too late: nothing more may reach it
    const send = await cli(["notify", "send", "--now", at(2, 10, 5)]);
    assert.equal(send.code, 1, show(send));
    assert.match(send.stdout, /^Notifications: 2 given up as undeliverable \(see `backupctl status`\)\.$/m);
    assert.match(
      send.stderr,
      /^warning: notification run\.started of app to down undeliverable: not delivered within 2m \(1 attempt; last error: webhook delivery failed: connection refused\)$/m,
    );
    assert.equal(down.requests.length, 2, "given up without another attempt (2: the ones sent after it recovered)");

    const status = await cli(["status", "--now", at(2, 11)]);
    assert.match(status.stdout, /^UNDELIVERABLE notifications \(given up in the last 7 days\): 2$/m);
    assert.match(
      status.stdout,
      /^ {2}run\.succeeded of app to down, created [^,]+, given up 2026-11-02 10:05:\S+: not delivered within 2m/m,
    );
    assert.doesNotMatch(status.stdout, /waiting to be sent/);
    const statusJson = await cli(["status", "--json", "--now", at(2, 11)]);
    const { notifications } = JSON.parse(statusJson.stdout);
    assert.deepEqual(notifications.pending, []);
    assert.deepEqual(
      notifications.undeliverable.map((n: { channel: string; event: string }) => `${n.channel} ${n.event}`),
      ["down run.started", "down run.succeeded"],
    );
    assert.match(notifications.undeliverable[0].error, /not delivered within 2m .*connection refused/);

    // Audited as failed notify stages.
    const stages = await runTool("sqlite3", [
      join(demo.dir, ".backupctl", "state.db"),
      "SELECT repository || ' ' || source || ' ' || status FROM stages WHERE type = 'notify' ORDER BY id",
    ]);
    assert.equal(stages.stdout.trim(), "down run.started failed\ndown run.succeeded failed");
  });
});

describe("notifications: held, overdue, failed checks and the daily summary", () => {
  let demo: DemoDir;
  let http: HttpReceiver;
  const cli = (args: string[]) => runCli(["--config", demo.config, ...args], { env: demo.env });
  const events = (path: string, event: string, mark = 0) =>
    http.requests.slice(mark).filter((r) => r.path === path).map(json).filter((p) => p.event === event);

  function writeConfig(run: string, check = ""): void {
    writeFileSync(
      demo.config,
      `import { command, defineConfig, env, restic, webhook } from "backupctl";
export default defineConfig({
  timezone: "UTC",
  repositories: { local: restic({ url: ".backupctl/restic-demo", password: env("DEMO_RESTIC_PASSWORD") }) },
  notifiers: {
    hook: webhook({ url: "${http.url}/hook" }),
    daily: webhook({ url: "${http.url}/daily", events: ["summary.daily"] }),
  },
  projects: {
    app: {
      schedule: "0 3 * * *", repositories: ["local"], retention: { daily: 7 }, notify: ["hook", "daily"],
      maxAge: "36h", ${check}
      sources: [command({ name: "db", filename: "db.txt", run: ${JSON.stringify(run)} })],
    },
  },
});
`,
    );
  }
  const failing = "echo 'mysqldump: Got error: 2002: Lost connection' >&2; exit 2";

  before(async () => {
    demo = makeDemo();
    http = await startHttpReceiver();
  });
  after(async () => {
    await http?.stop();
    demo?.cleanup();
  });

  it("summary.daily goes only to its channel, once a day: the first says no backup ran the day before", async () => {
    writeConfig("seq 1 300");
    const result = await cli(["apply", "--now", at(1)]);
    assert.equal(result.code, 0, show(result));
    const [summary] = events("/daily", "summary.daily");
    assert.ok(summary, JSON.stringify(http.requests.map((r) => r.path)));
    assert.match(summary.title, /^Daily summary: no backup ran in the last day \(1 project\)$/);
    assert.deepEqual(summary.period, { from: "2026-10-31T00:00:00.000Z", to: "2026-11-01T00:00:00.000Z" });
    assert.deepEqual(summary.projects[0].runs, { succeeded: 0, failed: 0, interrupted: 0 });
    assert.equal(http.requests.filter((r) => r.path === "/daily").length, 1, "the channel gets nothing else");
    assert.deepEqual(events("/hook", "summary.daily"), [], "not a default event");
  });

  it("an apply the next day sends the summary of the day before: runs and last success", async () => {
    writeConfig(failing);
    const mark = http.requests.length;
    const result = await cli(["apply", "--now", at(2)]);
    assertRunFailed(result);
    assert.equal(events("/hook", "run.failed", mark).length, 1);
    assert.deepEqual(events("/hook", "backup.overdue", mark), [], "24 h without success is within maxAge 36h");
    const [summary] = events("/daily", "summary.daily", mark);
    assert.match(summary.title, /^Daily summary: 1 run, 1 of 1 project needs attention$/);
    assert.equal(summary.period.from, "2026-11-01T00:00:00.000Z");
    const [app] = summary.projects;
    assert.equal(app.project, "app");
    assert.deepEqual(app.runs, { succeeded: 1, failed: 0, interrupted: 0 });
    assert.match(app.lastSuccessAt, /^2026-11-01T10:00/);
    assert.equal(app.health, "failing", "the run that just failed counts");
  });

  it("backup.overdue is sent once when the project passes maxAge, not again the same day, then daily", async () => {
    const first = http.requests.length;
    const late = await cli(["apply", "--now", at(3, 12)]);
    assertRunFailed(late);
    const [overdue] = events("/hook", "backup.overdue", first);
    assert.ok(overdue, "overdue after 50 h");
    assert.equal(overdue.project, "app");
    assert.equal(overdue.maxAge, "36h");
    assert.match(overdue.lastSuccessAt, /^2026-11-01T10:00/);
    assert.match(overdue.title, /^app: no successful backup for 2d [12]h \(allowed: 36h\)$/);
    assert.equal(events("/daily", "summary.daily", first).length, 1, "the summary of day 2");

    const again = http.requests.length;
    const sameDay = await cli(["apply", "--now", at(3, 18)]);
    assertRunFailed(sameDay);
    assert.equal(events("/hook", "run.failed", again).length, 1, "the run's failure is still sent");
    assert.deepEqual(events("/hook", "backup.overdue", again), [], "no second overdue alert the same day");
    assert.deepEqual(events("/daily", "summary.daily", again), [], "no second summary the same day");

    const next = http.requests.length;
    const nextDay = await cli(["apply", "--now", at(4, 12)]);
    assertRunFailed(nextDay);
    const reminders = events("/hook", "backup.overdue", next);
    assert.equal(reminders.length, 1, "one reminder the next day");
    assert.equal(reminders[0].lastSuccessAt, overdue.lastSuccessAt);
    const [summary] = events("/daily", "summary.daily", next);
    assert.deepEqual(summary.projects[0].runs, { succeeded: 0, failed: 2, interrupted: 0 });
    assert.equal(summary.projects[0].health, "overdue");
  });

  it("after a day without any run, notify send sends a summary saying no backup ran", async () => {
    const mark = http.requests.length;
    const send = await cli(["notify", "send", "--now", at(6, 8)]);
    assert.equal(send.code, 0, show(send));
    const [summary] = events("/daily", "summary.daily", mark);
    assert.match(summary.title, /no backup ran/);
    assert.equal(summary.period.from, "2026-11-05T00:00:00.000Z");
    assert.match(summary.projects[0].lastSuccessAt, /^2026-11-01T10:00/);
    assert.equal(events("/hook", "backup.overdue", mark).length, 1, "and the overdue reminder of the day");
    const twice = await cli(["notify", "send", "--now", at(6, 9)]);
    assert.match(twice.stdout, /^Notifications: nothing to send\.$/m);
  });

  it("a failed restic check sends check.failed naming the repository", async () => {
    // Delete the packs holding file contents (not trees): `restic check` reports them missing at once.
    const restic = (...args: string[]) =>
      runTool("restic", ["-r", demo.repository, "--no-lock", ...args], {
        env: { RESTIC_PASSWORD: demo.env.DEMO_RESTIC_PASSWORD },
      });
    const indexes = await restic("list", "index");
    assert.equal(indexes.code, 0, indexes.stderr);
    const dataPacks: string[] = [];
    for (const id of indexes.stdout.trim().split("\n")) {
      const index = JSON.parse((await restic("cat", "index", id)).stdout) as {
        packs: { id: string; blobs: { type: string }[] }[];
      };
      for (const pack of index.packs) if (pack.blobs.every((b) => b.type === "data")) dataPacks.push(pack.id);
    }
    assert.ok(dataPacks.length > 0);
    for (const pack of dataPacks) rmSync(join(demo.repository, "data", pack.slice(0, 2), pack));
    writeConfig("seq 1 300", 'check: { every: "1m" },');
    const mark = http.requests.length;
    const result = await cli(["apply", "--now", at(6, 10)]);
    assert.equal(result.code, 1, show(result));
    assert.match(result.stdout, /^Run \S+ succeeded in /m, "the backup itself deduplicates against the index");
    assert.match(result.stdout, /✗ check local/);
    const [failed] = events("/hook", "check.failed", mark);
    assert.ok(failed, JSON.stringify(http.requests.slice(mark).map((r) => r.body)));
    assert.equal(failed.title, "repository local: restic check failed");
    assert.deepEqual(failed.repositories, ["local"]);
    assert.equal(failed.stage, "check local");
    assert.match(failed.error, /restic check failed \(exit 1\): repository contains errors/);
    assert.ok(dataPacks.some((pack) => failed.error.includes(pack.slice(0, 8))), failed.error);
    assert.match(failed.next, /Do not prune local/);
  });
});
