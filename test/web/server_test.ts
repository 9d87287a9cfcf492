/**
 * The dashboard over HTTP, served by the real `backupctl serve` from a state made by real applies
 * (test/support/dashboard-state.ts): every page answers with the security headers, its content agrees with
 * `status --json` and `plan`, markup from the config or from a failing program shows as text, nothing is written while
 * serving, and the token is required when set — and required before listening beyond loopback.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  type DashboardState,
  hostileError,
  makeDashboardState,
  type Served,
  serveDashboard,
  viewNow,
} from "../support/dashboard-state.ts";

const token = "dashboard-token-0123456789abcdef";

/** Every file of the state folder (the restic repository's excepted) with its content's hash. */
function stateFiles(dir: string): Record<string, string> {
  const files: Record<string, string> = {};
  const walk = (folder: string) => {
    for (const name of readdirSync(folder)) {
      const path = join(folder, name);
      if (name === "restic") continue;
      if (statSync(path).isDirectory()) walk(path);
      else files[path.slice(dir.length)] = createHash("sha256").update(readFileSync(path)).digest("hex");
    }
  };
  walk(join(dir, ".backupctl"));
  return files;
}

/** The row of a project in the home page's table. */
function rowOf(page: string, project: string): string {
  const row = page.split("<tr").find((tr) => tr.includes(`href="/projects/${project}"`));
  assert.ok(row, `a row for ${project}`);
  return row;
}

describe("the dashboard over HTTP (backupctl serve)", () => {
  let state: DashboardState;
  let served: Served;
  before(async () => {
    state = await makeDashboardState();
    served = await serveDashboard(state);
  });
  after(async () => {
    await served?.stop();
    state?.cleanup();
  });

  it("answers every page with the security headers, GET and HEAD only", async () => {
    for (const path of ["/", "/projects/shop", "/projects/broken", "/plan"]) {
      const response = await fetch(served.url + path);
      assert.equal(response.status, 200, path);
      assert.equal(response.headers.get("content-type"), "text/html; charset=utf-8");
      const csp = response.headers.get("content-security-policy") ?? "";
      assert.match(csp, /default-src 'none'/);
      assert.match(csp, /script-src 'self'(;|$)/, "no inline script, no other origin");
      assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
      assert.equal(response.headers.get("x-content-type-options"), "nosniff");
      assert.equal(response.headers.get("x-frame-options"), "DENY");
      const body = await response.text();
      assert.match(body, /^<!doctype html>/);
      assert.doesNotMatch(body, /<script>|<script [^>]*>[^<]|style="/, "no inline script or style");
    }
    const head = await fetch(served.url + "/", { method: "HEAD" });
    assert.equal(head.status, 200);
    assert.equal(await head.text(), "");
    for (const method of ["POST", "PUT", "DELETE"]) {
      const refused = await fetch(served.url + "/", { method });
      assert.equal(refused.status, 405, method);
      assert.equal(refused.headers.get("allow"), "GET, HEAD");
    }
    const missing = await fetch(served.url + "/projects/nope");
    assert.equal(missing.status, 404);
    assert.match(await missing.text(), /No project nope/);
    assert.equal((await fetch(served.url + "/nowhere")).status, 404);
  });

  it("serves its stylesheet and script itself, cached by content hash", async () => {
    const page = await (await fetch(served.url + "/")).text();
    const assets = [...page.matchAll(/(?:href|src)="(\/assets\/[^"]+)"/g)].map((m) => m[1]);
    assert.equal(assets.length, 3, assets.join(", "));
    for (const path of assets) {
      const response = await fetch(served.url + path);
      assert.equal(response.status, 200, path);
      assert.match(response.headers.get("cache-control") ?? "", /immutable/);
      assert.ok((await response.text()).length > 100, path);
    }
    assert.equal((await fetch(served.url + "/assets/other.js")).status, 404);
  });

  it("shows on / what status --json says, failing and overdue first", async () => {
    const status = await state.cli(["status", "--json", "--now", viewNow]);
    const projects = (JSON.parse(status.stdout) as {
      projects: { project: string; health: string; last_run: { status: string } | null }[];
    }).projects;
    assert.deepEqual(projects.map((p) => `${p.project} ${p.health}`).sort(), [
      "broken failing",
      "late overdue",
      "shop ok",
    ]);
    const page = await (await fetch(served.url + "/")).text();
    for (const project of projects) {
      const row = rowOf(page, project.project);
      assert.match(row, new RegExp(`<span class="badge [a-z]+">${project.health}</span>`), project.project);
      if (project.last_run) assert.match(row, new RegExp(`>${project.last_run.status}</span></a>`));
    }
    const order = ["broken", "late", "shop"].map((p) => page.indexOf(`href="/projects/${p}"`));
    assert.ok(order[0] < order[2] && order[1] < order[2], "failing and overdue before ok");
    // The drill of shop, with the time it took.
    assert.match(rowOf(page, "shop"), /succeeded<\/span>.*RTO /s);
    // Times in the config's zone.
    assert.match(page, /Times in Europe\/Berlin/);
    assert.match(rowOf(page, "shop"), /2026-11-03 03:00:\d\d\+01:00/);
  });

  it("shows what a failing program printed as text, never as markup", async () => {
    for (const path of ["/", "/projects/broken"]) {
      const page = await (await fetch(served.url + path)).text();
      assert.ok(!page.includes(hostileError), `${path} holds the raw markup`);
      assert.ok(!page.includes("<script>alert"), path);
      if (path === "/") assert.ok(page.includes("&lt;script&gt;alert(&#39;owned&#39;)&lt;/script&gt;"), path);
    }
  });

  it("shows the plan as plan makes it, with the held deletions marked", async () => {
    const page = await (await fetch(served.url + "/plan")).text();
    const planned = await state.cli(["plan", "--now", viewNow]);
    const summary = /Plan: .*\./.exec(planned.stdout)?.[0];
    assert.ok(summary);
    assert.ok(page.includes(summary), summary);
    assert.match(page, /<span class="badge bad">Deletions need approval<\/span>/);
    assert.equal(page.match(/<tr class="held">/g)?.length, 2, "two forgets held for approval");
    assert.match(page, /forget 2 snapshots of uploads in local \(needs approval\)/);
    const markdown = await fetch(served.url + "/plan?format=markdown");
    assert.equal(markdown.headers.get("content-type"), "text/markdown; charset=utf-8");
    const fromCli = await state.cli(["plan", "--format", "markdown", "--now", viewNow]);
    const withoutFooter = (text: string) => text.replace(/<sub>now .*<\/sub>/, "");
    assert.equal(withoutFooter(await markdown.text()), withoutFooter(fromCli.stdout));
  });

  it("shows no secret on any page or asset, in any encoding", async () => {
    const secret = state.env.DASHBOARD_RESTIC_PASSWORD;
    const forms = [
      secret,
      encodeURIComponent(secret),
      Buffer.from(secret).toString("base64"),
      Buffer.from(secret).toString("hex"),
      JSON.stringify(secret).slice(1, -1),
    ];
    const run = (JSON.parse((await state.cli(["status", "--json", "--now", viewNow])).stdout) as {
      projects: { last_run: { id: string } | null }[];
    }).projects.flatMap((p) => p.last_run ? [p.last_run.id] : []);
    const paths = ["/", "/plan", "/plan?format=markdown", "/live.json", "/projects/shop", "/projects/broken"];
    paths.push(...run.map((id) => `/runs/${id}`));
    const home = await (await fetch(served.url + "/")).text();
    paths.push(...[...home.matchAll(/(?:href|src)="(\/assets\/[^"]+)"/g)].map((m) => m[1]));
    for (const path of paths) {
      const body = await (await fetch(served.url + path)).text();
      for (const form of forms) assert.ok(!body.includes(form), `${path} holds the repository password`);
    }
    assert.ok(!served.cli.output().includes(secret));
  });

  it("writes nothing to the state while serving", async () => {
    const before = stateFiles(state.dir);
    for (const path of ["/", "/projects/shop", "/projects/late", "/plan", "/live.json"]) {
      assert.equal((await fetch(served.url + path)).status, 200, path);
    }
    assert.deepEqual(stateFiles(state.dir), before);
  });

  it("asks for the token when one is set: as a bearer token or the password of basic authentication", async () => {
    const guarded = await serveDashboard(state, { BACKUPCTL_DASHBOARD_TOKEN: token });
    try {
      assert.match(guarded.cli.output(), /\(token required\)/);
      const none = await fetch(guarded.url + "/");
      assert.equal(none.status, 401);
      assert.match(none.headers.get("www-authenticate") ?? "", /^Basic realm="backupctl"/);
      assert.equal((await fetch(guarded.url + "/", { headers: { Authorization: "Bearer wrong-token" } })).status, 401);
      assert.equal((await fetch(guarded.url + "/assets/dashboard.css")).status, 401);
      const bearer = await fetch(guarded.url + "/", { headers: { Authorization: `Bearer ${token}` } });
      assert.equal(bearer.status, 200);
      const basic = Buffer.from(`operator:${token}`).toString("base64");
      assert.equal((await fetch(guarded.url + "/plan", { headers: { Authorization: `Basic ${basic}` } })).status, 200);
      // The token is never shown.
      assert.ok(!(await bearer.text()).includes(token));
      assert.ok(!guarded.cli.output().includes(token));
    } finally {
      await guarded.stop();
    }
  });

  it("refuses to listen beyond loopback without a token, and a token too short, saying how to fix it", async () => {
    const open = await state.cli(["serve", "--listen", "0.0.0.0:0"]);
    assert.equal(open.code, 64, open.stdout + open.stderr);
    assert.match(open.stderr, /would be open to the network: give a token in BACKUPCTL_DASHBOARD_TOKEN/);
    const short = await state.cli(["serve", "--listen", "127.0.0.1:0", "--token-file", "/dev/null"]);
    assert.equal(short.code, 64, short.stdout + short.stderr);
    assert.match(short.stderr, /too short \(at least 16 characters\)/);
  });
});
