/**
 * Matrix rooms through the client-server API: `PUT /_matrix/client/v3/rooms/{roomId}/send/m.room.message/{txnId}`, an
 * `m.text` message with the plain-text body and an HTML rendering (`org.matrix.custom.html`, within the tags the spec
 * recommends clients allow). The access token goes in the Authorization header, never in the URL. The transaction id
 * is derived from the room and the stored message, so a retry of one outbox row reuses it and the homeserver stores
 * the message once, even when an earlier attempt arrived but its answer was lost.
 */
import { createHash } from "node:crypto";
import { resolveSecret } from "../../config/secrets.ts";
import type { MatrixNotifier } from "../../config/types.ts";
import type { Message } from "../message.ts";
import type { DeliveryOptions } from "./delivery.ts";
import { sendHttp } from "./http.ts";
import { clip, escapeHtml, facts, renderPlainText, severityColors, summaryLines } from "./text.ts";

export interface MatrixMessage {
  msgtype: "m.text";
  body: string;
  format: "org.matrix.custom.html";
  formatted_body: string;
}

/** An event holds at most 64 KiB: each rendering stays well under half of it. */
const bodyChars = 24_000;
const summaryLinesShown = 100;

export function renderMatrix(message: Message): MatrixMessage {
  const color = severityColors[message.severity];
  const parts = [
    `<h4><font data-mx-color="${color}" color="${color}">■</font> ${escapeHtml(message.title)}</h4>`,
    `<p>${facts(message).map((f) => `<b>${escapeHtml(f.label)}:</b> ${escapeHtml(f.value)}`).join("<br>")}</p>`,
  ];
  const lines = summaryLines(message);
  if (lines.length > 0) {
    const items = lines.slice(0, summaryLinesShown).map((line) =>
      line.project
        ? `<li>${line.symbol} <b>${escapeHtml(line.project)}</b>: ${escapeHtml(line.text)}</li>`
        : `<li><i>${escapeHtml(line.text)}</i></li>`
    );
    if (lines.length > summaryLinesShown) items.push(`<li>… and ${lines.length - summaryLinesShown} more</li>`);
    parts.push(`<ul>${items.join("")}</ul>`);
  }
  if (message.error) {
    parts.push(`<p><b>Error (last lines):</b></p>`, `<pre><code>${escapeHtml(message.error)}</code></pre>`);
  }
  parts.push(`<p><b>Next:</b> ${escapeHtml(message.next)}</p>`);
  return {
    msgtype: "m.text",
    body: clip(renderPlainText(message).trimEnd(), bodyChars),
    format: "org.matrix.custom.html",
    formatted_body: parts.join("\n"),
  };
}

/** The same room and stored message, the same transaction id. */
export function matrixTxnId(roomId: string, message: Message): string {
  return `backupctl-${createHash("sha256").update(`${roomId}\n${JSON.stringify(message)}`).digest("hex").slice(0, 32)}`;
}

export async function sendMatrix(notifier: MatrixNotifier, message: Message, options: DeliveryOptions): Promise<void> {
  const base = notifier.homeserver.replace(/\/+$/, "");
  const room = encodeURIComponent(notifier.roomId);
  await sendHttp("matrix", {
    method: "PUT",
    url: `${base}/_matrix/client/v3/rooms/${room}/send/m.room.message/${matrixTxnId(notifier.roomId, message)}`,
    headers: {
      "Content-Type": "application/json",
      Authorization: `Bearer ${resolveSecret(notifier.accessToken, options.configDir)}`,
    },
    body: JSON.stringify(renderMatrix(message)),
  }, options.timeoutMs);
}
