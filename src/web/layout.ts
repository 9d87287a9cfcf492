/**
 * The dashboard's page frame and the small pieces every page shares: the document (landmarks, navigation, a skip
 * link, the stylesheet and script served from /assets), times shown in the config's zone with their age, status words
 * that read without colour, byte counts.
 */
import { formatBytes } from "../format/bytes.ts";
import { humanDuration, localTime } from "../format/time.ts";
import { type Html, markup } from "./html.ts";
import { assetPath } from "./assets.ts";

/** What every page is rendered with. */
export interface PageContext {
  /** The config's display time zone (or the machine's). */
  zone: string;
  now: Date;
}

export type NavItem = "projects" | "plan";

/** A whole HTML document around `body`. */
export function page(ctx: PageContext, options: { title: string; nav?: NavItem; body: Html }): string {
  const link = (item: NavItem, href: string, label: string) =>
    markup`<a href="${href}"${options.nav === item ? markup` aria-current="page"` : ""}>${label}</a>`;
  const nav = markup`<span class="brand">backupctl</span> ${link("projects", "/", "Projects")} ${
    link("plan", "/plan", "Plan")
  }`;
  return markup`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>${options.title} · backupctl</title>
<link rel="stylesheet" href="${assetPath("dashboard.css")}">
<link rel="icon" href="${assetPath("favicon.svg")}" type="image/svg+xml">
<script src="${assetPath("dashboard.js")}" defer></script>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header><nav aria-label="Main">${nav}</nav></header>
<main id="main" tabindex="-1">
<h1>${options.title}</h1>
${options.body}
</main>
<footer><p>Read-only view of the state. Times in ${ctx.zone}; page made ${localTime(ctx.now, ctx.zone)}.</p></footer>
</body>
</html>
`.text;
}

/** How long ago (or in how long) `iso` is from now, in words. */
export function age(iso: string, now: Date): string {
  const ms = now.getTime() - Date.parse(iso);
  return ms >= 0 ? `${humanDuration(ms)} ago` : `in ${humanDuration(-ms)}`;
}

/** A time in the zone with its age; the machine-readable instant in `datetime`. */
export function when(ctx: PageContext, iso: string | null | undefined, options: { age?: boolean } = {}): Html {
  if (!iso) return markup`<span class="muted">never</span>`;
  const local = localTime(new Date(iso), ctx.zone);
  return options.age === false
    ? markup`<time datetime="${iso}">${local}</time>`
    : markup`<time datetime="${iso}">${local}</time> <span class="age">(${age(iso, ctx.now)})</span>`;
}

/** A status as a word in a badge: the word carries the meaning, the colour only repeats it. */
export function badge(word: string, tone: "ok" | "bad" | "warn" | "info" | "muted"): Html {
  return markup`<span class="badge ${tone}">${word}</span>`;
}

/** The tone of a run's or stage's status word. */
export function statusTone(status: string): "ok" | "bad" | "warn" | "info" | "muted" {
  if (status === "succeeded" || status === "ok") return "ok";
  if (status === "failed" || status === "failing" || status === "overdue") return "bad";
  if (status === "interrupted" || status === "never") return "warn";
  if (status === "running") return "info";
  return "muted";
}

export function bytes(n: number | null | undefined): string {
  return n === null || n === undefined ? "–" : formatBytes(n);
}

export function duration(ms: number | null | undefined): string {
  return ms === null || ms === undefined ? "–" : humanDuration(ms);
}
