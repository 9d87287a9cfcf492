/**
 * The proof of src/plan/retention.ts: real restic 0.14 decides, `applyRetention` must agree.
 * One repository holds four uneven histories (one per `source=` tag, each from its own host; made once per machine
 * and hour, see test/support/template-cache.ts, and copied); for every policy and every history,
 * `restic forget --dry-run --json --group-by host` must keep and remove in that history's group exactly what
 * applyRetention keeps and forgets, for the same reasons, in the same order. Skipped when restic 0.14 is not
 * installed. One restic call per policy answers for the four histories at once: each call costs restic's key
 * derivation (about 0.7 s of CPU), the rest is small.
 *
 * Snapshots at the very same second are a tie restic orders arbitrarily (its snapshots load in parallel and Go's
 * sort is unstable), so for those only the count kept per instant is compared, not which id.
 */
import assert from "node:assert/strict";
import { execFile, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import type { Retention } from "../../src/config/types.ts";
import { applyRetention, type RetentionDecision, type RetentionSnapshot } from "../../src/plan/retention.ts";
import { cachedTemplate, copyTemplate } from "../support/template-cache.ts";

const run = promisify(execFile);

const resticVersion = (() => {
  const result = spawnSync("restic", ["version"], { encoding: "utf8" });
  return result.status === 0 ? /restic (\d+\.\d+\.\d+)/.exec(result.stdout)?.[1] : undefined;
})();
const skip = resticVersion === undefined
  ? "restic is not installed"
  : resticVersion.startsWith("0.14.")
  ? false
  : `the oracle is restic 0.14; found ${resticVersion}`;

// --- Histories -------------------------------------------------------------------------------------------------

/** A history: restic `--time` values ("YYYY-MM-DD HH:MM:SS", on the clock of `timezone`). */
interface History {
  source: string;
  timezone: string;
  times: string[];
}

/** Deterministic pseudo-random numbers (mulberry32), so every run builds the same histories. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

function wallClock(date: Date): string {
  return date.toISOString().slice(0, 19).replace("T", " ");
}

/** `count` random whole-second times between `from` and `to` (UTC wall clock). */
function scattered(seed: number, count: number, from: string, to: string): string[] {
  const next = random(seed);
  const start = Date.parse(`${from}Z`);
  const span = Date.parse(`${to}Z`) - start;
  return Array.from({ length: count }, () => wallClock(new Date(start + Math.floor(next() * span / 1000) * 1000)));
}

/** A daily job at `hour`, skipping the days in `missing` (day numbers counted from `from`). */
function dailyRuns(from: string, days: number, hour: string, missing: number[]): string[] {
  const start = Date.parse(`${from}T${hour}Z`);
  return Array.from({ length: days }, (_, day) => day)
    .filter((day) => !missing.includes(day))
    .map((day) => wallClock(new Date(start + day * 86_400_000)));
}

/** The oracle's clock-relative snapshots: restic anchors `within*` at the newest snapshot that is not in the future. */
function future(hoursAhead: number): string {
  return wallClock(new Date(Math.floor(Date.now() / 3_600_000 + hoursAhead) * 3_600_000));
}

const histories: History[] = [
  {
    // Two years of irregular backups ending with a busy hour-by-hour stretch; a three-way and a two-way tie.
    source: "s1",
    timezone: "UTC",
    times: [
      ...scattered(1, 20, "2024-09-01T00:00:00", "2026-10-01T00:00:00"),
      "2024-12-29 23:59:59", // Sunday of ISO 2024-W52
      "2024-12-30 00:00:00", // Monday: ISO 2025-W01, still calendar 2024
      "2024-12-31 23:00:00",
      "2025-01-01 00:00:01",
      "2025-06-15 12:00:00",
      "2025-06-15 12:00:00",
      "2025-06-15 12:00:00",
      "2025-06-15 12:30:00",
      "2025-06-15 12:30:00",
      ...dailyRuns("2026-10-20", 25, "03:00:00", [3, 4, 11, 17]),
      "2026-10-31 23:59:59",
      "2026-11-14 08:05:00",
      "2026-11-14 08:40:00",
      "2026-11-14 09:10:00",
      "2026-11-14 09:55:00",
      "2026-11-14 10:00:00",
      "2026-11-14 13:20:00",
      "2026-11-14 23:59:59",
      "2026-11-15 00:00:00",
      "2026-11-15 00:30:00",
      "2026-11-15 06:00:00",
    ],
  },
  {
    // 2019–2021 around 2020's ISO week 53, a leap day, and a newest snapshot on Mar 31 (Mar 31 − 1m = Mar 3).
    source: "s2",
    timezone: "UTC",
    times: [
      ...scattered(2, 26, "2019-11-01T00:00:00", "2021-03-01T00:00:00"),
      "2020-02-28 12:00:00",
      "2020-02-29 12:00:00",
      "2020-03-01 00:00:00",
      "2020-12-27 22:00:00", // Sunday, ISO 2020-W52
      "2020-12-28 01:00:00", // Monday, ISO 2020-W53
      "2020-12-31 12:00:00",
      "2021-01-01 00:00:00", // ISO 2020-W53, calendar 2021
      "2021-01-03 23:59:59", // last second of ISO 2020-W53
      "2021-01-04 00:00:00", // ISO 2021-W01
      "2021-02-28 06:15:00",
      "2021-03-02 23:00:00",
      "2021-03-03 06:15:00", // exactly newest − 1m: not "after", so not within 1m
      "2021-03-03 06:15:01",
      "2021-03-15 10:00:00",
      "2021-03-29 06:15:00",
      "2021-03-30 06:14:59",
      "2021-03-30 06:15:00",
      "2021-03-30 07:00:00",
      "2021-03-31 01:00:00",
      "2021-03-31 05:59:59",
      "2021-03-31 06:15:00",
    ],
  },
  {
    // Snapshots in the future of the host's clock (restic anchors within* at the newest one in the past), and
    // ISO 2026-W53 (2026-12-28 … 2027-01-03).
    source: "s3",
    timezone: "UTC",
    times: [
      ...scattered(3, 22, "2025-01-01T00:00:00", "2026-11-01T00:00:00"),
      ...dailyRuns("2026-11-05", 12, "22:30:00", [2, 7]),
      "2026-11-17 23:00:00",
      "2026-11-18 00:15:00",
      "2026-11-19 00:15:00",
      "2026-12-28 00:00:00",
      "2026-12-31 23:30:00",
      "2027-01-01 00:30:00",
      "2027-01-04 00:00:00",
      future(26),
      future(24 * 40),
    ],
  },
  {
    // Times written with +01:00/+02:00 (restic run with TZ=Europe/Berlin): restic buckets on that wall clock, so
    // 2024-01-01 00:30+01:00 is in year 2024 although it is 2023 in UTC. Across both DST changes of 2023; the newest
    // is on a leap day (Feb 29 − 1y = "Feb 29 2023" = Mar 1).
    source: "s4",
    timezone: "Europe/Berlin",
    times: [
      "2023-02-28 23:30:00",
      "2023-03-01 23:30:00",
      "2023-03-01 23:30:01",
      "2023-03-26 01:59:59",
      "2023-03-26 03:00:00",
      "2023-03-26 03:30:00",
      "2023-07-14 12:00:00",
      "2023-10-29 01:30:00",
      "2023-10-29 02:30:00",
      "2023-10-29 03:30:00",
      "2023-12-31 23:30:00",
      "2024-01-01 00:30:00",
      "2024-01-01 01:30:00",
      "2024-01-29 23:30:00",
      "2024-01-29 23:30:01",
      "2024-02-26 00:10:00",
      "2024-02-29 22:59:00",
      "2024-02-29 23:30:00",
    ],
  },
];

// --- Policies --------------------------------------------------------------------------------------------------

/** Every keep rule of restic 0.14 exists as a flag (checked with `restic forget --help`), so no policy is skipped. */
const flags: Record<Exclude<keyof Retention, "minSnapshots">, string> = {
  last: "--keep-last",
  hourly: "--keep-hourly",
  daily: "--keep-daily",
  weekly: "--keep-weekly",
  monthly: "--keep-monthly",
  yearly: "--keep-yearly",
  within: "--keep-within",
  withinHourly: "--keep-within-hourly",
  withinDaily: "--keep-within-daily",
  withinWeekly: "--keep-within-weekly",
  withinMonthly: "--keep-within-monthly",
  withinYearly: "--keep-within-yearly",
};

const policies: Retention[] = [
  { last: 7 },
  { hourly: 12 },
  { daily: 10 },
  { weekly: 6 },
  { weekly: 60 },
  { monthly: 8 },
  { yearly: 5 },
  { within: "1m" },
  { within: "1y" },
  { within: "1y2m3d4h" },
  { within: "0y36h", hourly: 5, weekly: 2 },
  { withinHourly: "2d" },
  { withinDaily: "1m15d" },
  { withinWeekly: "3m" },
  { withinMonthly: "1y" },
  { withinYearly: "3y" },
  { last: 3, daily: 7, weekly: 4, monthly: 12, yearly: 2, minSnapshots: 5 },
  { last: 2, daily: 0, weekly: 0 },
  { hourly: 0, yearly: 0 },
  { last: 1000, hourly: 1000, yearly: 100 },
  { last: 1, within: "14d", withinDaily: "1m", withinWeekly: "6m", withinMonthly: "2y", withinYearly: "10y" },
];

function keepFlags(policy: Retention): string[] {
  return Object.entries(flags).flatMap(([rule, flag]) => {
    const value = policy[rule as keyof typeof flags];
    return value === undefined ? [] : [flag, String(value)];
  });
}

// --- restic ----------------------------------------------------------------------------------------------------

const dir = skip ? "" : mkdtempSync(join(tmpdir(), "backupctl-retention-oracle-"));

function resticEnv(timezone: string, repository: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, TZ: timezone };
  for (const name of Object.keys(env)) if (name.startsWith("RESTIC_")) delete env[name];
  return { ...env, RESTIC_REPOSITORY: repository, RESTIC_PASSWORD: "oracle" };
}

async function restic(args: string[], timezone = "UTC", repository = join(dir, "repo")): Promise<string> {
  const { stdout } = await run("restic", ["--no-cache", ...args], {
    env: resticEnv(timezone, repository),
    maxBuffer: 64 * 1024 * 1024,
  });
  return stdout;
}

/** Runs `work` over `items`, `width` at a time (restic spends most of each call in its key derivation). */
async function inPool<T>(items: readonly T[], width: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await work(items[next++]);
  };
  await Promise.all(Array.from({ length: width }, worker));
}

interface ResticSnapshot {
  id: string;
  time: string;
  tags?: string[];
}

interface ForgetGroup {
  /** The group's host (restic 0.14 names the group by its keys at the top level). */
  host: string;
  keep: ResticSnapshot[] | null;
  remove?: ResticSnapshot[] | null;
  reasons: { matches: string[] }[] | null;
}

/** Makes the oracle's repository in `folder`/repo: every history's snapshots of one tiny file. */
async function build(folder: string): Promise<void> {
  const repository = join(folder, "repo");
  writeFileSync(join(folder, "dump.sql"), "-- a tiny dump\n");
  await restic(["init"], "UTC", repository);
  const jobs = histories.flatMap((history) => history.times.map((time, n) => ({ history, time, n })));
  await inPool(jobs, 4, async ({ history, time, n }) => {
    const tags = ["backupctl", "project=p", `source=${history.source}`, `run=${history.source}-${n}`];
    await restic(
      [
        "backup",
        "-q",
        "--host",
        history.source,
        ...tags.flatMap((tag) => ["--tag", tag]),
        "--time",
        time,
        join(folder, "dump.sql"),
      ],
      history.timezone,
      repository,
    );
  });
}

/** The snapshots of each history as restic lists them, by source tag. */
const recorded = new Map<string, RetentionSnapshot[]>();
let creation = 0;

before(async () => {
  if (skip) return;
  const started = performance.now();
  // The ~160 backups cost the same in every run (each restic call derives its key): they are made once per restic
  // version and set of histories (whose future times move with the clock's hour), and each run copies them.
  const template = await cachedTemplate(
    "retention-oracle",
    resticVersion ?? "",
    [JSON.stringify(histories), "a host per history"],
    build,
  );
  await copyTemplate(join(template, "repo"), join(dir, "repo"));
  const listed: ResticSnapshot[] = JSON.parse(await restic(["snapshots", "--json", "--tag", "backupctl"]));
  for (const snapshot of listed) {
    const source = snapshot.tags?.find((tag) => tag.startsWith("source="))?.slice("source=".length) ?? "";
    recorded.set(source, [...(recorded.get(source) ?? []), { id: snapshot.id, time: snapshot.time }]);
  }
  creation = performance.now() - started;
}, { timeout: 300_000 });

after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/**
 * restic's answer for one history (the group of its host) as a decision; an empty policy prints nothing at all
 * (restic refuses to apply it).
 */
function parseForget(stdout: string, source: string, all: readonly RetentionSnapshot[]): RetentionDecision {
  if (stdout.trim() === "") {
    const newestFirst = [...all].sort((a, b) => Date.parse(b.time) - Date.parse(a.time));
    return { keep: newestFirst.map(({ id }) => ({ id, reasons: ["policy is empty"] })), forget: [] };
  }
  const groups: ForgetGroup[] = JSON.parse(stdout);
  assert.deepEqual(
    groups.map((group) => group.host).sort(),
    histories.map((history) => history.source).sort(),
    "one group per history: --group-by host, a host per history",
  );
  const group = groups.find((candidate) => candidate.host === source);
  assert.ok(group, `a group for ${source}`);
  const keep = group.keep ?? [];
  const reasons = group.reasons ?? [];
  assert.equal(reasons.length, keep.length, "restic lists a reason entry per kept snapshot");
  return {
    keep: keep.map((snapshot, n) => ({ id: snapshot.id, reasons: reasons[n].matches })),
    forget: (group.remove ?? []).map((snapshot) => snapshot.id),
  };
}

/** Names a snapshot by id, or by "tie@time" when several share its instant (restic picks among those at random). */
function namer(snapshots: readonly RetentionSnapshot[]): (id: string) => string {
  const timeOf = new Map(snapshots.map(({ id, time }) => [id, time]));
  const perTime = new Map<string, number>();
  for (const { time } of snapshots) perTime.set(time, (perTime.get(time) ?? 0) + 1);
  return (id) => {
    const time = timeOf.get(id) ?? "?";
    return perTime.get(time)! > 1 ? `tie@${time}` : `${id.slice(0, 8)}@${time}`;
  };
}

function comparable(decision: RetentionDecision, name: (id: string) => string) {
  return {
    keep: decision.keep.map(({ id, reasons }) => `${name(id)} ${reasons.join(" + ")}`),
    forget: decision.forget.map(name),
  };
}

// --- The proof -------------------------------------------------------------------------------------------------

describe("applyRetention agrees with restic 0.14 forget", { skip }, () => {
  it("builds four uneven histories (18 to 61 snapshots, over one to two years)", () => {
    console.log(
      `retention oracle: ${histories.length} histories ready in ${
        (creation / 1000).toFixed(1)
      }s (made once per hour and copied)`,
    );
    for (const history of histories) {
      const snapshots = recorded.get(history.source) ?? [];
      assert.equal(snapshots.length, history.times.length, `every snapshot of ${history.source} listed`);
    }
    assert.ok(recorded.get("s4")!.some(({ time }) => time.endsWith("+02:00")), "s4 keeps its summer offset");
  });

  for (const policy of policies) {
    it(`keep ${keepFlags(policy).join(" ") || "(nothing)"}`, async () => {
      const now = new Date();
      const answer = await restic([
        "--no-lock",
        "forget",
        "--dry-run",
        "--json",
        "--group-by",
        "host",
        ...keepFlags(policy),
      ]);
      for (const { source } of histories) {
        const snapshots = recorded.get(source)!;
        const name = namer(snapshots);
        const expected = parseForget(answer, source, snapshots);
        const actual = applyRetention(snapshots, policy, { now });
        assert.deepEqual(comparable(actual, name), comparable(expected, name), `history ${source}`);
        const ids = new Set([...expected.keep.map(({ id }) => id), ...expected.forget]);
        assert.equal(ids.size, snapshots.length, `restic decided on every snapshot of ${source}`);
      }
    });
  }
});
