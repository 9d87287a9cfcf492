/**
 * The dashboard's `/projects/NAME` and `/runs/ID` pages (issue 21, point 2) over a real state on SQLite and on
 * PostgreSQL, filled through the store's own writes as applies fill it: the timeline lists runs newest first with
 * their status words; a chart has one bar per finished run of its period with the failed one marked; the "why kept"
 * column names the retention rule keeping each snapshot, or says the next apply forgets it; a deletion held for
 * approval is marked; a running backup's byte count is there for the page script; markup in names and errors is shown
 * as text; a run page lists its stages; unknown projects and runs are 404. The pages are served by the dashboard's
 * own handler on a loopback port.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { after, before, describe, it } from "node:test";
import { startProgress } from "../../src/apply/progress.ts";
import { loadConfig } from "../../src/config/load.ts";
import { policyKey } from "../../src/plan/retention.ts";
import type { SnapshotRow } from "../../src/state/schema.ts";
import type { StateStore } from "../../src/state/store.ts";
import { handleDashboard } from "../../src/web/server.ts";
import { stateBackends, stopStateBackends } from "../support/state-backends.ts";
import { storeDb } from "../support/state-db.ts";

const now = new Date("2026-12-06T12:00:00.000Z");
const host = "pages-test-host";
const daysAgo = (days: number, time = "03:00:00") =>
  new Date(Date.parse(`${new Date(now.getTime() - days * 86_400_000).toISOString().slice(0, 10)}T${time}.000Z`))
    .toISOString();

/** A 64-hex snapshot id whose short id starts with `prefix`. */
const snapshotId = (prefix: string) => prefix.padEnd(64, "0");

function snapshot(project: string, prefix: string, time: string, size: number): SnapshotRow {
  const id = snapshotId(prefix);
  return {
    id,
    short_id: id.slice(0, 8),
    time,
    project,
    source: "files",
    run_id: null,
    hostname: host,
    tags: JSON.stringify([`project:${project}`, "source:files"]),
    paths: JSON.stringify(["/data"]),
    size,
    recorded_at: now.toISOString(),
    original: null,
  };
}

/** A backup run of `project` with one backup stage, finished with `status`. */
async function backupRun(
  store: StateStore,
  run: {
    id: string;
    project: string;
    startedAt: string;
    status: "succeeded" | "failed";
    bytes: number;
    added?: number;
  },
  error?: string,
): Promise<void> {
  await store.startRun({
    id: run.id,
    project: run.project,
    command: "apply",
    startedAt: run.startedAt,
    fingerprint: "sha256:pages",
    host,
  });
  const stage = await store.startStage({
    runId: run.id,
    type: "backup",
    project: run.project,
    source: "files",
    repository: "local",
    startedAt: run.startedAt,
  });
  const finishedAt = new Date(Date.parse(run.startedAt) + run.bytes).toISOString();
  await store.finishStage(stage, {
    status: run.status,
    finishedAt,
    durationMs: run.bytes,
    bytes: run.bytes,
    ...(run.added !== undefined ? { bytesAdded: run.added } : {}),
    ...(run.status === "succeeded" ? { snapshotId: snapshotId(`5${run.id.length}`).slice(0, 8) } : { error }),
  });
  await store.finishRun(run.id, {
    status: run.status,
    finishedAt,
    durationMs: run.bytes,
    ...(error ? { error } : {}),
  });
}

for (const backend of stateBackends) {
  describe(`the project and run pages on ${backend.name}`, () => {
    let dir: string;
    let store: StateStore;
    let server: Server;
    let stopProgress: () => void;
    const get = async (path: string) => {
      const response = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}${path}`);
      return { status: response.status, body: await response.text() };
    };
    /** The part of a page from the heading with id `id` to the next h2. */
    const section = (body: string, id: string) => {
      const start = body.indexOf(`<h2 id="${id}">`);
      assert.ok(start >= 0, `no section ${id}`);
      const end = body.indexOf("<h2", start + 1);
      return body.slice(start, end < 0 ? undefined : end);
    };

    before(async () => {
      dir = mkdtempSync(join(tmpdir(), "backupctl-pages-"));
      process.env.BACKUPCTL_PAGES_TEST_PASSWORD = "not-a-real-secret-4712";
      mkdirSync(join(dir, "data"));
      const config = join(dir, "backup.config.ts");
      writeFileSync(
        config,
        `import { defineConfig, env, files, restic } from "backupctl";
export default defineConfig({
  timezone: "UTC",
  host: "${host}",
  repositories: { local: restic({ url: "repo", password: env("BACKUPCTL_PAGES_TEST_PASSWORD") }) },
  projects: {
    shop: { schedule: "0 3 * * *", sources: [files({ name: "files", paths: ["data"] })], repositories: ["local"],
      retention: { last: 1, daily: 2 } },
    blog: { schedule: "0 3 * * *", sources: [files({ name: "files", paths: ["data"] })], repositories: ["local"],
      retention: { last: 1 } },
  },
});
`,
      );
      const loaded = await loadConfig(config);
      store = await backend.open(join(dir, ".backupctl"));
      await store.markRepositoryInitialized("local", "repo", daysAgo(90));
      await backupRun(store, {
        id: "r-old",
        project: "shop",
        startedAt: daysAgo(60),
        status: "succeeded",
        bytes: 1000,
      });
      await backupRun(
        store,
        { id: "r-failed", project: "shop", startedAt: daysAgo(10), status: "failed", bytes: 1500 },
        "dump of files failed\nrestic: <script>x</script> is not a valid path",
      );
      await backupRun(store, {
        id: "r-ok-1",
        project: "shop",
        startedAt: daysAgo(5),
        status: "succeeded",
        bytes: 2000,
        added: 200,
      });
      await backupRun(store, {
        id: "r-ok-2",
        project: "shop",
        startedAt: daysAgo(1),
        status: "succeeded",
        bytes: 3000,
        added: 300,
      });
      // A run of shop left running by a process that is gone (this pid, but another process start): interrupted.
      await store.startRun({
        id: "r-dead",
        project: "shop",
        command: "apply",
        startedAt: daysAgo(3, "06:00:00"),
        fingerprint: "sha256:pages",
        host,
      });
      await storeDb(store).updateTable("runs").set({ process_start: "0" }).where("id", "=", "r-dead").execute();
      // A restore drill of shop (an operation audited without a run).
      const drill = await store.startStage({
        runId: null,
        type: "verify",
        project: "shop",
        repository: "local",
        startedAt: daysAgo(2),
      });
      await store.finishStage(drill, { status: "succeeded", finishedAt: daysAgo(2, "03:01:00"), durationMs: 60_000 });
      // A backup of shop under way in this process: its byte count is live.
      await store.startRun({
        id: "r-live",
        project: "shop",
        command: "watch",
        startedAt: new Date(now.getTime() - 60_000).toISOString(),
        fingerprint: "sha256:pages",
        host,
      });
      const progress = startProgress("backup files", () => 4096, () => {}, { runId: "r-live", project: "shop" });
      stopProgress = () => progress.stop();
      // shop's retention (last 1, daily 2) was applied before: its forgets are routine. blog's never was: held.
      await store.recordRetention(
        { project: "shop", source: "files", repository: "local" },
        policyKey(loaded.config.projects.shop.retention),
        daysAgo(2),
      );
      await store.addSnapshots("local", [
        snapshot("shop", "a1", daysAgo(3), 100),
        snapshot("shop", "a2", daysAgo(2), 110),
        snapshot("shop", "a3", daysAgo(1, "01:00:00"), 120),
        snapshot("shop", "a4", daysAgo(1), 130),
        snapshot("blog", "b1", daysAgo(2), 10),
        snapshot("blog", "b2", daysAgo(1), 20),
      ]);
      server = createServer((request, response) => {
        void handleDashboard(
          { loaded: () => loaded, store, host, now: () => now },
          undefined,
          request,
          response,
        );
      });
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    });
    after(async () => {
      stopProgress?.();
      // The client's keep-alive connections would hold close() until they time out.
      server?.closeAllConnections?.();
      await new Promise<void>((resolve) => server ? server.close(() => resolve()) : resolve());
      await store?.close();
      rmSync(dir, { recursive: true, force: true });
      if (backend.name === "postgres") await stopStateBackends();
    });

    it("lists the project's runs newest first with their status words, links and errors' last lines", async () => {
      const { status, body } = await get("/projects/shop");
      assert.equal(status, 200, body);
      assert.match(body, /Health: <span class="badge ok">ok<\/span>/);
      assert.match(body, /Next due: <span class="badge info">due now<\/span>/);
      assert.match(body, /Last drill: <span class="badge ok">succeeded<\/span>/);
      const timeline = section(body, "timeline");
      const order = ["r-live", "r-ok-2", "r-dead", "r-ok-1", "r-failed", "r-old"].map((id) =>
        timeline.indexOf(`/runs/${id}"`)
      );
      assert.ok(order.every((at) => at >= 0), timeline);
      assert.deepEqual([...order].sort((a, b) => a - b), order, "newest first");
      const words = [...timeline.matchAll(/<span class="badge [a-z]+">([a-z]+)<\/span>/g)].map((m) => m[1]);
      assert.deepEqual(words, ["running", "succeeded", "interrupted", "succeeded", "failed", "succeeded"]);
      assert.match(timeline, /interrupted<\/span> <span class="muted">\(its process is gone/);
      assert.match(timeline, /restic: &lt;script&gt;x&lt;\/script&gt; is not a valid path/);
      assert.match(timeline, /read 2\.9 KiB · added 300 B/);
      assert.match(timeline, /<span data-live-run="r-live">4\.0 KiB, /);
    });

    it("charts one bar per finished run of the period, the failed one marked; ?days=90 reaches further", async () => {
      const month = section((await get("/projects/shop")).body, "charts");
      const svgs = month.match(/<svg class="chart"[\s\S]*?<\/svg>/g) ?? [];
      assert.equal(svgs.length, 3, month);
      for (const svg of svgs) {
        assert.equal(svg.match(/<rect class="bar/g)?.length, 3, svg);
        assert.equal(svg.match(/<rect class="bar failed"/g)?.length, 1, svg);
        assert.match(svg, /role="img" aria-label="[^"]*3 runs from [^"]*1 failed"/);
        assert.doesNotMatch(svg, /style=/);
      }
      assert.match(svgs[0], /<title>[^<]*\(failed\)<\/title>/);
      assert.match(month, /<a href="\/projects\/shop\?days=30#charts" aria-current="page">30 days<\/a>/);
      const quarter = section((await get("/projects/shop?days=90")).body, "charts");
      assert.equal(quarter.match(/<svg class="chart"[\s\S]*?<\/svg>/g)?.[0].match(/<rect class="bar/g)?.length, 4);
      assert.match(quarter, /<a href="\/projects\/shop\?days=90#charts" aria-current="page">90 days<\/a>/);
      assert.match(quarter, /<summary>Duration per run as a table<\/summary>/);
    });

    it("says why each snapshot is kept, and which the next apply forgets", async () => {
      const snapshots = section((await get("/projects/shop")).body, "snapshots");
      const why = (prefix: string) => {
        const row = new RegExp(
          `<tr[^>]*>\\s*<td>(?:(?!</tr>)[\\s\\S])*?${snapshotId(prefix).slice(0, 8)}[\\s\\S]*?</tr>`,
        )
          .exec(snapshots)?.[0];
        assert.ok(row, `no row of ${prefix}`);
        return /<td>([^<]*)<\/td>\s*<\/tr>/.exec(row)?.[1];
      };
      assert.equal(why("a4"), "last snapshot, daily snapshot");
      assert.equal(why("a2"), "daily snapshot");
      assert.equal(why("a3"), "forgotten at the next apply");
      assert.equal(why("a1"), "forgotten at the next apply");
      assert.doesNotMatch(snapshots, /class="held"/);
    });

    it("marks a deletion held for approval in the snapshots and in the plan", async () => {
      const { status, body } = await get("/projects/blog");
      assert.equal(status, 200, body);
      assert.match(body, /Health: <span class="badge warn">never<\/span>/);
      assert.doesNotMatch(body, /Last drill/);
      const snapshots = section(body, "snapshots");
      assert.match(snapshots, /<tr class="held">[\s\S]*?b1000000[\s\S]*?<span class="badge warn">held<\/span>/);
      assert.doesNotMatch(snapshots, /<tr class="held">[\s\S]*?b2000000/);
      const plan = section(body, "plan");
      assert.match(
        plan,
        /<tr class="held">\s*<td><span class="badge warn">held<\/span><\/td>\s*<td>forget 1 snapshot of files in local \(needs approval\)/,
      );
      assert.match(plan, /Held for approval:<\/strong> retention was never applied/);
    });

    it("shows a run with its stages", async () => {
      const { status, body } = await get("/runs/r-failed");
      assert.equal(status, 200, body);
      assert.match(body, /<a href="\/projects\/shop">shop<\/a>/);
      assert.match(body, /<dd><code>sha256:pages<\/code><\/dd>/);
      assert.match(body, new RegExp(`<dd>${host} \\(pid \\d+\\)</dd>`));
      const stages = body.slice(body.indexOf('<table id="stages">'));
      assert.match(stages, /<td>backup<\/td>\s*<td>files<\/td>\s*<td>local<\/td>\s*<td class="num">1<\/td>/);
      assert.match(stages, /<span class="badge bad">failed<\/span>/);
      assert.match(stages, /<td class="num">1\.5 KiB<\/td>/);
      assert.match(stages, /restic: &lt;script&gt;x&lt;\/script&gt;/);
      assert.doesNotMatch(body, /<script>x/);
      const ok = await get("/runs/r-ok-2");
      assert.match(
        ok.body,
        /<td class="num">2\.9 KiB<\/td>\s*<td class="num">300 B<\/td>\s*<td><code>[0-9a-f]{8}<\/code>/,
      );
      const live = await get("/runs/r-live");
      assert.match(
        live.body,
        /<dd><span class="badge info">running<\/span>\s*<span data-live-run="r-live">4\.0 KiB, /,
      );
      const dead = await get("/runs/r-dead");
      assert.match(
        dead.body,
        /<dd><span class="badge warn">interrupted<\/span> <span class="muted">\(its process is gone/,
      );
      assert.match(dead.body, /No stage was recorded for this run/);
    });

    it("answers 404 for an unknown project or run, names shown as text", async () => {
      const project = await get(`/projects/${encodeURIComponent("<script>x</script>")}`);
      assert.equal(project.status, 404);
      assert.match(project.body, /No project &lt;script&gt;x&lt;\/script&gt; is declared/);
      assert.doesNotMatch(project.body, /<script>x/);
      const run = await get(`/runs/${encodeURIComponent('no-such-run"><script>x</script>')}`);
      assert.equal(run.status, 404);
      assert.doesNotMatch(run.body, /<script>x/);
    });
  });
}
