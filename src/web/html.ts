/**
 * HTML built by tagged templates that escape every interpolated value: `markup\`<td>${name}</td>\`` is safe whatever
 * `name` holds (a project called `<script>` shows as text). Only {@link Html} values, made by `markup` itself or by
 * {@link trusted} for markup this code wrote (an SVG chart), go in unescaped. Arrays are joined, null and undefined
 * and false render as nothing.
 *
 * The tag is not called `html`: deno fmt reformats templates of that name as HTML documents, adding whitespace inside
 * elements where it shows (an error's lines in a pre-wrapped paragraph, a `<pre>`).
 */

/** Markup that is already safe to send. */
export class Html {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

type Value = Html | string | number | boolean | null | undefined | readonly Value[];

const entities: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

/** Text escaped for an element's content or a quoted attribute value. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => entities[c]);
}

function render(value: Value): string {
  if (value instanceof Html) return value.text;
  if (Array.isArray(value)) return value.map(render).join("");
  if (value === null || value === undefined || value === false || value === true) return "";
  return escapeHtml(String(value));
}

/** The tagged template: the literal parts as written, every value escaped (see the top of this file). */
export function markup(strings: TemplateStringsArray, ...values: Value[]): Html {
  let out = strings[0];
  values.forEach((value, i) => (out += render(value) + strings[i + 1]));
  return new Html(out);
}

/** Markup this code generated itself and escaped where it holds text (charts). Never for input. */
export function trusted(markup: string): Html {
  return new Html(markup);
}

/** A path segment of a link, encoded (a project name may hold `/`, `?` or `#`). */
export function segment(text: string): string {
  return encodeURIComponent(text);
}
