/** Which command modules a command line loads: only the one it names, so start-up stays small. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { buildProgram, commandsFor } from "../../src/cli/program.ts";

const all = (await buildProgram({ stdout: () => {}, stderr: () => {} }, () => {})).commands.map((c) => c.name());

describe("commandsFor", () => {
  it("loads only the named command, past global options and their values", () => {
    assert.deepEqual(commandsFor(["plan"]), ["plan"]);
    assert.deepEqual(commandsFor(["-c", "apply.ts", "--debug", "plan", "--json"]), ["plan"]);
    assert.deepEqual(commandsFor(["--state-dir", "status", "--log-format", "json", "history"]), ["history"]);
    assert.deepEqual(commandsFor(["--config=x.ts", "import", "old.yml"]), ["import"]);
  });
  it("loads nothing for a bare --version and everything for help or an unknown word", () => {
    assert.deepEqual(commandsFor(["--version"]), []);
    assert.deepEqual(commandsFor(["-V"]), []);
    assert.deepEqual(commandsFor([]), all);
    assert.deepEqual(commandsFor(["--help"]), all);
    assert.deepEqual(commandsFor(["help", "plan"]), all);
    assert.deepEqual(commandsFor(["plna"]), all);
  });
  it("names every command the full program defines", async () => {
    for (const name of all) {
      const program = await buildProgram({ stdout: () => {}, stderr: () => {} }, () => {}, commandsFor([name]));
      assert.deepEqual(program.commands.map((c) => c.name()), [name]);
    }
    assert.ok(all.length >= 15, `only ${all.length} commands`);
  });
});
