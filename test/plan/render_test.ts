/**
 * Unit tests of the plan renderings (src/plan/render.ts): the text plan (deletion banners, overdue projects, "Not
 * managed", forget lines, the summary line, colours) and the markdown pull-request comment (status titles, the
 * warning block, tables by type, the folded full plan, the size limit). Plans are plain data built here.
 * Runs under `deno test -A test/plan/render_test.ts` and `bun --no-install test ./test/plan/render_test.ts`.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { summarize } from "../../src/plan/planner.ts";
import {
  colours,
  deletionBanners,
  renderJson,
  renderMarkdown,
  renderText,
  summaryLine,
} from "../../src/plan/render.ts";
import type { Plan, PlanAction } from "../../src/plan/document.ts";
import { markdownLimit } from "../../src/format/markdown.ts";

/** An action before the plan numbers it. */
type Draft<A = PlanAction> = A extends unknown ? Omit<A, "id"> : never;

// deno-lint-ignore no-control-regex
const ANSI = /\x1b\[[0-9;]*m/g;

/** A plan document around the given actions: ids a1…, the summary computed as the planner does. */
function makePlan(drafts: Draft[], extra: Partial<Plan> = {}): Plan {
  const actions = drafts.map((draft, i) => ({ id: `a${i + 1}`, ...draft }));
  return {
    format_version: 1,
    plan_id: "5f1d7a0e-3c2b-4d6e-9f10-2a3b4c5d6e7f",
    generated_at: "2026-11-21T10:00:05Z",
    now: "2026-11-21T10:00:00Z",
    config_fingerprint: `sha256:${"ab".repeat(32)}`,
    state: { lineage: "8c0f3a52-0000-4000-8000-000000000001", serial: 7 },
    projects: ["shop", "blog"],
    actions,
    summary: summarize(actions),
    warnings: [],
    overdue: [],
    not_managed: [],
    next_due: [{ project: "shop", at: "2026-11-22T03:00:00Z" }, { project: "blog", at: "2026-11-21T11:00:00Z" }],
    ...extra,
  };
}

const ids = (n: number, prefix = "4f2c") =>
  Array.from({ length: n }, (_, i) => `${prefix}${String(i).padStart(4, "0")}`);

const init: Draft = { type: "init", repository: "offsite", reason: "repository not initialized", destructive: false };
const backup: Draft = {
  type: "backup",
  project: "shop",
  source: "db",
  repository: "local",
  reason: "due since 2026-11-21T03:00:00Z (0 3 * * *)",
  destructive: false,
};
const requiredForget: Draft = {
  type: "forget",
  project: "shop",
  source: "db",
  repository: "offsite",
  snapshots: ids(23),
  destructive: true,
  approval: "required",
  approval_reason: "retention changed (daily 30 → 7)",
  reason: "retention daily 7 keeps 7 of 30 snapshots",
};
const routineForget: Draft = {
  type: "forget",
  project: "blog",
  source: "blog",
  repository: "local",
  snapshots: ids(3, "b10b"),
  destructive: true,
  approval: "routine",
  reason: "retention last 2 keeps 2 of 5 snapshots",
};
const prune: Draft = {
  type: "prune",
  repository: "offsite",
  reason: "after forgetting 23 snapshots",
  destructive: false,
};
const check: Draft = {
  type: "check",
  repository: "local",
  reason: "last check 2026-11-13T10:00:00Z (8d ago), every 7d, reading 5% of the data",
  destructive: false,
  read_data_subset: "5%",
};
const verify: Draft = {
  type: "verify",
  project: "shop",
  repository: "local",
  reason: "never restored in a drill",
  destructive: false,
};
const overdue = { project: "blog", last_success: "2026-11-18T03:00:12Z", max_age: "2d" };
const legacy = {
  kind: "project" as const,
  subject: "legacy",
  detail: "no longer declared; its 12 snapshots are kept, never deleted automatically",
};
const foreign = {
  kind: "foreign" as const,
  subject: "local: snapshots not made by backupctl",
  detail: "2 snapshots: kept as they are",
};

/** Everything but an init: backups, forgets (one needing approval), maintenance, an overdue project. */
function fullPlan(): Plan {
  return makePlan([backup, requiredForget, routineForget, prune, check, verify], {
    warnings: ["project old is disabled (enabled: false): nothing is planned for it"],
    overdue: [overdue],
    not_managed: [legacy, foreign],
  });
}

const FULL_TEXT = [
  "! project old is disabled (enabled: false): nothing is planned for it",
  "! project blog is overdue: last success 2026-11-18 03:00:12+00:00, longer ago than its maxAge 2d",
  "! 23 snapshots of shop/db in offsite would be forgotten because retention changed (daily 30 → 7)",
  "",
  "Project shop:",
  "  + backup db → local  due since 2026-11-21 03:00:00+00:00 (0 3 * * *)",
  "  - forget 23 snapshots of db in offsite (needs approval)  retention daily 7 keeps 7 of 30 snapshots",
  "      4f2c0000 4f2c0001 4f2c0002 4f2c0003 4f2c0004 4f2c0005 4f2c0006 4f2c0007",
  "      4f2c0008 4f2c0009 4f2c0010 4f2c0011 4f2c0012 4f2c0013 4f2c0014 4f2c0015",
  "      4f2c0016 4f2c0017 4f2c0018 4f2c0019 4f2c0020 4f2c0021 4f2c0022",
  "  ~ verify shop (restore drill from local)  never restored in a drill",
  "",
  "Project blog:",
  "  - forget 3 snapshots of blog in local  retention last 2 keeps 2 of 5 snapshots",
  "      b10b0000 b10b0001 b10b0002",
  "",
  "Repositories:",
  "  ~ prune offsite  after forgetting 23 snapshots",
  "  ~ check local  last check 2026-11-13 10:00:00+00:00 (8d ago), every 7d, reading 5% of the data",
  "",
  "Not managed (reported, never deleted):",
  "  ? legacy: no longer declared; its 12 snapshots are kept, never deleted automatically",
  "  ? local: snapshots not made by backupctl: 2 snapshots: kept as they are",
  "",
  "Plan: 1 to back up, 0 to copy, 0 to initialize, 26 snapshots to forget, 2 checks.",
  "",
].join("\n");

describe("renderText", () => {
  it("puts warnings, overdue projects and deletion banners first, then actions by project, then the summary", () => {
    assert.equal(renderText(fullPlan(), colours(false)), FULL_TEXT);
  });

  it("writes one banner per forget needing approval, in the singular for one snapshot", () => {
    const one = { ...requiredForget, project: "blog", source: "blog", snapshots: ["b10b0000"] };
    const result = makePlan([requiredForget, routineForget, one]);
    assert.deepEqual(deletionBanners(result), [
      "23 snapshots of shop/db in offsite would be forgotten because retention changed (daily 30 → 7)",
      "1 snapshot of blog/blog in offsite would be forgotten because retention changed (daily 30 → 7)",
    ]);
    const lines = renderText(result, colours(false)).split("\n");
    assert.deepEqual(lines.filter((line) => line.startsWith("!")), deletionBanners(result).map((b) => `! ${b}`));
    assert.ok(
      lines.includes(
        "  - forget 1 snapshot of blog in offsite (needs approval)  retention daily 7 keeps 7 of 30 snapshots",
      ),
    );
    assert.ok(lines.includes("  - forget 3 snapshots of blog in local  retention last 2 keeps 2 of 5 snapshots"));
  });

  it("renders an init as + under Repositories", () => {
    const text = renderText(makePlan([init, backup]), colours(false));
    assert.ok(text.includes("Repositories:\n  + init offsite  repository not initialized\n"), text);
    assert.ok(text.endsWith("Plan: 1 to back up, 0 to copy, 1 to initialize, 0 snapshots to forget, 0 checks.\n"));
  });

  it("counts forgets as snapshot ids and checks as check plus verify actions in the summary line", () => {
    const result = makePlan([backup, backup, requiredForget, routineForget, check, verify, verify, prune, init]);
    assert.equal(
      summaryLine(result),
      "Plan: 2 to back up, 0 to copy, 1 to initialize, 26 snapshots to forget, 3 checks.",
    );
    assert.ok(renderText(result, colours(false)).endsWith(`${summaryLine(result)}\n`));
  });

  it("says there are no changes, with overdue projects and Not managed, and no summary line", () => {
    const result = makePlan([], { overdue: [overdue], not_managed: [legacy] });
    assert.equal(
      renderText(result, colours(false)),
      [
        "! project blog is overdue: last success 2026-11-18 03:00:12+00:00, longer ago than its maxAge 2d",
        "",
        "No changes. Backups are up to date.",
        "Next due: blog at 2026-11-21 11:00:00+00:00 (in 1h).",
        "",
        "Not managed (reported, never deleted):",
        "  ? legacy: no longer declared; its 12 snapshots are kept, never deleted automatically",
        "",
      ].join("\n"),
    );
  });

  it("names the snapshot ids each forget deletes, eight short ids a line under it", () => {
    const long = { ...routineForget, snapshots: ["b10b0000" + "f".repeat(56), "b10b0001" + "e".repeat(56)] };
    const lines = renderText(makePlan([long]), colours(false)).split("\n");
    const at = lines.indexOf("  - forget 2 snapshots of blog in local  retention last 2 keeps 2 of 5 snapshots");
    assert.ok(at >= 0, lines.join("\n"));
    assert.equal(lines[at + 1], "      b10b0000 b10b0001");
  });

  it("shows times in the given time zone with their offset, across a DST change, and leaves JSON in UTC", () => {
    const winter = makePlan([backup], { overdue: [overdue] });
    const text = renderText(winter, colours(false), "Europe/Berlin");
    assert.ok(text.includes("  + backup db → local  due since 2026-11-21 04:00:00+01:00 (0 3 * * *)\n"), text);
    assert.ok(text.includes("last success 2026-11-18 04:00:12+01:00, longer ago"), text);
    const summer = makePlan([], {
      now: "2026-07-01T10:00:00Z",
      next_due: [{ project: "shop", at: "2026-07-02T01:00:00Z" }],
    });
    assert.ok(
      renderText(summer, colours(false), "Europe/Berlin").includes(
        "Next due: shop at 2026-07-02 03:00:00+02:00 (in 15h).",
      ),
    );
    const markdown = renderMarkdown(winter, "America/New_York");
    assert.ok(markdown.includes("| due since 2026-11-20 22:00:00-05:00 (0 3 * * *) |"), markdown);
    assert.ok(markdown.includes("<sub>now 2026-11-21 05:00:00-05:00 · config"), markdown);
    assert.ok(!renderJson(winter).includes("+01:00"));
    assert.ok(renderJson(winter).includes('"reason": "due since 2026-11-21T03:00:00Z (0 3 * * *)"'));
  });

  it("has no ANSI codes with colours off, and the same text wrapped in ANSI codes with colours on", () => {
    const plainText = renderText(fullPlan(), colours(false));
    assert.equal(plainText.match(ANSI), null);
    assert.equal(renderText(fullPlan()), plainText, "colours are off by default");
    const coloured = renderText(fullPlan(), colours(true));
    assert.ok((coloured.match(ANSI) ?? []).length > 10, coloured);
    assert.equal(coloured.replace(ANSI, ""), plainText);
    const bannerLine = coloured.split("\n").find((line) => line.includes("would be forgotten"))!;
    assert.ok(bannerLine.startsWith("\x1b[1m\x1b[31m! 23 snapshots"), JSON.stringify(bannerLine));
  });
});

describe("renderMarkdown", () => {
  const title = (markdown: string) => markdown.split("\n")[0];

  it("titles a plan by what it does", () => {
    assert.equal(title(renderMarkdown(makePlan([]))), "### backupctl plan: ✅ No changes");
    assert.equal(title(renderMarkdown(makePlan([init, backup, check, verify]))), "### backupctl plan: 📋 Changes");
    assert.equal(
      title(renderMarkdown(makePlan([backup, routineForget, prune]))),
      "### backupctl plan: ⚠️ Changes with routine deletions",
    );
    assert.equal(
      title(renderMarkdown(makePlan([backup, routineForget, requiredForget]))),
      "### backupctl plan: ⛔ Deletions need approval",
    );
  });

  it("says there are no changes for an empty plan, folding the text plan", () => {
    const result = makePlan([]);
    const markdown = renderMarkdown(result);
    assert.equal(
      markdown,
      [
        "### backupctl plan: ✅ No changes",
        "",
        "No changes. Backups are up to date.",
        "",
        "<details><summary>Full plan</summary>",
        "",
        "```",
        "No changes. Backups are up to date.",
        "Next due: blog at 2026-11-21 11:00:00+00:00 (in 1h).",
        "```",
        "",
        "</details>",
        "",
        "<sub>now 2026-11-21 10:00:00+00:00 · config sha256:abababababab… · state serial 7</sub>",
        "",
      ].join("\n"),
    );
  });

  it("puts the summary line in bold and a warning block with each banner and overdue project", () => {
    const markdown = renderMarkdown(fullPlan());
    const lines = markdown.split("\n");
    assert.equal(lines[2], "**Plan: 1 to back up, 0 to copy, 0 to initialize, 26 snapshots to forget, 2 checks.**");
    const start = lines.indexOf("> [!WARNING]");
    assert.equal(start, 4);
    assert.deepEqual(lines.slice(start, start + 5), [
      "> [!WARNING]",
      "> - 23 snapshots of shop/db in offsite would be forgotten because retention changed (daily 30 → 7)",
      "> - project blog is overdue: last success 2026-11-18 03:00:12+00:00",
      "> - project old is disabled (enabled: false): nothing is planned for it",
      "",
    ]);
    assert.ok(!markdown.includes("[!NOTE]"));
  });

  it("puts the plan's warnings at the top, not only inside the folded full plan", () => {
    const markdown = renderMarkdown(
      makePlan([backup, routineForget], { warnings: ["repository offsite cannot be opened: wrong password"] }),
    );
    const warning = markdown.indexOf("> [!WARNING]\n> - repository offsite cannot be opened: wrong password\n");
    assert.ok(warning > 0 && warning < markdown.indexOf("<details>"), markdown);
    assert.ok(markdown.includes("> [!NOTE]\n> 3 snapshots will be forgotten by routine retention.\n"), markdown);
  });

  it("notes routine deletions when none needs approval", () => {
    const markdown = renderMarkdown(makePlan([backup, routineForget, prune]));
    assert.ok(markdown.includes("> [!NOTE]\n> 3 snapshots will be forgotten by routine retention.\n"), markdown);
    assert.ok(!markdown.includes("[!WARNING]"));
  });

  it("warns about an overdue project even without changes", () => {
    const markdown = renderMarkdown(makePlan([], { overdue: [overdue] }));
    assert.ok(
      markdown.includes("> [!WARNING]\n> - project blog is overdue: last success 2026-11-18 03:00:12+00:00\n"),
      markdown,
    );
  });

  it("has one table per action type, in plan order, with escaped cells, and lists Not managed", () => {
    const piped = { ...backup, source: "a|b", reason: "due | now" };
    const markdown = renderMarkdown(
      makePlan([init, backup, piped, requiredForget, routineForget, prune, check, verify], { not_managed: [legacy] }),
    );
    const headings = markdown.split("\n").filter((line) => line.startsWith("#### "));
    assert.deepEqual(headings, [
      "#### init (1)",
      "#### backup (2)",
      "#### forget (2)",
      "#### prune (1)",
      "#### check (1)",
      "#### verify (1)",
      "#### Not managed (reported, never deleted)",
    ]);
    const table = (heading: string) => {
      const after = markdown.slice(markdown.indexOf(`${heading}\n`) + heading.length + 1);
      return after.slice(0, after.indexOf("\n\n", 1)).trim();
    };
    assert.equal(
      table("#### backup (2)"),
      [
        "| project | action | reason |",
        "| --- | --- | --- |",
        "| shop | backup db → local | due since 2026-11-21 03:00:00+00:00 (0 3 * * *) |",
        "| shop | backup a\\|b → local | due \\| now |",
      ].join("\n"),
    );
    assert.equal(
      table("#### forget (2)"),
      [
        "| project | action | reason |",
        "| --- | --- | --- |",
        "| shop | forget 23 snapshots of db in offsite (needs approval) | retention daily 7 keeps 7 of 30 snapshots |",
        "| blog | forget 3 snapshots of blog in local | retention last 2 keeps 2 of 5 snapshots |",
      ].join("\n"),
    );
    assert.equal(
      table("#### init (1)"),
      "| project | action | reason |\n| --- | --- | --- |\n| — | init offsite | repository not initialized |",
    );
    assert.ok(
      markdown.includes(
        "#### Not managed (reported, never deleted)\n\n" +
          "- legacy: no longer declared; its 12 snapshots are kept, never deleted automatically\n",
      ),
      markdown,
    );
  });

  it("folds the full text plan, without colours, in <details>, then the footer", () => {
    const result = fullPlan();
    const markdown = renderMarkdown(result);
    assert.ok(
      markdown.endsWith(
        "<details><summary>Full plan</summary>\n\n```\n" + FULL_TEXT + "```\n\n</details>\n\n" +
          "<sub>now 2026-11-21 10:00:00+00:00 · config sha256:abababababab… · state serial 7</sub>\n",
      ),
      markdown,
    );
    assert.equal(markdown.match(ANSI), null);
    assert.ok(markdown.length <= markdownLimit);
  });

  it("stays within 60,000 characters for 5,000 actions, and says what it cut", () => {
    const many: Draft[] = Array.from({ length: 5000 }, (_, i) => ({
      ...backup,
      project: `project${String(i).padStart(4, "0")}`,
      reason:
        `due since 2026-11-21T03:00:00Z (0 3 * * *); 3 slots missed since the last success, one backup covers them`,
    }));
    const result = makePlan(many);
    assert.ok(renderText(result).length > 2 * markdownLimit, "the text plan alone is over the limit");
    const markdown = renderMarkdown(result);
    assert.equal(markdownLimit, 60_000);
    assert.ok(markdown.length <= 60_000, `${markdown.length} characters`);
    assert.equal(title(markdown), "### backupctl plan: 📋 Changes");
    assert.ok(markdown.includes("**Plan: 5000 to back up,"));
    assert.match(markdown, /\n\| … \| \d+ more backup actions \| see the full plan \|\n/);
    const shown = markdown.split("\n").filter((line) => line === "| project | action | reason |").length;
    const [, more] = /\| … \| (\d+) more backup actions/.exec(markdown)!;
    const rows = markdown.split("\n").filter((line) => /^\| project\d{4} \|/.test(line)).length;
    assert.equal(shown, 1);
    assert.equal(rows + Number(more), 5000);
    assert.ok(rows > 100, `${rows} rows shown`);
    assert.ok(markdown.includes("\n… (cut: the full plan is longer)\n```\n\n</details>\n"), markdown.slice(-500));
  });
});
