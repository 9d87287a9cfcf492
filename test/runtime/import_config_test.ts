import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { rewriteImports } from "../../src/runtime/import-config.ts";

const target = "/opt/backupctl/src/mod.ts";

describe('rewriteImports (Bun\'s resolution of "backupctl")', () => {
  it("rewrites static, type-only, multi-line, re-export, side-effect and dynamic imports", () => {
    const source = [
      `import { defineConfig, env } from "backupctl";`,
      `import type { Config } from 'backupctl';`,
      `import {\n  restic,\n  sqlite,\n} from "backupctl";`,
      `export { files } from "backupctl";`,
      `import "backupctl";`,
      `const helpers = await import("backupctl");`,
    ].join("\n");
    const rewritten = rewriteImports(source, target);
    assert.equal(rewritten.split(target).length - 1, 6, rewritten);
    assert.ok(!rewritten.includes(`"backupctl"`) && !rewritten.includes(`'backupctl'`), rewritten);
  });

  it("leaves the name alone inside strings, regular expressions and other packages", () => {
    const source = [
      `const pattern = /^(import .* from "backupctl";)$/m;`,
      `const text = 'import x from "backupctl"';`,
      `import { x } from "backupctl-extra";`,
      `console.log("backupctl");`,
    ].join("\n");
    assert.equal(rewriteImports(source, target), source);
  });
});
