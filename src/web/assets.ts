/**
 * The dashboard's only static files, kept in code (no build step, nothing fetched from elsewhere): the stylesheet
 * (light and dark by prefers-color-scheme), a small script that polls /live.json while a backup runs and updates its
 * byte count, and the icon. Served from /assets with a content hash in the query, so they can be cached for good while
 * a new version is fetched at once. The script is a file of its own, so the Content-Security-Policy allows no inline
 * script at all.
 */
import { createHash } from "node:crypto";

const css = `
:root { color-scheme: light dark; --bg: #fbfbfa; --fg: #1d1f21; --muted: #5f6368; --line: #d9dcdf; --panel: #ffffff;
  --ok: #1e6b35; --ok-bg: #e3f3e7; --bad: #a3190f; --bad-bg: #fbe4e1; --warn: #7a4d00; --warn-bg: #fdf0d5;
  --info: #114f8a; --info-bg: #e2eefa; --link: #0b57a4; --focus: #f2a900; --chart: #2f6fb2; --chart2: #8a5cc2; }
@media (prefers-color-scheme: dark) {
  :root { --bg: #15171a; --fg: #e8eaed; --muted: #a5aab0; --line: #3a3f45; --panel: #1d2024;
    --ok: #8fd6a3; --ok-bg: #183323; --bad: #ff9d92; --bad-bg: #3d1a17; --warn: #f5c66b; --warn-bg: #3a2c10;
    --info: #9cc7f5; --info-bg: #172a3f; --link: #8ab8f0; --chart: #7fb0ea; --chart2: #c5a3f0; }
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg); font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; }
a { color: var(--link); }
a:focus-visible, [tabindex]:focus-visible, summary:focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; }
.skip { position: absolute; left: -9999px; }
.skip:focus { left: 1rem; top: .5rem; background: var(--panel); padding: .4rem .8rem; z-index: 2; }
header { border-bottom: 1px solid var(--line); background: var(--panel); }
nav { display: flex; gap: 1.2rem; align-items: baseline; padding: .7rem 1.2rem; flex-wrap: wrap; }
nav .brand { font-weight: 700; }
nav a[aria-current="page"] { font-weight: 700; text-decoration-thickness: 3px; }
main { padding: 1rem 1.2rem 2rem; max-width: 1400px; }
main:focus { outline: none; }
h1 { font-size: 1.5rem; margin: .3rem 0 1rem; word-break: break-word; }
h2 { font-size: 1.15rem; margin: 1.6rem 0 .6rem; }
footer { color: var(--muted); padding: 0 1.2rem 1.5rem; font-size: .85rem; }
.table-wrap { overflow-x: auto; border: 1px solid var(--line); border-radius: 6px; background: var(--panel); }
table { border-collapse: collapse; width: 100%; }
caption { text-align: left; padding: .5rem .7rem; color: var(--muted); caption-side: top; }
th, td { text-align: left; padding: .45rem .7rem; border-top: 1px solid var(--line); vertical-align: top; }
thead th { border-top: 0; font-size: .8rem; text-transform: uppercase; letter-spacing: .03em; color: var(--muted); }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.num { white-space: nowrap; }
tr.held td { background: var(--warn-bg); }
.badge { display: inline-block; padding: .05rem .5rem; border-radius: 999px; font-size: .8rem; font-weight: 600;
  border: 1px solid currentColor; white-space: nowrap; }
.badge.ok { color: var(--ok); background: var(--ok-bg); }
.badge.bad { color: var(--bad); background: var(--bad-bg); }
.badge.warn { color: var(--warn); background: var(--warn-bg); }
.badge.info { color: var(--info); background: var(--info-bg); }
.badge.muted { color: var(--muted); }
.muted, .age { color: var(--muted); }
.error { white-space: pre-wrap; font-family: ui-monospace, monospace; font-size: .85rem; color: var(--bad); margin: .3rem 0 0; }
pre { white-space: pre-wrap; word-break: break-word; background: var(--panel); border: 1px solid var(--line);
  padding: .7rem; border-radius: 6px; font-size: .85rem; }
.summary { display: flex; gap: .6rem; flex-wrap: wrap; margin: 0 0 1rem; padding: 0; list-style: none; }
.summary li { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: .4rem .8rem; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(300px, 1fr)); gap: 1rem; }
figure { margin: 0; background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: .6rem; }
figcaption { font-weight: 600; margin-bottom: .3rem; }
svg.chart { width: 100%; height: auto; display: block; }
svg.chart .bar { fill: var(--chart); }
svg.chart .bar.failed { fill: var(--bad); }
svg.chart .axis { stroke: var(--line); }
svg.chart text { fill: var(--muted); font-size: 11px; }
.timeline { list-style: none; padding: 0; margin: 0; border-left: 3px solid var(--line); }
.timeline li { margin: 0 0 .6rem; padding-left: .8rem; }
.alert { border: 1px solid var(--bad); background: var(--bad-bg); border-radius: 6px; padding: .2rem .8rem; margin: 0 0 1rem; }
.headline { font-size: 1.1rem; margin: 0 0 .3rem; }
dl.fields { display: grid; grid-template-columns: max-content 1fr; gap: .3rem 1rem; margin: 0 0 1rem; }
dl.fields dt { color: var(--muted); }
dl.fields dd { margin: 0; word-break: break-word; }
.periods a { margin-right: .8rem; }
.periods a[aria-current="page"] { font-weight: 700; text-decoration-thickness: 3px; }
figure details { margin-top: .4rem; font-size: .85rem; }
table.snapshots { margin-bottom: 0; }
.table-wrap + .table-wrap { margin-top: 1rem; }
[data-live-run] { font-variant-numeric: tabular-nums; }
@media (max-width: 640px) { main { padding: .8rem; } th, td { padding: .4rem .5rem; } }
`;

const js = `"use strict";
// While a backup runs, its byte count updates from /live.json (every element with data-live-run="RUN ID").
(function () {
  var cells = document.querySelectorAll("[data-live-run]");
  if (cells.length === 0) return;
  function update() {
    fetch("/live.json", { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : { runs: [] }; })
      .then(function (live) {
        var byRun = {};
        (live.runs || []).forEach(function (run) { byRun[run.run_id] = run; });
        cells.forEach(function (cell) {
          var run = byRun[cell.getAttribute("data-live-run")];
          cell.textContent = run ? run.text : "finished: reload for the result";
        });
        if ((live.runs || []).length > 0) setTimeout(update, 2000);
      })
      .catch(function () { setTimeout(update, 5000); });
  }
  update();
})();
`;

const favicon =
  `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#2f6fb2"/>` +
  `<path d="M4 8.5l2.5 2.5L12 5.5" stroke="#fff" stroke-width="2" fill="none"/></svg>`;

interface Asset {
  type: string;
  body: string;
  hash: string;
}

const hashed = (type: string, body: string): Asset => ({
  type,
  body,
  hash: createHash("sha256").update(body).digest("hex").slice(0, 12),
});

const assets: Record<string, Asset> = {
  "dashboard.css": hashed("text/css; charset=utf-8", css),
  "dashboard.js": hashed("text/javascript; charset=utf-8", js),
  "favicon.svg": hashed("image/svg+xml", favicon),
};

/** The URL of an asset, with its content hash (a new version is fetched anew). */
export function assetPath(name: keyof typeof assets | string): string {
  const asset = assets[name];
  if (!asset) throw new Error(`no dashboard asset ${name}`);
  return `/assets/${name}?v=${asset.hash}`;
}

/** The asset at `/assets/NAME`, or undefined. */
export function asset(name: string): Asset | undefined {
  return Object.hasOwn(assets, name) ? assets[name] : undefined;
}
