/**
 * The dashboard's charts: bar charts drawn here as SVG on the server. Hand-made rather than a charting library from
 * npm: a bar per run with a value axis is a few dozen lines, needs no script (the Content-Security-Policy allows none
 * inline, and a page reads the same without script), nothing to vendor or keep up to date, and the markup goes
 * through the same escaping template as the pages. Colours come from the stylesheet's classes (`.bar`,
 * `.bar.failed`, `.axis`), never from style attributes, so dark mode applies; a failed run is also told apart by
 * its bar's title and the table under the chart, not by colour alone.
 */
import { localTime } from "../format/time.ts";
import { type Html, markup } from "./html.ts";

/** One bar: a run's start time and its value (a duration, bytes); `failed` draws it in the failure colour. */
export interface ChartPoint {
  at: string;
  value: number;
  failed?: boolean;
  /** The run's status word for the table under the chart (default: failed or succeeded). */
  status?: string;
}

export interface BarChartOptions {
  /** What the chart shows, for its accessible name ("Duration per run"). */
  label: string;
  /** A value as people read it ("1.2 GiB", "3m 20s"). */
  format: (value: number) => string;
  /** The time zone times are shown in. */
  zone: string;
}

// The drawing's coordinate system (the viewBox): the SVG scales to its container's width.
// About as wide as a chart shows in its grid column, so that its text keeps about the stylesheet's size.
const width = 400;
const height = 170;
const left = 56;
const right = 8;
const top = 10;
const bottom = 22;
const plotWidth = width - left - right;
const plotHeight = height - top - bottom;

/** A coordinate with at most two decimals (shorter markup for thousands of bars). */
function at(n: number): number {
  return Math.round(n * 100) / 100;
}

/**
 * A bar chart of `points` in the order given (oldest first), one bar per point with its time and value as its title,
 * a value axis from 0 to the largest value, and the first and last times under it. Without points, a line saying so.
 */
export function barChart(points: readonly ChartPoint[], options: BarChartOptions): Html {
  if (points.length === 0) return markup`<p class="muted">No runs in this period.</p>`;
  const max = Math.max(...points.map((p) => p.value));
  const scale = max > 0 ? plotHeight / max : 0;
  const slot = plotWidth / points.length;
  // A few runs make bars, not slabs; thousands make one-unit lines.
  const barWidth = Math.max(1, Math.min(slot * 0.7, 32));
  const failed = points.filter((p) => p.failed).length;
  const day = (iso: string) => localTime(new Date(iso), options.zone).slice(0, 10);
  const first = points[0].at;
  const last = points[points.length - 1].at;
  const summary = `${options.label}: ${points.length} run${points.length === 1 ? "" : "s"} from ${day(first)} to ` +
    `${day(last)}, smallest ${options.format(Math.min(...points.map((p) => p.value)))}, largest ${options.format(max)}${
      failed > 0 ? `, ${failed} failed` : ""
    }`;
  const bars = points.map((point, i) => {
    // A bar of a value above zero stays visible (and can be pointed at) however small it is next to the largest.
    const h = point.value > 0 ? Math.max(1, point.value * scale) : 0;
    const x = left + i * slot + (slot - barWidth) / 2;
    const title = `${localTime(new Date(point.at), options.zone)}: ${options.format(point.value)}${
      point.failed ? ` (${point.status ?? "failed"})` : ""
    }`;
    return markup`
      <rect class="${point.failed ? "bar failed" : "bar"}" x="${at(x)}" y="${at(top + plotHeight - h)}" width="${
      at(
        barWidth,
      )
    }" height="${at(h)}">
        <title>${title}</title>
      </rect>
    `;
  });
  const base = top + plotHeight;
  return markup`
    <svg class="chart" viewBox="0 0 ${width} ${height}" role="img" aria-label="${summary}"
      xmlns="http://www.w3.org/2000/svg">
    <line class="axis" x1="${left}" y1="${base}" x2="${width - right}" y2="${base}"/>
    <line class="axis" x1="${left}" y1="${top}" x2="${left}" y2="${base}"/>
    <text x="${left - 4}" y="${top + 9}" text-anchor="end">${options.format(max)}</text>
    <text x="${left - 4}" y="${base}" text-anchor="end">${options.format(0)}</text>
    <text x="${left}" y="${height - 6}">${day(first)}</text>
    <text x="${width - right}" y="${height - 6}" text-anchor="end">${day(last)}</text>
    ${bars}
    </svg>
  `;
}

/** The chart's data as a table, folded under it: the same values for screen readers and for copying. */
export function chartTable(points: readonly ChartPoint[], options: BarChartOptions): Html {
  if (points.length === 0) return markup``;
  const rows = points.map((point) =>
    markup`
      <tr>
        <td><time datetime="${point.at}">${localTime(new Date(point.at), options.zone)}</time></td>
        <td class="num">${options.format(point.value)}</td>
        <td>${point.status ?? (point.failed ? "failed" : "succeeded")}</td>
      </tr>
    `
  );
  return markup`
    <details>
      <summary>${options.label} as a table</summary>
      <div class="table-wrap">
        <table>
          <thead>
            <tr>
              <th scope="col">Started</th>
              <th scope="col" class="num">${options.label}</th>
              <th scope="col">Result</th>
            </tr>
          </thead>
          <tbody>${rows}</tbody>
        </table>
      </div>
    </details>
  `;
}
