import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { docsPath, renderPayloads, withPayloads } from "../../scripts/notification-docs.ts";
import { notificationEvents } from "../../src/config/types.ts";

describe("docs/notifications.md", () => {
  it("holds the payloads the renderers make of the examples (refresh: scripts/notification-docs.ts)", () => {
    const saved = readFileSync(docsPath, "utf8");
    assert.equal(
      saved,
      withPayloads(saved),
      "docs/notifications.md is stale: run `deno run -A scripts/notification-docs.ts` and review the difference",
    );
  });

  it("shows every event through every channel", () => {
    const payloads = renderPayloads();
    for (const event of notificationEvents) assert.ok(payloads.includes(`### \`${event}\``), event);
    const channels = [
      "Slack",
      "E-mail",
      "Webhook",
      "healthchecks",
      "Uptime Kuma",
      "ntfy",
      "Discord",
      "Telegram",
      "PagerDuty",
      "Pushover",
      "Teams",
      "Matrix",
    ];
    for (const channel of channels) {
      const count = payloads.split(`<summary>${channel}</summary>`).length - 1;
      assert.equal(count, notificationEvents.length, channel);
    }
  });
});
