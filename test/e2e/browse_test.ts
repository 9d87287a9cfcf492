/**
 * `snapshots ls`, `find` and `diff` on real snapshots: two `apply` runs a day apart (`--now`) with a file changed,
 * one removed and one added between them, then the tree of each snapshot (root, a sub-path, latest and by id), the
 * snapshots holding a path, the differences with sizes, their JSON, the errors (unknown project or source, an id of
 * another project, an id not in the inventory, a dump source without --list), that they leave the state as it was,
 * and that a snapshot not known to be complete is neither `latest` nor listed without --allow-incomplete.
 * browse_postgres_test.ts has `ls --list` on a PostgreSQL dump.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type CliResult, runCli, runTool } from "../support/cli.ts";
import { type DemoDir, makeDemo } from "../support/demo.ts";

const firstDay = "2027-01-04T10:00:00Z";
const nextDay = "2027-01-05T10:00:00Z";

const show = (result: CliResult) => `exit ${result.code}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`;

interface Listed {
  snapshot: { id: string; short_id: string; time: string; project: string; source: string; repository: string };
  nodes: { path: string; type: string; size: number; mtime: string }[];
}

interface Inventory {
  id: string;
  short_id: string;
  project: string;
  source: string;
  time: string;
}

describe("snapshots ls, find and diff on real restic snapshots", () => {
  let demo: DemoDir;
  let uploads = "";
  let env: Record<string, string> = {};
  /** The uploads snapshots of the first and second day, and the other project's one. */
  let first: Inventory;
  let second: Inventory;
  let other: Inventory;
  /** A snapshot of demo's SQLite source. */
  let app: Inventory;
  const cli = (...args: string[]) => runCli(["--config", demo.config, ...args], { env });
  const ok = async (...args: string[]) => {
    const result = await cli(...args);
    assert.equal(result.code, 0, show(result));
    return result;
  };

  before(async () => {
    demo = makeDemo();
    env = demo.env;
    uploads = join(demo.dir, "demo", "uploads");
    mkdirSync(join(demo.dir, "demo", "other"));
    writeFileSync(join(demo.dir, "demo", "other", "elsewhere.txt"), "another project\n");
    // The demo's project and a second one sharing its repository, for an id that is not demo's.
    writeFileSync(
      demo.config,
      `import { defineConfig, env, files, restic, sqlite } from "backupctl";
export default defineConfig({
  timezone: "Europe/Berlin",
  repositories: { local: restic({ url: ".backupctl/restic-demo", password: env("DEMO_RESTIC_PASSWORD") }) },
  projects: {
    demo: { schedule: "0 3 * * *", repositories: ["local"], retention: { daily: 7 },
      sources: [sqlite({ path: "demo/app.db" }), files({ name: "uploads", paths: ["demo/uploads"], exclude: ["*.tmp"] })] },
    other: { schedule: "0 3 * * *", repositories: ["local"], retention: { daily: 7 },
      sources: [files({ name: "elsewhere", paths: ["demo/other"] })] },
  },
});
`,
    );
    mkdirSync(join(uploads, "reports"));
    writeFileSync(join(uploads, "reports", "q1.csv"), "quarter,total\n1,100\n");
    writeFileSync(join(uploads, "obsolete.txt"), "old\n");
    await ok("apply", "--now", firstDay);
    writeFileSync(join(uploads, "invoice.txt"), "Invoice 42, corrected\n");
    rmSync(join(uploads, "obsolete.txt"));
    writeFileSync(join(uploads, "reports", "q2.csv"), "quarter,total\n2,250\n");
    await ok("apply", "--now", nextDay);
    const inventory = JSON.parse((await ok("snapshots", "--json")).stdout) as Inventory[];
    const ofUploads = inventory.filter((s) => s.source === "uploads").sort((a, b) => a.time.localeCompare(b.time));
    assert.equal(ofUploads.length, 2, JSON.stringify(inventory));
    [first, second] = ofUploads;
    const pick = (what: string, found: Inventory | undefined) => {
      assert.ok(found, `${what} in ${JSON.stringify(inventory)}`);
      return found;
    };
    other = pick("the other project's snapshot", inventory.find((s) => s.project === "other"));
    app = pick("a snapshot of app", inventory.find((s) => s.source === "app"));
  });

  after(() => demo?.cleanup());

  it("ls lists the latest complete snapshot's tree with sizes, in the config's time zone", async () => {
    const result = await ok("snapshots", "ls", "demo");
    assert.match(result.stdout, new RegExp(`^snapshot ${second.short_id} of demo/uploads in local, 2027-01-05 11:00`));
    const line = (path: string) => result.stdout.split("\n").find((l) => l.endsWith(` ${path}`));
    assert.match(line(join(uploads, "invoice.txt")) ?? "", /^file\s+22 B\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\+01:00\s/);
    assert.match(line(join(uploads, "reports")) ?? "", /^dir\s+-\s/);
    assert.ok(line(join(uploads, "reports", "q2.csv")), result.stdout);
    assert.equal(line(join(uploads, "obsolete.txt")), undefined, "removed before the second snapshot");
    assert.equal(line(join(uploads, "scratch.tmp")), undefined, "excluded");
    assert.match(result.stdout, /\n3 files, \d+ folders, 62 B\n$/);
  });

  it("ls --snapshot ID lists an older snapshot; a path (absolute or from the config's folder) limits it", async () => {
    const old = JSON.parse(
      (await ok("snapshots", "ls", "demo", "--snapshot", first.short_id, "--json")).stdout,
    ) as Listed;
    assert.equal(old.snapshot.id, first.id);
    assert.equal(old.snapshot.source, "uploads");
    const sizes = Object.fromEntries(old.nodes.filter((n) => n.type === "file").map((n) => [n.path, n.size]));
    assert.deepEqual(sizes, {
      [join(uploads, "invoice.txt")]: 11,
      [join(uploads, "obsolete.txt")]: 4,
      [join(uploads, "reports", "q1.csv")]: 20,
    });
    for (const node of old.nodes) assert.match(node.mtime, /^\d{4}-\d\d-\d\dT/);

    const latest = JSON.parse((await ok("snapshots", "ls", "demo", "--snapshot", "latest", "--json")).stdout) as Listed;
    assert.equal(latest.snapshot.id, second.id);

    const sub = JSON.parse((await ok("snapshots", "ls", "demo", join(uploads, "reports"), "--json")).stdout) as Listed;
    assert.deepEqual(sub.nodes.map((n) => n.path), [
      join(uploads, "reports"),
      join(uploads, "reports", "q1.csv"),
      join(uploads, "reports", "q2.csv"),
    ]);
    const relative = JSON.parse(
      (await ok("snapshots", "ls", "demo", "demo/uploads/reports/", "--json")).stdout,
    ) as Listed;
    assert.deepEqual(relative.nodes, sub.nodes);

    const file = await ok("snapshots", "ls", "demo", "--snapshot", first.id, join(uploads, "obsolete.txt"));
    assert.match(file.stdout, /^file\s+4 B\s.*obsolete\.txt$/m);
    assert.match(file.stdout, /\n1 file, 0 folders, 4 B\n$/);
  });

  it("find names the snapshots holding a path, newest first", async () => {
    const both = await ok("snapshots", "find", "demo", "invoice.txt");
    const rows = both.stdout.split("\n").filter((l) => l.includes("invoice.txt") && !l.startsWith("invoice.txt:"));
    assert.equal(rows.length, 2, both.stdout);
    assert.match(rows[0], new RegExp(`^${second.short_id}\\s+2027-01-05 11:00:\\d\\d\\+01:00\\s+uploads\\s+22 B\\s`));
    assert.match(rows[1], new RegExp(`^${first.short_id}\\s+2027-01-04 11:00:\\d\\d\\+01:00\\s+uploads\\s+11 B\\s`));
    assert.match(both.stdout, /invoice\.txt: 2 matches in 2 of the 4 snapshots of demo in local\n$/);

    const once = JSON.parse((await ok("snapshots", "find", "demo", "obsolete.txt", "--json")).stdout) as {
      pattern: string;
      searched: number;
      matches: { snapshot: { id: string; short_id: string; source: string }; path: string; size: number }[];
    };
    assert.equal(once.searched, 4);
    assert.deepEqual(
      once.matches.map((m) => [m.snapshot.id, m.snapshot.source, m.path, m.size]),
      [[first.id, "uploads", join(uploads, "obsolete.txt"), 4]],
    );

    const glob = JSON.parse((await ok("snapshots", "find", "demo", "*.csv", "--source", "uploads", "--json")).stdout);
    assert.deepEqual(
      glob.matches.map((m: { snapshot: { short_id: string }; path: string }) => `${m.snapshot.short_id} ${m.path}`),
      [
        `${second.short_id} ${join(uploads, "reports", "q1.csv")}`,
        `${second.short_id} ${join(uploads, "reports", "q2.csv")}`,
        `${first.short_id} ${join(uploads, "reports", "q1.csv")}`,
      ],
    );
    const none = await ok("snapshots", "find", "demo", "no-such-file.pdf");
    assert.match(none.stdout, /nothing matches no-such-file\.pdf in the 4 snapshots of demo in local/);
    // Another project's file is not found in demo's snapshots.
    const elsewhere = JSON.parse((await ok("snapshots", "find", "demo", "elsewhere.txt", "--json")).stdout);
    assert.deepEqual(elsewhere.matches, []);
  });

  it("diff shows the added, removed and changed files with their sizes, and a summary", async () => {
    const text = await ok("snapshots", "diff", "demo", first.short_id, second.short_id);
    const lines = text.stdout.split("\n");
    assert.match(lines[0], new RegExp(`^demo in local: ${first.short_id} \\(uploads, .*\\) → ${second.short_id}`));
    const row = (path: string) => lines.find((l) => l.includes(` ${path} `) || l.endsWith(` ${path}`)) ?? "";
    assert.match(row(join(uploads, "invoice.txt")), /^M\s.*\s11 B → 22 B$/);
    assert.match(row(join(uploads, "obsolete.txt")), /^-\s.*\s4 B$/);
    assert.match(row(join(uploads, "reports", "q2.csv")), /^\+\s.*\s20 B$/);
    assert.match(text.stdout, /\n1 added \(20 B\), 1 removed \(4 B\), 1 changed \(11 B → 22 B\)\n$/);

    const json = JSON.parse((await ok("snapshots", "diff", "demo", first.id, "latest", "--json")).stdout);
    assert.equal(json.from.id, first.id);
    assert.equal(json.to.id, second.id);
    const byPath = Object.fromEntries(
      json.changes.map((c: { path: string; change: string; type: string; before?: number; after?: number }) => [
        c.path,
        [c.change, c.type, c.before, c.after],
      ]),
    );
    assert.deepEqual(byPath[join(uploads, "invoice.txt")], ["changed", "file", 11, 22]);
    assert.deepEqual(byPath[join(uploads, "obsolete.txt")], ["removed", "file", 4, undefined]);
    assert.deepEqual(byPath[join(uploads, "reports", "q2.csv")], ["added", "file", undefined, 20]);
    assert.deepEqual(json.summary, {
      added: 1,
      removed: 1,
      changed: 1,
      added_bytes: 20,
      removed_bytes: 4,
      changed_bytes_before: 11,
      changed_bytes_after: 22,
    });
    const same = await ok("snapshots", "diff", "demo", second.short_id, second.short_id);
    assert.match(same.stdout, /no differences\n\n0 added/);
  });

  it("bad input is a usage error (64) that says what is wrong", async () => {
    const cases: [string[], RegExp][] = [
      [["snapshots", "ls", "nope"], /unknown project "nope"; declared projects: demo, other/],
      [["snapshots", "ls", "demo", "--source", "nope"], /project demo has no source "nope"; its sources: app, uploads/],
      [["snapshots", "find", "demo", "x", "--source", "nope"], /project demo has no source "nope"/],
      [
        ["snapshots", "ls", "demo", "--snapshot", other.short_id],
        new RegExp(`${other.short_id} in local is not demo's: it is a snapshot of other/elsewhere`),
      ],
      [["snapshots", "diff", "demo", first.short_id, other.short_id], /is not demo's/],
      [["snapshots", "diff", "demo", first.short_id, app.short_id], /diff compares two snapshots of the same source/],
      [["snapshots", "ls", "demo", "--snapshot", "0000abcd"], /no snapshot 0000abcd of demo in local in the inventory/],
      [["snapshots", "ls", "demo", "--snapshot", "xyz"], /expected "latest" or a snapshot id/],
      [
        ["snapshots", "ls", "demo", "--source", "uploads", "--snapshot", "0000abcd"],
        /no snapshot 0000abcd of demo\/uploads in local/,
      ],
      [["snapshots", "ls", "demo", "/no/such/path"], new RegExp(`holds no /no/such/path; it backed up ${uploads}`)],
      [
        ["snapshots", "ls", "demo", "--source", "app"],
        /demo\/app is a sqlite source: its snapshot holds one dump \(\/app\.sql\)/,
      ],
      [["snapshots", "ls", "demo", "--list"], /project demo has no postgres source/],
      [["snapshots", "ls", "demo", "--source", "app", "--list"], /--list needs a PostgreSQL custom-format dump/],
      [["snapshots", "ls", "demo", "--source", "uploads", "--list"], /demo\/uploads is a files source/],
      [["snapshots", "ls", "demo", "--repository", "elsewhere"], /project demo does not use repository "elsewhere"/],
    ];
    for (const [args, message] of cases) {
      const result = await cli(...args);
      assert.equal(result.code, 64, `${args.join(" ")}: ${show(result)}`);
      assert.match(result.stderr, message, args.join(" "));
      assert.ok(!result.stderr.includes(demo.env.DEMO_RESTIC_PASSWORD));
    }
  });

  it("reads only: the state is the same after browsing", async () => {
    const stateDir = join(demo.dir, ".backupctl");
    const digest = () =>
      ["state.db", "state.db-wal"].map((name) => join(stateDir, name)).filter((path) => existsSync(path))
        .map((path) => createHash("sha256").update(readFileSync(path)).digest("hex")).join(",");
    const before = digest();
    await ok("snapshots", "ls", "demo");
    await ok("snapshots", "find", "demo", "*.txt");
    await ok("snapshots", "diff", "demo", first.short_id, second.short_id);
    assert.equal(digest(), before);
    // restic ran with --no-lock: no lock was left, and none was needed.
    const locks = await runTool("restic", ["--no-cache", "list", "locks", "--no-lock"], {
      env: { RESTIC_REPOSITORY: demo.repository, RESTIC_PASSWORD: demo.env.DEMO_RESTIC_PASSWORD },
    });
    assert.equal(locks.code, 0, locks.stderr);
    assert.equal(locks.stdout.trim(), "");
  });

  it("an id prefix that matches several snapshots is ambiguous (64), naming them", async () => {
    // A second inventory row whose id shares the first snapshot's 6 first characters (no restic call gets that far).
    const twin = `${first.id.slice(0, 6)}${first.id.slice(6).replace(/./g, (c) => (c === "0" ? "1" : "0"))}`;
    const state = join(demo.dir, ".backupctl", "state.db");
    const added = await runTool("sqlite3", [state], {
      input: `CREATE TEMP TABLE twin AS SELECT * FROM snapshots WHERE id = '${first.id}';
        UPDATE twin SET id = '${twin}', short_id = '${twin.slice(0, 8)}';
        INSERT INTO snapshots SELECT * FROM twin;`,
    });
    assert.equal(added.code, 0, added.stderr);
    try {
      const prefix = first.id.slice(0, 6);
      for (
        const args of [["ls", "demo", "--snapshot", prefix], [
          "ls",
          "demo",
          "--source",
          "uploads",
          "--snapshot",
          prefix,
        ]]
      ) {
        const result = await cli("snapshots", ...args);
        assert.equal(result.code, 64, show(result));
        assert.match(result.stderr, new RegExp(`snapshot id ${prefix} is ambiguous in demo`));
        assert.ok(result.stderr.includes(first.short_id) && result.stderr.includes(twin.slice(0, 8)), result.stderr);
      }
      const longer = await ok("snapshots", "ls", "demo", "--snapshot", first.id.slice(0, 12), "--json");
      assert.equal((JSON.parse(longer.stdout) as Listed).snapshot.id, first.id);
    } finally {
      const removed = await runTool("sqlite3", [state], { input: `DELETE FROM snapshots WHERE id = '${twin}';` });
      assert.equal(removed.code, 0, removed.stderr);
    }
  });

  // Last: it marks the second day's backup of uploads as failed in the state.
  it("a snapshot not known to be complete is not latest, and is listed only with --allow-incomplete", async () => {
    const state = join(demo.dir, ".backupctl", "state.db");
    const sql = `UPDATE stages SET status = 'failed' WHERE type = 'backup' AND source = 'uploads'
        AND substr('${second.id}', 1, length(snapshot_id)) = snapshot_id;
      UPDATE runs SET status = 'failed' WHERE id IN (SELECT run_id FROM stages WHERE status = 'failed');`;
    const updated = await runTool("sqlite3", [state], { input: sql });
    assert.equal(updated.code, 0, updated.stderr);
    const inventory = JSON.parse((await ok("snapshots", "--json")).stdout) as (Inventory & { state: string })[];
    assert.equal(inventory.find((s) => s.id === second.id)?.state, "incomplete");

    const latest = JSON.parse((await ok("snapshots", "ls", "demo", "--json")).stdout) as Listed;
    assert.equal(latest.snapshot.id, first.id, "latest is the newest complete snapshot");
    const refused = await cli("snapshots", "ls", "demo", "--snapshot", second.short_id);
    assert.equal(refused.code, 1, show(refused));
    assert.match(refused.stderr, new RegExp(`snapshot ${second.short_id} of demo/uploads in local is incomplete`));
    assert.match(refused.stderr, new RegExp(`the newest complete one is ${first.short_id}`));
    assert.match(refused.stderr, /--allow-incomplete/);
    const allowed = await ok("snapshots", "ls", "demo", "--snapshot", second.short_id, "--allow-incomplete", "--json");
    assert.equal((JSON.parse(allowed.stdout) as Listed).snapshot.id, second.id);

    const found = JSON.parse((await ok("snapshots", "find", "demo", "q2.csv", "--json")).stdout);
    assert.equal(found.searched, 3);
    assert.deepEqual(found.matches, []);
    const withIncomplete = JSON.parse(
      (await ok("snapshots", "find", "demo", "q2.csv", "--allow-incomplete", "--json")).stdout,
    );
    assert.equal(withIncomplete.matches.length, 1);
    const diff = await cli("snapshots", "diff", "demo", first.short_id, second.short_id);
    assert.equal(diff.code, 1, show(diff));
    assert.match(diff.stderr, /--allow-incomplete/);
  });
});
