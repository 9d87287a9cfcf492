/**
 * `backupctl notify send`: delivers what waits in the outbox now (and enqueues due overdue alerts and the daily
 * summary), for a cron line between applies. `backupctl notify test CHANNEL`: sends an example message straight to
 * one channel, outside the outbox, and says whether it arrived: the way to check a webhook URL or SMTP settings.
 */
import type { Command } from "commander";
import { enqueueScheduledNotifications } from "../apply/scheduled-notifications.ts";
import { createClock } from "../clock.ts";
import { type NotificationEvent, notificationEvents } from "../config/types.ts";
import { redact } from "../config/secrets.ts";
import { ExitCode, UsageError } from "../errors.ts";
import { deliver, sendsNothing } from "../notify/channels/mod.ts";
import { deliveryTimeoutMs } from "../notify/events.ts";
import { exampleMessages } from "../notify/examples.ts";
import { OutboxSender } from "../notify/outbox.ts";
import { plan } from "../plan/planner.ts";
import { notificationLine } from "./apply.ts";
import { type GlobalOptions, hostFor, load, openStore, type Output, parseNow } from "./context.ts";

export const description = "Send the notifications waiting in the outbox, or a test message to one channel";

interface SendOptions extends GlobalOptions {
  now?: string;
}

interface TestOptions extends GlobalOptions {
  event?: string;
}

export function define(program: Command, output: Output, done: (code: number) => void): void {
  const notify = program.command("notify").description(description);
  notify.command("send")
    .description("deliver due notifications now (retries of failed ones, overdue alerts, the daily summary)")
    .option("--now <iso>", "act as if the clock read this time")
    .action(async (_options, command: Command) => done(await send(command.optsWithGlobals<SendOptions>(), output)));
  notify.command("test")
    .description("send an example message to one channel, directly, and report the result")
    .argument("<channel>", "a notifier declared in the config")
    .option("--event <event>", `the example to send: ${notificationEvents.join(", ")}`, "run.failed")
    .action(async (channel: string, _options, command: Command) =>
      done(await test(channel, command.optsWithGlobals<TestOptions>(), output))
    );
}

export async function send(options: SendOptions, output: Output): Promise<number> {
  const loaded = await load(options);
  const store = await openStore(options, loaded);
  const clock = createClock(parseNow(options.now));
  const sender = new OutboxSender(store, loaded, {
    now: () => clock.now(),
    warn: (line) => output.stderr(`warning: ${line}\n`),
  });
  try {
    const now = clock.now();
    const overdue = plan(loaded, await store.observe(), now, { generatedAt: now }).overdue;
    await enqueueScheduledNotifications(
      { loaded, store, clock, host: hostFor(loaded), notifications: sender },
      overdue,
    );
    sender.kick();
    await sender.drain();
  } finally {
    await sender.drain();
    await store.close();
  }
  output.stdout(notificationLine(sender.report) || "Notifications: nothing to send.\n");
  return sender.report.failed + sender.report.givenUp > 0 ? ExitCode.failed : ExitCode.ok;
}

export async function test(channel: string, options: TestOptions, output: Output): Promise<number> {
  const loaded = await load(options);
  const notifier = loaded.config.notifiers[channel];
  if (!notifier) {
    const declared = Object.keys(loaded.config.notifiers);
    throw new UsageError(
      `unknown notifier "${channel}"; ${declared.length ? `declared: ${declared.join(", ")}` : "none is declared"}`,
    );
  }
  const event = options.event ?? "run.failed";
  if (!(notificationEvents as readonly string[]).includes(event)) {
    throw new UsageError(`unknown event "${event}"; events are ${notificationEvents.join(", ")}`);
  }
  const example = exampleMessages[event as NotificationEvent];
  const message = {
    ...example,
    title: `[test] ${example.title}`,
    host: hostFor(loaded),
    at: new Date().toISOString(),
    next: "This is a test message sent by `backupctl notify test`; nothing happened.",
  };
  try {
    await deliver(notifier, message, { configDir: loaded.dir, timeoutMs: deliveryTimeoutMs(loaded) });
  } catch (error) {
    output.stderr(
      `✗ ${channel} (${notifier.type}): ${redact(error instanceof Error ? error.message : String(error))}\n`,
    );
    return ExitCode.failed;
  }
  if (sendsNothing(notifier, message)) {
    output.stdout(`✓ ${channel} (${notifier.type}): nothing to send for ${event}, an event this kind ignores\n`);
  } else {
    output.stdout(`✓ ${channel} (${notifier.type}): sent an example ${event} message\n`);
  }
  return ExitCode.ok;
}
