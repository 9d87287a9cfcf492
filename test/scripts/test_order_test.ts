/**
 * scripts/test-order.ts: which files a path holds, the slowest-first order, per-file figures from Deno's JUnit report.
 * Runs under `deno test -A test/scripts/test_order_test.ts` and
 * `bun --no-install test --timeout 300000 ./test/scripts/test_order_test.ts`.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { denoTimingsFromJunit, readTimings, slowestFirst, testFiles, updateTimings } from "../../scripts/test-order.ts";

const dir = mkdtempSync(join(tmpdir(), "backupctl-test-order-"));
after(() => rmSync(dir, { recursive: true, force: true }));

describe("test order", () => {
  it("finds the file names deno test takes in a folder, and keeps a file named as it is", () => {
    const files = [
      "test/a_test.ts",
      "test/b.test.ts",
      "test/sub/test.ts",
      "test/sub/c_test.mjs",
      "test/support/helper.ts",
      "test/sub/latest.ts",
      "test/node_modules/x_test.ts",
      "test/run.ts",
    ];
    for (const file of files) {
      mkdirSync(join(dir, file, ".."), { recursive: true });
      writeFileSync(join(dir, file), "");
    }
    assert.deepEqual(testFiles(dir, ["test/"]), [
      "test/a_test.ts",
      "test/b.test.ts",
      "test/sub/c_test.mjs",
      "test/sub/test.ts",
    ]);
    assert.deepEqual(testFiles(dir, ["test/run.ts", "test/a_test.ts", "test/a_test.ts"]), [
      "test/run.ts",
      "test/a_test.ts",
    ]);
  });

  it("puts the slowest first, and a file without a figure at the mean of the others", () => {
    const timings = { version: 1 as const, files: { "slow.ts": 90_000, "fast.ts": 1_000, "mid.ts": 20_000 } };
    assert.deepEqual(slowestFirst(["fast.ts", "new.ts", "mid.ts", "slow.ts"], timings), [
      "slow.ts",
      "new.ts", // 37 s, the mean
      "mid.ts",
      "fast.ts",
    ]);
    assert.deepEqual(slowestFirst(["b.ts", "a.ts"], { version: 1, files: {} }), ["a.ts", "b.ts"], "by name at a tie");
  });

  it("sums each file's top-level cases from Deno's JUnit report, not the steps again", () => {
    const xml = `<testsuites>
    <testsuite name="./test/x_test.ts">
        <testcase name="group" classname="./test/x_test.ts" time="2.500"></testcase>
        <testcase name="group &gt; step one" classname="./test/x_test.ts" time="1.000"></testcase>
        <testcase name="group &gt; step two" classname="./test/x_test.ts" time="1.500"></testcase>
        <testcase name="alone" classname="./test/x_test.ts" time="0.250"></testcase>
    </testsuite>
    <testsuite name="./test/y_test.ts">
        <testcase name="y" classname="./test/y_test.ts" time="0.010" line="1" col="6"></testcase>
    </testsuite>
</testsuites>`;
    assert.deepEqual(denoTimingsFromJunit(xml), { "test/x_test.ts": 2750, "test/y_test.ts": 10 });
  });

  it("writes measured figures over the recorded ones, keeping the others, slowest first", () => {
    const file = join(dir, "timings.json");
    updateTimings(file, { "a.ts": 5, "b.ts": 50 });
    updateTimings(file, { "a.ts": 500 });
    assert.deepEqual(readTimings(file), { version: 1, files: { "a.ts": 500, "b.ts": 50 } });
    assert.match(readFileSync(file, "utf8"), /"a\.ts": 500,\n\s+"b\.ts": 50\n/);
  });
});
