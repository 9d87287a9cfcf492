/**
 * Imports a module when it is first needed, by a specifier the runtime cannot read ahead. Before Deno runs a program
 * it builds the graph of every import whose specifier is a string literal, dynamic `import("./x.ts")` included: the
 * entry point's literal imports of every command made each run load all of them (about 10 ms of a 250 ms `plan`,
 * measured). Type the result with `typeof import("./x.ts")`, which only the type checker reads.
 *
 *     const serve = await importLater<typeof import("./serve.ts")>(new URL("./serve.ts", import.meta.url));
 */
export function importLater<Module>(url: URL): Promise<Module> {
  return import(url.href) as Promise<Module>;
}
