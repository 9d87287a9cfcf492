/**
 * The dashboard's SVG bar chart (src/web/charts.ts): a bar per point in order, heights to scale with the largest
 * value at the top of the axis, failed points in the failure class and named so in their title, an accessible
 * summary, text escaped, no style attribute (the Content-Security-Policy forbids them), and a line instead of an
 * empty chart.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { barChart, chartTable } from "../../src/web/charts.ts";

const options = { label: "Size <b>per</b> run", format: (n: number) => `${n} u`, zone: "UTC" };

describe("barChart", () => {
  it("draws a bar per point, to scale, the failed one marked", () => {
    const svg = barChart([
      { at: "2026-12-01T03:00:00.000Z", value: 50 },
      { at: "2026-12-02T03:00:00.000Z", value: 100, failed: true, status: "interrupted" },
      { at: "2026-12-03T03:00:00.000Z", value: 0 },
    ], options).text;
    const bars = [...svg.matchAll(/<rect class="(bar(?: failed)?)"[^>]* y="([\d.]+)"[^>]* height="([\d.]+)"/g)];
    assert.deepEqual(bars.map((b) => b[1]), ["bar", "bar failed", "bar"]);
    const heights = bars.map((b) => Number(b[3]));
    assert.equal(heights[0] * 2, heights[1]);
    assert.equal(heights[2], 0);
    // Every bar stands on the same base line.
    assert.equal(new Set(bars.map((b) => Number(b[2]) + Number(b[3]))).size, 1);
    assert.match(svg, /<title>2026-12-02 03:00:00\+00:00: 100 u \(interrupted\)<\/title>/);
    assert.match(svg, />100 u<\/text>/);
    assert.match(svg, />0 u<\/text>/);
    assert.match(svg, />2026-12-01<\/text>/);
    assert.match(svg, />2026-12-03<\/text>/);
    assert.match(
      svg,
      /role="img" aria-label="Size &lt;b&gt;per&lt;\/b&gt; run: 3 runs from 2026-12-01 to 2026-12-03, smallest 0 u, largest 100 u, 1 failed"/,
    );
    assert.doesNotMatch(svg, /<b>|style=/);
  });

  it("says so instead of drawing nothing", () => {
    assert.equal(barChart([], options).text, '<p class="muted">No runs in this period.</p>');
    assert.equal(chartTable([], options).text, "");
  });

  it("folds the same data as a table under the chart", () => {
    const table = chartTable([{ at: "2026-12-01T03:00:00.000Z", value: 7, failed: true }], options).text;
    assert.match(table, /<summary>Size &lt;b&gt;per&lt;\/b&gt; run as a table<\/summary>/);
    assert.match(table, /<td class="num">7 u<\/td>\s*<td>failed<\/td>/);
  });
});
