/**
 * E-mail through SMTP with nodemailer: a plain-text body for any mail client and an HTML body with the same content.
 * STARTTLS is used whenever the server offers it; `requireTls` refuses to send in clear text, and `ca` trusts a
 * private certificate authority without turning certificate checks off.
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { resolveSecret } from "../../config/secrets.ts";
import type { EmailNotifier } from "../../config/types.ts";
import { humanDuration } from "../../format/time.ts";
import type { Message } from "../message.ts";
import { DeliveryError, type DeliveryOptions } from "./delivery.ts";
import {
  escapeHtml,
  facts,
  healthSymbol,
  nothingRan,
  renderPlainText,
  severityColors,
  summaryDetails,
} from "./text.ts";

export interface EmailContent {
  subject: string;
  text: string;
  html: string;
}

export function renderEmail(message: Message): EmailContent {
  return { subject: `[backupctl] ${message.title}`, text: renderPlainText(message), html: renderHtml(message) };
}

function renderHtml(message: Message): string {
  const rows = facts(message).map((fact) =>
    `<tr><th align="left" style="padding:2px 16px 2px 0;vertical-align:top">${escapeHtml(fact.label)}</th>` +
    `<td style="padding:2px 0">${escapeHtml(fact.value)}</td></tr>`
  );
  const parts = [
    `<h2 style="margin:0 0 12px 0;font-size:18px">${escapeHtml(message.title)}</h2>`,
    `<table cellspacing="0" cellpadding="0" style="border-collapse:collapse">${rows.join("")}</table>`,
  ];
  if (message.event === "summary.daily") {
    const quiet = nothingRan(message);
    if (quiet) parts.push(`<p><strong>${escapeHtml(quiet)}</strong></p>`);
    const items = (message.projects ?? []).map((project) =>
      `<li>${healthSymbol(project.health)} <strong>${escapeHtml(project.project)}</strong>: ` +
      `${escapeHtml(summaryDetails(project, message.at))}</li>`
    );
    if (items.length > 0) parts.push(`<ul style="padding-left:20px">${items.join("")}</ul>`);
  }
  if (message.error) {
    parts.push(
      `<p style="margin:12px 0 4px 0"><strong>Error (last lines):</strong></p>`,
      `<pre style="margin:0;padding:8px;background:#f6f8fa;white-space:pre-wrap">${escapeHtml(message.error)}</pre>`,
    );
  }
  parts.push(`<p><strong>Next:</strong> ${escapeHtml(message.next)}</p>`);
  return `<!DOCTYPE html>\n<html><body style="font-family:sans-serif;font-size:14px;color:#1d1c1d">` +
    `<div style="border-left:4px solid ${severityColors[message.severity]};padding-left:12px">` +
    `${parts.join("\n")}</div></body></html>\n`;
}

export async function sendEmail(notifier: EmailNotifier, message: Message, options: DeliveryOptions): Promise<void> {
  const { smtp } = notifier;
  const secure = smtp.secure ?? false;
  let ca: string | undefined;
  if (smtp.ca) {
    try {
      ca = readFileSync(resolve(options.configDir, smtp.ca), "utf8");
    } catch (error) {
      throw new DeliveryError("email", `cannot read the CA file ${smtp.ca} (smtp.ca): ${(error as Error).message}`);
    }
  }
  // Imported when a mail is sent, not at start-up: nodemailer is some sixty modules every apply would load otherwise.
  const { default: nodemailer } = await import("nodemailer");
  const transport = nodemailer.createTransport({
    host: smtp.host,
    port: smtp.port ?? (secure ? 465 : 587),
    secure,
    requireTLS: smtp.requireTls ?? false,
    auth: smtp.user
      ? { user: smtp.user, pass: smtp.password ? resolveSecret(smtp.password, options.configDir) : undefined }
      : undefined,
    tls: ca ? { ca } : undefined,
    connectionTimeout: options.timeoutMs,
    greetingTimeout: options.timeoutMs,
    socketTimeout: options.timeoutMs,
  });
  const content = renderEmail(message);
  try {
    await transport.sendMail({
      from: notifier.from,
      to: notifier.to,
      subject: content.subject,
      text: content.text,
      html: content.html,
      headers: { "X-Backupctl-Event": message.event },
    });
  } catch (error) {
    throw new DeliveryError("email", describeSmtpFailure(error, smtp, options.timeoutMs));
  } finally {
    transport.close();
  }
}

/** nodemailer's error codes say which step failed; its messages carry the server's answer. */
function describeSmtpFailure(error: unknown, smtp: EmailNotifier["smtp"], timeoutMs: number): string {
  const { code, message } = error as { code?: string; message?: string };
  const detail = (message ?? String(error)).replace(/\s+/g, " ").trim();
  if (code === "ETIMEDOUT" || /timeout|timed out/i.test(detail)) {
    return `timed out after ${humanDuration(timeoutMs)} talking to ${smtp.host} (${detail})`;
  }
  if (code === "EAUTH") return `the SMTP server rejected the login: check smtp.user and smtp.password (${detail})`;
  if (/certificate|CERT_|self[- ]signed/i.test(detail)) {
    return `the TLS certificate of ${smtp.host} is not trusted (${detail}): if a private authority signed it, ` +
      "set smtp.ca to that authority's PEM file";
  }
  if (smtp.requireTls && /STARTTLS/i.test(detail)) {
    return `smtp.requireTls is set but ${smtp.host} did not upgrade the connection with STARTTLS (${detail})`;
  }
  if (/ECONNREFUSED/.test(detail)) return `connection refused by ${smtp.host} (${detail})`;
  return code === "ETLS" ? `TLS with ${smtp.host} failed: ${detail}` : detail;
}
