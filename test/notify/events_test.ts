/** The event builders and channel filters, from plain data (no database, no network). */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { rememberSecret } from "../../src/config/secrets.ts";
import { renderPlainText } from "../../src/notify/channels/text.ts";
import {
  backupOverdue,
  dailySummary,
  enqueueFor,
  overdueKey,
  previousDay,
  projectUnplaced,
  runFinished,
  runnerDrift,
  runnerLost,
  wants,
} from "../../src/notify/events.ts";
import type { Message } from "../../src/notify/message.ts";
import type { RunDigest } from "../../src/state/store.ts";
import { loadedWithNotifiers } from "../support/plan-fixtures.ts";

const at = new Date("2026-12-01T03:00:00Z");
const run = { host: "h", at, project: "shop", repositories: ["local"], runId: "r1", durationMs: 90_000 };

const config = (notifiers: Record<string, unknown>) => loadedWithNotifiers(notifiers);

describe("backupOverdue", () => {
  const overdue = {
    host: "h",
    at,
    project: "db",
    repositories: [],
    lastSuccessAt: "2026-11-28T01:00:00Z",
    maxAge: "2d",
  };

  it("says the project's last success for dumps, and names the stanza for a pgbackrest() source", () => {
    const dumps = backupOverdue({ ...overdue, repositories: ["local"] });
    assert.equal(dumps.title, "db: no successful backup for 3d 2h (allowed: 2d)");
    assert.equal(dumps.stanza, undefined);
    const stanza = backupOverdue({ ...overdue, source: "main", stanza: "main" });
    assert.equal(stanza.event, "backup.overdue");
    assert.equal(stanza.title, "db: no pgBackRest backup of main for 3d 2h (allowed: 2d)");
    assert.deepEqual([stanza.source, stanza.stanza, stanza.stage, stanza.repositories], [
      "main",
      "main",
      "backup main",
      ["pgbackrest:main"],
    ]);
  });
});

describe("runFinished", () => {
  it("is a run.succeeded after a success, a run.recovered after failures", () => {
    const ok = runFinished({ ...run, status: "succeeded", bytes: 2048, bytesAdded: 512, failuresBefore: 0 });
    assert.equal(ok.event, "run.succeeded");
    assert.equal(ok.severity, "good");
    assert.match(ok.title, /^shop: backup succeeded in 1m 30s, 2\.0 KiB read$/);
    assert.equal(ok.bytesAdded, 512);
    const recovered = runFinished({ ...run, status: "succeeded", failuresBefore: 3 });
    assert.equal(recovered.event, "run.recovered");
    assert.equal(recovered.failuresBefore, 3);
    assert.match(recovered.title, /after 3 failed runs/);
  });

  it("names the failing stage and attempt, keeps only the error's tail and gives a next step", () => {
    const error = [...Array.from({ length: 20 }, (_, i) => `line ${i}`), "pg_dump: connection refused"].join("\n");
    const failed = runFinished({
      ...run,
      status: "failed",
      failure: { stage: "backup db", error, attempt: { n: 3, of: 3 } },
      failuresBefore: 0,
    });
    assert.equal(failed.event, "run.failed");
    assert.equal(failed.title, "shop: backup failed at backup db (attempt 3/3)");
    assert.deepEqual(failed.attempt, { n: 3, of: 3 });
    assert.equal(failed.error?.split("\n").length, 8);
    assert.match(failed.error!, /connection refused$/);
    assert.match(failed.next, /backupctl apply --project shop/);
  });

  it("reports an interrupted run as a failed one, as a warning", () => {
    const interrupted = runFinished({
      ...run,
      status: "interrupted",
      failure: { stage: "backup db", error: "interrupted by SIGTERM" },
      failuresBefore: 0,
    });
    assert.equal(interrupted.event, "run.failed");
    assert.equal(interrupted.severity, "warning");
    assert.match(interrupted.title, /interrupted during backup db/);
  });
});

describe("channel filters", () => {
  it("monitors take every run's start and end; people take what needs them", () => {
    const loaded = config({
      monitor: { type: "healthchecks", pingUrl: "http://127.0.0.1:1/p" },
      chat: { type: "slack", webhookUrl: { secret: "env", name: "SLACK_URL" } },
      custom: { type: "webhook", url: "http://127.0.0.1:1/w", events: ["run.succeeded"] },
    });
    const channels = (message: Message) => enqueueFor(loaded, ["shop"], message, { now: at }).map((n) => n.channel);
    assert.deepEqual(channels(runFinished({ ...run, status: "succeeded", failuresBefore: 0 })), ["custom", "monitor"]);
    // A recovery is also a success: the channel that asked for successes gets it.
    assert.deepEqual(channels(runFinished({ ...run, status: "succeeded", failuresBefore: 1 })), [
      "chat",
      "custom",
      "monitor",
    ]);
    assert.deepEqual(
      channels(runFinished({ ...run, status: "failed", failure: { stage: "s", error: "e" }, failuresBefore: 0 })),
      ["chat", "monitor"],
    );
    assert.equal(wants(["run.succeeded"], "run.failed"), false);
  });

  it("sets the expiry from the config and removes remembered secrets from the payload", () => {
    rememberSecret("hunter2-outbox-secret");
    const loaded = config({ chat: { type: "webhook", url: "http://127.0.0.1:1/w" } });
    const failed = runFinished({
      ...run,
      status: "failed",
      failure: { stage: "backup db", error: "auth failed for password hunter2-outbox-secret" },
      failuresBefore: 0,
    });
    const [row] = enqueueFor(loaded, ["shop"], failed, { now: at });
    assert.doesNotMatch(row.payload, /hunter2/);
    assert.match(row.payload, /\(sensitive\)/);
    assert.equal(Date.parse(row.expiresAt) - Date.parse(row.createdAt), 24 * 3_600_000);
  });
});

describe("time-driven events", () => {
  it("previousDay is the calendar day before, also across a daylight-saving change", () => {
    assert.deepEqual(previousDay("UTC", new Date("2026-12-01T10:00:00Z")), {
      from: new Date("2026-11-30T00:00:00Z"),
      to: new Date("2026-12-01T00:00:00Z"),
      label: "2026-11-30",
    });
    // 25 October 2026 in Berlin has 25 hours (CEST → CET).
    const berlin = previousDay("Europe/Berlin", new Date("2026-10-26T08:00:00Z"));
    assert.equal(berlin.label, "2026-10-25");
    assert.equal(berlin.from.toISOString(), "2026-10-24T22:00:00.000Z");
    assert.equal(berlin.to.toISOString(), "2026-10-25T23:00:00.000Z");
  });

  it("the daily summary says when nothing ran, and names the projects that need attention", () => {
    const period = previousDay("UTC", at);
    const none = dailySummary({
      host: "h",
      at,
      period,
      projects: ["shop", "blog"],
      digest: new Map(),
      overdue: new Set(),
      failing: new Set(),
    });
    assert.match(none.title, /no backup ran in the last day \(2 projects\)/);
    assert.equal(none.severity, "warning");
    const digest = new Map<string, RunDigest>([
      ["shop", { succeeded: 1, failed: 0, interrupted: 0, lastSuccessAt: "2026-11-30T03:00:00Z" }],
      ["blog", { succeeded: 0, failed: 2, interrupted: 0 }],
    ]);
    const some = dailySummary({
      host: "h",
      at,
      period,
      projects: ["shop", "blog"],
      digest,
      overdue: new Set(),
      failing: new Set(["blog"]),
    });
    assert.match(some.title, /3 runs, 1 of 2 projects needs attention/);
    assert.deepEqual(some.projects?.map((p) => [p.project, p.health]), [["shop", "ok"], ["blog", "failing"]]);
    assert.match(some.next, /blog/);
  });

  it("an overdue episode gets one key a day", () => {
    // Overdue from 2026-11-29T14:00Z (last success + 35h): reminders every 24 hours from then.
    const overdue = { project: "shop", last_success: "2026-11-28T03:00:00Z", max_age: "35h" };
    const first = overdueKey(overdue, new Date("2026-11-29T14:00:00Z"));
    assert.equal(first, overdueKey(overdue, new Date("2026-11-30T13:59:00Z")));
    const second = overdueKey(overdue, new Date("2026-11-30T14:00:00Z"));
    assert.notEqual(first, second);
    const day3 = overdueKey(overdue, new Date("2026-12-01T02:00:00Z"));
    assert.equal(day3, second);
    // A new success starts a new episode.
    assert.notEqual(
      day3,
      overdueKey({ ...overdue, last_success: "2026-11-29T03:00:00Z" }, new Date("2026-12-01T02:00:00Z")),
    );
  });
});

describe("fleet events", () => {
  const runner = { name: "db-eu-2", labels: ["db", "eu"] };
  const oldConfig = `sha256:${"3f9a1c0b7e2d".padEnd(64, "0")}`;
  const newConfig = `sha256:${"b41e07d9a6c5".padEnd(64, "1")}`;

  it("runner.lost names the runner, its labels, its silence and the work it left", () => {
    const lost = runnerLost({
      host: "backup-1",
      at,
      runner,
      lastHeartbeat: new Date(at.getTime() - 160_000),
      work: "backup shop",
    });
    assert.equal(lost.event, "runner.lost");
    assert.equal(lost.severity, "bad");
    assert.equal(lost.title, "runner db-eu-2 lost: no heartbeat for 2m 40s (it was running backup shop)");
    assert.equal(lost.host, "backup-1");
    assert.deepEqual(lost.labels, ["db", "eu"]);
    assert.equal(lost.lastHeartbeat, "2026-12-01T02:57:20.000Z");
    assert.match(lost.next, /restart `backupctl watch`/i);
    const text = renderPlainText(lost);
    assert.match(text, /Runner: +db-eu-2/);
    assert.match(text, /Was running: +backup shop/);
    const idle = runnerLost({ host: "backup-1", at, runner, lastHeartbeat: at, work: null });
    assert.equal(idle.work, undefined);
    assert.doesNotMatch(idle.title, /running/);
    assert.match(idle.next, /projects whose runsOn only it has \(db, eu\) wait for it/);
    const unlabelled = runnerLost({ host: "h", at, runner: { name: "r", labels: [] }, lastHeartbeat: at, work: null });
    assert.doesNotMatch(unlabelled.next, /runsOn/);
  });

  it("runner.drift shows both fingerprints short in its text and whole in its payload", () => {
    const drift = runnerDrift({
      host: "db-eu-2",
      at,
      runner,
      fingerprint: oldConfig,
      newest: newConfig,
      newestRunner: "backup-1",
    });
    assert.equal(drift.event, "runner.drift");
    assert.equal(drift.severity, "warning");
    assert.match(
      drift.title,
      /^runner db-eu-2 runs an older config \(sha256:3f9a1c0b7e2d, newest sha256:b41e07d9a6c5 /,
    );
    assert.equal(drift.fingerprint, oldConfig);
    assert.equal(drift.newestFingerprint, newConfig);
    assert.match(renderPlainText(drift), /Newest config: +sha256:b41e07d9a6c5 \(backup-1\)/);
  });

  it("project.unplaced says which labels are needed and which runners are live", () => {
    const unplaced = projectUnplaced({
      host: "backup-1",
      at,
      project: "shop",
      runsOn: ["db", "eu"],
      runners: [{ name: "backup-1", labels: ["files"] }],
    });
    assert.equal(unplaced.event, "project.unplaced");
    assert.equal(unplaced.project, "shop");
    assert.deepEqual(unplaced.runsOn, ["db", "eu"]);
    assert.match(unplaced.next, /--runner-labels db,eu/);
    assert.match(renderPlainText(unplaced), /Live runners: +backup-1 \(files\)/);
  });

  it("people get them by default, monitors do not; a key makes one per channel", () => {
    const loaded = config({
      monitor: { type: "healthchecks", pingUrl: "http://127.0.0.1:1/p" },
      chat: { type: "slack", webhookUrl: { secret: "env", name: "SLACK_URL" } },
    });
    const lost = runnerLost({ host: "h", at, runner, lastHeartbeat: at, work: null });
    const rows = enqueueFor(loaded, ["shop"], lost, { now: at, key: "runner.lost:db-eu-2:1" });
    assert.deepEqual(rows.map((row) => [row.channel, row.key]), [["chat", "runner.lost:db-eu-2:1:chat"]]);
  });
});
