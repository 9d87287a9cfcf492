/**
 * The data-safety invariants under crashes, each kill point made deterministic (a producer that waits for a file, a
 * restic wrapper that freezes backupctl right after `restic backup` exits), with real restic and the real CLI:
 *
 * - a group always keeps its newest complete snapshot: retention never counts an incomplete one, and a failed backup
 *   holds the run's forgets (issue 16, point 1: a crash, then a failed backup, deleted the last good snapshot);
 * - a stream cut by backupctl's death stores no snapshot (the gate stops restic), and a snapshot backupctl never
 *   recorded as complete is never restored as good: restore picks the newest complete one and refuses the other
 *   unless --allow-incomplete (point 2).
 */
import assert from "node:assert/strict";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { processesWith, processTree } from "../support/inspect.ts";
import { runCli, runTool, spawnCli, waitFor } from "../support/cli.ts";
import { type DemoDir, makeDemo } from "../support/demo.ts";

const at = (hour: number) => `2026-12-09T${String(hour).padStart(2, "0")}:00:00Z`;

interface Snapshot {
  id: string;
  short_id: string;
  tags: string[];
}

describe("data safety under crashes", () => {
  let demo: DemoDir;
  let resticBin: string;
  const producer = () => join(demo.dir, "prod.sh");
  const release = () => join(demo.dir, "release");
  const wrapperDir = () => join(demo.dir, "wrapper");
  const frozen = () => join(demo.dir, "frozen");
  const armed = () => join(demo.dir, "armed");
  const pruneArmed = () => join(demo.dir, "prune-armed");
  const pruneFrozen = () => join(demo.dir, "prune-frozen");
  const env = () => ({ ...demo.env, PATH: `${wrapperDir()}:${process.env.PATH}` });
  const cli = (args: string[]) => runCli(["--config", demo.config, ...args], { env: env(), timeoutMs: 180_000 });
  const snapshots = async (): Promise<Snapshot[]> => {
    const result = await runTool(resticBin, ["--no-cache", "snapshots", "--json"], {
      env: { RESTIC_REPOSITORY: demo.repository, RESTIC_PASSWORD: demo.env.DEMO_RESTIC_PASSWORD },
    });
    assert.equal(result.code, 0, result.stderr);
    return JSON.parse(result.stdout) as Snapshot[];
  };
  const resticLocks = () =>
    existsSync(join(demo.repository, "locks"))
      ? readdirSync(join(demo.repository, "locks")).filter((name) => /^[0-9a-f]{64}$/.test(name))
      : [];
  const produce = (script: string) => writeFileSync(producer(), `${script}\n`);
  /** Until restic has read `bytes` of the stream (it holds its lock by then: a signal while it takes the lock is
   * restic's own race). */
  const resticHasRead = (bytes: number) =>
    waitFor(`restic to read ${bytes} bytes`, () =>
      processesWith("--stdin-filename p1.bin", demo.dir).some((pid) => {
        try {
          return Number(/rchar: (\d+)/.exec(readFileSync(`/proc/${pid}/io`, "utf8"))?.[1]) >= bytes;
        } catch {
          return false;
        }
      }));
  /** A good first backup at 01:00, with the producer given. */
  const goodBackup = async () => {
    produce("head -c 200000 /dev/urandom");
    const first = await cli(["apply", "--now", at(1)]);
    assert.equal(first.code, 0, first.stdout + first.stderr);
    const made = await snapshots();
    assert.equal(made.length, 1);
    return made[0];
  };

  before(async () => {
    resticBin = (await runTool("sh", ["-c", "command -v restic"])).stdout.trim();
    assert.ok(resticBin, "restic is installed");
  });

  const fresh = () => {
    demo?.cleanup();
    demo = makeDemo();
    mkdirSync(wrapperDir());
    // A restic that, once armed, freezes backupctl (its gate's parent) right after `restic backup --stdin` exited
    // and says so with a file: the moment between restic storing a snapshot and backupctl recording it.
    writeFileSync(
      join(wrapperDir(), "restic"),
      `#!/bin/sh
case " $* " in
  *" prune "*)
    if [ -e "${pruneArmed()}" ]; then
      "${resticBin}" "$@" &
      restic=$!
      # A lock, not the -tmp- file restic writes it to first (frozen there, it would hold nothing).
      while [ -z "$(ls "${demo.repository}/locks" | grep -v -- -tmp-)" ]; do sleep 0.05; done
      kill -STOP $restic
      echo $restic > "${pruneFrozen()}"
      wait $restic
      exit $?
    fi ;;
esac
[ -e "${armed()}" ] || exec "${resticBin}" "$@"
"${resticBin}" "$@"
code=$?
case " $* " in
  *" --stdin "*)
    if [ -e "${armed()}" ]; then
      kill -STOP "$(ps -o ppid= -p "$PPID" | tr -d ' ')"
      touch "${frozen()}"
    fi ;;
esac
exit $code
`,
    );
    chmodSync(join(wrapperDir(), "restic"), 0o755);
    writeFileSync(
      demo.config,
      `import { command, defineConfig, env, restic } from "backupctl";
export default defineConfig({
  repositories: { local: restic({ url: ".backupctl/restic-demo", password: env("DEMO_RESTIC_PASSWORD") }) },
  projects: {
    p1: {
      schedule: "0 * * * *",
      retry: { attempts: 1 },
      repositories: ["local"],
      retention: { last: 1 },
      sources: [command({ name: "p1", filename: "p1.bin", run: "bash ${producer()}" })],
    },
  },
});
`,
    );
  };

  after(() => {
    if (demo) {
      writeFileSync(release(), "");
      for (const pid of processesWith(producer())) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // gone
        }
      }
      demo.cleanup();
    }
  });

  it("backupctl killed (SIGKILL, alone) mid-stream while the producer carries on: no snapshot, no lock; a failed backup next keeps the good one", async () => {
    fresh();
    const good = await goodBackup();
    // 1 MB, then wait for the test, then 1 MB more and a clean exit: without backupctl restic would see a clean end.
    produce(
      `head -c 1000000 /dev/urandom; while [ ! -e ${release()} ]; do sleep 0.05; done; head -c 1000000 /dev/urandom`,
    );
    const victim = spawnCli(["--config", demo.config, "apply", "--now", at(15)], { env: env() });
    await waitFor(
      "the dump streaming into restic",
      () => processesWith("--stdin-filename p1.bin", demo.dir).length > 0,
    );
    await resticHasRead(1_000_000);
    assert.equal(resticLocks().length, 1);
    process.kill(victim.pid, "SIGKILL"); // backupctl alone, as the OOM killer does: not its children
    assert.equal((await victim.done).signal, "SIGKILL");
    writeFileSync(release(), ""); // the producer finishes its dump and exits 0
    await waitFor("restic to end", () => processesWith("--stdin-filename p1.bin", demo.dir).length === 0);
    await waitFor("the producer to end", () => processesWith(producer()).length === 0);
    assert.deepEqual((await snapshots()).map((s) => s.id), [good.id], "the cut stream stored no snapshot");
    assert.deepEqual(resticLocks(), [], "restic, stopped by the gate with SIGINT, removed its lock");

    produce("exit 1");
    const failed = await cli(["apply", "--now", at(16)]);
    assert.equal(failed.code, 1, failed.stdout + failed.stderr);
    assert.match(failed.stdout, /✗ backup p1\/p1 → local failed/);
    assert.doesNotMatch(failed.stdout, /- forget/);
    assert.deepEqual((await snapshots()).map((s) => s.id), [good.id], "the last good snapshot is kept");
  });

  it("every process of the apply killed at once (a cgroup or container kill): no snapshot; the next apply removes restic's dead lock and backs up", async () => {
    fresh();
    const good = await goodBackup();
    produce(
      `head -c 1000000 /dev/urandom; while [ ! -e ${release()} ]; do sleep 0.05; done; head -c 1000000 /dev/urandom`,
    );
    const victim = spawnCli(["--config", demo.config, "apply", "--now", at(15)], { env: env() });
    await resticHasRead(1_000_000);
    assert.equal(resticLocks().length, 1);
    const tree = processTree(victim.pid);
    assert.ok(tree.length >= 4, `backupctl, the gate, restic and the producer: ${tree.join(" ")}`);
    // All at once, as a cgroup kill does: frozen first (SIGSTOP), so that none sees another die — the gate would
    // otherwise see backupctl's end and stop restic cleanly in the moment between two kills — then SIGKILL to all
    // of them, again until none is left: nobody gets to clean up, restic's lock stays behind.
    for (const pid of tree) {
      try {
        process.kill(pid, "SIGSTOP");
      } catch {
        // gone
      }
    }
    await waitFor("the whole tree to be gone", () => {
      const left = processTree(victim.pid).concat(tree).filter((pid) => existsSync(`/proc/${pid}/stat`));
      for (const pid of left) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // gone
        }
      }
      return left.length === 0 ||
        left.every((pid) => /\) Z /.test(readFileSync(`/proc/${pid}/stat`, "utf8")));
    });
    await victim.done;
    assert.deepEqual((await snapshots()).map((s) => s.id), [good.id], "restic never saw the stream end");
    assert.equal(resticLocks().length, 1, "restic, killed, left its lock");

    produce("head -c 300000 /dev/urandom");
    const next = await cli(["apply", "--now", at(16)]);
    assert.equal(next.code, 0, next.stdout + next.stderr);
    assert.match(next.stdout, /recover: remove stale restic locks in local/);
    assert.match(next.stdout, /recover: mark run \S+ of p1 interrupted/);
    // The good one stays until a plan sees the new one complete (retention is planned on what is observed).
    const after = (await snapshots()).map((s) => s.id);
    assert.equal(after.length, 2, next.stdout);
    assert.ok(after.includes(good.id));
    assert.deepEqual(resticLocks(), []);
  });

  it("backupctl killed between restic storing the snapshot and recording it: the snapshot is incomplete, never restored as good, never counted by retention", async () => {
    fresh();
    const good = await goodBackup();
    produce("head -c 3000000 /dev/urandom");
    writeFileSync(armed(), "");
    const victim = spawnCli(["--config", demo.config, "apply", "--now", at(15)], { env: env() });
    await waitFor("restic backup to exit and backupctl to be frozen", () => existsSync(frozen()));
    process.kill(victim.pid, "SIGKILL");
    assert.equal((await victim.done).signal, "SIGKILL");
    rmSync(armed());
    const all = await snapshots();
    assert.equal(all.length, 2, "restic stored the stream (backupctl had said it was complete) but nobody recorded it");
    const unrecorded = all.find((s) => s.id !== good.id)!;

    // The disaster path of docs/restore.md: refresh, list, restore the latest.
    const listed = await cli(["snapshots", "--refresh", "--json"]);
    assert.equal(listed.code, 0, listed.stdout + listed.stderr);
    const states = Object.fromEntries(
      (JSON.parse(listed.stdout) as { id: string; state: string }[]).map((s) => [s.id, s.state]),
    );
    assert.equal(states[good.id], "complete");
    assert.notEqual(states[unrecorded.id], "complete");
    assert.notEqual(states[unrecorded.id], "adopted");
    const table = await cli(["snapshots"]);
    assert.match(table.stdout, /not known to be complete/);

    const out = join(demo.dir, "out");
    const latest = await cli(["restore", "p1", "--to", out]);
    assert.equal(latest.code, 0, latest.stdout + latest.stderr);
    assert.match(latest.stdout + latest.stderr, new RegExp(good.short_id));
    assert.equal(statSync(join(out, "p1.bin")).size, 200000, "the good snapshot was restored, not the unrecorded one");

    const refused = await cli(["restore", "p1", "--snapshot", unrecorded.short_id, "--to", join(demo.dir, "out2")]);
    assert.equal(refused.code, 1, refused.stdout + refused.stderr);
    assert.match(
      refused.stderr,
      new RegExp(`snapshot ${unrecorded.short_id} of p1/p1 in local is (pending|incomplete)`),
    );
    assert.match(refused.stderr, new RegExp(`the newest complete one is ${good.short_id}`));
    assert.match(refused.stderr, /--allow-incomplete/);
    assert.ok(!existsSync(join(demo.dir, "out2", "p1.bin")), "nothing was written");
    const forced = await cli([
      "restore",
      "p1",
      "--snapshot",
      unrecorded.short_id,
      "--allow-incomplete",
      "--to",
      join(demo.dir, "out3"),
    ]);
    assert.equal(forced.code, 0, forced.stdout + forced.stderr);
    assert.equal(statSync(join(demo.dir, "out3", "p1.bin")).size, 3000000);

    // The plan of the next hour: recovery forgets the unrecorded snapshot; retention (last 1) does not count it, so it
    // plans no forget of the good one. The backup fails; the good snapshot is all that is left.
    produce("exit 1");
    const planned = await cli(["plan", "--now", at(16), "--format", "json"]);
    assert.equal(planned.code, 0, planned.stdout + planned.stderr);
    const actions = JSON.parse(planned.stdout).actions as { type: string; recover?: string; snapshots?: string[] }[];
    assert.deepEqual(
      actions.filter((a) => a.recover === "partial_snapshot").flatMap((a) => a.snapshots),
      [unrecorded.id],
    );
    assert.deepEqual(actions.filter((a) => a.type === "forget"), [], "retention counts only complete snapshots");
    const failed = await cli(["apply", "--now", at(16)]);
    assert.equal(failed.code, 1, failed.stdout + failed.stderr);
    assert.match(failed.stdout, /~ recover: forgot the partial snapshot/);
    assert.deepEqual((await snapshots()).map((s) => s.id), [good.id], "the last good snapshot is kept");

    // A good backup next; then retention (last 1) forgets the old good one, keeping the new one.
    produce("head -c 100000 /dev/urandom");
    const next = await cli(["apply", "--now", at(17)]);
    assert.equal(next.code, 0, next.stdout + next.stderr);
    const retained = await cli(["apply", "--now", at(17)]);
    assert.equal(retained.code, 0, retained.stdout + retained.stderr);
    assert.match(retained.stdout, /- forget 1 snapshot of p1\/p1 in local: done/);
    const left = await snapshots();
    assert.equal(left.length, 1);
    assert.notEqual(left[0].id, good.id);
  });

  it("a backup that fails in the same apply as a due forget holds that forget", async () => {
    fresh();
    writeFileSync(demo.config, readFileSync(demo.config, "utf8").replace("last: 1", "last: 2"));
    await goodBackup();
    produce("head -c 100000 /dev/urandom");
    const second = await cli(["apply", "--now", at(2)]);
    assert.equal(second.code, 0, second.stdout + second.stderr);
    const two = (await snapshots()).map((s) => s.id).sort();
    assert.equal(two.length, 2);
    // Retention lowered to 1 (a reviewed change, approved) while the producer fails: the plan holds a backup and a
    // forget of the older snapshot; the failed backup holds the forget.
    writeFileSync(demo.config, readFileSync(demo.config, "utf8").replace("last: 2", "last: 1"));
    produce("exit 1");
    const planned = await cli(["plan", "--now", at(3), "--format", "json"]);
    const types = (JSON.parse(planned.stdout).actions as { type: string }[]).map((a) => a.type);
    assert.ok(types.includes("backup") && types.includes("forget"), types.join(", "));
    const failed = await cli(["apply", "--now", at(3), "--auto-approve"]);
    assert.equal(failed.code, 1, failed.stdout + failed.stderr);
    assert.match(failed.stdout, /! HELD: forget 1 snapshot of p1\/p1 in local: the backup of p1 failed in this apply/);
    assert.deepEqual((await snapshots()).map((s) => s.id).sort(), two, "nothing was forgotten");
    // Once a backup succeeds, retention runs again.
    produce("head -c 100000 /dev/urandom");
    const good = await cli(["apply", "--now", at(4), "--auto-approve"]);
    assert.equal(good.code, 0, good.stdout + good.stderr);
    assert.match(good.stdout, /- forget 1 snapshot of p1\/p1 in local: done/);
    assert.equal((await snapshots()).length, 2, "the older of the two, and the new backup's snapshot");
  });

  it("a prune killed while it holds its exclusive lock: the next start removes the dead holder's lock and prunes again", async () => {
    fresh();
    await goodBackup();
    produce("head -c 100000 /dev/urandom");
    assert.equal((await cli(["apply", "--now", at(2)])).code, 0);
    writeFileSync(pruneArmed(), "");
    // The forget of the older snapshot runs, then the prune, which the wrapper freezes once restic holds its lock.
    const victim = spawnCli(["--config", demo.config, "apply", "--now", at(2)], { env: env() });
    await waitFor("prune to hold its lock, frozen", () => existsSync(pruneFrozen()));
    const prune = Number(readFileSync(pruneFrozen(), "utf8"));
    process.kill(victim.pid, "SIGKILL");
    process.kill(prune, "SIGKILL");
    await victim.done;
    rmSync(pruneArmed());
    await waitFor("the prune to be gone", () => !existsSync(`/proc/${prune}`));
    assert.equal(resticLocks().length, 1, "the dead prune's exclusive lock is left");

    const planned = await cli(["plan", "--now", at(3), "--format", "json"]);
    assert.equal(planned.code, 0, planned.stdout + planned.stderr);
    const actions = JSON.parse(planned.stdout).actions as { type: string; recover?: string; reason: string }[];
    const unlock = actions.find((a) => a.recover === "restic_unlock");
    // The whole plan and what plan said on stderr: a lock judged alive (or unreadable) is a warning there.
    assert.ok(unlock, `${planned.stdout}\n${planned.stderr}\nlocks: ${resticLocks().join(" ")}`);
    assert.match(unlock.reason, new RegExp(`an exclusive lock of pid ${prune} on host .* that process is gone`));
    const pruneAgain = actions.find((a) => a.type === "prune");
    assert.ok(pruneAgain, JSON.stringify(actions));
    assert.match(pruneAgain.reason, /not pruned since \(the prune after them failed or was interrupted\)/);

    const next = await cli(["apply", "--now", at(3)]);
    assert.equal(next.code, 0, next.stdout + next.stderr);
    assert.match(next.stdout, /~ recover: restic locks of local: removed an exclusive lock of pid/);
    assert.match(next.stdout, /\+ backup p1\/p1 → local: snapshot/);
    assert.match(next.stdout, /~ prune local: done/);
    assert.deepEqual(resticLocks(), []);
    const again = await cli(["plan", "--now", at(3), "--detailed-exitcode"]);
    assert.equal(again.code, 2, "only the forget of the hour's older snapshot is left: " + again.stdout);
    assert.doesNotMatch(again.stdout, /prune local .*not pruned since/);
  });
});
