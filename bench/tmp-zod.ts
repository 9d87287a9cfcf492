import { config as zodConfig } from "zod";
if (Deno.args[0] === "jitless") zodConfig({ jitless: true });
const t0 = performance.now();
const { loadConfig } = await import("../src/config/load.ts");
const t1 = performance.now();
await loadConfig(Deno.args[1]);
const t2 = performance.now();
console.log(`${Deno.args[0]}: modules ${(t1 - t0).toFixed(1)} ms, load+validate ${(t2 - t1).toFixed(1)} ms`);
