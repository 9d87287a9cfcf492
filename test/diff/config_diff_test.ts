/**
 * Unit tests of the semantic config diff (src/diff/): plain configs through validateConfig, no files,
 * no git. Runs under `deno test -A test/plan/config_diff_test.ts` and
 * `bun --no-install test ./test/plan/config_diff_test.ts`.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  age,
  env,
  file,
  files,
  gpg,
  healthchecks,
  postgres,
  restic,
  slack,
  sqlite,
  webhook,
} from "../../src/config/helpers.ts";
import { validateConfig } from "../../src/config/validate.ts";
import type { NormalizedConfig } from "../../src/config/normalize.ts";
import { diffConfigs } from "../../src/diff/config-diff.ts";
import { diffSummaryLine, renderDiffMarkdown, renderDiffText, summarizeDiff } from "../../src/diff/render.ts";
import type { ConfigChange } from "../../src/diff/types.ts";

type Raw = Record<string, unknown>;
type RawProject = Raw & { retention: Raw; sources: unknown[]; repositories: string[] };
type RawConfig = Raw & { repositories: Raw; notifiers: Raw; projects: Record<string, RawProject> };

/** The baseline: one project "shop" (postgres + files) to local with copies to offsite, notifying ops. */
function baseline(): RawConfig {
  return {
    timezone: "UTC",
    repositories: {
      local: restic({ url: "/srv/restic/main", password: env("RESTIC_PASSWORD") }),
      offsite: restic({ url: "sftp:backup@storage.example:/restic", password: env("RESTIC_PASSWORD") }),
    },
    notifiers: { ops: slack({ webhookUrl: env("SLACK_WEBHOOK_URL") }) },
    projects: {
      shop: {
        schedule: "0 3 * * *",
        sources: [
          postgres({ host: "db", database: "shop", user: "backup", password: env("SHOP_DB_PASSWORD") }),
          files({ paths: ["/srv/shop/uploads"], exclude: ["*.tmp"] }),
        ],
        repositories: ["local", "offsite"],
        retention: { last: 3, daily: 30, weekly: 4, within: "7d" },
        notify: ["ops"],
      },
    },
  };
}

function load(raw: RawConfig): NormalizedConfig {
  return validateConfig(structuredClone(raw), "test.config.ts");
}

/** Diffs the baseline (before) against the baseline changed by `edit` (after). */
function diffAfter(edit: (raw: RawConfig) => void, start: RawConfig = baseline()): ConfigChange[] {
  const after = structuredClone(start);
  edit(after);
  return diffConfigs(load(start), load(after));
}

/** The fields that matter for reading a change in an assertion. */
function brief(change: ConfigChange): [string, string, string, boolean] {
  return [change.kind, change.subject, change.detail, change.destructive];
}

function only(changes: ConfigChange[]): ConfigChange {
  assert.equal(changes.length, 1, JSON.stringify(changes, null, 2));
  return changes[0];
}

describe("diffConfigs: no changes", () => {
  it("returns nothing for equal configs and renders the no-change line", () => {
    const changes = diffConfigs(load(baseline()), load(baseline()));
    assert.deepEqual(changes, []);
    assert.equal(renderDiffText(changes), "No changes to the configuration.\n");
    assert.equal(
      renderDiffMarkdown(changes, { against: "origin/main" }),
      "### backupctl config diff against `origin/main`\n\nNo changes to the configuration.\n",
    );
  });

  it("treats a default written out as no change (normalized configs are compared)", () => {
    const changes = diffAfter((raw) => {
      raw.projects.shop.enabled = true;
      raw.projects.shop.sources[1] = files({ name: "files", paths: ["/srv/shop/uploads"], exclude: ["*.tmp"] });
    });
    assert.deepEqual(changes, []);
  });

  it("reports a pure reordering of sources instead of claiming no change", () => {
    const change = only(diffAfter((raw) => raw.projects.shop.sources.reverse()));
    assert.deepEqual(brief(change), ["changed", "sources of shop", "order shop, files → files, shop", false]);
  });
});

describe("diffConfigs: projects", () => {
  it("a project added is described with its schedule, sources, repositories and retention", () => {
    const change = only(diffAfter((raw) => {
      raw.projects.wiki = {
        schedule: "@daily",
        sources: [sqlite({ path: "/srv/wiki/wiki.db" })],
        repositories: ["offsite"],
        retention: { daily: 7 },
      };
    }));
    assert.deepEqual(brief(change), [
      "added",
      "project wiki",
      "schedule @daily (UTC), 1 source (wiki) to offsite, retention daily 7",
      false,
    ]);
    assert.equal(change.consequence, "the next apply backs it up (never backed up yet)");
    assert.equal(change.project, "wiki");
  });

  it("a project removed is destructive: its snapshots are kept but no longer managed", () => {
    const start = baseline();
    start.projects.wiki = {
      schedule: "@daily",
      sources: [sqlite({ path: "/srv/wiki/wiki.db" })],
      repositories: ["offsite"],
      retention: { daily: 7 },
    };
    const change = only(diffAfter((raw) => delete raw.projects.wiki, start));
    assert.deepEqual(brief(change), [
      "removed",
      "project wiki",
      "no longer declared (was 1 source to offsite)",
      true,
    ]);
    assert.equal(
      change.consequence,
      "no more backups run; its snapshots are no longer managed: they are kept, never deleted automatically",
    );
  });

  it("disabling and enabling a project", () => {
    const disabled = only(diffAfter((raw) => raw.projects.shop.enabled = false));
    assert.deepEqual(brief(disabled), ["changed", "project shop", "disabled", false]);
    assert.equal(disabled.consequence, "no backups run while it is disabled; its snapshots are kept");
    const start = baseline();
    start.projects.shop.enabled = false;
    const enabled = only(diffAfter((raw) => delete raw.projects.shop.enabled, start));
    assert.deepEqual(brief(enabled), ["changed", "project shop", "enabled", false]);
    assert.match(enabled.consequence, /a backup runs at the next apply when due/);
  });
});

describe("diffConfigs: sources", () => {
  it("added, removed and changed sources, by source name", () => {
    const changes = diffAfter((raw) => {
      raw.projects.shop.sources = [
        postgres({ host: "db2", port: 5433, database: "shop", user: "backup", password: env("SHOP_DB_PASSWORD") }),
        sqlite({ path: "/srv/shop/sessions.db" }),
      ];
    });
    assert.deepEqual(changes.map(brief), [
      ["changed", "source shop/shop", 'host "db" → "db2"; port not set → 5433', false],
      ["added", "source shop/sessions", 'sqlite path "/srv/shop/sessions.db"', false],
      [
        "removed",
        "source shop/files",
        'no longer declared (was files paths ["/srv/shop/uploads"], exclude ["*.tmp"])',
        false,
      ],
    ]);
    assert.equal(changes[0].consequence, "the next backup of shop/shop uses the new settings");
    assert.equal(changes[1].consequence, "the next apply backs it up (never backed up yet)");
    assert.equal(changes[2].consequence, "no longer backed up; its snapshots are kept, never deleted automatically");
  });

  it("shows secret references by name only", () => {
    const change = only(diffAfter((raw) => {
      raw.projects.shop.sources[0] = postgres({
        host: "db",
        database: "shop",
        user: "backup",
        password: file("/run/secrets/shop_db_password"),
      });
    }));
    assert.equal(change.detail, 'password env("SHOP_DB_PASSWORD") → file("/run/secrets/shop_db_password")');
  });
});

describe("diffConfigs: repositories", () => {
  it("a repository declared, used by a project or not", () => {
    const changes = diffAfter((raw) => {
      raw.repositories.b2 = restic({ url: "b2:bucket:/restic", password: env("B2_RESTIC_PASSWORD") });
      raw.repositories.spare = restic({ url: "/srv/spare", password: file("/run/secrets/spare") });
      raw.projects.shop.repositories = ["local", "offsite", "b2"];
    });
    assert.deepEqual(changes.map(brief), [
      ["added", "repository b2", 'declared: restic "b2:bucket:/restic", password env("B2_RESTIC_PASSWORD")', false],
      ["added", "repository spare", 'declared: restic "/srv/spare", password file("/run/secrets/spare")', false],
      ["added", "repositories of shop", "copies to b2", false],
    ]);
    assert.equal(changes[0].consequence, "used by shop: initialized at the next apply if it does not exist yet");
    assert.equal(changes[1].consequence, "declared but not used by any project yet");
    assert.equal(changes[2].consequence, "snapshots of shop are copied to b2 from the next apply");
  });

  it("a repository removed from the config and from its project is destructive twice", () => {
    const changes = diffAfter((raw) => {
      delete raw.repositories.offsite;
      raw.projects.shop.repositories = ["local"];
    });
    assert.deepEqual(changes.map(brief), [
      [
        "removed",
        "repository offsite",
        'no longer declared (was restic "sftp:backup@storage.example:/restic", password env("RESTIC_PASSWORD"))',
        true,
      ],
      ["removed", "repositories of shop", "copies to offsite removed", true],
    ]);
    assert.equal(
      changes[0].consequence,
      "backupctl no longer manages it or its snapshots; they are kept, never deleted automatically",
    );
    assert.match(changes[1].consequence, /^shop is no longer backed up or copied to offsite; .* never deleted/);
  });

  it("url, password reference and options changes", () => {
    const changes = diffAfter((raw) => {
      raw.repositories.local = restic({
        url: "/srv/restic/new",
        password: env("LOCAL_RESTIC_PASSWORD"),
        options: { "local.connections": "4" },
      });
    });
    assert.deepEqual(changes.map(brief), [
      ["changed", "repository local", 'url "/srv/restic/main" → "/srv/restic/new"', false],
      ["changed", "repository local", 'password env("RESTIC_PASSWORD") → env("LOCAL_RESTIC_PASSWORD")', false],
      ["changed", "repository local", 'options not set → { local.connections: "4" }', false],
    ]);
    assert.match(changes[0].consequence, /^backups of shop go to the new location/);
    assert.match(changes[1].consequence, /must hold a key of the repository/);
  });

  it("credentials in a plain repository URL are scrubbed", () => {
    const change = only(diffAfter((raw) => {
      raw.repositories.local = restic({
        url: "rest:https://backup:hunter2-secret@rest.example/shop",
        password: env("RESTIC_PASSWORD"),
      });
    }));
    assert.ok(!change.detail.includes("hunter2-secret"), change.detail);
    assert.match(change.detail, /backup:\(sensitive\)@rest\.example/);
  });

  it("the primary repository changed: the next backup goes to the new one", () => {
    const swapped = only(diffAfter((raw) => raw.projects.shop.repositories = ["offsite", "local"]));
    assert.deepEqual(brief(swapped), ["changed", "repositories of shop", "primary local → offsite", false]);
    assert.equal(swapped.consequence, "the next backup goes to offsite; local receives copies instead");

    const replaced = diffAfter((raw) => {
      raw.repositories.nas = restic({ url: "/mnt/nas/restic", password: env("RESTIC_PASSWORD") });
      raw.projects.shop.repositories = ["nas", "offsite"];
    });
    assert.deepEqual(replaced.map(brief), [
      ["added", "repository nas", 'declared: restic "/mnt/nas/restic", password env("RESTIC_PASSWORD")', false],
      ["changed", "repositories of shop", "primary local → nas", false],
      ["removed", "repositories of shop", "local (was the primary) removed", true],
    ]);
    assert.equal(
      replaced[1].consequence,
      "the next backup goes to nas (initialized at the next apply if needed); local no longer receives backups",
    );
  });
});

describe("diffConfigs: schedule and time zone", () => {
  it("a schedule change says when backups run, in cron text", () => {
    const change = only(diffAfter((raw) => raw.projects.shop.schedule = "30 1 * * *"));
    assert.deepEqual(brief(change), ["changed", "schedule of shop", "0 3 * * * → 30 1 * * *", false]);
    assert.equal(change.consequence, "backups run at 30 1 * * * instead of 0 3 * * *");
  });

  it("a time zone change (the config's, inherited by the project) names both zones", () => {
    const change = only(diffAfter((raw) => raw.timezone = "Europe/Berlin"));
    assert.deepEqual(brief(change), ["changed", "schedule of shop", "timezone UTC → Europe/Berlin", false]);
    assert.equal(change.consequence, "backups run at 0 3 * * * (Europe/Berlin) instead of 0 3 * * * (UTC)");
  });

  it("both at once, in one change", () => {
    const change = only(diffAfter((raw) => {
      raw.projects.shop.schedule = "0 4 * * *";
      raw.projects.shop.timezone = "America/New_York";
    }));
    assert.equal(change.detail, "0 3 * * * (UTC) → 0 4 * * * (America/New_York)");
  });
});

describe("diffConfigs: retention", () => {
  it("a count lowered: older snapshots will be forgotten, needs approval, destructive", () => {
    const change = only(diffAfter((raw) => raw.projects.shop.retention.daily = 7));
    assert.deepEqual(brief(change), ["changed", "retention of shop", "daily 30 → 7", true]);
    assert.equal(change.consequence, "older daily snapshots will be forgotten (needs approval on apply)");
    assert.equal(
      renderDiffText([change]),
      "~ retention of shop: daily 30 → 7\n" +
        "    destructive: older daily snapshots will be forgotten (needs approval on apply)\n\n" +
        "Diff: 0 added, 0 removed, 1 changed (1 destructive).\n",
    );
  });

  it("a count raised or added: more snapshots kept, nothing forgotten", () => {
    const changes = diffAfter((raw) => {
      raw.projects.shop.retention.daily = 60;
      raw.projects.shop.retention.yearly = 3;
    });
    assert.deepEqual(changes.map(brief), [
      ["changed", "retention of shop", "daily 30 → 60", false],
      ["added", "retention of shop", "yearly not set → 3", false],
    ]);
    for (const change of changes) assert.equal(change.consequence, "more snapshots will be kept; nothing is forgotten");
  });

  it("a count removed and last lowered are destructive", () => {
    const changes = diffAfter((raw) => {
      delete raw.projects.shop.retention.weekly;
      raw.projects.shop.retention.last = 1;
    });
    assert.deepEqual(changes.map(brief), [
      ["changed", "retention of shop", "last 3 → 1", true],
      ["removed", "retention of shop", "weekly 4 → not set", true],
    ]);
    assert.equal(
      changes[0].consequence,
      "snapshots beyond the last 1 will be forgotten unless another rule keeps them (needs approval on apply)",
    );
    assert.equal(
      changes[1].consequence,
      "weekly snapshots are no longer kept by this rule: those no other rule keeps will be forgotten " +
        "(needs approval on apply)",
    );
  });

  it("within shortened is destructive, lengthened is not, rewritten with the same length is neither", () => {
    const shorter = only(diffAfter((raw) => raw.projects.shop.retention.within = "2d"));
    assert.deepEqual(brief(shorter), ["changed", "retention of shop", "within 7d → 2d", true]);
    assert.equal(
      shorter.consequence,
      "snapshots older than 2d will be forgotten unless another rule keeps them (needs approval on apply)",
    );
    const longer = only(diffAfter((raw) => raw.projects.shop.retention.within = "1m"));
    assert.deepEqual(brief(longer), ["changed", "retention of shop", "within 7d → 1m", false]);
    const same = only(diffAfter((raw) => raw.projects.shop.retention.within = "6d24h"));
    assert.equal(same.consequence, "the same length, written differently; nothing is forgotten");
    assert.equal(same.destructive, false);
  });

  it("minSnapshots lowered weakens the deletion guard (destructive); raised strengthens it", () => {
    const start = baseline();
    start.projects.shop.retention.minSnapshots = 5;
    const lower = only(diffAfter((raw) => raw.projects.shop.retention.minSnapshots = 2, start));
    assert.deepEqual(brief(lower), ["changed", "retention of shop", "minSnapshots 5 → 2", true]);
    assert.match(lower.consequence, /^the deletion guard is weaker/);
    const higher = only(diffAfter((raw) => raw.projects.shop.retention.minSnapshots = 9, start));
    assert.equal(higher.destructive, false);
    assert.match(higher.consequence, /nothing is forgotten$/);
  });
});

describe("diffConfigs: encryption", () => {
  it("added, changed and removed (removed is destructive)", () => {
    const added = only(diffAfter((raw) => raw.projects.shop.encrypt = gpg({ recipient: "backup@example.com" })));
    assert.deepEqual(brief(added), ["added", "encryption of shop", "gpg for backup@example.com", false]);
    assert.match(added.consequence, /^dumps will be encrypted with gpg for backup@example\.com before restic/);

    const start = baseline();
    start.projects.shop.encrypt = gpg({ recipient: "backup@example.com" });
    const changed = only(diffAfter((raw) => raw.projects.shop.encrypt = age({ recipients: ["age1abc"] }), start));
    assert.deepEqual(brief(changed), [
      "changed",
      "encryption of shop",
      "gpg for backup@example.com → age for age1abc",
      false,
    ]);
    assert.match(changed.consequence, /^dumps will be encrypted with age for age1abc instead of gpg/);

    const key = only(
      diffAfter((raw) => {
        raw.projects.shop.encrypt = gpg({ recipient: "backup@example.com", secretKey: env("GPG_KEY") });
      }, start),
    );
    assert.equal(key.detail, 'secretKey not set → env("GPG_KEY")');

    const removed = only(diffAfter((raw) => delete raw.projects.shop.encrypt, start));
    assert.deepEqual(brief(removed), ["removed", "encryption of shop", "gpg for backup@example.com removed", true]);
    assert.match(removed.consequence, /^dumps will no longer be encrypted before restic/);
  });
});

describe("diffConfigs: notifications", () => {
  it("notifiers declared and removed, a project's notify list", () => {
    const changes = diffAfter((raw) => {
      delete raw.notifiers.ops;
      raw.notifiers.pager = webhook({ url: "https://hooks.example/T0KEN-abc", headers: { "X-Key": "plain-key" } });
      raw.projects.shop.notify = ["pager"];
    });
    assert.deepEqual(changes.map(brief), [
      ["added", "notifier pager", "declared: webhook url (sensitive), headers { X-Key: (sensitive) }", false],
      ["removed", "notifier ops", 'no longer declared (was slack webhookUrl env("SLACK_WEBHOOK_URL"))', false],
      ["added", "notifications of shop", "notify pager", false],
      ["removed", "notifications of shop", "notify ops", false],
    ]);
    assert.equal(changes[0].consequence, "events of shop are sent through it");
    assert.equal(changes[3].consequence, "events of shop are no longer sent to ops");
    const text = renderDiffText(changes);
    assert.ok(!text.includes("T0KEN") && !text.includes("plain-key"), text);
  });

  it("a notifier's settings changed; plain ping URLs stay hidden", () => {
    const start = baseline();
    start.notifiers.hc = healthchecks({ pingUrl: "https://hc-ping.com/1111" });
    const change = only(
      diffAfter((raw) => raw.notifiers.hc = healthchecks({ pingUrl: "https://hc-ping.com/2222" }), start),
    );
    assert.deepEqual(brief(change), ["changed", "notifier hc", "pingUrl (sensitive) → (sensitive)", false]);
  });
});

describe("diffConfigs: other project settings", () => {
  it("hooks, verify, maxAge, retry, timeout, prune and check cadence", () => {
    const changes = diffAfter((raw) => {
      Object.assign(raw.projects.shop, {
        hooks: { before: "systemctl stop shop-worker" },
        verify: { every: "7d", into: postgres({ database: "shop_drill" }) },
        maxAge: "2d",
        retry: { attempts: 5 },
        timeout: "2h",
        prune: { every: "7d" },
        check: { every: "30d", readDataSubset: "5%" },
      });
    });
    assert.deepEqual(changes.map(brief), [
      ["added", "hooks of shop", 'not set → { before: "systemctl stop shop-worker" }', false],
      [
        "added",
        "verify of shop",
        'not set → { every: "7d", into: { type: "postgres", database: "shop_drill" } }',
        false,
      ],
      ["added", "maxAge of shop", 'not set → "2d"', false],
      ["added", "retry of shop", "not set → { attempts: 5 }", false],
      ["added", "timeout of shop", 'not set → "2h"', false],
      ["added", "prune of shop", 'not set → { every: "7d" }', false],
      ["added", "check of shop", 'not set → { every: "30d", readDataSubset: "5%" }', false],
    ]);
    assert.equal(
      changes[2].consequence,
      "shop is reported overdue after 2d without a successful backup, instead of the default (twice the schedule's " +
        "interval)",
    );
    assert.equal(changes[1].consequence, "restore drills of shop run every 7d");

    const start = structuredClone(baseline());
    Object.assign(start.projects.shop, { timeout: "2h", prune: { every: "7d" } });
    const changed = diffAfter(
      (raw) => Object.assign(raw.projects.shop, { timeout: "4h", prune: { every: "14d" } }),
      start,
    );
    assert.deepEqual(changed.map(brief), [
      ["changed", "timeout of shop", '"2h" → "4h"', false],
      ["changed", "prune of shop", 'every "7d" → "14d"', false],
    ]);
    assert.equal(changed[0].consequence, "a backup stage of shop is stopped after 4h instead of 2h");
    assert.equal(changed[1].consequence, "the repositories of shop are pruned every 14d instead of 7d");
  });

  it("config-wide host and defaults", () => {
    const changes = diffAfter((raw) => {
      raw.host = "backup-1";
      raw.defaults = { timeout: "3h" };
    });
    assert.deepEqual(changes.map(brief), [
      ["added", "host", 'not set → "backup-1"', false],
      ["added", "defaults", 'not set → { timeout: "3h" }', false],
    ]);
    assert.equal(changes[0].project, undefined);
  });
});

describe("renderings", () => {
  const changes = () =>
    diffAfter((raw) => {
      raw.projects.shop.retention.daily = 7;
      raw.projects.shop.sources.push(sqlite({ path: "/srv/shop/sessions.db" }));
      delete raw.repositories.offsite;
      raw.projects.shop.repositories = ["local"];
    });

  it("text: one line per change, consequences indented, the summary line last", () => {
    assert.equal(
      renderDiffText(changes()),
      [
        '- repository offsite: no longer declared (was restic "sftp:backup@storage.example:/restic", password ' +
        'env("RESTIC_PASSWORD"))',
        "    destructive: backupctl no longer manages it or its snapshots; they are kept, never deleted automatically",
        '+ source shop/sessions: sqlite path "/srv/shop/sessions.db"',
        "    the next apply backs it up (never backed up yet)",
        "- repositories of shop: copies to offsite removed",
        "    destructive: shop is no longer backed up or copied to offsite; its snapshots there are no longer " +
        "managed: they are kept, never deleted automatically",
        "~ retention of shop: daily 30 → 7",
        "    destructive: older daily snapshots will be forgotten (needs approval on apply)",
        "",
        "Diff: 1 added, 2 removed, 1 changed (3 destructive).",
        "",
      ].join("\n"),
    );
    assert.deepEqual(summarizeDiff(changes()), { added: 1, removed: 2, changed: 1, destructive: 3 });
  });

  it("markdown: title, summary, a warning block for destructive changes, tables per group", () => {
    const markdown = renderDiffMarkdown(changes(), { against: "origin/main" });
    const lines = markdown.split("\n");
    assert.equal(lines[0], "### backupctl config diff against `origin/main`");
    assert.equal(lines[2], "Diff: 1 added, 2 removed, 1 changed (3 destructive).");
    assert.equal(lines[4], "> [!WARNING]");
    assert.equal(lines[5], "> 3 destructive changes: review before merging.");
    assert.ok(
      lines.includes(
        "> - **retention of shop**: `daily 30 → 7` — older daily snapshots will be forgotten (needs approval on apply)",
      ),
      markdown,
    );
    assert.ok(lines.includes("#### Configuration"));
    assert.ok(lines.includes("#### Project `shop`"));
    assert.ok(
      lines.includes(
        "| `~` | **retention of shop**: `daily 30 → 7` | ⚠️ **destructive:** older daily snapshots will be " +
          "forgotten (needs approval on apply) |",
      ),
      markdown,
    );
  });

  it("markdown: no warning block without destructive changes; cron asterisks and pipes are escaped", () => {
    const changes = diffAfter((raw) => {
      raw.projects.shop.schedule = "30 1 * * *";
      raw.projects.shop.hooks = { before: "pg_isready | grep ok" };
    });
    const markdown = renderDiffMarkdown(changes, { against: "HEAD" });
    assert.doesNotMatch(markdown, /\[!WARNING\]/);
    assert.match(markdown, /backups run at 30 1 \\\* \\\* \\\* instead of 0 3 \\\* \\\* \\\*/);
    assert.match(markdown, /`not set → \{ before: "pg_isready \\\| grep ok" \}`/);
  });

  it("markdown: long output is cut under the limit with a note", () => {
    const start = baseline();
    const after = structuredClone(start);
    for (let i = 0; i < 400; i++) {
      after.projects[`p${i}`] = {
        schedule: "0 3 * * *",
        sources: [sqlite({ path: `/srv/app-with-a-rather-long-name-${i}/database.db` })],
        repositories: ["local"],
        retention: { daily: 7 },
      };
    }
    const many = diffConfigs(load(start), load(after));
    assert.equal(many.length, 400);
    const full = renderDiffMarkdown(many, { against: "HEAD", limit: 1_000_000 });
    assert.ok(full.length > 60_000, `full length ${full.length}`);
    const cut = renderDiffMarkdown(many, { against: "HEAD" });
    assert.ok(cut.length <= 60_000, `cut length ${cut.length}`);
    assert.match(
      cut,
      /_… output truncated at 60,000 characters; the diff has 400 changes: run `backupctl diff --against HEAD` locally for the full list\._\n$/,
    );
    assert.equal(diffSummaryLine(many), "Diff: 400 added, 0 removed, 0 changed (0 destructive).");
  });
});

describe("diffConfigs: all databases of a server", () => {
  it("a server added, changed and removed is a source like the others, its databases being unknown here", () => {
    const server = postgres({ name: "pg", host: "db", databases: "all", exclude: ["scratch_*"] });
    const added = only(diffAfter((raw) => raw.projects.shop.sources.push(server)));
    assert.deepEqual(brief(added).slice(0, 2), ["added", "source shop/pg"]);
    assert.match(added.detail, /databases "all"/);
    assert.equal(added.consequence, "the next apply lists the server's databases and backs up each as its own source");
    const start = baseline();
    start.projects.shop.sources.push(server);
    const changed = only(diffAfter((raw) => {
      raw.projects.shop.sources[2] = { ...server, exclude: ["scratch_*", "tmp_*"] };
    }, start));
    assert.deepEqual(brief(changed).slice(0, 2), ["changed", "source shop/pg"]);
    const removed = only(diffAfter((raw) => raw.projects.shop.sources.pop(), start));
    assert.deepEqual(brief(removed).slice(0, 2), ["removed", "source shop/pg"]);
  });
});
